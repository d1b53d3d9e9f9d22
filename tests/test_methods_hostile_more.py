"""More hostile runs of the research-method verbs (``pal``, ``detect``, ``domain``, ``polar``):
outputs that would replace or pollute an input, concurrent PAL updates, diverged training,
huge counts and β, and the messages and numbers at the boundaries. No encoder is loaded: the
frozen featurizers are replaced by a small deterministic one where a verb needs features."""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.errors import DataError, SpecError, TrainingDiverged
from rewardkit.types import Example, user

runner = CliRunner()
DIM = 8

PREFS = [
    {"id": "1", "prompt": "apple banana", "chosen": "apple is red", "rejected": "nothing here"},
    {"id": "2", "prompt": "apple banana", "chosen": "nothing", "rejected": "apple banana split"},
    {"id": "3", "prompt": "cherry", "chosen": "cherry pie is sweet", "rejected": "no"},
]


def _jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _detection(path: Path, n: int = 6) -> Path:
    rows = [
        {
            "id": f"d{i}",
            "prompt": "question",
            "responses": ["a long machine-written answer " * (i + 2), "short " * (i % 3 + 1)],
            "chosen": [0],
            "meta": {"origin": ["llm", "human"]},
        }
        for i in range(n)
    ]
    return _jsonl(path, rows)


def _refused(result, *needles: str, code: int = 2) -> None:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, result.output


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


class FakeFeaturizer:
    """Deterministic features of each response text (no encoder)."""

    def __init__(self, name: str = "minilm", config: object = None) -> None:
        self.encoder = self
        self.dim = DIM

    def identity(self) -> dict:
        return {"class": "FakeFeaturizer"}

    def features(self, queries) -> np.ndarray:
        seeds = [int(hashlib.sha256(str(q.response).encode()).hexdigest()[:8], 16) for q in queries]
        return np.asarray([np.random.default_rng(s).normal(size=DIM) for s in seeds], np.float32)


@pytest.fixture
def fake_features(monkeypatch):
    import rewardkit.rewards.default_rm as drm

    torch.set_num_threads(1)
    monkeypatch.setattr(drm, "Featurizer", FakeFeaturizer)


def _pal_model(directory: Path, nan: bool = False) -> Path:
    from rewardkit.rewards.pal import PALHead, save_pal

    torch.manual_seed(0)
    head = PALHead(DIM, 1, 2, 4, "ideal")
    if nan:
        with torch.no_grad():
            head.prototypes.fill_(math.nan)
    meta = {"encoder": "minilm", "in_dim": DIM, "max_length": 64, "form": "ideal", "k": 2}
    meta |= {"d_pref": 4, "population": [0.5, 0.5]}
    return save_pal(directory, head, meta, {"alice": [0.1, -0.1]})


def _polar_model(directory: Path, nan: bool = False) -> Path:
    from rewardkit.rewards.default_rm import FeatureHead
    from rewardkit.rewards.polar import save_polar

    head = FeatureHead(DIM, "mlp", 4)
    if nan:
        with torch.no_grad():
            head.net[0].weight.fill_(math.nan)
    return save_polar(directory, head, {"encoder": "minilm", "in_dim": DIM, "inner": 4,
                                        "max_length": 64, "stages": []})  # fmt: skip


def _shots(name: str, n: int = 4) -> list[Example]:
    return [
        Example(f"{name}{i}", [user(f"q{i}")], [f"good {i}", f"bad {i}"], [0], meta={"user": name})
        for i in range(n)
    ]


@pytest.mark.parametrize("sub", ["", "inner"])
def test_polar_finetune_refuses_an_out_at_or_inside_the_model(tmp_path, sub):
    model = _polar_model(tmp_path / "pre")
    before = _tree(model)
    data = _jsonl(tmp_path / "ft.jsonl", [{**r, "reference": "ref"} for r in PREFS])
    out = model / sub if sub else model
    result = runner.invoke(
        app, ["polar", "finetune", str(model), "--data", str(data), "--out", str(out)]
    )
    _refused(result, "--out", "model directory")
    assert _tree(model) == before


