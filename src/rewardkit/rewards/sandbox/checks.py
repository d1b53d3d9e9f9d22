"""Assertions the trusted parent can judge: an ``assert`` split into the values the sandbox must
compute and the checks the parent makes on them (``docs/sandbox.md``).

The code under test controls its process, so anything computed there is what it chose to report.
The sandbox therefore computes only the *solution's own calls* and sends their values back as
plain data; the test logic around them (arithmetic, ``abs``, ``round``, pure functions of
``math``, methods of plain values such as ``str.startswith``, indexing) and the comparison are
redone in the parent on the decoded values, and their literals never enter the sandbox:

- a call of the solution's code is ``f(...)`` (a name neither a builtin nor bound by the tests),
  a method of an object of a class of the solution's (``Solution().f(...)``, ``Solution.f(...)``,
  ``sol.f(...)`` after ``sol = Solution()``: a capitalised name is read as a class), a method
  other than a plain value's on what such a call returned (``f(x).g()``), or a bare name of the
  solution's; a module's function (``math.fabs``, ``re.match``) never is;
- ``assert P``, ``assert not P`` and ``assert P OP LITERAL`` (either order; ``==``, ``!=``,
  ``<``, ``<=``, ``>``, ``>=``, ``in``, ``not in``; ``is`` / ``is not`` None, True or False),
  ``abs(P ± LIT) < TOL`` and ``math.isclose(P, LIT, ...)``, where ``P`` is one such call under
  parent-side steps whose other operands are literals (or ``math.pi``-style constants);
- ``EXPR == LITERAL`` (literal not a bool or None; also ``near``/``isclose``) where ``EXPR``
  shows the code nothing of the tests: the solution's calls under builtin functions and methods
  with no constants or test-defined names around them (``sorted(f(x))``), or a name;
- ``A and B`` of the above.

Everything else (``assert isinstance(f(x), list)``, comparisons between two computed values,
helpers the tests define, modules' functions other than ``math``'s) stays an in-process test.
"""

from __future__ import annotations

import ast
import builtins
import math
import operator
import sys
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["Check", "defined_names", "holds", "solution_objects", "split_assert"]

