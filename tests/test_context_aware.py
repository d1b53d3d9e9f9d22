"""Context-aware preferences (docs/methods/A11-context-aware.md): a row's criterion goes in front
of the prompt on every path (load, ``score``, ``eval``, training items), and ``eval`` reports
the accuracy with and without it and the reversal consistency over RPR-style pairs."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.data import load
from rewardkit.data.context import (
    DEFAULT_TEMPLATE,
    example_context,
    with_context,
    without_context,
)
from rewardkit.errors import DataError, SpecError
from rewardkit.evaluate import evaluate
from rewardkit.evaluate.context_use import (
    NO_REVERSAL,
    context_pairs,
    context_use_report,
    reversal_consistency,
    reversal_pairs,
    reversal_report,
)
from rewardkit.evaluate.report import summary_lines
from rewardkit.evaluate.tables import analysis_tables
from rewardkit.scoring import read_query_rows
from rewardkit.types import Capability, Example, PairwiseResult, Query, Reward

runner = CliRunner()
CONCISE = "A phone book for the internet."
DETAILED = (
    "DNS maps names to addresses: a resolver asks a root server, then the TLD server, then the "
    "domain's authoritative server, caching each answer for its TTL."
)
BREVITY, THOROUGH = "prefer brevity", "prefer thoroughness"
USER = [{"role": "user", "content": "Explain DNS."}]


def _rows(path: Path, rows: Sequence[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _rpr(path: Path) -> Path:
    """Two prompts, each pair under two contexts with opposite preferred responses (one through
    the ``criteria`` alias), and one pair without a context."""
    short_fix, long_fix = (
        "Restart it.",
        "Unplug it, wait ten seconds, plug it in and check the LED.",
    )
    return _rows(
        path,
        [
            {"prompt": "Explain DNS.", "chosen": CONCISE, "rejected": DETAILED, "criterion": BREVITY},
            {"prompt": "Explain DNS.", "chosen": DETAILED, "rejected": CONCISE, "criteria": THOROUGH},
            {"prompt": "Fix my router.", "chosen": short_fix, "rejected": long_fix, "criterion": BREVITY},
            {"prompt": "Fix my router.", "chosen": long_fix, "rejected": short_fix, "criterion": THOROUGH},
            {"prompt": "Say hi.", "chosen": "Hi!", "rejected": "Go away."},
        ],
    )  # fmt: skip


class ContextRule(Reward):
    """A deterministic context-aware rule: response length, negated under "prefer brevity"
    (read from the system message the loader puts in front; no context: longer is better)."""

    name = "rule:context-length"

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        def sign(q: Query) -> float:
            system = q.prompt[0]["content"] if q.prompt[0]["role"] == "system" else ""
            return -1.0 if "brevity" in str(system) else 1.0

        return np.array([sign(q) * len(str(q.response)) for q in queries], dtype=np.float64)


class ContextTable(Reward):
    """Fixed scores per (context line, response): the card's worked example."""

    name = "table"

    def __init__(self, table: dict[tuple[str, str], float]) -> None:
        self.table = table

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        return np.array([self.table[(q.prompt[0]["content"], q.response)] for q in queries])


# -- with_context: the one place a context enters a prompt -----------------------------------


def test_with_context_adds_or_merges_a_system_message_and_is_idempotent():
    line = "Evaluate with respect to: prefer brevity"
    got = with_context(USER, " prefer brevity ")
    assert got == [{"role": "system", "content": line}, *USER]
    assert with_context(got, BREVITY) == got  # applied twice: unchanged
    assert USER == [{"role": "user", "content": "Explain DNS."}]  # the input is not changed
    own = [{"role": "developer", "content": "Be kind."}, *USER]
    merged = with_context(own, BREVITY)
    assert merged[0] == {"role": "developer", "content": line + "\n\nBe kind."}
    assert with_context(merged, BREVITY) == merged
    assert without_context(merged, BREVITY) == own and without_context(got, BREVITY) == USER
    stacked = with_context(got, THOROUGH)  # another context goes in front of the first
    assert stacked[0]["content"].startswith("Evaluate with respect to: prefer thoroughness\n\n")
    parts = [{"role": "system", "content": [{"type": "text", "text": "Sys."}]}, *USER]
    assert without_context(with_context(parts, BREVITY), BREVITY) == parts
    custom = with_context(USER, "safety", template="Judge by {context} only.")
    assert custom[0]["content"] == "Judge by safety only."


