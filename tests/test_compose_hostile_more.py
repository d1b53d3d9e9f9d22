"""Composite specs, their grammar and the combine formulas under hostile input (second probe):
spec-file cycles, YAML 1.1 scalars and repeated keys, bool weights, float32 overflow, huge
finite rewards, verl keys, options that did nothing. Cheap rule members only."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.combine import (
    BNPONormalizer,
    RunningWhitener,
    aggregate,
    bnpo_advantages,
    disagreement,
    member_stats,
    zscore,
)
from rewardkit.data.jsontext import nesting_depth, parse_json
from rewardkit.data.readers import parse_yaml
from rewardkit.errors import DataError, SpecError
from rewardkit.integrations._common import log_keys
from rewardkit.integrations.verl import compute_score_batch
from rewardkit.registry import load_reward, parse_spec
from rewardkit.results import ScoreResult, float32_scores
from rewardkit.rewards.classifier import objective_names
from rewardkit.types import Query

Q = [Query("p", "4", reference="4"), Query("p", "hello there friend")]


def _write(path, text):
    path.write_text(text)
    return path


# ---- 1. spec files that name each other ------------------------------------------------------
@pytest.mark.parametrize("ext", ["json", "yaml"])
def test_spec_file_cycle_is_named(tmp_path, ext):
    if ext == "json":
        _write(tmp_path / "c1.json", '{"ensemble": ["rule:length", "c2.json"]}')
        _write(tmp_path / "c2.json", '{"weighted": {"c1.json": 1}}')
    else:
        _write(tmp_path / "c1.yaml", "ensemble:\n  - rule:length\n  - c2.yaml\n")
        _write(tmp_path / "c2.yaml", "weighted:\n  c1.yaml: 1\n")
    c1, c2 = tmp_path / f"c1.{ext}", tmp_path / f"c2.{ext}"
    with pytest.raises(SpecError) as err:
        load_reward(c1)
    assert str(err.value) == f"{c1} → {c2} → {c1}: spec files reference each other in a cycle"


def test_spec_file_naming_itself_and_cli_one_line(tmp_path, monkeypatch):
    _write(tmp_path / "self.yaml", "ensemble:\n  - self.yaml\n")
    with pytest.raises(SpecError, match=r"self.yaml → .*self.yaml: spec files .* cycle"):
        load_reward(tmp_path / "self.yaml")
    data = _write(tmp_path / "d.jsonl", '{"prompt": "p", "response": "r"}\n')
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(
        app, ["score", "-r", "self.yaml", "--data", str(data), "--out", "o.jsonl"]
    )
    assert res.exit_code != 0
    assert "self.yaml → self.yaml: spec files reference each other in a cycle" in res.output
    assert "Traceback" not in res.output and "RecursionError" not in res.output


def test_a_file_used_twice_without_a_cycle_is_fine(tmp_path):
    _write(tmp_path / "leaf.yaml", "type: rule\narg: length\n")
    _write(tmp_path / "top.yaml", "ensemble:\n  - leaf.yaml\n  - leaf.yaml\n")
    assert load_reward(tmp_path / "top.yaml").score(Q).tolist() == [1.0, 18.0]


class _StackRanOut:
    """A parser whose caller's stack was already nearly full: it runs out on any document."""

    def decode(self, *args, **kwargs):
        raise RecursionError("maximum recursion depth exceeded")

    load = decode


def test_recursion_from_a_deep_caller_is_not_called_deep_nesting(monkeypatch):
    import yaml

    from rewardkit.data import jsontext

    monkeypatch.setattr(jsontext, "_DECODER", _StackRanOut())
    monkeypatch.setattr(yaml, "load", _StackRanOut().load)
    with pytest.raises(RecursionError):  # a shallow document: not "nested more than 64"
        parse_json('{"a": [1, {"b": "[[[["}]}')
    with pytest.raises(RecursionError):
        parse_yaml("a:\n  - 1\n  - {b: 2}\n")
    with pytest.raises(ValueError, match="invalid JSON: nested more than 64 levels deep"):
        parse_json("[" * 100 + "]" * 100)
    with pytest.raises(ValueError, match="invalid YAML: nested more than 64 levels deep"):
        parse_yaml("[" * 100 + "]" * 100)
    assert nesting_depth('{"a": "[[[[", "b": [[1]], "c": "\\"["}') == 3


