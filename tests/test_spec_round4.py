"""Hostile round 4 on specs: one test per closed defect (rules, missing folders and the
embedded SmolLM2/MiniLM only)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rewardkit.errors import SpecError
from rewardkit.registry import load_reward
from rewardkit.types import Query

HELLO = [Query("q", "hello world")]  # 11 characters, 2 words


# ---- 1. every kind's misspelt option names the options the kind takes --------------------------
@pytest.mark.parametrize(
    ("spec", "known"),
    [
        (
            "pal:/no/such/pal?usr=7",
            "unknown option 'usr' for 'pal' rewards; known: user and the ",
        ),
        (
            "polar:/no/such/polar?dtpye=bf16",
            "for 'polar' rewards; known: only the engine options",
        ),
        ("default?dtpye=bf16", "for 'default' rewards; known: only the engine options"),
        (
            "domain:/no/such/dom?scale=2",
            "unknown option 'scale' for 'domain' rewards; known: none",
        ),
        (
            "treg:default?goood=x",
            "for 'treg' rewards; known: good, bad, use_chat_template and ",
        ),
        (
            "aligndistil:default?rev=r&bta=1",
            "for 'aligndistil' rewards; known: rev, beta, ",
        ),
        (
            "dpo-tokens:default?bta=1",
            "for 'dpo-tokens' rewards; known: ref, beta, system, ",
        ),
    ],
)
def test_misspelt_option_lists_the_known_ones(spec, known):
    with pytest.raises(SpecError) as err:
        load_reward(spec)
    assert str(err.value).startswith(f"reward spec {spec!r}: unknown option")
    assert known in str(err.value)


def test_several_misspelt_options_are_all_named():
    with pytest.raises(SpecError, match=r"unknown options 'a', 'b' for 'pal' rewards; known: user"):
        load_reward("pal:/no/such/pal?b=1&a=2")


# ---- 2. an override that changes an option is in the name -------------------------------------
def test_override_is_in_the_name(tmp_path):
    chars = load_reward("rule:length?unit=words", unit="chars")
    assert chars.score(HELLO).tolist() == [11.0]
    assert chars.name == "rule:length?unit=chars"
    words = load_reward("rule:length", unit="words")
    assert (words.name, words.score(HELLO).tolist()) == (
        "rule:length?unit=words",
        [2.0],
    )
    assert load_reward("rule:length?unit=words", unit="words").name == "rule:length?unit=words"
    spec = tmp_path / "len.yaml"
    spec.write_text("type: rule\narg: length\nunit: words\n")
    from_file = load_reward(spec, unit="chars")
    assert from_file.name == f"{spec}?unit=chars"
    assert from_file.score(HELLO).tolist() == [11.0]


def test_engine_override_not_written_keeps_the_name():
    reward = load_reward("similarity:minilm", progress=False, cache_dir=None)
    assert reward.name == "similarity:minilm"


# ---- 3. density-ratio and aligndistil refuse spec mistakes as SpecError ------------------------
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("density-ratio:default?reduce=bogus", "reduce must be one of sum, mean"),
        (
            "density-ratio:default?criteria=foo",
            "criteria must be a {domain: system prompt}",
        ),
        (
            "density-ratio:default?criteria=3",
            "criteria must be a {domain: prompt} mapping",
        ),
        ("aligndistil:default", "aligndistil: needs rev=PATH"),
    ],
)
def test_spec_mistakes_are_spec_errors(spec, message):
    with pytest.raises(SpecError) as err:
        load_reward(spec)
    assert message in str(err.value)


def test_same_weak_model_is_a_spec_error():
    with pytest.raises(SpecError, match="strong and weak are the same model with the same"):
        load_reward("density-ratio:default?weak_chat_template=true")


# ---- 4. a spec file that is a symlink loop is named so -----------------------------------------
def test_symlink_loop_is_not_reported_missing(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    os.symlink(b, a)
    os.symlink(a, b)
    for spec in (str(a), a, Path("a.yaml")):
        with pytest.raises(SpecError, match=r"a\.yaml' is a symlink loop"):
            load_reward(spec, base_dir=tmp_path)
    with pytest.raises(SpecError, match=r"^ensemble member 0: .*b\.yaml' is a symlink loop"):
        load_reward({"ensemble": ["b.yaml", "rule:length"]}, base_dir=tmp_path)
    with pytest.raises(SpecError, match=r"missing\.yaml' not found"):
        load_reward(str(tmp_path / "missing.yaml"))


# ---- 5. a file named with '?' and then ?weight= is that file with that weight ------------------
def test_question_mark_file_with_member_options(tmp_path):
    odd = tmp_path / "we?ird.yaml"
    odd.write_text("type: rule\narg: length\n")
    spec = {
        "ensemble": [f"{odd}?weight=2", ["rule:length", 1]],
        "aggregate": "weighted",
    }
    assert load_reward(spec).score(HELLO).tolist() == [33.0]  # 2 × 11 + 1 × 11
    with pytest.raises(SpecError) as err:  # options a file cannot take: explained
        load_reward({"ensemble": [f"{odd}?unit=words&weight=2", "rule:length"]})
    text = str(err.value)
    assert f"{str(odd)!r} is a spec file" in text and "(?unit=words)" in text
    assert "unknown reward kind" not in text


def test_missing_question_mark_file_says_so(tmp_path):
    with pytest.raises(SpecError) as err:
        load_reward(f"{tmp_path}/we?ird.yaml?weight=2")
    assert "unknown reward kind" in str(err.value)
    assert "if it is a spec file whose name holds '?', followed by options: no such file" in str(
        err.value
    )
