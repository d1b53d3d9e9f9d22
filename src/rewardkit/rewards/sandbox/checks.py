"""Assertions the trusted parent can judge: an ``assert`` split into the values the sandbox must
compute and the comparisons the parent makes on them (``docs/sandbox.md``).

The sandbox evaluates only the operand expressions and sends their values back as data; the
literal each is compared with, and the comparison, never enter it. The code under test controls
its process, so it can report any value: a split is accepted only where reporting a value is no
more than what a wrong program could do by returning it, and where the expected value is not
something it can guess from what it sees:

- ``EXPR == LITERAL`` (either order) for any ``EXPR`` when the literal is not a bool or None;
- ``abs(EXPR - LITERAL) < TOL`` (also ``math.fabs``, ``+``, ``<=``, either order inside) and
  ``math.isclose(EXPR, LITERAL, ...)``: the parent does the arithmetic;
- for a *call of the solution's code* ``f(...)`` (a name neither a builtin nor defined by the
  tests; not a method with arguments called on what it returned, ``f(x).startswith("a")``,
  which would hand the expected value to the returned object): truthiness, ``not``, ``== True/False/None``, ``!=``, ``<``, ``<=``, ``>``, ``>=``,
  ``in``, ``not in`` a literal, ``is`` / ``is not`` None, True or False;
- ``A and B`` of the above.

The sandbox sees the source of what it computes, so none of these is a value test when the test
logic computed beside the solution holds a constant (outside the solution's own call arguments,
subscripts and ``round``'s digits) and the target is guessable or one of those constants:
``f(2) / 4 == 1``, ``int(f(2) == 4) == 1`` (:func:`guessable`).

Everything else (``assert isinstance(f(x), list)``, comparisons between two computed values,
helpers the tests define) stays an in-process test.
"""

from __future__ import annotations

import ast
import builtins
import math
import operator
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["Check", "defined_names", "guessable", "holds", "split_assert"]

#: One comparison the parent makes: (operator name, its argument).
Check = tuple[str, Any]

_COMPARE: dict[type[ast.cmpop], str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}
_FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_BINARY: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": lambda v, lit: v in lit,
    "not in": lambda v, lit: v not in lit,
    "is": operator.is_,
    "is not": operator.is_not,
}
_BUILTINS = frozenset(dir(builtins))
#: Module names tests call functions of (``math.fabs``, ``np.allclose``): never the solution's.
_MODULES = frozenset(
    [
        "math",
        "cmath",
        "statistics",
        "re",
        "itertools",
        "functools",
        "collections",
        "heapq",
        "bisect",
        "string",
        "operator",
        "random",
        "decimal",
        "fractions",
        "numpy",
        "np",
        "json",
        "copy",
    ]
)
_NO = object()
_NAME = object()  # a name the tests bind: its value is in the sandbox
#: Deepest nesting looked into when deciding whether a value is guessable.
MAX_GUESS_DEPTH = 8


def _literal(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NO


def defined_names(statements: Iterable[ast.stmt]) -> set[str]:
    """Names the tests' own code binds (assignments, defs, classes, imports)."""
    names: set[str] = set()
    for stmt in statements:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.alias):
                names.add((node.asname or node.name).split(".")[0])
    return names


def _solution_call(node: ast.expr, tests_names: set[str]) -> bool:
    """Whether ``node`` is a call of the solution's code: ``f(...)``, ``Solution().f(...)``."""
    if not isinstance(node, ast.Call):
        return False
    if _method_of_result(node):
        return False  # g(x).startswith("abx"): the returned object would be handed "abx"
    root: ast.expr = node.func
    while isinstance(root, ast.Attribute | ast.Call):
        root = root.value if isinstance(root, ast.Attribute) else root.func
    if isinstance(root, ast.Name) and root.id in _MODULES:
        return False  # math.fabs(f(1) - f(2)): a library's function, not the solution's
    return isinstance(root, ast.Name) and root.id not in _BUILTINS and root.id not in tests_names


def _method_of_result(node: ast.Call) -> bool:
    """``f(...).m(...)``: a method called on what a function returned, with arguments (an
    object whose every method says True forged ``g('x').startswith('abx')``); a method of a
    class instance (``Solution().f(...)``, capitalised) is the solution's own code."""
    func = node.func
    if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call)):
        return False
    inner = func.value.func
    cls = isinstance(inner, ast.Name) and inner.id[:1].isupper()
    return not cls and bool(node.args or node.keywords)


