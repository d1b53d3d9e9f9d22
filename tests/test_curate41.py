"""Curation probed at stop 41: per-pair numbers on the right rows, goal-conditioned pairs, Crome
irrelevant ties, superscripts in dedup, image data in ``lengths``, ``crome``, ``relabel --nosys``
and the noise review (real files, rule rewards, the CLI through typer's runner)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.curate.crome import GeneratorRewriter, RuleRewriter, crome_augment, prompt_key
from rewardkit.curate.dedup import dedup, length_balance, normalize_text, rebalance
from rewardkit.curate.noise import detect_noise, review_text
from rewardkit.curate.relabel import reward_augment
from rewardkit.curate.writers import write_openrlhf, write_trl_dpo
from rewardkit.data import load, write_jsonl
from rewardkit.types import Example, user

runner = CliRunner()


def _curate(*args: object) -> dict:
    res = runner.invoke(app, ["curate", *map(str, args)])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout.strip().splitlines()[-1])


def _rows(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def pngs(tmp_path):
    for name, colour in (("red", (255, 0, 0)), ("blue", (0, 0, 255))):
        Image.new("RGB", (8, 8), colour).save(tmp_path / f"{name}.png")
    return tmp_path


def _write_lines(path, records) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


# --- E1's Δ is the labelled pair's: only its row carries it -----------------------------------


def test_margin_only_on_the_labelled_pair_row(tmp_path):
    bon = Example(
        "n1",
        [user("Write a short greeting.")],
        ["Hello there, nice to meet you!", "hi", "Greetings, friend, how are you today?"],
        [0],
        meta={"margin": 28.0, "strength": 28.0, "strength_std": 0.0},
    )
    write_openrlhf([bon], tmp_path / "o.jsonl")
    got = [(r["rejected"][-1]["content"], r["margin"]) for r in _rows(tmp_path / "o.jsonl")]
    # the chosen is shorter than the third response: 28 (its Δ over "hi") would be wrong there
    assert got == [("hi", 28.0), ("Greetings, friend, how are you today?", None)]
    write_trl_dpo([bon], tmp_path / "t.jsonl", extra=["margin", "strength", "id"])
    trl = _rows(tmp_path / "t.jsonl")
    assert [(r["margin"], r["strength"], r["id"]) for r in trl] == [
        (28.0, 28.0, "n1"),
        (None, None, "n1"),
    ]


def test_cli_counts_the_null_margin_rows(tmp_path):
    data = tmp_path / "bon.jsonl"
    _write_lines(
        data,
        [
            {
                "id": "n1",
                "prompt": [{"role": "user", "content": "Greet."}],
                "responses": ["Hello there!", "hi", "Hey.", "Greetings, friend!"],
                "chosen": [0],
            }
        ],
    )
    out = tmp_path / "s.jsonl"
    with pytest.warns(UserWarning, match="2 row"):
        s = _curate(
            "strength", "--data", data, "--out", out, "-r", "rule:length", "--to", "openrlhf"
        )
    assert s["written"] == 3 and s["null_margin_rows"] == 2
    assert [r["margin"] for r in _rows(out)] == [10.0, None, None]  # len 12 − len 2
    e = _curate("export", "--data", data, "--out", tmp_path / "e.jsonl", "--to", "openrlhf")
    assert "null_margin_rows" not in e  # no margin in the input: nothing to null


# --- A12: the negative goal's pair prefers y_l; E1's Δ of y_w over y_l is not its margin --------


def test_relabel_negative_pair_has_no_margin_of_the_other_side():
    ex = Example(
        "r1",
        [user("Explain gravity.")],
        ["Masses attract each other.", "idk"],
        [0],
        ratings=[{"overall": 8.5}, {"overall": 4}],
        meta={"margin": 0.8, "strength": 0.8, "strength_std": 0.1, "label_confidence": 0.9},
    )
    pos, neg = reward_augment([ex])
    assert pos.responses[0] == "Masses attract each other." and pos.meta["margin"] == 0.8
    assert neg.responses == ["idk", "Masses attract each other."] and neg.chosen == [0]
    assert not {"margin", "strength", "strength_std"} & set(neg.meta)
    assert neg.meta["label_confidence"] == 0.9 and neg.meta["goal"] == "negative"


def test_relabel_nosys_on_an_image_prompt(pngs):
    data = pngs / "vqa.jsonl"
    _write_lines(
        data,
        [
            {
                "id": "v1",
                "prompt": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image", "image": "red.png"},
                            {"type": "text", "text": "What color is this?"},
                        ],
                    }
                ],
                "responses": ["Red.", "Blue."],
                "chosen": [0],
                "ratings": [{"overall": 9}, {"overall": 2}],
            }
        ],
    )
    out = pngs / "rl.jsonl"
    s = _curate("relabel", "--data", data, "--out", out, "--nosys")
    assert s["written"] == 2
    back = load(out)
    parts = back[0].prompt[0]["content"]
    assert parts[0]["text"].endswith("Overall score: 9.\n\n")
    assert parts[1]["image"].digest() == load(data)[0].prompt[0]["content"][0]["image"].digest()
    assert parts[2]["text"] == "What color is this?"
    assert back[1].prompt[0]["content"][0]["text"].endswith("Overall score: 2.\n\n")


# --- A8: an irrelevant tie is off-topic for both of its responses --------------------------------


def _qa(i: str, q: str, good: str, bad: str) -> Example:
    return Example(i, [user(q)], [good, bad], [0])


QA = [
    _qa("a", "What is the capital of France?", "The capital is Paris.", "It is Lyon."),
    _qa("b", "How many legs does a spider have?", "A spider has 8 legs.", "It has 6 legs."),
    _qa("c", "What colour is the sky?", "The sky is blue.", "The sky is green."),
]


def test_crome_irrelevant_tie_never_on_a_prompt_its_responses_answer():
    answers = {prompt_key(ex.prompt): set(ex.responses) for ex in QA}
    for seed in range(6):
        aug = crome_augment(
            QA, RuleRewriter.from_examples(QA, seed), ["ignored_instruction"], [], seed=seed
        )
        ties = [ex for ex in aug if ex.meta["attribute"] == "irrelevant"]
        assert len(ties) == 3
        for tie in ties:
            assert not answers[prompt_key(tie.prompt)] & set(tie.responses), (seed, tie)
    with pytest.warns(UserWarning, match="2 causal pair"):  # two prompts: no third one
        aug = crome_augment(QA[:2], RuleRewriter.from_examples(QA[:2]), ["ignored_instruction"], [])
    assert [ex.meta["attribute"] for ex in aug] == ["ignored_instruction"] * 2


def test_crome_image_responses_are_warned_about(pngs):
    data = pngs / "t2i.jsonl"
    _write_lines(
        data,
        [
            {
                "prompt": "Draw a red square.",
                "image_a": "red.png",
                "image_b": "blue.png",
                "label": 0,
            },
            {
                "prompt": "Draw a blue square.",
                "image_a": "blue.png",
                "image_b": "red.png",
                "label": 0,
            },
        ],
    )
    with pytest.warns(UserWarning, match="2 of 2 examples have an image"):
        assert crome_augment(load(data), RuleRewriter()) == []


def test_generator_rewriter_reads_an_image_prompt_as_text(pngs):
    class Recorder:
        def __init__(self) -> None:
            self.asked: list[str] = []

        def sample(self, prompt, n):
            self.asked.append(prompt[0]["content"])
            return ["A rewritten answer."]

    prompt = [
        {"role": "user", "content": [{"type": "image", "image": str(pngs / "red.png")}]},
    ]
    data = pngs / "p.jsonl"
    _write_lines(data, [{"prompt": prompt, "responses": ["Red.", "Blue."], "chosen": [0]}])
    gen = Recorder()
    assert GeneratorRewriter(gen)("tone", load(data)[0].prompt, "Red.") == "A rewritten answer."
    assert "Question: <image>" in gen.asked[0] and "ImageRef" not in gen.asked[0]


# --- dedup: a superscript is a power, not a digit -----------------------------------------------


def test_superscripts_are_powers_in_normalized_dedup():
    assert normalize_text("x² + 1") == normalize_text("x^2 + 1") != normalize_text("x2 + 1")
    assert normalize_text("2³") != normalize_text("23")
    assert normalize_text("10⁻¹²") == normalize_text("10^-12")
    assert normalize_text("H₂O") == normalize_text("H2O")  # subscripts: NFKC's digits
    assert normalize_text("−5") == normalize_text("-5") != normalize_text("5")
    assert normalize_text("القـــاهرة") == normalize_text("القاهرة")  # tatweel
    exs = [
        Example("s1", [user("Expand (x+1)^2.")], ["x² + 2x + 1", "x2 + 2x + 1"], [0]),
        Example("s2", [user("What is 2³?")], ["8", "6"], [0]),
        Example("s3", [user("What is 23?")], ["8", "6"], [0]),
        Example("s4", [user("One million?")], ["10⁶", "106"], [0]),
        Example("s5", [user("What is 2^3?")], ["8", "6"], [0]),
    ]
    res = dedup(exs)
    assert [ex.id for ex in res.examples] == ["s1", "s2", "s3", "s4"]
    assert res.removed == [{"index": 4, "id": "s5", "reason": "duplicate", "of": "s2"}]


# --- lengths: an image has no length in characters ----------------------------------------------


def test_lengths_leave_image_responses_out(pngs):
    data = pngs / "t2i.jsonl"
    _write_lines(
        data,
        [
            {"prompt": "Draw red.", "image_a": "red.png", "image_b": "blue.png", "label": 0},
            {"prompt": "Draw blue.", "image_a": "blue.png", "image_b": "red.png", "label": 1},
        ],
    )
    exs = load(data)
    assert length_balance(exs) == {}  # before: n_pairs 2, accuracy 0.5 from len(parts)
    assert rebalance(exs) == exs
    text = Example("t", [user("q")], ["longer answer", "short"], [0])
    assert length_balance([*exs, text])["(none)"]["n_pairs"] == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = _curate("lengths", "--data", data)
    assert s["groups"] == {} and s["image_responses"] == 2


# --- noise review of image responses -----------------------------------------------------------


def test_noise_review_of_image_responses(pngs):
    data = pngs / "t2i.jsonl"
    _write_lines(
        data,
        [{"prompt": "Draw red.", "image_a": "red.png", "image_b": "blue.png", "label": 0}],
    )
    exs = load(data)
    res = detect_noise(exs, np.array([[-1.0]]))
    row = json.loads(review_text(res, exs, "r.jsonl"))
    assert row["chosen"][0]["image"]["path"] == str(pngs / "red.png")
    table = review_text(res, exs, "r.md")
    assert f"<image: {pngs / 'red.png'}>" in table and "ImageRef" not in table


def test_written_examples_round_trip(tmp_path):
    exs = [
        Example("t1", [user("Pick.")], ["A", "B"], [0, 1], subset="ties", source="s1"),
        Example("u1", [user("?")], ["x", "y", "z"], [], meta={"note": [1, 2]}),
        Example("r1", [user("Rank")], ["a", "b", "c", "d"], [0, 2], subset="rb2"),
        Example(
            "m1",
            [
                {"role": "system", "content": "Be kind."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "How are you?"},
            ],
            ["Fine.", "Go away."],
            [0],
            language="en",
            reference="Fine",
        ),
    ]
    data = tmp_path / "in.jsonl"
    write_jsonl(exs, data)
    for verb in ("dedup", "export"):
        out = tmp_path / f"{verb}.jsonl"
        extra = ["--to", "jsonl"] if verb == "export" else []
        s = _curate(verb, "--data", data, "--out", out, *extra)
        back = load(out)
        assert s["written"] == len(back) == 4
        for a, b in zip(load(data), back, strict=True):
            assert (a.id, a.prompt, a.responses, a.chosen, a.subset, a.source, a.meta) == (
                b.id,
                b.prompt,
                b.responses,
                b.chosen,
                b.subset,
                b.source,
                b.meta,
            )
            assert (a.language, a.reference) == (b.language, b.reference)
