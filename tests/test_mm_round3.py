"""Hostile and held-out image inputs (third round): each test fails on the code before its fix."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mm_helpers import solid_png, t2i_rows, tiny_clip
from rewardkit.content import ImageError, ImageRef, as_image_ref, content_images, image_part
from rewardkit.data import load
from rewardkit.errors import DataError
from rewardkit.types import Query, user


def _jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _png_bytes(rgb: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), rgb).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def imgs(tmp_path: Path) -> Path:
    (tmp_path / "img").mkdir()
    solid_png(tmp_path / "img" / "red.png", (255, 0, 0))
    solid_png(tmp_path / "img" / "blue.png", (0, 0, 255))
    return tmp_path


# -- transparency: composited onto white, as the models' processors do --------------------------
def test_transparent_pixels_load_white_like_the_processors(tmp_path: Path) -> None:
    """Before: ``convert("RGB")`` showed the colour under alpha 0 (here black), where
    transformers' ``convert_to_rgb`` (CLIP's ``do_convert_rgb``) composites onto white."""
    from transformers.image_transforms import convert_to_rgb

    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    rgba.putpixel((0, 0), (255, 0, 0, 255))
    rgba.save(tmp_path / "logo.png")
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([0, 0, 0, 200, 10, 10])
    pal.putpixel((0, 0), 1)
    pal.save(tmp_path / "pal.png", transparency=0)  # palette index 0 is transparent
    for name in ("logo.png", "pal.png"):
        got = np.asarray(ImageRef(path=str(tmp_path / name)).load())
        want = np.asarray(convert_to_rgb(Image.open(tmp_path / name), return_numpy=True))
        assert got[1, 1].tolist() == [255, 255, 255] and np.array_equal(got, want)
    pil = ImageRef(pil=Image.new("LA", (4, 4), (0, 0)))
    assert np.asarray(pil.load())[0, 0].tolist() == [255, 255, 255]


# -- 16-bit grey scaled, not clipped ------------------------------------------------------------
def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path: Path) -> None:
    """Before: a 16-bit PNG of mid-grey (value 32896 of 65535) loaded as white (255)."""
    arr = np.full((6, 6), 32896, dtype=np.uint16)
    arr[0, 0] = 65535
    Image.fromarray(arr).save(tmp_path / "grey16.png")
    got = np.asarray(ImageRef(path=str(tmp_path / "grey16.png")).load())
    assert got[1, 1].tolist() == [128, 128, 128] and got[0, 0].tolist() == [255, 255, 255]


# -- Hugging Face image dicts: the bytes are the image ------------------------------------------
def test_hf_image_bytes_win_over_a_path_that_exists(tmp_path: Path) -> None:
    """Before: ``{"bytes": red, "path": "0.png"}`` read a ``0.png`` lying next to the data
    file (here blue), silently scoring another image; ``datasets`` decodes the bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    solid_png(tmp_path / "0.png", (0, 0, 255))
    red, green = _png_bytes((255, 0, 0)), _png_bytes((0, 255, 0))
    table = pa.table(
        {
            "prompt": ["a red square"],
            "image_a": [{"bytes": red, "path": "0.png"}],
            "image_b": [{"bytes": green, "path": "1.png"}],
            "label": [0],
        }
    )
    pq.write_table(table, tmp_path / "pairs.parquet")
    (ex,) = load(str(tmp_path / "pairs.parquet"))
    a, b = (content_images(r)[0] for r in ex.responses)
    assert a.data == red and b.data == green
    assert np.asarray(a.load())[0, 0].tolist() == [255, 0, 0]
    ref = as_image_ref({"bytes": red, "path": str(tmp_path / "0.png")})
    assert ref.data == red
    assert as_image_ref({"bytes": None, "path": str(tmp_path / "0.png")}).path is not None


# -- base64 as browsers read data URLs ----------------------------------------------------------
def test_data_urls_without_padding_wrapped_or_url_safe(imgs: Path) -> None:
    """Before: unpadded, line-wrapped (MIME, 76 columns) and URL-safe base64 were all
    'invalid base64 image data'; so was an unpadded bare base64 string (VL-RewardBench)."""
    raw = _png_bytes((9, 9, 9)) + b"\xfb\xff"  # bytes after the end still decode
    while len(raw) % 3 == 0 or not set("-_") & set(base64.urlsafe_b64encode(raw).decode()):
        raw += b"\xff"
    text = base64.b64encode(raw).decode()
    assert text.endswith("=")
    forms = {
        "nopad": text.rstrip("="),
        "wrapped": "\n".join(text[i : i + 76] for i in range(0, len(text), 76)),
        "urlsafe": base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }
    for form, body in forms.items():
        assert as_image_ref("data:image/png;base64," + body).data == raw, form
    row = {"prompt": "p", "image_a": text.rstrip("="), "image_b": "img/blue.png", "label": 0}
    (ex,) = load(_jsonl(imgs / "bare.jsonl", [row]))
    assert content_images(ex.responses[0])[0].data == raw
    with pytest.raises(ImageError, match="invalid base64"):
        as_image_ref("data:image/png;base64,a")  # one character is no base64


