"""MT-Bench human judgments (Zheng et al., "Judging LLM-as-a-judge", 2023;
``lmsys/mt_bench_human_judgments``): ``winner`` is ``model_a``, ``model_b`` or a tie."""

from __future__ import annotations

from typing import Any

from rewardkit.data import checks
from rewardkit.data.record import Record
from rewardkit.types import Example, Message


def _split(rec: Record, name: str, turn: int) -> tuple[list[Message], str]:
    conv = checks.messages(rec, name, rec.require(name, structured=True))
    answers = [i for i, m in enumerate(conv) if m["role"] == "assistant"]
    if len(answers) < turn:
        raise rec.error(name, f"expected at least {turn} assistant turn(s), got {len(answers)}")
    k = answers[turn - 1]
    return conv[:k], str(conv[k]["content"])


def convert(rec: Record) -> Example:
    """``conversation_a``/``conversation_b`` (message lists), ``turn`` (1 or 2) and ``winner``.

    The judged responses are each conversation's assistant message at ``turn``; the prompt is
    conversation A's messages before it (for turn 2 this includes model A's first answer — the
    dataset judges each model's own history). ``"tie"`` and ``"tie (bothbad)"`` are labelled
    ties. Subset = ``turn<k>``; the judge id and models go to ``meta``."""
    turn_v: Any = rec.get("turn", 1)
    if isinstance(turn_v, bool) or turn_v not in (1, 2):
        raise rec.error("turn", f"expected 1 or 2, got {turn_v!r}")
    prompt, a = _split(rec, "conversation_a", int(turn_v))
    _, b = _split(rec, "conversation_b", int(turn_v))
    winner = str(rec.require("winner")).strip().lower()
    if winner == "model_a":
        chosen = [0]
    elif winner == "model_b":
        chosen = [1]
    elif winner.startswith("tie"):
        chosen = [0, 1]
    else:
        raise rec.error("winner", f"expected 'model_a', 'model_b' or 'tie', got {winner!r}")
    rec.data.setdefault("subset", f"turn{turn_v}")
    if not rec.has("id") and rec.has("question_id"):
        rec.data["id"] = f"{rec.data['question_id']}:{rec.data.get('model_a')}:" + (
            f"{rec.data.get('model_b')}:{rec.data.get('judge')}:{turn_v}"
        )
    return rec.finish("mt-bench-human", prompt, [a, b], chosen)