#: One comparison the parent makes: (operator name, its argument).
Check = tuple[str, Any]
#: A value the sandbox computes (its expression) and the parent-side steps applied to it.
_Path = tuple[ast.expr, list[tuple[Any, ...]]]

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
_ARITH: dict[type[ast.operator], tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
    ast.FloorDiv: ("//", operator.floordiv),
    ast.Mod: ("%", operator.mod),
    ast.Pow: ("**", operator.pow),
    ast.BitAnd: ("&", operator.and_),
    ast.BitOr: ("|", operator.or_),
    ast.BitXor: ("^", operator.xor),
}
_ARITH_BY_SYMBOL = dict(_ARITH.values())
_UNARY: dict[type[ast.unaryop], tuple[str, Callable[[Any], Any]]] = {
    ast.USub: ("-", operator.neg),
    ast.UAdd: ("+", operator.pos),
    ast.Invert: ("~", operator.invert),
}
_UNARY_BY_SYMBOL = dict(_UNARY.values())
_MATH_FUNCTIONS = (
    "fabs", "sqrt", "isqrt", "floor", "ceil", "trunc", "exp", "expm1", "log", "log2", "log10",
    "log1p", "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh", "asinh",
    "acosh", "atanh", "hypot", "degrees", "radians", "copysign", "fmod", "remainder", "modf",
    "frexp", "ldexp", "isfinite", "isinf", "isnan", "isclose", "gcd", "lcm", "fsum", "erf", "erfc",
    "pow",
)  # fmt: skip
#: Functions the parent applies to a computed value (all pure; none builds a huge result).
_FUNCTIONS: dict[str, Callable[..., Any]] = {"abs": abs, "round": round} | {
    f"math.{name}": getattr(math, name) for name in _MATH_FUNCTIONS
}
_MATH_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau, "inf": math.inf, "nan": math.nan}
_STR_METHODS = frozenset((
    "capitalize", "casefold", "count", "endswith", "find", "index", "isalnum", "isalpha",
    "isascii", "isdecimal", "isdigit", "isidentifier", "islower", "isnumeric", "isprintable",
    "isspace", "istitle", "isupper", "join", "lower", "lstrip", "partition", "removeprefix",
    "removesuffix", "replace", "rfind", "rindex", "rpartition", "rsplit", "rstrip", "split",
    "splitlines", "startswith", "strip", "swapcase", "title", "upper",
))  # fmt: skip
_SET_METHODS = frozenset((
    "copy", "difference", "intersection", "isdisjoint", "issubset", "issuperset",
    "symmetric_difference", "union",
))  # fmt: skip
_NUMBER_METHODS = ("as_integer_ratio", "bit_count", "bit_length", "conjugate", "hex", "is_integer")
#: Methods of plain values the parent calls (pure, and none takes a size to build).
_METHODS_BY_TYPE: dict[type, frozenset[str]] = {
    str: _STR_METHODS,
    bytes: frozenset(m for m in _STR_METHODS if hasattr(bytes, m)) | {"hex"},
    list: frozenset({"count", "index", "copy"}),
    tuple: frozenset({"count", "index"}),
    dict: frozenset({"get", "keys", "values", "items", "copy"}),
    set: _SET_METHODS,
    frozenset: _SET_METHODS,
    **{t: frozenset(m for m in _NUMBER_METHODS if hasattr(t, m)) for t in (bool, int, float)},
    complex: frozenset({"conjugate"}),
}
_METHODS = frozenset().union(*_METHODS_BY_TYPE.values())
_INDEXABLE = (str, bytes, list, tuple, dict)
#: Largest sequence (items) and integer (bits) the parent's arithmetic builds.
MAX_ITEMS = 1 << 22
MAX_BITS = 1 << 20
_BUILTINS = frozenset(dir(builtins))
_MODULES = frozenset(sys.stdlib_module_names)
_NO = object()


def _arith(sym: str, a: Any, b: Any) -> Any:
    """``a SYM b``, refusing (OverflowError) results too large to build and string formatting."""
    if sym == "*":
        for seq, n in ((a, b), (b, a)):
            sized = isinstance(seq, str | bytes | list | tuple) and isinstance(n, int)
            if sized and len(seq) * n > MAX_ITEMS:
                raise OverflowError("repetition too large")
    elif sym == "**" and isinstance(a, int) and isinstance(b, int) and b > 0:
        if a.bit_length() * b > MAX_BITS:
            raise OverflowError("power too large")
    elif sym == "%" and isinstance(a, str | bytes):
        raise TypeError("no string formatting")
    return _ARITH_BY_SYMBOL[sym](a, b)


def _literal(node: ast.expr) -> Any:
    """A literal's value, a constant of ``math`` (``math.pi``) or arithmetic on them; else _NO."""
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    try:
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            return _MATH_CONSTANTS.get(node.attr, _NO) if node.value.id == "math" else _NO
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            value = _literal(node.operand)
            return _NO if value is _NO else _UNARY[type(node.op)][1](value)
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
            a, b = _literal(node.left), _literal(node.right)
            return _NO if a is _NO or b is _NO else _arith(_ARITH[type(node.op)][0], a, b)
    except Exception:
        pass
    return _NO


def _index(node: ast.expr) -> Any:
    """A subscript's literal key or slice; _NO for anything else."""
    if not isinstance(node, ast.Slice):
        return _literal(node)
    parts = [None if p is None else _literal(p) for p in (node.lower, node.upper, node.step)]
    return _NO if any(p is _NO for p in parts) else slice(*parts)


def defined_names(statements: Iterable[ast.stmt]) -> set[str]:
    """Names the tests' own code binds (assignments, defs, classes, imports, ``except ... as``)."""
    names: set[str] = set()
    for stmt in statements:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.alias):
                names.add((node.asname or node.name).split(".")[0])
            elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
                names.add(node.name)
    return names


