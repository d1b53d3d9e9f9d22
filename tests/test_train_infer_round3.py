"""Hostile round 3 on ``rewardkit train`` and ``rewardkit bon``: data whose every pair has the
same tokens on both sides, prompts longer than the policy's context, repeated prompts, ``--n 1``
with ``--pairs-out``, and a run that mines no pair."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tests.train_helpers import BAD, GOOD, tiny_cfg, tiny_llama  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from rewardkit.errors import DataError  # noqa: E402
from rewardkit.inference.run import PromptItem, mine_from_rows  # noqa: E402
from rewardkit.types import user  # noqa: E402


def _rows(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _cli(*args: object) -> tuple[int, str]:
    from rewardkit.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory) -> Path:
    """A 2-layer causal Llama of 256 positions with the SmolLM2 tokenizer."""
    torch.set_num_threads(1)
    return tiny_llama(tmp_path_factory.mktemp("policy"), causal=True)


# --- 1: every pair truncated to the same tokens ------------------------------------------------
@pytest.mark.parametrize(
    ("objective", "frozen"), [("bt", False), ("crm", False), ("listwise", False), ("bt", True)]
)
def test_data_whose_every_pair_has_the_same_tokens_is_refused(
    bert_dir, tmp_path, objective, frozen
):
    """Every prompt longer than max_length under right truncation: both sides are the same
    tokens; the run saved a model that learnt nothing (loss ln 2) with exit 0."""
    from rewardkit.train import train

    rows = [  # a frozen encoder keeps the response: there, the two sides are the same text
        {"prompt": "word " * 200 + str(i), "chosen": GOOD[i % 6], "rejected": BAD[i % 6]}
        | ({"rejected": GOOD[i % 6]} if frozen else {})
        for i in range(4)
    ]
    data = _rows(tmp_path / "long.jsonl", rows)
    cfg = tiny_cfg(bert_dir, tmp_path / "out", data=data, truncation="right", max_steps=1)
    cfg.objective, cfg.freeze_backbone = objective, frozen
    with pytest.raises(DataError, match="all 4 preference pairs have two sides with the same"):
        train(cfg)
    assert not (tmp_path / "out" / "model.safetensors").exists()
    # one pair that differs is enough to train (the others are counted in the warning)
    rows[0].update(prompt="short", rejected=BAD[0])
    cfg.data = _rows(tmp_path / "mixed.jsonl", rows)
    cfg.output_dir = str(tmp_path / "out2")
    assert train(cfg).data["train"]["pairs"] == 4


# --- 2: prompts beyond the policy's context ----------------------------------------------------
def test_bon_refuses_prompts_beyond_the_policys_context(policy_dir, tmp_path):
    """A 430-token prompt to a 256-position policy was answered with noise, without a word."""
    from rewardkit.inference.generate import GenerationConfig, Policy

    data = _rows(
        tmp_path / "p.jsonl",
        [{"id": "ok", "prompt": "Hi"}, {"id": "long", "prompt": " ".join(["word"] * 400)}],
    )
    out = tmp_path / "bon.jsonl"
    code, text = _cli(
        "bon", "--data", data, "--out", out, "-r", "rule:length", "--n", "2",
        "--policy", policy_dir, "--max-new-tokens", "3", "--no-progress", "--threads", "1",
    )  # fmt: skip
    assert code == 2, text
    assert "1 of 2 prompts do not fit" in text and "'long'" in text and "256 tokens" in text
    assert not out.exists()  # refused before any prompt was generated
    pol = Policy(str(policy_dir), GenerationConfig(max_new_tokens=250, threads=1))
    assert pol.context == 256
    assert "+ max_new_tokens 250 exceed" in pol.overflow([user("Hi there, how are you")])
    with pytest.raises(ValueError, match="prompt too long"):
        pol.sample([user("Hi there, how are you")], 2)


# --- 3: repeated prompts -----------------------------------------------------------------------
def _row(rid: str, texts: list[str], scores: list[float]) -> dict:
    return {
        "id": rid,
        "prompt": [user("q")],
        "reference": None,
        "candidates": [{"text": t, "score": s} for t, s in zip(texts, scores, strict=True)],
    }


def test_repeated_prompts_are_warned_and_their_pairs_written_once(policy_dir, tmp_path):
    """Two rows with the same prompt (no id) got the same seeded candidates and wrote the same
    pair twice, silently."""
    rows = [_row("a", ["x", "y"], [2.0, 1.0]), _row("b", ["x", "y"], [2.0, 1.0])]
    assert len(mine_from_rows(rows)) == 1
    from rewardkit.inference.run import repeated_prompts

    items = [PromptItem("1", [user("q")]), PromptItem("2", [user("q")], "ref")]
    assert repeated_prompts([*items, PromptItem("3", [user("q")])]) == ["3"]
    data = _rows(tmp_path / "p.jsonl", [{"prompt": "Hi"}, {"prompt": "Hi"}])
    code, text = _cli(
        "bon", "--data", data, "--out", tmp_path / "o.jsonl", "-r", "rule:length", "--n", "2",
        "--policy", policy_dir, "--max-new-tokens", "3", "--no-progress", "--threads", "1",
        "--pairs-out", tmp_path / "pairs.jsonl",
    )  # fmt: skip
    assert code == 0, text
    assert "1 of 2 prompts repeat an earlier prompt" in text
    summary = json.loads(text.strip().splitlines()[-1])
    lines = (tmp_path / "pairs.jsonl").read_text().splitlines()
    assert summary["pairs"] == len(lines) <= 1


# --- 4: --n 1 with --pairs-out, and a run that mines nothing ------------------------------------
def test_pairs_out_with_one_candidate_is_refused_before_anything_runs(tmp_path):
    data = _rows(tmp_path / "p.jsonl", [{"prompt": "Hi"}])
    out = tmp_path / "o.jsonl"
    code, text = _cli(
        "bon", "--data", data, "--out", out, "-r", "rule:length", "--n", "1",
        "--pairs-out", tmp_path / "pairs.jsonl", "--policy", tmp_path / "no-such-model",
    )  # fmt: skip
    assert code == 2 and "--pairs-out" in text and "--n 1" in text, text
    assert not out.exists()


def test_a_run_that_mines_no_pair_says_so(policy_dir, tmp_path):
    """rule:gsm8k without a reference scores NaN: 0 pairs were written without a word."""
    data = _rows(tmp_path / "p.jsonl", [{"prompt": "Hi"}])
    code, text = _cli(
        "bon", "--data", data, "--out", tmp_path / "o.jsonl", "-r", "rule:gsm8k", "--n", "2",
        "--policy", policy_dir, "--max-new-tokens", "3", "--no-progress", "--threads", "1",
        "--pairs-out", tmp_path / "pairs.jsonl",
    )  # fmt: skip
    assert code == 0, text
    assert "no pair mined from 1 prompts" in text
    assert json.loads(text.strip().splitlines()[-1])["pairs"] == 0


# --- 5: --instruction with message-list prompts --------------------------------------------------
def test_instruction_left_off_message_list_prompts_is_said(policy_dir, tmp_path):
    """--instruction went to text prompts only; message-list prompts lost it without a word."""
    data = _rows(
        tmp_path / "p.jsonl",
        [{"prompt": "2+2?"}, {"prompt": [{"role": "user", "content": "3+3?"}]}],
    )
    code, text = _cli(
        "bon", "--data", data, "--out", tmp_path / "o.jsonl", "-r", "rule:length", "--n", "2",
        "--policy", policy_dir, "--max-new-tokens", "3", "--no-progress", "--threads", "1",
        "--instruction", "End with #### <n>",
    )  # fmt: skip
    assert code == 0, text
    assert "1 of 2 prompts are message lists and are generated without it" in text
