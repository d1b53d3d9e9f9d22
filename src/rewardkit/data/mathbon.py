"""Best-of-N candidate pools with correctness labels: the Qwen2.5-Math RM@k example file
(``response``, ``score`` booleans, ``pred_score`` reward-model scores) — gold for best-of-N and
overoptimization curves (docs/methods/D8-best-of-n-eval.md, docs/methods/D9-overoptimization.md)."""

from __future__ import annotations

from rewardkit.data import checks
from rewardkit.data.location import describe
from rewardkit.data.record import Record, as_float
from rewardkit.types import Example


def convert(rec: Record) -> Example:
    """``question``, ``response`` (N texts), ``score`` (N correctness booleans) and optionally
    ``pred_score`` (N × [float], the published RM's scores) and ``gt`` (the reference answer).

    Responses are the N samples; chosen = the correct ones; ratings = ``{"correct": 0/1}``
    (plus ``"pred_score"`` when given) per response. Pools where all or none are correct are
    kept (best-of-N uses them) and skipped by accuracy."""
    prompt = checks.prompt(rec, "question", allow_messages=False)
    responses = checks.text_list(rec, "response", rec.require("response", structured=True))
    correct = rec.require("score", structured=True)
    n = len(responses)
    if (
        not isinstance(correct, list)
        or len(correct) != n
        or not all(isinstance(c, bool) for c in correct)
    ):
        raise rec.error(
            "score", f"expected {n} booleans (one per response), got {describe(correct)}"
        )
    ratings = [{"correct": float(c)} for c in correct]
    if rec.has("pred_score"):
        ps = rec.get("pred_score", structured=True)
        if not isinstance(ps, list) or len(ps) != n:
            raise rec.error("pred_score", f"expected {n} scores, got {describe(ps)}")
        for i, v in enumerate(ps):
            v = v[0] if isinstance(v, list) and len(v) == 1 else v
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise rec.error("pred_score", f"expected a number, got {describe(v)}", f"[{i}]")
            ratings[i]["pred_score"] = as_float(v)
    for k in ("code", "pred", "report", "history"):
        rec.get(k)  # large duplicates of ``response``; not kept in meta
    if rec.has("gt") and not rec.has("reference"):
        rec.data["reference"] = rec.data["gt"]
        rec.used.add("gt")
    if not rec.has("subset") and rec.has("level"):
        rec.data["subset"] = str(rec.data["level"])
    chosen = [i for i, c in enumerate(correct) if c]
    return rec.finish("math-bon", prompt, responses, chosen, ratings=ratings)
