"""The benchmark table drives sniffing, evaluate's rules and the CLI help (one place to add a
benchmark)."""

from __future__ import annotations

from typer.testing import CliRunner

from rewardkit.data.location import Location
from rewardkit.data.record import Record
from rewardkit.data.sniff import FORMATS, sniff_format
from rewardkit.data.table import BENCHMARK_NAMES, KEYED_FORMATS, SCORING
from rewardkit.data.table import FORMATS as TABLE
from rewardkit.evaluate.benchmarks import BENCHMARKS, FORMAT_BENCHMARKS
from rewardkit.evaluate.plan import RULE_TEXT


def test_every_format_and_rule_comes_from_the_table():
    assert tuple(f.name for f in TABLE) == FORMATS
    assert BENCHMARKS == BENCHMARK_NAMES
    assert set(RULE_TEXT) == set(BENCHMARKS) - {"auto"}
    assert {"mmrb2", "mm-rlhf"} <= set(BENCHMARKS)
    for fmt, scoring in FORMAT_BENCHMARKS.items():
        assert scoring in SCORING, (fmt, scoring)


def test_keyed_formats_are_sniffed_from_their_row():
    for keys, fmt in KEYED_FORMATS:
        rec = Record({k: "x" for k in keys}, Location("t.jsonl", "t.jsonl", line=1), {})
        assert sniff_format(rec) == fmt, (keys, fmt)


def test_cli_help_lists_every_benchmark():
    from rewardkit.cli import app

    out = CliRunner().invoke(app, ["eval", "--help"], terminal_width=400).output
    text = " ".join(out.split())
    for name in BENCHMARKS:
        assert name in text, name
