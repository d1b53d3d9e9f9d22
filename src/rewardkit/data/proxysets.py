"""LMArena's Preference Proxy Evaluations (PPE) sets and Prometheus' Preference-Collection, and
the layouts that are refused by name rather than guessed (raw MultiPref annotations, HH-RLHF
red-team transcripts).

PPE (``lmarena-ai/PPE-Human-Preference-V1`` and the ``lmarena-ai/PPE-*-Best-of-K`` correctness
sets; dataset cards and ``lmarena/PPE``'s ``benchmarks`` and ``llm_judge`` code): the human set
has ``prompt``, ``response_1``, ``response_2`` and the Chatbot Arena vote ``winner`` for
``model_a`` (``response_1``, the judge's Assistant A) or ``model_b`` (``response_2``); the
correctness sets have ``prompt``, ``response_1`` … ``response_K`` and ``scores`` (K booleans,
``scores[i]`` grading ``response_{i+1}``).

Preference-Collection (``prometheus-eval/Preference-Collection`` dataset card): ``instruction`` is
the processed pairwise grading prompt and ``output`` the feedback that ends ``[RESULT] A`` or
``[RESULT] B``, the better of ``orig_response_A`` / ``orig_response_B`` (what Prometheus 2 is
trained to write: ``prometheus-eval`` ``train/recipes/prometheus-v2.0/prepare_dataset.py``).
"""

from __future__ import annotations

import re
from typing import Any

from rewardkit.data import checks
from rewardkit.data.location import describe
from rewardkit.data.mtbench import BOTH_BAD
from rewardkit.data.record import Record, as_float, csv_number
from rewardkit.types import Example, Message

# --- PPE human preference ------------------------------------------------------------------------


def convert_ppe_human(rec: Record) -> Example:
    """PPE human preference (``lmarena-ai/PPE-Human-Preference-V1``): ``prompt``, ``response_1``
    (model A's answer), ``response_2`` (model B's) and ``winner`` — ``model_a`` → [0],
    ``model_b`` → [1], ``tie`` and ``tie (bothbad)`` → a labelled tie (both-bad flagged
    ``meta["both_bad"]``, as for Chatbot Arena). Any other winner is an error."""
    prompt = checks.prompt(rec)
    responses = [checks.response(rec, k, rec.require(k)) for k in ("response_1", "response_2")]
    raw = rec.require("winner")
    winner = raw.strip().lower() if isinstance(raw, str) else raw
    meta: dict[str, Any] = {}
    if winner == "model_a":
        chosen = [0]
    elif winner == "model_b":
        chosen = [1]
    elif winner == "tie" or winner in BOTH_BAD:
        chosen = [0, 1]
        if winner in BOTH_BAD:
            meta["both_bad"] = True
    else:
        raise rec.error(
            "winner",
            f"expected 'model_a', 'model_b', 'tie' or 'tie (bothbad)', got {describe(raw)}",
        )
    return rec.finish("ppe-human", prompt, responses, chosen, meta=meta)


# --- PPE correctness (best-of-K) -----------------------------------------------------------------

_RESPONSE_N = re.compile(r"response_(\d+)")


def convert_ppe_correctness(rec: Record) -> Example:
    """A PPE correctness row (``lmarena-ai/PPE-{MMLU-Pro,MATH,GPQA,IFEval,MBPP-Plus}-Best-of-K``):
    ``prompt``, ``scores`` (K booleans) and ``response_1`` … ``response_K``; ``scores[i]`` grades
    ``response_{i+1}``. Responses in that order, ratings ``{"correct": 1/0}``, chosen = the
    correct ones (none or all correct: kept, skipped by accuracy, as for **math-bon**). A
    ``response_N`` column beyond K, or a missing one, is an error (the grades would shift)."""
    prompt = checks.prompt(rec)
    scores = rec.require("scores", structured=True)
    if not isinstance(scores, list) or not scores or not all(isinstance(s, bool) for s in scores):
        raise rec.error("scores", f"expected a list of booleans, got {describe(scores)}")
    k = len(scores)
    numbered = sorted(
        int(m.group(1)) for name in rec.data if (m := _RESPONSE_N.fullmatch(name)) is not None
    )
    if numbered != list(range(1, k + 1)):
        raise rec.error(
            "scores",
            f"expected response_1 … response_{k} (one per score), got columns "
            + ", ".join(f"response_{i}" for i in numbered),
        )
    responses = [
        checks.response(rec, f"response_{i}", rec.require(f"response_{i}")) for i in range(1, k + 1)
    ]
    ratings = [{"correct": float(s)} for s in scores]
    chosen = [i for i, s in enumerate(scores) if s]
    return rec.finish("ppe-correctness", prompt, responses, chosen, ratings=ratings)


# --- Prometheus Preference-Collection ------------------------------------------------------------

_RESULT = re.compile(r"\[RESULT\]\s*\(?\s*([AB])\s*\)?\s*\.?\s*$")


