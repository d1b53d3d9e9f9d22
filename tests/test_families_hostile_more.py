"""Hostile model folders and spec options for the model families (docs/families.md): weights
that would load as random values, on/off options given other words, pad-less classifiers,
checkpoints shipping their own classifier or tokenizer code, trainer checkpoints, broken files,
NaN weights and non-finite options, DPO sides with different length limits, RoBERTa's position
offset, PairRM's truncation policy and what check-model reports. Each refusal is one line naming
the folder; every model is a tiny one built in ``tmp_path``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from family_models import pairrm_model, remote_model, smollm_tokenizer
from rewardkit.cli import app
from rewardkit.engine.truncation import TruncationError
from rewardkit.errors import RewardkitError, SpecError
from rewardkit.modelcheck.check import check_model
from rewardkit.models.integrity import WeightsError
from rewardkit.models.loading import fit_max_length, position_limit, resolve_model
from rewardkit.registry import load_reward
from rewardkit.rewards.classifier import objective_weight_vector
from rewardkit.types import Query, assistant
from train_helpers import tiny_llama_config

QUERIES = [
    Query("What is 2+2?", "4"),
    Query("Hi", "Hello there, how can I help you today?"),
    Query("Name a colour.", "Blue."),
]


def classifier_dir(path: Path, *, causal: bool = False, seed: int = 0, **fields) -> Path:
    """A 2-layer Llama (SmolLM2 tokenizer): a 1-label classifier, or a base causal LM; its LM
    head is not tied, so a classifier folder has no LM head."""
    tok = smollm_tokenizer()
    cfg = tiny_llama_config(
        tok,
        **{"max_position_embeddings": 256, "num_labels": 1, "tie_word_embeddings": False, **fields},
    )
    torch.manual_seed(seed)
    cls = transformers.LlamaForCausalLM if causal else transformers.LlamaForSequenceClassification
    cls(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def edit_weights(path: Path, edit) -> Path:
    state = load_file(str(path / "model.safetensors"))
    save_file(edit(state), str(path / "model.safetensors"))
    return path


def edit_config(path: Path, **fields) -> Path:
    cfg = json.loads((path / "config.json").read_text())
    cfg.update(fields)
    (path / "config.json").write_text(json.dumps(cfg))
    return path


def own_scores(path: Path, queries=QUERIES) -> list[float]:
    """The authors' loop: the unmodified model, one row at a time through the chat template."""
    tok = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(path).eval()
    out = []
    for q in queries:
        text = tok.apply_chat_template([*q.prompt, assistant(q.response)], tokenize=False)
        ids = tok(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            out.append(float(model(torch.tensor([ids])).logits[0, 0]))
    return out


def load(spec: str, **options):
    return load_reward(spec, progress=False, cache_dir=None, **options)


# -- 1. weights that would be random -----------------------------------------------------------
@pytest.mark.parametrize(
    "break_it, named",
    [
        (lambda p: edit_weights(p, lambda s: {f"foo.{k}": v for k, v in s.items()}), "embed"),
        (
            lambda p: edit_weights(
                p, lambda s: {k: v for k, v in s.items() if k != "score.weight"}
            ),
            "score.weight",
        ),
        (
            lambda p: edit_weights(
                p, lambda s: {k: v for k, v in s.items() if ".layers.1." not in k}
            ),
            "layers.1",
        ),
        (lambda p: edit_config(p, num_hidden_layers=3), "layers.2"),
    ],
    ids=["renamed", "no-head", "no-layer", "more-layers-in-config"],
)
def test_weights_that_would_be_random_are_refused(tmp_path, break_it, named):
    path = break_it(classifier_dir(tmp_path / "m"))
    with pytest.raises(
        WeightsError, match=rf"{tmp_path}/m: \d+ weight.*not in the checkpoint.*{named}"
    ):
        load(f"classifier:{path}")
    with pytest.raises(WeightsError):  # check-model refuses it too, never "PASS"
        check_model(str(path), ("float32",))


def test_saved_layers_the_config_cuts_off_are_refused(tmp_path):
    """Before: a config with fewer layers than the saved weights loaded, and the model ran
    without the rest (transformers drops them): a shallower model, scores unlike the
    checkpoint's, no word said."""
    path = edit_config(classifier_dir(tmp_path / "m"), num_hidden_layers=1)
    with pytest.raises(
        WeightsError, match=rf"{tmp_path}/m: the checkpoint holds layers its config does not "
        r"have \(model\.layers\.1\..*model\.layers has 1\)",
    ):  # fmt: skip
        load(f"classifier:{path}")
    with pytest.raises(WeightsError, match="layers its config does not have"):
        load(f"similarity:{path}")
    with pytest.raises(WeightsError):
        check_model(str(path), ("float32",))


def test_unused_tensors_outside_the_models_layer_list_still_load(tmp_path):
    """Only the model's own layer list counts: another tower's numbered layers (a vision
    encoder the text classifier does not load) and a value head's weights are not layers cut
    off."""
    path = edit_weights(
        classifier_dir(tmp_path / "m"),
        lambda s: {
            **s,
            "vision_tower.encoder.layers.7.weight": torch.zeros(2),
            "model.vision.layers.5.bias": torch.zeros(2),
        },
    )
    assert np.isfinite(load(f"classifier:{path}").score(QUERIES)).all()


def test_other_loaders_refuse_missing_weights(tmp_path):
    cls_dir = classifier_dir(tmp_path / "cls")  # a classifier folder: no LM head
    with pytest.raises(WeightsError, match=r"lm_head\.weight.*score\.weight"):
        load(f"dpo:{cls_dir}")
    with pytest.raises(WeightsError, match=r"lm_head\.weight"):
        load(f"classifier:{cls_dir}?family=pair-lm")
    renamed = edit_weights(
        classifier_dir(tmp_path / "renamed"), lambda s: {f"foo.{k}": v for k, v in s.items()}
    )
    with pytest.raises(WeightsError, match=r"renamed: \d+ weight.*embed_tokens"):
        load(f"similarity:{renamed}")


def test_a_base_lm_still_gets_its_seeded_fresh_head_and_check_model_says_so(tmp_path):
    base = classifier_dir(tmp_path / "base", causal=True)
    a, b = load(f"classifier:{base}").score(QUERIES), load(f"classifier:{base}").score(QUERIES)
    assert np.array_equal(a, b)  # seeded: the same every run
    other = load(f"classifier:{base}?head_seed=1").score(QUERIES)
    assert not np.allclose(a, other)
    found = check_model(str(base), ("float32",))
    assert any("no trained score head" in w and "head_seed=0" in w for w in found.warnings)
    # Only the head may be fresh: a base LM missing a layer is refused.
    edit_weights(base, lambda s: {k: v for k, v in s.items() if ".layers.0." not in k})
    with pytest.raises(WeightsError, match=r"layers\.0\."):
        load(f"classifier:{base}")


# -- 2. on/off options --------------------------------------------------------------------------
def test_on_off_options_accept_only_on_off_words(tmp_path):
    cls_dir = classifier_dir(tmp_path / "cls")
    lm = classifier_dir(tmp_path / "lm", causal=True)
    eurus = remote_model(tmp_path / "eurus", "eurus")
    for spec in (
        f"classifier:{eurus}?trust_remote_code=off",
        f"classifier:{cls_dir}?use_chat_template=off",
        f"classifier:{cls_dir}?trust_remote_code=maybe",
        f"dpo:{lm}?use_chat_template=off",
        f"dpo:{lm}?ref={lm}&ref_chat_template=nope",
        f"density-ratio:{lm}?weak_chat_template=off",
        f"density-ratio:{lm}?strong_chat_template=2",
    ):
        with pytest.raises(SpecError, match="must be true or false"):
            load(spec)
    pair = pairrm_model(tmp_path / "pairrm")
    with pytest.raises(SpecError, match="trust_remote_code must be true or false"):
        load(f"classifier:{pair}?trust_remote_code=off")
    on = load(f"classifier:{cls_dir}?use_chat_template=yes").score(QUERIES)
    off = load(f"classifier:{cls_dir}?use_chat_template=false").score(QUERIES)
    assert not np.allclose(on, off)


# -- 3. pad-less classifiers ----------------------------------------------------------------------
def padless_dir(path: Path) -> Path:
    path = classifier_dir(path, pad_token_id=None)
    tok = transformers.AutoTokenizer.from_pretrained(path)
    tok.pad_token = None
    tok.save_pretrained(path)
    assert transformers.AutoConfig.from_pretrained(path).pad_token_id is None
    return path


def test_a_padless_classifier_is_read_at_the_last_real_token(tmp_path):
    path = padless_dir(tmp_path / "nopad")
    reward = load(f"classifier:{path}")
    got = reward.score(QUERIES)  # one padded batch; the chat template ends rows with eos
    assert np.allclose(got, own_scores(path), atol=1e-5)
    assert transformers.AutoConfig.from_pretrained(path).pad_token_id is None
    assert reward.model.config.pad_token_id is None  # the model is left as its authors made it
    found = check_model(str(path), ("float32",))
    assert found.verdict in ("PASS", "WARN"), found.lines()
    assert {c.way for c in found.comparisons if c.ok} >= {"padded", "packed", "shared"}
    assert "last real token" in found.padding


# -- 4./5. the checkpoint's own classifier or tokenizer code --------------------------------------
def test_own_classifier_code_needs_trust_remote_code(tmp_path):
    path = remote_model(tmp_path / "own", "first-eos")
    with pytest.raises(
        SpecError, match=r"own: config\.auto_map.*FirstEosClassifier.*trust_remote_code=true"
    ):
        load(f"classifier:{path}")
    with pytest.raises(SpecError, match="auto_map"):
        check_model(str(path), ("float32",))
    assert load(f"classifier:{path}?trust_remote_code=true").family.name == "sequence-classifier"


def remote_tokenizer_dir(path: Path, marker: Path) -> Path:
    path = classifier_dir(path)
    (path / "tokenization_x.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "from transformers import PreTrainedTokenizerFast\n\n\n"
        "class XTok(PreTrainedTokenizerFast):\n    pass\n"
    )
    cfg_path = path / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["tokenizer_class"] = "XTok"
    cfg["auto_map"] = {"AutoTokenizer": ["tokenization_x.XTok", "tokenization_x.XTok"]}
    cfg_path.write_text(json.dumps(cfg))
    return path


def test_custom_tokenizer_code_runs_only_with_trust_and_never_prompts(tmp_path, monkeypatch):
    marker = tmp_path / "ran.txt"
    path = remote_tokenizer_dir(tmp_path / "tok", marker)

    def no_prompt(*_a, **_k):
        raise AssertionError("transformers asked [y/N]")

    monkeypatch.setattr("builtins.input", no_prompt)
    with pytest.raises(
        SpecError,
        match=r"tok: tokenizer_config.json's auto_map.*tokenization_x.XTok.*trust_remote_code=true",
    ):
        load(f"classifier:{path}")
    assert not marker.exists()
    load(f"classifier:{path}?trust_remote_code=true")  # the flag reaches AutoTokenizer
    assert marker.exists()


# -- 6. the score cache keys on the checkpoint's own code -----------------------------------------
def test_editing_the_modelling_code_changes_the_cache_identity(tmp_path):
    path = remote_model(tmp_path / "eurus", "eurus")
    spec = f"classifier:{path}?trust_remote_code=true"
    before = load(spec).identity()
    assert "code_sha256" in before
    code = path / "modeling_eurus_shape.py"
    code.write_text(code.read_text() + "\n# edited\n")
    assert load(spec).identity()["code_sha256"] != before["code_sha256"]
    assert "code_sha256" not in load(f"classifier:{classifier_dir(tmp_path / 'plain')}").identity()


# -- 7. a trainer's checkpoint ----------------------------------------------------------------------
class TrainingArgs:
    """Stands for transformers' pickled TrainingArguments (not a state dict)."""

    lr = 1e-5


def test_a_trainer_checkpoint_with_training_args_loads(tmp_path):
    path = classifier_dir(tmp_path / "trainer")
    state = load_file(str(path / "model.safetensors"))
    (path / "model.safetensors").unlink()
    torch.save(state, path / "pytorch_model.bin")
    torch.save(TrainingArgs(), path / "training_args.bin")
    torch.save({"state": {}, "param_groups": [{"lr": 1e-5}]}, path / "optimizer.pt")
    got = load(f"classifier:{path}").score(QUERIES)
    assert np.allclose(got, own_scores(path), atol=1e-5)


# -- 8. one line instead of a traceback --------------------------------------------------------------
def _truncate(path: Path, keep: float) -> Path:
    f = path / "model.safetensors"
    data = f.read_bytes()
    f.write_bytes(data[: int(len(data) * keep)])
    return path


@pytest.mark.parametrize(
    "make, option, message",
    [
        (
            lambda p: edit_config(p, num_labels=3, id2label={str(i): f"l{i}" for i in range(3)}),
            "",
            r"score\.weight is \[1, 32\] in the checkpoint, \[3, 32\]",
        ),
        (
            lambda p: edit_config(p, hidden_size=64),
            "",
            r"is \[.*\] in the checkpoint.*config.json does not describe",
        ),
        (lambda p: p, "?num_labels=3", r"num_labels=3 does not match the saved head"),
        (lambda p: _truncate(p, 0.5), "", r"model\.safetensors: cannot read the weights"),
        (lambda p: _truncate(p, 0.0), "", r"model\.safetensors: cannot read the weights"),
        (lambda p: p, "?num_labels=0", r"num_labels must be a whole number >= 1, got 0"),
        (lambda p: p, "?num_labels=-1", r"num_labels must be a whole number >= 1, got -1"),
        (lambda p: p, "?family=pair-cross-encoder", r"needs PairRM's marker ids"),
    ],
    ids=[
        "config-labels",
        "hidden-size",
        "num_labels-option",
        "half-file",
        "empty-file",
        "labels-0",
        "labels-neg",
        "forced-pairrm",
    ],
)
def test_broken_folders_and_options_are_one_line(tmp_path, make, option, message):
    path = make(classifier_dir(tmp_path / "m"))
    with pytest.raises(RewardkitError, match=message) as err:
        load(f"classifier:{path}{option}")
    assert "\n" not in str(err.value)


def test_a_tokenizer_larger_than_the_embedding_table_is_one_line_at_score_time(tmp_path):
    path = classifier_dir(tmp_path / "small", vocab_size=1000)
    reward = load(f"classifier:{path}")
    with pytest.raises(
        SpecError, match=r"small: token id \d+ .* past the model's embedding table of 1000 rows"
    ):
        reward.score([Query("Tell me about things", "words and more words")])


def test_the_cli_prints_one_line_and_exits_2(tmp_path):
    path = _truncate(classifier_dir(tmp_path / "cut"), 0.5)
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"prompt": "hi", "response": "hello"}) + "\n")
    args = [
        "score",
        "-r",
        f"classifier:{path}",
        "--data",
        str(data),
        "--out",
        str(tmp_path / "o.jsonl"),
    ]
    result = CliRunner().invoke(app, [*args, "--no-cache", "--no-progress"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "cannot read the weights" in result.output


# -- 9. NaN weights, non-finite options ------------------------------------------------------------
def test_nan_weights_and_non_finite_options_are_refused(tmp_path):
    path = edit_weights(
        classifier_dir(tmp_path / "nan"),
        lambda s: {**s, "score.weight": torch.full_like(s["score.weight"], float("nan"))},
    )
    with pytest.raises(SpecError, match=r"nan: weights score\.weight hold NaN or ±inf"):
        load(f"classifier:{path}")
    lm = classifier_dir(tmp_path / "lm", causal=True)
    for value in ("nan", "inf", "-1"):
        with pytest.raises(SpecError, match="temperature must be a finite number > 0"):
            load(f"classifier:{lm}?family=pair-lm&temperature={value}")
    with pytest.raises(ValueError, match="must be a finite number"):
        objective_weight_vector(["help", "safe"], "help:nan")
    with pytest.raises(ValueError, match="must be a finite number"):
        objective_weight_vector(["help", "safe"], {"safe": float("inf")})


# -- 10. DPO and density-ratio sides cut to the same tokens ----------------------------------------
def test_log_ratio_sides_score_the_same_response_tokens(tmp_path):
    short = classifier_dir(tmp_path / "short", causal=True, max_position_embeddings=64)
    long = classifier_dir(tmp_path / "long", causal=True, seed=1)
    qs = [Query("Hi", "word " * 100), Query("Hi", "ok")]
    dpo = load(f"dpo:{short}?ref={long}&beta=1")
    assert dpo.policy.max_length == dpo.ref.max_length == 64
    assert np.array_equal(dpo.policy.score(qs)[:, 3], dpo.ref.score(qs)[:, 3])
    assert dpo.ref.identity()["max_length"] == 64
    ratio = load(f"density-ratio:{long}?weak={short}")
    assert ratio.strong.max_length == ratio.weak.max_length == 64


# -- 11. RoBERTa's position offset -----------------------------------------------------------------
def test_roberta_positions_start_after_the_pad_id(tmp_path):
    path = tmp_path / "roberta"
    tok = transformers.AutoTokenizer.from_pretrained(resolve_model("minilm").source)
    tok.model_max_length = int(1e30)  # no limit from the tokenizer
    cfg = transformers.RobertaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=66,
        pad_token_id=1,
        num_labels=1,
    )
    torch.manual_seed(0)
    transformers.RobertaForSequenceClassification(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    reward = load(f"classifier:{path}")
    assert reward.max_length == 64  # 66 positions − pad id 1 − 1
    result = reward.score_full([Query("Tell me about cats " * 40, "Cats are great " * 30)])
    assert np.isfinite(result.scores).all() and result.truncated.all()
    assert position_limit(transformers.CamembertConfig(max_position_embeddings=514)) == 512
    assert (
        fit_max_length(transformers.LlamaConfig(max_position_embeddings=66), tok, None, 512) == 66
    )


# -- 12. PairRM's truncation policy ----------------------------------------------------------------
def test_pair_cross_encoder_honours_truncation_error_and_refuses_right(tmp_path):
    path = pairrm_model(tmp_path / "pairrm")
    long = (["Tell me about cats " * 40], ["Cats are great " * 30], ["Dogs " * 50])
    strict = load(f"classifier:{path}?truncation=error&max_length=64")
    with pytest.raises(TruncationError, match="over the limit of 64"):
        strict.compare_many(*long)
    assert strict.compare_many(["hi"], ["a"], ["b"]).p.shape == (1,)
    with pytest.raises(SpecError, match="truncation=right is not available"):
        load(f"classifier:{path}?truncation=right")
    cut = load(f"classifier:{path}?max_length=64").compare_many(*long)
    assert cut.truncated.all()
    found = check_model(f"classifier:{path}?max_length=64", ("float32",))
    assert "PairRM's own cut" in found.truncation


# -- 13./14. check-model's pad, missing tokenizer files ---------------------------------------------
def test_check_model_reports_the_pad_id_the_engine_uses(tmp_path):
    path = classifier_dir(tmp_path / "pad0", pad_token_id=0)  # the tokenizer's pad is eos (2)
    reward = load(f"classifier:{path}")
    assert reward.pad_token_id == 0 and reward.tokenizer.pad_token_id == 2
    found = check_model(str(path), ("float32",))
    assert found.padding.startswith("pad id 0, eos id 2 (the tokenizer's pad is 2)")


def test_a_folder_without_tokenizer_files_says_so(tmp_path):
    path = classifier_dir(tmp_path / "notok")
    for f in path.iterdir():
        if f.name not in ("config.json", "model.safetensors"):
            f.unlink()
    with pytest.raises(SpecError, match=r"notok: no tokenizer files \(tokenizer\.json"):
        load(f"classifier:{path}")