def _class_name(name: str, names: set[str]) -> bool:
    """A capitalised name that is neither a builtin nor the tests': a class of the solution's."""
    return name[:1].isupper() and name not in _BUILTINS and name not in names


def solution_objects(statements: Iterable[ast.stmt], names: set[str]) -> set[str]:
    """Names the tests bind only to a new object of a class of the solution's (``sol =
    Solution()``, ``cache = LRUCache(2)``): their methods are the solution's code."""
    made: dict[str, int] = {}
    stores: dict[str, int] = {}
    for stmt in statements:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                stores[node.id] = stores.get(node.id, 0) + 1
            if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
                continue
            func = node.value.func
            if isinstance(func, ast.Name) and _class_name(func.id, names):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        made[target.id] = made.get(target.id, 0) + 1
    return {name for name, n in made.items() if stores.get(name) == n}


def _wrap(steps: list[tuple[Any, ...]], check: Check) -> Check:
    """``check`` made after the parent applies ``steps`` to the value."""
    return ("path", (tuple(steps), check)) if steps else check


class _Splitter:
    """Splits one assert given the names the tests bind and the tests' objects of the solution."""

    def __init__(self, names: set[str], objects: Iterable[str]) -> None:
        self.names = names
        self.objects = frozenset(objects)

    def _solution_name(self, name: str) -> bool:
        return name not in _BUILTINS and name not in self.names

    def _object(self, node: ast.expr) -> bool:
        """An object or class of the solution's: ``Solution``, ``Solution()``, ``sol``."""
        if isinstance(node, ast.Call):
            return isinstance(node.func, ast.Name) and _class_name(node.func.id, self.names)
        if not isinstance(node, ast.Name):
            return False
        return node.id in self.objects or _class_name(node.id, self.names)

    def _leaf(self, node: ast.expr) -> bool:
        """Whether ``node`` is the solution's own call (or name), computed in the sandbox."""
        if isinstance(node, ast.Name):
            return self._solution_name(node.id) and node.id not in _MODULES
        if not isinstance(node, ast.Call):
            return False
        func = node.func
        if isinstance(func, ast.Name):
            return self._solution_name(func.id)
        if isinstance(func, ast.Call):
            return self._leaf(func)
        if not isinstance(func, ast.Attribute):
            return False
        if self._object(func.value):
            return True
        # a plain value's method is the parent's; a module's function is test logic
        if func.attr in _METHODS or not isinstance(func.value, ast.Call):
            return False
        return self._leaf(func.value)  # a method of an object f(x) returned

    def _function(self, func: ast.expr) -> str | None:
        """The key in _FUNCTIONS of a called function the parent can apply."""
        if isinstance(func, ast.Name) and func.id in _FUNCTIONS and func.id not in self.names:
            return func.id
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            key = f"{func.value.id}.{func.attr}"
            return key if func.value.id == "math" and key in _FUNCTIONS else None
        return None

    def path(self, node: ast.expr) -> _Path | None:
        """(the solution's call, the parent's steps on its value) when ``node`` is that call
        under parent-side steps whose other operands are literals; None otherwise."""
        if self._leaf(node):
            return node, []
        inner: ast.expr | None = None
        step: tuple[Any, ...] = ()
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
            sym = _ARITH[type(node.op)][0]
            right, left = _literal(node.right), _literal(node.left)
            if right is not _NO:
                inner, step = node.left, ("bin", sym, right, True)
            elif left is not _NO:
                inner, step = node.right, ("bin", sym, left, False)
        elif isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            inner, step = node.operand, ("unary", _UNARY[type(node.op)][0])
        elif isinstance(node, ast.Subscript) and _index(node.slice) is not _NO:
            inner, step = node.value, ("item", _index(node.slice))
        elif isinstance(node, ast.Call):
            inner, step = self._call(node)
        found = None if inner is None else self.path(inner)
        return None if found is None else (found[0], [*found[1], step])

    def _call(self, node: ast.Call) -> tuple[ast.expr | None, tuple[Any, ...]]:
        """A call the parent makes with the computed value in one place and literals elsewhere:
        (the expression in that place, the step); (None, ()) otherwise."""
        if any(isinstance(a, ast.Starred) for a in node.args) or any(
            k.arg is None for k in node.keywords
        ):
            return None, ()
        args = [_literal(a) for a in node.args]
        kwargs = {str(k.arg): _literal(k.value) for k in node.keywords}
        holes = [i for i, a in enumerate(args) if a is _NO]
        if any(v is _NO for v in kwargs.values()):
            return None, ()
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in _METHODS:
            receiver = _literal(func.value)
            if receiver is _NO and not holes:  # g(x).startswith('ab')
                return func.value, ("method", func.attr, tuple(args), kwargs)
            if type(receiver) in (str, bytes) and holes == [0] and len(args) == 1 and not kwargs:
                return node.args[0], ("rmethod", receiver, func.attr)  # ', '.join(g(x))
            return None, ()
        key = self._function(func)
        if key is None or len(holes) != 1:
            return None, ()
        i = holes[0]
        return node.args[i], ("call", key, tuple(args[:i]), tuple(args[i + 1 :]), kwargs)

    def _opaque(self, node: ast.expr) -> bool:
        """Whether computing ``node`` in the sandbox shows the code nothing of the tests: the
        solution's calls (their arguments are its inputs) under builtin functions and methods,
        with no constants or names of the tests' around them (``sorted(f(x))``)."""
        if self._leaf(node):
            return True
        if isinstance(node, ast.Name):
            return node.id in _BUILTINS and node.id not in self.names
        if isinstance(node, ast.Starred | ast.Attribute):
            return self._opaque(node.value)
        if isinstance(node, ast.Call):
            parts = [node.func, *node.args, *(k.value for k in node.keywords)]
            return all(self._opaque(p) for p in parts)
        return False

    def _operand(self, node: ast.expr) -> _Path | None:
        """For a check against a hidden literal: a path, or an opaque expression or a name as it
        is."""
        found = self.path(node)
        if found is None and (self._opaque(node) or isinstance(node, ast.Name)):
            return node, []
        return found

    def _near(self, node: ast.expr, bound: ast.expr, op: str) -> tuple[ast.expr, Check] | None:
        """``abs(P ± LIT) < TOL`` (also ``math.fabs``) → (P's call, ("near", ...))."""
        tol = _literal(bound)
        if op not in ("<", "<=") or type(tol) not in (int, float):
            return None
        if not isinstance(node, ast.Call) or len(node.args) != 1 or node.keywords:
            return None
        if self._function(node.func) not in ("abs", "math.fabs"):
            return None
        inner = node.args[0]
        if not isinstance(inner, ast.BinOp) or type(inner.op) not in (ast.Sub, ast.Add):
            return None
        right, left = _literal(inner.right), _literal(inner.left)
        if type(right) in (int, float):  # P - LIT, P + LIT
            expr, offset = inner.left, -right if isinstance(inner.op, ast.Sub) else right
        elif type(left) in (int, float) and isinstance(inner.op, ast.Sub):  # LIT - P
            expr, offset = inner.right, -left
        else:
            return None
        found = self._operand(expr)
        if found is None:
            return None
        return found[0], _wrap(found[1], ("near", (offset, tol, op == "<")))

    def _isclose(self, node: ast.Call) -> tuple[ast.expr, Check] | None:
        if self._function(node.func) != "math.isclose" or len(node.args) != 2:
            return None
        if any(k.arg not in ("rel_tol", "abs_tol") for k in node.keywords):
            return None
        tols = {"rel_tol": 1e-9, "abs_tol": 0.0} | {
            str(k.arg): _literal(k.value) for k in node.keywords
        }
        if any(type(v) not in (int, float) for v in tols.values()):
            return None
        a, b = node.args
        for expr, lit in ((a, _literal(b)), (b, _literal(a))):
            if type(lit) in (int, float):
                found = self._operand(expr)
                if found is None:
                    return None
                check = ("isclose", (lit, tols["rel_tol"], tols["abs_tol"]))
                return found[0], _wrap(found[1], check)
        return None

    def _compare(self, node: ast.Compare) -> tuple[ast.expr, Check] | None:
        if len(node.ops) != 1 or type(node.ops[0]) not in _COMPARE:
            return None
        op, left, right = _COMPARE[type(node.ops[0])], node.left, node.comparators[0]
        near = self._near(left, right, op) or self._near(right, left, _FLIPPED.get(op, ""))
        if near is not None:
            return near
        lit = _literal(right)
        expr = left
        if lit is _NO and op in _FLIPPED:
            lit, expr, op = _literal(left), right, _FLIPPED[op]
        if lit is _NO:
            return None
        if op in ("is", "is not") and not (lit is None or type(lit) is bool):
            return None
        guessable = lit is None or type(lit) is bool
        found = self.path(expr) if guessable or op != "==" else self._operand(expr)
        return None if found is None else (found[0], _wrap(found[1], (op, lit)))

    def split(self, node: ast.expr) -> list[tuple[ast.expr, Check]] | None:
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
            parts = [self.split(v) for v in node.values]
            return None if any(p is None for p in parts) else [c for p in parts for c in p or ()]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            found = self.path(node.operand)
            return None if found is None else [(found[0], _wrap(found[1], ("falsy", None)))]
        if isinstance(node, ast.Compare):
            one = self._compare(node)
            return None if one is None else [one]
        if isinstance(node, ast.Call):
            close = self._isclose(node)
            if close is not None:
                return [close]
        found = self.path(node)
        return None if found is None else [(found[0], _wrap(found[1], ("truthy", None)))]