@pytest.mark.parametrize("bad", ["", "   ", None, 3, ["prefer brevity"]])
def test_with_context_refuses_an_empty_or_non_text_context(bad):
    with pytest.raises(DataError, match="context text") as e:
        with_context(USER, bad)
    assert e.value.field == "criterion"


def test_a_template_without_its_placeholder_is_refused():
    with pytest.raises(SpecError, match=r"\{context\}"):
        with_context(USER, BREVITY, template="Evaluate carefully.")


# -- loading: the criterion field -------------------------------------------------------------


def test_rows_that_differ_only_by_criterion_are_different_items(tmp_path):
    ex = load(_rpr(tmp_path / "rpr.jsonl"))
    assert [e.meta.get("criterion") for e in ex] == [BREVITY, THOROUGH, BREVITY, THOROUGH, None]
    assert "criteria" not in ex[1].meta  # the alias is read as the criterion
    assert ex[0].prompt[0] == {
        "role": "system",
        "content": "Evaluate with respect to: prefer brevity",
    }
    assert ex[4].prompt == [{"role": "user", "content": "Say hi."}]
    assert [example_context(e) for e in ex] == [BREVITY, THOROUGH, BREVITY, THOROUGH, None]
    # the same response under two contexts: two queries, two cache keys
    concise = [q for e in ex[:2] for q in e.queries() if q.response == CONCISE]
    assert len({q.key() for q in concise}) == 2


def test_a_criterion_pair_with_a_subset_is_generic_and_other_formats_read_it(tmp_path):
    pair = {"prompt": "Q?", "chosen": "a", "rejected": "b", "subset": "s", "criteria": "c1"}
    (ex,) = load(_rows(tmp_path / "sub.jsonl", [pair]))  # RewardBench v1 would drop it
    assert ex.meta["format"] == "generic" and example_context(ex) == "c1" and ex.subset == "s"
    trl = {
        "chosen": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "a"}],
        "rejected": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "b"}],
        "system": "Be brief.",
        "preference_context": "c2",
    }
    (ex,) = load(_rows(tmp_path / "trl.jsonl", [trl]))
    assert ex.meta["format"] == "trl"
    assert ex.prompt[0]["content"] == "Evaluate with respect to: c2\n\nBe brief."
    kto = {"prompt": "Q?", "completion": "a", "label": True, "criterion": "c3"}
    (ex,) = load(_rows(tmp_path / "kto.jsonl", [kto]))
    assert ex.meta["format"] == "unpaired" and example_context(ex) == "c3"


def test_a_column_map_names_the_criterion_column(tmp_path):
    row = {"prompt": "Q?", "response_a": "a", "response_b": "b", "criteria_x": "cx"}
    cols = {"chosen": "response_a", "rejected": "response_b", "criterion": "criteria_x"}
    (ex,) = load(_rows(tmp_path / "rpr.jsonl", [row]), columns=cols)
    assert example_context(ex) == "cx" and ex.responses == ["a", "b"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("criterion", "", "expected a context text that is not empty, got an empty string"),
        ("criteria", "  ", "expected a context text that is not empty, got a whitespace-only"),
        ("criterion", 3, "expected a context text (the criterion"),
    ],
)
def test_a_bad_criterion_names_file_line_and_field(tmp_path, field, value, message):
    rows = [
        {"prompt": "Q?", "chosen": "a", "rejected": "b", "criterion": "fine"},
        {"prompt": "Q?", "chosen": "a", "rejected": "b", field: value},
    ]
    path = _rows(tmp_path / "rpr.jsonl", rows)
    with pytest.raises(DataError) as e:
        load(path)
    assert f"rpr.jsonl, line 2, field '{field}': {message}" in str(e.value)
    scored = [{"prompt": r["prompt"], "response": "a", **{k: r[k] for k in r if k == field}} for r in rows]  # fmt: skip
    src = _rows(tmp_path / "score.jsonl", scored)
    result = runner.invoke(app, ["score", "-r", "rule:length", "--data", str(src), "--out", str(tmp_path / "o.jsonl")])  # fmt: skip
    assert result.exit_code == 2 and "score.jsonl, line 2" in result.output
    assert f"field '{field}'" in result.output and message[:25] in result.output