def _absolute(func: ast.expr) -> bool:
    """``abs``, ``fabs`` or ``math.fabs``: the parent takes the absolute value itself (computed
    beside the solution, ``math.fabs(area(2) - A)`` handed ``A`` to the returned object, whose
    ``__sub__`` could answer 0)."""
    if isinstance(func, ast.Name):
        return func.id in ("abs", "fabs")
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "fabs"
        and isinstance(func.value, ast.Name)
        and func.value.id == "math"
    )


def _near(node: ast.expr, bound: ast.expr, op: str) -> tuple[ast.expr, Check] | None:
    """``abs(EXPR ± LIT) < TOL`` (or ``== 0``) → (EXPR, ("near", (offset, TOL, strict)))."""
    tol = _literal(bound)
    if type(tol) not in (int, float) or not (op in ("<", "<=") or (op == "==" and tol == 0)):
        return None  # abs(EXPR - LIT) == 0 is EXPR == LIT, with the arithmetic in the parent
    if not (isinstance(node, ast.Call) and _absolute(node.func)):
        return None
    if len(node.args) != 1 or node.keywords:
        return None
    inner = node.args[0]
    if not isinstance(inner, ast.BinOp) or type(inner.op) not in (ast.Sub, ast.Add):
        return None
    right, left = _literal(inner.right), _literal(inner.left)
    if type(right) in (int, float):  # EXPR - LIT, EXPR + LIT
        offset = -right if isinstance(inner.op, ast.Sub) else right
        return inner.left, ("near", (offset, tol, op == "<"))
    if type(left) in (int, float) and isinstance(inner.op, ast.Sub):  # LIT - EXPR
        return inner.right, ("near", (-left, tol, op == "<"))
    return None


def _isclose(node: ast.Call, names: set[str]) -> tuple[ast.expr, Check] | None:
    func = node.func
    named = isinstance(func, ast.Attribute) and func.attr == "isclose"
    if not named or not isinstance(func.value, ast.Name) or func.value.id != "math":
        return None
    if len(node.args) != 2 or any(k.arg not in ("rel_tol", "abs_tol") for k in node.keywords):
        return None
    tols = {"rel_tol": 1e-9, "abs_tol": 0.0} | {
        str(k.arg): _literal(k.value) for k in node.keywords
    }
    if any(type(v) not in (int, float) for v in tols.values()):
        return None
    a, b = node.args
    for expr, lit in ((a, _literal(b)), (b, _literal(a))):
        if type(lit) in (int, float):
            return _unless_handed(
                (expr, ("isclose", (lit, tols["rel_tol"], tols["abs_tol"]))), lit, names
            )
    return None


def _compare(node: ast.Compare, names: set[str]) -> tuple[ast.expr, Check] | None:
    if len(node.ops) != 1 or type(node.ops[0]) not in _COMPARE:
        return None
    op, left, right = _COMPARE[type(node.ops[0])], node.left, node.comparators[0]
    near = _near(left, right, op) or _near(right, left, _FLIPPED.get(op, ""))
    if near is not None:
        return _unless_handed(near, -near[1][1][0], names)
    lit = _literal(right)
    expr = left
    if lit is _NO and op in _FLIPPED:
        lit, expr, op = _literal(left), right, _FLIPPED[op]
    if lit is _NO:
        return None
    if op in ("is", "is not") and not (lit is None or type(lit) is bool):
        return None
    guessable = lit is None or type(lit) is bool
    if op == "==" and type(lit) in (int, float) and lit == 0:
        moved = _difference(expr)
        if moved is not None:
            return _unless_handed(moved, moved[1][1], names)
    if op == "==" and not guessable:
        return _unless_handed((expr, ("==", lit)), lit, names)
    return (expr, (op, lit)) if _solution_call(expr, names) else None


def _difference(expr: ast.expr) -> tuple[ast.expr, Check] | None:
    """``EXPR - LIT == 0`` (or ``LIT - EXPR``, ``EXPR + LIT``) as ``EXPR == LIT`` (``-LIT``):
    computed beside the solution, the difference handed ``LIT`` to the returned object, whose
    ``__sub__`` could answer 0."""
    if not (isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Sub | ast.Add)):
        return None
    right, left = _literal(expr.right), _literal(expr.left)
    if isinstance(expr.op, ast.Add):
        for lit, other in ((right, expr.left), (left, expr.right)):
            if type(lit) in (int, float):
                return other, ("==", -lit)
        return None
    if type(right) in (int, float):
        return expr.left, ("==", right)
    if type(left) in (int, float):
        return expr.right, ("==", left)
    return None


