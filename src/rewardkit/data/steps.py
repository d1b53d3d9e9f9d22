"""Step-labelled solutions (``format="steps"``): one reasoning trace per record with a label per
step and/or the index of the first wrong step (``docs/methods/B4-orm-vs-prm.md``,
``docs/prm-and-token-rewards.md``). Four published layouts are read:

- ProcessBench (and rewardkit's own)::

    {"id": "gsm8k-3", "generator": "...", "problem": "...", "steps": ["...", "..."],
     "labels": [1, 0, -1], "label": 2, "final_answer_correct": false}

  ``problem`` (or ``question`` / ``prompt``) is the question; ``steps`` the list of step texts;
  ``labels`` one of +1 (right), 0 (neutral: not checkable), −1 (wrong) per step (``"+"``,
  ``"-"``, ``"0"`` and booleans are read too); ``label`` the 0-based index of the first wrong
  step, −1 for a solution with no wrong step. With only ``labels``, ``label`` is the first −1;
  with only ``label``, the steps before it are +1, it and the steps after it −1. Without a
  ``subset`` field, an id ``NAME-N`` (ProcessBench's ``gsm8k-0``, ``math-12``) gives subset NAME.
- TRL's stepwise supervision (``PRMTrainer``; ``trl-lib/math_shepherd``, ``trl-lib/prm800k``)::

    {"prompt": "...", "completions": ["step 1", "step 2"], "labels": [true, false]}

  ``completions`` are the steps and ``labels`` one boolean per step (true: right), read as
  ProcessBench's ``steps``/``labels``.
- PRM800K (``{"question": {"problem": …}, "label": {"steps": [{"completions": [{"text",
  "rating"}], "human_completion", "chosen_completion"}], "finish_reason"}}``): each step is the
  chosen completion, else the human completion (rated +1), else its only completion, else (the
  last step of a ``found_error`` trajectory) the first completion rated −1; ratings −1/0/+1 are
  the labels. A ``bad_problem`` record, an unrated step or a trajectory without steps is an error.
- Math-Shepherd (``{"input": "question Step 1: … ки\\nStep 2: … ки", "label": "… +\\n… -",
  "task": "GSM8K"}``): the steps are the texts before each ``ки`` tag (the question is the text
  before ``Step 1:``), the label string must be the input with each tag replaced by ``+`` or
  ``-``; ``task`` is the subset.

The example has the solution as its one response (steps joined by a blank line, so the ``auto``
step split gives the steps back), no chosen response, and ``meta``: ``steps``,
``step_labels`` and ``first_error``.
"""

from __future__ import annotations

import re
from typing import Any

from rewardkit.data import checks
from rewardkit.data.location import describe
from rewardkit.data.record import Record, csv_number
from rewardkit.types import Example

#: Text joining steps into a response: the ``auto`` split rule's paragraph break.
STEP_JOIN = "\n\n"
#: Math-Shepherd's step tag.
SHEPHERD_TAG = "ки"
_LABELS = {"+": 1, "-": -1, "0": 0, "neutral": 0, "1": 1, "-1": -1, True: 1, False: -1}
_SUBSET_ID = re.compile(r"([A-Za-z][A-Za-z0-9_.]*)-\d+")
_SHEPHERD_FIRST = re.compile(r"Step\s*1\s*:")
_BLANK_LINE = re.compile(r"\r?\n[ \t]*\r?\n")
#: Math-Shepherd's tag as a word of its own (not the letters of a word such as "Ники").
_SHEPHERD_TAG = re.compile(rf"(?<!\w){SHEPHERD_TAG}(?!\w)")


def _index(value: Any) -> int | None:
    """``value`` as a step index when it is an integer (or an integral float / numeric text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    return None


def _is_prm800k(rec: Record) -> bool:
    label, question = rec.peek("label", structured=True), rec.peek("question", structured=True)
    return isinstance(label, dict) and "steps" in label and isinstance(question, dict)


def _is_shepherd(rec: Record) -> bool:
    text, label = rec.peek("input"), rec.peek("label")
    return isinstance(text, str) and SHEPHERD_TAG in text and isinstance(label, str)


def _is_trl_stepwise(rec: Record) -> bool:
    """TRL's stepwise supervision: ``prompt``, a list of step ``completions`` and ``labels``."""
    comps = rec.peek("completions", structured=True)
    return (
        not rec.has("steps")
        and rec.has("prompt")
        and rec.has("labels")
        and isinstance(comps, list)
        and all(isinstance(c, str) for c in comps)
    )


def _steps_field(rec: Record) -> str:
    """The field holding the step texts: ``steps``, or TRL's ``completions`` in a record without
    ``steps`` (checked there, so a bad step is named where it is)."""
    return "completions" if not rec.has("steps") and rec.has("completions") else "steps"


