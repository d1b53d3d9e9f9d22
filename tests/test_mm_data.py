"""Loaders of image preference data: t2i pairs, editing triplets, multimodal QA, MMRB2."""

from __future__ import annotations

import base64
import json

import pytest
from PIL import Image

from rewardkit.content import ImageError, ImageRef, content_images, content_text
from rewardkit.data import load
from rewardkit.errors import DataError


def _png(path, rgb) -> str:
    Image.new("RGB", (8, 8), rgb).save(path)
    return path.name


def _jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def test_t2i_pairs_labels_and_relative_paths(tmp_path) -> None:
    img = tmp_path / "img"
    img.mkdir()
    a, b = _png(img / "a.png", (255, 0, 0)), _png(img / "b.png", (0, 0, 255))
    rows = [
        {"prompt": "a red square", "image_a": f"img/{a}", "image_b": f"img/{b}", "label": 0},
        {"prompt": "a blue square", "image_a": f"img/{a}", "image_b": f"img/{b}", "label": "B"},
        {
            "caption": "two squares",
            "jpg_0": f"img/{a}",
            "jpg_1": f"img/{b}",
            "label_0": 0.5,
            "label_1": 0.5,
        },
        {"prompt": "p", "images": [f"img/{a}", f"img/{b}"], "label": "tie", "id": "x7"},
    ]
    exs = load(_jsonl(tmp_path / "pairs.jsonl", rows))
    assert [e.meta["format"] for e in exs] == ["t2i-pairs"] * 4
    assert [e.chosen for e in exs] == [[0], [1], [0, 1], [0, 1]]
    assert exs[2].is_tie and exs[3].id == "x7"
    first = exs[0]
    assert first.prompt == [{"role": "user", "content": "a red square"}]
    ra, rb = (content_images(r)[0] for r in first.responses)
    assert ra.path == str(img / a) and rb.path == str(img / b)
    assert ra.load().getpixel((0, 0)) == (255, 0, 0)  # read lazily, resolved to the file's folder
    assert "image_a" not in first.meta and "label" not in first.meta


def test_image_edit_triplets_put_the_source_in_the_prompt(tmp_path) -> None:
    src, a, b = (
        _png(tmp_path / f"{n}.png", c)
        for n, c in [("s", (9, 9, 9)), ("a", (1, 1, 1)), ("b", (2, 2, 2))]
    )
    path = _jsonl(
        tmp_path / "edit.jsonl",
        [
            {
                "instruction": "make it dark",
                "source_image": src,
                "edited_a": a,
                "edited_b": b,
                "label": "A",
            }
        ],
    )
    (ex,) = load(path)
    assert ex.meta["format"] == "image-edit" and ex.chosen == [0]
    content = ex.prompt[0]["content"]
    assert content_text(content) == "<image>\nmake it dark"
    assert content_images(content)[0].path == str(tmp_path / src)
    assert content_images(ex.responses[1])[0].path == str(tmp_path / b)


def test_mm_qa_pairs_both_shapes(tmp_path) -> None:
    im = _png(tmp_path / "q.png", (0, 255, 0))
    path = _jsonl(
        tmp_path / "qa.jsonl",
        [
            {"id": "q1", "image": im, "question": "Colour?", "chosen": "green", "rejected": "red"},
            {
                "id": "q1",
                "images": [im, im],
                "query": "Same?",
                "response": ["no", "yes"],
                "human_ranking": [1, 0],
            },
        ],
    )
    exs = load(path)
    assert [e.meta["format"] for e in exs] == ["mm-qa", "mm-qa"]
    assert exs[0].responses == ["green", "red"] and exs[0].chosen == [0]
    assert exs[1].responses == ["no", "yes"] and exs[1].chosen == [1]
    assert len(content_images(exs[1].prompt[0]["content"])) == 2
    assert exs[0].meta["group"] == exs[1].meta["group"] == "q1"


def test_mmrb2_items_text_and_image_responses(tmp_path) -> None:
    p, ra, rb = (_png(tmp_path / f"{n}.png", (n_ * 40, 0, 0)) for n_, n in enumerate("pab"))
    rows = [
        {
            "pair_id": "t2i-1",
            "task": "text-to-image",
            "prompt_content": [["text", "a cat"]],
            "response_a": ra,
            "response_b": rb,
            "chosen": "B",
        },
        {
            "pair_id": "reason-1",
            "task": "reasoning",
            "prompt_content": [["image", p], ["text", "How many cats?"]],
            "response_a": "Two.",
            "response_b": "Three.",
            "chosen": "A",
        },
    ]
    exs = load(_jsonl(tmp_path / "mmrb2.jsonl", rows))
    assert [e.meta["format"] for e in exs] == ["mmrb2", "mmrb2"]
    assert [e.subset for e in exs] == ["text-to-image", "reasoning"]
    assert [e.id for e in exs] == ["t2i-1", "reason-1"]
    assert exs[0].prompt[0]["content"] == "a cat"  # text-only content stays text
    assert isinstance(content_images(exs[0].responses[1])[0], ImageRef) and exs[0].chosen == [1]
    assert exs[1].responses == ["Two.", "Three."]
    assert content_text(exs[1].prompt[0]["content"]) == "<image>\nHow many cats?"