# -- URL schemes in any case; file: with one slash ----------------------------------------------
def test_url_schemes_in_any_case_and_single_slash_file_urls(imgs: Path) -> None:
    """Before: ``file:/abs``, ``FILE://…``, ``DATA:…`` and ``;BASE64,`` were read as relative
    paths ('image file not found: d/file:/…'), ``HTTP://`` as a local file."""
    red = str(imgs / "img/red.png")
    payload = base64.b64encode(Path(red).read_bytes()).decode()
    assert as_image_ref("file:" + red, base_dir="elsewhere").path == red
    assert as_image_ref("FILE://" + red, base_dir="elsewhere").path == red
    assert as_image_ref("file:img/red.png", base_dir=imgs).path == red
    for url in ("DATA:image/png;base64,", "data:image/png;BASE64,"):
        assert as_image_ref(url + payload).data == Path(red).read_bytes()
    assert as_image_ref("HTTP://127.0.0.1:9/x.png").path == "http://127.0.0.1:9/x.png"
    with pytest.raises(ImageError, match="another host"):
        as_image_ref("file://server/share/x.png")


# -- content parts given as an image field's value ----------------------------------------------
def test_image_fields_accept_openai_and_hf_content_parts(imgs: Path) -> None:
    """Before: ``image_a: {"type": "image_url", "image_url": {"url": …}}`` (and the HF
    ``{"type": "image", "path": …}`` part) were 'cannot read an image from dict'."""
    row = {
        "prompt": "a red square",
        "image_a": {"type": "image_url", "image_url": {"url": "img/red.png"}},
        "image_b": {"type": "image", "path": "img/blue.png"},
        "label": 0,
    }
    (ex,) = load(_jsonl(imgs / "parts.jsonl", [row]))
    paths = [Path(content_images(r)[0].path) for r in ex.responses]
    assert paths == [imgs / "img/red.png", imgs / "img/blue.png"]
    bad = {**row, "image_b": {"type": "image_url", "image_url": {"url": "img/none.png"}}}
    with pytest.raises(DataError, match=r"line 1, field 'image_b'.*not found"):
        load(_jsonl(imgs / "bad.jsonl", [bad]))


# -- a symlinked data file finds the images next to its real file -------------------------------
def test_symlinked_data_file_finds_images_beside_its_target(imgs: Path) -> None:
    """Before: ``ln -s /datasets/pairs.jsonl .`` made every relative image 'not found' (looked
    for beside the link, not beside the file it points to)."""
    row = {"prompt": "a red square", "image_a": "img/red.png", "image_b": "img/blue.png"}
    row["label"] = 0
    mmrb2 = {"pair_id": "x", "prompt_content": [["image", "img/red.png"], ["text", "q"]]}
    mmrb2.update(response_a="img/red.png", response_b="one", chosen="A")
    (imgs / "link").mkdir()
    for name, rec in (("pairs.jsonl", row), ("mmrb2.jsonl", mmrb2)):
        _jsonl(imgs / name, [rec])
        (imgs / "link" / name).symlink_to(imgs / name)
        (ex,) = load(str(imgs / "link" / name))
        images = [i for m in ex.prompt for i in content_images(m["content"])]
        images += [i for r in ex.responses for i in content_images(r)]
        assert images and all(Path(i.path).resolve().parent == imgs / "img" for i in images)
    solid_png(imgs / "link" / "red.png", (0, 255, 0))  # beside the link: the link's folder wins
    _jsonl(imgs / "near.jsonl", [{**row, "image_a": "red.png", "image_b": "img/blue.png"}])
    (imgs / "link" / "near.jsonl").symlink_to(imgs / "near.jsonl")
    (ex,) = load(str(imgs / "link" / "near.jsonl"))
    assert Path(content_images(ex.responses[0])[0].path) == imgs / "link" / "red.png"