def looks_like(rec: Record) -> bool:
    """A record with a list of ``steps`` and ``labels`` or a ProcessBench ``label``, or a
    PRM800K, Math-Shepherd or TRL stepwise-supervision record."""
    if _is_prm800k(rec) or _is_shepherd(rec) or _is_trl_stepwise(rec):
        return True
    steps = rec.peek("steps", structured=True)
    label = csv_number(rec.peek("label")) if rec.loc.kind == "csv" else rec.peek("label")
    return isinstance(steps, list) and (rec.has("labels") or _index(label) is not None)


def _label(rec: Record, value: Any, i: int, name: str = "labels", sub: str | None = None) -> int:
    key = value.strip().lower() if isinstance(value, str) else value
    if isinstance(key, (bool, str)):
        if key in _LABELS:
            return _LABELS[key]
    elif isinstance(key, int | float) and key in (-1, 0, 1):
        return int(key)
    raise rec.error(
        name, f"expected +1, 0 or -1 (or '+', '-', '0'), got {describe(value)}", sub or f"[{i}]"
    )


def blank_line_error(rec: Record, text: str, name: str, sub: str, what: str = "") -> None:
    """Refuse a step holding a blank line: the solution text joins its steps with one
    (:data:`STEP_JOIN`), so its paragraphs would read there as several steps under one label
    (a PRM splitting the text sees a step the labels do not know; given as one step, a wrong
    paragraph hides behind one score)."""
    if _BLANK_LINE.search(text):
        raise rec.error(
            name,
            f"{what or 'this step'} holds a blank line, which separates steps in the solution "
            "text: give each paragraph as its own step (with its own label), or remove the "
            "blank line",
            sub,
        )


def first_error(labels: list[int]) -> int:
    """Index of the first −1 label, or −1 when no step is wrong."""
    return next((i for i, v in enumerate(labels) if v < 0), -1)


def _finish(rec: Record, prompt: Any, steps: list[str], labels: list[int], first: int) -> Example:
    if not rec.has("subset"):
        match = _SUBSET_ID.fullmatch(str(rec.peek("id") or ""))
        if match:
            rec.data["subset"] = match.group(1)
    meta = {"steps": steps, "step_labels": labels, "first_error": first}
    return rec.finish("steps", prompt, [STEP_JOIN.join(steps)], [], meta=meta)


def convert(rec: Record) -> Example:
    """See the module docstring."""
    if _is_prm800k(rec):
        return _convert_prm800k(rec)
    if _is_shepherd(rec) and not rec.has("steps"):
        return _convert_shepherd(rec)
    name = next((k for k in ("problem", "question", "prompt") if rec.has(k)), "problem")
    prompt = checks.prompt(rec, name)
    field = _steps_field(rec)
    steps = checks.text_list(rec, field, rec.require(field, structured=True), blank_ok=False)
    for k, step in enumerate(steps):
        blank_line_error(rec, step, field, f"[{k}]")
    n = len(steps)
    labels: list[int] | None = None
    if rec.has("labels"):
        raw = rec.get("labels", structured=True)
        if not isinstance(raw, list) or len(raw) != n:
            raise rec.error(
                "labels", f"expected {n} step labels (one per step), got {describe(raw)}"
            )
        labels = [_label(rec, v, i) for i, v in enumerate(raw)]
    first = None
    if rec.has("label") and rec.number("label") is not None:
        raw_first = rec.number("label")
        first = _index(raw_first)
        if first is None or not -1 <= first < n:
            raise rec.error(
                "label", f"expected -1 or a step index below {n}, got {describe(raw_first)}"
            )
    if labels is None and first is None:
        raise rec.error("labels", "a step-labelled record needs 'labels' (per step) or 'label'")
    if labels is None:
        labels = [1] * n if first == -1 else [1] * first + [-1] * (n - first)  # type: ignore[operator]
    if first is None:
        first = first_error(labels)
    elif first != first_error(labels):
        raise rec.error(
            "label", f"first wrong step is {first} but the step labels say {first_error(labels)}"
        )
    return _finish(rec, prompt, steps, labels, first)


def _prm800k_step(rec: Record, step: Any, i: int) -> tuple[str, Any] | None:
    """(text, rating) of one PRM800K step, or None when it has no step to take."""
    sub = f".steps[{i}]"
    if not isinstance(step, dict):
        raise rec.error("label", f"expected a step object, got {describe(step)}", sub)
    comps = step.get("completions") or []
    if not isinstance(comps, list) or not all(isinstance(c, dict) for c in comps):
        raise rec.error("label", f"expected a list of completions, got {describe(comps)}", sub)
    chosen, human = step.get("chosen_completion"), step.get("human_completion")
    if chosen is not None:
        k = _index(chosen)
        if k is None or not 0 <= k < len(comps):
            raise rec.error(
                "label", f"chosen_completion {describe(chosen)} is not a completion index", sub
            )
        return comps[k].get("text"), comps[k].get("rating")
    if isinstance(human, dict) and human.get("text"):
        return human["text"], 1  # written by the labeller to continue a correct solution
    if len(comps) == 1:
        return comps[0].get("text"), comps[0].get("rating")
    bad = [c for c in comps if c.get("rating") == -1]
    return (bad[0].get("text"), -1) if bad else None


