"""Held-out architectures through the engine's layouts (docs/performance.md, "Choosing a layout").

Tiny random ``*ForSequenceClassification`` checkpoints of architectures rewardkit was not built
around, scored by ``classifier:DIR`` in the padded, packed and shared layouts: every layout must
give the model's own forward on one unpadded row within 1e-4 (float32), or run padded with one
warning saying why. Never silently different scores.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

from rewardkit.engine.config import EngineConfig
from rewardkit.models.loading import resolve_model
from rewardkit.rewards.classifier import ClassifierReward
from rewardkit.types import Query, user
from train_helpers import packed_and_padded_rewards

PROMPTS = (
    "Tell me a long story about a dragon who lived in the mountains and collected coins " * 2,
    "What is the capital of France? Please answer briefly and explain why.",
)
RESPONSES = ("Paris.", "Once upon a time there was a dragon named Fred.", "I don't know!")
QUERIES = [Query([user(p)], r) for p in PROMPTS for r in RESPONSES]
SMALL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4}


def decoder_tokenizer():
    return transformers.AutoTokenizer.from_pretrained(resolve_model("smollm2").source)


def encoder_tokenizer():
    return transformers.AutoTokenizer.from_pretrained(resolve_model("minilm").source)


def decoder_ids(tok) -> dict:
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    return {
        "vocab_size": len(tok),
        "pad_token_id": pad,
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
    }


def save(path: Path, cfg: transformers.PretrainedConfig, tok) -> Path:
    """A seeded random sequence classifier (one output) with ``tok``, saved to ``path``."""
    cfg.num_labels = 1
    cfg.initializer_range = 0.2
    torch.manual_seed(0)
    model = transformers.AutoModelForSequenceClassification.from_config(cfg)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def build(name: str, path: Path) -> Path:
    """Tiny checkpoints of the architectures under test."""
    t = transformers
    if name in ("bert", "roberta"):
        tok = encoder_tokenizer()
        ids = {"vocab_size": len(tok), "pad_token_id": tok.pad_token_id}
        config = t.BertConfig if name == "bert" else t.RobertaConfig
        return save(path, config(**SMALL, intermediate_size=64, **ids), tok)
    tok = decoder_tokenizer()
    ids = decoder_ids(tok)
    rope = {**SMALL, "num_key_value_heads": 2, "intermediate_size": 64, **ids}
    configs = {
        "llama": lambda: t.LlamaConfig(**rope),
        "qwen2": lambda: t.Qwen2Config(**rope),
        "phi3": lambda: t.Phi3Config(**rope),
        "mistral": lambda: t.MistralConfig(**rope, sliding_window=8),
        "qwen2-window": lambda: t.Qwen2Config(
            **rope, use_sliding_window=True, sliding_window=4096, max_window_layers=1
        ),  # layer 0 full attention, layer 1 windowed
        "gemma3-text": lambda: t.Gemma3TextConfig(
            **{**rope, "num_key_value_heads": 1}, head_dim=8, sliding_window=4096
        ),
        "diffllama": lambda: t.DiffLlamaConfig(**rope),
        "gpt_neox": lambda: t.GPTNeoXConfig(**SMALL, intermediate_size=64, **ids),
        "gpt2": lambda: t.GPT2Config(n_embd=32, n_layer=2, n_head=4, **ids),
        "opt": lambda: t.OPTConfig(**SMALL, ffn_dim=64, word_embed_proj_dim=32, **ids),
        "falcon": lambda: t.FalconConfig(
            **SMALL, new_decoder_architecture=True, num_kv_heads=2, **ids
        ),
        "falcon-alibi": lambda: t.FalconConfig(**SMALL, alibi=True, **ids),
        "bloom": lambda: t.BloomConfig(hidden_size=32, n_layer=2, n_head=4, **ids),
        "mpt": lambda: t.MptConfig(d_model=32, n_heads=4, n_layers=2, expansion_ratio=2, **ids),
        "gemma3": lambda: t.Gemma3Config(
            text_config={**rope, "head_dim": 8, "sliding_window": 8, "num_key_value_heads": 1},
            vision_config={
                "hidden_size": 16,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "intermediate_size": 32,
                "image_size": 28,
                "patch_size": 14,
            },
            mm_tokens_per_image=4,
        ),
    }
    return save(path, configs[name](), tok)


def own_forward(reward: ClassifierReward) -> np.ndarray:
    """The model's own forward, one unpadded row at a time (the reference)."""
    out = []
    with torch.no_grad():
        for row in reward.encode(QUERIES):
            kwargs = {"input_ids": torch.tensor([row.input_ids])}
            if row.token_type_ids is not None:
                kwargs["token_type_ids"] = torch.tensor([row.token_type_ids])
            out.append(float(reward.model(**kwargs).logits[0, 0]))
    return np.array(out)


