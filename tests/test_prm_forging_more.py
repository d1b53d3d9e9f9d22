"""Forging process and token rewards, second round (probe prmforge): a padded response whose
wrong step falls past ``max_length`` is a *failed* PRM row (never "does not apply", which
composites dropped and rescaled to the maximum); ProcessBench-style eval leaves out solutions
not every step of which has a score and exits 1 when none is left; token offsets under a
trimming template and around a lone surrogate; token tails cut by truncation counted and warned;
geomean without underflow; step text holding a blank line; byte tokens credited when the
character is complete; PRM800K trajectories with an unknown first error; a wrong ``tag=``."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from prm_helpers import tiny_llama_dir, word_tokenizer
from rewardkit.cli import app
from rewardkit.data import load
from rewardkit.errors import DataError
from rewardkit.evaluate.processbench import evaluate_steps, predict_first_error
from rewardkit.registry import load_reward
from rewardkit.results import failed_rows
from rewardkit.rewards.prm.conventions import QWEN_SYSTEM
from rewardkit.rewards.prm.steps import aggregate_steps
from rewardkit.types import Query, user

runner = CliRunner()
WORDS = [
    QWEN_SYSTEM,
    "Tom has 3 apples and buys 4 more . How many apples ?",
    "3 + 4 = 7 8 apples . so wrong The answer is \\boxed{7} a b c d",
    "Paris is the capital of France . Q ?",
]
Q = [user("Tom has 3 apples and buys 4 more . How many apples ?")]
HONEST = "3 + 4 = 7 apples .\n\nThe answer is \\boxed{7} ."
PADDED = ("so 7 apples . " * 20) + "\n\n3 + 4 = 8 wrong .\n\nThe answer is \\boxed{7} ."


@pytest.fixture(scope="module")
def prm_dir(tmp_path_factory):
    return tiny_llama_dir(tmp_path_factory.mktemp("prm"), word_tokenizer(WORDS), "token-cls", 1)


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory):
    """A causal LM whose chat template trims message content, as Llama 3's does."""
    tok = word_tokenizer(WORDS)
    tok.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] | trim }}<|end|>{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    tok.eos_token = "<|end|>"
    return tiny_llama_dir(tmp_path_factory.mktemp("lm"), tok, "causal", seed=9)


# --- 1: a cut row is a failure, in the PRM, in composites and in the adapters -------------------


def test_cut_row_fails_and_composites_mark_it_failed(prm_dir):
    prm = f"prm:{prm_dir}?max_length=64&progress=false"
    qs = [Query(Q, HONEST, reference="7"), Query(Q, PADDED, reference="7")]
    alone = load_reward(prm).score_full(qs)
    assert np.isfinite(alone.scores[0]) and math.isnan(alone.scores[1])
    assert alone.stats["steps_cut_rows"] == 1 and alone.stats["failed"] == 1
    rows = failed_rows(alone.stats, alone.scores)
    assert list(rows) == [1] and "truncation at max_length=64 cut 3 of its 3 steps" in rows[1]
    for spec in ({"weighted": {prm: 1.0, "rule:math": 1.0}}, {"ensemble": [prm, "rule:math"]}):
        res = load_reward(spec).score_full(qs)
        assert np.isfinite(res.scores[0]) and math.isnan(res.scores[1]), spec
        assert list(failed_rows(res.stats, res.scores)) == [1], spec  # was 2.0 / 1.0, not failed
    # cut=prefix (opted in) scores the steps the model saw; PADDED is cut before its first step,
    # so it has no prefix: a failed row (was NaN, not failed: `weighted` then scored it 2.0)
    part = Query(Q, "3 + 4 = 7 apples .\n\n" + PADDED, reference="7")
    prefix = load_reward(f"{prm}&cut=prefix").score_full([*qs, part])
    assert prefix.stats["steps_cut_rows"] == 2 and prefix.stats["failed"] == 1
    assert np.isfinite(prefix.scores[[0, 2]]).all() and math.isnan(prefix.scores[1])
    rows = failed_rows(prefix.stats, prefix.scores)
    assert list(rows) == [1] and "cut all 3 of its steps, so none was scored" in rows[1]
    assert prefix.scores[2] == pytest.approx(prefix.steps[2, 0])  # the one step it saw


def test_verl_reports_the_padded_row_failed_below_the_honest_one(prm_dir):
    from rewardkit.integrations.verl import compute_score_batch

    prm = f"prm:{prm_dir}?max_length=64&progress=false"
    extra = [{"question": Q[0]["content"]}] * 2
    honest, padded = compute_score_batch(
        ["gsm8k"] * 2,
        [HONEST, PADDED],
        ["7", "7"],
        extra,
        spec={"weighted": {prm: 1.0, "rule:math": 1.0}},
    )
    assert padded["failed"] == 1.0 and honest["failed"] == 0.0
    assert padded["score"] <= honest["score"]  # was 2.0 against 1.0003


def test_cut_nan_in_a_spec_builds(prm_dir):
    r = load_reward(f"prm:{prm_dir}?cut=nan&progress=false")  # the grammar reads it as NaN
    assert r.cut == "nan" and r.identity() == load_reward(f"prm:{prm_dir}").identity()
    with pytest.raises(ValueError, match="cut must be"):
        load_reward(f"prm:{prm_dir}?cut=inf")


# --- 2: ProcessBench-style eval on solutions that are not fully scored ---------------------------


def _step_records(n=12, long_every=0):
    out = []
    for i in range(n):
        first = -1 if i % 2 == 0 else i % 3
        long = long_every and i % long_every == 0
        problem = ("Tom has 3 apples " * 12) if long else "Tom has 3 apples"
        labels = [1 if first < 0 or j < first else -1 for j in range(3)]
        out.append(
            {
                "id": f"gsm8k-{i}",
                "problem": problem,
                "steps": ["a b", "c d", "so"],
                "labels": labels,
            }
        )
    return out


def _eval(tmp_path, spec, records):
    data = tmp_path / "pb.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "run"
    args = ["eval", "--data", str(data), "-r", spec, "--out", str(out), "--no-cache"]
    return runner.invoke(app, [*args, "--no-progress", "--no-html"]), out


def test_eval_exits_1_when_no_solution_is_fully_scored(tmp_path, prm_dir):
    spec = f"prm:{prm_dir}?max_length=24&truncation=right"
    res, out = _eval(tmp_path, spec, _step_records())
    assert res.exit_code == 1, res.output  # was: exit 2, numpy's "argmax of an empty sequence"
    assert "argmax" not in res.output
    assert f"error: {spec}: no solution has every step scored" in res.output
    assert "(first: gsm8k-0: truncation at max_length=24" in res.output
    got = json.loads((out / "report.json").read_text())["rewards"][0]
    assert got["n_excluded"] == 12 and got["first_excluded"].startswith("gsm8k-0: ")
    assert "| 12 |" in (out / "report.md").read_text()


def test_eval_excludes_cut_solutions_instead_of_crediting_them(tmp_path, prm_dir):
    spec = f"prm:{prm_dir}?max_length=40&truncation=right"
    res, out = _eval(tmp_path, spec, _step_records(16, long_every=2))  # even ids: cut
    assert res.exit_code == 0, res.output
    assert "8 of 16 solutions excluded, not every step scored (first: gsm8k-0:" in res.output
    got = json.loads((out / "report.json").read_text())["rewards"][0]
    assert got["n_excluded"] == 8
    # only the odd ids (8 solutions, all with a wrong step) are counted; no correct one is left
    # to be credited (every correct one was cut and scored "no error found" = right before)
    assert got["dev"]["n_correct"] + got["test"]["n_correct"] == 0
    assert got["dev"]["n_error"] + got["test"]["n_error"] == 8
    assert got["official"]["all"]["n_error"] + got["official"]["all"]["n_correct"] == 8


def test_pure_exclusion_and_an_empty_step_array():
    assert predict_first_error(np.zeros((3, 0)), 0.5).tolist() == [-1, -1, -1]
    steps = np.array([[0.9, 0.2], [0.9, np.nan], [0.9, 0.9], [0.1, 0.9]])
    res = evaluate_steps(steps, [1, -1, -1, 0], complete=[True, False, True, True], seed=0)
    assert res["n_excluded"] == 1
    n = sum(res[k]["n_error"] + res[k]["n_correct"] for k in ("dev", "test"))
    assert n == 3
    none = evaluate_steps(np.zeros((2, 0)), [1, -1], complete=[False, False])
    assert none["n_excluded"] == 2 and math.isnan(none["test"]["f1"])


# --- 3, 5, 6: token offsets and truncated token tails -------------------------------------------


def test_offsets_under_a_trimming_template(lm_dir):
    r = load_reward(f"dpo-tokens:{lm_dir}?progress=false")
    for text in ("Paris is the capital", "\n\n  Paris is the capital  "):
        o = r.score_full([Query([user("Q ?")], text)]).tokens.offsets[0]
        o = o[o[:, 0] >= 0]
        assert [text[s:e] for s, e in o] == ["Paris", "is", "the", "capital", ""], repr(text)


def test_offsets_around_a_lone_surrogate(lm_dir):
    r = load_reward(f"dpo-tokens:{lm_dir}?use_chat_template=false&progress=false")
    text = "Paris\ud800is the capital"
    o = r.score_full([Query([user("Q ?")], text)]).tokens.offsets[0]
    o = o[o[:, 0] >= 0]
    assert [text[s:e] for s, e in o] == ["Paris", "\ud800", "is", "the", "capital", ""]


def test_token_tail_cut_by_truncation_is_counted_and_warned(lm_dir):
    from rewardkit.integrations.token_level import TokenRewardFunc
    from rewardkit.models.loading import load_tokenizer

    spec = f"dpo-tokens:{lm_dir}?use_chat_template=false&max_length=16&truncation=right"
    r = load_reward(f"{spec}&progress=false")
    text = "Paris is the capital . " * 4  # 20 words, 16 tokens of room with the prompt
    res = r.score_full([Query([user("Q ?")], text), Query([user("Q ?")], "Paris")])
    scored = int((~np.isnan(res.tokens.values[0])).sum())
    assert res.stats["response_cut_rows"] == 1 and res.stats["tokens_cut"] == 21 - scored
    tok = load_tokenizer(str(lm_dir))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vals, _ = TokenRewardFunc(r, tok)(prompts=["Q ?", "Q ?"], completions=[text, "Paris"])
    said = [str(w.message) for w in caught if "cut by truncation" in str(w.message)]
    assert (
        said
        and f"1 of 2 responses were cut by truncation (max_length): their {20 - scored}" in said[0]
    )
    assert np.count_nonzero(vals) == scored


# --- 4: geomean -----------------------------------------------------------------------------------


def test_geomean_does_not_underflow():
    assert aggregate_steps([0.3] * 700, "geomean") == pytest.approx(0.3)
    assert aggregate_steps([0.01] * 200, "geomean") == pytest.approx(0.01)
    assert aggregate_steps([0.9, 0.6, 0.95], "geomean") == pytest.approx(0.800520, abs=1e-6)
    assert aggregate_steps([0.9, 0.0, 0.95], "geomean") == 0.0
    assert math.isnan(aggregate_steps([0.9, -0.1], "geomean"))


# --- 7: steps holding a blank line ----------------------------------------------------------------


def test_given_steps_with_a_blank_line_fail_the_row(prm_dir):
    r = load_reward(f"prm:{prm_dir}?progress=false")
    text = "a b\n\nc d\n\nso"
    merged = Query(Q, text, meta={"steps": ["a b\n\nc d", "so"]})
    split = Query(Q, text, meta={"steps": ["a b", "c d", "so"]})
    res = r.score_full([merged, split])
    assert math.isnan(res.scores[0]) and np.isfinite(res.scores[1])  # merged scored 0.96 before
    assert "meta steps[0] holds a blank line" in failed_rows(res.stats, res.scores)[0]


def test_step_data_with_a_blank_line_is_a_located_error(tmp_path):
    rows = [
        {"problem": "p", "steps": ["s1", "s2"], "label": -1},
        {"problem": "p", "steps": ["s1", "s2\n \ns3"], "label": 1},
    ]
    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match=r"line 2, field 'steps\[1\]': .*holds a blank line"):
        load(path)


