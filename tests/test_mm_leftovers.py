"""Multimodal leftovers: the VLM judges honour ``max_length``/``truncation``; a damaged image is
one record ``--on-error skip`` drops (eval), a located one-line error otherwise (eval, score)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mm_helpers import solid_png, t2i_rows, tiny_clip
from rewardkit.cli import app
from rewardkit.content import ImageError, ImageRef, image_part
from rewardkit.data import load
from rewardkit.engine.truncation import TruncationError
from rewardkit.errors import DataError
from rewardkit.evaluate import evaluate
from rewardkit.evaluate.multimodal import drop_cut_short, skip_unreadable
from rewardkit.multimodal.files import incomplete_image
from rewardkit.registry import load_reward
from rewardkit.types import Query, user
from test_mm_vlm_judge import tiny_llava

LONG_PROMPT = "Please describe the following picture in great detail, word by word. " * 6
LONG_ANSWER = "It is a red square with some noise on it and nothing else to see. " * 4


@pytest.fixture(scope="module")
def vlm(tmp_path_factory) -> str:
    return tiny_llava(tmp_path_factory.mktemp("vlm") / "llava")


@pytest.fixture(scope="module")
def png(tmp_path_factory) -> str:
    return solid_png(tmp_path_factory.mktemp("img") / "red.png", (200, 30, 30), noise=20)


def _queries(png: str, origin: str | None = None) -> list[Query]:
    conv = [image_part(png, origin=origin), {"type": "text", "text": LONG_PROMPT}]
    return [Query([user(conv)], LONG_ANSWER), Query([user("Short?")], [image_part(png)])]


def _judge(vlm: str, options: str = "", **engine):
    return load_reward(f"vlm-judge:{vlm}{options}", progress=False, cache_dir=None, **engine)


# -- VLM judges: max_length and truncation ----------------------------------------------------
def test_vlm_judge_cuts_the_judged_text_not_the_template(vlm, png) -> None:
    """Before: ``max_length=128`` changed nothing (221-token rows ran whole, nothing flagged)."""
    full, cut = _judge(vlm), _judge(vlm, "?max_length=180")
    assert full.max_length == 1024 and cut.max_length == 180  # default: the LM's own limit
    qs = _queries(png)
    long_full, short_full = full.encode(qs)
    long_cut, short_cut = cut.encode(qs)
    assert len(long_full.input_ids) > 200 and len(long_cut.input_ids) <= 180
    assert short_cut.input_ids == short_full.input_ids  # rows within the limit are untouched
    text = long_cut.payload[0]
    assert all(p.strip() in text for p in cut.pieces if p.strip())  # instructions, verdict cue
    assert text.endswith(long_full.payload[0][-60:])  # the verdict position is the same
    assert text.count("<image>") == 1 and len(long_cut.payload[1]) == 1  # the image stays
    # left: the conversation loses its oldest tokens; the response, shorter, stays whole
    assert LONG_ANSWER.strip() in text and long_cut.response_dropped == 0
    assert LONG_PROMPT.strip()[-40:] in text and LONG_PROMPT.strip() not in text
    assert long_cut.prompt_dropped > 0
    res, ref = cut.score_full(qs), full.score_full(qs)
    assert res.truncated.tolist() == [True, False] and res.stats["truncated_rows"] == 1
    assert ref.truncated.tolist() == [False, False]
    assert res.scores[1] == pytest.approx(ref.scores[1], abs=1e-5)
    assert res.scores[0] != pytest.approx(ref.scores[0], abs=1e-6)
    assert cut.fingerprint() != full.fingerprint()  # cached scores of one are not the other's
    right = _judge(vlm, "?max_length=128&truncation=right").encode(qs)[0].payload[0]
    assert LONG_PROMPT[:30] in right and LONG_ANSWER[:30] not in right  # right: the start kept


def test_vlm_judge_truncation_error_names_reward_and_item(vlm, png) -> None:
    strict = _judge(vlm, "?max_length=128&truncation=error")
    qs = _queries(png, origin="pairs.jsonl, line 3, field 'prompt'")
    with pytest.raises(TruncationError) as err:
        strict.score(qs)
    msg = str(err.value)
    assert msg.startswith(f"vlm-judge:{vlm}?max_length=128&truncation=error: ")
    assert "the item with prompt 'Please describe" in msg and "over the limit of 128" in msg
    assert "from pairs.jsonl, line 3" in msg
    assert 0 < strict.score(qs[1:])[0] < 1  # an item within the limit scores
    with pytest.raises(TruncationError, match="images are never cut"):
        _judge(vlm, "?max_length=64").score(qs)  # template + image alone exceed the limit


def test_vlm_pairwise_and_listwise_honour_max_length(vlm, png) -> None:
    prompt = [user("Which one is better? " * 10)]
    pair = load_reward(f"vlm-judge-pairwise:{vlm}?max_length=200", progress=False, cache_dir=None)
    rows = pair.encode_pairs([(prompt, [image_part(png)], LONG_ANSWER * 2)])
    assert len(rows[0].input_ids) <= 200 and rows[0].prompt_dropped > 0
    assert rows[0].payload[0].rstrip().endswith("<|im_start|>assistant")
    res = pair.compare_many([prompt], [[image_part(png)]], [LONG_ANSWER * 2])
    assert res.stats["truncated_rows"] == 2 and 0 < res.p[0] < 1  # both orders cut
    spec = f"vlm-judge-pairwise:{vlm}?max_length=200&truncation=error"
    with pytest.raises(TruncationError, match=r"vlm-judge-pairwise.*over the limit of 200"):
        load_reward(spec, progress=False, cache_dir=None).compare_many(
            [prompt], [[image_part(png)]], [LONG_ANSWER * 2]
        )
    group = [[image_part(png)], LONG_ANSWER * 2, "short"]
    lw = load_reward(f"vlm-judge-listwise:{vlm}?max_length=200", progress=False, cache_dir=None)
    (row,) = lw.encode_groups([(prompt, group)])
    assert len(row.input_ids) <= 200 and "[3]\nshort" in row.payload[0]
    ranked = lw.rank_many([prompt], [group])
    assert ranked.stats["truncated_rows"] == 1 and ranked.scores[0].sum() == pytest.approx(1.0)
    spec = f"vlm-judge-listwise:{vlm}?max_length=200&truncation=error"
    with pytest.raises(TruncationError, match=r"vlm-judge-listwise.*over the limit of 200"):
        load_reward(spec, progress=False, cache_dir=None).rank_many([prompt], [group])


def test_vlm_truncation_error_is_one_line_from_the_cli(vlm, png, tmp_path) -> None:
    row = {"prompt": LONG_PROMPT, "response": [{"type": "image", "path": png}]}
    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps(row) + "\n")
    out = tmp_path / "s.jsonl"
    spec = f"vlm-judge:{vlm}?max_length=100&truncation=error"
    args = ["score", "-r", spec, "--data", str(data), "--out", str(out), "--no-progress"]
    result = CliRunner().invoke(app, [*args, "--no-cache"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "error: " in result.output and "over the limit of 100" in result.output
    assert not out.exists()


# -- damaged images ---------------------------------------------------------------------------
def _pairs_file(tmp_path: Path, damage: str) -> tuple[str, str]:
    """Four t2i pairs; the third record's image_b cut to half its bytes (``"half"``) or, keeping
    its length and ending, garbled inside (``"inside"``). Returns (data file, model)."""
    model = tiny_clip(tmp_path / "clip")
    rows = t2i_rows(tmp_path)
    bad = Path(rows[2]["image_b"])
    raw = bytearray(bad.read_bytes())
    if damage == "half":
        raw = raw[: len(raw) // 2]
    else:
        raw[len(raw) // 3 : len(raw) // 3 + 40] = b"\x55" * 40
    bad.write_bytes(bytes(raw))
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(data), model


def _eval(model: str, data: str, out: Path, on_error: str):
    args = ["eval", "-r", f"clip:{model}", "--data", data, "--out", str(out), "--no-progress"]
    args += ["--no-cache", "--n-boot", "20", "--on-error", on_error]
    return CliRunner().invoke(app, args)


@pytest.mark.parametrize("damage", ["half", "inside"])
def test_eval_skip_drops_the_record_with_a_damaged_image(tmp_path, damage) -> None:
    """Before: ``--on-error skip`` stopped at the damaged image like ``raise`` (exit 2)."""
    data, model = _pairs_file(tmp_path, damage)
    with pytest.warns(UserWarning, match=r"skipped 1 record\(s\) whose image.*line 3"):
        result = _eval(model, data, tmp_path / "out", "skip")
    assert result.exit_code == 0, result.output
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert rep["dataset"]["n_examples"] == 3
    dropped = rep["dataset"]["load_skipped"]
    assert dropped["n"] == 1 and "pairs.jsonl, line 3, field 'image_b'" in dropped["first"]
    what = "cut short" if damage == "half" else "cannot decode image"
    assert what in dropped["first"]
    assert "Dropped 1 malformed record(s)" in (tmp_path / "out" / "report.md").read_text()
    raised = _eval(model, data, tmp_path / "out2", "raise")
    assert raised.exit_code == 2 and "Traceback" not in raised.output
    (line,) = [s for s in raised.output.splitlines() if s.startswith("error:")]
    assert "pairs.jsonl, line 3, field 'image_b'" in line and what in line


def test_skip_unreadable_drops_an_image_that_fails_when_scored(tmp_path) -> None:
    data, model = _pairs_file(tmp_path, "inside")
    examples = load(data)  # loading reads no pixels: the damage is found when scoring
    assert drop_cut_short(examples, "raise") == examples  # its ending is intact
    clip = load_reward(f"clip:{model}", progress=False, cache_dir=None)
    with pytest.raises(ImageError, match=r"line 3, field 'image_b': cannot decode"):
        evaluate(examples, clip, n_boot=20)
    skipped: list = []
    with pytest.warns(UserWarning, match="skipped 1 record"):
        res = skip_unreadable(lambda kept: evaluate(kept, clip, n_boot=20), examples, skipped)
    assert res.dataset["n_examples"] == 3 and len(skipped) == 1
    assert all(np.isfinite(e.scores).all() for e in res.rewards[0].examples)

    def fails(kept: list) -> None:
        raise DataError(f"boom on {len(kept)}")

    with pytest.raises(DataError, match="boom on 3"):  # an error no image explains: raised
        skip_unreadable(fails, examples)


def test_score_refuses_a_cut_short_image_before_any_model_loads(tmp_path) -> None:
    """Before: the model loaded and scored before the image failed (a reward that cannot load
    at all showed its own error instead)."""
    good = solid_png(tmp_path / "good.png", (1, 2, 3))
    raw = Path(good).read_bytes()
    (tmp_path / "cut.png").write_bytes(raw[: len(raw) // 2])
    rows = [{"prompt": "p", "response": [{"type": "image", "path": p}]} for p in ("good.png",) * 3]
    rows.append({"prompt": "p", "response": [{"type": "image", "path": "cut.png"}]})
    data = tmp_path / "score.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "s.jsonl"
    args = ["score", "-r", f"clip:{tmp_path / 'no-such-model'}", "--data", str(data)]
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--no-progress", "--no-cache"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "score.jsonl:4: field 'response': image file is cut short" in result.output
    assert not out.exists()


def _encoded(fmt: str) -> bytes:
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
def test_incomplete_image_reads_the_ending(tmp_path, fmt) -> None:
    raw = _encoded(fmt)
    assert incomplete_image(ImageRef(data=raw)) is None
    half = ImageRef(data=raw[: len(raw) // 2])
    assert "cut short" in (incomplete_image(half) or "")
    path = tmp_path / f"x.{fmt.lower()}"
    path.write_bytes(raw + b"\0" * 2000)  # bytes after its end: still an image, not refused
    assert incomplete_image(ImageRef(path=str(path))) is None
    path.write_bytes(raw[: len(raw) // 2])
    assert "cut short" in (incomplete_image(ImageRef(path=str(path))) or "")
    assert incomplete_image(ImageRef(data=b"not an image at all")) is None  # left to decoding
    assert incomplete_image(ImageRef(path=str(tmp_path / "missing.png"))) is None


@pytest.mark.parametrize("offsets", [True, False])
def test_keep_tokens_cuts_text_around_images(offsets, png) -> None:
    """A slot keeps its last (or first) k text tokens across its parts; images stay in place.
    With a fast tokenizer's offsets the cut is on characters, else the kept tokens are decoded."""
    import transformers

    from rewardkit.models.loading import resolve_model
    from rewardkit.multimodal.fitting import PartTokens, keep_tokens, slot_ids, tokenize_parts

    tok = transformers.AutoTokenizer.from_pretrained(resolve_model("smollm2").source)
    parts = [
        {"type": "text", "text": "first words here"},
        image_part(png),
        {"type": "text", "text": "and the last words"},
    ]
    tokens = tokenize_parts(tok, parts)
    assert tokens[1] is None and all(t.spans is not None for t in (tokens[0], tokens[2]))
    if not offsets:
        tokens = [None if t is None else PartTokens(t.ids, None) for t in tokens]
    n = len(slot_ids(tokens))
    tail = keep_tokens(tok, parts, tokens, 3, tail=True)
    assert [p["type"] for p in tail] == ["image", "text"]  # the first text went, the image stays
    assert len(slot_ids(tokenize_parts(tok, tail))) == 3 and tail[1]["text"].endswith("words")
    head = keep_tokens(tok, parts, tokens, n - 1, tail=False)
    assert [p["type"] for p in head] == ["text", "image", "text"]
    assert head[0]["text"] == "first words here" and head[2]["text"] != parts[2]["text"]
    assert len(slot_ids(tokenize_parts(tok, head))) == n - 1
    assert keep_tokens(tok, parts, tokens, n, tail=True) == parts
