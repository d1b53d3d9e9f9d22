"""Held-out inputs for the B-card and A9/A10 rewards on real (tiny) models and real files:
responses truncated away, references with another tokenizer, hand-edited model directories
(docs/methods/B1, B2, B12, B13, A9, A10)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.engine.config import EngineConfig
from rewardkit.errors import SpecError
from rewardkit.models.loading import resolve_model
from rewardkit.rewards.dpo import DPOImplicitReward
from rewardkit.rewards.logprob import SequenceLogProbReward
from rewardkit.rewards.pal import PALHead, load_pal, save_pal
from rewardkit.rewards.polar import load_polar
from rewardkit.rewards.token_rewards import TokenLogRatioReward
from rewardkit.types import Query
from train_helpers import tiny_llama, tiny_llama_config

LONG_PROMPT = "word " * 60


@pytest.fixture(scope="module")
def policy(tmp_path_factory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("policy"), seed=0, causal=True)


def two_queries() -> list[Query]:
    return [
        Query([{"role": "user", "content": LONG_PROMPT}], "Paris."),
        Query([{"role": "user", "content": "Capital of France?"}], "Paris."),
    ]


def test_a_response_cut_away_by_truncation_scores_nan_not_probability_one(policy):
    """``truncation=right`` on a long prompt leaves no response token: its log p(y|x) used to be
    the empty sum 0 (probability 1), so reference-free DPO ranked it above every real answer."""
    cfg = EngineConfig(max_length=24, truncation="right", progress=False, threads=1)
    stats = SequenceLogProbReward(str(policy), cfg, use_chat_template=False).score(two_queries())
    assert stats[0, 3] == 0 and np.all(np.isnan(stats[0, :3]))  # no token: sum, mean, norm NaN
    assert stats[1, 3] > 0 and np.all(np.isfinite(stats[1, :3])) and stats[1, 0] < 0
    for reduce in ("sum", "norm"):
        dpo = DPOImplicitReward(str(policy), reduce=reduce, config=cfg, use_chat_template=False)
        out = dpo.score(two_queries())
        assert math.isnan(out[0]) and np.isfinite(out[1])


@pytest.fixture(scope="module")
def other_tokenizer_lm(tmp_path_factory) -> Path:
    """A tiny causal Llama over the MiniLM WordPiece tokenizer (splits text unlike SmolLM2's BPE)."""
    path = tmp_path_factory.mktemp("wordpiece_lm")
    tok = transformers.AutoTokenizer.from_pretrained(resolve_model("minilm").source)
    cfg = tiny_llama_config(
        tok,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        bos_token_id=tok.cls_token_id,
        eos_token_id=tok.sep_token_id,
    )
    torch.manual_seed(1)
    transformers.LlamaForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_token_ratio_refuses_a_reference_that_tokenizes_differently(policy, other_tokenizer_lm):
    """Token rewards subtract position by position; with another tokenizer position t is another
    piece of text, and the rows used to be cut to the shorter one and subtracted anyway."""
    q = [Query([{"role": "user", "content": "Capital?"}], "Paris is the capital of France.")]
    cfg = EngineConfig(progress=False, threads=1)
    mixed = TokenLogRatioReward(
        str(policy), str(other_tokenizer_lm), scale=0.1, config=cfg, use_chat_template=False
    )
    with pytest.raises(ValueError, match="split the response of query 0 into different tokens"):
        mixed.score(q)
    same = TokenLogRatioReward(
        str(policy), str(policy), scale=0.1, config=cfg, use_chat_template=False
    )
    assert same.score(q)[0] == pytest.approx(0.0, abs=1e-6)  # same model: every ratio 0


# -- hand-edited PAL / POLAR directories ------------------------------------------------------


def write_pal(path: Path, **meta_changes) -> Path:
    head = PALHead(8, 2, k=2, d_pref=4, form="ideal")
    meta = {
        "in_dim": 8,
        "k": 2,
        "d_pref": 4,
        "form": "ideal",
        "max_length": 32,
        "encoder": "minilm",
        "population": [0.5, 0.5],
    }
    users = {"u1": [0.1, -0.2], "u2": [1.0, 0.0]}
    save_pal(path, head, meta, users)
    data = json.loads((path / "pal.json").read_text())
    for k, v in meta_changes.items():
        if v is None:
            data.pop(k, None)
        else:
            data[k] = v
    (path / "pal.json").write_text(json.dumps(data))
    return path


def test_a_well_formed_pal_directory_loads(tmp_path):
    head, meta = load_pal(write_pal(tmp_path / "ok"))
    assert meta["k"] == 2 and head.prototypes.shape == (2, 4)


@pytest.mark.parametrize(
    "changes, said",
    [
        ({"in_dim": None}, "field 'in_dim' must be an int ≥ 1"),
        ({"k": "2"}, "field 'k' must be an int ≥ 1"),
        ({"form": "angle"}, "form must be one of"),
        ({"population": [1.0]}, "population must be 2 finite numbers"),
        ({"users": {"u1": [0.1, 0.2, 0.3]}}, "users\\['u1'\\] must be 2 finite numbers"),
        ({"users": [1, 2]}, "field 'users' must be an object"),
        ({"d_pref": 6}, "weights do not fit"),
    ],
)
def test_a_hand_edited_pal_directory_is_a_spec_error(tmp_path, changes, said):
    with pytest.raises(SpecError, match=said):
        load_pal(write_pal(tmp_path / "bad", **changes))


def test_pal_json_that_is_not_an_object_or_not_json(tmp_path):
    d = write_pal(tmp_path / "bad")
    (d / "pal.json").write_text("[1, 2]")
    with pytest.raises(SpecError, match="expected a JSON object"):
        load_pal(d)
    (d / "pal.json").write_text("{nope")
    with pytest.raises(SpecError, match="not valid JSON"):
        load_pal(d)


def write_polar(path: Path, meta: object, weights: bytes | None = None) -> Path:
    from safetensors.torch import save_file

    from rewardkit.rewards.default_rm import FeatureHead

    path.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in FeatureHead(8, "mlp", 4).state_dict().items()},
        str(path / "polar.safetensors"),
    )
    if weights is not None:
        (path / "polar.safetensors").write_bytes(weights)
    (path / "polar.json").write_text(json.dumps(meta))
    return path


