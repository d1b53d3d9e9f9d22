"""Tests whose expected value the sandbox would see in the other tests it runs beside them.

All value and call tests of a solution run in one process, which receives the source (or the
arguments) of every test at once, and the code under test can read them (from the harness's
memory, through ``gc``). A test whose expected value appears verbatim among the literals of
another test could be looked up instead of computed: a round trip (``enc("abc") == "cba"``
beside ``dec("cba") == "abc"``), call cases whose outputs are other cases' inputs. Such a test is
judged in a run without the tests that show its answer (:func:`isolated_runs`); values a forger
would guess anyway (None, booleans, 0, ±1, empty values: :func:`.checks.guessable`) are left
alone. Not covered: an answer shown by set-up code (it must run) or by the test itself (its own
arguments; HumanEval's ``check``, which is one test).
"""

from __future__ import annotations

import ast
import contextlib
from typing import Any

from rewardkit.rewards.sandbox.checks import guessable
from rewardkit.rewards.sandbox.plan import TestPlan

__all__ = ["isolated_runs"]

#: Deepest nesting of a value whose parts are looked at.
MAX_DEPTH = 32
#: Most extra runs per response (each costs a process start, about 0.1 s); the tests beyond
#: them are judged in the main run.
MAX_RUNS = 4
#: Integers this small are shown by most tests; seeing one is no clue to an answer.
SMALL_INT = 1000
_NO = object()
_CONTAINERS = (list, tuple, set, frozenset, dict)


def _key(value: Any, depth: int = 0) -> Any:
    """A hashable key of ``value`` with Python's equality (lists and tuples alike, as call
    results compare); None when it has none. An atom is its own key."""
    if depth > MAX_DEPTH:
        return None
    if isinstance(value, list | tuple):
        if _flat(value):
            items: Any = tuple(value)
        else:
            items = tuple(_key(v, depth + 1) for v in value)
        return ("seq", items)
    if isinstance(value, set | frozenset):
        return ("set", frozenset(_key(v, depth + 1) for v in value))
    if isinstance(value, dict):
        pairs = frozenset((_key(k, depth + 1), _key(v, depth + 1)) for k, v in value.items())
        return ("dict", pairs)
    try:
        hash(value)
    except TypeError:
        return None
    return value


def _flat(values: Any) -> bool:
    """Whether no member of ``values`` is a container (the types are gathered at C speed)."""
    return not any(issubclass(t, _CONTAINERS) for t in set(map(type, values)))


def _shape(value: Any) -> Any:
    for kind, types in (("seq", list | tuple), ("set", set | frozenset), ("dict", dict)):
        if isinstance(value, types):
            return kind, len(value)
    return "atom"


class _Finder:
    """Finds the answers (keys) among the parts of values; keys are built only for the parts
    shaped like an answer (a long list of long lists would take quadratic time otherwise)."""

    def __init__(self, keys: set[Any], shapes: set[Any]) -> None:
        self.keys, self.shapes, self.atoms = keys, shapes, "atom" in shapes

    def find(self, value: Any, found: set[Any], depth: int = 0) -> None:
        if depth > MAX_DEPTH:
            return
        if not isinstance(value, _CONTAINERS):
            key = _key(value) if self.atoms else None
            if key is not None and key in self.keys:
                found.add(key)
            return
        if _shape(value) in self.shapes:
            key = _key(value)
            if key in self.keys:
                found.add(key)
        parts = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        if not _flat(parts):
            for v in parts:
                self.find(v, found, depth + 1)
        elif self.atoms:
            with contextlib.suppress(TypeError):  # an unhashable member
                found.update(self.keys.intersection(parts))


def _literal(node: ast.AST) -> Any:
    try:
        return ast.literal_eval(node)  # type: ignore[arg-type]
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NO


def _shown(step: dict[str, Any], finder: _Finder) -> set[Any]:
    """The answers among the literal values the sandbox sees in ``step`` (and their parts)."""
    found: set[Any] = set()
    if step["kind"] == "call":
        finder.find(step["args"], found)
        return found
    try:
        tree = ast.parse(step["src"], mode="eval" if step["kind"] == "value" else "exec")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return found
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        value = _literal(node) if isinstance(node, ast.expr) else _NO
        if value is _NO:
            stack.extend(ast.iter_child_nodes(node))
        else:
            finder.find(value, found)
    return found


def _telling(value: Any) -> bool:
    """Whether finding ``value`` among the literals the sandbox sees is a clue to the answer:
    not a value a forger guesses anyway, a small integer (every test shows some) or one
    character."""
    if guessable(value):
        return False
    whole = type(value) is int or (type(value) is float and value.is_integer())
    if whole and abs(value) < SMALL_INT:
        return False
    return not (type(value) is str and len(value) == 1)


def _answers(plan: TestPlan, step: dict[str, Any]) -> list[Any]:
    """The values the test ``step`` expects that would be a clue found elsewhere."""
    i = step["index"]
    if step["kind"] == "call":
        expected = plan.expected[i]
        values = [expected]
        if isinstance(expected, list) and len(expected) == 1:
            values.append(expected[0])  # APPS's one-element wrapping is accepted
    elif step["kind"] == "value":
        values = []
        for op, arg in plan.expected[i]:
            if op == "==":
                values.append(arg)
            elif op == "in" and isinstance(arg, list | tuple | set | frozenset):
                values += list(arg)
            elif op == "near":
                values.append(-arg[0])
            elif op == "isclose":
                values.append(arg[0])
    else:
        return []
    return [v for v in values if _telling(v)]


def isolated_runs(plan: TestPlan) -> list[tuple[list[int], list[dict[str, Any]]]]:
    """(tests judged there, steps of the run) for each extra run a plan needs: the value and
    call tests whose answer another test shows are judged in runs without those tests (the
    set-up and the other earlier tests stay, in order, for what they set up). [] for most
    plans: then the one run of every step judges every test."""
    tests = [s for s in plan.steps if s["kind"] != "setup"]
    if len(tests) < 2:
        return []
    answers = {s["index"]: _answers(plan, s) for s in tests}
    keys = {i: {_key(v) for v in values} - {None} for i, values in answers.items()}
    finder = _Finder(
        set().union(*keys.values()), {_shape(v) for values in answers.values() for v in values}
    )
    if not finder.keys:
        return []
    where: dict[Any, set[int]] = {}
    for step in tests:
        for key in _shown(step, finder):
            where.setdefault(key, set()).add(step["index"])
    showers: dict[int, set[int]] = {}
    for i, mine in keys.items():
        found = set().union(*(where.get(k, set()) for k in mine)) - {i}
        if found:
            showers[i] = found
    groups: list[list[int]] = []
    for i in sorted(showers):
        for group in groups:
            if all(i not in showers.get(j, ()) and j not in showers[i] for j in group):
                group.append(i)
                break
        else:
            if len(groups) < MAX_RUNS:
                groups.append([i])
    runs = []
    for group in groups:
        hidden = set().union(*(showers[i] for i in group))
        last = max(group)
        steps = [
            s
            for s in plan.steps
            if s["kind"] == "setup" or (s["index"] <= last and s["index"] not in hidden)
        ]
        runs.append((group, steps))
    return runs
