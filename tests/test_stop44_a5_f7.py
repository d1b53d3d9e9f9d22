"""Hostile input for DMoERM (docs/methods/A5-dmoerm.md) and the confidence reward
(docs/methods/F7-confidence-weighted.md): outputs that would overwrite an expert or another
model, a JSON and weights of two fits, damaged model and router folders, duplicate experts, a
router that routes to no expert's category; F7's offset/text checks and the card's per-reference
distances of q₂. Experts are tiny random Llama classifiers (no training needed to be one)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.train_helpers import categorized_pairs, tiny_llama, toy_pairs  # noqa: E402

from rewardkit.cli import app  # noqa: E402
from rewardkit.data.writer import write_jsonl  # noqa: E402
from rewardkit.errors import DataError, SpecError  # noqa: E402
from rewardkit.registry import load_reward  # noqa: E402
from rewardkit.rewards.composite.confidence import knn_distance  # noqa: E402
from rewardkit.rewards.dmoerm import Router  # noqa: E402
from rewardkit.train.dmoerm import DMoERMConfig, fit_aggregator, read_router_records  # noqa: E402

FAST = DMoERMConfig(steps=3)
WORDS = "rule:length?unit=words"
CHARS = "rule:length?unit=chars"
runner = CliRunner()


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """An expert, a second one, a fitted two-category model and a hand-made router."""
    r = tmp_path_factory.mktemp("a5f7")
    tiny_llama(r / "e1")
    tiny_llama(r / "e2", seed=1)
    exs = categorized_pairs(8)
    write_jsonl(exs, r / "pairs.jsonl")
    fit_aggregator(exs, {"chat": [r / "e1", r / "e2"], "qa": [r / "e1"]}, r / "model", FAST)
    router = r / "router"
    router.mkdir()
    meta = {"categories": ["chat", "math"], "encoder": "minilm", "dim": 384, "max_length": 256}
    (router / "router.json").write_text(json.dumps(meta))
    from safetensors.torch import save_file

    save_file(torch.nn.Linear(384, 2).state_dict(), str(router / "router.safetensors"))
    return r


def files(d: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(d.iterdir()) if f.is_file()}


def test_out_never_overwrites_an_expert_or_another_model(root, tmp_path):
    expert = tmp_path / "expert"
    shutil.copytree(root / "e1", expert)
    before = files(expert)
    with pytest.raises(SpecError, match="is an input of this run"):
        fit_aggregator(toy_pairs(4), {"a": [expert]}, expert, FAST)
    with pytest.raises(SpecError, match=r"holds another model \(config\.json"):
        fit_aggregator(toy_pairs(4), {"a": [root / "e1"]}, expert, FAST)
    with pytest.raises(SpecError, match=r"holds another model \(router\.safetensors"):
        fit_aggregator(toy_pairs(4), {"a": [root / "e1"]}, root / "router", FAST)
    assert files(expert) == before  # nothing written: its weights hash (identity) is intact
    # the CLI: one line, exit 2, for fit and for route into a model directory
    fit = ["dmoerm", "fit", "--data", str(root / "pairs.jsonl"), "--no-progress"]
    r = runner.invoke(app, [*fit, "--out", str(expert), "--expert", f"chat={expert}"])
    assert r.exit_code == 2 and "is an input of this run" in r.output, r.output
    recs = tmp_path / "r.jsonl"
    recs.write_text(
        "".join(json.dumps({"prompt": f"p{i}", "category": "ab"[i % 2]}) + "\n" for i in range(4))
    )
    r = runner.invoke(app, ["dmoerm", "route", "--data", str(recs), "--out", str(root / "model")])
    assert r.exit_code == 2 and "holds another model (dmoerm.safetensors)" in r.output, r.output
    assert "Traceback" not in r.output
    # an earlier fit's own directory is refitted in place
    out = tmp_path / "again"
    for _ in range(2):
        fit_aggregator(toy_pairs(4), {"a": [root / "e1"]}, out, FAST)
    assert sorted(files(out)) == ["dmoerm.json", "dmoerm.safetensors", "loss_history.json"]


def test_fit_refuses_duplicates_blank_keys_and_no_examples(root, tmp_path):
    with pytest.raises(SpecError, match="is given twice"):
        fit_aggregator(toy_pairs(4), {"a": [root / "e1", str(root / "e1") + "/"]}, tmp_path / "m")
    with pytest.raises(SpecError, match="must be a name"):
        fit_aggregator(toy_pairs(4), {"a": [root / "e1"]}, tmp_path / "m", FAST, key=" ")
    with pytest.raises(DataError, match="no preference example"):
        fit_aggregator([], {"a": [root / "e1"]}, tmp_path / "m", FAST)
    assert not (tmp_path / "m").exists()  # refused before any directory was made


def edited(root: Path, tmp_path: Path, change) -> str:
    d = tmp_path / "damaged"
    shutil.copytree(root / "model", d)
    meta = json.loads((d / "dmoerm.json").read_text())
    change(meta, d)
    (d / "dmoerm.json").write_text(json.dumps(meta))
    return f"dmoerm:{d}"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m, d: m["categories"]["qa"].update(index=m["categories"]["chat"]["index"]), "share a weights index"),
        (lambda m, d: m["categories"]["chat"].update(index=True), "must hold in_dim, inner, index"),
        (lambda m, d: m["categories"]["chat"].update(inner=True), "must hold in_dim, inner, index"),
        (lambda m, d: m.update(router="x"), r"'router' must be null or \{path, identity\}"),
        (lambda m, d: m.update(weights_sha256="0" * 32), "is not the one dmoerm.json was written with"),
        (lambda m, d: (d / "dmoerm.safetensors").unlink(), r"\(dmoerm\.safetensors missing\)"),
    ],
)  # fmt: skip
def test_damaged_model_folders_are_refused_naming_them(root, tmp_path, change, message):
    with pytest.raises(SpecError, match=message):
        load_reward(edited(root, tmp_path, change))


def test_weights_of_another_fit_are_refused(root, tmp_path):
    """An interrupted refit (new weights, old JSON) must not serve swapped heads silently: two
    fits of the same categories and shapes, listed in the other order (each head at the other
    index), load each other's weights without complaint unless the JSON names its weights."""
    a, b = tmp_path / "a", tmp_path / "b"
    fit_aggregator(categorized_pairs(4), {"chat": [root / "e1"], "qa": [root / "e1"]}, a, FAST)
    fit_aggregator(categorized_pairs(4), {"qa": [root / "e1"], "chat": [root / "e1"]}, b, FAST)
    q = categorized_pairs(2)[0].queries()[0]
    q.meta["category"] = "qa"
    own = load_reward(f"dmoerm:{a}").score([q])[0]
    shutil.copy(b / "dmoerm.safetensors", a / "dmoerm.safetensors")
    with pytest.raises(SpecError, match="interrupted or mixed fit"):
        load_reward(f"dmoerm:{a}")
    meta = json.loads((a / "dmoerm.json").read_text())
    del meta["weights_sha256"]  # a JSON of before the digest: the swap would go unseen
    (a / "dmoerm.json").write_text(json.dumps(meta))
    swapped = load_reward(f"dmoerm:{a}").score([q])[0]
    assert np.isfinite(swapped) and swapped != pytest.approx(own, abs=1e-6)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"encoder": 5}, "'encoder' must name a sentence encoder"),
        ({"categories": ["a", "a", "b"]}, "two or more distinct names"),
        ({"categories": [" ", "a"]}, "two or more distinct names"),
    ],
)
def test_damaged_router_json_is_refused(root, tmp_path, change, message):
    d = tmp_path / "router"
    shutil.copytree(root / "router", d)
    meta = {**json.loads((d / "router.json").read_text()), **change}
    (d / "router.json").write_text(json.dumps(meta))
    with pytest.raises(SpecError, match=message):
        Router(d)