def test_two_criterion_fields_in_one_row_are_refused_and_a_csv_blank_is_none(tmp_path):
    both = {"prompt": "Q?", "chosen": "a", "rejected": "b", "criterion": "c", "criteria": "s"}
    with pytest.raises(DataError, match="a second context field beside 'criterion'") as e:
        load(_rows(tmp_path / "two.jsonl", [both]))
    assert e.value.field == "criteria" and e.value.line == 1
    csv = tmp_path / "rpr.csv"
    csv.write_text("prompt,chosen,rejected,criterion\nQ?,a,b,c1\nQ?,a,b,\n", encoding="utf-8")
    assert [example_context(e) for e in load(csv)] == ["c1", None]


# -- score and train: the model sees it -----------------------------------------------------------


def test_score_rows_and_training_items_encode_the_criterion(tmp_path):
    from family_models import smollm_tokenizer
    from rewardkit.engine.encoding import encode_chat
    from rewardkit.train.collate import build_items
    from rewardkit.train.config import TrainConfig

    tok = smollm_tokenizer()
    src = _rows(
        tmp_path / "in.jsonl",
        [
            {"prompt": "Explain DNS.", "response": CONCISE},
            {"prompt": "Explain DNS.", "response": CONCISE, "criterion": BREVITY},
        ],
    )
    (_, plain), (row, ctx) = read_query_rows(src)
    assert row["criterion"] == BREVITY and "criterion" in ctx.meta  # the output row keeps it
    assert plain.key() != ctx.key()
    a, b = encode_chat(tok, [plain, ctx], 512, "left")
    assert a.input_ids != b.input_ids
    assert BREVITY not in tok.decode(a.input_ids) and BREVITY in tok.decode(b.input_ids)
    examples = load(_rpr(tmp_path / "rpr.jsonl"))[:2]
    items = build_items(examples, lambda qs: encode_chat(tok, qs, 512, "left"), TrainConfig())
    texts = [tok.decode(item.ids[0]) for item in items]
    assert BREVITY in texts[0] and THOROUGH in texts[1]


# -- the metric: worked example, grouping, report ---------------------------------------------------


def _worked() -> list[Example]:
    return [
        Example("c1", with_context(USER, BREVITY), [CONCISE, DETAILED], [0], meta={"criterion": BREVITY}),
        Example("c2", with_context(USER, THOROUGH), [CONCISE, DETAILED], [1], meta={"criterion": THOROUGH}),
    ]  # fmt: skip


def test_worked_example_reversal_consistency_is_one():
    ex = _worked()
    pairs = reversal_pairs(ex, context_pairs(ex))
    assert pairs == [(0, 1)]
    scores = {0: [2.0, 0.5], 1: [0.4, 1.1]}  # c1 prefers concise, c2 detailed: both right
    assert reversal_report(ex, scores, pairs) == {
        "n_pairs": 1,
        "n_nan": 0,
        "consistency": 1.0,
        "both_correct": 1.0,
    }
    rep = context_use_report(ex, scores, {0: [2.0, 0.5], 1: [2.0, 0.5]})
    assert rep["accuracy_with"] == 1.0 and rep["accuracy_without"] == 0.5
    assert rep["context_gain"] == 0.5 and "note" not in rep
    stuck = reversal_report(ex, {0: [2.0, 0.5], 1: [1.1, 0.4]}, pairs)  # never flips
    assert stuck["consistency"] == 0.0 and stuck["both_correct"] == 0.0
    wrong_way = reversal_report(ex, {0: [0.5, 2.0], 1: [1.1, 0.4]}, pairs)  # flips, both wrong
    assert wrong_way["consistency"] == 1.0 and wrong_way["both_correct"] == 0.0
    line = {c: DEFAULT_TEMPLATE.replace("{context}", c) for c in (BREVITY, THOROUGH)}
    table = ContextTable(
        {
            (line[BREVITY], CONCISE): 2.0,
            (line[BREVITY], DETAILED): 0.5,
            (line[THOROUGH], CONCISE): 0.4,
            (line[THOROUGH], DETAILED): 1.1,
        }
    )
    assert reversal_consistency(table, ex) == 1.0