def _in_data_dir(tmp_path: Path, verb: str) -> tuple[list[str], Path]:
    d = tmp_path / "data"
    if verb == "detect eval":
        _detection(d / "det.jsonl")
        return ["detect", "eval", "-r", "rule:length", "--data", str(d)], d / "rep.json"
    if verb == "polar pretrain":
        return ["polar", "pretrain", "--data", str(d)], d / "model"
    _jsonl(d / "prefs.jsonl", PREFS)
    args = {
        "domain fit": ["domain", "fit"],
        "pal personas": ["pal", "personas"],
        "pal train": ["pal", "train"],
        "detect tune": ["detect", "tune"],
        "polar finetune": ["polar", "finetune", str(tmp_path / "pre")],
    }[verb]
    out = d / ("u.jsonl" if verb == "pal personas" else "model")
    return [*args, "--data", str(d)], out


VERBS = "domain fit,detect eval,detect tune,pal personas,pal train,polar pretrain,polar finetune"


@pytest.mark.parametrize("verb", VERBS.split(","))
def test_an_out_inside_the_data_directory_is_refused_before_work(tmp_path, verb):
    (tmp_path / "data").mkdir()
    args, out = _in_data_dir(tmp_path, verb)
    before = _tree(tmp_path / "data")
    result = runner.invoke(app, [*args, "--out", str(out)])
    _refused(result, "--out", "inside the --data directory")
    assert _tree(tmp_path / "data") == before


def test_detect_gsm8k_refuses_an_out_that_is_its_input_file(tmp_path):
    source = _jsonl(tmp_path / "example_model_solutions.jsonl", [{"question": "q"}])
    before = source.read_bytes()
    result = runner.invoke(app, ["detect", "gsm8k", "--data", str(tmp_path), "--out", str(source)])
    _refused(result, "--out", "GSM8K input file itself")
    assert source.read_bytes() == before


def test_detect_tune_refuses_an_out_inside_the_base_head(tmp_path):
    base = tmp_path / "head"
    base.mkdir()
    data = _detection(tmp_path / "det.jsonl")
    result = runner.invoke(
        app,
        ["detect", "tune", "--data", str(data), "--base", str(base), "--out", str(base / "x")],
    )
    _refused(result, "--out", "inside the --base directory")


def test_adapt_keeps_a_user_another_run_stored_while_it_fitted(
    tmp_path, fake_features, monkeypatch
):
    import rewardkit.train.pal as tp

    model = _pal_model(tmp_path / "pal")
    real_fit = tp.fit_user
    calls = []

    def fit_while_bob_is_stored(*args, **kwargs):
        if not calls:  # another run adapts bob while this one fits carol
            calls.append(1)
            tp.adapt_user(model, "bob", _shots("bob"), steps=3)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(tp, "fit_user", fit_while_bob_is_stored)
    tp.adapt_user(model, "carol", _shots("carol"), steps=3)
    users = json.loads((model / "pal.json").read_text())["users"]
    assert set(users) == {"alice", "bob", "carol"}
    assert not [p.name for p in model.iterdir() if p.name.startswith(".")]


def test_adapt_waits_while_another_run_holds_the_model(tmp_path, fake_features):
    from rewardkit.outputs import exclusive
    from rewardkit.train.pal import adapt_user

    model = _pal_model(tmp_path / "pal")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            adapt_user(model, "dave", _shots("dave"), steps=3)
        except BaseException as exc:  # reported below
            errors.append(exc)

    with exclusive(model, "PAL model"):
        worker = threading.Thread(target=run)
        worker.start()
        time.sleep(0.5)
        assert "dave" not in json.loads((model / "pal.json").read_text())["users"]
    worker.join(30)
    assert not errors and not worker.is_alive()
    assert "dave" in json.loads((model / "pal.json").read_text())["users"]


