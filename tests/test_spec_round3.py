"""Hostile round 3 on specs and composite configs: one test per closed defect (rule rewards
only, no model loads)."""

from __future__ import annotations

import numpy as np
import pytest

from rewardkit.errors import SpecError
from rewardkit.registry import load_reward, parse_spec
from rewardkit.rewards.composite.hybrid import HybridReward
from rewardkit.types import Query


def _write(path, text):
    path.write_text(text)
    return path


# ---- 1. a typo'd option is refused naming the options the kind takes --------------------------
@pytest.mark.parametrize(
    ("spec", "known"),
    [
        ("rule:length?treshold=3", "known: unit "),
        ("rule:math?tink=require", "known: strict, timeout, fast, max_chars, think "),
        ({"ensemble": ["rule:length"], "agregate": "median"}, "known: aggregate, lam, weights"),
        ({"route": {"a": "rule:length"}, "defualt": "rule:length"}, "known: members, default"),
    ],
)
def test_unknown_option_names_the_known_ones(spec, known):
    with pytest.raises(SpecError, match="unknown option") as err:
        load_reward(spec)
    assert known in str(err.value)
    assert "engine_defaults" not in str(err.value) and "base_dir" not in str(err.value)


# ---- 2. a member that fails to build is named, with the file that holds it --------------------
def test_failing_member_is_named_with_its_file(tmp_path):
    ens = _write(tmp_path / "e.yaml", "ensemble:\n  - rule:length\n  - rule:nosuch\n")
    with pytest.raises(SpecError) as err:
        load_reward(ens)
    assert str(err.value).startswith(f"{ens}: ensemble member 1 'rule:nosuch': unknown rule")
    route = _write(tmp_path / "r.yaml", "route:\n  gsm8k: rule:length\n  hh: rule:lenth\n")
    with pytest.raises(SpecError) as err:
        load_reward(route)
    assert str(err.value).startswith(f"{route}: route 'hh': unknown rule 'lenth'")
    with pytest.raises(SpecError, match=r"^route default: unknown rule 'x'"):
        load_reward({"route": {"a": "rule:length"}, "default": "rule:x"})


def test_nested_file_member_error_names_each_level(tmp_path):
    inner = _write(tmp_path / "inner.yaml", "weighted:\n  rule:length: 1\n  rule:nope: 2\n")
    outer = _write(tmp_path / "outer.yaml", "ensemble:\n  - rule:length\n  - inner.yaml\n")
    with pytest.raises(SpecError) as err:
        load_reward(outer)
    text = str(err.value)
    assert text.startswith(f"{outer}: ensemble member 1: {inner}: ensemble member 1 'rule:nope'")


# ---- 3. only plain numerals are numbers: 007, 1_000, ١٢٣ stay as written -----------------------
def test_numerals_that_python_reads_loosely_stay_text():
    opts = parse_spec("k:a?a=007&b=1_000&c=١٢٣&d=1e400&e=1e4&f=-2.5&g=0&h=.5")[2]
    assert opts == {
        "a": "007", "b": "1_000", "c": "١٢٣", "d": "1e400", "e": 10000.0, "f": -2.5, "g": 0,
        "h": 0.5,
    }  # fmt: skip
    qs = [Query("q", "agent 007"), Query("q", "agent 7")]
    assert load_reward("rule:format?pattern=007&timeout=0").score(qs).tolist() == [1, 0]
    assert load_reward("rule:format?pattern=1_0&timeout=0").score([Query("q", "10")]).tolist() == [
        0
    ]


# ---- 4. route keys: blank ones and a non-text key= are refused ---------------------------------
def test_blank_route_key_is_refused():
    with pytest.raises(SpecError, match=r"route key '' is blank"):
        load_reward({"route": {"": "rule:length", "a": "rule:exact_match"}, "missing": "error"})
    with pytest.raises(SpecError, match=r"route key '  ' is blank"):
        load_reward({"route": {"  ": "rule:length"}})


def test_route_key_option_must_name_a_meta_field():
    with pytest.raises(SpecError, match=r"route key= names a meta field \(text\); got 3"):
        load_reward({"route": {"a": "rule:length"}, "key": 3})


# ---- 5. fingerprints: route's missing=, hybrid's confidence callable ---------------------------
def test_route_missing_is_part_of_the_fingerprint():
    nan = load_reward({"route": {"a": "rule:length"}})
    err = load_reward({"route": {"a": "rule:length"}, "missing": "error"})
    assert nan.fingerprint() != err.fingerprint()
    q = [Query("q", "hi", meta={"data_source": "b"})]
    assert np.isnan(nan.score(q)).all()
    with pytest.raises(SpecError, match="no route for data source"):
        err.score(q)


def test_hybrid_confidence_callables_never_share_a_fingerprint():
    rules, model = {"*": load_reward("rule:exact_match")}, load_reward("rule:length")
    seen: dict[str, float] = {}
    for i in range(50):  # each function freed before the next: CPython reuses its address
        fn = eval(f"lambda q, s: {i / 50}")
        fp = HybridReward(rules, model, confidence=fn).fingerprint()
        assert fp not in seen, f"confidence {i / 50} shares the fingerprint of {seen.get(fp)}"
        seen[fp] = i / 50
        del fn

    def conf(q, s):
        return 0.5

    one, two = (
        HybridReward(rules, model, confidence=conf),
        HybridReward(rules, model, confidence=conf),
    )
    assert one.fingerprint() == two.fingerprint() == one.fingerprint()


# ---- 6. a model path in a spec file is looked up next to the file ------------------------------
def test_relative_model_path_in_a_spec_file_is_next_to_it(tmp_path, monkeypatch):
    (tmp_path / "cfg" / "rm").mkdir(parents=True)
    cfg = _write(tmp_path / "cfg" / "c.yaml", "type: classifier\npath: ./rm\n")
    ens = _write(tmp_path / "cfg" / "e.yaml", "ensemble:\n  - classifier:rm\n")
    monkeypatch.chdir(tmp_path)  # no ./rm here: the working directory is not the file's folder
    for spec in (cfg, ens):
        with pytest.raises(SpecError, match=r"cfg/rm: no config\.json"):
            load_reward(spec)


# ---- 7. a composite's name is text ---------------------------------------------------------------
def test_composite_name_that_yaml_read_as_a_number_is_refused(tmp_path):
    _write(tmp_path / "n.yaml", "ensemble: [rule:length]\nname: 2024\n")
    outer = _write(tmp_path / "outer.yaml", "ensemble: [rule:length, n.yaml]\n")
    with pytest.raises(SpecError, match=r"name 2024 is int, not text \(in a YAML spec file quote"):
        load_reward(outer)
    quoted = _write(tmp_path / "q.yaml", 'ensemble: [rule:length]\nname: "2024"\n')
    assert load_reward(quoted).name == "2024"
