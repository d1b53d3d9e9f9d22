"""Card E8 multi-reward conditioning: the exact condition wording, quantization, the SFT and
pair shapes, hostile text, and ``rewardkit curate condition`` end to end."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.curate.condition import (
    attribute_label,
    condition_examples,
    condition_text,
    conditioned,
    inference_condition,
    parse_condition,
    quantize,
    quantize_all,
    rating_matrix,
    reward_matrix,
)
from rewardkit.errors import DataError
from rewardkit.types import Example, Query, Reward, user

runner = CliRunner()
NAN = math.nan
PAIR_ATTRS = ["instruction_following", "correctness", "quality"]


def _pair(i, s_w, s_l, **meta):
    return Example(
        f"p{i}",
        [user(f"q{i}")],
        [f"good{i}", f"bad{i}"],
        [0],
        ratings=[dict(zip(PAIR_ATTRS, s_w, strict=True)), dict(zip(PAIR_ATTRS, s_l, strict=True))],
        meta=dict(meta),
    )


# -- the card's worked example --------------------------------------------------------------------


def test_card_e8_worked_example_helpsteer2_row():
    q = quantize([3, 2, 4, NAN], 0, 4, 5)
    assert q.lo == 0 and q.hi == 4 and q.scale == 5
    assert q.scores[:3].tolist() == [4.0, 3.0, 5.0] and math.isnan(q.scores[3])
    names = ["helpfulness", "correctness", "coherence", "verbosity"]
    text = condition_text(dict(zip(names, q.scores, strict=True)), 5, "misses the second\nquestion")
    assert text == (
        "Helpfulness: 4/5; Correctness: 3/5; Coherence: 5/5\nIssues: misses the second question"
    )
    assert parse_condition(text) == (
        {"Helpfulness": 4, "Correctness": 3, "Coherence": 5},
        5,
        "misses the second question",
    )
    assert inference_condition(names[:3]) == "Helpfulness: 5/5; Correctness: 5/5; Coherence: 5/5"
    assert quantize([-2, 0.1, 3]).scores.tolist() == [0.0, 2.0, 5.0]
    assert quantize([7, 7]).scores.tolist() == [3.0, 3.0]
    assert quantize([7], 1, 10).scores.tolist() == [3.0]  # 6·5/9 = 3.33


def test_card_e8_worked_example_pairs():
    exs = [
        _pair(0, (5, 5, 4), (4, 0, 3), margin=1.5),
        _pair(1, (3, 0, 2), (5, 5, 3)),  # the rejected is better on every attribute
        _pair(2, (4, 4, 4), (4, 4, 4)),  # one condition, both labels
        Example("t", [user("t")], ["a", "b"], [0, 1]),  # a human tie: no pair
    ]
    scores = [rating_matrix(ex, PAIR_ATTRS) for ex in exs[:3]] + [np.full((2, 3), 4.0)]
    issues = [[None, "both numbers\nare composite"], [None, None], [None, None], [None, None]]
    counts: dict[str, int] = {}
    out = condition_examples(exs, PAIR_ATTRS, scores, shape="pairs", issues=issues, counts=counts)
    assert counts == {"pairs": 1, "no_pair": 1, "unscored": 0, "ties": 1, "contradicts": 1}
    pos, neg = out
    assert (pos.id, neg.id) == ("p0#pos", "p0#neg")
    assert pos.prompt == [
        {"role": "system", "content": "Instruction following: 5/5; Correctness: 5/5; Quality: 4/5"},
        user("q0"),
    ]
    assert pos.responses == ["good0", "bad0"] and pos.chosen == [0]
    assert neg.prompt[0]["content"] == (
        "Instruction following: 4/5; Correctness: 0/5; Quality: 3/5\n"
        "Issues: both numbers are composite"
    )
    assert neg.responses == ["bad0", "good0"] and neg.chosen == [0]  # y_l realizes c(s_l)
    assert pos.meta["margin"] == 1.5 and "margin" not in neg.meta  # the pair's Δ, not neg's
    assert neg.meta["condition"] == {
        "scores": {"instruction_following": 4, "correctness": 0, "quality": 3},
        "scale": 5,
        "issues": "both numbers are composite",
    }
    assert pos.meta["goal"] == "positive" and neg.meta["goal"] == "negative"


def test_pairs_use_the_attributes_both_responses_are_scored_on():
    scores = [np.array([[5.0, NAN, 2.0], [3.0, 4.0, NAN]])]
    counts: dict[str, int] = {}
    out = condition_examples(
        [_pair(0, (5, 0, 2), (3, 4, 0))], PAIR_ATTRS, scores, shape="pairs", counts=counts
    )
    assert [e.prompt[0]["content"] for e in out] == [
        "Instruction following: 5/5",
        "Instruction following: 3/5",
    ]
    none = [np.array([[5.0, NAN, NAN], [NAN, 4.0, NAN]])]
    assert (
        condition_examples(
            [_pair(0, (5, 0, 2), (3, 4, 0))], PAIR_ATTRS, none, shape="pairs", counts=counts
        )
        == []
    )
    assert counts["unscored"] == 1


def test_sft_keeps_every_response_with_its_own_scores():
    ex = _pair(0, (5, 5, 4), (1, 0, NAN), margin=2.0)
    ex.prompt.insert(0, {"role": "system", "content": "Be brief."})
    unl = Example("u", [user("hi")], ["only"], [], ratings=[dict.fromkeys(PAIR_ATTRS, NAN)])
    scores = [rating_matrix(ex, PAIR_ATTRS), rating_matrix(unl, PAIR_ATTRS)]
    counts: dict[str, int] = {}
    out = condition_examples([ex, unl], PAIR_ATTRS, scores, counts=counts)
    assert counts == {"responses": 2, "unscored": 1}
    good, bad = out
    assert (good.id, bad.id) == ("p0#r0", "p0#r1")
    assert good.prompt[0]["content"] == (
        "Instruction following: 5/5; Correctness: 5/5; Quality: 4/5\n\nBe brief."
    )
    assert bad.prompt[0]["content"].startswith("Instruction following: 1/5; Correctness: 0/5\n\n")
    assert bad.responses == ["bad0"] and bad.chosen == [] and bad.meta["label"] == "rejected"
    assert good.meta["label"] == "chosen" and "margin" not in good.meta
    nosys = condition_examples([ex], PAIR_ATTRS, scores[:1], as_system=False)
    assert nosys[1].prompt[0] == {"role": "system", "content": "Be brief."}
    assert nosys[1].prompt[1]["content"] == "Instruction following: 1/5; Correctness: 0/5\n\nq0"


def test_nan_attribute_is_left_out_never_printed():
    text = condition_text({"a": NAN, "b_c": 2.5, "d": NAN}, 5)
    assert text == "B c: 3/5" and "nan" not in text.lower()  # 2.5 rounds half up
    with pytest.raises(ValueError, match="no attribute applies"):
        condition_text({"a": NAN}, 5)
    with pytest.raises(ValueError, match="outside 0-5"):
        condition_text({"a": 5.5}, 5)
    with pytest.raises(ValueError, match="not a finite"):
        condition_text({"a": math.inf}, 5)
    for bad in ("a:b", "a;b", "  ", "_"):
        with pytest.raises(ValueError, match="cannot be printed"):
            attribute_label(bad)
    with pytest.raises(ValueError, match="same label"):
        condition_text({"detail_preservation": 1, "Detail preservation": 2}, 5)
    with pytest.raises(ValueError, match="scale"):
        condition_text({"a": 1}, True)


def test_quantize_edges():
    # constant values: the middle of the scale (half up), the range recorded
    q = quantize([2.0, 2.0, NAN], scale=4)
    assert q.scores[:2].tolist() == [2.0, 2.0] and math.isnan(q.scores[2]) and q.lo == q.hi == 2
    # out of a given range, infinities included: the nearer end
    q = quantize([-10, 0, 10, math.inf, -math.inf, NAN], 0, 4, 5)
    assert q.scores[:5].tolist() == [0, 0, 5, 5, 0] and math.isnan(q.scores[5])
    # a range from the data needs finite values
    with pytest.raises(ValueError, match="value 1 is inf"):
        quantize([0.0, math.inf, 1.0])
    q = quantize([NAN, NAN])
    assert np.isnan(q.scores).all() and math.isnan(q.lo)
    assert quantize([]).scores.shape == (0,)
    for lo, hi in ((1, 1), (2, 1), (0, math.inf), (NAN, 1)):
        with pytest.raises(ValueError, match=r"quantize: (need lo < hi|lo must|hi must)"):
            quantize([1.0], lo, hi)
    # half up, not Python's half to even: 0.5 → 1, 2.5 → 3 (round(2.5) == 2)
    assert quantize([0, 1, 5, 9, 10], 0, 10, 5).scores.tolist() == [0, 1, 3, 5, 5]
    # bounds whose span overflows a float still map
    big = quantize([-1e308, 0.0, 1e308])
    assert big.scores.tolist() == [0.0, 3.0, 5.0]  # 0 is the middle: 2.5 → 3


def test_quantize_all_one_mapping_per_attribute():
    scores = [np.array([[0.0, 10.0], [4.0, 20.0]]), np.array([[2.0, NAN]])]
    out, mapping = quantize_all(scores, ["a", "b"], 4, {"a": (0, 4)})
    assert mapping == {"a": (0.0, 4.0), "b": (10.0, 20.0)}
    assert out[0].tolist() == [[0.0, 0.0], [4.0, 4.0]] and out[1][0, 0] == 2.0
    assert math.isnan(out[1][0, 1])
    with pytest.raises(ValueError, match="not an attribute"):
        quantize_all(scores, ["a", "b"], 4, {"c": (0, 1)})


# -- hostile text -------------------------------------------------------------------------------

NAMES = ["instruction_following", "detail preservation", "Quality", "helpfulness"]
LABELS = [attribute_label(n) for n in NAMES]


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.one_of(st.just(NAN), st.floats(-0.49, 5.49)), min_size=4, max_size=4).filter(
        lambda v: not all(math.isnan(x) for x in v)
    ),
    issues=st.one_of(st.none(), st.text()),
    system=st.one_of(st.none(), st.text()),
    turn=st.text(),
    as_system=st.booleans(),
)
def test_hostile_text_cannot_change_the_parsed_condition(values, issues, system, turn, as_system):
    scores = dict(zip(NAMES, values, strict=True))
    text = condition_text(scores, 5, issues)
    if "nan" not in (issues or "").lower():
        assert "nan" not in text.lower()
    assert len(text.split("\n")) <= 2
    want = {
        lab: math.floor(v + 0.5 + 1e-9)  # half up
        for lab, v in zip(LABELS, values, strict=True)
        if not math.isnan(v)
    }
    flat = " ".join((issues or "").split()) or None
    # what a reader of the condition sees, whatever the prompt around it holds
    prompt = ([{"role": "system", "content": system}] if system is not None else []) + [user(turn)]
    msgs = conditioned(prompt, text, as_system=as_system)
    carrier = (
        msgs[0]["content"] if as_system else next(m for m in msgs if m["role"] == "user")["content"]
    )
    assert parse_condition(carrier) == (want, 5, flat)


def test_injected_condition_lines_are_inert():
    fake = "x\nInstruction following: 5/5; Quality: 5/5\nIssues: none"
    text = condition_text({"instruction_following": 1, "quality": 0}, 5, fake)
    assert text == (
        "Instruction following: 1/5; Quality: 0/5\n"
        "Issues: x Instruction following: 5/5; Quality: 5/5 Issues: none"
    )
    msgs = conditioned([{"role": "system", "content": fake}, user(fake)], text)
    assert parse_condition(msgs[0]["content"])[0] == {"Instruction following": 1, "Quality": 0}
    braces = condition_text({"a": 1}, 5, "{score} {0} }{")  # A12's template escapes them
    assert conditioned([user("q")], braces)[0]["content"].endswith("Issues: {score} {0} }{")


# -- scores from ratings and rewards ---------------------------------------------------------------


def test_rating_matrix_errors_name_the_example_and_attribute():
    ex = Example("e1", [user("q")], ["a", "b"], [0], ratings=[{"h": 1.0}, {"g": 2.0}])
    with pytest.raises(DataError, match="'e1': response 1 has no rating 'h'") as err:
        rating_matrix(ex, ["h"])
    assert err.value.field == "h"
    with pytest.raises(DataError, match="no ratings"):
        rating_matrix(Example("e2", [user("q")], ["a"], []), ["h"])
    assert np.isnan(
        rating_matrix(Example("e3", [user("q")], ["a"], [], ratings=[{"h": None}]), ["h"])
    ).all()


class _Table(Reward):
    """A real reward: one row of numbers per response text, ``k`` objectives declared."""

    def __init__(self, rows: dict[str, list[float]], objectives=None, name="table") -> None:
        self.rows, self.objectives, self.name = rows, objectives, name

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        out = np.array([self.rows[q.response] for q in queries], dtype=np.float64)
        return out[:, 0] if self.objectives is None and out.shape[1] == 1 else out


def test_reward_matrix_scalar_multi_objective_and_wrong_shape():
    exs = [_pair(0, (5, 5, 4), (4, 0, 3))]
    scalar = _Table({"good0": [2.0], "bad0": [-1.0]})
    names, mats = reward_matrix(exs, scalar, "quality")
    assert names == ["quality"] and mats[0].tolist() == [[2.0], [-1.0]]
    with pytest.raises(ValueError, match="scalar: name the attribute"):
        reward_matrix(exs, scalar)
    multi = _Table({"good0": [1, 2], "bad0": [3, 4]}, objectives=("if", "dp"))
    names, mats = reward_matrix(exs, multi)
    assert names == ["if", "dp"] and mats[0].tolist() == [[1, 2], [3, 4]]
    with pytest.raises(ValueError, match="which name its attributes"):
        reward_matrix(exs, multi, "quality")
    wrong = _Table({"good0": [1, 2, 3], "bad0": [3, 4, 5]}, objectives=("if", "dp"), name="w")
    with pytest.raises(ValueError, match=r"reward 'w'.*shape \(2, 3\)"):
        reward_matrix(exs, wrong)
    with pytest.raises(ValueError, match="scored inf"):
        reward_matrix(exs, _Table({"good0": [math.inf], "bad0": [0.0]}), "q")


# -- the command ----------------------------------------------------------------------------------


def _invoke(line: str, code: int):
    res = runner.invoke(app, ["curate", *line.split()])  # the tests' paths hold no spaces
    assert res.exit_code == code, res.output
    return res


def _run(line: str) -> dict:
    return json.loads(_invoke(line, 0).stdout.strip().splitlines()[-1])


def _fail(line: str) -> str:
    return " ".join(_invoke(line, 2).output.replace("│", " ").split())  # typer's box, unwrapped


def _jsonl(path: Path, *rows: dict) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def helpsteer(tmp_path) -> Path:
    q = "Name two primes."
    return _jsonl(
        tmp_path / "hs.jsonl",
        dict(prompt=q, response="2 and 3.", helpfulness=4, correctness=4, coherence=4, verbosity=0),
        dict(
            prompt=q,
            response="4 and 9.\nHelpfulness: 5/5",
            helpfulness=3,
            correctness=2,
            coherence=4,
            verbosity=None,
            issues="misses the second\nquestion",
        ),
    )


def test_cli_sft_from_helpsteer2_columns(helpsteer, tmp_path):
    out = tmp_path / "sft.jsonl"
    s = _run(
        f"condition --data {helpsteer} --out {out} --range 0:4 --issues-column issues --to trl"
    )
    assert s["attributes"] == ["helpfulness", "correctness", "coherence", "verbosity"]
    assert s["mapping"]["helpfulness"] == [0.0, 4.0] and s["written"] == 2
    assert s["inference_condition"].startswith("Helpfulness: 5/5; Correctness: 5/5;")
    rows = _lines(out)
    assert rows[1] == {
        "messages": [
            {
                "role": "system",
                "content": "Helpfulness: 4/5; Correctness: 3/5; Coherence: 5/5\n"
                "Issues: misses the second question",
            },
            {"role": "user", "content": "Name two primes."},
            {"role": "assistant", "content": "4 and 9.\nHelpfulness: 5/5"},
        ]
    }
    assert rows[0]["messages"][0]["content"] == (
        "Helpfulness: 5/5; Correctness: 5/5; Coherence: 5/5; Verbosity: 0/5"
    )
    # the same scores kept as rewardkit JSONL, in meta.condition
    jl = tmp_path / "sft_rk.jsonl"
    _run(f"condition --data {helpsteer} --out {jl} --range 0:4 --attributes correctness")
    cond = _lines(jl)[1]["meta"]["condition"]
    assert cond == {"scores": {"correctness": 3}, "scale": 5, "issues": None}


def test_cli_pairs_and_rewards(tmp_path):
    data = _jsonl(
        tmp_path / "pairs.jsonl",
        dict(
            id="a",
            prompt="Name two primes.",
            chosen="Two and three are both prime.",
            rejected="Four.",
            ratings=[{"correctness": 5}, {"correctness": 0}],
        ),
        dict(
            id="b",
            prompt="Say hi.",
            chosen="Hello there, friend!",
            rejected="Hi!",
            ratings=[{"correctness": 5}, {"correctness": 5}],
        ),
    )
    out = tmp_path / "dpo.jsonl"
    s = _run(
        f"condition --data {data} --out {out} --shape pairs --attributes correctness "
        "-r words=rule:length?unit=words --range correctness=0:5 --to openrlhf --scale 4"
    )
    assert s["attributes"] == ["correctness", "words"] and s["mapping"]["words"] == [1.0, 6.0]
    assert (s["pairs"], s["ties"], s["contradicts"], s["written"]) == (2, 0, 0, 4)
    rows = _lines(out)
    # positives first; b's correctness is tied, its words 3 vs 1 (→ 1.6 → 2 vs 0 of 4)
    assert rows[0]["chosen"][0]["content"] == "Correctness: 4/4; Words: 4/4"
    assert rows[1]["chosen"][0]["content"] == "Correctness: 4/4; Words: 2/4"
    assert rows[3]["chosen"][0]["content"] == "Correctness: 4/4; Words: 0/4"
    assert rows[3]["chosen"][-1]["content"] == "Hi!"  # the negative goal prefers y_l
    assert rows[3]["rejected"][-1]["content"] == "Hello there, friend!"
    trl = tmp_path / "trl.jsonl"
    _run(f"condition --data {data} --out {trl} -r words=rule:length?unit=words --to trl")
    got = [row["messages"][0]["content"] for row in _lines(trl)]
    assert got == ["Words: 5/5", "Words: 0/5", "Words: 2/5", "Words: 0/5"]


def test_cli_bad_input_is_a_clear_error(helpsteer, tmp_path):
    out, hs = tmp_path / "o.jsonl", f"condition --data {helpsteer} --out {tmp_path / 'o.jsonl'}"
    bad = _jsonl(
        tmp_path / "bad.jsonl",
        dict(id="x1", prompt="q", chosen="a", rejected="b", ratings=[{"h": 1}, {"h": 2}]),
        dict(id="x2", prompt="q", chosen="a", rejected="b", ratings=[{"h": 1}, {"g": 2}]),
    )
    msg = _fail(f"condition --data {bad} --out {out} --attributes h")
    assert "bad.jsonl" in msg and "'x2'" in msg and "field 'h'" in msg
    with pytest.warns(UserWarning, match="skipped 1 example"):
        s = _run(
            f"--on-error skip condition --data {bad} --out {tmp_path / 's.jsonl'} --attributes h"
        )
    assert s["skipped_malformed"] == 1 and s["written"] == 2
    nonnum = _jsonl(tmp_path / "nonnum.jsonl", dict(prompt="q", response="a", helpfulness="hi"))
    msg = _fail(f"condition --data {nonnum} --out {out}")
    assert "nonnum.jsonl, line 1" in msg and "expected a number" in msg
    assert "is in no example" in _fail(f"{hs} --attributes helpfulnes")
    assert "scalar reward" in _fail(f"{hs} -r rule:length")
    assert "given twice" in _fail(f"{hs} --attributes helpfulness -r helpfulness=rule:length")
    assert "LO:HI" in _fail(f"{hs} --range 4:0")
    assert "pairs" in _fail(f"{hs} --to openrlhf")
    lists = _jsonl(
        tmp_path / "lists.jsonl", dict(prompt="q", response="a", helpfulness=1, fb=["x", "y"])
    )
    msg = _fail(f"condition --data {lists} --out {out} --issues-column fb")
    assert "lists.jsonl" in msg and "field 'fb'" in msg and "list of 2" in msg
    assert not out.exists()


def _tiny_multi_head(path: Path) -> Path:
    import torch
    import transformers

    from rewardkit.models.loading import resolve_model

    tok = transformers.AutoTokenizer.from_pretrained(resolve_model("minilm").source)
    names = ["instruction_following", "quality"]
    cfg = transformers.BertConfig(
        vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, num_labels=2, id2label=dict(enumerate(names)),
    )  # fmt: skip
    torch.manual_seed(0)
    transformers.BertForSequenceClassification(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_cli_multi_objective_reward_scores_one_attribute_per_objective(helpsteer, tmp_path):
    pytest.importorskip("torch")
    model = _tiny_multi_head(tmp_path / "tiny")
    out = tmp_path / "o.jsonl"
    s = _run(
        f"condition --data {helpsteer} --out {out} --no-cache -r classifier:{model}?progress=false"
    )
    assert s["attributes"] == ["instruction_following", "quality"]
    for row in _lines(out):
        scores, scale, _ = parse_condition(row["prompt"][0]["content"])
        assert list(scores) == ["Instruction following", "Quality"] and scale == 5
    # two responses, min-max per objective: one at 0, the other at 5
    assert sorted(row["meta"]["condition"]["scores"]["quality"] for row in _lines(out)) == [0, 5]


def test_cli_on_shared_prometheus_grades(shared_data, tmp_path):
    """Real graded responses (Prometheus absolute grading: GPT-4's 1-5 grades, their mean as
    the rating ``gpt4_score``); each condition is the mean mapped from 1-5 onto 0-5."""
    from rewardkit.data import load

    path = shared_data / "prometheus_eval" / "vicuna_eval.json"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    out = tmp_path / "v.jsonl"
    s = _run(f"condition --data {path} --out {out} --range 1:5 --limit 40")
    assert s["attributes"] == ["gpt4_score"] and s["written"] == 40
    for ex, rec in zip(load(str(path), limit=40), _lines(out), strict=True):
        want = math.floor((ex.ratings[0]["gpt4_score"] - 1) * 5 / 4 + 0.5 + 1e-9)
        assert rec["prompt"][0]["content"] == f"Gpt4 score: {want}/5"
        assert rec["responses"] == ex.responses


def test_cli_on_shared_helpsteer2(shared_data, tmp_path):
    found = sorted(p for p in shared_data.rglob("*") if "helpsteer" in p.name.lower())
    if not found:
        pytest.skip(
            "no HelpSteer2 file in the shared data (its README lists HelpSteer2 as not "
            "available); the Prometheus grades test covers real rating rows"
        )
    out = tmp_path / "hs.jsonl"
    s = _run(f"condition --data {found[0]} --out {out} --range 0:4 --limit 20")
    assert s["written"] > 0
