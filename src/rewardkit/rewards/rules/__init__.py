"""Rule rewards: no model, pure Python (or well-kept libraries), fast.

``rule:NAME`` specs resolve through :data:`RULES`, a table of ``"module:Class"`` strings imported
only when that rule is built, so one rule's optional dependency never slows or breaks another.
"""

from __future__ import annotations

import importlib
from typing import Any

from rewardkit.errors import SpecError
from rewardkit.types import Reward

#: Rule name → "module:Class" (the class is called with the spec's options).
RULES: dict[str, str] = {
    "length": "rewardkit.rewards.rules.length:LengthReward",
    "code": "rewardkit.rewards.rules.code:CodeReward",
    "math": "rewardkit.rewards.rules.math_answer:MathReward",
    "gsm8k": "rewardkit.rewards.rules.gsm8k:Gsm8kReward",
    "bleu": "rewardkit.rewards.rules.bleu:BleuReward",
    "chrf": "rewardkit.rewards.rules.chrf:ChrfReward",
    "rouge_l": "rewardkit.rewards.rules.rouge:RougeLReward",
    "exact_match": "rewardkit.rewards.rules.exact_match:ExactMatchReward",
    "f1": "rewardkit.rewards.rules.token_f1:F1Reward",
    "format": "rewardkit.rewards.rules.format:FormatReward",
    "json": "rewardkit.rewards.rules.json_valid:JsonReward",
    "json_schema": "rewardkit.rewards.rules.json_schema:JsonSchemaReward",
    "overlong": "rewardkit.rewards.rules.overlong:OverlongReward",
    "think_length": "rewardkit.rewards.rules.think_length:ThinkLengthReward",
    "repetition": "rewardkit.rewards.rules.repetition:RepetitionReward",
    "iou": "rewardkit.rewards.rules.iou:IouReward",
    "arithmetic": "rewardkit.rewards.rules.arithmetic:ArithmeticReward",
    "vqa": "rewardkit.rewards.rules.vqa:VqaAnswerReward",
    "tag_count": "rewardkit.rewards.rules.tag_count:TagCountReward",
    "reasoning_steps": "rewardkit.rewards.rules.reasoning_steps:ReasoningStepsReward",
    "cosine": "rewardkit.rewards.rules.cosine:CosineReward",
    "xml_format": "rewardkit.rewards.rules.xml_format:XmlFormatReward",
    "json_match": "rewardkit.rewards.rules.json_match:JsonMatchReward",
    "tool_call": "rewardkit.rewards.rules.tool_call:ToolCallReward",
    "tool_call_format": "rewardkit.rewards.rules.tool_call_format:ToolCallFormatReward",
    "sql": "rewardkit.rewards.rules.sql:SqlReward",
}

#: One-line description of each rule, shown by ``rewardkit rewards list``.
DESCRIPTIONS: dict[str, str] = {
    "length": "response length in chars/words/bytes (the baseline every benchmark shows)",
    "code": "pass fraction of the reference's unit tests, run in a sandbox (no network)",
    "math": "final answer equivalent to the reference (math-verify; LaTeX, fractions, \\boxed{})",
    "gsm8k": "GSM8K numeric answer match (#### / \\boxed{} / last number)",
    "bleu": "sentence BLEU vs one or more references, BLEUBERI settings (card B8)",
    "chrf": "sentence chrF / chrF++ vs references (sacrebleu)",
    "rouge_l": "ROUGE-L F-measure vs references, max over references (rouge-score)",
    "exact_match": "SQuAD-normalised exact match, max over references",
    "f1": "SQuAD token F1, max over references",
    "format": "layout check: <think>…</think><answer>…</answer>, tags=… or pattern=…",
    "json": "response (or its fenced block) is valid JSON",
    "json_schema": "response JSON conforms to a JSON Schema (option schema or the reference)",
    "overlong": "DAPO soft overlong punishment, in [-1, 0] (card C8)",
    "think_length": "1 when the first <think> block has fewer than max_len characters (or, with "
    "min_len, lies in [min_len, max_len]), else 0 (ReFine-RFT; card C8)",
    "repetition": "n-gram repetition penalty, in [-1, 0] (Demystifying long CoT / open-r1)",
    "iou": "bounding-box IoU of predicted vs reference boxes (card B9)",
    "arithmetic": "fraction of arithmetic claims (a op b = c) that hold, safe evaluator (card B11)",
    "vqa": "visual-QA answer match: option letter, number within 5%, normalised text; VQA accuracy "
    "for ten human answers (card B9)",
    "tag_count": "partial layout credit: 1/(2k) per <tag> marker written once (open-r1 tag_count)",
    "reasoning_steps": "min(1, step markers / 3): Step N:, numbered lines, bullets, First/Next "
    "(open-r1)",
    "cosine": "correctness scaled by length on a cosine schedule, in [-1, 1] (card C11; TRL / "
    "open-r1)",
    "xml_format": "partial-credit XML field layout score, in [0.2, 1] (verifiers XMLParser)",
    "json_match": "response JSON deep-equals the reference JSON, or leaf F1 (OpenJudge "
    "JsonMatchGrader)",
    "tool_call": "tool calls (<tool_call> JSON / OpenAI tool_calls) vs the expected calls: exact "
    "or F1 / precision / recall (OpenJudge)",
    "tool_call_format": "layout: <think>…</think> then <answer>…</answer> or well-formed "
    "<tool_call> JSON blocks (OpenJudge)",
    "sql": "text-to-SQL: the response's query gives the gold SQL's result on the row's SQLite "
    "database, run read-only in bounded workers; + format, + MiniLM similarity (card B14)",
}


def build(arg: str | None, **options: Any) -> Reward:
    """Registry factory for ``rule:NAME``."""
    target = RULES.get(arg or "")
    if not arg:
        raise SpecError(f"rule needs a NAME (rule:NAME); known rules: {', '.join(sorted(RULES))}")
    if target is None:
        raise SpecError(f"unknown rule {arg!r}; known rules: {', '.join(sorted(RULES))}")
    module_name, _, cls_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    return cls(**options)
