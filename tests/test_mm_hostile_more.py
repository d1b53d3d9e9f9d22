"""Hostile multimodal inputs (second probe): each test fails on the code before its fix."""

from __future__ import annotations

import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from mm_helpers import solid_png
from rewardkit.content import (
    ImageContentError,
    ImageError,
    ImageRef,
    content_images,
    fetch_bounded,
    missing_file,
)
from rewardkit.data import load
from rewardkit.data.location import Location
from rewardkit.errors import DataError
from rewardkit.types import Query, text_queries


def _jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture
def imgs(tmp_path: Path) -> Path:
    (tmp_path / "img").mkdir()
    solid_png(tmp_path / "img" / "0.png", (255, 0, 0))
    solid_png(tmp_path / "img" / "1.png", (0, 0, 255))
    return tmp_path


# -- (2) HTTP judge uploads only real images, with their MIME type ----------------------------
def test_http_judge_refuses_a_non_image_file(tmp_path: Path) -> None:
    from rewardkit.rewards.judges.http import openai_content

    secret = tmp_path / "secret.png"
    secret.write_text("SECRET-TOKEN-1234\n")
    ref = ImageRef(path=str(secret), origin="rows.jsonl:2")
    with pytest.raises(ImageError, match=r"rows\.jsonl:2.*secret\.png.*not a readable image"):
        openai_content([{"type": "image", "image": ref}])


def test_http_judge_sends_real_mime(tmp_path: Path) -> None:
    from rewardkit.rewards.judges.http import openai_content

    jpg = tmp_path / "a.png"  # a JPEG under a .png name: the bytes decide
    Image.new("RGB", (8, 8), (1, 2, 3)).save(jpg, format="JPEG")
    (part,) = openai_content([{"type": "image", "image": ImageRef(path=str(jpg))}])
    assert part["image_url"]["url"].startswith("data:image/jpeg;base64,")


# -- (8) completions endpoint refuses images --------------------------------------------------
def test_http_completions_refuses_images(imgs: Path) -> None:
    from rewardkit.rewards.judges.http import HttpYesNoJudge

    judge = HttpYesNoJudge("http://127.0.0.1:9/v1", "m", endpoint="completions")
    ref = ImageRef(path=str(imgs / "img/0.png"), origin="r.jsonl:1")
    q = Query([{"role": "user", "content": [{"type": "image", "image": ref}]}], "red")
    with pytest.raises(ImageContentError, match=r"completions.*r\.jsonl:1"):
        judge.request([q])


# -- (1) a text-format row with images, an mm-qa row without ----------------------------------
def test_generic_row_holding_images_is_a_located_error(imgs: Path) -> None:
    row = {"prompt": "What colour?", "chosen": "red", "rejected": "blue"}
    path = _jsonl(imgs / "d.jsonl", [{**row, "images": []}, {**row, "images": ["img/0.png"]}])
    with pytest.raises(DataError, match=r"d\.jsonl, line 2, field 'images'.*holds an image"):
        load(path)


def test_mm_qa_row_without_image_is_a_located_error(imgs: Path) -> None:
    row = {"question": "What colour?", "chosen": "red", "rejected": "blue"}
    path = _jsonl(imgs / "q.jsonl", [{**row, "image": "img/0.png"}, {**row, "image": None}])
    with pytest.raises(DataError, match=r"q\.jsonl, line 2, field 'image'.*needs an image"):
        load(path)


# -- (3) score resolves reference images against the data file --------------------------------
def test_score_reference_resolves_against_data_file(imgs: Path, monkeypatch) -> None:
    from rewardkit.scoring import query_from_row

    monkeypatch.chdir("/")
    row = {"prompt": "x", "response": "y", "reference": [{"type": "image", "image": "img/1.png"}]}
    q = query_from_row(row, Location(str(imgs / "r.jsonl"), "r.jsonl", line=3))
    (ref,) = content_images(q.reference)
    assert Path(ref.path) == imgs / "img/1.png"
    bad = {**row, "reference": [{"type": "image", "image": "img/none.png"}]}
    with pytest.raises(DataError, match=r"line 3, field 'reference'.*not found"):
        query_from_row(bad, Location(str(imgs / "r.jsonl"), "r.jsonl", line=3))


