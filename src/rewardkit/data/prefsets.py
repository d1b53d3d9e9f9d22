"""Preference and process-supervision sets whose labels are not a chosen/rejected pair of texts:
Math-Step-DPO-10K (a shared solution prefix and one next step per side), Unified-Feedback (two
conversations with a rating each), the H4 StackExchange preferences (ranked answers with a
``pm_score``), CodeUltraFeedback (four rated responses) and PRMBench (step-labelled solutions,
read as the ``steps`` format).

Each reader keeps every response and says which one the dataset prefers; fields it does not use
go to ``Example.meta``. Sources of each layout: docs/data-formats.md.
"""

from __future__ import annotations

import math
from typing import Any

from rewardkit.data import checks, steps
from rewardkit.data.location import describe
from rewardkit.data.mtbench import judged_turn
from rewardkit.data.record import Record, csv_number, finite_number
from rewardkit.types import Example, Message


def _finite(rec: Record, name: str, value: Any, sub: str = "") -> float:
    """A finite number (a CSV cell or text holding one counts)."""
    value = csv_number(value) if isinstance(value, str) else value
    if not finite_number(value):
        raise rec.error(name, f"expected a finite number, got {describe(value)}", sub)
    return float(value)


def _best(values: list[float]) -> list[int]:
    """Indices of the highest finite values (all of them on a tie; none when none is finite)."""
    finite = [v for v in values if math.isfinite(v)]
    return [i for i, v in enumerate(values) if finite and v == max(finite)]


#: ``meta`` key of the responses a rating-based reader left out as unrated, and of their count.
UNRATED_KEY, UNRATED_COUNT = "unrated_responses", "unrated"


def rated_preference(
    values: list[float],
    responses: list[str],
    ratings: list[dict[str, float]],
    models: list[Any],
    models_key: str,
) -> tuple[list[str], list[dict[str, float]], list[int], dict[str, Any]]:
    """The preference among rated responses (docs/data-formats.md, "Unrated responses"):
    ``values`` are the chooser's rating of each response (NaN: ``"N/A"``, unrated). Chosen =
    the highest rated; an unrated response is neither chosen nor rejected, so with two or more
    rated it is left out of the responses, ``ratings`` and ``models`` (each response's model,
    ``meta[models_key]``) and kept in ``meta["unrated_responses"]`` (``index``, ``response``,
    ``model``, ``ratings``); with fewer than two rated there is no preference (chosen ``[]``,
    every response kept). ``meta["unrated"]`` counts the unrated responses. Returns
    ``(responses, ratings, chosen, meta)``."""
    rated = [i for i, v in enumerate(values) if math.isfinite(v)]
    unrated = [i for i in range(len(values)) if i not in rated]
    meta: dict[str, Any] = {models_key: models}
    if not unrated:
        return responses, ratings, _best(values), meta
    meta[UNRATED_COUNT] = len(unrated)
    if len(rated) < 2:
        return responses, ratings, [], meta
    meta[UNRATED_KEY] = [
        {"index": i, "response": responses[i], "model": models[i], "ratings": ratings[i]}
        for i in unrated
    ]
    meta[models_key] = [models[i] for i in rated]
    kept = [values[i] for i in rated]
    return [responses[i] for i in rated], [ratings[i] for i in rated], _best(kept), meta


# --- Math-Step-DPO-10K ---------------------------------------------------------------------------


