"""Every exception class rewardkit defines survives pickling with its message: errors cross
processes (multiprocessing pools, Ray workers, rule workers), and one that cannot be rebuilt
there hangs a ``multiprocessing.Pool`` (its result thread dies unpickling it) instead of
reaching the caller."""

from __future__ import annotations

import ast
import importlib
import inspect
import pickle
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rewardkit"

#: Programs run as children (by path, standard library only), never imported in-process: their
#: errors stay in the child (tests/test_sandbox_verdict.py checks they are not imported).
CHILD_PROGRAMS = {"rewardkit.rewards.sandbox.harness", "rewardkit.rewards.sandbox.launcher"}


def _modules_defining_exceptions() -> list[str]:
    """Modules with a class whose base names end in Error/Exception/Interrupt (read with ast)."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                ast.unparse(b).endswith(("Error", "Exception", "Interrupt", "Full", "Small"))
                for b in node.bases
            ):
                parts = path.relative_to(SRC.parent).with_suffix("").parts
                found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
                break
    return [name for name in found if name not in CHILD_PROGRAMS]


def _exception_classes() -> list[type[BaseException]]:
    classes: dict[str, type[BaseException]] = {}
    for name in _modules_defining_exceptions():
        module = importlib.import_module(name)
        for cls in vars(module).values():
            if (
                inspect.isclass(cls)
                and issubclass(cls, BaseException)
                and cls.__module__ == name
                and not inspect.isabstract(cls)
            ):
                classes[f"{name}.{cls.__qualname__}"] = cls
    return [classes[k] for k in sorted(classes)]


def _example(cls: type[BaseException]) -> BaseException:
    """An instance built from placeholder values for its required parameters."""
    args, kwargs = [], {}
    for p in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.default is not p.empty:
            continue
        value = 3 if any(t in str(p.annotation) for t in ("int", "float")) else "x"
        if "Path" in str(p.annotation):
            value = Path("x")
        if p.kind is p.KEYWORD_ONLY:
            kwargs[p.name] = value
        else:
            args.append(value)
    return cls(*args, **kwargs)


CLASSES = _exception_classes()


def test_the_scan_finds_the_project_errors():
    names = {c.__name__ for c in CLASSES}
    assert {"DataError", "SpecError", "RewardServerError", "CacheCorruptError"} <= names
    assert len(CLASSES) >= 20


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_pickles_with_its_message_and_fields(cls):
    error = _example(cls)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)
