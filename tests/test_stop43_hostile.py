"""Hostile input to the features of stop 43: ``bon --select luce`` (card E7), ``curate
condition`` (E8), ``curate decontaminate`` and the recorded training prompts."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.curate.condition import condition_examples
from rewardkit.curate.decontaminate import build_index, decontaminate, ngrams
from rewardkit.data import load, trained_on
from rewardkit.data.trained_on import TRAINED_PROMPTS_FILE, read_trained_prompts
from rewardkit.errors import DataError
from rewardkit.inference.luce import luce_probs
from rewardkit.types import Example, user

runner = CliRunner()
PNG_A, PNG_B = "data:image/png;base64,AAAA", "data:image/png;base64,BBBB"


def _rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _image_prompt(url: str, text: str | None = None) -> list[dict]:
    parts: list[dict] = [{"type": "image_url", "image_url": {"url": url}}]
    if text is not None:
        parts.append({"type": "text", "text": text})
    return [{"role": "user", "content": parts}]


def system(text: str) -> dict:
    return {"role": "system", "content": text}


def _pair(i: str, prompt, **extra) -> dict:
    return {"id": i, "prompt": prompt, "chosen": "yes", "rejected": "no", **extra}


# -- recorded training prompts ------------------------------------------------------------------


def test_record_whose_header_claims_a_huge_array_is_ignored_not_allocated(tmp_path):
    # 200 bytes whose header claims 10^12 hashes (7 TiB): np.load tried to allocate them
    with (tmp_path / TRAINED_PROMPTS_FILE).open("wb") as fh:
        header = {"descr": "<u8", "fortran_order": False, "shape": (10**12,)}
        npy_format.write_array_header_1_0(fh, header)
        fh.write(b"\0" * 64)
    with pytest.warns(UserWarning, match="not a training-prompt record"):
        assert read_trained_prompts(tmp_path) is None


def test_record_over_the_size_limit_is_ignored(tmp_path, monkeypatch):
    np.save(tmp_path / TRAINED_PROMPTS_FILE, np.arange(5, dtype=np.uint64))
    monkeypatch.setattr(trained_on, "MAX_TRAINED_PROMPTS", 4)
    with pytest.warns(UserWarning, match="5 hashes is more than 4"):
        assert read_trained_prompts(tmp_path) is None
    monkeypatch.setattr(trained_on, "MAX_TRAINED_PROMPTS", 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = read_trained_prompts(tmp_path)
    assert got is not None and got.tolist() == [0, 1, 2, 3, 4] and type(got) is np.ndarray


# -- Luce probabilities of huge rewards ---------------------------------------------------------


def test_luce_rewards_further_apart_than_a_float_holds():
    # 1e308 − (−1e308) overflows: P was (1, 0); the right answer is softmax(1, −1)
    p = luce_probs([1e308, -1e308], 1e308)
    assert p[0] == pytest.approx(1 / (1 + math.exp(-2)), rel=1e-12)
    assert p.sum() == pytest.approx(1.0)
    p = luce_probs([[math.nan, -1e308, 1e308, -math.inf]], 5e307)
    assert p[0, 2] == pytest.approx(1 / (1 + math.exp(-4)), rel=1e-12)
    assert p[0, 0] == 0 and p[0, 3] == 0
    # subnormal gaps keep their exact value (not halved to 0)
    assert luce_probs([5e-324, 0.0], 5e-324)[0] == pytest.approx(1 / (1 + math.exp(-1)))


# -- decontaminate: what is a copy --------------------------------------------------------------


def test_images_and_punctuation_only_prompts_are_no_copy_of_each_other(tmp_path):
    ev = _rows(
        tmp_path / "ev.jsonl",
        [
            _pair("img", _image_prompt(PNG_A)),
            _pair("describe", _image_prompt(PNG_A, "Describe.")),
            _pair("bang", "!!!"),
        ],
    )
    tr = _rows(
        tmp_path / "tr.jsonl",
        [
            _pair("other_img", _image_prompt(PNG_B)),  # another image: no copy
            _pair("other_describe", _image_prompt(PNG_B, "Describe.")),
            _pair("dots", "..."),  # normalizes to nothing, as "!!!" and an image-only turn
            _pair("same_img", _image_prompt(PNG_A)),  # copies
            _pair("same_describe", _image_prompt(PNG_A, "describe")),
            _pair("same_bang", " !!! "),
        ],
    )
    res = decontaminate(load(str(tr)), [build_index("ev", load(str(ev)))])
    assert [ex.id for ex in res.examples] == ["other_img", "other_describe", "dots"]
    assert {r["id"]: r["eval_id"] for r in res.removed} == {
        "same_img": "img",
        "same_describe": "describe",
        "same_bang": "bang",
    }


HEAD = (
    "Read the passage below carefully and answer the question that follows it using only one "
    "word please"
)


def test_ngrams_shared_with_one_row_are_counted_for_it_not_for_the_first_row_holding_them():
    # a benchmark whose rows share a 17-word instruction: its 13-grams were all credited to the
    # first row, so a near copy of the second row shared 10 of its 15 n-grams "with it" and 5
    # "with the first": --min-shared 15 kept the copy
    first = Example(
        "A", [user(f"{HEAD} What colour is the sky on a clear day at noon?")], ["a"], []
    )
    second = Example(
        "B", [user(f"{HEAD} Which animal is the king of the jungle in stories?")], ["a"], []
    )
    copy = Example("copy", [user(second.prompt[0]["content"] + " Thanks")], ["x", "y"], [0])
    index = build_index("bench", [first, second])
    grams_b = len(ngrams(second.prompt[0]["content"], 13))  # every 13-gram of the second row
    assert grams_b == 17 + 10 - 13 + 1
    res = decontaminate([copy], [index], min_shared=grams_b)
    assert res.removed == [
        {
            "index": 0,
            "id": "copy",
            "eval": "bench",
            "eval_id": "B",
            "kind": "ngram",
            "shared": grams_b,
        }
    ]
    assert decontaminate([copy], [index], min_shared=grams_b + 1).removed == []
    # a tie between rows names the first
    tie = build_index("bench", [second, Example("C", second.prompt, ["b"], [])])
    assert decontaminate([copy], [tie]).removed[0]["eval_id"] == "B"


def test_response_ngrams_count_per_evaluation_row():
    answer = " ".join(f"w{i}" for i in range(20))
    evals = [
        Example("A", [user("qa")], [" ".join(answer.split()[:15])], []),  # 3 of its grams
        Example("B", [user("qb")], [answer, answer], []),  # two copies of one answer: one row
    ]
    train = Example("t", [user("other")], [answer, "no"], [0])
    res = decontaminate([train], [build_index("bench", evals)], min_shared=8, responses=True)
    assert res.removed[0]["eval_id"] == "B" and res.removed[0]["shared"] == 20 - 13 + 1


def test_cli_refuses_an_out_inside_an_against_directory(tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    _rows(bench / "ev.jsonl", [_pair("e", "What is the capital of France?")])
    tr = _rows(tmp_path / "tr.jsonl", [_pair("t", "what is the capital of france")])
    for opt, target in (("--out", bench / "out.jsonl"), ("--report", bench / "sub" / "r.json")):
        args = ["curate", "decontaminate", "--data", str(tr), "--against", str(bench)]
        args += ["--out", str(tmp_path / "o.jsonl")] if opt == "--report" else []
        res = runner.invoke(app, [*args, opt, str(target)])
        assert res.exit_code == 2, res.output
        assert f"{opt} " in res.output and "inside the --against directory" in res.output
        assert not target.exists() and not (tmp_path / "o.jsonl").exists()
    assert sorted(p.name for p in bench.iterdir()) == ["ev.jsonl"]


# -- condition ----------------------------------------------------------------------------------


def test_cli_condition_infinite_rating_names_file_and_example(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text(
        json.dumps(_pair("a", "q", ratings=[{"help": 1}, {"help": 2}])) + "\n"
        '{"id": "bad", "prompt": "q", "chosen": "x", "rejected": "y", '
        '"ratings": [{"help": 1}, {"help": -Infinity}]}\n',
        encoding="utf-8",
    )
    out = tmp_path / "o.jsonl"
    res = runner.invoke(app, ["curate", "condition", "--data", str(data), "--out", str(out)])
    assert res.exit_code == 2 and not out.exists()
    text = " ".join(res.output.split())
    assert "d.jsonl" in text and "example 'bad', response 1: 'help' is -inf" in text
    assert "--range help=LO:HI" in text
    # a given range clips it (quantize's rule): the run succeeds, the -inf maps to 0
    res = runner.invoke(
        app,
        ["curate", "condition", "--data", str(data), "--out", str(out), "--range", "help=0:2"],
    )
    assert res.exit_code == 0, res.output
    rows = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert rows["bad#r1"]["meta"]["condition"]["scores"] == {"help": 0}


def test_nosys_on_a_prompt_of_system_turns_names_the_example(tmp_path):
    ex = Example("sysonly", [system("Be brief.")], ["a", "b"], [0])
    with pytest.raises(DataError, match=r"example 'sysonly'.*without --nosys"):
        condition_examples([ex], ["help"], [np.array([[4.0], [1.0]])], as_system=False)
    # as a system message it is conditioned
    (got,) = condition_examples([ex], ["help"], [np.array([[4.0], [1.0]])], shape="pairs")[:1]
    assert got.prompt[0]["content"] == "Help: 4/5\n\nBe brief."
    data = _rows(tmp_path / "d.jsonl", [_pair("s", [system("x")], ratings=[{"h": 1}, {"h": 2}])])
    out = tmp_path / "o.jsonl"
    res = runner.invoke(
        app, ["curate", "condition", "--data", str(data), "--out", str(out), "--nosys"]
    )
    assert res.exit_code == 2 and not out.exists()
    assert "example 's'" in res.output and "--nosys" in res.output