# --- 8: byte tokens -------------------------------------------------------------------------------


def test_a_character_generated_byte_by_byte_is_credited_to_its_last_byte():
    from rewardkit.models.loading import load_tokenizer, resolve_model
    from rewardkit.rewards.token_align import align_offsets, offsets_of_ids

    tok = load_tokenizer(resolve_model("smollm2").source)
    # GPT-2 byte-to-unicode: the bytes of 👍 (F0 9F 91 8D) as four single-byte tokens
    byte_tokens = {0xF0: "ð", 0x9F: "Ł", 0x91: "ĳ", 0x8D: "į"}
    ids = tok("ok", add_special_tokens=False)["input_ids"]
    ids += [tok.convert_tokens_to_ids(byte_tokens[b]) for b in "👍".encode()]
    ids += tok(" fine", add_special_tokens=False)["input_ids"]
    text, spans = offsets_of_ids(tok, ids)
    assert text == "ok👍 fine"
    assert spans[1:5].tolist() == [[2, 2], [2, 2], [2, 2], [2, 3]]  # was (2,3) on the 1st byte
    got = align_offsets([1.0, 10.0, 100.0], [[0, 2], [2, 3], [3, 8]], spans)
    assert got.tolist() == [1.0, 0.0, 0.0, 0.0, 10.0, 100.0]