def run(path: Path, layout: str, **engine) -> tuple[np.ndarray, np.ndarray, str, list[str]]:
    """(engine scores, own-forward scores, layout run, warnings) of QUERIES."""
    config = EngineConfig(layout=layout, progress=False, compile=False, device="cpu", **engine)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reward = ClassifierReward(str(path), config)
        result = reward.score_full(QUERIES)
    messages = [str(w.message) for w in caught if "refused" in str(w.message)]
    return np.asarray(result.scores), own_forward(reward), result.stats["layout"], messages


@pytest.mark.parametrize(
    "name", ["llama", "qwen2", "phi3", "gpt_neox", "gpt2", "opt", "falcon", "bert"]
)
def test_layouts_equal_the_models_own_forward(name, tmp_path):
    path = build(name, tmp_path / name)
    for layout in ("padded", "packed", "shared"):
        got, want, ran, refused = run(path, layout)
        assert np.abs(got - want).max() < 1e-4, (name, layout)
        if name == "bert" and layout == "shared":  # an encoder: refused, with a reason
            assert ran == "padded" and "causal decoder" in refused[0]
        else:
            assert ran == layout and not refused, (name, layout, refused)


@pytest.mark.parametrize("name", ["bloom", "falcon-alibi", "mpt"])
def test_alibi_models_run_padded_with_a_reason(name, tmp_path):
    """Before: Bloom and Falcon-ALiBi raised a ValueError traceback in packed/shared, and MPT's
    shared layout scored 0.6 away from its own forward."""
    path = build(name, tmp_path / name)
    for layout in ("packed", "shared"):
        got, want, ran, refused = run(path, layout)
        assert np.abs(got - want).max() < 1e-4, (name, layout)
        assert ran == "padded"
        assert any("ALiBi" in m for m in refused), refused


def test_multimodal_gemma3_sliding_window_is_seen_in_its_text_config(tmp_path):
    """Before: Gemma3ForSequenceClassification kept its sliding window in ``text_config`` and
    packed/shared scores differed from its own forward by 0.8."""
    path = build("gemma3", tmp_path / "gemma3")
    for layout in ("packed", "shared"):
        got, want, ran, refused = run(path, layout)
        assert np.abs(got - want).max() < 1e-4, layout
        assert ran == "padded" and any("sliding-window" in m for m in refused)


def test_probe_refuses_attention_that_ignores_the_layout(tmp_path):
    """DiffLlama's differential attention does not run through the engine's attention hook:
    before, its shared layout scored 1.2 away from its own forward; the one-time probe now
    refuses it (and keeps packed, which it does run correctly)."""
    path = build("diffllama", tmp_path / "diffllama")
    got, want, ran, refused = run(path, "shared")
    assert np.abs(got - want).max() < 1e-4
    assert ran == "padded" and any("probe" in m for m in refused), refused
    got, want, ran, _ = run(path, "packed")
    assert ran == "packed" and np.abs(got - want).max() < 1e-4


def test_sliding_window_decoder_runs_padded_with_a_reason(tmp_path):
    path = build("mistral", tmp_path / "mistral")
    got, want, ran, refused = run(path, "packed")
    assert np.abs(got - want).max() < 1e-4
    assert ran == "padded" and "sliding-window attention (window 8)" in refused[0]


def _set_window(path: Path, window: int) -> Path:
    cfg = json.loads((path / "config.json").read_text())
    cfg["sliding_window"] = window
    (path / "config.json").write_text(json.dumps(cfg))
    return path


def _longest(path: Path, queries: list[Query] = QUERIES) -> int:
    reward = ClassifierReward(str(path), EngineConfig(progress=False, device="cpu"))
    return max(len(r.input_ids) for r in reward.encode(queries))


