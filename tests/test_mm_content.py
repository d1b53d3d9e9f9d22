"""Image content parts: ImageRef forms, digests, normalisation, and text-only rewards' guard."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from rewardkit.content import (
    ImageContentError,
    ImageError,
    ImageRef,
    as_image_ref,
    content_images,
    content_text,
    has_images,
    image_part,
    normalize_content,
    to_jsonable,
)
from rewardkit.errors import DataError
from rewardkit.registry import load_reward
from rewardkit.types import Query, prompt_text, stable_hash, user


def _png(path, rgb=(200, 10, 10), size=6) -> str:
    Image.new("RGB", (size, size), rgb).save(path)
    return str(path)


def test_imageref_forms_load_and_digest(tmp_path) -> None:
    p = _png(tmp_path / "a.png")
    raw = (tmp_path / "a.png").read_bytes()
    by_path, by_bytes = ImageRef(path=p), ImageRef(data=raw)
    by_pil = ImageRef(pil=Image.open(p).convert("RGB"))
    assert by_path.digest() == by_bytes.digest()  # same encoded bytes, same digest
    assert by_pil.digest() == ImageRef(pil=Image.new("RGB", (6, 6), (200, 10, 10))).digest()
    assert by_pil.digest() != ImageRef(pil=Image.new("RGB", (6, 6), (0, 10, 10))).digest()
    for ref in (by_path, by_bytes, by_pil):
        img = ref.load()
        assert img.mode == "RGB" and img.size == (6, 6)
        assert img.getpixel((0, 0)) == (200, 10, 10)
    assert ImageRef.from_json(by_bytes.to_json()).digest() == by_path.digest()
    assert by_path.to_json() == {"path": p}
    with pytest.raises(ValueError, match="exactly one"):
        ImageRef(path=p, data=raw)


def test_missing_and_corrupt_images_name_the_file_and_origin(tmp_path) -> None:
    missing = ImageRef(path=str(tmp_path / "nope.png"), origin="pairs.jsonl, line 3")
    with pytest.raises(ImageError, match=r"pairs.jsonl, line 3: image file not found: .*nope.png"):
        missing.load()
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageError, match=r"cannot decode image .*bad.png") as e:
        ImageRef(path=str(bad), origin="x.jsonl, line 9").load()
    assert isinstance(e.value, DataError) and e.value.origin == "x.jsonl, line 9"


def test_image_part_accepts_openai_hf_and_mmrb2_forms(tmp_path) -> None:
    p = _png(tmp_path / "a.png")
    raw = (tmp_path / "a.png").read_bytes()
    url = "data:image/png;base64," + base64.b64encode(raw).decode()
    forms = [
        p,
        raw,
        Image.open(p),
        ImageRef(path=p),
        {"type": "image_url", "image_url": {"url": url}},
        {"type": "image_url", "image_url": {"url": "file://" + p}},
        {"type": "image", "image": p},
        {"type": "image", "path": p},
        {"type": "image", "url": p},
    ]
    digests = set()
    for f in forms:
        part = image_part(f)
        assert part["type"] == "image" and isinstance(part["image"], ImageRef)
        digests.add(part["image"].digest())
    assert len(digests) == 2  # the file's bytes, and the PIL form's pixels
    content = normalize_content(
        [["text", "Which is red?"], ["image", "a.png"], {"type": "text", "text": "Answer."}],
        base_dir=tmp_path,
    )
    assert content_text(content) == "Which is red?\n<image>\nAnswer."
    assert content_text(content, image_token=None) == "Which is red?\nAnswer."
    assert [i.path for i in content_images(content)] == [p]
    assert has_images(content) and not has_images("text")
    assert normalize_content("plain") == "plain"
    assert to_jsonable(content)[1] == {"type": "image", "image": {"path": p}}
    with pytest.raises(ImageError, match="unsupported data URL"):
        image_part({"type": "image_url", "image_url": {"url": "data:image/png,abc"}})


def test_text_keys_unchanged_and_images_hash_by_digest(tmp_path) -> None:
    # A text query's key is the sha256 of its canonical JSON, exactly as before images existed.
    q = Query([user("hi")], "there", reference="x")
    import hashlib
    import json

    payload = {"p": q.prompt, "r": q.response, "ref": q.reference}
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert q.key() == hashlib.sha256(text.encode()).hexdigest()[:32]
    # The same image at two paths (or as bytes) gives the same key; another image does not.
    a1, a2 = _png(tmp_path / "a1.png"), _png(tmp_path / "a2.png")
    b = _png(tmp_path / "b.png", rgb=(0, 0, 255))
    key = lambda x: Query([user("draw")], [image_part(x)]).key()  # noqa: E731
    assert key(a1) == key(a2) == key((tmp_path / "a1.png").read_bytes())
    assert key(a1) != key(b)
    assert stable_hash([ImageRef(path=a1)]) == stable_hash([{"image": ImageRef(path=a1).digest()}])
    assert (
        prompt_text([user([image_part(a1), {"type": "text", "text": "What?"}])]) == "<image>\nWhat?"
    )


def test_text_rewards_reject_image_responses_and_read_image_prompts_as_text(tmp_path) -> None:
    p = _png(tmp_path / "a.png")
    length = load_reward("rule:length")
    with pytest.raises(ImageContentError, match=r"'rule:length' reads text only.*example 'e1'"):
        length.score([Query([user("draw")], [image_part(p)], meta={"example_id": "e1"})])
    em = load_reward("rule:exact_match")
    q = Query([user([image_part(p), {"type": "text", "text": "Colour?"}])], "Red", reference="red")
    assert em.score([q]).tolist() == [1.0]
    # text-only part lists are read as their text
    assert length.score([Query([user("x")], [{"type": "text", "text": "abcd"}])])[0] == 4.0
    assert np.isfinite(length.score([Query([user("x")], "abc")])).all()


def test_pil_in_memory_roundtrip() -> None:
    img = Image.new("RGB", (3, 3), (1, 2, 3))
    ref = image_part(img)["image"]
    data = base64.b64decode(ref.to_json()["data"])
    assert Image.open(io.BytesIO(data)).getpixel((1, 1)) == (1, 2, 3)


def test_hf_image_bytes_that_are_not_bytes_name_the_record():
    """An HF ``Image`` feature whose ``bytes`` holds text (a JSON export of it) is an
    ImageError naming the record, not a TypeError."""
    with pytest.raises(ImageError, match=r"rows.jsonl:4.*'bytes' holding str"):
        as_image_ref({"bytes": "iVBORw0KGgo", "path": None}, origin="rows.jsonl:4")
    assert as_image_ref({"bytes": b"\x89PNG", "path": None}).data == b"\x89PNG"
