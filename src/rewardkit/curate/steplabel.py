"""A step-labelled set built mechanically from GSM8K solutions (``docs/prm-and-token-rewards.md``).

GSM8K solutions (the reference ``answer`` and the graded model solutions of
``example_model_solutions.jsonl``) write every calculation as a calculator annotation
``<<expr=value>>``. Each line is a step; the last line (``#### 18`` or ``A: 18``) is the answer
step. A step is labelled by what can be checked without a model:

- −1 (wrong) when one of its annotations does not hold: ``expr`` does not evaluate to ``value``
  (relative tolerance 1e-6), or the answer step of a solution graded incorrect;
- +1 (right) when every annotation holds and every value it computes is one of the reference
  solution's intermediate results or its final answer (the step is on a known-good path), or when
  it is the answer step of a solution graded correct; in a solution graded correct every step
  whose annotations hold is +1 (the path reached the right answer);
- 0 (neutral) otherwise (no annotation, or a correct calculation off the reference path in a
  solution graded incorrect);
- once a step is −1, every later step is −1 too (an error propagates; ProcessBench's
  first-error convention).

:func:`confident` keeps the solutions whose first error is certain: correct solutions, and wrong
ones where every step before the first −1 is +1 — the rows a ProcessBench-style evaluation can
trust.

:func:`perturb` makes a wrong solution with a known first error from a reference one: the written
result of one calculation (seeded choice) is changed, so that step's annotation no longer holds.
"""

from __future__ import annotations

import ast
import math
import operator
import random
import re
from collections.abc import Iterator, Mapping
from typing import Any