# ---- 4 / 8. YAML: YAML 1.1 scalars, repeated keys --------------------------------------------
def test_yaml_spec_files_read_yaml_12_scalars(tmp_path):
    text = "no: 1\non: 2\n017: 3\nw: 1:30\nx: 1e5\ny: 0o17\nb: true\nn: ~\nd: 2024-01-01\n"
    assert parse_yaml(text, core=True) == {
        "no": 1, "on": 2, 17: 3, "w": "1:30", "x": 1e5, "y": 15, "b": True, "n": None,
        "d": "2024-01-01",
    }  # fmt: skip
    # other config files keep YAML 1.1 (a train config's `bf16: yes`)
    assert parse_yaml("a: yes\nb: 017\n") == {"a": True, "b": 15}


@pytest.mark.parametrize(
    "text",
    [
        "weighted:\n  rule:length: 1.0\n  rule:length: 5.0\n",
        "route:\n  gsm8k: rule:gsm8k\n  gsm8k: rule:length\n",
    ],
)
def test_yaml_repeated_key_is_refused_as_in_json(tmp_path, text):
    path = _write(tmp_path / "dup.yaml", text)
    with pytest.raises(DataError, match=r"line 3, column 3: duplicate key '(rule:length|gsm8k)'"):
        load_reward(path)
    with pytest.raises(DataError, match="duplicate key"):
        load_reward(_write(tmp_path / "dup.json", json.dumps({"x": 1})[:-1] + ', "x": 2}'))


def test_yaml_merge_keys_may_still_be_overridden():
    text = "base: &b {unit: words}\nspec:\n  <<: *b\n  unit: chars\n"
    assert parse_yaml(text, core=True)["spec"] == {"unit": "chars"}


def test_route_keys_no_and_017_route_as_written(tmp_path):
    rows = [
        Query("q", "hei på deg", meta={"lang": "no"}),
        Query("q", "héllo", meta={"lang": "017"}),
    ]
    spec = "route:\n  no: rule:length?unit=words\n  '017': rule:length?unit=bytes\nkey: lang\n"
    assert load_reward(_write(tmp_path / "r.yaml", spec)).score(rows).tolist() == [3.0, 6.0]
    bad = "route:\n  en: rule:length\n  017: rule:length?unit=bytes\nkey: lang\n"
    with pytest.raises(SpecError, match=r"route key 17 is int, not text: .*quote them as written"):
        load_reward(_write(tmp_path / "bad.yaml", bad))
    with pytest.raises(SpecError, match="route key False is bool"):
        load_reward({"route": {False: "rule:length"}})


@pytest.mark.parametrize(
    ("weight", "shown"), [("1:30", "'1:30'"), ("on", "'on'"), ("yes", "'yes'")]
)
def test_yaml_weights_that_yaml_11_made_numbers_are_refused(tmp_path, weight, shown):
    path = _write(tmp_path / "w.yaml", f"weighted:\n  rule:length: {weight}\n")
    with pytest.raises(SpecError, match=f"weight must be a number; got {shown}"):
        load_reward(path)


@pytest.mark.parametrize(
    "spec",
    [
        {"weighted": ["rule:length?weight=true"]},
        {"weighted": {"rule:length": True}},
        {"weighted": [["rule:length", False], ["rule:exact_match", 1.0]]},
        {"ensemble": ["rule:length", "rule:exact_match"], "aggregate": "weighted",
         "weights": [True, False]},
    ],
)  # fmt: skip
def test_bool_weights_are_refused(spec):
    with pytest.raises(SpecError, match=r"weight must be a number, not (true|false)"):
        load_reward(spec)


