"""The layer rule on the real import graph: a module never imports one from a higher layer.

Every import of a ``rewardkit`` module is read with ``ast`` (module-level and inside functions,
absolute and relative). The map below is the one in ``docs/design.md`` ("Layers"); a new module
must be placed in it (the lowest layer whose modules it needs)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rewardkit"

#: Layers, lowest first; a module belongs to the most specific (longest) prefix listed.
LAYERS: dict[str, tuple[str, ...]] = {
    "core": (
        "rewardkit.types",
        "rewardkit.errors",
        "rewardkit.content",
        "rewardkit.content_parts",
        "rewardkit.results",
        "rewardkit.outputs",
        "rewardkit.combine",
        "rewardkit.timing",
        "rewardkit.progress",
        "rewardkit.secrets",
        "rewardkit.pixels",
        "rewardkit.example_context",
    ),
    "data": ("rewardkit.data",),
    "infrastructure": (
        "rewardkit.engine",
        "rewardkit.models",
        "rewardkit.remote",
        "rewardkit.client",
        "rewardkit.client_batches",
        "rewardkit.multimodal",
        "rewardkit.multimodal.engine",
        "rewardkit.multimodal.image_rm",
    ),
    "rewards": ("rewardkit.rewards", "rewardkit.registry", "rewardkit"),
    "applications": (
        "rewardkit.evaluate",
        "rewardkit.train",
        "rewardkit.serve",
        "rewardkit.curate",
        "rewardkit.inference",
        "rewardkit.integrations",
        "rewardkit.monitor",
        "rewardkit.scoring",
        "rewardkit.scoring_ray",
        "rewardkit.ray_reward",
        "rewardkit.modelcheck",
        "rewardkit.cli_errors",
        "rewardkit.multimodal.search",
        "rewardkit.multimodal.reno",
        "rewardkit.multimodal.reward_backprop",
    ),
    "cli": (
        "rewardkit.cli",
        "rewardkit.cli_methods",
        "rewardkit.cli_dmoerm",
        "rewardkit.commands",
        "rewardkit.monitor.__main__",
    ),
}
RANK = {name: i for i, name in enumerate(LAYERS)}


def layer_of(module: str) -> str | None:
    """The layer of a dotted module name (longest matching prefix), or None."""
    best: tuple[int, str] | None = None
    for layer, prefixes in LAYERS.items():
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and (best is None or len(p) > best[0]):
                best = (len(p), layer)
    return None if best is None else best[1]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every rewardkit import in a file, function-level ones included."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # ``from rewardkit.x import y`` may name a module y: judge it too
            found += [(node.lineno, f"{target}.{a.name}") for a in node.names]
    return [(line, m) for line, m in found if m == "rewardkit" or m.startswith("rewardkit.")]


def _is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:]) if "." in name else Path()
    return (SRC / rel).with_suffix(".py").is_file() or (SRC / rel / "__init__.py").is_file()


def violations() -> list[str]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        src = module_name(path)
        src_layer = layer_of(src)
        if src_layer is None:
            out.append(f"{src}: in no layer (place it in tests/test_layers.py and docs/design.md)")
            continue
        for line, target in imports(path):
            if not _is_module(target):
                continue
            dst_layer = layer_of(target)
            if dst_layer is not None and RANK[dst_layer] > RANK[src_layer]:
                rel = path.relative_to(SRC.parent)
                out.append(f"{rel}:{line}: {src} ({src_layer}) imports {target} ({dst_layer})")
    return out


def test_no_module_imports_a_higher_layer():
    found = violations()
    assert not found, "layer violations:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("module", "layer"),
    [
        ("rewardkit.types", "core"),
        ("rewardkit.combine.aggregate", "core"),
        ("rewardkit.multimodal.engine", "infrastructure"),
        ("rewardkit.multimodal.search", "applications"),
        ("rewardkit.rewards.composite.ensemble", "rewards"),
        ("rewardkit", "rewards"),
        ("rewardkit.cli", "cli"),
    ],
)
def test_layer_map(module, layer):
    assert layer_of(module) == layer


def test_the_check_sees_function_level_imports(tmp_path, monkeypatch):
    """The checker itself: a function-level upward import is a violation."""
    pkg = tmp_path / "rewardkit"
    (pkg / "combine").mkdir(parents=True)
    (pkg / "rewards").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "rewards" / "__init__.py").write_text("")
    (pkg / "combine" / "__init__.py").write_text("")
    (pkg / "combine" / "bad.py").write_text(
        "def f():\n    from rewardkit.rewards import x\n    return x\n"
    )
    monkeypatch.setattr(__import__(__name__), "SRC", pkg)
    assert violations() == [
        "rewardkit/combine/bad.py:2: rewardkit.combine.bad (core) imports rewardkit.rewards (rewards)"
    ]
