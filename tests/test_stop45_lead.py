"""Stop 45, lead's fixes from the docs walk-throughs: `rewardkit score` names the data sources a
route spec without a default has no route for (a misspelt source nulled a dataset and the line
blamed missing references)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.registry import load_reward
from rewardkit.types import Query

runner = CliRunner()


def _route(tmp_path: Path) -> Path:
    spec = tmp_path / "route.yaml"
    spec.write_text('route: {gsm8k: "rule:gsm8k", hh: "rule:length"}\nkey: data_source\n')
    return spec


def test_route_reward_reports_unrouted_sources_per_source(tmp_path: Path) -> None:
    rw = load_reward(str(_route(tmp_path)))
    qs = [
        Query("q", "#### 4", reference="4", meta={"data_source": "gsm8k"}),
        Query("q", "x", meta={"data_source": "zzz"}),
        Query("q", "y", meta={"data_source": "zzz"}),
        Query("q", "z"),
    ]
    full = rw.score_full(qs)
    assert full.stats["unrouted"] == {"zzz": 2, "<no data_source>": 1}
    assert full.scores[0] == 1.0


def test_score_names_unrouted_sources_instead_of_blaming_references(tmp_path: Path) -> None:
    rows = [
        {"prompt": "q", "response": "#### 4", "reference": "4", "data_source": "gsm8k"},
        {"prompt": "q", "response": "hi", "data_source": "hh"},
        {"prompt": "q", "response": "x", "data_source": "zzz"},
    ]
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "s.jsonl"
    res = runner.invoke(
        app, ["score", "-r", str(_route(tmp_path)), "--data", str(data), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "these values have none, nor a default: ['zzz']" in res.output
    assert "needs a reference" not in res.output  # every null row is explained by its source
    assert [json.loads(x)["reward"] for x in out.read_text().splitlines()][2] is None


_BUG = """
import sys
import rewardkit.cli as cli
def broken():
    raise KeyError("unrouted")
cli.build_app = broken
sys.argv = ["rewardkit", "score", "-r", "x"]
cli.main()
"""


def test_an_internal_error_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "REWARDKIT_DEBUG"}
    run = subprocess.run([sys.executable, "-c", _BUG], capture_output=True, text=True, env=env)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith("error: rewardkit score stopped on an internal error")
    assert "KeyError: 'unrouted'" in line and "REWARDKIT_DEBUG=1" in line
    # with REWARDKIT_DEBUG the traceback is there for the one reporting it
    env["REWARDKIT_DEBUG"] = "1"
    run = subprocess.run([sys.executable, "-c", _BUG], capture_output=True, text=True, env=env)
    assert run.returncode == 1 and "Traceback" in run.stderr and "KeyError" in run.stderr


def test_a_pool_whose_every_candidate_is_correct_is_not_called_a_labelled_tie() -> None:
    from rewardkit.evaluate.plan import skip_reason
    from rewardkit.types import Example

    pool = Example(id="p", prompt="q", responses=["a", "b", "c"], chosen=[0, 1, 2])
    pair = Example(id="t", prompt="q", responses=["a", "b"], chosen=[0, 1])
    assert skip_reason(pool, [0, 1, 2]) == "every response chosen"
    assert skip_reason(pair, [0, 1]) == "labelled tie"  # Auto-J's official Overall counts these


def test_lora_wrapping_prints_no_transformers_deprecation(recwarn) -> None:
    # peft reads `is_gradient_checkpointing`, deprecated in transformers 5: every LoRA run
    # printed it as a rewardkit "warning:" line a user cannot act on
    import warnings

    from rewardkit.train.common import load_classifier
    from rewardkit.train.config import TrainConfig
    from rewardkit.train.lora import apply_lora

    hf = load_classifier("minilm", 1, 0, "float32")
    warnings.simplefilter("always")
    wrapped = apply_lora(hf, TrainConfig(model="minilm", lora_r=4), "SEQ_CLS")
    assert any("lora" in n for n, _ in wrapped.named_parameters())
    assert not [w for w in recwarn if "is_gradient_checkpointing" in str(w.message)]


def test_verl_compute_score_value_is_the_score_as_a_float_for_the_prime_manager() -> None:
    # verl's prime manager reads a number (or result[0]); a dict made it zero the whole batch
    from rewardkit.integrations.verl import compute_score, compute_score_value

    right = compute_score_value("gsm8k", "#### 4", "4", None, spec="rule:gsm8k")
    wrong = compute_score_value("gsm8k", "#### 5", "4", spec="rule:gsm8k")
    assert isinstance(right, float) and (right, wrong) == (1.0, 0.0)
    assert right == compute_score("gsm8k", "#### 4", "4", spec="rule:gsm8k")["score"]
    # no route: the NaN "does not apply" is sent as nan_score, as compute_score sends it
    route = {"route": {"gsm8k": "rule:gsm8k"}}
    assert compute_score_value("other", "x", "4", spec=route, nan_score=-1.0) == -1.0


def test_engine_option_names_are_checked_whatever_the_reward(tmp_path: Path) -> None:
    # a rule-only spec builds no engine: --dtype bf61 or --device cdua passed without a word
    data = tmp_path / "in.jsonl"
    data.write_text('{"prompt": "q", "response": "a"}\n')
    out = tmp_path / "o.jsonl"
    for option, said in [
        (["--dtype", "bf61"], "error: --dtype: expected float32"),
        (["--device", "cdua"], "error: --device: unknown device 'cdua'"),
        (["--truncation", "middle"], "error: --truncation: expected left, right, error"),
    ]:
        res = runner.invoke(
            app, ["score", "-r", "rule:length", "--data", str(data), "--out", str(out), *option]
        )
        assert res.exit_code == 2 and said in res.output, res.output
        assert not out.exists()
    res = runner.invoke(
        app,
        [
            "score",
            "-r",
            "rule:length",
            "--data",
            str(data),
            "--out",
            str(out),
            "--dtype",
            "BF16",
            "--device",
            "cuda:3",
        ],
    )
    assert res.exit_code == 0 and out.exists()  # names an engine takes (the GPU is checked at load)