def _convert_prm800k(rec: Record) -> Example:
    """A PRM800K record (see the module docstring)."""
    label = rec.get("label", structured=True)
    question = rec.get("question", structured=True)
    if label.get("finish_reason") == "bad_problem":
        raise rec.error("label", "finish_reason is 'bad_problem' (no usable step labels)")
    problem = question.get("problem")
    if not isinstance(problem, str) or not problem.strip():
        raise rec.error("question", f"expected a problem text, got {describe(problem)}", ".problem")
    raw_steps = label.get("steps")
    if not isinstance(raw_steps, list):
        raise rec.error("label", f"expected a list of steps, got {describe(raw_steps)}", ".steps")
    steps: list[str] = []
    labels: list[int] = []
    stop = None  # the step with nothing to take, if the trajectory stops before its end
    for i, step in enumerate(raw_steps):
        taken = _prm800k_step(rec, step, i)
        if taken is None:
            stop = i
            break
        text, rating = taken
        if not isinstance(text, str) or not text.strip():
            raise rec.error("label", f"expected a step text, got {describe(text)}", f".steps[{i}]")
        if rating is None:
            raise rec.error("label", "the step taken has no rating", f".steps[{i}]")
        blank_line_error(rec, text, "label", f".steps[{i}]", "the step taken")
        steps.append(text)
        labels.append(_label(rec, rating, i, "label", f".steps[{i}].rating"))
        if labels[-1] < 0:
            break  # the trajectory ends at its first wrong step
    if not steps:
        raise rec.error("label", "no labelled step in this trajectory", ".steps")
    if first_error(labels) < 0:
        _prm800k_complete(rec, label.get("finish_reason"), stop)
    prompt = [{"role": "user", "content": problem}]
    return _finish(rec, prompt, steps, labels, first_error(labels))


def _prm800k_complete(rec: Record, reason: Any, stop: int | None) -> None:
    """Refuse a PRM800K trajectory with no step rated −1 that is not a whole solution: its first
    error is unknown, and read as −1 it would count as a correct solution. ``found_error``
    says a step was rated −1 (none was taken), ``give_up`` that the labeller stopped before the
    solution ended; a step with no completion to take (none chosen, none rated −1) ends it
    early too."""
    if reason == "found_error":
        raise rec.error(
            "label",
            "finish_reason is 'found_error' but no step taken is rated -1 (its first error is "
            "unknown)",
            ".finish_reason",
        )
    if reason == "give_up":
        raise rec.error(
            "label",
            "finish_reason is 'give_up': the labeller stopped before the solution ended and "
            "rated no step -1, so whether it has a wrong step is unknown",
            ".finish_reason",
        )
    if stop is not None:
        raise rec.error(
            "label",
            "no completion to take (none chosen, no human completion, none rated -1): the "
            "trajectory stops before its end and no step is rated -1",
            f".steps[{stop}]",
        )


def _convert_shepherd(rec: Record) -> Example:
    """A Math-Shepherd record (see the module docstring)."""
    text, label = rec.get("input"), rec.get("label")
    # the tag as a word of its own: "Ники" in a question or a step is no tag
    tags = [(m.start(), m.end()) for m in _SHEPHERD_TAG.finditer(text)]
    if not tags:
        raise rec.error("input", f"no step tag {SHEPHERD_TAG!r} standing as a word of its own")
    bounds = [0, *(x for t in tags for x in t), len(text)]
    parts = [text[bounds[k] : bounds[k + 1]] for k in range(0, len(bounds), 2)]
    if parts[-1].strip():
        raise rec.error("input", "text after the last step tag 'ки'")
    head = _SHEPHERD_FIRST.search(parts[0])
    if head is None or not parts[0][: head.start()].strip():
        raise rec.error("input", "expected 'question Step 1: … ки' (no 'Step 1:' after a question)")
    question = parts[0][: head.start()].strip()
    segments = [parts[0][head.start() :], *parts[1:-1]]
    labels: list[int] = []
    pos = 0
    for i, seg in enumerate(parts[:-1]):
        sign = label[pos + len(seg) : pos + len(seg) + 1]
        if label[pos : pos + len(seg)] != seg or sign not in ("+", "-"):
            inside = " ('ки' inside a word is text, not a tag)" if SHEPHERD_TAG in seg else ""
            raise rec.error(
                "label", f"does not match 'input' with '+'/'-' at step tag {i + 1}{inside}"
            )
        labels.append(1 if sign == "+" else -1)
        pos += len(seg) + 1
    if label[pos:] != parts[-1]:
        raise rec.error("label", "does not match 'input' after the last step tag")
    steps = [s.strip() for s in segments]
    if any(not s for s in steps):
        raise rec.error("input", f"step {steps.index('') + 1} is empty")
    for k, step in enumerate(steps):
        blank_line_error(rec, step, "input", "", f"step {k + 1}")
    if not rec.has("subset") and isinstance(rec.peek("task"), str) and rec.peek("task"):
        rec.data["subset"] = rec.get("task")
    prompt = [{"role": "user", "content": question}]
    return _finish(rec, prompt, steps, labels, first_error(labels))