def _result_letter(rec: Record) -> str:
    """The ``A``/``B`` after the last ``[RESULT]`` of the feedback in ``output``."""
    out = checks.text(rec, "output", rec.require("output"), what="the feedback text")
    m = _RESULT.search(out.rstrip())
    if m is None:
        raise rec.error(
            "output", f"expected feedback ending in '[RESULT] A' or '[RESULT] B', got {out[-60:]!r}"
        )
    return m.group(1)


def _score(rec: Record, name: str) -> float | None:
    value = rec.get(name)
    value = csv_number(value) if isinstance(value, str) else value
    return (
        as_float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    )


def convert_preference_collection(rec: Record) -> Example:
    """Preference-Collection (``prometheus-eval/Preference-Collection``): ``orig_instruction``,
    ``orig_response_A``, ``orig_response_B`` and ``output``, the feedback ending ``[RESULT] A``
    or ``[RESULT] B`` (the better response; the dataset card's prompt format). Responses =
    [A, B], chosen = that letter. ``orig_preference``, when present, must name the same letter,
    and ``orig_score_A`` / ``orig_score_B`` (1–5) must not rank the other side higher: a row whose
    labels disagree is an error, never a guess. ``orig_reference_answer`` → ``reference``,
    ``orig_criteria`` → ``meta["rubric"]``; ``instruction`` (the grading prompt, a copy of the
    other fields) is not kept."""
    prompt: list[Message] = checks.prompt(rec, "orig_instruction", allow_messages=False)
    responses = [
        checks.response(rec, k, rec.require(k)) for k in ("orig_response_A", "orig_response_B")
    ]
    letter = _result_letter(rec)
    given = rec.get("orig_preference")
    if given not in (None, ""):  # an empty CSV cell: absent
        named = given.strip().upper() if isinstance(given, str) else given
        if named != letter:
            raise rec.error(
                "orig_preference",
                f"names {describe(given)}, but the feedback in 'output' ends '[RESULT] {letter}'",
            )
    win, lose = ("A", "B") if letter == "A" else ("B", "A")
    s_win, s_lose = _score(rec, f"orig_score_{win}"), _score(rec, f"orig_score_{lose}")
    if s_win is not None and s_lose is not None and s_win < s_lose:
        raise rec.error(
            f"orig_score_{win}",
            f"response {win} is preferred ('[RESULT] {win}') but scored {s_win:g} against "
            f"{s_lose:g} for response {lose}",
        )
    rec.get("instruction")  # the grading prompt: a copy of the fields read here
    if not rec.has("reference") and rec.has("orig_reference_answer"):
        rec.data["reference"] = rec.data["orig_reference_answer"]
        rec.used.add("orig_reference_answer")
    meta: dict[str, Any] = {}
    if isinstance(rec.peek("orig_criteria"), str):
        meta["rubric"] = rec.get("orig_criteria")
    chosen = [0] if letter == "A" else [1]
    return rec.finish("preference-collection", prompt, responses, chosen, meta=meta)


# --- Layouts refused by name ---------------------------------------------------------------------

#: (fields that identify the layout, its name, whether a per-row label column says which response
#: won, why it is refused and what to load instead). Checked when a record sniffed as generic
#: lacks generic's fields (:func:`rewardkit.data.generic.convert`), and before a column map
#: fixes chosen/rejected columns (:func:`rewardkit.data.loader.check_mapped_labels`).
REFUSED_LAYOUTS: tuple[tuple[tuple[str, ...], str, bool, str], ...] = (
    (
        ("completion_a", "completion_b", "normal_worker_annotations"),
        "allenai/multipref (raw annotations)",
        True,
        "this is allenai/multipref's default config: each pair carries its crowd and expert "
        "annotators' raw votes (overall_pref: A-is-clearly-better … Tie … B-is-clearly-better) "
        "and no aggregated label, and rewardkit does not pick an aggregation rule for you. Load "
        "the dataset's human_overall_binarized (or gpt4_overall_binarized) config instead: its "
        "chosen/rejected message lists read as 'trl', and 'tie_is_common' rows as labelled ties",
    ),
    (
        ("transcript", "rating", "task_description"),
        "Anthropic HH-RLHF red-team attempts",
        False,
        "this is an Anthropic HH-RLHF red-team attempt (one transcript rated for how successful "
        "the attack was), not a preference pair: there is no chosen or rejected response to "
        "read. The HH-RLHF preference pairs are the chosen/rejected files of the other subsets",
    ),
)


def refused_layout(rec: Record, *, labelled: bool = False) -> tuple[str, str] | None:
    """``(name, why)`` of a known layout that is refused rather than guessed, or None
    (``labelled``: only layouts with a per-row label column)."""
    for keys, name, has_label, why in REFUSED_LAYOUTS:
        if all(k in rec.data for k in keys) and (has_label or not labelled):
            return name, why
    return None