# --- 9, 10: PRM800K, Math-Shepherd, a wrong tag -------------------------------------------------


def _prm800k(ratings, finish, last_chosen=None):
    steps = []
    for k, r in enumerate(ratings):
        comps = [{"text": f"step {k}", "rating": r}]
        steps.append({"completions": comps, "human_completion": None, "chosen_completion": 0})
    steps[-1]["chosen_completion"] = last_chosen
    steps[-1]["completions"] = [{"text": "x", "rating": 0}, {"text": "y", "rating": 1}]
    return {
        "question": {"problem": "What is 2 + 3?"},
        "label": {"steps": steps, "finish_reason": finish},
    }


@pytest.mark.parametrize(
    ("finish", "message"),
    [
        ("found_error", "'found_error' but no step taken is rated -1"),
        ("give_up", "'give_up'"),
        ("solution", "no completion to take"),
    ],
)
def test_prm800k_trajectory_with_unknown_first_error_is_refused(tmp_path, finish, message):
    path = tmp_path / "p.jsonl"
    ok = _prm800k((1, 1, 1), "solution", last_chosen=1)
    path.write_text(json.dumps(ok) + "\n" + json.dumps(_prm800k((1, 1, 0), finish)) + "\n")
    with pytest.raises(DataError, match="line 2") as err:  # loaded as correct solutions before
        load(path)
    assert message in str(err.value)
    with pytest.warns(UserWarning, match="skipped 1 malformed"):
        (kept,) = load(path, on_error="skip")
    assert kept.meta["first_error"] == -1 and kept.meta["steps"][-1] == "y"


