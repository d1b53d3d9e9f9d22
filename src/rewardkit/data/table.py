"""The benchmark table: every record format rewardkit reads and every set of scoring rules, once.

A :class:`Format` row names a format (``load(format=NAME)``), its converter, the field names that
identify it when a record is sniffed (keyed formats are tried in table order), and the scoring
rules ``evaluate`` applies to rows of that format (None: decided from the subsets, as for
RewardBench files). A :class:`Scoring` row names a set of rules, the text reports print for it and,
where it is fixed, the published order of its sections. The loaders' sniffing
(:mod:`rewardkit.data.sniff`), ``evaluate``'s benchmark detection, ordering and rule text, and the
CLI help are all generated from these two tables: a new benchmark is one row here plus its
converter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rewardkit.data import (
    autoj,
    community,
    generic,
    heldsets,
    hh_rlhf,
    judgebench,
    judgesets,
    mathbon,
    mrewardbench,
    mtbench,
    multimodal,
    pandalm,
    prd,
    prefsets,
    proxysets,
    published,
    ragrewardbench,
    ratings,
    rewardbench,
    rmb,
    rmbench,
    rpr,
    safetysets,
    steps,
    trl,
)
from rewardkit.data.record import Record
from rewardkit.types import Example


@dataclass(frozen=True)
class Format:
    """One record format."""

    name: str
    #: One record to its example (a list: formats whose record holds several, oasst trees).
    convert: Callable[[Record], Example | list[Example]]
    #: The scoring rules of rows in this format (a :class:`Scoring` name); None: from the subsets.
    scoring: str | None = None
    #: Field names that together identify the format when sniffing (empty: sniffed by shape).
    keys: tuple[str, ...] = ()
    #: For formats whose examples span records (oasst messages linked by ``parent_id``): a
    #: factory of the collector ``load`` feeds every record (``add``) and then asks for the
    #: examples (``finish`` → examples, errors).
    collect: Callable[[], Any] | None = None


@dataclass(frozen=True)
class Scoring:
    """One set of benchmark scoring rules."""

    name: str
    #: What the rules are, as reports print it.
    rule: str
    #: The published order of the sections (None: order of first appearance).
    sections: tuple[str, ...] | None = None


FORMATS: tuple[Format, ...] = (
    Format("generic", generic.convert),
    Format("trl", trl.convert),
    Format("hh-rlhf", hh_rlhf.convert),
    Format("rewardbench", rewardbench.convert_v1),
    Format("rewardbench2", rewardbench.convert_v2),
    Format("rm-bench", rmbench.convert, "rm-bench"),
    Format("rmb", rmb.convert, "rmb", ("conversation_input", "category_path")),
    Format("judgebench", judgebench.convert, "judgebench", ("response_A", "response_B", "label")),
    Format("autoj", autoj.convert, "autoj", ("response 1", "response 2", "label")),
    Format("pandalm", pandalm.convert, "pandalm", ("response1", "response2", "annotator1")),
    Format(
        "mt-bench-human",
        mtbench.convert,
        "mt-bench-human",
        ("conversation_a", "conversation_b", "winner"),
    ),
    Format("m-rewardbench", mrewardbench.convert, "m-rewardbench"),
    Format("rag-rewardbench", ragrewardbench.convert, "rag-rewardbench"),
    Format("math-bon", mathbon.convert, "best-of-n", ("response", "score", "pred_score")),
    Format(
        "prometheus-absolute",
        ratings.convert_prometheus,
        "ratings",
        ("instruction", "gpt4_score"),
    ),
    Format("prd-lfqa", prd.convert, "generic", ("answer_a", "answer_b", "overall_preference")),
    Format(
        "helpsteer2", ratings.convert_helpsteer2, "ratings", ("prompt", "response", "helpfulness")
    ),
    Format("unpaired", ratings.convert_unpaired, "ratings", ("prompt", "completion", "label")),
    Format(
        "beavertails",
        safetysets.convert_beavertails,
        "ratings",
        ("prompt", "response", "is_safe"),
    ),
    Format(
        "pku-saferlhf",
        community.convert_pku,
        "generic",
        ("response_0", "response_1", "better_response_id"),
    ),
    Format("pku-saferlhf-safer", community.convert_pku_safer, "generic"),
    Format(
        "shp", community.convert_shp, "generic", ("history", "human_ref_A", "human_ref_B", "labels")
    ),
    Format(
        "stack-exchange-paired",
        community.convert_stack_exchange_paired,
        "generic",
        ("question", "response_j", "response_k"),
    ),
    Format(
        "webgpt",
        community.convert_webgpt,
        "generic",
        ("question", "answer_0", "answer_1", "score_0", "score_1"),
    ),
    Format(
        "helpsteer2-preference",
        community.convert_helpsteer2_preference,
        "generic",
        ("response_1", "response_2", "preference_strength"),
    ),
    Format(
        "helpsteer3",
        community.convert_helpsteer3,
        "generic",
        ("context", "response1", "response2", "overall_preference"),
    ),
    Format(
        "ultrafeedback", community.convert_ultrafeedback, "generic", ("instruction", "completions")
    ),
    Format("nectar", community.convert_nectar, "generic", ("prompt", "answers", "num_responses")),
    Format(
        "summarize-from-feedback",
        published.convert_summarize,
        "generic",
        ("info", "summaries", "choice"),
    ),
    Format("summarize-axis", published.convert_summarize_axis, "ratings", ("info", "summary")),
    Format(
        "alpacafarm",
        published.convert_alpacafarm,
        "generic",
        ("instruction", "output_1", "output_2", "preference"),
    ),
    Format(
        "arena-human-preference",
        published.convert_arena,
        "generic",
        ("prompt", "response_a", "response_b", "winner_model_a"),
    ),
    Format(
        "math-step-dpo",
        prefsets.convert_math_step_dpo,
        "generic",
        ("prompt", "initial_reason_steps", "chosen", "rejected"),
    ),
    Format(
        "unified-feedback",
        prefsets.convert_unified_feedback,
        "generic",
        ("conv_A", "conv_B", "conv_A_rating", "conv_B_rating"),
    ),
    Format(
        "stack-exchange-preferences",
        prefsets.convert_stack_exchange_preferences,
        "generic",
        ("qid", "question", "answers"),
    ),
    Format(
        "codeultrafeedback",
        prefsets.convert_codeultrafeedback,
        "generic",
        ("instruction", "responses", "annotations"),
    ),
    Format("prmbench", prefsets.convert_prmbench, None, ("modified_process", "error_steps")),
    Format(
        "llmbar", judgesets.convert_llmbar, "generic", ("input", "output_1", "output_2", "label")
    ),
    Format(
        "offsetbias",
        judgesets.convert_offsetbias,
        "generic",
        ("instruction", "output_1", "output_2", "label"),
    ),
    Format(
        "evalbiasbench",
        judgesets.convert_evalbiasbench,
        "generic",
        ("instruction", "response1", "response2", "label"),
    ),
    Format(
        "judgelm",
        judgesets.convert_judgelm,
        "generic",
        ("question_body", "answer1_body", "answer2_body", "score"),
    ),
    Format(
        "prometheus-pairwise",
        judgesets.convert_prometheus_pairwise,
        "generic",
        ("chosen_instruction", "rejected_instruction"),
    ),
    Format("hhh-alignment", judgesets.convert_hhh_alignment, "generic", ("input", "targets")),
    Format(
        "oasst-messages",
        heldsets.convert_oasst_message,
        "generic",
        ("message_id", "parent_id", "role", "text"),
        heldsets.OasstMessages,
    ),
    Format("oasst", heldsets.convert_oasst_tree, "generic", ("message_tree_id", "prompt")),
    Format(
        "code-preference-pairs",
        heldsets.convert_code_preference_pairs,
        "generic",
        ("input", "accepted", "rejected"),
    ),
    Format(
        "ppe-human",
        proxysets.convert_ppe_human,
        "generic",
        ("prompt", "response_1", "response_2", "winner"),
    ),
    Format(
        "ppe-correctness",
        proxysets.convert_ppe_correctness,
        "best-of-n",
        ("prompt", "response_1", "scores"),
    ),
    Format(
        "preference-collection",
        proxysets.convert_preference_collection,
        "generic",
        ("orig_instruction", "orig_response_A", "orig_response_B"),
    ),
    Format(
        "rpr",
        rpr.convert_criteria,
        "generic",
        ("prompt", "response_a", "response_b", "criteria_x", "criteria_y"),
    ),
    Format("rpr-scenario", rpr.convert_scenario, "generic"),
    Format("t2i-pairs", multimodal.convert_t2i, "generic"),
    Format("image-edit", multimodal.convert_edit, "generic"),
    Format("mm-qa", multimodal.convert_mm_qa, "mm-rlhf"),
    Format("mmrb2", multimodal.convert_mmrb2, "mmrb2"),
    Format("steps", steps.convert),
)

SCORINGS: tuple[Scoring, ...] = (
    Scoring(
        "rewardbench1",
        "RewardBench v1: section = example-count-weighted mean of subset accuracies; "
        "score = unweighted mean of sections (with the prior preference sets: Prior Sets "
        "counts half, weights 2,2,2,2,1)",
    ),
    Scoring(
        "rewardbench2",
        "RewardBench 2: each subset is a domain (best-of-k; Ties by its own formula); "
        "score = unweighted mean of domains",
        ("Factuality", "Precise IF", "Math", "Safety", "Focus", "Ties"),
    ),
    Scoring(
        "generic",
        "section = example-count-weighted mean of subset accuracies; "
        "score = unweighted mean of sections",
    ),
    Scoring(
        "rm-bench",
        "RM-Bench: per prompt the mean of the 3x3 chosen-style x rejected-style pair "
        "outcomes; domain = mean over its prompts; score = unweighted mean of domains "
        "(easy/normal/hard in the analyses)",
        ("chat", "math", "code", "safety"),
    ),
    Scoring(
        "rmb",
        "RMB: pairwise accuracy (Pairwise track) and best-of-N accuracy (BoN track: the best "
        "answer must outscore every loser); section = track x goal; score = mean of sections",
    ),
    Scoring(
        "judgebench",
        "JudgeBench: pairwise accuracy against objective A>B / B>A labels; section = "
        "category (knowledge, reasoning, math, coding); score = accuracy over all pairs "
        "(categories weighted by their pairs)",
    ),
    Scoring(
        "autoj",
        "Auto-J pairwise: accuracy on non-tie human labels per scenario (ties: accuracy with "
        "ties in the analyses); score = accuracy over all non-tie pairs (scenarios weighted by "
        "their pairs); Auto-J's own Overall also counts its labelled ties (analyses.official)",
    ),
    Scoring(
        "pandalm",
        "PandaLM: accuracy against the annotators' majority label (ties and 3-way "
        "disagreements skipped; accuracy with ties in the analyses); score = accuracy over "
        "all pairs (apps weighted by their pairs)",
    ),
    Scoring(
        "mt-bench-human",
        "MT-Bench human judgments / Chatbot Arena votes: agreement without ties per turn "
        "(with ties in the analyses); score = agreement over all pairs (turns weighted by "
        "their pairs)",
    ),
    Scoring(
        "m-rewardbench",
        "M-RewardBench: RewardBench v1 rule over all languages; per-language "
        "scores and the gap to English in the analyses",
    ),
    Scoring(
        "rag-rewardbench",
        "RAG-RewardBench: pairwise accuracy per RAG scenario; score = mean of scenarios",
    ),
    Scoring(
        "best-of-n",
        "best-of-N pools: all correct candidates above every incorrect one (pools with "
        "all or none correct skipped); best-of-N and overoptimization curves in the analyses",
    ),
    Scoring(
        "ratings",
        "ratings: single responses (no pairwise accuracy); Pearson/Spearman/Kendall "
        "with each rated attribute in the analyses (and AUROC for a 0/1 label, e.g. unpaired "
        "KTO rows)",
    ),
    Scoring(
        "mmrb2",
        "MMRB2: per-task accuracy; a pairwise judge judges both orders and a pair scores the "
        "mean of its valid order verdicts (forward right + reverse wrong = 0.5); score = mean "
        "of tasks",
    ),
    Scoring(
        "mm-rlhf",
        "MM-RLHF-RewardBench: ACC = pairwise accuracy per category; ACC+ (every item of an "
        "id correct) in the analyses",
    ),
)

#: Format name → converter, in table order.
CONVERTERS: dict[str, Callable[[Record], Example | list[Example]]] = {
    f.name: f.convert for f in FORMATS
}
#: Format name → collector factory, for the formats whose examples span records.
COLLECTORS: dict[str, Callable[[], Any]] = {f.name: f.collect for f in FORMATS if f.collect}
#: (field names, format) of the keyed formats, in the order sniffing tries them.
KEYED_FORMATS: tuple[tuple[tuple[str, ...], str], ...] = tuple(
    (f.keys, f.name) for f in FORMATS if f.keys
)
#: Format name → its scoring rules, for the formats that carry their own.
FORMAT_SCORING: dict[str, str] = {f.name: f.scoring for f in FORMATS if f.scoring}
#: Scoring name → row.
SCORING: dict[str, Scoring] = {s.name: s for s in SCORINGS}
#: The values ``evaluate(benchmark=...)`` and ``rewardkit eval --benchmark`` accept.
BENCHMARK_NAMES: tuple[str, ...] = (
    "auto",
    "rewardbench1",
    "rewardbench2",
    "generic",
    *sorted(set(SCORING) - {"rewardbench1", "rewardbench2", "generic"}),
)


def _check() -> None:
    unknown = sorted({s for s in FORMAT_SCORING.values() if s not in SCORING})
    if unknown:
        raise AssertionError(f"formats name unknown scoring rules: {unknown}")


_check()
