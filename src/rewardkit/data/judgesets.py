"""Judge meta-evaluation and judge-training sets with their own pair layout: LLMBar, OffsetBias
and EvalBiasBench (a ``label`` of 1 or 2), JudgeLM-100K (a GPT-4 score per answer), the
Prometheus pairwise evaluation files (two grading prompts, chosen and rejected) and HHH
alignment (``targets.choices`` with 0/1 ``labels``).

Each reader keeps both responses and says which one the dataset prefers; fields it does not use
go to ``Example.meta``. Sources of each layout: docs/data-formats.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rewardkit.data import checks
from rewardkit.data.location import describe
from rewardkit.data.ratings import split_prometheus
from rewardkit.data.record import Record, csv_number, finite_number
from rewardkit.errors import DataError
from rewardkit.types import Example, Message

# --- LLMBar / OffsetBias / EvalBiasBench: label 1 or 2 ------------------------------------------


def _one_or_two(rec: Record, name: str) -> list[int]:
    """The chosen index for a ``label`` naming the better output: 1 → [0], 2 → [1]."""
    value = rec.require_number(name)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or value not in (1, 2):
        raise rec.error(name, f"expected 1 or 2 (the better output), got {describe(value)}")
    return [value - 1]


def _label12(fmt: str, prompt_field: str, a: str, b: str) -> Callable[[Record], Example]:
    def convert(rec: Record) -> Example:
        chosen = _one_or_two(rec, "label")
        prompt = checks.prompt(rec, prompt_field)
        responses = [checks.response(rec, k, rec.require(k)) for k in (a, b)]
        if rec.has("bias"):  # EvalBiasBench names the bias each pair tests
            rec.data.setdefault("subset", rec.opt_text("bias"))
        return rec.finish(fmt, prompt, responses, chosen)

    convert.__doc__ = (
        f"``{prompt_field}``, ``{a}``, ``{b}`` and ``label`` — the number of the better output "
        f"(1: ``{a}``, 2: ``{b}``). Responses = [{a}, {b}]."
    )
    return convert


#: LLMBar (``princeton-nlp/LLMBar``, ``Dataset/**/dataset.json``): ``input``, ``output_1``,
#: ``output_2``, ``label`` 1 or 2 ("which output is objectively better", the repo README).
convert_llmbar = _label12("llmbar", "input", "output_1", "output_2")
#: OffsetBias (``NCSOFT/offsetbias``): ``instruction``, ``output_1``, ``output_2``, ``label``
#: "1 or 2, indicating the better response number" (the dataset card).
convert_offsetbias = _label12("offsetbias", "instruction", "output_1", "output_2")
#: EvalBiasBench rows (``ncsoft/offsetbias`` ``data/evalbiasbench/biasbench.json``, one list per
#: bias): ``bias``, ``instruction``, ``response1``, ``response2``, ``label`` 1 or 2 (the repo's
#: ``is_correct``: prediction == label). Subset = ``bias``.
convert_evalbiasbench = _label12("evalbiasbench", "instruction", "response1", "response2")


# --- JudgeLM-100K ------------------------------------------------------------------------------


def _score_pair(rec: Record) -> tuple[float, float]:
    """JudgeLM's ``score``: the two answers' 1–10 scores (``[-1, -1]`` is an unparsed verdict)."""
    value = rec.require("score", structured=True)
    if not isinstance(value, list) or len(value) != 2 or not all(finite_number(v) for v in value):
        raise rec.error(
            "score",
            f"expected two numbers (answer 1's and answer 2's score), got {describe(value)}",
        )
    if value[0] == -1 and value[1] == -1:
        raise rec.error(
            "score",
            "[-1, -1] marks a judgement JudgeLM could not parse (its evaluation drops these "
            "rows); skip them (on_error='skip')",
        )
    return float(value[0]), float(value[1])


def convert_judgelm(rec: Record) -> Example:
    """JudgeLM-100K (``BAAI/JudgeLM-100K``: ``judgelm_train_100k.jsonl``,
    ``judgelm_val_5k_gpt4.jsonl``): ``question_body``, ``answer1_body``, ``answer2_body`` and
    ``score`` (GPT-4's scores of answer 1 and answer 2, as the first line of ``text``). The
    higher score is chosen, equal scores a labelled tie (JudgeLM's ``translate_score_to_win_list``
    with T = 0). A ``reference`` object's ``text`` becomes ``Example.reference``."""
    s1, s2 = _score_pair(rec)
    chosen = [0] if s1 > s2 else [1] if s2 > s1 else [0, 1]
    question = checks.text(rec, "question_body", rec.require("question_body"), what="a question")
    prompt: list[Message] = [{"role": "user", "content": question.strip()}]
    responses = [checks.response(rec, k, rec.require(k)) for k in ("answer1_body", "answer2_body")]
    ref = rec.get("reference", structured=True)
    if isinstance(ref, dict):
        rec.data["reference"] = ref.get("text")
        meta_ref = {"reference_meta": {k: v for k, v in ref.items() if k != "text"}}
    else:
        meta_ref = {}
    if not rec.has("id") and rec.has("question_id"):
        rec.data["id"] = str(rec.data["question_id"])
    meta = {"judge_scores": [s1, s2], **meta_ref}
    return rec.finish("judgelm", prompt, responses, chosen, meta=meta)


# --- Prometheus pairwise evaluation files ---------------------------------------------------------


def _graded(rec: Record, name: str) -> tuple[str, str]:
    """The instruction and the response inside the Prometheus grading prompt in field ``name``."""
    text = checks.text(rec, name, rec.require(name), what="a grading prompt")
    try:
        return split_prometheus(rec, text)
    except DataError as e:  # split_prometheus names 'instruction'; say which field it was
        raise rec.error(name, e.reason) from None


def convert_prometheus_pairwise(rec: Record) -> Example:
    """A Prometheus pairwise evaluation row (``prometheus-eval`` ``eval/benchmark/data``:
    ``hhh_alignment_eval.json``, ``mt_bench_human_judgement_eval.json``, ``alpaca_eval.json``,
    ``preference_collection_ood_test.json``): ``chosen_instruction`` and ``rejected_instruction``,
    two absolute-grading prompts that differ only in the response. Responses = [chosen,
    rejected], chosen [0]; ``tie`` = 1 is a labelled tie (the repo's ``data_loader.py``).
    Subset = ``source`` (HHH's harmless / helpful / honest / other)."""
    q1, chosen_text = _graded(rec, "chosen_instruction")
    q2, rejected_text = _graded(rec, "rejected_instruction")
    if q1 != q2:
        raise rec.error(
            "rejected_instruction",
            "grades another instruction than chosen_instruction (the two prompts must differ "
            "only in the response)",
        )
    tie = rec.number("tie")
    if tie not in (None, 0, 1) or isinstance(tie, bool):
        raise rec.error("tie", f"expected 0 or 1, got {describe(tie)}")
    if rec.has("source"):
        rec.data.setdefault("subset", rec.opt_text("source"))
    prompt: list[Message] = [{"role": "user", "content": q1}]
    chosen = [0, 1] if tie == 1 else [0]
    grading = str(rec.data["chosen_instruction"])
    head = grading.find("###Score Rubrics:")
    end = grading.find("###Feedback", head) if head >= 0 else -1
    meta = (
        {"rubric": grading[head + len("###Score Rubrics:") : end if end >= 0 else None].strip()}
        if head >= 0
        else {}
    )
    return rec.finish(
        "prometheus-pairwise", prompt, [chosen_text, rejected_text], chosen, meta=meta
    )


# --- HHH alignment -------------------------------------------------------------------------------


def convert_hhh_alignment(rec: Record) -> Example:
    """HHH alignment (``HuggingFaceH4/hhh_alignment``, configs harmless / helpful / honest /
    other): ``input`` and ``targets`` = ``{"choices": [...], "labels": [...]}`` with label 1 on
    the better choice (the dataset card; RewardBench's ``hhh`` prior set). Responses = the
    choices; chosen = the ones labelled 1."""
    prompt = checks.prompt(rec, "input")
    targets = rec.require("targets", structured=True)
    if not isinstance(targets, dict):
        raise rec.error(
            "targets", f"expected an object with 'choices' and 'labels', got {describe(targets)}"
        )
    choices, labels = targets.get("choices"), targets.get("labels")
    responses = checks.text_list(rec, "targets", choices)
    if not isinstance(labels, list) or len(labels) != len(responses):
        raise rec.error(
            "targets",
            f"expected {len(responses)} labels (one per choice), got {describe(labels)}",
            ".labels",
        )
    marks = [csv_number(v) if isinstance(v, str) else v for v in labels]
    if any(isinstance(v, bool) or v not in (0, 1) for v in marks) or 1 not in marks:
        raise rec.error(
            "targets", f"expected 0/1 labels with at least one 1, got {labels}", ".labels"
        )
    chosen = [i for i, v in enumerate(marks) if v == 1]
    meta: dict[str, Any] = {"labels": list(marks)}
    return rec.finish("hhh-alignment", prompt, responses, chosen, meta=meta)