@pytest.mark.parametrize("name", ["mistral", "qwen2-window", "gemma3-text", "phi3"])
def test_a_sliding_window_no_row_reaches_keeps_packed_and_shared(name, tmp_path):
    """A window at least as long as every row changes no attention: packed and shared run and
    equal the model's own (windowed) forward. One token shorter than the longest row, the run
    goes padded and says why. Before: any sliding window refused both layouts, e.g.
    Mistral-7B-v0.1's 4,096 or Phi-3-mini's 2,047 on rows of a few hundred tokens."""
    path = build(name, tmp_path / name)
    longest = _longest(path)
    _set_window(path, longest)
    for layout in ("packed", "shared"):
        for attention in ("auto", "dense"):  # mask-free, and the dense-mask fallback
            got, want, ran, refused = run(path, layout, attention=attention)
            assert ran == layout and not refused, (layout, attention, refused)
            assert np.abs(got - want).max() < 1e-4, (layout, attention)
    _set_window(path, longest - 1)
    for layout in ("packed", "shared"):
        got, want, ran, refused = run(path, layout)
        assert ran == "padded", layout
        assert f"window {longest - 1}" in refused[0] and f"{longest} tokens" in refused[0]
        assert np.abs(got - want).max() < 1e-4, layout


def test_the_window_is_checked_per_run_on_one_loaded_model(tmp_path):
    """One loaded model: a run of short rows packs; a later run with a row longer than the
    window goes padded (one warning naming the window and the row), scores equal to the
    model's own forward either way."""
    path = _set_window(build("mistral", tmp_path / "mistral"), 4096)
    longest = _longest(path)
    _set_window(path, longest + 8)
    long_query = Query([user(PROMPTS[0] + " And more." * 4)], RESPONSES[1])
    assert _longest(path, [long_query]) > longest + 8
    config = EngineConfig(layout="packed", progress=False, compile=False, device="cpu")
    reward = ClassifierReward(str(path), config)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        short = reward.score_full(QUERIES)
        mixed = reward.score_full([*QUERIES, long_query])
    refused = [str(w.message) for w in caught if "refused" in str(w.message)]
    assert short.stats["layout"] == "packed" and mixed.stats["layout"] == "padded"
    assert len(refused) == 1 and f"window {longest + 8}" in refused[0], refused
    # the reference: a fresh copy of the model on transformers' own sdpa attention (the packed
    # run switched the loaded body to the engine's attention)
    fresh = transformers.AutoModelForSequenceClassification.from_pretrained(path)
    with torch.no_grad():
        want = [
            float(fresh(input_ids=torch.tensor([row.input_ids])).logits[0, 0])
            for row in reward.encode([*QUERIES, long_query])
        ]
    np.testing.assert_allclose(short.scores, want[:-1], atol=1e-4)
    np.testing.assert_allclose(mixed.scores, want, atol=1e-4)


