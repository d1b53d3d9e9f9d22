"""Held-out curation and multimodal inputs (docs/curation.md, docs/multimodal.md, card D6):
dedup accounts for every input row, a vote file refuses ids it cannot key, and the published
VL-RewardBench / Multimodal RewardBench layouts (bare base64 images, Hugging Face image objects,
``Output1``/``Output2``/``Better``) are read with the right labels, hostile ranks refused."""

from __future__ import annotations

import base64
import io
import json

import pytest
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.curate.dedup import dedup
from rewardkit.curate.strength import votes
from rewardkit.data import load
from rewardkit.errors import DataError
from rewardkit.types import Example, user

runner = CliRunner()


def _ex(id, prompt, responses, chosen):
    return Example(id, [user(prompt)], responses, chosen)


def _rows():
    return [
        _ex("a1", "What is 2+2?", ["4", "5 is the answer"], [0]),
        _ex("a2", "What is 2+2?", ["4", "5 is the answer"], [0]),  # duplicate of a1
        _ex("a3", "What is 2+2?", ["5 is the answer", "4"], [0]),  # conflicts with a1
        _ex("b1", "Say hi", ["Hi!", "hi"], [0]),  # degenerate
        _ex("c1", "Name a color", ["Red", "A long answer: blue"], [0]),
        _ex("c2", "name a color.", ["red", "a long answer blue"], [0]),  # normalized duplicate
        _ex("d1", "Q", ["x", "yy"], [0]),
        _ex("d2", "Q", ["yy", "x"], [0]),  # 1 vs 1 conflict
    ]


@pytest.mark.parametrize("policy", ["majority", "drop", "keep_first"])
def test_dedup_lists_every_dropped_row_with_a_reason(policy):
    rows = _rows()
    res = dedup(rows, on_conflict=policy)
    kept = {e.id for e in res.examples}
    removed = {r["id"]: r for r in res.removed}
    assert kept.isdisjoint(removed) and kept | set(removed) == {e.id for e in rows}
    assert len(res.examples) + len(res.removed) == len(rows)
    assert [r["index"] for r in res.removed] == sorted(r["index"] for r in res.removed)
    assert removed["b1"]["reason"] == "degenerate"
    assert removed["c2"] == {"index": 5, "id": "c2", "reason": "duplicate", "of": "c1"}
    if policy == "keep_first":  # a2 has a1's label: a duplicate, not a conflict
        assert removed["a2"]["reason"] == "duplicate" and removed["a3"]["reason"] == "conflict"
        assert "a1" in kept and "d1" in kept
    if policy == "drop":
        assert {removed[i]["reason"] for i in ("a1", "a2", "a3", "d1", "d2")} == {"conflict"}
    assert sum(res.removed_counts().values()) == len(rows) - len(res.examples)


def test_dedup_cli_counts_add_up(tmp_path):
    data = tmp_path / "prefs.jsonl"
    data.write_text(
        "".join(
            json.dumps(
                {
                    "id": e.id,
                    "prompt": e.prompt[0]["content"],
                    "chosen": e.responses[0],
                    "rejected": e.responses[1],
                }
            )
            + "\n"
            for e in _rows()
        )
    )
    report = tmp_path / "r.json"
    res = runner.invoke(
        app,
        [
            "curate",
            "dedup",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "d.jsonl"),
            "--report",
            str(report),
            "--on-conflict",
            "keep_first",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output.strip().splitlines()[-1])
    parts = ("kept", "removed_duplicate", "removed_conflict", "removed_degenerate")
    assert sum(summary[k] for k in parts) == summary["examples"] == 8
    written = [json.loads(line)["id"] for line in (tmp_path / "d.jsonl").read_text().splitlines()]
    listed = [r["id"] for r in json.loads(report.read_text())["removed"]]
    assert sorted(written + listed) == sorted(e.id for e in _rows())


def test_votes_refuse_duplicate_ids(tmp_path):
    rows = [
        _ex("p", "Q", ["a", "b"], [0]),
        _ex("p", "Q2", ["c", "d"], [0]),
    ]
    rows = [
        Example(e.id, e.prompt, e.responses, e.chosen, meta={"strength": s})
        for e, s in zip(rows, (1.0, -2.0), strict=True)
    ]
    with pytest.raises(ValueError, match="'p'"):
        votes(rows)
    data = tmp_path / "dup.jsonl"
    data.write_text(
        '{"id": "p", "prompt": "Q", "chosen": "a", "rejected": "bbb"}\n'
        '{"id": "p", "prompt": "Q2", "chosen": "cc", "rejected": "d"}\n'
    )
    out, vf = tmp_path / "s.jsonl", tmp_path / "v.json"
    res = runner.invoke(
        app,
        [
            "curate",
            "strength",
            "--data",
            str(data),
            "--out",
            str(out),
            "-r",
            "rule:length",
            "--votes",
            str(vf),
        ],
    )
    assert res.exit_code == 2 and "more than once" in res.output
    assert not out.exists() and not vf.exists()


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def _vl(**change) -> dict:
    """A VL-RewardBench record (id, query, response, image, human_ranking, query_source…)."""
    row = {
        "id": "RLAIF-V-1",
        "query": "What color is the square?",
        "response": ["It is blue.", "It is red."],
        "image": "img/1.png",
        "human_ranking": [1, 0],
        "models": ["m1", "m2"],
        "judge": "human",
        "rationale": "the square is red",
        "query_source": "rlaif-v",
        "ground_truth": "red",
    }
    return {**row, **change}