def test_polar_directories_good_and_hand_edited(tmp_path):
    good = {"in_dim": 8, "inner": 4, "max_length": 32}
    head, meta = load_polar(write_polar(tmp_path / "ok", good))
    assert meta == good and head(torch.zeros(1, 8)).shape == (1, 1)
    with pytest.raises(SpecError, match="expected a JSON object"):
        load_polar(write_polar(tmp_path / "list", [1, 2]))
    with pytest.raises(SpecError, match="field 'inner' must be an int"):
        load_polar(write_polar(tmp_path / "noinner", {"in_dim": 8, "max_length": 32}))
    with pytest.raises(SpecError, match="weights do not fit"):
        load_polar(write_polar(tmp_path / "size", {**good, "in_dim": 16}))
    with pytest.raises(SpecError, match="weights do not fit"):
        load_polar(write_polar(tmp_path / "junk", good, weights=b"not safetensors"))


def test_cli_reports_a_broken_pal_directory_in_one_line(tmp_path):
    d = write_pal(tmp_path / "bad", in_dim=None)
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"prompt": "hi", "response": "yo"}) + "\n")
    out = tmp_path / "o.jsonl"
    res = CliRunner().invoke(
        app, ["score", "-r", f"pal:{d}", "--data", str(data), "--out", str(out)]
    )
    assert res.exit_code == 2, res.output
    assert "field 'in_dim'" in res.output and "Traceback" not in res.output
    assert not out.exists()


def test_sequence_logprob_matches_trl_dpo_completion_tokens(policy):
    """TRL's DPOTrainer scores a conversational completion as the tokens the chat template adds
    after the generation prompt; ``dpo:…?reduce=sum`` scores the same tokens (card B1)."""
    data_utils = pytest.importorskip("trl.data_utils")
    tok = transformers.AutoTokenizer.from_pretrained(policy)
    lm = transformers.AutoModelForCausalLM.from_pretrained(policy, dtype=torch.float32).eval()
    pairs = [("What is 2+2?", "4."), ("Capital of France?", "Paris is the capital of France.")]
    theirs = []
    for p, y in pairs:
        prompt = [{"role": "user", "content": p}]
        pid = data_utils._tokenize(tok, prompt, add_generation_prompt=True)["input_ids"]
        full = data_utils._tokenize(tok, [*prompt, {"role": "assistant", "content": y}])
        ids = torch.tensor([full["input_ids"]])
        start = data_utils.common_prefix_length(pid, full["input_ids"])
        with torch.no_grad():
            lp = torch.log_softmax(lm(ids).logits[0, :-1].float(), dim=-1)
        per_token = lp.gather(1, ids[0, 1:, None])[:, 0]
        theirs.append(float(per_token[start - 1 :].sum()))
    cfg = EngineConfig(progress=False, threads=1)
    ours = DPOImplicitReward(str(policy), reduce="sum", config=cfg).score(
        [Query([{"role": "user", "content": p}], y) for p, y in pairs]
    )
    np.testing.assert_allclose(ours, theirs, atol=1e-3, rtol=0)