# -- (6) URL fetch: total deadline and byte cap -----------------------------------------------
class _Trickle(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        try:
            for _ in range(100):
                self.wfile.write(b"x" * (4096 if self.path == "/big" else 1))
                self.wfile.flush()
                time.sleep(0.0 if self.path == "/big" else 0.2)
        except OSError:
            pass

    def log_message(self, *args) -> None:
        pass


def test_fetch_has_a_deadline_and_a_cap(monkeypatch) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        start = time.monotonic()
        with pytest.raises(ValueError, match="longer than"):
            fetch_bounded(base + "/slow", deadline_s=1.0)
        assert time.monotonic() - start < 5
        with pytest.raises(ValueError, match="larger than"):
            fetch_bounded(base + "/big", max_bytes=10_000)
        monkeypatch.setattr("rewardkit.content.FETCH_MAX_BYTES", 10_000)
        with pytest.raises(ImageError, match=r"r\.jsonl:1.*cannot download.*larger than"):
            ImageRef(path=base + "/big", origin="r.jsonl:1").read_bytes()
    finally:
        server.shutdown()


# -- (7) NaN Pick-a-Pic labels ----------------------------------------------------------------
def test_nan_pickapic_label_is_refused(imgs: Path) -> None:
    row = {"prompt": "a red square", "image_0": "img/0.png", "image_1": "img/1.png"}
    lines = [
        json.dumps({**row, "label_0": 1, "label_1": 0}),
        json.dumps(row)[:-1] + ', "label_0": NaN, "label_1": 0}',
    ]
    (imgs / "p.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"line 2, field 'label_0'.*finite"):
        load(str(imgs / "p.jsonl"))


# -- (10) no quadratic regex on the bare-base64 check -----------------------------------------
def test_base64_check_is_linear() -> None:
    from rewardkit.data.multimodal import _raw_base64_image

    start = time.monotonic()
    assert _raw_base64_image(" " * 80_000 + "!") is None
    assert time.monotonic() - start < 1.0
    png = io.BytesIO()
    Image.new("RGB", (4, 4)).save(png, format="PNG")
    import base64

    text = base64.b64encode(png.getvalue()).decode()
    assert _raw_base64_image(text[:40] + "\n " + text[40:]) == png.getvalue()


# -- (11) a file name too long is a located error ---------------------------------------------
def test_long_image_path_is_located(imgs: Path) -> None:
    assert missing_file(ImageRef(path="a" * 5000 + ".png"))
    row = {"prompt": "p", "image_a": "img/0.png", "image_b": "a" * 5000 + ".png", "label": 0}
    with pytest.raises(DataError, match=r"line 1, field 'image_b'.*not found"):
        load(_jsonl(imgs / "l.jsonl", [row]))


# -- (12) a text reward on an image response names the file and line --------------------------
def test_text_reward_on_image_names_the_row(imgs: Path) -> None:
    from rewardkit.scoring import query_from_row

    row = {"prompt": "What colour?", "response": [{"type": "image", "image": "img/0.png"}]}
    q = query_from_row(row, Location(str(imgs / "r12.jsonl"), "r12.jsonl", line=4))
    with pytest.raises(
        ImageContentError, match=r"r12\.jsonl:4: field 'response': reward 'default'"
    ):
        text_queries([Query("a", "b"), q], "default")


# -- (15) empty and corrupt image files ---------------------------------------------------------
def test_zero_byte_image_fails_at_load(imgs: Path) -> None:
    (imgs / "img/zero.png").write_bytes(b"")
    row = {"prompt": "p", "image_a": "img/0.png", "image_b": "img/zero.png", "label": 0}
    path = _jsonl(imgs / "z.jsonl", [row, {**row, "image_b": "img/1.png"}])
    with pytest.raises(DataError, match=r"line 1, field 'image_b'.*empty"):
        load(path)
    with pytest.warns(UserWarning, match="skipped 1 malformed"):
        assert len(load(path, on_error="skip")) == 1


def test_decode_error_has_no_memory_address() -> None:
    with pytest.raises(ImageError) as e:
        ImageRef(data=b"not an image").load()
    assert "object at 0x" not in str(e.value)


# -- (13) identical-response detection compares images ----------------------------------------
def test_identical_pairs_compare_images(imgs: Path) -> None:
    from rewardkit.evaluate.run import count_identical_choices
    from rewardkit.train.collate import Item
    from rewardkit.train.image_collate import TokenIds
    from rewardkit.train.labels import identical_pairs

    rows = []
    for name in ("0", "1"):
        ids = TokenIds([5, 6])
        ids.image = ImageRef(path=str(imgs / f"img/{name}.png"))
        rows.append(ids)
    assert identical_pairs([Item(ids=rows, types=[None, None], pairs=[(0, 1, False, 0, 1)])]) == 0
    row = {"prompt": "p", "image_a": "img/0.png", "image_b": "img/0.png", "label": 0}
    assert count_identical_choices(load(_jsonl(imgs / "i.jsonl", [row]))) == 1


# -- (4) written image paths read back from anywhere; curate export --help ---------------------
def test_written_image_paths_are_absolute(imgs: Path, monkeypatch) -> None:
    from rewardkit.data.writer import write_jsonl

    monkeypatch.chdir(imgs)
    row = {"prompt": "p", "image_a": "img/0.png", "image_b": "img/1.png", "label": 0}
    examples = load(_jsonl(imgs / "w.jsonl", [row]))
    (imgs / "out").mkdir()
    monkeypatch.chdir(imgs / "out")
    examples = [
        e.__class__(
            **{
                **e.__dict__,
                "responses": [
                    [{"type": "image", "image": ImageRef(path="../img/0.png")}],
                    e.responses[1],
                ],
            }
        )
        for e in examples
    ]
    write_jsonl(examples, imgs / "out" / "sub.jsonl")
    monkeypatch.chdir("/")
    (back,) = load(str(imgs / "out" / "sub.jsonl"))
    assert Path(content_images(back.responses[0])[0].path).resolve() == imgs / "img/0.png"


def test_curate_export_help_names_no_wrong_default() -> None:
    from typer.testing import CliRunner

    from rewardkit.curate.cli import curate_app

    out = CliRunner().invoke(curate_app, ["export", "--help"]).output
    assert "jsonl (default)" not in out


# -- (14) EXIF orientation ----------------------------------------------------------------------
def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    img = Image.new("RGB", (48, 24))
    exif = img.getexif()
    exif[0x0112] = 6
    path = tmp_path / "rot.jpg"
    img.save(path, format="JPEG", exif=exif)
    assert ImageRef(path=str(path)).load().size == (24, 48)


def test_siglip_style_text_towers_are_refused_not_scored_by_batch(tmp_path: Path) -> None:
    """Before: SigLIP (last-position pooling, trained on text padded to a fixed width) scored a
    caption 11.53 beside a longer one and 10.96 alone; the model's own protocol gave -1.06."""
    import torch
    import transformers

    from mm_helpers import tiny_clip_tokenizer
    from rewardkit.registry import load_reward

    tok = tiny_clip_tokenizer()
    small = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1}
    small["num_attention_heads"] = 2
    text = {"vocab_size": len(tok), "max_position_embeddings": 64, "pad_token_id": 1, **small}
    cfg = transformers.SiglipConfig(
        text_config=text, vision_config={"image_size": 32, "patch_size": 8, **small}
    )
    torch.manual_seed(0)
    path = tmp_path / "siglip"
    transformers.SiglipModel(cfg).save_pretrained(path)
    size = {"height": 32, "width": 32}
    image_processor = transformers.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size=size)
    transformers.CLIPProcessor(image_processor=image_processor, tokenizer=tok).save_pretrained(path)
    with pytest.raises(ValueError, match=r"SigLIP-style text tower.*depend on the batch"):
        load_reward(f"clip:{path}", progress=False)