def _write(tmp_path, rows, name="vl.jsonl"):
    (tmp_path / "img").mkdir(exist_ok=True)
    (tmp_path / "img" / "1.png").write_bytes(_png())
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_vl_rewardbench_ranking_direction_and_base64_images(tmp_path):
    b64 = base64.b64encode(_png()).decode()
    rows = [
        _vl(),
        _vl(id="b", image=b64, human_ranking=[0, 1]),
        _vl(id="c", image={"bytes": b64, "path": "original_name.png"}),
    ]
    got = load(_write(tmp_path, rows))
    assert [e.chosen for e in got] == [[1], [0], [1]]  # lower rank = better
    assert [e.subset for e in got] == ["rlaif-v"] * 3
    for e in got:
        (img,) = [p["image"] for p in e.prompt[0]["content"] if p["type"] == "image"]
        assert img.load().size == (8, 8)


@pytest.mark.parametrize(
    "ranking", [[0, None], ["a", "b"], [True, False], [0.0, float("nan")], [0]]
)
def test_vl_rewardbench_hostile_ranking_is_located(tmp_path, ranking):
    path = _write(tmp_path, [_vl(), _vl(human_ranking=ranking)])
    res = runner.invoke(app, ["data", str(path)])
    assert res.exit_code == 2, res.output
    assert "line 2" in res.output and "human_ranking" in res.output
    assert "Traceback" not in res.output


def test_image_bytes_that_are_not_an_image_are_located(tmp_path):
    path = _write(tmp_path, [_vl(image={"bytes": "not base64 image", "path": None})])
    with pytest.raises(DataError, match=r"image\.bytes"):
        load(path)


def test_multimodal_rewardbench_all_data_json(tmp_path):
    rows = [
        {
            "ID": "nocaps_1",
            "Image": "img/1.png",
            "Text": "Describe.",
            "Output1": "A red square.",
            "Output2": "A blue circle.",
            "Better": "Output1",
            "Category": "open_generation/correctness_task",
        },
        {
            "ID": "pairs_7",
            "Image": "img/1.png",
            "Text": "Who?",
            "Output1": "bias",
            "Output2": "fair",
            "Better": "Output2",
            "Category": "safety",
        },
        {
            "ID": "math_3",
            "Image": "img/1.png",
            "Text": "2+2?",
            "Output1": "5",
            "Output2": "4",
            "Better": "Output2",
            "Category": "reasoning",
        },
        {
            "ID": "code_4",
            "Image": "img/1.png",
            "Text": "Code?",
            "Output1": "ok",
            "Output2": "bad",
            "Better": "Output1",
            "Category": "reasoning",
        },
    ]
    _write(tmp_path, [])
    path = tmp_path / "all_data.json"
    path.write_text(json.dumps(rows))
    got = load(path)
    assert [e.id for e in got] == [r["ID"] for r in rows]
    assert [e.chosen for e in got] == [[0], [1], [1], [0]]
    assert [e.subset for e in got] == [
        "open_generation/correctness_task",
        "safety/bias",
        "reasoning/math",
        "reasoning/coding",
    ]
    assert got[0].responses == ["A red square.", "A blue circle."]
    bad = [{**rows[0], "Better": "Output3"}]
    path.write_text(json.dumps(bad))
    with pytest.raises(DataError, match="Better"):
        load(path)
    path.write_text(json.dumps([{**rows[0], "Image": "img/missing.png"}]))
    with pytest.raises(DataError, match="image file not found"):
        load(path)