def test_bool_lam_and_stats_are_refused():
    with pytest.raises(SpecError, match="lam must be a number, not true"):
        load_reward({"ensemble": ["rule:length"], "aggregate": "mean_minus_std", "lam": True})
    with pytest.raises(SpecError, match="stats must be a number, not true"):
        load_reward({"ensemble": ["rule:length"], "normalize": "zscore", "stats": [[True, 1]]})


# ---- 2. verl keys ---------------------------------------------------------------------------
def test_verl_member_named_score_does_not_overwrite_the_score():
    spec = {
        "weighted": [
            {"ensemble": ["rule:length"], "name": "score", "weight": 1.0},
            ["rule:exact_match", 100.0],
        ]
    }
    (rec,) = compute_score_batch(["x"], ["4"], ["4"], spec=spec)
    assert rec == {
        "score": 101.0, "applies": 1.0, "failed": 0.0, "score_2": 1.0, "rule:exact_match": 1.0,
    }  # fmt: skip


def test_verl_component_keys_are_one_per_member():
    spec = {"weighted": {"rule:format?pattern=^a+$": 1.0, "rule:format?pattern=^a*$": 2.0}}
    (rec,) = compute_score_batch(["x"], [""], [""], spec=spec)
    assert rec == {
        "score": 2.0, "applies": 1.0, "failed": 0.0,
        "rule:format_pattern_a": 0.0, "rule:format_pattern_a_2": 1.0,
    }  # fmt: skip
    keys = log_keys(["a b", "a_b", "a-b", "a_b_2", "x" * 80], reserved=("a_b",))
    assert list(keys.values())[:4] == ["a_b_2", "a_b_3", "a-b", "a_b_2_2"]
    assert len(set(keys.values())) == 5 and all(len(k) <= 60 for k in keys.values())


# ---- 3. large finite rewards ----------------------------------------------------------------
def test_running_whitener_holds_huge_rewards_at_a_power_of_two_scale():
    # squared deviations of 1e160 pass float64's range: the moments are held scaled by 2^-e
    # (refused with a ValueError before; tests/test_combine_tiny_scale.py checks 1e±300)
    w = RunningWhitener(eps=0.0)
    w([1.0, 2.0, 3.0])
    out = w([1e160, 2e160, 3e160])  # over [1, 2, 3, 1e160, 2e160, 3e160]: mean 1e160
    np.testing.assert_allclose(out, np.array([0.0, 1.0, 2.0]) / math.sqrt(1.6), rtol=1e-12)
    big = RunningWhitener()(np.array([1.0, 2.0, 3.0]) * 1e152)  # past 2^500: summed scaled
    np.testing.assert_allclose(big, [-1.0, 0.0, 1.0], atol=1e-7)
    two = RunningWhitener(eps=0.0)
    got = two([1.0, 2.0, 1e300, -1e300], ["a", "a", "b", "b"])
    np.testing.assert_allclose(got, np.array([-1.0, 1.0, 1.0, -1.0]) / math.sqrt(2), rtol=1e-12)


def test_aggregates_of_huge_finite_scores_are_finite():
    x = np.array([[1e200, 3e200]])
    assert aggregate(x, "mean_minus_std").values.tolist() == [1e200]
    assert aggregate(x, "mean").values.tolist() == [2e200]
    assert aggregate([[1.5e308, 1.5e308]], "mean").values.tolist() == [1.5e308]
    assert disagreement(x).std.tolist() == [1e200]
    assert member_stats(x.T).std.tolist() == [1e200]
    np.testing.assert_allclose(zscore(x.T).ravel(), [-1.0, 1.0])
    with pytest.raises(ValueError, match="past float64's range"):
        aggregate([[1e300, -1e300]], "mean_minus_std", lam=1e10)