def test_prm800k_give_up_after_a_wrong_step_keeps_its_first_error(tmp_path):
    rec = _prm800k((1, -1, 0), "give_up")
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(rec) + "\n")
    (ex,) = load(path)
    assert ex.meta["first_error"] == 1 and ex.meta["step_labels"] == [1, -1]


def test_shepherd_tag_letters_inside_a_word_are_text(tmp_path):
    rec = {
        "input": "Ники has 2 apples. How many? Step 1: 2 ки\nStep 2: The answer is 2 ки",
        "label": "Ники has 2 apples. How many? Step 1: 2 +\nStep 2: The answer is 2 -",
    }
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps(rec, ensure_ascii=False) + "\n")
    (ex,) = load(path)  # was: "no 'Step 1:' after a question"
    assert ex.prompt[0]["content"] == "Ники has 2 apples. How many?"
    assert ex.meta["steps"] == ["Step 1: 2", "Step 2: The answer is 2"]
    assert ex.meta["first_error"] == 1


def test_a_tag_the_template_writes_itself_is_refused_at_build(prm_dir):
    with pytest.raises(ValueError, match=r"step tag '<\|end\|>' is read 2 times") as err:
        load_reward(f"prm:{prm_dir}?tag=<|end|>")
    assert "set tag=" in str(err.value)
