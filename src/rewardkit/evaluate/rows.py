"""The row model of the reports: what every report shows, as plain values, before any format.

A :class:`Table` is one analysis as title, columns, rows of cell strings and a note; a
:class:`SummaryRow` is one line of the main score table. The cell formatters and the notes
live here once; the renderers (Markdown and terminal in :mod:`.report`, HTML in
:mod:`.htmlreport`) only lay these values out."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from rewardkit.evaluate.lengthbias import MIN_CORRELATION_N
from rewardkit.evaluate.result import EvalResult, GroupScore, RewardResult
from rewardkit.evaluate.safetext import code_span
from rewardkit.types import failed_items, failed_values, failure_note, failure_outcome

#: Fewer bootstrap resamples than this get a note: their percentile CIs are too rough to read
#: (``--n-boot 1`` gives a "95% CI" that is one resample, which may miss its own score).
MIN_STABLE_N_BOOT = 100


class Table(NamedTuple):
    """One analysis of a report: ``rows`` hold one cell string per column; ``note`` (may be
    empty) says how to read it."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass(frozen=True)
class SummaryRow:
    """One line of the score table: a section (bold) or subset, its evaluable examples and one
    cell per reward."""

    label: str
    n: int
    cells: list[str]
    bold: bool


def fmt(x: Any, pct: bool = False, nd: int = 3) -> str:
    """An analysis cell: ``–`` for None/NaN, ``yes``/``no``, ints as is, floats with ``nd``
    decimals or (``pct``) in percent with one."""
    if x is None or isinstance(x, str) or (isinstance(x, float) and not math.isfinite(x)):
        return "–" if x is None or isinstance(x, float) else str(x)
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    return f"{100 * x:.1f}" if pct else f"{x:.{nd}f}"


#: What the AUROC columns of the ratings table are (0/1 attributes: unpaired preference data).
AUROC_NOTE = (
    " AUROC (0/1 attributes): the share of (label 1, label 0) response pairs the reward orders "
    "right, a tie counting half; within prompt: only pairs answering the same prompt, the "
    "pairwise accuracy of unpaired preference data."
)


def auroc_cells(c: dict[str, Any]) -> list[str]:
    """The AUROC cells of one rated attribute (``–`` where it is not a 0/1 label)."""
    if "auroc" not in c:
        return ["–", "–"]
    pairs = fmt(c.get("pairs_within_prompt"))
    return [fmt(c["auroc"]), f"{fmt(c.get('auroc_within_prompt'))} ({pairs})"]


def fmt_ci(score: float, ci: Sequence[float]) -> str:
    """``71.4 [58.2, 83.1]`` in an analysis table (every part shown, ``–`` where undefined)."""
    return f"{fmt(score, True)} [{fmt(ci[0], True)}, {fmt(ci[1], True)}]"


def value_ci(x: Any, ci: Any) -> str:
    """``0.812 [0.104, 0.991]``: a statistic (three decimals) and its CI; the statistic alone
    where the CI is missing or undefined (``–`` for an undefined statistic)."""
    ok = isinstance(ci, list | tuple) and len(ci) == 2 and all(fmt(v) != "–" for v in ci)
    return f"{fmt(x)} [{fmt(ci[0])}, {fmt(ci[1])}]" if ok and fmt(x) != "–" else fmt(x)


def _pct(x: float) -> str:
    return "–" if x is None or math.isnan(x) else f"{100 * x:.1f}"


#: Fewer valid outcomes than this: a cell shows its score without a CI (resampling one value
#: gives the zero-width "CI" [x, x], which is no statement of uncertainty).
MIN_CI_N = 2


def format_cell(score: float, ci: tuple[float, float], n: int | None = None) -> str:
    """``71.4 [58.2, 83.1]``: a score and its CI in percent; ``–`` when undefined; the score
    alone when the CI is undefined or rests on fewer than :data:`MIN_CI_N` outcomes (``n``)."""
    if score is None or math.isnan(score):
        return "–"
    lo, hi = ci
    if lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
        return _pct(score)
    if n is not None and n < MIN_CI_N:
        return _pct(score)
    return f"{_pct(score)} [{_pct(lo)}, {_pct(hi)}]"


def ci_n(r: RewardResult, section: str | None = None) -> int:
    """The most outcomes that one scored subset behind a cell holds (``section`` None: the
    Score): the bootstrap resamples within subsets, so with at most one outcome in each it
    cannot vary and its interval is no CI."""
    return max(
        (
            g.n
            for g in r.subsets.values()
            if (section is None or g.section == section) and g.weight != 0
        ),
        default=0,
    )


