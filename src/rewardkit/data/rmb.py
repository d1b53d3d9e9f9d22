"""RMB (Zhou et al., "RMB: Comprehensively Benchmarking Reward Models in LLM Alignment") rows:
pairwise (``chosen``/``reject``) and best-of-N (``bon_best``/``loser_list``), one converter for
both so a directory holding both tracks loads in one pass."""

from __future__ import annotations

from typing import Any

from rewardkit.data import checks
from rewardkit.data.location import describe
from rewardkit.data.record import Record
from rewardkit.types import Example, Message


def _answer(rec: Record, name: str, value: Any, sub: str = "") -> str:
    if not isinstance(value, dict) or "answer" not in value:
        raise rec.error(name, f"expected an object with 'answer', got {describe(value)}", sub)
    answer = value["answer"]
    if not isinstance(answer, str):  # empty answers are real data (a model said nothing)
        raise rec.error(name, f"expected a response text, got {describe(answer)}", sub + ".answer")
    return answer


def _given(rec: Record, name: str) -> bool:
    """Whether optional field ``name`` holds a value: null (Parquet, JSON) and an empty CSV cell
    (a file mixing pairwise and best-of-N rows leaves the other track's cells empty) are absent."""
    value = rec.data.get(name)
    return value is not None and not (rec.loc.kind == "csv" and value == "")


def _conversation(rec: Record) -> list[Message]:
    raw = rec.require("conversation_input", structured=True)
    if not isinstance(raw, list):
        raise rec.error("conversation_input", f"expected a list of turns, got {describe(raw)}")
    turns = [
        {"role": t.get("role"), "content": t.get("content")} if isinstance(t, dict) else t
        for t in raw
    ]
    return checks.last_user_turn(
        rec, "conversation_input", checks.messages(rec, "conversation_input", turns)
    )


def split_category(path: str) -> tuple[str, str, str]:
    """``"Pairwise_set/Helpfulness/Chat/Discussion"`` → ``("pairwise", "Helpfulness",
    "Chat/Discussion")``."""
    parts = [p for p in str(path).split("/") if p]
    track = "bon" if parts and parts[0].lower().startswith("bon") else "pairwise"
    goal = parts[1] if len(parts) > 1 else "all"
    rest = "/".join(parts[2:]) or goal
    return track, goal, rest


def convert(rec: Record) -> Example:
    """Pairwise: responses ``[chosen, reject]``, chosen = [0]. Best-of-N: ``[bon_best,
    *loser_list]``, chosen = [0] (correct only if the best outscores every loser). Subset
    ``"<track>/<goal>/<category>"``, section ``"<track> <goal>"`` (e.g. ``"BoN Harmlessness"``)."""
    prompt = _conversation(rec)
    category = checks.text(rec, "category_path", rec.require("category_path"), what="a path")
    track, goal, rest = split_category(category)
    if _given(rec, "bon_best"):
        best = _answer(rec, "bon_best", rec.get("bon_best", structured=True))
        losers = rec.require("loser_list", structured=True)
        if not isinstance(losers, list) or not losers:
            raise rec.error("loser_list", f"expected a non-empty list, got {describe(losers)}")
        responses = [best] + [_answer(rec, "loser_list", v, f"[{i}]") for i, v in enumerate(losers)]
        ex_id = rec.data.get("bon_uid")
        rec.used.add("bon_uid")
    else:
        chosen = _answer(rec, "chosen", rec.require("chosen", structured=True))
        rejected = _answer(rec, "reject", rec.require("reject", structured=True))
        responses = [chosen, rejected]
        ex_id = None
    track_name = "BoN" if track == "bon" else "Pairwise"
    meta = {"section": f"{track_name} {goal}", "rmb_track": track}
    rec.data.setdefault("subset", f"{track_name}/{goal}/{rest}")
    if ex_id is not None and not rec.has("id"):
        rec.data["id"] = f"bon:{ex_id}"
    return rec.finish("rmb", prompt, responses, [0], meta=meta)