def _x_pairs():
    from rewardkit.train.pal import Pairs

    x = torch.randn(20, DIM, generator=torch.Generator().manual_seed(0))
    return x, Pairs(torch.arange(0, 10), torch.arange(10, 20), torch.tensor([0, 1] * 5))


def test_trainers_stop_when_the_loss_diverges():
    from rewardkit.rewards.default_rm import FeatureHead
    from rewardkit.train.pal import PALConfig, fit_pal
    from rewardkit.train.polar import PolarConfig, fit_polar
    from rewardkit.train.remodetect import DetectTuneConfig, tune_head

    torch.set_num_threads(1)
    x, pairs = _x_pairs()
    with pytest.raises(TrainingDiverged, match="PAL training loss"):
        fit_pal(x, pairs, 2, PALConfig(d_pref=4, steps=20, lr=1e30))
    with pytest.raises(TrainingDiverged, match="POLAR training loss"):
        fit_polar(x[:10], x[10:], PolarConfig(inner=4, steps=20, lr=1e30))
    idx = np.stack([np.arange(10), np.arange(10, 20)], 1)
    with pytest.raises(TrainingDiverged, match="detection tuning loss"):
        tune_head(FeatureHead(DIM, "mlp", 4), x, idx, None, DetectTuneConfig(steps=20, lr=1e30))


def test_pal_train_that_diverges_exits_nonzero_and_saves_nothing(
    tmp_path, fake_features, monkeypatch
):
    import rewardkit.train.pal as tp

    monkeypatch.setattr(tp, "bt_loss", lambda a, b: (a - b).sum() * math.nan)
    data = _jsonl(tmp_path / "u.jsonl", [{**r, "user": f"u{i % 2}"} for i, r in enumerate(PREFS)])
    out = tmp_path / "m"
    result = runner.invoke(
        app, ["pal", "train", "--data", str(data), "--out", str(out), "--steps", "5"]
    )
    _refused(result, "diverged", "nothing was saved")
    assert not out.exists()


@pytest.mark.parametrize(
    "verb", [["pal", "train"], ["detect", "tune"], ["polar", "pretrain"], ["polar", "finetune"]]
)
def test_lr_has_an_upper_bound(tmp_path, verb):
    if verb[-1] == "finetune":
        verb = [*verb, str(_polar_model(tmp_path / "pre"))]
    data = _jsonl(tmp_path / "p.jsonl", PREFS)
    result = runner.invoke(
        app, [*verb, "--data", str(data), "--out", str(tmp_path / "o"), "--lr", "1e30"]
    )
    _refused(result, "--lr", "(0, 10]")


def test_polar_finetune_refuses_a_base_with_nan_weights(tmp_path):
    model = _polar_model(tmp_path / "pre", nan=True)
    data = _jsonl(tmp_path / "ft.jsonl", [{**r, "reference": "ref"} for r in PREFS])
    out = tmp_path / "ft"
    result = runner.invoke(
        app, ["polar", "finetune", str(model), "--data", str(data), "--out", str(out)]
    )
    _refused(result, "polar.safetensors", "NaN")
    assert not out.exists()


def test_detect_tune_refuses_a_base_head_with_nan_weights(tmp_path):
    from safetensors.torch import save_file

    from rewardkit.rewards.default_rm import FeatureHead

    base = tmp_path / "head"
    base.mkdir()
    head = FeatureHead(DIM, "mlp", 4)
    with torch.no_grad():
        head.net[2].bias.fill_(math.inf)
    save_file(head.state_dict(), str(base / "head.safetensors"))
    (base / "head.json").write_text(json.dumps({"in_dim": DIM, "head": "mlp", "inner": 4}))
    out = tmp_path / "tuned"
    result = runner.invoke(
        app,
        ["detect", "tune", "--data", str(_detection(tmp_path / "d.jsonl")), "--base", str(base),
         "--out", str(out), "--steps", "2"],
    )  # fmt: skip
    _refused(result, "head.safetensors", "NaN")
    assert not out.exists()