def paired_n(c: dict[str, Any]) -> int | None:
    """How many examples both rewards of a comparison have an outcome on (None: an older report
    that does not say)."""
    n = (c.get("outcomes_bootstrap") or {}).get("n")
    return n if isinstance(n, int) and not isinstance(n, bool) else None


def sign_cell(c: dict[str, Any]) -> str:
    """``+12 / −3 (p 0.0352)``: examples whose outcome is higher for A / for B, and the exact
    sign test's p (older reports without a sign test: –; no example with both outcomes: no
    test)."""
    st = c.get("sign_test")
    if not isinstance(st, dict):
        return "–"
    if paired_n(c) == 0:
        return "– (no example has both outcomes)"
    return f"+{st['pos']} / −{st['neg']} (p {p_text(st['p_value'])})"


def mcnemar_cells(c: dict[str, Any]) -> list[str]:
    """``b / c`` and McNemar's p; ``–`` where no example has a 0/1 outcome from both rewards
    (the test does not apply: tie credit, or nothing paired)."""
    mc = c["mcnemar"]
    if mc.get("n") == 0 or paired_n(c) == 0:
        return ["–", "– (no 0/1 pair)"]
    return [f"{mc['b']} / {mc['c']}", p_text(mc["p_value"])]


def ci_outcomes(r: RewardResult | None) -> int | None:
    """How many outcomes the Score's CI of ``r`` rests on, by the score table's rule (None when
    the report keeps no examples, or the column is not found)."""
    return min(valid_outcomes(r), ci_n(r)) if r is not None and r.examples else None


def score_ci_text(score: float, ci: Any, outcomes: int | None) -> str:
    """``71.4 [58.2, 83.1]``; the score alone when its CI rests on fewer than
    :data:`MIN_CI_N` outcomes (a bootstrap of one value is the zero-width [x, x])."""
    if outcomes is not None and outcomes < MIN_CI_N:
        return fmt(score, True)
    return fmt_ci(score, ci)


def few_points_note(counts: Sequence[Any], what: str) -> str:
    """The sentence saying why a correlation prints ``–``: the ``counts`` (points behind each
    correlation of a table) below :data:`~.lengthbias.MIN_CORRELATION_N`, "" when none is.
    Names stay out: a table note is written as it is."""
    few = sorted({n for n in counts if isinstance(n, int) and n < MIN_CORRELATION_N})
    if not few:
        return ""
    return (
        f" –: fewer than {MIN_CORRELATION_N} {what} (n = {', '.join(map(str, few))}), where a "
        "correlation is ±1 or undefined whatever the reward does; report.json keeps null and n."
    )


def p_text(p: Any, n_boot: int | None = None, nd: int = 4) -> str:
    """A p-value: ``< 0.0001`` below what ``nd`` decimals show (never ``0.0000``); a bootstrap
    p of 0 (no replicate crossed 0) as ``< 2/n_boot``, the least it can resolve."""
    if not isinstance(p, int | float) or isinstance(p, bool) or not math.isfinite(p):
        return "–"
    if p == 0 and n_boot:
        return f"< {2 / n_boot:.2g}"
    floor = 10.0**-nd
    return f"< {floor:.{nd}f}" if p < floor else fmt(float(p), nd=nd)


def _cell(g: GroupScore | None, row_n: int, ci_outcomes: int) -> str:
    """A score cell; its own n beside it when it differs from the row's (a reward that scored
    NaN on some examples)."""
    if g is None:
        return "–"
    cell = format_cell(g.score, g.ci, min(g.n, ci_outcomes))
    return cell if g.n == row_n or cell == "–" else f"{cell} (n={g.n})"


def valid_outcomes(r: RewardResult) -> int:
    """How many examples of a column have an outcome (the values behind its Score)."""
    return sum(e.outcome is not None for e in r.examples)


def _shown(score: Any) -> bool:
    """Whether a cell prints a score (a NaN one, e.g. a section the weighting does not score,
    prints ``–``: it has no CI to leave out)."""
    return isinstance(score, int | float) and math.isfinite(score)


def _few_for_ci(result: EvalResult) -> bool:
    """Whether some cell prints its score without a CI because it rests on fewer than
    :data:`MIN_CI_N` outcomes (by the rules of :func:`summary_rows`); unscored cells do not."""
    for r in result.rewards:
        if any(_shown(g.score) and g.n < MIN_CI_N for g in r.subsets.values()):
            return True
        if any(
            _shown(g.score) and min(g.n, ci_n(r, sec)) < MIN_CI_N for sec, g in r.sections.items()
        ):
            return True
        if r.examples and _shown(r.score) and min(valid_outcomes(r), ci_n(r)) < MIN_CI_N:
            return True
    return False


def _row_n(groups: list[GroupScore | None], fallback: int) -> int:
    """The n column: evaluable examples with a non-NaN outcome, the most any reward has (each
    reward's own n is shown beside a cell that differs)."""
    ns = [g.n for g in groups if g is not None]
    return max(ns) if ns else fallback