def test_malformed_records_name_file_line_and_field(tmp_path) -> None:
    a = _png(tmp_path / "a.png", (1, 2, 3))
    path = _jsonl(
        tmp_path / "bad.jsonl",
        [
            {"prompt": "ok", "image_a": a, "image_b": a, "label": 0},
            {"prompt": "x", "image_a": a, "image_b": "missing.png", "label": 1},
        ],
    )
    with pytest.raises(
        DataError, match=r"bad.jsonl, line 2, field 'image_b': image file not found"
    ):
        load(path)
    with pytest.warns(UserWarning, match="skipped 1 malformed"):
        assert len(load(path, on_error="skip")) == 1
    bad_label = _jsonl(
        tmp_path / "lab.jsonl", [{"prompt": "x", "image_a": a, "image_b": a, "label": "C"}]
    )
    with pytest.raises(DataError, match=r"line 1, field 'label': expected 0, 1, 'A', 'B' or 'tie'"):
        load(bad_label)


def test_corrupt_image_fails_lazily_with_its_record(tmp_path) -> None:
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    a = _png(tmp_path / "a.png", (1, 2, 3))
    path = _jsonl(
        tmp_path / "c.jsonl", [{"prompt": "x", "image_a": a, "image_b": "bad.png", "label": 0}]
    )
    (ex,) = load(path)  # loading reads no pixels
    with pytest.raises(ImageError, match=r"c.jsonl, line 1, field 'image_b': cannot decode"):
        content_images(ex.responses[1])[0].load()


def test_openai_content_parts_in_generic_and_trl_records(tmp_path) -> None:
    a = _png(tmp_path / "a.png", (5, 6, 7))
    raw = (tmp_path / "a.png").read_bytes()
    url = "data:image/png;base64," + base64.b64encode(raw).decode()
    parts = [
        {"type": "image_url", "image_url": {"url": url}},
        {"type": "text", "text": "What colour?"},
    ]
    rows = [
        {"prompt": [{"role": "user", "content": parts}], "chosen": "dark", "rejected": "red"},
        {
            "chosen": [
                {
                    "role": "user",
                    "content": [{"type": "image", "path": a}, {"type": "text", "text": "Q"}],
                },
                {"role": "assistant", "content": [{"type": "text", "text": "dark"}]},
            ],
            "rejected": [
                {
                    "role": "user",
                    "content": [{"type": "image", "path": a}, {"type": "text", "text": "Q"}],
                },
                {"role": "assistant", "content": "red"},
            ],
        },
    ]
    g, t = (
        load(_jsonl(tmp_path / "conv.jsonl", rows[:1])),
        load(_jsonl(tmp_path / "t.jsonl", rows[1:])),
    )
    (img,) = content_images(g[0].prompt[0]["content"])
    assert img.digest() == ImageRef(path=str(tmp_path / a)).digest()
    assert t[0].meta["format"] == "trl" and t[0].responses == ["dark", "red"]
    assert content_images(t[0].prompt[0]["content"])[0].path == str(tmp_path / a)
    bad = [
        {
            "prompt": [{"role": "user", "content": [{"type": "image", "path": "gone.png"}]}],
            "chosen": "x",
            "rejected": "y",
        }
    ]
    with pytest.raises(
        DataError, match=r"line 1, field 'prompt\[0\].content': image file not found"
    ):
        load(_jsonl(tmp_path / "bad.jsonl", bad))


def test_write_jsonl_round_trip_and_score_rows_with_images(tmp_path) -> None:
    from rewardkit.data import write_jsonl
    from rewardkit.data.location import Location
    from rewardkit.scoring import query_from_row

    a, b = _png(tmp_path / "a.png", (1, 1, 1)), _png(tmp_path / "b.png", (2, 2, 2))
    rows = [{"prompt": "x", "image_a": a, "image_b": b, "label": "B"}]
    exs = load(_jsonl(tmp_path / "p.jsonl", rows))
    write_jsonl(exs, tmp_path / "out" / "back.jsonl")
    (back,) = load(str(tmp_path / "out" / "back.jsonl"))
    assert back.chosen == [1] and back.meta["format"] == "t2i-pairs"
    digests = [content_images(r)[0].digest() for r in back.responses]
    assert digests == [content_images(r)[0].digest() for r in exs[0].responses]

    loc = Location(str(tmp_path / "rows.jsonl"), "rows.jsonl", line=4)
    row = {
        "prompt": [{"role": "user", "content": [{"type": "text", "text": "draw"}]}],
        "response": [{"type": "image", "path": a}],
    }
    q = query_from_row(row, loc)
    assert content_images(q.response)[0].path == str(tmp_path / a)
    with pytest.raises(DataError, match=r"rows.jsonl, line 4, field 'response': .*not found"):
        query_from_row({"prompt": "x", "response": [{"type": "image", "path": "no.png"}]}, loc)
