"""The docs and ``--help`` tell the truth: what they list is what the code takes and does.

Each test reads the option or field names from the code (signatures, click parameters), so a
new option that is not documented fails here rather than in a user's hands."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.util
import inspect
import re
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from rewardkit.cli import app, build_app

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
runner = CliRunner()


# -- `rewardkit rewards list` lists every option ------------------------------------------------
def _listing() -> dict[str, list[str]]:
    """``rewardkit rewards list`` as kind → the lines of its block."""
    result = runner.invoke(app, ["rewards", "list"])
    assert result.exit_code == 0, result.output
    blocks: dict[str, list[str]] = {}
    current: list[str] = []
    for line in result.output.splitlines():
        if line and not line[0].isspace():
            kind = re.split(r"[:\s]", line, maxsplit=1)[0]
            current = blocks.setdefault(kind, [])
        current.append(line)
    return blocks


def _options_text(block: list[str]) -> str:
    """The ``options …`` paragraph of a kind's block (its wrapped lines joined)."""
    out: list[str] = []
    for line in block[1:]:
        if out and (
            not line.startswith("    ") or line.startswith(("    method card:", "    rule:"))
        ):
            break
        if out or line.startswith("    options"):
            out.append(line.strip())
    return " ".join(out)


def _named(name: str, text: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", text) is not None


def _keywords(cls: type, skip: tuple[str, ...] = ()) -> set[str]:
    """The options a reward class takes: its ``__init__`` parameters after the model argument,
    less ``config`` (the engine options, listed as a group) and ``**options``."""
    params = list(inspect.signature(cls.__init__).parameters.values())[2:]  # self, model
    return {
        p.name
        for p in params
        if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name not in ("config", *skip)
    }


def _accepted() -> dict[str, set[str]]:
    """Kind → the options its code accepts (the kinds the probe found listed without them)."""
    from rewardkit.rewards.classifier import ClassifierReward
    from rewardkit.rewards.clip_score import ClipScoreReward
    from rewardkit.rewards.density_ratio import DensityRatioReward
    from rewardkit.rewards.dpo import DPOImplicitReward
    from rewardkit.rewards.image_rm import ImageRMReward
    from rewardkit.rewards.judges.template import KINDS, JudgeOptions
    from rewardkit.rewards.pairwise_model import PairwiseModelReward
    from rewardkit.rewards.prm.reward import PRMReward
    from rewardkit.rewards.relevance import COMPONENTS, RelevanceReward
    from rewardkit.rewards.similarity import BMASReward, EmbeddingSimilarityReward

    def judge(kind: str) -> set[str]:
        names = {f.name for f in dataclasses.fields(JudgeOptions)}
        return names if KINDS[kind].outputs else names - {"output"}

    return {
        "classifier": _keywords(ClassifierReward) | _keywords(PairwiseModelReward),
        "judge": judge("yes_no"),
        "judge-pairwise": judge("pairwise"),
        "judge-rating": judge("rating"),
        "judge-listwise": judge("listwise") | {"order_seed"},
        "verifier": (judge("verifier") - {"principle", "rubric"}) | {"tail"},
        "genorm": (judge("genorm") - {"principle", "rubric"})
        | {"n", "temperature", "top_p", "max_new_tokens", "seed", "prefill", "keep_critiques"},
        "vlm-judge": judge("yes_no") | {"trust_remote_code"},
        "vlm-judge-pairwise": judge("pairwise") | {"trust_remote_code"},
        "vlm-judge-listwise": judge("listwise") | {"order_seed", "trust_remote_code"},
        "similarity": _keywords(EmbeddingSimilarityReward),
        "bmas": _keywords(BMASReward),
        "relevance": _keywords(RelevanceReward) | {f"w_{c}" for c in COMPONENTS},
        "dpo": _keywords(DPOImplicitReward),
        "density-ratio": _keywords(DensityRatioReward),
        "clip": _keywords(ClipScoreReward),
        "image-rm": _keywords(ImageRMReward),
        "prm": _keywords(PRMReward),
    }


def test_rewards_list_names_every_option_the_code_takes():
    blocks = _listing()
    missing = {}
    for kind, names in _accepted().items():
        text = _options_text(blocks[kind])
        gone = sorted(n for n in names if not _named(n, text))
        if gone:
            missing[kind] = gone
    assert not missing, f"options `rewardkit rewards list` leaves out: {missing}"


def test_rewards_list_says_which_kinds_take_the_engine_options():
    from rewardkit.registry import kinds

    blocks = _listing()
    endpoints = {"remote", "vllm", "sglang"}  # they drop the local engine options
    for k in kinds():
        if k.uses_engine and k.kind not in endpoints:
            assert "engine options" in _options_text(blocks[k.kind]), k.kind


def test_rewards_list_gives_each_rule_its_options():
    from rewardkit.rewards.rules import RULES

    lines = _listing()["rule"]
    text = "\n".join(lines)
    for name, target in RULES.items():
        module, _, cls_name = target.partition(":")
        cls = getattr(importlib.import_module(module), cls_name)
        own = list(inspect.signature(cls.__init__).parameters)[1:]  # a rule has no model argument
        section = text.split(f"    rule:{name} ", 1)[1].split("\n    rule:", 1)[0]
        for option in own:
            assert _named(option, section), (name, option)


def test_rewards_list_names_the_options_reward_specs_md_gives_the_classifier():
    # docs/reward-specs.md, `classifier:PATH_OR_ID`: "Options: `family` …, `trust_remote_code`"
    text = (DOCS / "reward-specs.md").read_text()
    section = text.split("### `classifier:PATH_OR_ID`", 1)[1].split("\n### ", 1)[0]
    paragraph = section.split("Options:", 1)[1].split("\n\n", 1)[0]
    documented = set(re.findall(r"`([a-z_]+)`", paragraph))
    listed = _options_text(_listing()["classifier"])
    assert documented and all(_named(n, listed) for n in documented), documented


# -- every flag of `rewardkit VERB --help` is in docs/cli/VERB.md -------------------------------
def _leaf_commands():
    root = typer.main.get_command(build_app())

    def walk(cmd, path):
        if hasattr(cmd, "commands"):
            yield path, cmd  # a group's own options (curate --on-error)
            for name, sub in cmd.commands.items():
                yield from walk(sub, [*path, name])
        else:
            yield path, cmd

    yield from walk(root, [])


VERB_PAGES = sorted(p.stem for p in (DOCS / "cli").glob("*.md"))


@pytest.mark.parametrize("verb", VERB_PAGES)
def test_every_flag_of_a_verb_is_on_its_page(verb):
    text = (DOCS / "cli" / f"{verb}.md").read_text()
    missing = []
    for path, cmd in _leaf_commands():
        if not path or path[0] != verb:
            continue
        for p in cmd.params:
            if p.param_type_name != "option":
                continue
            names = [o for o in [*p.opts, *p.secondary_opts] if o.startswith("--")]
            if not names or names == ["--help"]:
                continue
            plain = {n.removeprefix("--").removeprefix("no-") for n in names}
            if not any(_named_flag(n, text) for n in names) and not any(
                f"--[no-]{n}" in text for n in plain
            ):
                missing.append(f"{' '.join(path)} {names[0]}")
    assert not missing, f"docs/cli/{verb}.md leaves out: {missing}"


def _named_flag(flag: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text) is not None


def test_curate_help_names_every_subcommand():
    root = typer.main.get_command(build_app())
    curate = root.commands["curate"]
    summary = curate.help or ""
    for name in curate.commands:
        assert name in summary, name


# -- report --no-html writes no HTML, the leaderboard included -----------------------------------
def _run(tmp_path: Path, name: str) -> Path:
    from rewardkit import load_reward
    from rewardkit.data import load
    from rewardkit.evaluate import evaluate

    res = evaluate(load("sample", limit=16), [load_reward("rule:length?unit=words")], n_boot=10)
    res.write_reports(tmp_path / name, html=False)
    return tmp_path / name


def test_report_no_html_writes_no_leaderboard_html(tmp_path):
    a, b = _run(tmp_path, "a"), _run(tmp_path, "b")
    board = tmp_path / "board"
    result = runner.invoke(app, ["report", str(a), str(b), "--out", str(board), "--no-html"])
    assert result.exit_code == 0, result.output
    assert (board / "leaderboard.md").is_file() and (board / "leaderboard.json").is_file()
    assert not (board / "leaderboard.html").exists()
    assert not (a / "report.html").exists() and not (b / "report.html").exists()
    assert "leaderboard.html" not in result.output
    result = runner.invoke(app, ["report", str(a), str(b), "--out", str(board)])
    assert result.exit_code == 0, result.output
    assert (board / "leaderboard.html").is_file() and (a / "report.html").is_file()


# -- /metrics shows the refusal counters at 0 from the start ------------------------------------
def test_metrics_expose_refusal_counters_at_zero_from_the_start():
    from rewardkit.serve.app import ServeConfig, create_app
    from rewardkit.serve.background import BackgroundServer

    app_ = create_app(ServeConfig(rewards={"default": "rule:length", "gsm8k": "rule:gsm8k"}))
    with BackgroundServer(app_) as srv:
        text = httpx.get(srv.url + "/metrics", timeout=30).text
    for line in (
        "rewardkit_connections_refused_total 0",
        'rewardkit_disconnects_total{endpoint="/v1/rewards"} 0',
        'rewardkit_disconnects_total{endpoint="/get_reward"} 0',
        'rewardkit_rejected_total{route="default"} 0',
        'rewardkit_rejected_total{route="gsm8k"} 0',
    ):
        assert line in text.splitlines(), line


def test_counting_after_the_zero_start_adds_up():
    from rewardkit.serve.metrics import Metrics

    m = Metrics()
    m.set("rewardkit_queue_depth", 0, route="r")
    m.inc("rewardkit_rejected_total", route="r")
    m.inc("rewardkit_connections_refused_total")
    text = m.render().splitlines()
    assert 'rewardkit_rejected_total{route="r"} 1' in text
    assert "rewardkit_connections_refused_total 1" in text
    assert m.counter("rewardkit_disconnects_total", endpoint="/v1/rewards") == 0


# -- train --print-config refuses what a run refuses ---------------------------------------------
REFUSED = [
    ["--head", "mlp"],  # configs/bt_minilm.yaml trains the whole model: an MLP head is ignored
    ["--head", "cosine"],  # a text model
    ["--model_type", "image", "--objective", "crm"],
]


@pytest.mark.parametrize("flags", REFUSED)
def test_print_config_refuses_what_a_run_refuses(flags, tmp_path):
    from rewardkit.errors import SpecError
    from rewardkit.train.config import load_config, parse_cli_overrides
    from rewardkit.train.run import train

    config = str(ROOT / "configs" / "bt_minilm.yaml")
    out = ["--output_dir", str(tmp_path / "run")]
    result = runner.invoke(app, ["train", "--config", config, *flags, *out, "--print-config"])
    assert result.exit_code == 2, result.output
    cfg = load_config(config, parse_cli_overrides([*flags, *out], None))
    with pytest.raises(SpecError) as run_error:
        train(cfg)
    assert str(run_error.value) in " ".join(result.output.split()), result.output


def test_print_config_prints_a_config_a_run_accepts():
    config = str(ROOT / "configs" / "bt_minilm.yaml")
    # a frozen head keeps no checkpoints: the config's save_steps 100 is refused by the run
    flags = ["--head", "mlp", "--freeze_backbone", "true", "--save_steps", "0", "--print-config"]
    result = runner.invoke(app, ["train", "--config", config, *flags])
    assert result.exit_code == 0, result.output
    assert '"head": "mlp"' in result.output


# -- signatures written in the docs --------------------------------------------------------------
@pytest.mark.parametrize(
    ("page", "target"),
    [
        ("evaluation.md", "rewardkit.evaluate:evaluate"),
        ("data-formats.md", "rewardkit.data:load"),
    ],
)
def test_a_documented_signature_names_every_parameter(page, target):
    module, _, name = target.partition(":")
    fn = getattr(importlib.import_module(module), name)
    text = " ".join((DOCS / page).read_text().split())
    found = re.search(rf"`{name}\(([^`]*)\)`", text)
    assert found, f"{page}: no `{name}(...)` signature"
    args = re.sub(r"\([^()]*\)", "", found.group(1))  # a tuple default: (1024, 16384)
    written = {part.split("=")[0].strip() for part in args.split(",")} - {"*"}
    assert written == set(inspect.signature(fn).parameters), (page, written)


def test_composition_md_unpacks_disagreement_by_its_fields():
    from rewardkit.combine.aggregate import Disagreement

    text = (DOCS / "composition.md").read_text()
    line = next(ln for ln in text.splitlines() if "= disagreement(" in ln)
    assert all(_named(f, line) for f in Disagreement._fields), line
    assert "spread" not in line


def test_design_md_places_every_module_the_layer_test_places():
    spec = importlib.util.spec_from_file_location("layers", ROOT / "tests" / "test_layers.py")
    layers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(layers)
    text = (DOCS / "design.md").read_text()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 3 and cells[1] in layers.LAYERS:
            rows[cells[1]] = cells[2]
    missing = []
    for layer, prefixes in layers.LAYERS.items():
        for dotted in prefixes:
            if dotted == "rewardkit":
                continue  # "the `rewardkit` package facade"
            rel = dotted.removeprefix("rewardkit.").replace(".", "/")
            package = (ROOT / "src" / "rewardkit" / rel).is_dir()
            names = [f"`{rel}/`", f"`{rel}/__init__.py`"] if package else [f"`{rel}.py`"]
            if not any(n in rows.get(layer, "") for n in names):
                missing.append((layer, dotted))
    assert not missing, missing


def test_design_md_names_every_function_where_result_imports_report():
    source = (ROOT / "src" / "rewardkit" / "evaluate" / "result.py").read_text()
    tree = ast.parse(source)
    users = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for inner in ast.walk(node):
                if (
                    isinstance(inner, ast.ImportFrom)
                    and inner.module == "rewardkit.evaluate.report"
                ):
                    users.add(node.name)
    text = " ".join((DOCS / "design.md").read_text().split())
    sentence = text.split("Imports run one way:", 1)[1].split(". ", 1)[0]
    assert users and all(u in sentence for u in users), (users, sentence)