# -- a huge file under an image's name is refused unread ----------------------------------------
def test_huge_file_named_as_an_image_is_refused_unread(tmp_path: Path) -> None:
    """Before: a 1 GiB file named ``.png`` was read whole (1 GiB of memory, 3 s) by the
    cut-short check and again by the digest and decoding, for PIL to refuse it."""
    import time
    import tracemalloc

    from rewardkit.multimodal.files import MAX_FILE_BYTES, incomplete_image

    big = tmp_path / "big.png"
    with open(big, "wb") as fh:  # sparse: no disk used
        fh.write(b"\x89PNG\r\n\x1a\n")
        fh.truncate(MAX_FILE_BYTES + 1)
    ref = ImageRef(path=str(big), origin="d.jsonl, line 2, field 'image_a'")
    tracemalloc.start()
    start = time.monotonic()
    try:
        assert "more than an image may have" in (incomplete_image(ref) or "")
        with pytest.raises(ImageError, match=r"line 2, field 'image_a'.*more than an image"):
            ref.load()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024 and time.monotonic() - start < 2.0


# -- cached scores of images whose pixels changed are not reused -------------------------------
def test_image_rewards_fingerprint_how_pixels_are_made(tmp_path: Path) -> None:
    """Before: scores cached when a transparent image loaded black would have been served for
    it after the fix (the fingerprint did not say how pixels are made)."""
    from rewardkit.pixels import PIXELS
    from rewardkit.registry import load_reward

    model = tiny_clip(tmp_path / "clip")
    reward = load_reward(f"clip:{model}", progress=False, cache_dir=None)
    assert reward.identity()["pixels"] == PIXELS
    rgba = Image.new("RGBA", (24, 24), (0, 0, 0, 0))
    rgba.save(tmp_path / "clear.png")
    solid_png(tmp_path / "white.png", (255, 255, 255))
    solid_png(tmp_path / "black.png", (0, 0, 0))
    qs = [
        Query([user("a white square")], [image_part(str(tmp_path / n))])
        for n in ("clear.png", "white.png", "black.png")
    ]
    clear, white, black = reward.score(qs)
    assert clear == pytest.approx(white, abs=1e-4) and clear != pytest.approx(black, abs=1e-3)


# -- eval --on-error skip and score's errors (commands/evaluate.py, commands/score.py) ----------
def _cli(*args: str):
    from typer.testing import CliRunner

    from rewardkit.cli import app

    return CliRunner().invoke(app, [*args, "--no-progress", "--no-cache"])


def test_eval_skip_drops_a_record_whose_image_url_cannot_be_read(tmp_path: Path) -> None:
    """Before: the data fingerprint downloaded every image before the skip logic ran, so one
    unreadable URL stopped ``eval --on-error skip`` (exit 2)."""
    model = tiny_clip(tmp_path / "clip")
    rows = t2i_rows(tmp_path)
    rows[1]["image_b"] = "http://127.0.0.1:9/missing.png"  # nothing listens there
    data = _jsonl(tmp_path / "pairs.jsonl", rows)
    out = tmp_path / "out"
    args = ["eval", "-r", f"clip:{model}", "--data", data, "--out", str(out), "--n-boot", "20"]
    with pytest.warns(UserWarning, match=r"skipped 1 record"):
        result = _cli(*args, "--on-error", "skip")
    assert result.exit_code == 0, result.output
    rep = json.loads((out / "report.json").read_text())
    assert rep["dataset"]["n_examples"] == 3 and rep["dataset"]["load_skipped"]["n"] == 1
    assert "line 2, field 'image_b'" in rep["dataset"]["load_skipped"]["first"]


def test_score_image_error_names_the_field(tmp_path: Path) -> None:
    """Before: an image that fails to decode when scored was named by file and line only
    (``score.jsonl:2: cannot decode image``)."""
    model = tiny_clip(tmp_path / "clip")
    good = solid_png(tmp_path / "good.png", (250, 10, 10), noise=15, seed=1)
    raw = bytearray(
        Path(solid_png(tmp_path / "bad.png", (10, 10, 250), noise=15, seed=2)).read_bytes()
    )
    raw[len(raw) // 3 : len(raw) // 3 + 40] = b"\x55" * 40  # same length and ending, garbled
    (tmp_path / "bad.png").write_bytes(bytes(raw))
    rows = [
        {"prompt": "a red square", "response": [{"type": "image", "path": Path(p).name}]}
        for p in (good, str(tmp_path / "bad.png"))
    ]
    data = _jsonl(tmp_path / "score.jsonl", rows)
    out = tmp_path / "s.jsonl"
    result = _cli("score", "-r", f"clip:{model}", "--data", data, "--out", str(out))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "score.jsonl:2: field 'response'" in result.output
    assert "cannot decode image" in result.output and not out.exists()