def test_pal_adapt_refuses_a_model_with_nan_weights(tmp_path, fake_features):
    from rewardkit.train.pal import adapt_user

    model = _pal_model(tmp_path / "pal", nan=True)
    with pytest.raises(SpecError, match="NaN"):
        adapt_user(model, "bob", _shots("bob"), steps=3)
    assert "bob" not in json.loads((model / "pal.json").read_text())["users"]


def test_persona_pairs_take_any_finite_beta(tmp_path):
    data = _jsonl(tmp_path / "small.jsonl", PREFS)
    out = tmp_path / "u.jsonl"
    args = ["--users-per-persona", "1", "--pairs-per-user", "4"]
    for beta in ("1000", "1e300"):
        result = runner.invoke(
            app, ["pal", "personas", "--data", str(data), "--out", str(out), "--beta", beta, *args]
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["written"] == 12
    from rewardkit.combine.transform import sigmoid

    assert sigmoid(1e6) == 1.0 and sigmoid(-1e6) == 0.0 and sigmoid(0.0) == 0.5
    assert sigmoid(math.inf) == 1.0 and sigmoid(-math.inf) == 0.0


def test_pal_personas_bounds_the_number_of_pairs(tmp_path, monkeypatch):
    import rewardkit.curate.personas as cp

    def never(*args, **kwargs):  # the refusal must come before any pair is made
        raise AssertionError("persona_pairs was called")

    monkeypatch.setattr(cp, "persona_pairs", never)
    data = str(_jsonl(tmp_path / "small.jsonl", PREFS))
    out = tmp_path / "u.jsonl"
    big = ["--users-per-persona", "100000", "--pairs-per-user", "100000"]
    result = runner.invoke(app, ["pal", "personas", "--data", data, "--out", str(out), *big])
    _refused(result, "--users-per-persona")
    product = ["--users-per-persona", "1000", "--pairs-per-user", "1000"]
    result = runner.invoke(app, ["pal", "personas", "--data", data, "--out", str(out), *product])
    _refused(result, "3,000,000 pairs", "200,000")
    assert not out.exists()
    with pytest.raises(ValueError, match="200,000"):
        cp.check_pair_count(3, 1000, 1000)


def test_polar_pretrain_bounds_the_number_of_triples(tmp_path):
    from rewardkit.train.polar import MAX_TRIPLES, policy_triples

    samples = tmp_path / "s.jsonl"
    row = {"prompt_id": 1, "prompt": "a", "policy": "p", "response": "x"}
    _jsonl(samples, [row])
    result = runner.invoke(
        app,
        ["polar", "pretrain", "--data", str(samples), "--out", str(tmp_path / "m"),
         "--per-sample", "1000000"],
    )  # fmt: skip
    _refused(result, "--per-sample")
    many = [{**row, "prompt_id": str(i // 2), "policy": f"p{i % 2}"} for i in range(1000)]
    with pytest.raises(DataError, match=f"{MAX_TRIPLES:,}"):
        policy_triples(many, per_sample=100)


def test_pal_train_bounds_the_model_size(tmp_path):
    data = str(_jsonl(tmp_path / "p.jsonl", PREFS))
    for opt in ("--d-pref", "--k", "--steps"):
        result = runner.invoke(
            app, ["pal", "train", "--data", data, "--out", str(tmp_path / "m"), opt, "1000000000"]
        )
        _refused(result, opt)


def test_domain_fit_with_l2_zero_and_a_constant_feature(tmp_path):
    data = str(_jsonl(tmp_path / "p.jsonl", PREFS))
    out = tmp_path / "dm"
    result = runner.invoke(
        app,
        ["domain", "fit", "--data", data, "--out", str(out), "--l2", "0",
         "--features", "coverage,length_fit"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Singular" not in result.output and (out / "domain.json").is_file()


def test_polar_pretrain_names_a_missing_data_file(tmp_path):
    missing = tmp_path / "nonexistent"
    result = runner.invoke(
        app, ["polar", "pretrain", "--data", str(missing), "--out", str(tmp_path / "m")]
    )
    _refused(result, str(missing), "no such file")
    assert "unsupported" not in result.output


@pytest.mark.parametrize("verb", ["eval", "tune"])
def test_detect_origin_errors_name_the_file(tmp_path, verb):
    bad = {"id": "x", "prompt": "q", "responses": ["a", "b"], "chosen": [0]}
    data = _jsonl(tmp_path / "bad.jsonl", [{**bad, "meta": {"origin": ["llm"]}}])
    args = ["-r", "rule:length"] if verb == "eval" else ["--out", str(tmp_path / "h")]
    result = runner.invoke(app, ["detect", verb, *args, "--data", str(data)])
    _refused(result, "bad.jsonl", "meta.origin", "'x'")


def test_detect_eval_fpr_one_reports_a_tpr_of_one(tmp_path):
    data = _detection(tmp_path / "d.jsonl")
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    rows[0]["responses"] = ["a", "human text, longer than the shortest LLM one"]
    _jsonl(data, rows)
    result = runner.invoke(
        app,
        ["detect", "eval", "-r", "rule:length", "--data", str(data), "--fpr", "1",
         "--n-boot", "10"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "TPR@100%FPR 1.000" in result.output


def test_detect_eval_exits_1_when_a_reward_scores_nothing(tmp_path):
    out = tmp_path / "rep.json"
    result = runner.invoke(
        app,
        ["detect", "eval", "-r", "rule:math", "--data", str(_detection(tmp_path / "d.jsonl")),
         "--n-boot", "10", "--out", str(out)],
    )  # fmt: skip
    _refused(result, "rule:math", "has a score", code=1)
    assert "Mean of empty slice" not in result.output and "nan" not in result.output
    assert not out.exists()


def test_detect_eval_refuses_a_repeated_reward(tmp_path):
    data = str(_detection(tmp_path / "d.jsonl"))
    result = runner.invoke(
        app, ["detect", "eval", "-r", "rule:length", "-r", "rule:length", "--data", data]
    )
    _refused(result, "rule:length", "more than once")


def test_domain_fit_defaults_to_every_built_in_feature(tmp_path):
    from rewardkit.rewards.domain import FEATURES

    out = tmp_path / "dm"
    data = str(_jsonl(tmp_path / "p.jsonl", PREFS))
    result = runner.invoke(app, ["domain", "fit", "--data", data, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "domain.json").read_text())["features"] == list(FEATURES)
    card = Path(__file__).parents[1] / "docs/methods/A15-domain-knowledge-rm.md"
    assert f"All {len(FEATURES)} built-in features" in card.read_text()


def test_polar_pretrain_takes_lr(tmp_path, monkeypatch):
    import rewardkit.train.polar as tp

    seen = {}

    def fake_train(triples, out, cfg, **kwargs):
        seen["lr"] = cfg.lr
        return {"stages": [], "train_accuracy": 1.0, "final_loss": 0.0}

    monkeypatch.setattr(tp, "train_polar", fake_train)
    rows = [{"prompt_id": q, "prompt": f"q{q}", "policy": p, "response": f"{p} on {q}"}
            for q in range(2) for p in ("a", "b")]  # fmt: skip
    data = str(_jsonl(tmp_path / "s.jsonl", rows))
    result = runner.invoke(
        app, ["polar", "pretrain", "--data", data, "--out", str(tmp_path / "m"), "--lr", "0.02"]
    )
    assert result.exit_code == 0, result.output
    assert seen["lr"] == 0.02


def test_a_nan_model_is_refused_as_a_reward_too(tmp_path, fake_features):
    # scoring with it gave NaN for every query ("does not apply"), silently
    from rewardkit.registry import load_reward

    pal = _pal_model(tmp_path / "pal", nan=True)
    with pytest.raises(SpecError, match=r"pal\.safetensors: weights .* hold NaN or ±inf"):
        load_reward(f"pal:{pal}")
    polar = _polar_model(tmp_path / "pre", nan=True)
    with pytest.raises(SpecError, match=r"polar\.safetensors: weights .* hold NaN or ±inf"):
        load_reward(f"polar:{polar}")