def test_layer_kinds_other_than_full_and_sliding_stay_refused():
    from rewardkit.engine.execute import layout_refusal

    class Body(torch.nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.config = cfg

    chunked = transformers.Llama4TextConfig(num_hidden_layers=4)
    chunked._attn_implementation = "sdpa"
    assert "chunked_attention" in layout_refusal(Body(chunked), longest=16)
    capped = transformers.Gemma2Config(num_hidden_layers=2, sliding_window=4096)
    capped._attn_implementation = "sdpa"
    assert layout_refusal(Body(capped), longest=16) == "attention logit soft-capping"
    windowed = transformers.MistralConfig(sliding_window=64)
    windowed._attn_implementation = "sdpa"
    assert layout_refusal(Body(windowed), longest=64) is None
    assert "window 64" in layout_refusal(Body(windowed), longest=65)
    assert "window 64" in layout_refusal(Body(windowed))  # no rows known: refused


def test_config_pad_id_other_than_the_tokenizers(tmp_path):
    """A checkpoint whose ``config.pad_token_id`` is not the tokenizer's pad: the model reads its
    score at the last token that is not the config's pad. Before, the engine padded with the
    tokenizer's pad and read padding positions (scores off by 2.1 padded, 4.0 packed)."""
    path = build("llama", tmp_path / "llama")
    cfg = json.loads((path / "config.json").read_text())
    cfg["pad_token_id"] = 5  # a real id, never in the text
    (path / "config.json").write_text(json.dumps(cfg))
    for layout in ("padded", "packed", "shared"):
        got, want, ran, _ = run(path, layout)
        assert ran == layout
        assert np.abs(got - want).max() < 1e-4, layout


def test_bfloat16_and_truncation_stay_close(tmp_path):
    path = build("qwen2", tmp_path / "qwen2")
    got, want, _, _ = run(path, "shared", dtype="bfloat16")
    assert np.abs(got - want).max() < 0.08
    got, want, ran, _ = run(path, "packed", max_length=24)
    assert ran == "packed" and np.abs(got - want).max() < 1e-4


def hf_classifier(name: str, path: Path):
    build(name, path)
    return transformers.AutoModelForSequenceClassification.from_pretrained(path)


def test_train_packing_only_where_it_equals_padding(tmp_path):
    """Before: packed training of a sliding-window Mistral computed rewards 3.1 away from its
    own padded forward, and RoBERTa crashed (AttributeError: no 'dropout')."""
    from rewardkit.train.model import can_pack, packing_refusal

    assert can_pack(hf_classifier("llama", tmp_path / "llama"))
    assert can_pack(hf_classifier("bert", tmp_path / "bert"))
    mistral = packing_refusal(hf_classifier("mistral", tmp_path / "mistral"))
    assert mistral is not None and "sliding-window" in mistral
    roberta = packing_refusal(hf_classifier("roberta", tmp_path / "roberta"))
    assert roberta is not None and "head" in roberta  # pools by itself


def test_train_packs_a_sliding_window_model_when_max_length_fits_the_window(tmp_path):
    """Training rows are cut to ``max_length``: a window at least that long changes nothing, so
    packing stays on and equals padding; a longer ``max_length`` refuses it, naming the window."""
    from rewardkit.train.collate import build_items
    from rewardkit.train.config import TrainConfig
    from rewardkit.train.run import build_model
    from rewardkit.types import Example

    path = _set_window(build("mistral", tmp_path / "mistral"), 256)
    cfg = TrainConfig(model=str(path), max_length=256, packing=True)
    module, _, encode, col, _ = build_model(cfg)
    assert col.packing
    module.eval()
    data = [
        Example(
            str(i), [user("Q" * (1 + i))], [" ".join(["fact"] * (2 + 50 * (i == 5))), "no"], [0]
        )
        for i in range(6)
    ]
    a, b = packed_and_padded_rewards(module, col, build_items(data, encode, cfg))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        longer = build_model(TrainConfig(model=str(path), max_length=257, packing=True))
    assert not longer[3].packing


def bare_tokenizer_model(path: Path, eos: int | None) -> Path:
    """A word-level tokenizer with no special tokens at all, and a tiny Llama over it."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = " ".join([*PROMPTS, *RESPONSES]).lower().replace("?", " ").replace(".", " ").split()
    vocab = {w: i for i, w in enumerate(["<x>", *dict.fromkeys(words)])}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="<x>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=raw)
    assert tok.pad_token_id is None and tok.eos_token_id is None and tok.unk_token_id is None
    cfg = transformers.LlamaConfig(
        **SMALL, num_key_value_heads=2, intermediate_size=64, vocab_size=len(vocab)
    )
    cfg.pad_token_id, cfg.eos_token_id, cfg.bos_token_id = None, eos, None
    return save(path, cfg, tok)


def test_tokenizer_without_pad_eos_or_unk(tmp_path):
    """Before: ``int(None)`` raised a TypeError traceback while loading. Now the pad is the
    config's eos token; without one, a one-line error says what to set."""
    from rewardkit.errors import SpecError

    path = bare_tokenizer_model(tmp_path / "bare", eos=1)
    for layout in ("padded", "shared"):
        got, want, ran, _ = run(path, layout)
        assert ran == layout and np.abs(got - want).max() < 1e-4
    path = bare_tokenizer_model(tmp_path / "bare-no-eos", eos=None)
    with pytest.raises(SpecError, match="no pad, eos or unk token"):
        ClassifierReward(str(path), EngineConfig(progress=False, device="cpu"))


def causal_lm_dir(name: str, path: Path) -> Path:
    """A tiny causal LM: Cohere (logits × ``logit_scale``), Granite (logits ÷
    ``logits_scaling``), Gemma 2 (soft-capped logits) or Llama, with the SmolLM2 tokenizer."""
    tok = decoder_tokenizer()
    rope = {**SMALL, "num_key_value_heads": 2, "intermediate_size": 64, **decoder_ids(tok)}
    cfg = {
        "cohere": lambda: transformers.CohereConfig(**rope, logit_scale=0.25),
        "granite": lambda: transformers.GraniteConfig(**rope, logits_scaling=8.0),
        "gemma2": lambda: transformers.Gemma2Config(**rope, head_dim=8),
        "llama": lambda: transformers.LlamaConfig(**rope),
    }[name]()
    torch.manual_seed(0)
    transformers.AutoModelForCausalLM.from_config(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.mark.parametrize("name", ["cohere", "granite", "llama"])
def test_causal_lm_logits_scaled_as_the_model_scales_them(name, tmp_path):
    """Cohere multiplies its head's logits by ``logit_scale``, Granite divides them by
    ``logits_scaling``. Before, judges and log-prob rewards read the bare head: next-token
    logits off by 0.41 (Cohere) and 0.47 (Granite), so P(yes) and log-probs were wrong."""
    from rewardkit.models.causal_lm import CausalLM

    tok = decoder_tokenizer()
    path = causal_lm_dir(name, tmp_path / name)
    lm = CausalLM.load(str(path), EngineConfig(device="cpu", progress=False))
    ids = torch.tensor([tok("The capital of France is Paris, and")["input_ids"]])
    with torch.no_grad():
        own = lm.model(input_ids=ids).logits[0].float()
        hidden = lm.decoder(input_ids=ids).last_hidden_state[0]
    assert torch.allclose(lm.logits(hidden), own, atol=1e-5)
    picked = [int(ids[0, 1]), int(ids[0, 2])]
    assert torch.allclose(lm.answer_logits(hidden, picked), own[:, picked], atol=1e-5)


@pytest.mark.parametrize("name", ["granite", "gemma2"])
def test_generative_training_reads_the_models_own_logits(name, tmp_path):
    """Before: the generative objective trained on the bare head's logits, not Granite's scaled
    or Gemma 2's soft-capped ones that the judge then scores with."""
    from rewardkit.rewards.judges.answers import AnswerTokens
    from rewardkit.rewards.judges.template import YES_NO
    from rewardkit.train.model import GenerativeModel, TrainInputs

    path = causal_lm_dir(name, tmp_path / name)
    hf = transformers.AutoModelForCausalLM.from_pretrained(path)
    tok = decoder_tokenizer()
    ids = torch.tensor([tok("Is the sky blue? Answer:")["input_ids"]])
    module = GenerativeModel(hf, AnswerTokens(YES_NO, tok, str(path), "logit")).eval()
    yes, no = module.yes_id, module.no_id
    with torch.no_grad():
        got = module.outputs(TrainInputs(ids, torch.ones_like(ids)))
        own = hf(input_ids=ids).logits[0, -1].float()
    assert torch.allclose(got[0, 1:3], own[[yes, no]], atol=1e-5)
    assert torch.allclose(got[0, 3:], own, atol=1e-5)


def test_a_probe_outcome_is_recorded_per_architecture_and_reused(tmp_path, monkeypatch):
    """The probe's outcome is kept in the rewardkit cache (``layout-probe.json``): a second
    load of the same architecture refuses the same layout, with the same reason and scores,
    from the record; an unreadable record is probed again."""
    import json

    from rewardkit.engine import layout_check

    # built first: the tokenizer comes from the embedded SmolLM2, which a fresh cache would
    # convert again from its GGUF file (~20 s)
    path = build("diffllama", tmp_path / "diffllama")
    monkeypatch.setenv("REWARDKIT_CACHE", str(tmp_path / "cache"))
    first = run(path, "shared")
    record = json.loads((tmp_path / "cache" / "layout-probe.json").read_text())
    assert len(record) == 1 and "shared" in next(iter(record.values()))
    probes = []
    real = layout_check._probe
    monkeypatch.setattr(layout_check, "_probe", lambda *a: probes.append(1) or real(*a))
    again = run(path, "shared")  # a fresh load: a new body object, the same architecture
    assert probes == [] and again[2] == "padded" and again[3] == first[3]
    np.testing.assert_allclose(again[0], first[0], atol=1e-6)
    (tmp_path / "cache" / "layout-probe.json").write_text("{not json")
    assert run(path, "shared")[2] == "padded" and probes == [1]