def test_clip_honours_max_length_and_truncation_error(tmp_path: Path) -> None:
    """Before: ``clip:`` always cut captions at its tower's 64 tokens: ``max_length=4`` changed
    nothing and ``truncation=error`` never raised."""
    from mm_helpers import tiny_clip
    from rewardkit.content import image_part
    from rewardkit.engine.truncation import TruncationError
    from rewardkit.registry import load_reward
    from rewardkit.types import user

    model = tiny_clip(tmp_path / "clip")
    png = solid_png(tmp_path / "red.png", (255, 0, 0))
    caption = "a red square on a plain red ground with nothing else in it at all"
    qs = [Query([user(caption)], [image_part(png)])]
    full = load_reward(f"clip:{model}", progress=False, cache_dir=None)
    cut = load_reward(f"clip:{model}?max_length=4", progress=False, cache_dir=None)
    assert cut.max_length == 4 and full.max_length > 4
    assert cut.score_full(qs).truncated.tolist() == [True]
    assert full.score_full(qs).truncated.tolist() == [False]
    assert cut.score(qs)[0] != pytest.approx(full.score(qs)[0], abs=1e-6)
    strict = load_reward(f"clip:{model}?max_length=4&truncation=error", progress=False)
    with pytest.raises(TruncationError, match="over the limit of 4"):
        strict.score(qs)
    assert cut.fingerprint() != full.fingerprint()  # cached scores of one are not the other's