def test_reversal_pairs_group_an_unordered_pair_under_two_contexts():
    def ex(i, c, responses, chosen, prompt=USER):
        return Example(str(i), with_context(prompt, c), responses, [chosen], meta={"criterion": c})

    other = [{"role": "user", "content": "Explain TCP."}]
    examples = [
        ex(0, "c1", [CONCISE, DETAILED], 0),
        ex(1, "c2", [DETAILED, CONCISE], 0),  # the same pair in the other order, reversed: 0–1
        ex(2, "c3", [CONCISE, DETAILED], 0),  # agrees with 0 (no reversal), reverses 1: 1–2
        ex(
            3, "c1", [DETAILED, CONCISE], 0
        ),  # the same context as 0: a contradiction, not a reversal
        ex(4, "c2", [CONCISE, "other"], 1),  # another pair of responses
        ex(5, "c2", [DETAILED, CONCISE], 0, other),  # another prompt
        ex(6, "c4", [CONCISE, CONCISE], 0),  # one response twice
    ]
    assert reversal_pairs(examples, context_pairs(examples)) == [(0, 1), (1, 2), (2, 3)]


def test_eval_reports_accuracy_with_and_without_the_context_and_reversals(tmp_path):
    examples = load(_rpr(tmp_path / "rpr.jsonl"))
    result = evaluate(examples, [ContextRule()], n_boot=20)
    rule, length = (r.analyses["context_use"] for r in result.rewards)
    assert rule["n_pairs"] == 4 and rule["n_contexts"] == 2 and rule["n_nan"] == 0
    assert (rule["accuracy_with"], rule["accuracy_without"]) == (1.0, 0.5)
    assert rule["reversal"] == {"n_pairs": 2, "n_nan": 0, "consistency": 1.0, "both_correct": 1.0}
    # the length baseline reads no context: the same accuracy either way, nothing flips
    assert (length["accuracy_with"], length["accuracy_without"]) == (0.5, 0.5)
    assert length["reversal"]["consistency"] == 0.0
    (table,) = [t for t in analysis_tables(result) if t.title == "Context use (A11)"]
    assert table.rows[0] == ["rule:context-length", "4", "100.0", "50.0", "50.0", "2", "100.0", "100.0"]  # fmt: skip
    lines = summary_lines(result)
    assert any("context acc 100.0 with / 50.0 without (n=4), reversal consistency 100.0 (n=2)" in s for s in lines)  # fmt: skip


def test_eval_without_criteria_has_no_context_analysis(tmp_path):
    rows = [{"prompt": "Q?", "chosen": "long answer", "rejected": "no"}]
    result = evaluate(load(_rows(tmp_path / "plain.jsonl", rows)), [ContextRule()], n_boot=20)
    assert all("context_use" not in r.analyses for r in result.rewards)
    assert not [t for t in analysis_tables(result) if t.title.startswith("Context use")]