def guessable(value: Any, depth: int = 0) -> bool:
    """A value a forger would try first: None, a bool, 0, 1 or -1, an empty text or container,
    ``"True"``/``"False"``, or containers of such values."""
    if value is None or type(value) is bool:
        return True
    if type(value) in (int, float, complex):
        return value in (0, 1, -1)
    if type(value) in (str, bytes):
        return value in ("", b"", "True", "False")  # the text of a comparison's result too
    if type(value) in (list, tuple, set, frozenset) and depth < MAX_GUESS_DEPTH:
        return all(guessable(v, depth + 1) for v in value)
    if type(value) is dict and depth < MAX_GUESS_DEPTH:
        return all(guessable(v, depth + 1) for kv in value.items() for v in kv)
    return False


def _test_logic(expr: ast.expr, names: set[str]) -> list[Any]:
    """The constants ``expr`` applies to the solution's results beside it (literals, and
    ``_NAME`` for a name the tests bind), outside the arguments of the solution's own calls
    (its input, which it sees anyway), subscripts and ``round``'s digits."""
    constants: list[Any] = []
    stack = [expr]
    while stack:
        node = stack.pop()
        if _solution_call(node, names):
            continue
        if isinstance(node, ast.Constant):
            constants.append(node.value)
        elif isinstance(node, ast.Name) and node.id in names:
            constants.append(_NAME)
        elif isinstance(node, ast.Subscript):
            stack.append(node.value)
        elif isinstance(node, ast.Call) and _rounding(node):
            stack.append(node.args[0])
        else:
            stack.extend(ast.iter_child_nodes(node))
    return constants


def _rounding(node: ast.Call) -> bool:
    """``round(X, <literal>)``: the digits do not carry the answer."""
    return (
        isinstance(node.func, ast.Name)
        and node.func.id == "round"
        and len(node.args) == 2
        and isinstance(node.args[1], ast.Constant)
        and not node.keywords
    )


def _unless_handed(
    split: tuple[ast.expr, Check], target: Any, names: set[str]
) -> tuple[ast.expr, Check] | None:
    """``split``, unless the test logic computed beside the solution could hand it the answer
    (None: not a value test). The sandbox runs ``EXPR`` and sees its source, so a constant in
    it beside a guessable target gives the expected value away: ``f(2) / 4 == 1`` and
    ``abs(f(2) / 4 - 1) < tol`` (``__truediv__`` answers 1, or the code reads the 4),
    ``int(f(2) == 4) == 1`` (an ``__eq__`` that always holds), ``max(f(2), 4) == 4``."""
    constants = _test_logic(split[0], names)
    if constants and (guessable(target) or any(_equal(c, target) for c in constants)):
        return None
    return split


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return False


def _split(node: ast.expr, names: set[str]) -> list[tuple[ast.expr, Check]] | None:
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        parts = [_split(v, names) for v in node.values]
        return None if any(p is None for p in parts) else [c for p in parts for c in p or ()]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return [(node.operand, ("falsy", None))] if _solution_call(node.operand, names) else None
    if isinstance(node, ast.Compare):
        one = _compare(node, names)
        return None if one is None else [one]
    if isinstance(node, ast.Call):
        close = _isclose(node, names)
        if close is not None:
            return [close]
    return [(node, ("truthy", None))] if _solution_call(node, names) else None


def split_assert(node: ast.stmt, tests_names: set[str]) -> tuple[str, list[Check]] | None:
    """For an ``assert`` the parent can judge: (source of a tuple expression of the values the
    sandbox computes, one check per value); None for any other statement."""
    if not isinstance(node, ast.Assert):
        return None
    parts = _split(node.test, tests_names)
    if not parts:
        return None
    exprs = ", ".join(ast.unparse(expr) for expr, _ in parts)
    return f"({exprs},)", [check for _, check in parts]


def holds(check: Check, value: Any) -> bool:
    """Whether a decoded value passes one check (False where the comparison cannot be made)."""
    op, arg = check
    try:
        if op == "truthy":
            return bool(value)
        if op == "falsy":
            return not value
        if op == "near":
            offset, tol, strict = arg
            gap = abs(value + offset)
            return bool(gap < tol if strict else gap <= tol)
        if op == "isclose":
            target, rel_tol, abs_tol = arg
            return math.isclose(value, target, rel_tol=rel_tol, abs_tol=abs_tol)
        return bool(_BINARY[op](value, arg))
    except (TypeError, ValueError, OverflowError, RecursionError, KeyError):
        return False