def convert_math_step_dpo(rec: Record) -> Example:
    """Math-Step-DPO-10K (``xinlai/Math-Step-DPO-10K``, Step-DPO): ``prompt`` (the problem),
    ``initial_reason_steps`` (the solution so far, shared by both sides), ``chosen`` and
    ``rejected`` (the next step each side takes: the first wrong step and its correction). Step-DPO
    trains on prompt + ``initial_reason_steps`` followed by the step (its ``train.py``), so each
    response is ``initial_reason_steps`` + the step, as the ``qwen2-boxed`` template joins them;
    the steps alone stay in ``meta["step_chosen"]`` / ``meta["step_rejected"]``. ``answer`` (the
    final answer) becomes ``Example.reference``; subset = ``dataset``."""
    prompt = checks.prompt(rec)
    prefix = rec.require("initial_reason_steps")
    if not isinstance(prefix, str):
        raise rec.error("initial_reason_steps", f"expected text, got {describe(prefix)}")
    sides = [checks.response(rec, k, rec.require(k)) for k in ("chosen", "rejected")]
    if rec.has("dataset"):
        rec.data.setdefault("subset", rec.opt_text("dataset"))
    if not rec.has("reference") and rec.has("answer"):
        rec.data["reference"] = rec.get("answer")
    meta = {"initial_reason_steps": prefix, "step_chosen": sides[0], "step_rejected": sides[1]}
    return rec.finish("math-step-dpo", prompt, [prefix + s for s in sides], [0], meta=meta)


# --- Unified-Feedback ----------------------------------------------------------------------------


def _conversation(rec: Record, name: str) -> tuple[list[Message], str]:
    conv = checks.messages(rec, name, rec.require(name, structured=True))
    if conv[-1]["role"] != "assistant" or len(conv) < 2:
        raise rec.error(
            name, "expected a conversation ending in an assistant message after the prompt"
        )
    return judged_turn(rec, name, conv, len(conv) - 1)


def convert_unified_feedback(rec: Record) -> Example:
    """Unified-Feedback (``llm-blender/Unified-Feedback``; ``jdf-prog/UnifiedFeedback``'s
    ``process_and_upload_dataset.py``): ``conv_A``, ``conv_B`` (message lists ending in the judged
    assistant turn) and ``conv_A_rating`` / ``conv_B_rating`` — the higher rating is preferred
    (1/0 for pairs, 0.5/0.5 for an Arena tie, UltraFeedback scores, −rank for Nectar); equal
    ratings are a labelled tie. The prompt is conversation A's turns before the judged one (B's
    own, when they differ, in ``meta["prompt_b"]``). Subset = ``source``."""
    prompt, a = _conversation(rec, "conv_A")
    prompt_b, b = _conversation(rec, "conv_B")
    ra, rb = (_finite(rec, k, rec.require_number(k)) for k in ("conv_A_rating", "conv_B_rating"))
    chosen = [0] if ra > rb else [1] if rb > ra else [0, 1]
    if rec.has("source"):
        rec.data.setdefault("subset", rec.opt_text("source"))
    meta: dict[str, Any] = {"conv_A_rating": ra, "conv_B_rating": rb}
    if prompt_b != prompt:
        meta["prompt_b"] = prompt_b
    return rec.finish("unified-feedback", prompt, [a, b], chosen, meta=meta)


# --- H4 StackExchange preferences ----------------------------------------------------------------


def convert_stack_exchange_preferences(rec: Record) -> Example:
    """H4 StackExchange preferences (``HuggingFaceH4/stack-exchange-preferences``): ``qid``,
    ``question`` and ``answers`` (``text``, ``pm_score``, ``selected``, ``answer_id``, author
    fields). ``pm_score`` is log2(1 + upvotes) rounded, +1 for the accepted answer (the dataset
    card): the higher is preferred. Responses = the answers in file order; ratings
    ``{"pm_score", "selected"}``; chosen = the answers with the highest ``pm_score`` (all of them
    when every score is equal: no preference)."""
    prompt = checks.prompt(rec, "question")
    answers = checks.objects(
        rec, "answers", rec.require("answers", structured=True), ("text", "pm_score"), "answers"
    )
    responses: list[str] = []
    ratings: list[dict[str, float]] = []
    for i, a in enumerate(answers):
        responses.append(checks.response(rec, "answers", a["text"], f"[{i}].text"))
        r = {"pm_score": _finite(rec, "answers", a["pm_score"], f"[{i}].pm_score")}
        if isinstance(a.get("selected"), bool):
            r["selected"] = 1.0 if a["selected"] else 0.0
        ratings.append(r)
    if not rec.has("id") and rec.has("qid"):
        rec.data["id"] = str(rec.data["qid"])
    chosen = _best([r["pm_score"] for r in ratings])
    meta = {"answer_ids": [a.get("answer_id") for a in answers]}
    return rec.finish("stack-exchange-preferences", prompt, responses, chosen, ratings, meta=meta)