def test_rewardkit_eval_prints_context_use_and_says_when_no_pair_reverses(tmp_path):
    src = _rows(
        tmp_path / "ctx.jsonl",
        [
            {"prompt": "Q?", "chosen": "a long answer", "rejected": "no", "criterion": THOROUGH},
            {"prompt": "R?", "chosen": "no", "rejected": "a long answer", "criterion": BREVITY},
        ],
    )
    out = tmp_path / "r"
    result = runner.invoke(app, ["eval", "-r", "rule:length", "--data", str(src), "--out", str(out), "--n-boot", "20"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "rule:length: " in result.output
    assert "context acc 50.0 with / 50.0 without (n=2), no reversal pairs" in result.output
    report = json.loads((out / "report.json").read_text())
    use = report["rewards"][0]["analyses"]["context_use"]
    assert use["note"] == NO_REVERSAL and use["reversal"]["n_pairs"] == 0
    assert use["reversal"]["consistency"] is None
    md = (out / "report.md").read_text()
    assert "## Context use (A11)" in md and "No reversal pairs" in md


# -- the embedded default classifier reads the context ------------------------------------------------


def test_the_embedded_classifier_scores_a_response_otherwise_under_each_context(tmp_path):
    from rewardkit.registry import load_reward

    reward = load_reward("classifier:minilm", progress=False, cache_dir=None)
    examples = load(_rpr(tmp_path / "rpr.jsonl"))[:2]
    concise = [q for e in examples for q in e.queries() if q.response == CONCISE]
    bare = Query(USER, CONCISE)
    s = reward.score([*concise, bare])
    assert len({float(v) for v in s}) == 3  # brevity, thoroughness, no context: three inputs
    result = evaluate(examples, [reward], n_boot=20)
    use = result.rewards[0].analyses["context_use"]
    assert use["n_pairs"] == 2 and use["reversal"]["n_pairs"] == 1
    assert not math.isnan(use["accuracy_without"])


class ContextJudge(Reward):
    """A pairwise judge that reads the context: P(a ≻ b) = 0.9 when ``a`` is the answer the
    context asks for (shorter under "brevity", else longer), 0.1 otherwise."""

    name = "judge:context"
    capabilities = frozenset({Capability.PAIRWISE})

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        return np.full(len(queries), np.nan)

    def compare_many(self, prompts, a, b) -> PairwiseResult:
        def p(prompt, x, y) -> float:
            brief = prompt[0]["role"] == "system" and "brevity" in prompt[0]["content"]
            return 0.9 if (len(x) < len(y)) == brief else 0.1

        got = np.array([p(*t) for t in zip(prompts, a, b, strict=True)])
        return PairwiseResult(p=got, p_forward=got, p_reverse=got)


class TwoObjectives(Reward):
    """Objective ``ctx``: the context rule; objective ``len``: length alone."""

    name = "two"
    objectives = ("ctx", "len")

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        lengths = np.array([len(str(q.response)) for q in queries], dtype=np.float64)
        return np.stack([ContextRule()._score(queries), lengths], axis=1)


def test_a_pairwise_judge_and_each_objective_get_their_context_use(tmp_path):
    examples = load(_rpr(tmp_path / "rpr.jsonl"))
    result = evaluate(examples, [ContextJudge(), TwoObjectives()], n_boot=20)
    use = {r.name: r.analyses["context_use"] for r in result.rewards}
    assert list(use) == ["judge:context", "two[ctx]", "two[len]", "rule:length"]
    for name in ("judge:context", "two[ctx]"):
        assert (use[name]["accuracy_with"], use[name]["accuracy_without"]) == (1.0, 0.5), name
        assert use[name]["reversal"]["consistency"] == 1.0, name
    assert (use["two[len]"]["accuracy_with"], use["two[len]"]["reversal"]["consistency"]) == (0.5, 0.0)  # fmt: skip
    assert reversal_consistency(ContextJudge(), examples) == 1.0
    assert math.isnan(reversal_consistency(ContextJudge(), examples[4:]))  # no reversal pair


def test_a_scenario_column_is_a_category_not_a_criterion(tmp_path):
    """Auto-J-style rows name a task category ``scenario``: it must not enter the prompt."""
    row = {"prompt": "Q?", "chosen": "a", "rejected": "b", "scenario": "code_generation"}
    (ex,) = load(_rows(tmp_path / "cat.jsonl", [row]))
    assert "criterion" not in ex.meta
    assert all("code_generation" not in str(m["content"]) for m in ex.prompt)