_ANNOT = re.compile(r"<<([^<>=]*)=([^<>]*)>>")
_SHOWN = re.compile(r"-?[\d,]*\.?\d+")  # the number written right after an annotation
# the answer runs to the line's last non-space character (greedy, then backtracking over the
# trailing spaces only): a lazy ``(.+?)\s*$`` rescanned the spaces at every step (quadratic)
_ANSWER = re.compile(r"^\s*(?:####|A:)\s*(.*\S|[^\S\n])\s*$")
_OPS: dict[type, Any] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def arithmetic(expr: str) -> float | None:
    """The value of a calculator expression (numbers, + − × ÷ ** and parentheses); None when it
    is anything else or fails (``"16-3-4"`` → 9.0, ``"2/0"`` → None, ``"x+1"`` → None)."""

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            right = ev(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 64:
                raise ValueError("exponent too large")
            return float(_OPS[type(node.op)](ev(node.left), right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return float(_OPS[type(node.op)](ev(node.operand)))
        raise ValueError("not arithmetic")

    text = expr.replace(",", "").replace("$", "").replace("%", "").strip()
    try:
        return ev(ast.parse(text, mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, TypeError):
        return None


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", "").replace("$", "").replace("%", "").strip())
    except ValueError:
        return None


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def annotations(step: str) -> list[tuple[float | None, float | None]]:
    """(evaluated expression, written value) of each ``<<expr=value>>`` in ``step``."""
    return [(arithmetic(e), _number(v)) for e, v in _ANNOT.findall(step)]


def clean(step: str) -> str:
    """The step as a reader sees it: annotations removed (``= <<9*2=18>>18`` → ``= 18``)."""
    return _ANNOT.sub("", step).strip()


def split_solution(solution: str) -> list[str]:
    """Non-empty lines of a GSM8K solution, annotations kept."""
    return [line.strip() for line in solution.split("\n") if line.strip()]


def reference_values(answer: str) -> set[float]:
    """Every written intermediate value and the final answer of a reference solution."""
    vals = {v for _, v in (a for s in split_solution(answer) for a in annotations(s))}
    for line in split_solution(answer):
        m = _ANSWER.match(line)
        if m and _number(m.group(1)) is not None:
            vals.add(_number(m.group(1)))  # type: ignore[arg-type]
    return {v for v in vals if v is not None}


def label_steps(steps: list[str], correct: bool, good: set[float]) -> list[int]:
    """+1 / 0 / −1 per step by the rules of the module docstring."""
    labels: list[int] = []
    for i, step in enumerate(steps):
        if labels and labels[-1] < 0:
            labels.append(-1)
            continue
        anns = annotations(step)
        holds = all(e is not None and v is not None and _close(e, v) for e, v in anns)
        is_answer = i == len(steps) - 1 and _ANSWER.match(step) is not None
        if anns and not holds:
            labels.append(-1)
        elif is_answer:
            labels.append(1 if correct else -1)
        elif correct or (anns and all(any(_close(v, g) for g in good) for _, v in anns)):
            labels.append(1)
        else:
            labels.append(0)
    return labels


def confident(labels: list[int]) -> bool:
    """Whether the first error is certain: no −1, or only +1 before the first −1."""
    first = next((i for i, v in enumerate(labels) if v < 0), len(labels))
    return all(v > 0 for v in labels[:first])


def perturb(solution: str, rng: random.Random) -> str | None:
    """``solution`` with the written result of one annotated calculation changed (its annotation
    and the number after it), or None when no line has an annotation. The new value differs from
    the old by a random nonzero amount (+1, −1, +2, +10 or doubled), never by less than the
    annotation check's tolerance (a large value is doubled), so the changed step is an error."""
    lines = solution.split("\n")
    spots = []
    for i, line in enumerate(lines):
        for m in _ANNOT.finditer(line):
            shown = _SHOWN.match(line, m.end())
            value = _number(m.group(2))
            if value is not None and shown and _number(shown.group(0)) == value:
                spots.append((i, m, shown.end()))
    if not spots:
        return None
    i, m, end = rng.choice(spots)
    old = _number(m.group(2))
    assert old is not None
    new = rng.choice([old + 1, old - 1, old + 2, old + 10, old * 2 if old else 7.0])
    if _close(new, old):  # within the check's tolerance (+1 on 20,000,000) it would still hold
        new = old * 2
    text = str(int(new)) if float(new).is_integer() else f"{new:g}"
    line = lines[i]
    lines[i] = line[: m.start()] + f"<<{m.group(1)}={text}>>{text}" + line[end:]
    return "\n".join(lines)


def gsm8k_records(
    rows: list[Mapping[str, Any]],
    *,
    include_reference: bool = True,
    perturbed: bool = True,
    seed: int = 0,
) -> Iterator[dict[str, Any]]:
    """Step-labelled records (``format="steps"``) from rows of GSM8K's
    ``example_model_solutions.jsonl`` (``question``, ``ground_truth``, and solutions under
    ``6b_finetuning``, ``6b_verification``, ``175b_finetuning``, ``175b_verification``). The
    reference solution itself is one more correct record when ``include_reference``, and a
    :func:`perturb`-ed copy of it one more wrong record when ``perturbed`` (seeded by ``seed``
    and the row number)."""
    for n, row in enumerate(rows):
        good = reference_values(str(row["ground_truth"]))
        sols: list[tuple[str, Mapping[str, Any]]] = []
        if include_reference:
            sols.append(("reference", {"is_correct": True, "solution": row["ground_truth"]}))
        if perturbed:
            bad = perturb(str(row["ground_truth"]), random.Random(seed * 1_000_003 + n))
            if bad is not None:
                sols.append(("perturbed", {"is_correct": True, "solution": bad}))
        sols += [(k, v) for k, v in row.items() if isinstance(v, Mapping) and "solution" in v]
        for name, sol in sols:
            raw = split_solution(str(sol["solution"]))
            if not raw:
                continue
            labels = label_steps(raw, bool(sol["is_correct"]), good)
            yield {
                "id": f"gsm8k-{n}-{name}",
                "problem": str(row["question"]),
                "steps": [clean(s) for s in raw],
                "labels": labels,
                "label": next((i for i, v in enumerate(labels) if v < 0), -1),
                "final_answer_correct": bool(sol["is_correct"]),
                "generator": name,
                "confident": confident(labels),
            }