def _score_cell(r: RewardResult, row_n: int) -> str:
    """The Score cell of ``r``; its own n beside it when it scored fewer examples than the
    row's n (as in the section and subset rows)."""
    cell = format_cell(r.score, r.ci, min(valid_outcomes(r), ci_n(r)) if r.examples else None)
    return cell if r.n_scored == row_n or cell == "–" else f"{cell} (n={r.n_scored})"


def summary_rows(result: EvalResult) -> list[SummaryRow]:
    """Sections (bold) with their subsets beneath, then the final Score row. A section that is
    one subset of the same name gets no sub-row, unless that subset is shown but not scored."""
    ds = result.dataset
    subsets = ds["subsets"]
    rows: list[SummaryRow] = []
    for sec in ds["section_order"]:
        members = [s for s in ds["subset_order"] if subsets[s]["section"] == sec]
        groups = [r.sections.get(sec) for r in result.rewards]
        n_sec = _row_n(groups, sum(subsets[s]["n_evaluable"] for s in members))
        cells = [_cell(g, n_sec, ci_n(r, sec)) for r, g in zip(result.rewards, groups, strict=True)]
        rows.append(SummaryRow(sec, n_sec, cells, bold=True))
        if members == [sec] and subsets[sec].get("weight") != 0:
            continue
        for sub in members:
            groups = [r.subsets.get(sub) for r in result.rewards]
            n_sub = _row_n(groups, subsets[sub]["n_evaluable"])
            cells = [_cell(g, n_sub, n_sub) for g in groups]
            rows.append(SummaryRow(sub, n_sub, cells, bold=False))
    n_all = max((r.n_scored for r in result.rewards), default=ds["n_evaluable"])
    cells = [_score_cell(r, n_all) for r in result.rewards]
    rows.append(SummaryRow("Score", n_all, cells, bold=True))
    return rows


def report_notes(result: EvalResult) -> list[str]:
    """The notes under the score table: rule, weights, ties, CI method, what was skipped and
    per-reward remarks (NaN, truncation, endpoint usage, position bias)."""
    st, ds = result.settings, result.dataset
    conf = round(100 * (1 - st["alpha"]))
    notes = [
        f"Rule: {st['benchmark_rule']} (benchmark {code_span(st['benchmark'])}).",
        "Section weights: "
        + (
            f"published RewardBench v1 example counts ({st['weights_source']})."
            if st["weighting"] == "published"
            else "number of evaluable examples in each subset that the reward scored (a NaN "
            "score carries no weight)."
        )
        + " A subset with no scored example drops out of its section.",
        f"Ties ({code_span(st['ties'])}): {st['tie_rule']}.",
        f"Cells: score in percent with its {conf}% CI ({st['ci_method']}; "
        f"n_boot={st['n_boot']}, seed={st['seed']}); n = evaluable examples with a non-NaN "
        "score (a reward's own n beside its cell where it differs).",
    ]
    if 0 < int(st.get("n_boot") or 0) < MIN_STABLE_N_BOOT:
        notes.append(
            f"n_boot={st['n_boot']} is under {MIN_STABLE_N_BOOT}: each CI rests on that few "
            "bootstrap resamples, so it is rough and may not even contain its score; rerun "
            "with --n-boot 1000 (the default) for CIs to read."
        )
    if _few_for_ci(result):
        notes.append(
            f"A cell resting on fewer than {MIN_CI_N} outcomes shows no CI, nor does a section "
            f"(or Score) whose scored subsets each hold fewer than {MIN_CI_N}: the bootstrap "
            "resamples within subsets, so it cannot vary there."
        )
    notes += [str(n) for n in st.get("notes", [])]
    dropped = ds.get("load_skipped") or {}
    if dropped.get("n"):
        notes.append(
            f"Dropped {dropped['n']} malformed record(s) (--on-error skip: at load time, or an "
            "image that could not be read when scored); "
            f"first: {dropped['first']}"
        )
    if ds.get("n_empty_responses"):
        notes.append(
            f"{ds['n_empty_responses']} example(s) have an empty response; it was scored like "
            "any other response (an empty reply is a reply)."
        )
    if ds.get("n_identical_choices"):
        notes.append(
            f"{ds['n_identical_choices']} example(s) have a chosen response identical to a "
            "rejected one: every reward ties there (its tie rule decides), whatever it is worth."
        )
    if ds["n_skipped"]:
        parts = ", ".join(f"{reason}: {n}" for reason, n in sorted(ds["skipped"].items()))
        notes.append(f"Skipped {ds['n_skipped']} of {ds['n_examples']} examples ({parts}).")
    elif not dropped.get("n"):
        notes.append(f"No example skipped ({ds['n_examples']} examples).")
    if st.get("benchmark") == "ratings":
        notes.append(
            "Ratings: a single rated response is no pair, so no accuracy is measured on it; the "
            "result is each reward's correlation with every rated attribute (Ratings "
            "correlations)."
        )
    for r in result.rewards:
        if r.n_nan:
            notes.append(f"{code_span(r.name)}: {r.n_nan} examples with a NaN score excluded.")
        empty = [s for s, g in r.sections.items() if g.n == 0]
        if empty and len(empty) < len(r.sections):
            notes.append(
                f"{code_span(r.name)}: no scored example in section(s) "
                f"{', '.join(code_span(s) for s in empty)}; its Score is the mean of the other "
                f"{len(r.sections) - len(empty)} section(s), not the benchmark's full Score."
            )
        if r.n_truncated:
            notes.append(
                f"{code_span(r.name)}: {r.n_truncated} rows truncated to the reward's max length."
            )
        usage = usage_note(r.name, r.stats)
        if usage:
            notes.append(usage)
        else:
            failed = failure_line(r)
            if failed:
                notes.append(failed)
        bias = r.position_bias
        if bias is not None and math.isnan(bias):  # no pair had a verdict in both orders
            notes.append(
                f"{code_span(r.name)} (pairwise judge, both orders averaged): position bias not measured "
                "(no pair got a verdict in both orders)."
            )
        elif bias is not None:
            notes.append(
                f"{code_span(r.name)} (pairwise judge, both orders averaged): the verdict flipped with the "
                f"order on {100 * bias:.1f}% of pairs (position bias)."
            )
    return notes


