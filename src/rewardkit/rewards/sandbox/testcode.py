"""Top-level statements of Python test code, sorted into set-up and checks (``docs/sandbox.md``).

A set-up failure is not a verdict (the harness prints it and goes on), so a statement left in
set-up must not be able to hide a check. Set-up is therefore only what defines names and cannot
check anything by failing:

- ``import``, ``pass``, ``global``, docstrings; ``def`` with inert defaults and plain
  decorators; ``class`` (other than test classes) with plain bases and decorators whose body
  only defines (a class body runs when the class is defined);
- an assignment of an inert value (literals, names, lambdas, containers of them, arithmetic on
  numbers) to names, and a ``print`` of inert values;
- an assignment to fresh names (not bound earlier by the test code) that later test code reads:
  if it fails the names stay unbound, so what reads them fails (``x = f(2)`` then
  ``assert x == 4``).

Everything else is a check, one test each: an ``assert``; a ``def test*`` function (called); each
``test*`` method of a test class (a ``unittest.TestCase`` subclass, run with its fixtures, or a
pytest-style ``class Test...`` without ``__init__``); and any other statement, which passes when
it runs without an exception (``SystemExit`` with status 0 included): a call (``check(f)``,
``tc.assertEqual(...)``), ``if``/``for``/``while``/``with``/``try``/``raise``, an assignment
that is neither of the above. Not run: a top-level call of a ``test*`` function without
arguments (the function is a test already) and ``unittest.main()`` when the code defines test
case classes (each of their methods is a test already).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from typing import Literal

from rewardkit.rewards.sandbox.checks import defined_names

__all__ = ["Item", "sort_statements"]

#: ("setup", source, None) or ("test", source, the assert node when the test is one assert).
Item = tuple[Literal["setup", "test"], str, ast.Assert | None]

_DEFINITIONS = (
    ast.Import,
    ast.ImportFrom,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Pass,
    ast.Global,
    ast.Nonlocal,
)
_ARITHMETIC = (ast.Constant, ast.BinOp, ast.UnaryOp, ast.operator, ast.unaryop)


def _inert(node: ast.expr) -> bool:
    """Literals, names, lambdas, containers of them and arithmetic on numbers: no call of the
    solution's or the tests' code (a check cannot hide in it)."""
    if isinstance(node, ast.Constant | ast.Name | ast.Lambda):
        return True
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return all(_inert(e) for e in node.elts)
    if isinstance(node, ast.Starred):
        return _inert(node.value)
    if isinstance(node, ast.Dict):
        return all(k is None or _inert(k) for k in node.keys) and all(map(_inert, node.values))
    if isinstance(node, ast.BinOp | ast.UnaryOp):
        return all(isinstance(n, _ARITHMETIC) for n in ast.walk(node))
    return False


def _target_names(targets: Iterable[ast.expr]) -> set[str] | None:
    """Names bound by assignment targets; None when a target is not a plain name (an attribute or
    item assignment changes an object: it may be a check)."""
    names: set[str] = set()
    for t in targets:
        if isinstance(t, ast.Name):
            names.add(t.id)
        elif isinstance(t, ast.Tuple | ast.List):
            inner = _target_names(t.elts)
            if inner is None:
                return None
            names |= inner
        elif isinstance(t, ast.Starred):
            inner = _target_names([t.value])
            if inner is None:
                return None
            names |= inner
        else:
            return None
    return names


def _loads(nodes: Iterable[ast.stmt]) -> set[str]:
    return {
        n.id
        for node in nodes
        for n in ast.walk(node)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    }


def _reference(node: ast.expr) -> bool:
    """A name or a dotted name (``staticmethod``, ``unittest.TestCase``)."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name)


def _decorator(node: ast.expr, helpers: set[str]) -> bool:
    """``@name``, ``@a.b``, ``@name(<inert arguments>)`` (``@lru_cache(None)``), but not a call
    of the tests' own functions (``@check_with(f)`` runs a check when it decorates)."""
    if isinstance(node, ast.Call):
        args = [*node.args, *(k.value for k in node.keywords)]
        own = isinstance(node.func, ast.Name) and node.func.id in helpers
        return _reference(node.func) and not own and all(_inert(a) for a in args)
    return _reference(node)


