"""Test references normalised into a :class:`TestPlan`: what the harness runs, and what the
trusted parent keeps to itself (the expected values it compares against).

Forms read (see :func:`parse_tests`): Python test code, ``{"tests": [...]}`` / MBPP's
``test_list``, HumanEval's ``{"test", "entry_point"}``, ``{"inputs", "outputs"}`` (stdin/stdout)
and the same with ``fn_name`` (call style), open-r1's ``verification_info``
(``{"language": "python", "test_cases": [{"input", "output"}, ...]}``, stdin/stdout), each also
as a JSON string.

Where a verdict is made decides whether a solution can forge it (``docs/sandbox.md``):

- ``stdio`` cases and ``call`` cases are compared in the parent;
- an ``assert`` the parent can judge (``assert EXPR == LITERAL``, ``assert f(x)``,
  ``assert not f(x)``, ``assert abs(EXPR - LIT) < TOL``...; :mod:`.checks`) becomes a ``value``
  test: the sandbox evaluates the operands and sends their values back as data; the literals and
  comparisons never enter the sandbox and the parent compares;
- HumanEval's ``check(candidate)`` is one ``value`` test when every statement of it is such an
  assert (:func:`_plan_from_check`); the statements beside it are read like any test code;
- every other check (other asserts, asserts in a loop, ``with`` or ``try``, ``def test_*``
  functions, test classes, calls such as ``check(f)`` or ``unittest.main()``'s test methods,
  ``if ...: raise``, a ``check`` with loops) is ``in_process``: it runs beside the solution,
  which can forge its verdict.

Set-up is only what cannot hide a check (:mod:`.testcode`): a set-up failure is not a verdict,
so every statement that could fail a wrong program is a test of its own.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rewardkit.rewards.sandbox.checks import defined_names, split_assert
from rewardkit.rewards.sandbox.testcode import sort_statements

__all__ = ["TestPlan", "parse_tests"]

#: Step kind → the kind of verdict it gives (``SandboxResult.kinds``).
VERDICT_KIND = {"test": "in_process", "value": "value", "call": "call"}


@dataclass
class TestPlan:
    """Tests normalised into what the harness runs.

    ``kind`` is ``"steps"`` (tests run in the solution's process: ``steps`` holds ``setup``
    code, ``test`` snippets run in process, ``value`` expressions and ``call`` cases) or
    ``"stdio"`` (``cases`` of (stdin, expected stdout), one process per case).
    ``expected`` maps a ``value``/``call`` test's index to the value the parent expects; it is
    never sent to the sandbox.
    """

    __test__ = False  # not a pytest class

    kind: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    cases: list[tuple[str, str]] = field(default_factory=list)
    fn_name: str | None = None
    expected: dict[int, Any] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Number of tests."""
        if self.kind == "stdio":
            return len(self.cases)
        return sum(1 for s in self.steps if s["kind"] != "setup")

    @property
    def kinds(self) -> list[str]:
        """Per test, where its verdict is made: ``stdio``, ``call``, ``value`` or ``in_process``."""
        if self.kind == "stdio":
            return ["stdio"] * len(self.cases)
        return [VERDICT_KIND[s["kind"]] for s in self.steps if s["kind"] != "setup"]

    @property
    def forgeable(self) -> int:
        """Number of ``in_process`` tests (their verdict comes from inside the sandbox)."""
        return sum(k == "in_process" for k in self.kinds)


def parse_tests(tests: Any) -> TestPlan:
    """Normalise a test reference (see :func:`~rewardkit.rewards.sandbox.run_tests`) into a
    :class:`TestPlan`. Raises ValueError when the reference is not a test specification."""
    if isinstance(tests, str):
        text = tests.strip()
        if text.startswith("{"):
            try:
                obj = json.loads(text)
            except ValueError:
                obj = None
            if isinstance(obj, dict):
                return parse_tests(obj)
        return _plan_from_source(tests)
    if isinstance(tests, Mapping):
        if "input_output" in tests and "inputs" not in tests:
            io = tests["input_output"]
            return parse_tests(json.loads(io) if isinstance(io, str) else io)
        if "test_cases" in tests and "inputs" not in tests:
            return _plan_from_cases(tests["test_cases"], tests.get("language"))
        if "inputs" in tests and "outputs" in tests:
            return _plan_from_io(tests["inputs"], tests["outputs"], tests.get("fn_name"))
        setup = _setup(tests)
        for key in ("tests", "test_list"):
            if key in tests:
                return _plan_from_list(tests[key], setup)
        if "test" in tests:
            src = str(tests["test"])
            if tests.get("entry_point"):
                entry = str(tests["entry_point"])
                judged = _plan_from_check(src, entry, setup)
                return judged or _plan_from_list([f"{src}\n\ncheck({entry})\n"], setup)
            return _plan_from_source(f"{setup}\n{src}" if setup else src)
        raise ValueError(
            "test dict needs 'tests' (list of code strings), 'inputs'/'outputs' "
            "(stdin/stdout or fn_name cases), 'test_cases' (open-r1's stdin/stdout cases) or "
            f"'test'; got keys {sorted(tests)}"
        )
    if isinstance(tests, Sequence) and not isinstance(tests, bytes | bytearray):
        return _plan_from_list(tests, "")
    raise ValueError(f"cannot read tests of type {type(tests).__name__}")