def failed_everywhere(result: EvalResult) -> list[tuple[str, str | None]]:
    """The rewards (specs, once each) that scored nothing, with their first error (None when
    none was recorded): some of their items failed and no example got a finite score from them.
    ``eval`` exits 1 for them, as ``score`` does when every row failed: the report then holds no
    real score of theirs."""
    found: dict[str, str | None] = {}
    for r in result.rewards:
        failed, errors = failed_items(r.stats)
        if r.reward in found or not failed:
            continue
        if not any(math.isfinite(s) for ex in r.examples for s in ex.scores):
            found[r.reward] = errors[0][1] if errors else None
    return list(found.items())


def failure_line(r: RewardResult) -> str | None:
    """One line on the responses of ``r`` that failed alone (NaN, excluded; or the number the
    reward gave them, kept), naming the first one's example and error; None when none failed
    (endpoint rewards say it in their usage line)."""
    failed, errors = failed_items(r.stats)
    if not failed:
        return None
    first = None
    if errors:
        index, error = errors[0]
        ends = np.cumsum([len(ex.scores) for ex in r.examples])
        k = int(np.searchsorted(ends, index, side="right"))
        where = f"example {r.examples[k].id}" if k < len(r.examples) else f"item {index}"
        first = f"{where}: {error}"
    n = sum(len(ex.scores) for ex in r.examples)
    values = failed_values(r.stats)
    excluded = (
        " (excluded)" if values == {None} else " (NaN ones excluded)" if None in values else ""
    )
    outcome = failure_outcome(values)
    return (
        f"{code_span(r.name)}: "
        + failure_note(failed, n, "responses", first, outcome)
        + excluded
        + "."
    )


def usage_note(name: str, stats: dict | None) -> str | None:
    """One line on what an endpoint reward's answers cost: token usage, cost, failed and
    unparsed answers — the same whether the answers came now or from the cache, failed answers'
    billed tokens included (per-call request and retry counts stay in report.json's ``run``);
    usage some answers did not report makes the counts a lower bound and the cost unknown.
    None without HTTP counters."""
    if not stats or "usage" not in stats:
        return None
    usage = stats.get("usage") or {}
    unreported = usage.get("unreported", 0)
    at_least = "at least " if unreported else ""
    line = (
        f"{code_span(name)}: answers used {at_least}{usage.get('prompt_tokens', 0)} prompt + "
        f"{usage.get('completion_tokens', 0)} completion tokens"
    )
    notes = [f"{unreported} answers reported no usage"] if unreported else []
    if stats.get("cost") is not None:
        notes.append(f"cost {stats['cost']:.6g}")
    elif "cost" in stats:  # a price table was given, but some usage is unknown
        notes.append("cost unknown")
    if notes:
        line += f" ({'; '.join(notes)})"
    missing = stats.get("logprobs_missing", 0)  # asked for, none came: text verdicts (1/0)
    tail = f", {missing} without logprobs (text verdicts)" if missing else ""
    return line + f"; {stats.get('failed', 0)} failed, {stats.get('unparsed', 0)} unparsed{tail}."