def test_dedup_image_pairs_compares_image_bytes_not_line_origins(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "1.png").write_bytes(_png())
    (tmp_path / "img" / "copy.png").write_bytes(_png())
    from PIL import Image

    Image.new("RGB", (8, 8), (0, 0, 255)).save(tmp_path / "img" / "2.png")
    t2i = [
        {
            "id": "a",
            "prompt": "a red square",
            "image_a": "img/1.png",
            "image_b": "img/2.png",
            "label": 0,
        },
        {
            "id": "b",
            "prompt": "a red square",
            "image_a": "img/2.png",
            "image_b": "img/copy.png",
            "label": 1,
        },
        {
            "id": "c",
            "prompt": "a red square",
            "image_a": "img/1.png",
            "image_b": "img/2.png",
            "label": 1,
        },
    ]
    path = tmp_path / "t2i.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in t2i))
    res = dedup(load(path), on_conflict="keep_first")
    assert [e.id for e in res.examples] == ["a"]
    assert {r["id"]: r["reason"] for r in res.removed} == {"b": "duplicate", "c": "conflict"}
    vl = _write(tmp_path, [_vl(), _vl(id="again")], name="vl.jsonl")
    res = dedup(load(vl))
    assert [r["id"] for r in res.removed] == ["again"] and len(res.examples) == 1


def test_export_image_prompts_in_trl_vision_layout(tmp_path):
    b64 = base64.b64encode(_png()).decode()
    data = _write(tmp_path, [_vl(), _vl(id="b", image=b64, human_ranking=[0, 1])])
    out = tmp_path / "sub" / "trl.jsonl"
    out.parent.mkdir()
    res = runner.invoke(app, ["curate", "export", "--data", str(data), "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["chosen"][0]["content"] for r in rows] == ["It is red.", "It is blue."]
    assert rows[0]["prompt"][0]["content"] == [
        {"type": "image"},
        {"type": "text", "text": "What color is the square?"},
    ]
    from PIL import Image

    first = Image.open(rows[0]["images"][0])  # absolute: readable from another folder
    assert first.size == (8, 8)
    assert rows[1]["images"][0] == "data:image/png;base64," + b64


@pytest.mark.parametrize("to", ["trl", "openrlhf"])
def test_export_refuses_image_responses_without_writing(tmp_path, to):
    (tmp_path / "a.png").write_bytes(_png())
    data = tmp_path / "t2i.jsonl"
    data.write_text(
        json.dumps({"prompt": "red", "image_a": "a.png", "image_b": "a.png", "label": 0}) + "\n"
    )
    out = tmp_path / "o.jsonl"
    res = runner.invoke(
        app, ["curate", "export", "--data", str(data), "--out", str(out), "--to", to]
    )
    assert res.exit_code == 2 and "is an image" in res.output and "Traceback" not in res.output
    assert not out.exists()


def test_export_counts_examples_without_a_pair(tmp_path):
    data = tmp_path / "p.jsonl"
    data.write_text(
        '{"id": "t", "prompt": "Q", "responses": ["a", "b"], "chosen": [0, 1]}\n'
        '{"id": "p", "prompt": "Q2", "chosen": "x", "rejected": "yy"}\n'
    )
    res = runner.invoke(
        app, ["curate", "export", "--data", str(data), "--out", str(tmp_path / "o.jsonl")]
    )
    summary = json.loads(res.output.strip().splitlines()[-1])
    assert summary["examples"] == 2 and summary["written"] == 1
    assert summary["skipped_no_pair"] == 1


def _gsm8k_record(ok: bool = True) -> dict:
    sol = {"is_correct": ok, "solution": "2 + 2 = <<2+2=4>>4"}
    bad = {"is_correct": False, "solution": "2 + 2 = <<2+2=5>>5"}
    return {
        "question": "What is 2 + 2?",
        "ground_truth": "2 + 2 = <<2+2=4>>4\n#### 4",
        "6b_finetuning": sol,
        "6b_verification": bad,
        "175b_finetuning": bad,
        "175b_verification": sol,
    }


@pytest.mark.parametrize("broken", ["{not json", '{"question": "q"}'])
def test_detection_builders_locate_a_broken_line(tmp_path, broken):
    from rewardkit.curate.detection import gsm8k_correctness_pairs, gsm8k_detection

    path = tmp_path / "example_model_solutions.jsonl"
    path.write_text(json.dumps(_gsm8k_record()) + "\n" + broken + "\n")
    for build in (gsm8k_detection, gsm8k_correctness_pairs):
        with pytest.raises(DataError, match=r"example_model_solutions\.jsonl:2"):
            build(tmp_path)
    res = runner.invoke(
        app, ["detect", "gsm8k", "--data", str(tmp_path), "--out", str(tmp_path / "d.jsonl")]
    )
    assert res.exit_code == 2 and ":2" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "d.jsonl").exists()
    pairs = gsm8k_correctness_pairs(tmp_path, limit=1)
    assert pairs[0].responses == ["2 + 2 = 4", "2 + 2 = 5"] and pairs[0].chosen == [0]