def test_router_keeps_its_length_and_must_share_a_category(root, tmp_path):
    from rewardkit.engine.config import EngineConfig

    router = Router(root / "router", EngineConfig(max_length=16, progress=False))
    assert router.encoder.max_length == 256  # the length it was trained at, not the experts'
    with pytest.raises(SpecError, match="none of which has experts"):
        fit_aggregator(
            toy_pairs(4), {"x": [root / "e1"], "y": [root / "e1"]}, tmp_path / "m", FAST,
            router=root / "router",
        )  # fmt: skip
    with pytest.raises(DataError, match="a directory; give one data file"):
        read_router_records(tmp_path)


# ---- F7 -----------------------------------------------------------------------------------------
def test_card_distances_of_q2_one_reference_at_a_time():
    q2 = np.array([-1.0, -1.0])
    refs = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]]
    got = [knn_distance(q2, np.array([r]), 1) for r in refs]
    np.testing.assert_allclose(got, [1.707107, 1.707107, 2.0, 0.292893], atol=5e-7)


def test_confidence_offset_auto_and_text_are_checked():
    ens = {"confidence": {"ensemble": [WORDS, CHARS]}, "source": "ensemble"}
    with pytest.raises(SpecError, match="offset 'auto' is for source knn"):
        load_reward({**ens, "offset": "auto"})
    assert load_reward({**ens, "offset": 0.25}).offset == 0.25
    with pytest.raises(SpecError, match="unknown text ''"):
        load_reward({"confidence": WORDS, "reference": np.ones((2, 384)), "text": ""})


def test_eval_routes_by_the_pair_files_category_column(root, tmp_path):
    """`eval` passes a record's extra fields to the reward, as `score` does: on the fit's own
    pair file (a `category` column, no router, no default) every pair is scored, none NaN."""
    out = tmp_path / "ev"
    spec, data = f"dmoerm:{root / 'model'}", str(root / "pairs.jsonl")
    args = ["eval", "-r", spec, "--data", data, "--out", str(out), "--no-cache", "--no-progress"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    scores = [s for ex in report["rewards"][0]["examples"] for s in ex["scores"]]
    assert len(scores) == 16 and all(isinstance(s, float) for s in scores)


def test_hold_out_keeps_a_prompts_pairs_on_one_side():
    """`--eval-fraction` holds out whole prompts: the 2 pairs of each 3-response example (and a
    prompt asked twice) never straddle the split, so eval accuracy is on unseen prompts."""
    from rewardkit.train.dmoerm import example_pairs, split_pairs
    from rewardkit.types import Example

    def ex(i: int, prompt: str) -> Example:
        user = [{"role": "user", "content": prompt}]
        return Example(f"e{i}", user, ["good", "bad", "worse"], [0])

    exs = [ex(i, f"Question number {i % 7}?") for i in range(12)]  # 7 prompts, 5 asked twice
    _, ch, rj, groups = example_pairs(exs)
    assert len(ch) == len(rj) == len(groups) == 24
    train, held = split_pairs(groups, 0.25, seed=3)
    assert sorted([*train, *held]) == list(range(24)) and 0 < len(held) < 24
    assert not {groups[i] for i in train} & {groups[i] for i in held}
    assert len(split_pairs(groups, 0.0, 0)[1]) == 0
    assert len(split_pairs(["one"] * 4, 0.5, 0)[1]) == 0  # one prompt: nothing to hold out
