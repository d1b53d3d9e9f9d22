"""``rewardkit check-model`` on the embedded models and on a tiny model of every family; a model
that pools at the first eos is caught and named."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from family_models import pair_lm_model, pairrm_model, remote_model, value_head_model
from rewardkit.cli import app
from rewardkit.modelcheck.check import check_model
from train_helpers import tiny_bert, tiny_llama


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("modelcheck")


def _float32_ways(found) -> dict[str, float]:
    return {c.way: c.max_delta for c in found.comparisons if c.dtype == "float32"}


def test_a_sound_classifier_passes_in_every_layout_and_dtype(root):
    found = check_model(str(tiny_llama(root / "llama")), ("float32", "bfloat16", "int8"))
    ways = {(c.way, c.dtype) for c in found.comparisons}
    for dtype in ("float32", "bfloat16", "int8"):
        assert {("padded", dtype), ("packed", dtype), ("shared", dtype)} <= ways
    assert ("own forward, left-padded batch", "float32") in ways
    for c in found.comparisons:
        if c.dtype == "float32" and c.tolerance is not None:
            assert c.max_delta < 1e-4, c
    assert found.verdict in ("PASS", "WARN") and not found.problems
    assert found.pooling.startswith("ok")
    assert found.padding.startswith("pad id") and "== eos" in found.padding  # SmolLM2: pad = eos
    assert "applied" in found.template
    # The 512-position tiny model cuts the long rows; the reference scored the same cut rows.
    assert not found.truncation.startswith("0 of")
    text = "\n".join(found.lines())
    assert "max|Δ|" in text and f"verdict: {found.verdict}" in text


def test_a_model_pooling_at_the_first_eos_is_caught_and_named(root):
    path = remote_model(root / "broken", "first-eos")
    found = check_model(f"classifier:{path}?trust_remote_code=true", ("float32",))
    assert found.verdict == "FAIL"
    assert any(p.startswith("pooling at the first eos") for p in found.problems)
    assert found.pooling == "BROKEN"
    # The engine agrees with the model's own forward: the fault is the model's pooling.
    assert _float32_ways(found)["padded"] < 1e-4


@pytest.mark.parametrize(
    "kind",
    ["starling", "eurus", "reward-token", "pairrm", "pair-lm", "bert"],
)
def test_every_family_model_gets_a_verdict_and_deltas(root, kind):
    builders = {
        "starling": lambda p: f"classifier:{value_head_model(p, 'starling')}",
        "eurus": lambda p: f"classifier:{remote_model(p, 'eurus')}?trust_remote_code=true",
        "reward-token": lambda p: (
            f"classifier:{remote_model(p, 'reward-token')}?trust_remote_code=true"
        ),
        "pairrm": lambda p: f"classifier:{pairrm_model(p)}",
        "pair-lm": lambda p: f"classifier:{pair_lm_model(p)}?family=pair-lm",
        "bert": lambda p: str(tiny_bert(p)),
    }
    found = check_model(builders[kind](root / kind), ("float32",))
    assert found.verdict in ("PASS", "WARN"), found.lines()
    assert _float32_ways(found)["padded"] < 1e-4
    assert found.pairwise == (kind in ("pairrm", "pair-lm"))


@pytest.mark.parametrize(
    "alias",
    # SmolLM2 (135M) runs the set about six times: minutes on a busy 2-core CPU.
    ["minilm", pytest.param("smollm2", marks=pytest.mark.slow)],
)
def test_the_embedded_models_pass(alias):
    found = check_model(alias, ("float32",), max_length=96)
    assert found.verdict in ("PASS", "WARN"), found.lines()
    assert found.family == "sequence-classifier"
    assert "rows cut to max_length 96" in found.truncation
    assert not found.truncation.startswith("0 of")


def test_the_cli_verb_prints_the_verdict_and_fails_on_a_broken_model(root):
    runner = CliRunner()
    llama = root / "llama" if (root / "llama").exists() else tiny_llama(root / "llama")
    broken = (
        root / "broken"
        if (root / "broken").exists()
        else remote_model(root / "broken", "first-eos")
    )
    good = runner.invoke(app, ["check-model", str(llama), "--dtype", "float32"])
    assert good.exit_code == 0, good.output
    assert "verdict:" in good.output and "padded" in good.output
    bad = runner.invoke(
        app,
        [
            "check-model",
            f"classifier:{broken}?trust_remote_code=true",
            "--dtype",
            "float32",
            "--json",
        ],
    )
    assert bad.exit_code == 1
    assert json.loads(bad.output)["verdict"] == "FAIL"
    missing = runner.invoke(app, ["check-model", "rule:length"])
    assert missing.exit_code == 2 and "check-model checks model-family rewards" in missing.output


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("classifier:minilm?bogus=1", "unknown option 'bogus' for 'classifier'"),  # a traceback
        ("minilm?bogus=1", "unknown option 'bogus' for 'classifier'"),
        ("minilm?dtype=bogus", "give the dtypes to compare with --dtype"),  # said PASS
    ],
)
def test_a_bad_spec_option_is_one_line(spec, named):
    res = CliRunner().invoke(app, ["check-model", spec, "--dtype", "float32"])
    assert res.exit_code == 2 and named in res.output and "Traceback" not in res.output
