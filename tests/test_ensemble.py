"""EnsembleReward and composite specs (docs/methods/C5-reward-ensembles.md, docs/methods/C10-hybrid-rewards.md), on cheap rule members."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
import pytest
from typer.testing import CliRunner

from rewardkit import registry
from rewardkit.cli import app
from rewardkit.errors import SpecError
from rewardkit.registry import load_reward
from rewardkit.rewards.composite.ensemble import EnsembleReward, EnsembleScores
from rewardkit.types import Capability, Query, Reward, user

NAN = math.nan
WORDS = "rule:length?unit=words"
CHARS = "rule:length?unit=chars"

# responses: words / chars / test_nan
#   "one two three" → 3 / 13 / 7
#   "hi"            → 1 /  2 / 7
#   "skip this"     → 2 /  9 / NaN (the test reward does not apply)
QUERIES = [Query([user("q")], r) for r in ("one two three", "hi", "skip this")]
MEMBERS = np.array([[3.0, 13.0, 7.0], [1.0, 2.0, 7.0], [2.0, 9.0, NAN]])


class NanReward(Reward):
    """7 for every response, NaN for responses starting with "skip" (does not apply)."""

    def __init__(self, value: float = 7.0) -> None:
        self.value = float(value)
        self.name = "test_nan"
        self.calls = 0

    def identity(self):
        return {"class": "NanReward", "value": self.value}

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        self.calls += 1
        return np.array([NAN if q.response.startswith("skip") else self.value for q in queries])


class TwoObjectives(Reward):
    """Multi-objective: a = number of words, b = 100 − number of chars."""

    objectives = ("a", "b")

    def identity(self):
        return {"class": "TwoObjectives"}

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        return np.array([[len(q.response.split()), 100 - len(q.response)] for q in queries])


class MetaReward(NanReward):
    uses_meta = True


def build_nan(arg, **options):
    return NanReward(**options)


def build_multi(arg, **options):
    return TwoObjectives(**options)


@pytest.fixture(autouse=True)
def test_kinds(monkeypatch):
    """Register the test rewards as kinds for this test only (rewards list stays clean)."""
    for kind, fn in (("test_nan", "build_nan"), ("test_multi", "build_multi")):
        monkeypatch.setitem(
            registry._KINDS,
            kind,
            registry.RewardKind(kind, f"{__name__}:{fn}", "test reward"),
        )


def _close(got, expected, tol=1e-5):
    got = np.asarray(got, dtype=float)
    expected = np.asarray(expected, dtype=float)
    assert got.shape == expected.shape
    assert np.array_equal(np.isnan(got), np.isnan(expected)), (got, expected)
    ok = ~np.isnan(expected)
    assert np.allclose(got[ok], expected[ok], atol=tol, rtol=0), (got, expected)


# Hand numbers for MEMBERS: means 23/3, 10/3, 11/2; population stds below; ranges 10, 6, 7.
MEAN = [23 / 3, 10 / 3, 5.5]
STD = [
    math.sqrt(((3 - 23 / 3) ** 2 + (13 - 23 / 3) ** 2 + (7 - 23 / 3) ** 2) / 3),  # 4.109609
    math.sqrt(((1 - 10 / 3) ** 2 + (2 - 10 / 3) ** 2 + (7 - 10 / 3) ** 2) / 3),  # 2.624669
    3.5,
]


# ---- EnsembleReward ---------------------------------------------------------------------------
def test_dict_spec_mean_keeps_members_and_disagreement():
    ens = load_reward({"ensemble": [WORDS, CHARS, {"type": "test_nan"}], "aggregate": "mean"})
    assert isinstance(ens, EnsembleReward)
    full = ens.score_full(QUERIES)
    values = full.scores
    assert values.dtype == np.float32
    _close(values, MEAN)
    _close(np.column_stack(list(full.members.values())), MEMBERS)
    assert list(full.members) == [WORDS, CHARS, "test_nan"]
    _close(full.components["disagreement"], STD)
    _close(full.components["spread"], [10.0, 6.0, 7.0])
    assert full.components["contributing"].tolist() == [3, 3, 2]
    assert ens.can(Capability.MEMBERS) and not ens.can(Capability.MODEL_BACKED)
    assert not any(k.startswith("last_") for k in vars(ens))
    assert ens.member_names == (WORDS, CHARS, "test_nan")


def test_mean_minus_std_from_a_dict_spec():
    ens = load_reward(
        {"ensemble": [WORDS, CHARS, {"type": "test_nan"}], "aggregate": "mean_minus_std"}
    )
    # 7.666667 − 4.109609 = 3.557058; 3.333333 − 2.624669 = 0.708664; 5.5 − 3.5 = 2
    _close(ens.score(QUERIES), [3.557058, 0.708664, 2.0])
    ens_half = load_reward(
        {
            "ensemble": [WORDS, CHARS, {"type": "test_nan"}],
            "aggregate": "mean_minus_std",
            "lam": 0.5,
        }
    )
    _close(ens_half.score(QUERIES), [m - 0.5 * s for m, s in zip(MEAN, STD, strict=True)])


def test_type_members_form_is_the_same_ensemble():
    a = load_reward({"ensemble": [WORDS, CHARS], "aggregate": "median"})
    b = load_reward({"type": "ensemble", "members": [WORDS, CHARS], "aggregate": "median"})
    assert a.fingerprint() == b.fingerprint()
    _close(b.score(QUERIES), [8.0, 1.5, 5.5])


def test_score_with_members_returns_everything_behind_the_value():
    ens = EnsembleReward([WORDS, CHARS, NanReward()], "min")
    out = ens.score_with_members(QUERIES)
    assert isinstance(out, EnsembleScores)
    _close(out.value, [3.0, 1.0, 2.0])
    _close(out.members, MEMBERS)
    assert out.member_names == (WORDS, CHARS, "test_nan")
    _close(out.disagreement, STD)
    assert out.n_contributing.tolist() == [3, 3, 2]
    empty = ens.score_with_members([])
    assert empty.value.shape == (0,) and empty.members.shape == (0, 3)


def test_each_member_is_scored_once_per_call():
    member = NanReward()
    ens = EnsembleReward([WORDS, member], "max")
    ens.score(QUERIES)
    assert member.calls == 1


def test_a_query_no_member_applies_to_is_nan():
    ens = EnsembleReward([NanReward(1.0), NanReward(2.0)], "mean_minus_std")
    out = ens.score_with_members(QUERIES)
    _close(out.value, [1.0, 1.0, NAN])  # 1.5 − 0.5
    assert out.n_contributing.tolist() == [2, 2, 0]
    _close(out.disagreement, [0.5, 0.5, NAN])


def test_yaml_file_spec(tmp_path):
    path = tmp_path / "ens.yaml"
    path.write_text(
        "ensemble:\n"
        f"  - {WORDS}\n"
        f"  - {CHARS}\n"
        "  - type: test_nan\n"
        "aggregate: mean_minus_std\n"
        "lam: 0.5\n"
    )
    ens = load_reward(str(path))
    assert ens.name == str(path)
    _close(ens.score(QUERIES), [m - 0.5 * s for m, s in zip(MEAN, STD, strict=True)])


def test_json_file_with_type_form(tmp_path):
    path = tmp_path / "ens.json"
    path.write_text(json.dumps({"type": "ensemble", "members": [WORDS, CHARS], "aggregate": "max"}))
    _close(load_reward(path).score(QUERIES), [13.0, 2.0, 9.0])


def test_nested_ensemble():
    ens = load_reward(
        {
            "ensemble": [
                {"ensemble": [WORDS, CHARS], "aggregate": "max"},  # 13, 2, 9
                {"type": "test_nan"},  # 7, 7, NaN
            ],
            "aggregate": "min",
        }
    )
    out = ens.score_with_members(QUERIES)
    _close(out.value, [7.0, 2.0, 9.0])
    assert out.n_contributing.tolist() == [2, 2, 1]
    assert out.member_names[0] == f"ensemble[max]({WORDS}, {CHARS})"


def test_nested_file_member_is_resolved_next_to_the_file(tmp_path, monkeypatch):
    (tmp_path / "inner.yaml").write_text(f"ensemble: ['{WORDS}', '{CHARS}']\naggregate: mean\n")
    (tmp_path / "outer.yaml").write_text(
        "ensemble: [inner.yaml, {type: test_nan}]\naggregate: max\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    ens = load_reward(str(tmp_path / "outer.yaml"))
    _close(ens.score(QUERIES), [8.0, 7.0, 5.5])


def test_fingerprint_tracks_members_and_lam():
    def fp(members, **opts):
        return load_reward(
            {"ensemble": members, "aggregate": "mean_minus_std", **opts}
        ).fingerprint()

    base = fp([WORDS, CHARS])
    assert base == fp([WORDS, CHARS])  # stable
    assert base == fp([WORDS, CHARS], lam=1)  # lam 1 and 1.0 are the same setting
    assert base != fp([WORDS, "rule:length?unit=bytes"])  # a member changed
    assert base != fp([WORDS, CHARS], lam=0.5)  # lam changed
    assert base != fp([WORDS, CHARS, {"type": "test_nan"}])  # a member added
    assert base != load_reward({"ensemble": [WORDS, CHARS], "aggregate": "mean"}).fingerprint()
    # lam does not apply to mean, so it does not split the cache
    mean = {"ensemble": [WORDS, CHARS], "aggregate": "mean"}
    assert load_reward(mean).fingerprint() == load_reward({**mean, "lam": 3}).fingerprint()
    ident = load_reward({"ensemble": [WORDS, CHARS], "aggregate": "mean_minus_std"}).identity()
    assert ident["members"][0]["fingerprint"] == load_reward(WORDS).fingerprint()
    assert ident["lam"] == 1.0 and ident["aggregate"] == "mean_minus_std"


def test_zscore_members_with_fixed_stats_and_over_the_batch():
    fixed = load_reward(
        {"ensemble": [WORDS, CHARS], "normalize": "zscore", "stats": [[2, 1], [8, 4]]}
    )
    # words (3,1,2)−2 /1; chars (13,2,9)−8 /4 → means of (1, 1.25), (−1, −1.5), (0, 0.25)
    out = fixed.score_with_members(QUERIES)
    _close(out.value, [1.125, -1.25, 0.125])
    _close(out.members, MEMBERS[:, :2])  # the raw scores are kept
    batch = load_reward({"ensemble": [WORDS, CHARS], "normalize": "zscore"})
    sw, sc = math.sqrt(2 / 3), math.sqrt(62 / 3)  # words mean 2; chars mean 8, Σdev² = 62
    expected = [((3 - 2) / sw + 5 / sc) / 2, ((1 - 2) / sw - 6 / sc) / 2, (0 + 1 / sc) / 2]
    _close(batch.score(QUERIES), expected)
    assert batch.fingerprint() != fixed.fingerprint()


def test_multi_objective_member_needs_a_reduction_or_an_objective():
    with pytest.raises(SpecError, match=r"objective=NAME.*reduce it"):
        load_reward({"ensemble": [WORDS, "test_multi"]})
    ens = load_reward(
        {"ensemble": ["test_multi?objective=b", {"type": "test_multi", "objective": "a"}]}
    )
    assert ens.member_names == ("test_multi[b]", "test_multi[a]")
    _close(ens.score_with_members(QUERIES).members, [[87.0, 3.0], [98.0, 1.0], [91.0, 2.0]])
    with pytest.raises(SpecError, match="unknown objective 'c'"):
        load_reward({"ensemble": ["test_multi?objective=c"]})
    with pytest.raises(SpecError, match="scalar reward"):
        load_reward({"ensemble": [f"{WORDS}&objective=a"]})
    picks = {"ensemble": ["test_multi?objective=a"]}
    assert (
        load_reward(picks).fingerprint()
        != load_reward({"ensemble": ["test_multi?objective=b"]}).fingerprint()
    )


def test_uses_meta_if_any_member_does():
    assert not EnsembleReward([WORDS, NanReward()]).uses_meta
    assert EnsembleReward([WORDS, MetaReward()]).uses_meta


def test_compare_is_bradley_terry_on_the_ensemble_value():
    ens = EnsembleReward([WORDS, CHARS], "mean")  # "a b" → (2+3)/2 = 2.5; "a" → 1
    p = ens.compare([user("q")], "a b", "a")
    assert p == pytest.approx(1 / (1 + math.exp(-1.5)), abs=1e-6)


# ---- weighted ---------------------------------------------------------------------------------
def test_weighted_mapping_spec():
    w = load_reward({"weighted": {WORDS: 1.0, CHARS: 0.5}})
    _close(w.score(QUERIES), [3 + 6.5, 1 + 1, 2 + 4.5])
    assert w.name == f"weighted(1*{WORDS} + 0.5*{CHARS})"
    assert w.identity()["weights"] == [1.0, 0.5]


def test_weighted_drops_a_member_that_does_not_apply_and_rescales():
    w = load_reward({"weighted": [[WORDS, 1.0], [{"type": "test_nan"}, 2.0]]})
    out = w.score_with_members(QUERIES)
    # 3 + 14; 1 + 14; "skip this": only words applies → 2 · (3 / 1)
    _close(out.value, [17.0, 15.0, 6.0])
    assert out.n_contributing.tolist() == [2, 2, 1]


def test_weighted_yaml_with_spec_keys(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text(f"weighted:\n  {WORDS}: 2\n  rule:length: 0.5\n")
    _close(load_reward(path).score(QUERIES), [6 + 6.5, 2 + 1, 4 + 4.5])


def test_ensemble_weighted_aggregate_with_member_weights():
    ens = load_reward(
        {
            "ensemble": [
                {"reward": WORDS, "weight": 2},
                f"{CHARS}&weight=0.5",
                {"ensemble": [WORDS, CHARS], "aggregate": "min", "weight": 1},
            ],
            "aggregate": "weighted",
        }
    )
    _close(ens.score(QUERIES), [6 + 6.5 + 3, 2 + 1 + 1, 4 + 4.5 + 2])
    assert ens.member_names[1] == CHARS
    changed = {"ensemble": [{"reward": WORDS, "weight": 3}, f"{CHARS}&weight=0.5"]}
    same = {"ensemble": [{"reward": WORDS, "weight": 2}, f"{CHARS}&weight=0.5"]}
    assert (
        load_reward({**changed, "aggregate": "weighted"}).fingerprint()
        != load_reward({**same, "aggregate": "weighted"}).fingerprint()
    )


# ---- errors -----------------------------------------------------------------------------------
def _nested(depth: int) -> dict:
    spec: dict = {"type": "rule:length"}
    for _ in range(depth):
        spec = {"ensemble": [spec]}
    return spec


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"ensemble": []}, "at least one member"),
        ({"type": "ensemble"}, "needs its members"),
        (
            {"ensemble": [WORDS], "aggregate": "average"},
            "unknown aggregate 'average'.*mean_minus_std",
        ),
        ({"ensemble": WORDS}, "must be a list"),
        ({"ensemble": [WORDS], "lamda": 1}, "lamda"),
        ({"ensemble": [WORDS], "lam": "big"}, "lam must be a number"),
        ({"ensemble": [WORDS], "weights": [1]}, "only to aggregate 'weighted'"),
        ({"ensemble": [WORDS, CHARS], "aggregate": "weighted"}, "needs a weight for every member"),
        (
            {"ensemble": [WORDS], "aggregate": "weighted", "weights": [1, 2]},
            "one number per member",
        ),
        ({"weighted": {WORDS: 0}}, "all zero"),
        ({"weighted": {}}, "at least one member"),
        ({"weighted": {WORDS: 1}, "lam": 0.5}, r"weighted spec takes no \['lam'\]"),
        ({"ensemble": [WORDS], "stats": [[0, 1]]}, "only with normalize='zscore'"),
        ({"ensemble": [WORDS], "normalize": "zscore", "stats": [[0, 0]]}, "positive stds"),
        ({"ensemble": [WORDS], "normalize": "rank"}, "unknown normalize 'rank'"),
        ({"ensemble": [WORDS], "weighted": {WORDS: 1}}, "several composite kinds"),
        ({"ensemble": [{"reward": WORDS, "scale": 2}]}, "unknown keys"),
        ({"ensemble": ["nope:x"]}, "unknown reward kind 'nope'"),
        ({"ensemble": [42]}, "got int"),
        ("ensemble:x", "built from a dict"),
        ({"weighted": WORDS}, "weighted members must be a mapping.*got str"),  # was per letter
        ({"weighted": 5}, "weighted members must be a mapping.*got int"),
        ("rule:math?max_chars=true", "max_chars must be a number, got True"),  # was 1
        (_nested(100), "nested more than 64 levels deep"),  # was a RecursionError at ~250
    ],
)
def test_clear_errors(spec, message):
    with pytest.raises(SpecError, match=message):
        load_reward(spec)


# ---- the command line -------------------------------------------------------------------------
runner = CliRunner()


def test_rewards_list_shows_ensemble_and_weighted_with_their_cards():
    out = runner.invoke(app, ["rewards", "list"]).output
    assert "ensemble" in out and "C5" in out
    assert "weighted" in out and "C10" in out
    assert "aggregate=mean_minus_std" in out
    aggregate_lines = [line for line in out.splitlines() if "aggregate=" in line]
    assert len(aggregate_lines) == 7 and max(map(len, aggregate_lines)) <= 100


def test_score_verb_with_an_ensemble_file(tmp_path):
    spec = tmp_path / "ens.yaml"
    spec.write_text(f"ensemble: ['{WORDS}', '{CHARS}']\naggregate: min\n")
    src = tmp_path / "in.jsonl"
    src.write_text(
        '{"prompt": "p", "response": "one two three"}\n{"prompt": "p", "response": "hi"}\n'
    )
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["score", "-r", str(spec), "--data", str(src), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["reward"] for line in out.read_text().splitlines()] == [3.0, 1.0]