@pytest.mark.parametrize("bounds", [{"r_max": math.inf}, {"r_min": -math.inf}, {"r_max": math.nan}])
def test_bnpo_refuses_infinite_bounds(bounds):
    with pytest.raises(ValueError, match="finite reward bounds"):
        bnpo_advantages([1, 1, 0, 0, 1, 0, 0, 0], group_size=4, **bounds)
    with pytest.raises(ValueError, match="finite reward bounds"):
        BNPONormalizer(**bounds)


def test_bnpo_bounds_near_float64_limit():
    r = np.array([1, 1, 0, 0, 1, 0, 0, 0], dtype=float)
    unit = bnpo_advantages(r, group_size=4, r_min=-1.0, r_max=1.0)
    huge = bnpo_advantages(r * 1.7e308, group_size=4, r_min=-1.7e308, r_max=1.7e308)
    np.testing.assert_allclose(huge, unit)


# ---- 5. a score past float32 ----------------------------------------------------------------
def test_weighted_sum_past_float32_is_an_error_naming_the_reward(tmp_path):
    path = _write(
        tmp_path / "big.yaml", "weighted:\n  rule:length: 1.0e+38\n  rule:exact_match: 1\n"
    )
    with pytest.raises(ValueError, match=r"big.yaml'?: score 1.8e\+39 \(row 1\) is past float32"):
        load_reward(path).score(Q)
    with pytest.raises(ValueError, match="past float32's range"):
        ScoreResult(np.array([1.0, 1e39]))
    assert np.isnan(float32_scores(np.array([np.nan]))[0])
    assert float32_scores(np.array([np.inf, 3e38])).tolist() == [math.inf, np.float32(3e38)]


# ---- 6. classifier objectives ----------------------------------------------------------------
def test_objectives_are_a_comma_list_of_unique_names():
    assert objective_names("a, b,c") == ["a", "b", "c"]
    assert objective_names(["a", "b"]) == ["a", "b"]
    for bad, why in [("a,a,b", "given twice"), (["a", ""], "empty"), (3, "expected names")]:
        with pytest.raises(ValueError, match=why):
            objective_names(bad)


# ---- 7. the spec grammar's words -------------------------------------------------------------
def test_grammar_converts_only_the_documented_words():
    opts = parse_spec("k:a?p=yes&q=no&r=null&s=on&t=TRUE&u=false&v=none&w=3&x=2.5")[2]
    assert opts == {
        "p": "yes", "q": "no", "r": "null", "s": "on", "t": True, "u": False, "v": None,
        "w": 3, "x": 2.5,
    }  # fmt: skip


def test_text_options_keep_yes_no_null_and_refuse_bools():
    qs = [Query("q", "yes"), Query("q", "True"), Query("q", "null")]
    assert load_reward("rule:format?pattern=^yes$&timeout=0").score(qs).tolist() == [1, 0, 0]
    assert load_reward("rule:format?pattern=^null$&timeout=0").score(qs).tolist() == [0, 0, 1]
    assert load_reward("rule:format?tags=no").score([Query("q", "<no>x</no>")]).tolist() == [1]
    for spec in ("rule:format?pattern=true", "rule:format?tags=false"):
        with pytest.raises(SpecError, match=r"must be text, got (True|False)"):
            load_reward(spec)


def test_switch_options_still_read_yes_and_no():
    assert load_reward("rule:exact_match?answer_tag=no").options["answer_tag"] is False
    assert load_reward("rule:bleu?smooth=no").options["smooth"] is False
    assert load_reward({"type": "rule", "arg": "bleu", "smooth": "yes"}).options["smooth"]