# --- CodeUltraFeedback ---------------------------------------------------------------------------


def convert_codeultrafeedback(rec: Record) -> Example:
    """CodeUltraFeedback (``coseal/CodeUltraFeedback``): ``instruction``, ``preference`` (the
    coding preference judged), ``responses`` (``{"model", "response"}``) and ``annotations``
    (``{"model", "rating", "rationale"}``, GPT-3.5's rating as text, ``"N/A"`` when none). Ratings
    are matched to responses by ``model``; the higher is preferred (as RLHFlow's
    ``CodeUltraFeedback-standard`` pairs them). Responses = the responses in file order, ratings
    ``{"rating"}`` (``N/A`` → NaN), chosen = the highest-rated ones; a response rated ``N/A`` is
    left out (:func:`rated_preference`); subset = ``preference``."""
    prompt = checks.prompt(rec, "instruction")
    items = rec.require("responses", structured=True)
    items = checks.objects(rec, "responses", items, ("model", "response"), "responses")
    notes = rec.require("annotations", structured=True)
    if notes != []:  # none at all: each response then lacks its rating (named below)
        notes = checks.objects(rec, "annotations", notes, ("model", "rating"), "annotations")
    by_model: dict[Any, float] = {}
    for i, n in enumerate(notes):
        raw = n["rating"]
        na = raw is None or (isinstance(raw, str) and raw.strip().upper() in ("N/A", "NA", ""))
        model = checks.text(rec, "annotations", n["model"], f"[{i}].model", what="a model name")
        by_model[model] = math.nan if na else _finite(rec, "annotations", raw, f"[{i}].rating")
    responses: list[str] = []
    models: list[Any] = []
    for i, r in enumerate(items):
        checks.text(rec, "responses", r["model"], f"[{i}].model", what="a model name")
        if r["model"] not in by_model:
            raise rec.error(
                "annotations", f"has no rating for model {r['model']!r} (responses[{i}])"
            )
        responses.append(checks.response(rec, "responses", r["response"], f"[{i}].response"))
        models.append(r["model"])
    ratings = [{"rating": by_model[m]} for m in models]
    if rec.has("preference"):
        rec.data.setdefault("subset", rec.opt_text("preference"))
    responses, ratings, chosen, meta = rated_preference(
        [r["rating"] for r in ratings], responses, ratings, models, "response_models"
    )
    meta["rationales"] = [n.get("rationale") for n in notes]
    return rec.finish("codeultrafeedback", prompt, responses, chosen, ratings, meta=meta)


# --- PRMBench ------------------------------------------------------------------------------------


def convert_prmbench(rec: Record) -> Example:
    """PRMBench (``hitsmy/PRMBench_Preview``; ``ssmisya/PRMBench`` ``docs/data_format.md``):
    ``modified_question``, ``modified_process`` (the evaluated steps) and ``error_steps`` (the
    1-based numbers of the wrong steps, "Steps 3, 4, and 5" → ``[3, 4, 5]``). Read as the
    ``steps`` format: the listed steps are labelled −1, the others +1; subset =
    ``classification``, id = ``idx``; the original question and process stay in ``meta``."""
    question = rec.require("modified_question")
    process = rec.require("modified_process", structured=True)
    wrong = rec.require("error_steps", structured=True)
    if not isinstance(process, list):
        raise rec.error("modified_process", f"expected a list of steps, got {describe(process)}")
    n = len(process)
    if not isinstance(wrong, list) or any(
        isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n for k in wrong
    ):
        raise rec.error(
            "error_steps", f"expected step numbers from 1 to {n} (1-based), got {describe(wrong)}"
        )
    rec.data.update(
        problem=question, steps=process, labels=[-1 if k + 1 in wrong else 1 for k in range(n)]
    )
    rec.alias.update(problem="modified_question", steps="modified_process", labels="error_steps")
    if rec.has("classification"):
        rec.data.setdefault("subset", rec.opt_text("classification"))
    return steps.convert(rec)
