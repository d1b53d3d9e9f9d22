"""The one content-part reader (rewardkit.content_parts) and its three callers, and
ImageRef.remember_digest (the digest read_failure keeps from its one read of a URL)."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

import rewardkit.content
from mm_helpers import solid_png
from rewardkit.content import ImageRef, has_images
from rewardkit.content_parts import (
    IMAGE_TOKEN,
    TEXT_PART_TYPES,
    PartError,
    content_text,
    read_text_parts,
)
from rewardkit.evaluate.multimodal import read_failure
from rewardkit.integrations._common import text_of
from rewardkit.serve.protocol import ChatMessage, parts_text

IMAGE = {"type": "image_url", "image_url": {"url": "http://example.invalid/cat.png"}}
MIXED = ["a", {"type": "text", "text": "b"}, IMAGE, {"type": "output_text", "text": "c"}]


# -- the reader -------------------------------------------------------------------------------
def test_image_policy_token_skip_refuse() -> None:
    assert read_text_parts(MIXED, on_image="token") == "a\nb\n<image>\nc"
    assert read_text_parts(MIXED, on_image="token", image_token="[I]") == "a\nb\n[I]\nc"
    assert read_text_parts(MIXED, on_image="skip") == "a\nb\nc"
    with pytest.raises(PartError) as e:
        read_text_parts(MIXED, on_image="refuse")
    assert (e.value.index, e.value.part, e.value.problem) == (2, IMAGE, "image")
    with pytest.raises(ValueError, match="on_image must be one of token, skip, refuse"):
        read_text_parts(MIXED, on_image="drop")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("parts", "index", "problem"),
    [
        (["a", 5], 1, "not_a_part"),
        ([None], 0, "not_a_part"),
        (["a", "b", {"type": "text", "text": None}], 2, "bad_text"),
        ([{"type": "input_text"}], 0, "bad_text"),
        ([{"text": 3}], 0, "bad_text"),  # untyped reads as text by default
    ],
)
def test_strict_refuses_malformed_parts_with_where(parts, index, problem) -> None:
    with pytest.raises(PartError) as e:
        read_text_parts(parts, on_image="skip")
    assert (e.value.index, e.value.problem) == (index, problem)
    assert e.value.part is parts[index]
    assert str(e.value).startswith(f"content[{index}] ")


def test_lenient_reads_what_strict_refuses() -> None:
    parts = ["a", 5, {"type": "text", "text": None}, {"type": "text"}, {"text": "untyped"}]
    assert read_text_parts(parts, strict=False, default_type=None) == (
        "a\n<image>\nNone\n\n<image>"
    )


def test_dict_type_names_what_a_dict_part_is() -> None:
    proxy = MappingProxyType({"type": "text", "text": "m"})
    assert read_text_parts([proxy]) == "m"
    with pytest.raises(PartError) as e:
        read_text_parts(["a", proxy], dict_type=dict)
    assert (e.value.index, e.value.problem) == (1, "not_a_part")


# -- the three callers ------------------------------------------------------------------------
text_parts = st.lists(
    st.one_of(
        st.text(max_size=8),
        st.builds(
            lambda t, k: {"type": k, "text": t},
            st.text(max_size=8),
            st.sampled_from(TEXT_PART_TYPES),
        ),
    ),
    min_size=1,
    max_size=6,
)


@given(text_parts)
def test_callers_read_text_parts_alike(parts) -> None:
    expected = "\n".join(p if isinstance(p, str) else p["text"] for p in parts)
    assert content_text(parts) == text_of(parts) == parts_text(parts) == expected


def test_each_caller_keeps_its_image_policy() -> None:
    assert content_text(MIXED) == "a\nb\n<image>\nc"
    assert content_text(MIXED, image_token=None) == "a\nb\nc"
    assert text_of(MIXED) == "a\nb\nc"
    with pytest.raises(ValueError) as e:
        parts_text(MIXED)
    assert str(e.value) == (
        "content[2] is a 'image_url' part: the server reads text parts "
        "(text, input_text, output_text) with a string 'text'"
    )
    assert not isinstance(e.value, PartError)  # the caller's own error, not the reader's
    with pytest.raises(ValueError, match="content is an empty list of parts"):
        parts_text([])


def test_content_text_reads_an_untyped_dict_as_an_image_as_has_images_does() -> None:
    part = {"text": "no type"}
    assert content_text([part]) == IMAGE_TOKEN
    assert has_images([part])
    assert text_of([part]) == "no type"  # the adapters read an untyped part as text
    assert content_text({"type": "text", "text": 7}) == "7"  # one part, lenient


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (["a", 5], "prompt[0].content[1] is int: a content part is text or a dict with a type"),
        (
            [{"type": "text", "text": None}],
            "prompt[0].content[0] is a text part whose text is NoneType, not a string",
        ),
        ({"type": "text", "text": "x"}, "prompt[0].content is dict: message content is text"),
    ],
)
def test_text_of_type_errors_name_the_part(content, message) -> None:
    with pytest.raises(TypeError) as e:
        text_of(content, "prompt[0].content")
    assert str(e.value).startswith(message)
    assert e.value.__cause__ is None and not isinstance(e.value, PartError)


@pytest.mark.parametrize(
    ("part", "kind"),
    [
        (5, "'int'"),
        ({"type": "text", "text": 1}, "'text'"),
        (MappingProxyType({}), "'mappingproxy'"),
    ],
)
def test_chat_message_refuses_what_the_server_cannot_read(part, kind) -> None:
    with pytest.raises(ValueError, match=rf"content\[1\] is a {kind} part: the server reads"):
        ChatMessage.model_validate({"role": "user", "content": ["ok", part]})
    assert ChatMessage.model_validate({"role": "user", "content": ["a", "b"]}).content == "a\nb"


def test_content_still_exports_content_text() -> None:
    assert rewardkit.content.content_text is content_text


# -- ImageRef.remember_digest -----------------------------------------------------------------
def test_remember_digest_is_the_digest_imageref_computes(tmp_path: Path) -> None:
    path = solid_png(tmp_path / "a.png", (10, 200, 30))
    raw = Path(path).read_bytes()
    own = ImageRef(path=path).digest()
    kept = ImageRef(path=path)
    kept.remember_digest(raw)
    Path(path).unlink()  # the kept digest reads nothing
    assert kept.digest() == own == ImageRef(data=raw).digest() == hashlib.sha256(raw).hexdigest()
    kept.remember_digest(b"other bytes")  # once known, it stays
    assert kept.digest() == own


def test_remember_digest_refuses_a_pil_image(tmp_path: Path) -> None:
    from PIL import Image

    ref = ImageRef(pil=Image.new("RGB", (2, 2)))
    with pytest.raises(ValueError, match="hashes its pixels"):
        ref.remember_digest(b"png bytes")


def test_read_failure_downloads_a_url_once_and_keeps_its_digest(tmp_path: Path) -> None:
    raw = Path(solid_png(tmp_path / "u.png", (0, 0, 255))).read_bytes()
    gets: list[str] = []

    class Serve(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            gets.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Serve)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        ref = ImageRef(path=f"http://127.0.0.1:{server.server_address[1]}/u.png")
        assert read_failure(ref) is None
        assert ref.digest() == ImageRef(data=raw).digest()
        assert gets == ["/u.png"]  # hashing did not download it again
    finally:
        server.shutdown()
        server.server_close()
