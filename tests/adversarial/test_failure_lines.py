"""No bare success line when items failed: `score` and `eval` name the items that failed alone
(NaN, error recorded) in their summary, and composites pass their members' failures on."""

from __future__ import annotations

import json
import math

from tests.adversarial.conftest import strict_json

from rewardkit import Query, load_reward

BAD_TESTS = {"foo": 1}  # not a test specification: that item alone fails
GOOD_TESTS = {"tests": ["assert f(1) == 2"]}
CODE = "```python\ndef f(x):\n    return x + 1\n```"


def _rows(path, references):
    rows = [{"prompt": "write f", "response": CODE, "reference": r} for r in references]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_score_summary_counts_failed_rows(cli, tmp_path):
    data = _rows(tmp_path / "rows.jsonl", [None, BAD_TESTS, BAD_TESTS])
    out = tmp_path / "out.jsonl"
    code, text = cli("score", "-r", "rule:code", "--data", data, "--out", out)
    assert code == 0, text
    line = next(x for x in text.splitlines() if x.startswith("scored"))
    assert "scored 3 rows" in line
    assert "2 of 3 rows failed alone and have reward null (first: row 2: ValueError:" in line
    rewards = [strict_json(x)["reward"] for x in out.read_text().splitlines()]
    assert rewards == [None, None, None]


def test_score_summary_is_plain_when_nothing_failed(cli, tmp_path):
    data = _rows(tmp_path / "rows.jsonl", [None])
    code, text = cli("score", "-r", "rule:code", "--data", data, "--out", tmp_path / "o.jsonl")
    assert code == 0, text
    assert "failed" not in text


def test_eval_reports_failed_responses(cli, tmp_path):
    rows = [
        {"id": f"p{i}", "prompt": "write f", "chosen": CODE, "rejected": "no code", "reference": r}
        for i, r in enumerate([BAD_TESTS, None])
    ]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "ev"
    code, text = cli("eval", "-r", "rule:code", "--data", data, "--out", out, "--n-boot", "10")
    # p0's tests are broken (both responses fail), p1 has none (does not apply): rule:code
    # scored no example, so eval exits 1 once the reports are written
    assert code == 1, text
    assert "error: rule:code: no example got a real score from it" in text
    expected = "`rule:code`: 2 of 4 responses failed alone and score NaN (first: example p0:"
    assert expected in text
    for name in ("report.md", "report.html"):
        page = (out / name).read_text()
        assert "2 of 4 responses failed alone and score NaN" in page, name


def test_route_passes_member_failures_on():
    route = load_reward({"route": {"code": "rule:code"}, "key": "source"})
    queries = [
        Query([{"role": "user", "content": "write f"}], CODE, reference=ref, meta={"source": src})
        for ref, src in [(GOOD_TESTS, "chat"), (BAD_TESTS, "code"), (BAD_TESTS, "code")]
    ]
    full = route.score_full(queries)
    assert math.isnan(full.scores[0])  # no route: does not apply, not a failure
    assert full.stats["failed"] == 2
    assert [e["index"] for e in full.stats["errors"]] == [1, 2]  # positions in this call


def test_score_where_every_row_failed_exits_1(cli, tmp_path):
    """The output holds nulls only: the run says so and exits 1, not a plain success."""
    data = _rows(tmp_path / "rows.jsonl", [BAD_TESTS, BAD_TESTS])
    out = tmp_path / "out.jsonl"
    code, text = cli("score", "-r", "rule:code", "--data", data, "--out", out)
    assert code == 1, text
    assert "2 of 2 rows failed alone" in text and "every row failed" in text


def test_score_names_an_error_not_tied_to_a_row(tmp_path):
    """Endpoint rewards record why requests failed without a row index: the first reason is
    still named in the summary."""
    import numpy as np

    from rewardkit.scoring import score_rows
    from rewardkit.types import Reward, ScoreResult

    class Unreachable(Reward):
        name = "unreachable"

        def identity(self) -> dict:
            return {"class": "Unreachable"}

        def _score(self, queries):
            n = len(queries)
            stats = {"failed": n, "errors": ["ConnectError: All connection attempts failed"]}
            return ScoreResult(np.full(n, np.nan), stats=stats)

    rows = [({"prompt": "q", "response": "a"}, Query([{"role": "user", "content": "q"}], "a"))]
    stats = score_rows(Unreachable(), rows, tmp_path / "o.jsonl")
    assert stats["failed_rows"] == 1
    assert stats["first_error"] == "ConnectError: All connection attempts failed"