def _definition(node: ast.stmt, helpers: set[str]) -> bool:
    """A definition whose own execution runs no check: ``import``; a ``def`` with inert
    defaults and plain decorators; a ``class`` with plain bases and decorators whose body only
    defines (a class body runs when the class is defined)."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        defaults = [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
        return all(map(_inert, defaults)) and all(
            _decorator(d, helpers) for d in node.decorator_list
        )
    if isinstance(node, ast.ClassDef):
        heads = [*node.bases, *(k.value for k in node.keywords)]
        return (
            all(map(_reference, heads))
            and all(_decorator(d, helpers) for d in node.decorator_list)
            and all(_is_setup(n, set(), set(), helpers, in_class=True) for n in node.body)
        )
    return isinstance(node, _DEFINITIONS)


def _is_setup(
    node: ast.stmt, before: set[str], later: set[str], helpers: set[str], in_class: bool = False
) -> bool:
    """Whether a statement only defines names and cannot hide a check (module docstring);
    ``helpers``: the functions and classes the test code defines."""
    if isinstance(node, _DEFINITIONS):
        return _definition(node, helpers)
    if isinstance(node, ast.Expr):
        v = node.value
        if isinstance(v, ast.Constant):
            return True
        return (
            isinstance(v, ast.Call)
            and isinstance(v.func, ast.Name)
            and v.func.id == "print"
            and all(_inert(a) for a in v.args)
            and all(_inert(k.value) for k in v.keywords)
        )
    if isinstance(node, ast.AnnAssign):
        targets, value = [node.target], node.value
    elif isinstance(node, ast.Assign):
        targets, value = node.targets, node.value
    else:
        return False
    if value is None:
        return True
    if _inert(value) and all(isinstance(t, ast.Name) for t in targets):
        return True
    if in_class:  # class attributes: only inert values
        return False
    names = _target_names(targets)
    return bool(names) and not names & before and names <= later


def _test_methods(node: ast.ClassDef) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [
        m
        for m in node.body
        if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef) and m.name.startswith("test")
    ]


def _test_class_kind(node: ast.ClassDef, case_classes: set[str]) -> str | None:
    """``"unittest"`` for a TestCase subclass (also of a test-code TestCase class), ``"pytest"``
    for a ``Test...`` class without ``__init__``; None for other classes."""
    for base in node.bases:
        text = ast.unparse(base)
        if text.endswith("TestCase") or text in case_classes:
            return "unittest"
    own = {m.name for m in node.body if isinstance(m, ast.FunctionDef)}
    if node.name.startswith("Test") and "__init__" not in own:
        return "pytest"
    return None


def _method_test(cls: str, kind: str, method: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    name = method.name
    if kind == "unittest":  # setUpClass / setUp / the test / tearDown / tearDownClass
        return (
            f"{cls}.setUpClass()\ntry:\n    {cls}({name!r}).debug()\n"
            f"finally:\n    {cls}.tearDownClass()\n"
        )
    if isinstance(method, ast.AsyncFunctionDef):
        return f"import asyncio\nasyncio.run({cls}().{name}())\n"
    return f"{cls}().{name}()\n"


def _unittest_aliases(body: Sequence[ast.stmt]) -> set[str]:
    return {
        a.asname or a.name
        for n in body
        if isinstance(n, ast.Import)
        for a in n.names
        if a.name == "unittest"
    }


def _call_of(node: ast.stmt, names: set[str], no_args: bool) -> bool:
    if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)):
        return False
    call = node.value
    if no_args and (call.args or call.keywords):
        return False
    func = call.func
    if isinstance(func, ast.Name):
        return func.id in names
    return (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and f"{func.value.id}.{func.attr}" in names
    )


def sort_statements(body: Sequence[ast.stmt], not_run: Iterable[str] = ()) -> list[Item]:
    """The statements of ``body`` (top level, ``__main__`` guards already opened) as set-up and
    tests, in order. ``not_run``: names whose top-level calls are left out (HumanEval's ``check``,
    judged as its own test)."""
    tests = {
        n.name
        for n in body
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name.startswith("test")
    }
    later: list[set[str]] = [set() for _ in body]  # names read after each statement
    for k in range(len(body) - 2, -1, -1):
        later[k] = later[k + 1] | _loads([body[k + 1]])
    main = {f"{a}.main" for a in _unittest_aliases(body)}
    helpers = {
        n.name for n in body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }
    skipped = set(not_run)
    case_classes: set[str] = set()
    items: list[Item] = []
    before: set[str] = set()
    for k, node in enumerate(body):
        kind = _test_class_kind(node, case_classes) if isinstance(node, ast.ClassDef) else None
        if isinstance(node, ast.Assert):
            items.append(("test", ast.unparse(node), node))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in tests:
            items.append(("setup", ast.unparse(node), None))
            call = f"{node.name}()"
            if isinstance(node, ast.AsyncFunctionDef):
                call = f"import asyncio\nasyncio.run({node.name}())"
            items.append(("test", call, None))
        elif isinstance(node, ast.ClassDef) and kind is not None:
            if kind == "unittest":
                case_classes.add(node.name)
            items.append(("setup", ast.unparse(node), None))
            items += [("test", _method_test(node.name, kind, m), None) for m in _test_methods(node)]
        elif _call_of(node, tests, no_args=True) or _call_of(node, skipped, no_args=False):
            pass  # already a test of its own
        elif case_classes and _call_of(node, main, no_args=False):
            pass  # unittest.main(): every test method is a test already
        elif _is_setup(node, before, later[k], helpers):
            items.append(("setup", ast.unparse(node), None))
        else:
            items.append(("test", ast.unparse(node), None))
        before |= defined_names([node])
    return items