def _setup(tests: Mapping[str, Any]) -> str:
    """Set-up code of a test dict: MBPP's ``test_imports`` (a list of import lines; a correct
    solution that did not import what the tests use scored 0), then ``setup`` or MBPP's
    ``test_setup_code``."""
    imports = tests.get("test_imports") or []
    if isinstance(imports, str):
        imports = [imports]
    if not isinstance(imports, Sequence) or not all(isinstance(i, str) for i in imports):
        raise ValueError("'test_imports' must be a list of Python code strings")
    setup = tests.get("setup") or tests.get("test_setup_code") or ""
    if not isinstance(setup, str):
        raise ValueError("'setup' must be a string of Python code")
    return "\n".join(part for part in (*imports, setup) if part.strip())


class _Builder:
    """Collects steps and the parent-only expected values, numbering tests in order."""

    def __init__(self, tests_names: set[str]) -> None:
        self.steps: list[dict[str, Any]] = []
        self.expected: dict[int, Any] = {}
        self.names = tests_names

    @property
    def n(self) -> int:
        return sum(1 for s in self.steps if s["kind"] != "setup")

    def setup(self, src: str) -> None:
        self.steps.append({"kind": "setup", "src": src})

    def test(self, src: str, node: ast.stmt | None = None) -> None:
        i = self.n
        split = split_assert(node, self.names) if node is not None else None
        if split is None:
            self.steps.append({"kind": "test", "src": src, "index": i})
        else:
            self.steps.append({"kind": "value", "src": split[0], "index": i})
            self.expected[i] = split[1]

    def add(self, body: list[ast.stmt], not_run: tuple[str, ...] = ()) -> None:
        """Top-level statements of test code, as set-up and tests (:mod:`.testcode`)."""
        for kind, src, node in sort_statements(body, not_run):
            if kind == "setup":
                self.setup(src)
            else:
                self.test(src, node)

    def plan(self) -> TestPlan:
        return TestPlan("steps", self.steps, expected=self.expected)


def _statements(src: str) -> list[ast.stmt]:
    try:
        return ast.parse(src).body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return []


def _single_statement(src: str) -> ast.stmt | None:
    body = _statements(src)
    return body[0] if len(body) == 1 else None


def _plan_from_list(items: Any, setup: str) -> TestPlan:
    if isinstance(items, str) or not isinstance(items, Sequence):
        raise ValueError("'tests' must be a list of Python code strings")
    if not all(isinstance(t, str) for t in items):
        raise ValueError("every test in 'tests' must be a string of Python code")
    nodes = [_single_statement(t) for t in items]
    statements = [stmt for t in [setup, *items] for stmt in _statements(t)]
    names = defined_names(s for s in statements if not isinstance(s, ast.Assert))
    b = _Builder(names)
    if setup:
        body = _top_level(_statements(setup))
        if all(kind == "setup" for kind, _, _ in sort_statements(body)):
            b.setup(setup)
        else:  # a check in the set-up code counts like any test
            b.add(body)
    for t, node in zip(items, nodes, strict=True):
        b.test(t, node)
    if not b.n:
        raise ValueError("no tests")
    return b.plan()


class _Rename(ast.NodeTransformer):
    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = old, new

    def visit_Name(self, node: ast.Name) -> ast.Name:
        return ast.Name(self.new, node.ctx) if node.id == self.old else node


def _plan_from_check(src: str, entry: str, setup: str) -> TestPlan | None:
    """HumanEval's ``def check(candidate): assert ...`` as one parent-judged test, when every
    statement of ``check`` is an assert the parent can judge (or ``assert <true literal>``),
    after the tests of the statements beside it (a top-level call of ``check`` is this test);
    None otherwise (then everything runs in process, as one test ending in
    ``check(entry_point)``)."""
    body = _statements(f"{setup}\n{src}" if setup else src)
    checks = [n for n in body if isinstance(n, ast.FunctionDef) and n.name == "check"]
    if len(checks) != 1 or len(checks[0].args.args) != 1 or not entry.isidentifier():
        return None
    check = checks[0]
    others = [n for n in body if n is not check]
    names = defined_names(others) | {"check"}
    rename = _Rename(check.args.args[0].arg, entry)
    exprs: list[str] = []
    parts: list[Any] = []
    for stmt in check.body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # a docstring
        if isinstance(stmt, ast.Assert) and isinstance(stmt.test, ast.Constant) and stmt.test.value:
            continue  # `assert True, "..."`
        split = split_assert(rename.visit(stmt), names)
        if split is None:
            return None
        exprs.append(split[0][1:-2])  # the operands, without the tuple's parentheses and comma
        parts += split[1]
    if not parts:
        return None
    b = _Builder(names)
    b.add(_top_level(others), not_run=("check",))  # asserts beside check() are tests too
    i = b.n
    b.steps.append({"kind": "value", "src": f"({', '.join(exprs)},)", "index": i})
    b.expected[i] = parts
    return b.plan()


