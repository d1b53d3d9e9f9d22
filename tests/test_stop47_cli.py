"""CLI leftovers (stop 47, area s47cli): an empty input path (``--data ''``, an unset shell
variable, which typer read as the current directory) on every verb, ``serve`` request and queue
limits past any sane bound, and ``rewardkit train`` counts (``max_steps`` 2**70 trained until
stopped) and empty path fields (docs/cli/*.md, docs/training.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import rewardkit.serve.cli as serve_cli
from cli_output import flat
from rewardkit.cli import app, build_app
from rewardkit.cli_errors import nonempty_path, output_path

runner = CliRunner()
#: A model that does not exist: a command that got past its options would fail naming it.
NO_MODEL = "/nonexistent/s47-model"
HUGE = str(2**70)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A preference file and a prompt/response rows file, outside the working directory."""
    rows = [{"prompt": f"q{i}", "chosen": "a long answer " * (i + 1), "rejected": "no"} for i in range(4)]  # fmt: skip
    prefs = tmp_path / "prefs.jsonl"
    prefs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    query = tmp_path / "rows.jsonl"
    query.write_text(json.dumps({"prompt": "q", "response": "a"}) + "\n")
    return {"d": prefs, "q": query, "o": tmp_path / "o", "m": Path(NO_MODEL)}


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch) -> Path:
    """An empty working directory: '' read as '.' would read (or write) here."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def _refused(result, what: str, cwd: Path) -> str:
    """Exit 2 naming ``what`` and "an empty path", no traceback, nothing loaded or written."""
    assert result.exit_code == 2, result.output
    text = flat(result)
    assert what in text and "an empty path" in text, text
    assert "Traceback" not in result.output and "s47-model" not in text, text
    assert list(cwd.iterdir()) == []
    return text


# -- 1. an empty input path names the flag, never the current directory ------------------------
EMPTY_IN = [  # each run ends in the flag given as '' ({d}: pairs, {q}: rows, {o}: an output)
    "score -r classifier:{m} --out {o}.jsonl --data",
    "eval -r classifier:{m} --no-cache --out {o} --data",
    "eval -r classifier:{m} --data {d} --no-cache --out {o} --temperature",
    "bon -r rule:length --out {o}.jsonl --policy {m} --data",
    "bon -r rule:length --data {q} --out {o}.jsonl --policy",
    "curate strength -r classifier:{m} --out {o}.jsonl --data",
    "curate export --out {o}.jsonl --data",
    "curate crome --data {d} --out {o}.jsonl --generator",
    "curate anyprefer --judge rule:length --policy {m} --out {o}.jsonl --trace {o}.t --data",
    "curate anyprefer --data {q} --judge rule:length --out {o}.jsonl --trace {o}.t --policy",
    "curate decontaminate --data {d} --out {o}.jsonl --against",
    "curate retrieve --pool {d} -r classifier:{m} --out {o}.jsonl --gold",
    "curate retrieve --gold {d} -r classifier:{m} --out {o}.jsonl --pool",
    "curate retrieve --gold {d} --pool {d} -r classifier:{m} --out {o}.jsonl --encoder",
    "curate condition --out {o}.jsonl --data",
    "curate agree -r classifier:{m} --out {o}.jsonl --data",
    "pal personas --out {o}.jsonl --data",
    "pal adapt {m} --user u --data",
    "detect gsm8k --out {o}.jsonl --data",
    "detect eval -r classifier:{m} --data",
    "detect tune --data {d} --out {o} --base",
    "detect tune --data {d} --out {o} --replay",
    "detect tune --data {d} --out {o} --mixer",
    "domain fit --out {o} --data",
    "polar pretrain --out {o} --data",
    "polar finetune {m} --out {o} --data",
    "dmoerm route --out {o} --data",
    "dmoerm fit --out {o} --expert a={m} --data",
    "dmoerm fit --data {d} --out {o} --experts",
    "dmoerm fit --data {d} --out {o} --expert a={m} --router",
    "train --model {m} --config",
]


@pytest.mark.parametrize("line", EMPTY_IN)
def test_an_empty_input_path_is_refused_naming_the_flag(files, cwd, line):
    # before: `dmoerm fit --experts ''` ".: cannot read the --experts file: Is a directory",
    # `train --config ''` "train config . is a directory", `score --data ''` "--out lies inside
    # the --data directory .", `bon --policy ''` "no config.json in <cwd>"
    args = [*line.format(**files).split(), ""]
    _refused(runner.invoke(app, args), args[-2], cwd)


POSITIONAL = [  # an empty positional path: the argument's name is in the message
    (["data", ""], "'path'"),
    (["report", ""], "'dirs'"),
    (["pal", "adapt", "", "--user", "u", "--data", "{d}"], "'model'"),
    (["polar", "finetune", "", "--data", "{d}", "--out", "{o}"], "'model'"),
]


@pytest.mark.parametrize(("args", "name"), POSITIONAL)
def test_an_empty_positional_path_is_refused(files, cwd, args, name):
    # `report ''` was ".: report.json: no report.json at report.json"
    argv = [a.format(**files) for a in args]
    _refused(runner.invoke(app, argv), name, cwd)


def test_a_second_run_directory_given_empty_is_refused_too(files, cwd):
    result = runner.invoke(app, ["report", str(files["o"]), ""])
    _refused(result, "'dirs'", cwd)


def test_every_path_typed_parameter_refuses_an_empty_path():
    # a Path parameter without a parser reads '' as '.': every one takes the one helper
    def params(cmd, path):
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                yield from params(sub, [*path, name])
        else:
            for p in cmd.params:
                yield " ".join(path), p

    found = 0
    for where, p in params(typer.main.get_command(build_app()), []):
        if "Path" in str(p.type_descriptor.annotation):
            found += 1
            parser = p.type_descriptor.parameter_info.parser
            assert parser in (nonempty_path, output_path), (where, p.name)
    assert found >= 30, found


def test_monitor_refuses_an_empty_log_or_plot(tmp_path, cwd, capsys):
    from rewardkit.monitor.__main__ import main

    for argv, name in ((["", "p.png"], "log"), ([str(tmp_path / "log.jsonl"), ""], "out")):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert f"error: {name}: an empty path" in err, err  # was ".: Is a directory"
    assert list(cwd.iterdir()) == []


# -- 2. serve: queue, batch and request limits have documented bounds ---------------------------
@pytest.fixture
def served(monkeypatch) -> dict:
    """``serve`` up to the point it would start the server: the config it would run."""
    seen: dict = {}
    monkeypatch.setattr(serve_cli, "run", lambda config, **kw: seen.update(config=config))
    return seen


SERVE_LIMITS = [  # flag, the largest value taken, the range as the message gives it
    ("--max-queue", 1_000_000, "[1, 1000000]"),
    ("--max-batch-items", 1_000_000, "[1, 1000000]"),
    ("--max-body-bytes", 2**40, "[1, 1099511627776]"),
    ("--max-items", 10_000_000, "[1, 10000000]"),
    ("--max-item-chars", 10**9, "[1, 1000000000]"),
]
SERVE = ["serve", "-r", "rule:length", "--port", "0"]


@pytest.mark.parametrize(("flag", "top", "bound"), SERVE_LIMITS)
@pytest.mark.parametrize("value", ["huge", "over", "zero"])
def test_serve_refuses_a_limit_past_its_bound_before_anything_starts(
    served, flag, top, bound, value
):
    # 2**70 was taken (a --max-body-bytes of 2**70 turned the body limit off)
    given = {"huge": HUGE, "over": str(top + 1), "zero": "0"}[value]
    result = runner.invoke(app, [*SERVE, flag, given])
    assert result.exit_code == 2, result.output
    text = flat(result)
    assert flag in text and bound in text, text
    assert "config" not in served


def test_serve_takes_each_limit_at_its_bound(served):
    args = [*SERVE]
    for flag, top, _ in SERVE_LIMITS:
        args += [flag, str(top)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    c = served["config"]
    assert (c.batch.max_queue, c.batch.max_batch_items) == (10**6, 10**6)
    assert (c.limits.max_body_bytes, c.limits.max_items, c.limits.max_item_chars) == (
        2**40,
        10**7,
        10**9,
    )


def test_serve_page_gives_the_limits():
    page = " ".join((Path(__file__).resolve().parents[1] / "docs/cli/serve.md").read_text().split())
    for words in ("1 to 1,000,000;", "1 to 1,099,511,627,776 (1 TiB)", "1 to 10,000,000"):
        assert words in page, words


# -- 3. train: counts past any real run and empty path fields, refused before anything loads -----
def _train(args: list[str], out: Path) -> tuple[int, str]:
    result = runner.invoke(app, ["train", "--output_dir", str(out), "--model", NO_MODEL, *args])
    return result.exit_code, flat(result)


TRAIN_BOUNDS = [  # field, value refused, the words of the message
    ("max_steps", HUGE, "max_steps must be -1 (use epochs) or 1 to 10**12"),
    ("max_steps", str(10**12 + 1), "max_steps must be -1 (use epochs) or 1 to 10**12"),
    ("epochs", "1e300", "epochs must be a number in (0, 1,000,000]"),
    ("grad_accum", HUGE, "grad_accum must be an integer from 1 to 2**31 - 1"),
    ("save_steps", HUGE, "save_steps must be an integer from 0 (only the end) to 10**12"),
    ("eval_steps", HUGE, "eval_steps must be an integer from 0 (at the end only) to 10**12"),
    ("logging_steps", HUGE, "logging_steps must be an integer from 1 to 10**12"),
    ("limit", HUGE, "limit must be an integer from 1 to 10**12"),
    ("eval_limit", HUGE, "eval_limit must be an integer from 1 to 10**12"),
    ("max_length", HUGE, "max_length must be an integer from 8 to 1,000,000"),
    ("metarm_batch_size", HUGE, "metarm_batch_size must be an integer from 1 to 2**31 - 1"),
]


@pytest.mark.parametrize(("field", "value", "words"), TRAIN_BOUNDS)
def test_train_refuses_a_count_past_any_run_before_the_model_loads(tmp_path, field, value, words):
    code, text = _train([f"--{field}", value], tmp_path / "t")
    assert code == 2 and f"train config: {words}" in text, text
    assert "s47-model" not in text  # refused before the (missing) model was looked up
    assert not (tmp_path / "t").exists()


def test_train_takes_each_count_at_its_bound(tmp_path):
    args = ["--max_steps", str(10**12), "--epochs", "1000000", "--logging_steps", str(10**12)]
    args += ["--limit", str(10**12), "--max_length", "1000000", "--grad_accum", str(2**31 - 1)]
    result = runner.invoke(app, ["train", "--output_dir", str(tmp_path / "t"), *args, "--print-config"])  # fmt: skip
    assert result.exit_code == 0, result.output
    cfg = json.loads(result.stdout)
    assert (cfg["max_steps"], cfg["epochs"], cfg["max_length"]) == (10**12, 1e6, 10**6)


@pytest.mark.parametrize(
    "field", ["data", "eval_data", "vote_file", "metarm_data", "cache_dir", "model"]
)
def test_train_refuses_an_empty_path_field(tmp_path, cwd, field):
    # --eval_data '' silently trained without eval data; --data '' failed after setup
    args = [f"--{field}", ""]
    code, text = _train(args, tmp_path / "t")
    assert code == 2, text
    assert f"train config: {field} must be a path or name, not empty" in text, text
    assert "an unset shell variable?" in text
    assert list(cwd.iterdir()) == [] and not (tmp_path / "t").exists()


def test_train_config_file_with_an_empty_eval_data_is_refused(tmp_path, files):
    config = tmp_path / "c.yaml"
    config.write_text(f"data: {files['d']}\neval_data: ''\n")
    code, text = _train(["--config", str(config)], tmp_path / "t")
    assert code == 2 and "eval_data" in text and "not empty" in text, text


def test_train_null_still_unsets_an_optional_field(tmp_path):
    # only '' is refused: null (or none) is how a field is unset on the command line
    args = ["train", "--output_dir", str(tmp_path / "t"), "--eval_data", "null", "--print-config"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["eval_data"] is None
