"""report.html: self-contained, every plot present; opened in headless Chromium (no console
errors, every image decoded). Chromium: Debian's ``chromium`` package."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from _chromium import CHROMIUM, Browser
from rewardkit.evaluate import evaluate
from rewardkit.evaluate.htmlreport import to_html
from rewardkit.evaluate.report import analyses_markdown, summary_lines
from rewardkit.types import Example, user


def _result(fake_reward):
    exs, table = [], {}
    for i in range(12):
        c, r = f"good answer {i} " * (1 + i % 3), f"bad {i}"
        table[c], table[r] = 1.0 + 0.1 * i, (2.0 if i % 4 == 0 else 0.5)
        exs.append(
            Example(
                id=f"p{i}",
                prompt=[user(f"q{i}")],
                responses=[c, r],
                chosen=[0],
                subset=("s1", "s2")[i % 2],
            )
        )
    for i in range(4):
        pool = [f"cand {i}.{k}" for k in range(4)]
        for k, t in enumerate(pool):
            table[t] = float(k)
        exs.append(
            Example(id=f"b{i}", prompt=[user(f"b{i}")], responses=pool, chosen=[2], subset="bon")
        )
    rewards = [fake_reward(table, "proxy"), fake_reward({t: -v for t, v in table.items()}, "anti")]
    return evaluate(exs, rewards, n_boot=100)


def test_html_is_self_contained_with_every_plot(fake_reward) -> None:
    res = _result(fake_reward)
    page = to_html(res)
    imgs = re.findall(
        r'<img class="plot" id="plot-([a-z_]+)"[^>]*src="data:image/png;base64,'
        r'([A-Za-z0-9+/=]+)"',
        page,
    )
    assert [k for k, _ in imgs] == [
        "subsets",
        "reliability",
        "length",
        "best_of_n",
        "overoptimization",
    ]
    assert all(base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n" for _, b in imgs)
    assert "<script" not in page and "http://" not in page and "https://" not in page
    for title in ("Leaderboard", "Calibration", "Length bias", "Best-of-N", "Paired comparisons"):
        assert f"<h2>{title}" in page
    md = analyses_markdown(res)
    assert "## Paired comparisons" in md and "| proxy | anti |" in md
    lines = summary_lines(res)
    assert lines[0].startswith("proxy: ECE ") and "BoN gold@4 0.000 (gain -0.250)" in lines[0]
    # proxy is right on 9 of 16 examples and anti on the other 7: not significant, not printed
    assert not any(line.startswith("proxy vs anti") for line in lines)
    exs = [Example(f"e{i}", [user("q")], [f"y{i}", f"n{i}"], [0], subset="s") for i in range(40)]
    good = fake_reward(
        {**{f"y{i}": 1.0 for i in range(40)}, **{f"n{i}": 0.0 for i in range(40)}}, "good"
    )
    bad = fake_reward(
        {f"y{i}": float(i % 4 == 0) for i in range(40)} | {f"n{i}": 0.5 for i in range(40)}, "bad"
    )
    lines = summary_lines(evaluate(exs, [good, bad], n_boot=200, include_length_baseline=False))
    assert any(
        line.startswith("good vs bad: Score 75.0 [") and "significant" in line for line in lines
    )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_chromium_loads_report_without_errors(fake_reward, tmp_path: Path) -> None:
    pytest.importorskip("websockets", reason="the DevTools client needs websockets (dev extra)")
    res = _result(fake_reward)
    paths = res.write_reports(tmp_path / "run")
    broken = tmp_path / "broken.html"
    broken.write_text(
        '<!DOCTYPE html><html><body><img id="x" src="data:image/png;base64,AAAA">'
        "<script>console.error('boom')</script></body></html>"
    )
    with Browser(tmp_path) as b:
        good = b.load(paths["html"].resolve().as_uri())
        bad = b.load(broken.resolve().as_uri())
    assert good["errors"] == []
    assert len(good["images"]) == 5
    assert all(i["complete"] and i["width"] > 0 for i in good["images"])
    # the checks can fail: a broken image and a console error are seen
    assert bad["images"][0]["width"] == 0 and any("boom" in e for e in bad["errors"])
