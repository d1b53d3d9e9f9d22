"""MT-Bench human judgments (Zheng et al., "Judging LLM-as-a-judge", 2023;
``lmsys/mt_bench_human_judgments``): ``winner`` is ``model_a``, ``model_b`` or a tie."""

from __future__ import annotations

import math
from typing import Any

from rewardkit.data import checks
from rewardkit.data.location import describe
from rewardkit.data.record import Record
from rewardkit.types import Example, Message

#: Winner values for "both are bad" (Chatbot Arena ``tie (bothbad)``; ``both_bad`` in later Arena
#: exports): labelled ties, flagged ``meta["both_bad"]``.
BOTH_BAD = ("tie (bothbad)", "both_bad", "bothbad", "both bad")


def judged_turn(rec: Record, name: str, conv: list[Message], k: int) -> tuple[list[Message], str]:
    """Message ``k`` of conversation field ``name`` (the judged assistant turn) as the response
    and the messages before it as the prompt. The response must be text (content parts that
    hold only text are text already; an image part is refused, never its Python repr), and the
    prompt must hold some text (as :func:`rewardkit.data.checks.prompt` requires)."""
    prompt = conv[:k]
    if not any(not isinstance(m["content"], str) or m["content"].strip() for m in prompt):
        got = "no message" if not prompt else "only empty messages"
        raise rec.error(name, f"expected a prompt that is not empty before [{k}], got {got}")
    checks.last_user_turn(rec, name, prompt)
    return prompt, checks.response(rec, name, conv[k]["content"], f"[{k}].content")


def _split(rec: Record, name: str, turn: int) -> tuple[list[Message], str]:
    conv = checks.messages(rec, name, rec.require(name, structured=True))
    answers = [i for i, m in enumerate(conv) if m["role"] == "assistant"]
    if len(answers) < turn:
        if name == "conversation_a":  # the turn number is what is out of range
            raise rec.error(
                "turn",
                f"expected a turn that {name} has (it has {len(answers)} assistant turn(s)), "
                f"got {turn}",
            )
        raise rec.error(name, f"expected at least {turn} assistant turn(s), got {len(answers)}")
    return judged_turn(rec, name, conv, answers[turn - 1])


def _last_turn(rec: Record) -> int:
    """The judged turn of a row without ``turn``: the last assistant turn, which both
    conversations must share (an Arena vote is cast after the whole conversation)."""
    counts = [
        sum(
            m["role"] == "assistant"
            for m in checks.messages(rec, k, rec.require(k, structured=True))
        )
        for k in ("conversation_a", "conversation_b")
    ]
    if counts[0] != counts[1]:
        raise rec.error(
            "turn",
            f"missing, and the conversations have {counts[0]} and {counts[1]} assistant turns: "
            "give the judged turn in a 'turn' column",
        )
    return max(counts[0], 1)


def convert(rec: Record) -> Example:
    """``conversation_a``/``conversation_b`` (message lists), ``turn`` and ``winner``.

    ``turn`` is the judged turn: 1 or 2 in MT-Bench; any k ≥ 1 in Chatbot Arena conversations
    (``lmsys/chatbot_arena_conversations``), where it is the number of turns and the vote is cast
    after the last one. Without ``turn`` the last assistant turn is judged (both conversations
    must have as many), never silently the first.

    The judged responses are each conversation's assistant message at ``turn``; the prompt is
    conversation A's messages before it (for turn 2 this includes model A's first answer — the
    dataset judges each model's own history). ``"tie"``, ``"tie (bothbad)"`` and ``"both_bad"`` are labelled
    ties (the both-bad ones flagged ``meta["both_bad"]``). Subset = ``turn<k>``; the judge id and models go to ``meta``; when conversation B's
    messages before the judged turn differ from A's they are kept in ``meta["prompt_b"]``."""
    turn_v: Any = rec.number("turn")
    if isinstance(turn_v, float) and math.isnan(turn_v):
        turn_v = None  # a Parquet/pandas null in a float column
    if isinstance(turn_v, float) and turn_v.is_integer():
        turn_v = int(turn_v)  # 2.0: a float column (a null elsewhere made pandas write floats)
    if turn_v is None:  # no turn column: the vote follows the last turn (Chatbot Arena)
        turn_v = _last_turn(rec)
    if isinstance(turn_v, bool) or not isinstance(turn_v, int) or turn_v < 1:
        raise rec.error("turn", f"expected a turn number 1, 2, 3, …, got {describe(turn_v)}")
    prompt, a = _split(rec, "conversation_a", int(turn_v))
    prompt_b, b = _split(rec, "conversation_b", int(turn_v))
    winner = str(rec.require("winner")).strip().lower()
    if winner == "model_a":
        chosen = [0]
    elif winner == "model_b":
        chosen = [1]
    elif winner.startswith("tie") or winner in BOTH_BAD:
        chosen = [0, 1]
    else:
        raise rec.error(
            "winner", f"expected 'model_a', 'model_b', 'tie' or 'both_bad', got {winner!r}"
        )
    rec.data.setdefault("subset", f"turn{turn_v}")
    if not rec.has("id") and rec.has("question_id"):
        rec.data["id"] = f"{rec.data['question_id']}:{rec.data.get('model_a')}:" + (
            f"{rec.data.get('model_b')}:{rec.data.get('judge')}:{turn_v}"
        )
    meta: dict[str, Any] = {}
    if winner in BOTH_BAD:  # a tie in which the voter judged both answers bad
        meta["both_bad"] = True
    if prompt_b != prompt:  # model B's own history differs from A's: kept, not dropped
        meta["prompt_b"] = prompt_b
    return rec.finish("mt-bench-human", prompt, [a, b], chosen, meta=meta)
