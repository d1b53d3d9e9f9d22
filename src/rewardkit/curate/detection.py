"""Detection data for ReMoDetect (docs/methods/F8-remodetect.md): texts of known origin.

A detection example is an :class:`~rewardkit.types.Example` whose responses to one prompt are
written by LLMs or by people: ``meta["origin"]`` names each response's origin (``llm``,
``human`` or ``mixed``) and ``chosen`` marks the LLM-written ones (the tuning preference is
LLM ≻ human). Mixed texts — part human, part LLM — are the middle class of the paper's
continual preference tuning.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewardkit.curate.crome import text_units
from rewardkit.errors import DataError
from rewardkit.types import Example, user

GSM8K_MODELS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")
_CALC = re.compile(r"<<[^<>]*+>>")  # no "<" inside: many "<<" cannot make it quadratic


def clean_gsm8k(text: str) -> str:
    """A GSM8K solution without its calculator annotations ``<<a*b=c>>`` (both the human and
    the model solutions carry them)."""
    return _CALC.sub("", text).strip()


def _record(path: Path, line_no: int, line: str) -> Any:
    """One JSON Lines record, or a DataError naming the file and line."""
    try:
        return json.loads(line)
    except ValueError as exc:
        raise DataError(f"{path}:{line_no}: not a JSON record ({exc})") from None


def gsm8k_detection(
    data_dir: str | Path, limit: int | None = None, models: Sequence[str] = GSM8K_MODELS
) -> list[Example]:
    """One example per GSM8K test problem: the model solutions of ``models`` (LLM-written) and
    the reference solution (human-written), from ``example_model_solutions.jsonl``."""
    path = Path(data_dir) / "example_model_solutions.jsonl"
    if not path.is_file():
        raise DataError(f"{path}: not found (expected the GSM8K graded model solutions)")
    out: list[Example] = []
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if limit is not None and len(out) >= limit:
                break
            rec = _record(path, line_no, line)
            try:
                llm = [clean_gsm8k(rec[m]["solution"]) for m in models]
                human = clean_gsm8k(rec["ground_truth"])
                question = rec["question"]
            except (KeyError, TypeError) as exc:
                raise DataError(f"{path}:{line_no}: missing field {exc}") from None
            out.append(origin_example(f"gsm8k:{line_no}", question, llm, [human], list(models)))
    return out


def math_bon_detection(
    path: str | Path, per_problem: int = 4, limit: int | None = None
) -> list[Example]:
    """One example per MATH problem of the Qwen2.5-Math best-of-8 file: the first
    ``per_problem`` sampled responses of Qwen2.5-Math-Instruct (an aligned LLM) and the
    problem's reference solution from MATH (human-written)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: not found (expected qwen25_math_rm_bon/math_cot_100.jsonl)")
    out: list[Example] = []
    for line_no, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if limit is not None and len(out) >= limit:
            break
        rec = _record(p, line_no, line)
        try:
            llm, human = list(rec["response"][:per_problem]), rec["solution"]
            question = rec["question"]
        except (KeyError, TypeError) as exc:
            raise DataError(f"{p}:{line_no}: missing field {exc}") from None
        out.append(origin_example(f"math:{rec.get('idx', line_no)}", question, llm, [human]))
    return out


def gsm8k_correctness_pairs(data_dir: str | Path, limit: int | None = None) -> list[Example]:
    """From the same GSM8K file, one preference pair per problem that has both: a correct model
    solution ≻ an incorrect one, with the cleaned reference solution as ``reference`` (used by
    the domain-knowledge and POLAR figures)."""
    path = Path(data_dir) / "example_model_solutions.jsonl"
    if not path.is_file():
        raise DataError(f"{path}: not found (expected the GSM8K graded model solutions)")
    out: list[Example] = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if limit is not None and len(out) >= limit:
            break
        rec = _record(path, line_no, line)
        try:
            graded = [(clean_gsm8k(rec[m]["solution"]), rec[m]["is_correct"]) for m in GSM8K_MODELS]
            question, reference = rec["question"], clean_gsm8k(rec["ground_truth"])
        except (KeyError, TypeError) as exc:
            raise DataError(f"{path}:{line_no}: missing field {exc}") from None
        good = [text for text, ok in graded if ok]
        bad = [text for text, ok in graded if not ok]
        if good and bad:
            out.append(
                Example(
                    f"gsm8k:{line_no}",
                    [user(question)],
                    [good[0], bad[0]],
                    [0],
                    source="gsm8k",
                    reference=reference,
                )
            )
    return out


def origin_example(
    ex_id: str, prompt: str, llm: Sequence[str], human: Sequence[str], models: Sequence[str] = ()
) -> Example:
    """A detection example: ``llm`` texts (chosen) then ``human`` texts, with their origins."""
    return Example(
        id=ex_id,
        prompt=[user(prompt)],
        responses=[*llm, *human],
        chosen=list(range(len(llm))),
        source="detection",
        meta={"origin": ["llm"] * len(llm) + ["human"] * len(human), "models": list(models)},
    )


def mixed_text(human: str, llm: str) -> str | None:
    """The first half of the human text's lines (or sentences) followed by the second half of
    the LLM text's; None when either has fewer than two."""
    h, m = text_units(human), text_units(llm)
    if len(h) < 2 or len(m) < 2:
        return None
    sep = "\n" if "\n" in human.strip() else " "
    return sep.join(h[: len(h) // 2] + m[len(m) // 2 :])


class GeneratorMixer:
    """Mixed text by asking a generator (``sample(prompt, n)``, e.g. the embedded SmolLM2
    :class:`~rewardkit.inference.generate.Policy`) to rephrase the second half of the human text."""

    def __init__(self, generator: Any) -> None:
        self.generator = generator

    def __call__(self, human: str, llm: str) -> str | None:
        units = text_units(human)
        if len(units) < 2:
            return None
        head, tail = units[: len(units) // 2], " ".join(units[len(units) // 2 :])
        out = self.generator.sample([user(f"Rephrase in your own words:\n\n{tail}")], 1)
        new = out[0].strip() if out else ""
        return " ".join([*head, new]) if new else None


def add_mixed(examples: Sequence[Example], mixer: Any = mixed_text) -> list[Example]:
    """Each detection example with one mixed text appended (first human × first LLM text)."""
    out = []
    for ex in examples:
        origin = list(ex.meta.get("origin", []))
        if len(origin) != len(ex.responses):
            raise DataError(f"example {ex.id!r}: meta.origin must name each response's origin")
        llm = [r for r, o in zip(ex.responses, origin, strict=True) if o == "llm"]
        human = [r for r, o in zip(ex.responses, origin, strict=True) if o == "human"]
        mix = mixer(str(human[0]), str(llm[0])) if llm and human else None
        if mix is None:
            out.append(ex)
            continue
        meta = {**ex.meta, "origin": [*origin, "mixed"]}
        out.append(
            Example(ex.id, ex.prompt, [*ex.responses, mix], ex.chosen, source=ex.source, meta=meta)
        )
    return out
