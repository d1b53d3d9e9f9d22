"""Per-language scores and the gap to English (docs/methods/D3-m-rewardbench.md) — hand-computed."""

from __future__ import annotations

import pytest

from rewardkit.evaluate.languages import per_language_scores


def test_per_language_rb1_weighting_and_gap() -> None:
    langs = ["en", "en", "en", "en", "de", "de", "de", "de", None]
    subs = (
        ["alpacaeval-easy"] * 2
        + ["mt-bench-hard"] * 2
        + ["alpacaeval-easy"] * 2
        + ["mt-bench-hard"] * 2
        + ["alpacaeval-easy"]
    )
    secs = ["Chat", "Chat", "Chat Hard", "Chat Hard"] * 2 + ["Chat"]
    outs = [1, 1, 1, 0, 1, 0, 0, 0, 1]
    r = per_language_scores(langs, subs, secs, outs)
    assert r["english"] == "en"
    assert r["languages"]["en"]["score"] == pytest.approx((1.0 + 0.5) / 2)
    assert r["languages"]["de"]["score"] == pytest.approx((0.5 + 0.0) / 2)
    assert r["gap_to_english"] == {"de": pytest.approx(-0.5)}
    assert r["languages"]["de"]["n"] == 4 and r["mean_non_english"] == pytest.approx(0.25)


def test_count_weighting_outside_the_rb1_table() -> None:
    r = per_language_scores(["fr"] * 3, ["a", "a", "b"], ["S", "S", "S"], [1, 1, 0])
    assert r["languages"]["fr"]["score"] == pytest.approx(2 / 3) and r["english"] is None