# ---- 10. a member file whose path holds '?' ---------------------------------------------------
def test_member_file_with_question_mark_in_its_path(tmp_path):
    (tmp_path / "q?dir").mkdir()
    _write(tmp_path / "q?dir" / "inner.yaml", "weighted:\n  rule:length: 2.0\n")
    outer = _write(tmp_path / "outer.yaml", 'ensemble:\n  - "q?dir/inner.yaml"\n')
    assert load_reward(outer).score(Q).tolist() == [2.0, 36.0]
    with pytest.raises(SpecError, match=r"reward spec file 'q\?nope/x.yaml' not found"):
        load_reward({"ensemble": ["q?nope/x.yaml"]})
    # a member's own ?weight= is still split off
    spec = {"weighted": ["rule:length?unit=words&weight=2"]}
    assert load_reward(spec).score(Q).tolist() == [2.0, 6.0]


# ---- 11. disagreement over the contributing members ------------------------------------------
def test_disagreement_leaves_out_zero_weight_members():
    r = load_reward({"weighted": {"rule:length": 1.0, "rule:length?unit=words": 0.0}})
    res = r.score_full([Query("p", "a b c")])
    assert res.scores.tolist() == [5.0]
    assert {k: v.tolist() for k, v in res.components.items()} == {
        "disagreement": [0.0], "spread": [0.0], "contributing": [1.0],
    }  # fmt: skip


def test_a_failed_row_has_no_contributing_members():
    from rewardkit.types import Reward

    class Failing(Reward):
        name = "failing"

        def identity(self):
            return {"class": "Failing"}

        def _score(self, queries):
            s = np.array([1.0, np.nan])
            return ScoreResult(s, stats={"failed": 1, "errors": [{"index": 1, "error": "boom"}]})

    r = load_reward({"ensemble": ["rule:length?unit=words"]})
    from rewardkit.rewards.composite.ensemble import EnsembleReward

    ens = EnsembleReward([Failing(), r.members[0].reward, "rule:length"])
    res = ens.score_full(Q)
    assert np.isnan(res.scores[1]) and res.components["contributing"].tolist() == [3.0, 0.0]
    assert np.isnan(res.components["disagreement"][1]) and np.isnan(res.components["spread"][1])


# ---- 9. BNPO state -------------------------------------------------------------------------
def test_bnpo_state_restores_bounds_and_singleton():
    b = BNPONormalizer(momentum=0.5, singleton="reference", r_min=-1.0, r_max=2.0)
    b(np.array([1, 1, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0.0]), group_size=4)
    state = json.loads(json.dumps(b.state_dict()))
    assert {state["r_min"], state["r_max"], state["singleton"]} == {-1.0, 2.0, "reference"}
    b2 = BNPONormalizer()
    b2.load_state_dict(state)
    r, ids = np.array([1, 1, 0, 0, 0, 1, 1, 0, 0.0]), [0, 1, 1, 1, 1, 2, 2, 2, 2]
    np.testing.assert_array_equal(b(r, ids), b2(r, ids))
    old = {"momentum": 0.5, "m": 0.5, "v": 0.0625, "steps": 1}  # saved before: keeps its own
    b3 = BNPONormalizer(singleton="reference")
    b3.load_state_dict(old)
    assert b3.singleton == "reference" and b3.steps == 1
    with pytest.raises(ValueError, match="singleton must be one of"):
        BNPONormalizer().load_state_dict({**state, "singleton": "sometimes"})


# ---- 12. a typo in a spec file's type --------------------------------------------------------
def test_unknown_type_in_a_spec_file_names_the_file_and_type(tmp_path):
    path = _write(tmp_path / "typo.yaml", "type: rulee\narg: length\n")
    with pytest.raises(SpecError) as err:
        load_reward(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: unknown reward kind 'rulee' (its 'type'); known kinds: ")
    assert "classifier:" not in msg and "is a path" not in msg


# ---- 13. options that did nothing -------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("rule:bleu?method=sacrebleu&tokenize=none", "tokenize does nothing with method=sacrebleu"),
        ("rule:bleu?method=sacrebleu&smooth=false", "smooth does nothing with method=sacrebleu"),
        ("rule:bleu?smooth_method=floor", "smooth_method does nothing with method=bleuberi"),
        ("rule:bleu?max_order=2.5", "max_order must be a whole number, got 2.5"),
        ("rule:overlong?max_len=5.9&cache_len=2", "max_len must be a whole number, got 5.9"),
        ("rule:overlong?max_len=6&cache_len=1.5", "cache_len must be a whole number"),
        ("rule:repetition?n=2.9", "n must be a whole number, got 2.9"),
    ],
)
def test_options_that_would_do_nothing_or_be_cut_are_refused(spec, why):
    with pytest.raises(SpecError, match=why):
        load_reward(spec)


