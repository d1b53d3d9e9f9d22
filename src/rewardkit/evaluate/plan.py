"""What evaluation does with each example, the same for every reward: subsets and sections in
their published order, the chosen responses, why an example is skipped, the per-example rule
(best-of-k, all-correct, RM-Bench's style matrix, RewardBench 2 Ties) and the subset weights."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rewardkit.data.table import SCORING
from rewardkit.errors import DataError
from rewardkit.evaluate.benchmarks import (
    BENCHMARKS,
    POOLED_BENCHMARKS,
    PRIOR_SETS_SECTION,
    PRIOR_SETS_WEIGHTS,
    REWARDBENCH2_DOMAINS,
    detect_benchmark,
    rewardbench1_counts,
    rewardbench1_section_of,
    rewardbench1_section_weights,
    rewardbench1_sections,
    rewardbench1_weights,
)
from rewardkit.evaluate.ties import parse_ties_id
from rewardkit.types import Example

WEIGHTINGS = ("auto", "published", "actual")
#: RM-Bench domains in the published order.
RMBENCH_DOMAINS: tuple[str, ...] = SCORING["rm-bench"].sections or ()
#: Subset name used for examples without one (or with an empty or blank one).
NO_SUBSET = "all"
#: Their name instead when a subset of the data is itself called :data:`NO_SUBSET`.
UNNAMED_SUBSET = "(no subset)"


def unnamed_subset(named: set[str]) -> str:
    """The subset of the examples without one: :data:`NO_SUBSET`, or, when a subset in
    ``named`` (those of the data) is called that, :data:`UNNAMED_SUBSET` (numbered past any
    subset of that name): the two groups stay apart."""
    if NO_SUBSET not in named:
        return NO_SUBSET
    name, k = UNNAMED_SUBSET, 1
    while name in named:
        k += 1
        name = f"{UNNAMED_SUBSET} #{k}"
    return name


def subset_names(examples: Sequence[Example]) -> list[str]:
    """Each example's subset as reports name it: an empty or blank name is no name (a blank row
    label would hide the rows' source), and the examples without one are :func:`unnamed_subset`
    (``rewardkit data`` lists them by the same name)."""
    named = [ex.subset if ex.subset and ex.subset.strip() else None for ex in examples]
    unnamed = unnamed_subset({s for s in named if s is not None})
    return [unnamed if s is None else s for s in named]


TIE_RULES = {
    "half": "exact score ties count 1/m (pairs: 0.5) for a chosen response tied m ways for the "
    "top; with several chosen responses, 1/C(a+b, a) for a tied chosen and b tied rejected "
    "(RewardBench 2's Ties subset keeps its strict rule)",
    "strict": "exact score ties count 0 (reward-bench v1: correct iff strictly greater)",
}
#: Scoring name → the rule text reports print (from the benchmark table).
RULE_TEXT = {name: row.rule for name, row in SCORING.items()}


@dataclass
class Plan:
    """What evaluation does with each example; the same for every reward."""

    examples: list[Example]
    subset: list[str]
    section: list[str]
    chosen: list[list[int]]
    skip: list[str | None]
    rule: list[str]  # "best_of_k" | "all_correct" | "ties" | "skipped"
    offsets: np.ndarray
    subset_order: list[str]
    section_order: list[str]
    section_of: dict[str, str]
    subset_rule: dict[str, str]
    subset_index: dict[str, list[int]]  # evaluable (not skipped) examples of each subset
    weights: dict[str, float]
    benchmark: str
    weighting: str
    section_weights: dict[str, float] | None = None  # weight in the final score; None: all 1
    #: Subsets with a fixed (published) weight; every other subset weighs, for each reward, its
    #: evaluable examples with a non-NaN outcome (:func:`column_weights`).
    fixed: dict[str, float] | None = None


def skip_reason(ex: Example, chosen: list[int]) -> str | None:
    """Why an example has no outcome: too few responses, none chosen, or all chosen — a pair's
    labelled tie, or a pool of three or more whose every response is chosen (a best-of-N pool
    whose every candidate is correct: no tie was labelled there)."""
    if len(ex.responses) < 2:
        return "fewer than two responses"
    if not chosen:
        return "no chosen response"
    if ex.is_tie:
        return "labelled tie" if len(ex.responses) == 2 else "every response chosen"
    return None


def make_plan(examples: Sequence[Example], benchmark: str, weighting: str) -> Plan:
    if benchmark not in BENCHMARKS:
        raise ValueError(f"benchmark must be one of {BENCHMARKS}, got {benchmark!r}")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    examples = list(examples)
    if not examples:
        raise ValueError("evaluate needs at least one example")
    subsets = subset_names(examples)
    formats = [str(ex.meta.get("format", "")) for ex in examples]
    bench = detect_benchmark(subsets, formats) if benchmark == "auto" else benchmark

    rb1_section = dict(rewardbench1_section_of())
    if bench == "rewardbench1":
        rb1_section.update(dict.fromkeys(PRIOR_SETS_WEIGHTS, PRIOR_SETS_SECTION))
    section_of: dict[str, str] = {}
    sections: list[str] = []
    for ex, sub in zip(examples, subsets, strict=True):
        if bench == "rewardbench2":
            sec = sub
        else:
            sec = ex.meta.get("section") or rb1_section.get(sub) or sub
        sec = str(sec)
        if section_of.setdefault(sub, sec) != sec:
            raise DataError(
                f"example {ex.id!r}: subset {sub!r} is in sections {section_of[sub]!r} and "
                f"{sec!r}; a subset must belong to one section",
                field="meta.section",
            )
        sections.append(sec)

    chosen_all, skip, rules = [], [], []
    for ex in examples:
        chosen = sorted(set(int(i) for i in ex.chosen))
        if any(not 0 <= i < len(ex.responses) for i in chosen):
            raise DataError(
                f"example {ex.id!r}: chosen {ex.chosen} out of range for "
                f"{len(ex.responses)} responses",
                field="chosen",
            )
        reason = skip_reason(ex, chosen)
        chosen_all.append(chosen)
        skip.append(reason)
        if reason:
            rules.append("skipped")
        elif ex.meta.get("style_matrix") and len(ex.responses) == 6 and chosen == [0, 1, 2]:
            rules.append("style_matrix")
        else:
            rules.append("best_of_k" if len(chosen) == 1 else "all_correct")

    # Order: the published order for RB1/RB2, else order of first appearance.
    first_seen = list(dict.fromkeys(subsets))
    if bench == "rewardbench1":
        rank = {s: i for i, s in enumerate(rewardbench1_weights())}
        subset_order = sorted(
            first_seen, key=lambda s: (rank.get(s, len(rank)), first_seen.index(s))
        )
        sec_rank = {s: i for i, s in enumerate([*rewardbench1_sections(), PRIOR_SETS_SECTION])}
    elif bench == "rewardbench2":
        rank = {s: i for i, s in enumerate(REWARDBENCH2_DOMAINS)}
        subset_order = sorted(
            first_seen, key=lambda s: (rank.get(s, len(rank)), first_seen.index(s))
        )
        sec_rank = rank
    elif bench == "rm-bench":
        subset_order = first_seen
        sec_rank = {s: i for i, s in enumerate(RMBENCH_DOMAINS)}
    else:
        subset_order, sec_rank = first_seen, {}
    seen_secs = list(dict.fromkeys(section_of[s] for s in subset_order))
    section_order = sorted(
        seen_secs, key=lambda s: (sec_rank.get(s, len(sec_rank)), seen_secs.index(s))
    )

    # The RB2 Ties subset (ids "ref:<p>" / "tied:<p>") is scored by its own formula.
    subset_index: dict[str, list[int]] = {s: [] for s in subset_order}
    for i, (sub, reason) in enumerate(zip(subsets, skip, strict=True)):
        if reason is None:
            subset_index[sub].append(i)
    subset_rule: dict[str, str] = {}
    for sub in subset_order:
        idx = subset_index[sub]
        if (
            sub.lower() == "ties"
            and idx
            and all(parse_ties_id(examples[i].id) is not None for i in idx)
        ):
            subset_rule[sub] = "ties"
            check_unique_ties([examples[i].id for i in idx], sub)
            check_tied_rows([(examples[i].id, len(chosen_all[i])) for i in idx], sub)
            for i in idx:
                rules[i] = "ties"
        else:
            subset_rule[sub] = "mean"

    weights, fixed, weighting_used = plan_weights(
        bench, weighting, subset_order, section_of, subset_index
    )

    offsets = np.zeros(len(examples) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(ex.responses) for ex in examples])
    return Plan(
        examples=examples,
        subset=subsets,
        section=sections,
        chosen=chosen_all,
        skip=skip,
        rule=rules,
        offsets=offsets,
        subset_order=subset_order,
        section_order=section_order,
        section_of=section_of,
        subset_rule=subset_rule,
        subset_index=subset_index,
        weights=weights,
        benchmark=bench,
        weighting=weighting_used,
        section_weights=score_weights(bench, section_order, section_of, weights),
        fixed=fixed,
    )


def plan_weights(
    bench: str,
    weighting: str,
    subset_order: list[str],
    section_of: dict[str, str],
    subset_index: dict[str, list[int]],
) -> tuple[dict[str, float], dict[str, float], str]:
    """``(weights, fixed, weighting used)``: each subset's weight before scoring (evaluable
    examples, or the published count) and the subsets whose weight is published (fixed).

    RewardBench (v1): the published counts and the prior-set rule; a subset outside its table
    gets weight 0 (shown, not scored). M-RewardBench: published counts in sections made only of
    RewardBench subsets. Count weights are recounted per reward (:func:`column_weights`)."""
    counts = {s: float(len(subset_index[s])) for s in subset_order}
    if bench == "rewardbench1" and weighting != "actual":
        rb1 = rewardbench1_weights()
        fixed = {s: float(rb1.get(s, 0.0)) for s in subset_order}
        return fixed, fixed, "published"
    published = rewardbench1_counts()
    if bench == "m-rewardbench" and weighting == "auto":
        whole = {
            sec
            for sec in set(section_of.values())
            if all(s in published for s in subset_order if section_of[s] == sec)
        }
        fixed = {s: float(published[s]) for s in subset_order if section_of[s] in whole}
        return {**counts, **fixed}, fixed, "published" if fixed else "actual"
    if weighting == "published":
        missing = sorted(set(subset_order) - set(published))
        if missing:
            raise ValueError(f"weighting='published' but no published count for {missing}")
        fixed = {s: float(published[s]) for s in subset_order}
        return fixed, fixed, "published"
    return counts, {}, "actual"


def column_weights(
    plan: Plan, n_valid: dict[str, int]
) -> tuple[dict[str, float], dict[str, float] | None]:
    """One reward's ``(subset weights, section weights)``: published weights stay; any other
    subset weighs its ``n_valid`` outcomes (evaluable, score not NaN), so examples a reward
    could not score carry no weight. The pooled benchmarks (JudgeBench, Auto-J, PandaLM, MT-Bench
    human votes) weigh their sections by the same counts."""
    fixed = plan.fixed or {}
    weights = {s: fixed[s] if s in fixed else float(n_valid.get(s, 0)) for s in plan.subset_order}
    return weights, score_weights(plan.benchmark, plan.section_order, plan.section_of, weights)


def score_weights(
    bench: str,
    section_order: list[str],
    section_of: dict[str, str],
    subset_weights: dict[str, float],
) -> dict[str, float] | None:
    """Each section's weight in the final score; None: all 1 (the unweighted mean).

    RewardBench (v1): the prior sets count half (docs/methods/D1-rewardbench.md). JudgeBench,
    Auto-J, PandaLM and MT-Bench / Chatbot Arena human votes (:data:`POOLED_BENCHMARKS`): the
    published score is the accuracy over all pairs (JudgeBench's ``run_judge.py`` scores the
    ``""`` source prefix; Auto-J's Overall sums every scenario), so each section weighs its pairs
    (``subset_weights``: evaluable pair counts).
    """
    if bench == "rewardbench1":
        return rewardbench1_section_weights(section_order)
    if bench in POOLED_BENCHMARKS:
        counts = dict.fromkeys(section_order, 0.0)
        for sub, w in subset_weights.items():
            counts[section_of[sub]] += w
        return counts
    return None


def duplicate_ids(examples: Sequence[Example]) -> list[str]:
    """Ids that more than one example carries within one subset and language (RM-Bench repeats
    ids across domains, M-RewardBench across languages, by design), in order of first repeat."""
    seen: set[tuple[str | None, str | None, str]] = set()
    dups: dict[str, None] = {}
    for ex in examples:
        key = (ex.language, ex.subset, str(ex.id))
        if key in seen:
            dups[str(ex.id)] = None
        seen.add(key)
    return list(dups)


def check_unique_ties(ids: Sequence[str], subset: str) -> None:
    """A Ties prompt has at most one ``ref:`` and one ``tied:`` row (docs/methods/D2): a
    repeated one (a file read twice, two exports merged) is a DataError naming it, raised
    before anything is scored."""
    seen: set[str] = set()
    repeated: list[str] = []
    for row_id in ids:
        if row_id in seen and row_id not in repeated:
            repeated.append(row_id)
        seen.add(row_id)
    if repeated:
        shown = ", ".join(repr(r) for r in repeated[:5])
        more = f" and {len(repeated) - 5} more" if len(repeated) > 5 else ""
        raise DataError(
            f"subset {subset!r}: Ties row id(s) {shown}{more} appear more than once; each "
            "prompt has one 'ref:' and one 'tied:' row (is a file read twice?)"
        )


def check_tied_rows(rows: Sequence[tuple[str, int]], subset: str) -> None:
    """A ``tied:`` row of the Ties subset has at least two correct responses (docs/methods/D2):
    its ``dcm`` (spread of the correct scores) needs two. ``rows`` are ``(id, n chosen)``; the
    first short one is a DataError naming it, raised before anything is scored."""
    for row_id, n in rows:
        if str(row_id).startswith("tied:") and n < 2:
            raise DataError(
                f"subset {subset!r}: Ties row {row_id!r} has {n} chosen response; a 'tied:' "
                "row has at least two correct responses (num_correct >= 2)"
            )


def plan_notes(plan: Plan, requested: str) -> list[str]:
    """docs/methods/D1-rewardbench.md — what the report must say about how the rule was chosen:
    the prior sets' half weight, the pooled score of JudgeBench and the human-vote benchmarks, repeated example ids, a Ties
    subset without its published ids (so not scored by the Ties formula), and RewardBench
    subsets scored by the generic rule because other subset names are mixed in."""
    notes = []
    if plan.section_weights and PRIOR_SETS_SECTION in plan.section_weights:
        notes.append(
            f"{PRIOR_SETS_SECTION}: unweighted mean of anthropic_helpful, anthropic_hhh, shp and "
            "summarize (other prior sets shown, not scored); it counts half in the score "
            "(weights 2, 2, 2, 2, 1 as on the RewardBench leaderboard)."
        )
    unpublished = [s for s in plan.subset_order if s not in rewardbench1_weights()]
    if plan.benchmark == "rewardbench1" and plan.weighting == "published" and unpublished:
        rest = (
            "so the score is the leaderboard rule over the RewardBench subsets alone, with "
            "their published counts."
            if len(unpublished) < len(plan.subset_order)
            else "the data holds no RewardBench subset, so its sections and the Score are "
            "unscored (–), not too small for a CI; evaluate without --benchmark rewardbench1 "
            "to score them."
        )
        notes.append(
            f"Subsets {unpublished} are not RewardBench (v1) subsets: shown, not scored (weight "
            f"0); {rest}"
        )
    if plan.benchmark == "m-rewardbench" and plan.weighting == "published" and unpublished:
        notes.append(
            f"Subsets {unpublished} have no published RewardBench count: their sections weigh "
            "subsets by evaluable examples; the RewardBench sections keep the published counts."
        )
    if plan.benchmark == "judgebench":
        notes.append(
            "JudgeBench: the score is the accuracy over all pairs (categories weighted by their "
            "number of pairs), as JudgeBench reports Overall; not the mean of the categories."
        )
    elif plan.benchmark in POOLED_BENCHMARKS:
        what = {"autoj": "scenarios", "pandalm": "apps", "mt-bench-human": "turns"}
        notes.append(
            "Score: the agreement over all non-tie pairs (sections weighted by their number of "
            f"pairs); not the mean of the {what.get(plan.benchmark, 'sections')}."
            + (
                " Auto-J's own Overall also keeps the labelled ties in its denominator (right "
                "only where the reward ties): analyses.official."
                if plan.benchmark == "autoj"
                else ""
            )
        )
    dups = duplicate_ids(plan.examples)
    if dups:
        shown = ", ".join(repr(i) for i in dups[:5]) + (", …" if len(dups) > 5 else "")
        notes.append(
            f"{len(dups)} example id(s) occur more than once in the same subset and language "
            f"({shown}); every row is scored and counted: check the data for a file read twice."
        )
    plain_ties = [s for s, r in plan.subset_rule.items() if s.lower() == "ties" and r == "mean"]
    if plan.benchmark == "rewardbench2" and plain_ties:
        notes.append(
            f"Subset {plain_ties[0]!r} is scored as plain best-of-k accuracy, not by the "
            "RewardBench 2 Ties formula: that needs every row id to be 'ref:<prompt>' or "
            "'tied:<prompt>', as published."
        )
    if requested == "auto" and plan.benchmark == "generic":
        for name, known in (
            ("RewardBench (v1)", set(rewardbench1_weights())),
            ("RewardBench 2", set(REWARDBENCH2_DOMAINS)),
        ):
            ours = [s for s in plan.subset_order if s in known]
            other = [s for s in plan.subset_order if s not in known]
            if ours and other:
                notes.append(
                    f"Subsets {other} are not {name} subsets, so the {name} rule was not "
                    f"applied to {ours}: the generic rule (example-count weights) was."
                )
    return notes