def split_assert(
    node: ast.stmt, tests_names: set[str], objects: Iterable[str] = ()
) -> tuple[str, list[Check]] | None:
    """For an ``assert`` the parent can judge: (source of a tuple expression of the values the
    sandbox computes, one check per value); None for any other statement. ``objects`` are names
    the tests bound to objects of the solution's classes (:func:`solution_objects`)."""
    if not isinstance(node, ast.Assert):
        return None
    parts = _Splitter(tests_names, objects).split(node.test)
    if not parts:
        return None
    exprs = ", ".join(ast.unparse(expr) for expr, _ in parts)
    return f"({exprs},)", [check for _, check in parts]


def _method(obj: Any, name: str) -> Any:
    if name not in _METHODS_BY_TYPE.get(type(obj), ()):
        raise TypeError(f"no method {name!r} of a {type(obj).__name__} here")
    return getattr(obj, name)


def _apply(step: tuple[Any, ...], value: Any) -> Any:
    """One parent-side step of a path on a decoded value."""
    kind = step[0]
    if kind == "bin":
        _, sym, lit, value_left = step
        return _arith(sym, value, lit) if value_left else _arith(sym, lit, value)
    if kind == "unary":
        return _UNARY_BY_SYMBOL[step[1]](value)
    if kind == "call":
        _, key, before, after, kwargs = step
        return _FUNCTIONS[key](*before, value, *after, **kwargs)
    if kind == "method":
        _, name, args, kwargs = step
        return _method(value, name)(*args, **kwargs)
    if kind == "rmethod":
        return _method(step[1], step[2])(value)
    if kind == "item" and type(value) in _INDEXABLE:
        return value[step[1]]
    raise TypeError(f"cannot apply {kind!r} to a {type(value).__name__}")


def holds(check: Check, value: Any) -> bool:
    """Whether a decoded value passes one check (False where the comparison cannot be made)."""
    op, arg = check
    try:
        if op == "path":
            steps, (op, arg) = arg
            for step in steps:
                value = _apply(step, value)
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
    except Exception:  # no comparison to make (a type error, a refused size...): fails
        return False