def test_whole_numbers_given_as_floats_still_work():
    assert load_reward("rule:overlong?max_len=6.0&cache_len=2").options["max_len"] == 6
    assert load_reward("rule:repetition?n=2.0").options["n"] == 2
    assert load_reward("rule:bleu?method=sacrebleu&smooth_method=none").options == {
        "method": "sacrebleu", "max_order": 4, "answer_tag": True, "smooth_method": "none",
    }  # fmt: skip


# ---- 14. long specs are not echoed whole ----------------------------------------------------
@pytest.mark.parametrize(
    "spec",
    [
        "rule:length?" + "x" * 200_000,
        "rul:length?a=" + "x" * 200_000,
        "rule:length?unit=" + "x" * 200_000,
        "rule:" + "x" * 200_000,
        "x" * 200_000 + ".yaml",
        {"type": "nope" * 50_000},
        {"ensemble": ["rule:length?unit=" + "x" * 200_000]},
    ],
)
def test_long_specs_are_cut_in_errors(spec):
    with pytest.raises(SpecError) as err:
        load_reward(spec)
    assert len(str(err.value)) < 1_200 and "\n" not in str(err.value)


def test_on_off_options_read_yes_and_no_as_switches(monkeypatch):
    from rewardkit import registry
    from rewardkit.rewards.rules.length import LengthReward

    seen = {}

    def factory(arg, **options):
        seen.update(options)
        return LengthReward()

    monkeypatch.setitem(registry._KINDS, "probe", registry.RewardKind("probe", "x:y", "probe"))
    monkeypatch.setattr(registry, "_import_factory", lambda target: factory)
    load_reward("probe:m?trust_remote_code=no&progress=yes&pattern=no&use_chat_template=none")
    assert seen == {
        "trust_remote_code": False, "progress": True, "pattern": "no", "use_chat_template": None,
    }  # fmt: skip
    load_reward({"type": "probe", "trust_remote_code": "no"})
    assert seen["trust_remote_code"] is False  # a non-empty text was true to Python


def test_a_chain_of_spec_files_past_32_is_refused(tmp_path):
    for i in range(40):
        _write(tmp_path / f"f{i}.yaml", f"ensemble:\n  - f{i + 1}.yaml\n")
    _write(tmp_path / "f40.yaml", "type: rule\narg: length\n")
    with pytest.raises(SpecError, match="spec files nested more than 32 deep"):
        load_reward(tmp_path / "f0.yaml")
    assert load_reward(tmp_path / "f20.yaml").score(Q).tolist() == [1.0, 18.0]


def test_openrlhf_member_named_applies_does_not_overwrite_the_flag():
    pytest.importorskip("torch")
    from rewardkit.integrations.openrlhf import make_reward_func

    spec = {
        "weighted": [
            {"ensemble": ["rule:length"], "name": "applies", "weight": 1.0},
            {"ensemble": ["rule:length"], "name": "rewardkit_failed", "weight": 1.0},
        ]
    }
    out = make_reward_func(spec)(["promptabc"], ["prompt"], None)
    extra = {k: float(v[0]) for k, v in out["extra_logs"].items()}
    assert extra == {
        "applies": 1.0,
        "rewardkit_failed": 0.0,
        "applies_2": 3.0,
        "rewardkit_failed_2": 3.0,
    }