def _is_main_guard(node: ast.stmt) -> bool:
    """``if __name__ == "__main__":`` (either order of the comparison), without ``else``."""
    if not isinstance(node, ast.If) or node.orelse or not isinstance(node.test, ast.Compare):
        return False
    t = node.test
    if len(t.ops) != 1 or not isinstance(t.ops[0], ast.Eq):
        return False
    sides = [t.left, t.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    consts = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(names) == 1 and len(consts) == 1


def _top_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements of test code, with a ``__main__`` guard's body read as top level (the
    harness runs test code as ``__main__``, so the guarded checks are meant to run)."""
    out: list[ast.stmt] = []
    for node in body:
        out += _top_level(node.body) if _is_main_guard(node) else [node]
    return out


def _plan_from_source(src: str) -> TestPlan:
    """Test code: set-up and one test per check (:mod:`.testcode`); ValueError when nothing in
    it checks (only definitions: a wrong program would pass)."""
    try:
        tree = ast.parse(src)
    except SyntaxError as e:
        raise ValueError(f"test code does not parse: {e}") from e
    body = _top_level(tree.body)
    b = _Builder(defined_names(n for n in body if not isinstance(n, ast.Assert)))
    b.add(body)
    if b.n == 0:
        raise ValueError(
            "no tests: the test code only defines names (imports, functions, classes, "
            "assignments) and runs no check"
        )
    return b.plan()


def _as_text(x: Any) -> str:
    if isinstance(x, list | tuple):
        return "\n".join(str(v) for v in x)
    return str(x)


def _call_args(x: Any) -> list[Any]:
    if isinstance(x, str):
        lines = [line for line in x.split("\n") if line.strip()]
        try:
            return [json.loads(line) for line in lines]
        except ValueError:
            return [x]
    if isinstance(x, list | tuple):
        return list(x)
    return [x]


def _call_expected(x: Any) -> Any:
    if isinstance(x, str):
        try:
            return json.loads(x)
        except ValueError:
            return x
    return x


def _plan_from_io(inputs: Any, outputs: Any, fn_name: Any) -> TestPlan:
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        raise ValueError("'inputs' and 'outputs' must be lists")
    if len(inputs) != len(outputs):
        raise ValueError(f"{len(inputs)} inputs but {len(outputs)} outputs")
    if not inputs:
        raise ValueError("no tests")
    if fn_name:
        steps = [{"kind": "call", "args": _call_args(i), "index": k} for k, i in enumerate(inputs)]
        expected = {k: _call_expected(o) for k, o in enumerate(outputs)}
        return TestPlan("steps", steps, fn_name=str(fn_name), expected=expected)
    cases = [(_as_text(i), _as_text(o)) for i, o in zip(inputs, outputs, strict=True)]
    return TestPlan("stdio", cases=cases)


#: ``language`` values of open-r1's ``verification_info`` that name Python (the sandbox runs
#: Python only).
_PYTHON_NAMES = {"python", "python3", "py", "py3"}


def _plan_from_cases(cases: Any, language: Any) -> TestPlan:
    """open-r1's ``verification_info`` (PrimeIntellect's layout): ``test_cases`` a list (or its
    JSON text) of ``{"input", "output", "type": "stdin_stdout"}``, run as stdin/stdout cases
    (compared in the parent, as ``{"inputs", "outputs"}``). Another ``language``, or a case of
    another ``type`` or with an ``fn_name``, is refused: read as stdin it would be a wrong test."""
    if language is not None and str(language).strip().lower() not in _PYTHON_NAMES:
        raise ValueError(f"the tests are for language {language!r}; rule:code runs Python")
    if isinstance(cases, str):
        try:
            cases = json.loads(cases)
        except ValueError as e:
            raise ValueError(f"'test_cases' is text but not JSON ({e})") from None
    if hasattr(cases, "tolist"):  # a numpy array: how Parquet hands a list over
        cases = cases.tolist()
    if not isinstance(cases, list | tuple) or not all(isinstance(c, Mapping) for c in cases):
        raise ValueError("'test_cases' must be a list of {'input': ..., 'output': ...} cases")
    for k, case in enumerate(cases):
        if "input" not in case or "output" not in case:
            raise ValueError(f"test case {k} needs 'input' and 'output'; got keys {sorted(case)}")
        kind = case.get("type") or "stdin_stdout"
        if kind != "stdin_stdout" or case.get("fn_name"):
            raise ValueError(
                f"test case {k} is a {kind!r} case (fn_name {case.get('fn_name')!r}); only "
                "stdin_stdout cases are read from 'test_cases'"
            )
    return _plan_from_io([c["input"] for c in cases], [c["output"] for c in cases], None)
