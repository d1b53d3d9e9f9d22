"""docs/methods/: every card the code cites exists, is indexed and has its sections; the worked
examples not pinned next to their own code are pinned here."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CARDS = ROOT / "docs" / "methods"
CITE = re.compile(r"docs/methods/([A-F]\d+-[a-z0-9-]+)\.md")


def _cited() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for folder in ("src", "benchmarks", "tests", "docs"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix not in (".py", ".md") or not path.is_file():
                continue
            for name in CITE.findall(path.read_text(encoding="utf-8")):
                found.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return found


def test_every_cited_card_exists():
    missing = {n: where[:3] for n, where in _cited().items() if not (CARDS / f"{n}.md").is_file()}
    assert not missing, f"cited cards that do not exist: {missing}"


def test_no_code_cites_the_design_notes_outside_the_repo():
    bad = []
    for folder, pattern in (("src", "*.py"), ("benchmarks", "*.py"), ("configs", "*.yaml")):
        for path in (ROOT / folder).rglob(pattern):
            if "methods.md" in path.read_text(encoding="utf-8"):
                bad.append(str(path.relative_to(ROOT)))
    assert not bad, f"cite docs/methods/<card>.md instead of methods.md in {bad}"


def test_cards_are_indexed_and_complete():
    index = (CARDS / "README.md").read_text(encoding="utf-8")
    for card in sorted(CARDS.glob("[A-F]*.md")):
        assert f"({card.name})" in index, f"{card.name} is not in docs/methods/README.md"
        text = card.read_text(encoding="utf-8")
        assert text.startswith(f"# {card.name.split('-')[0]} — "), card.name
        assert re.search(r"worked example", text, re.I), f"{card.name}: no worked example"
        assert re.search(r'"[^"]{12,}"|\*[^*]{12,}\*', text), f"{card.name}: no paper title"


# -- worked examples pinned here ------------------------------------------------------------------


def test_a14_two_layer_head_example():
    import torch

    silu = torch.nn.functional.silu(torch.tensor([1.0, -1.0]))
    assert float(silu.sum()) == pytest.approx(0.462117, abs=1e-6)


def test_b2_density_ratio_example():
    from rewardkit.rewards.logprob import density_ratio

    assert density_ratio(-40.0, -43.5) == pytest.approx(3.5)
    assert density_ratio(-40.0, -43.5) > 1.2


def test_b15_clip_score_variants_example():
    from rewardkit.rewards.clip_score import clip_score

    c = np.array([0.3])
    assert clip_score(c, "clip")[0] == pytest.approx(30.0)
    assert clip_score(c, "clipscore")[0] == pytest.approx(0.75)
    assert clip_score(c, "logit", math.log(100.0))[0] == pytest.approx(30.0)


def test_d8_best_of_n_example_and_f1_selection():
    from rewardkit.evaluate.bestofn import expected_bon
    from rewardkit.inference.best_of_n import select_best, select_worst

    assert expected_bon([2.0, 1.0], [1.0, 0.0], 2) == 1.0
    assert select_best([0.2, math.nan, 0.9, 0.9]) == 2
    # E5: density ratios (3.5, 1.2, −0.4) → chosen 0, rejected 2, margin 3.9
    ratios = [3.5, 1.2, -0.4]
    best, worst = select_best(ratios), select_worst(ratios)
    assert (best, worst) == (0, 2) and ratios[best] - ratios[worst] == pytest.approx(3.9)


def test_e4_a12_c7_card_examples():
    from rewardkit.combine.scaling import grpo_s_advantages
    from rewardkit.curate.consistency import consistency_filter, ranking_consistency
    from rewardkit.curate.relabel import rescale
    from rewardkit.types import Example

    a, b = (0.1, 0.5, 0.9), (0.2, 0.9, 0.4)
    assert ranking_consistency(a, b, "spearman") == pytest.approx(0.75)
    assert ranking_consistency(a, b, "toporder") == 0.0
    exs = [Example(f"e{i}", "Q?", ["x", "y", "z"], [2]) for i in range(2)]
    sa, sb = [np.array(a), np.array(a)], [np.array(a), np.array(b)]
    for soft, want in (("avg", 0.833333), ("dyn", 0.666667)):
        out = consistency_filter(exs, sa, sb, soft=soft).examples
        assert out[0].meta["label_confidence"] == 1.0
        assert out[1].meta["label_confidence"] == pytest.approx(want, abs=1e-6)
    np.testing.assert_allclose(rescale(np.array([-1.0, 0.5, 2.0])), [1.0, 5.5, 10.0])
    np.testing.assert_allclose(
        grpo_s_advantages([1.0, 2.0, 3.0], [0, 0, 0], [0.0, 0.5, 1.0], 0.0),
        [-0.949157, -0.094916, 1.044073],
        atol=1e-6,
    )
