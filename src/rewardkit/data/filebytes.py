"""A data file's bytes as the text readers see them: gunzipped, UTF-16/32 re-encoded as UTF-8,
and compressed or binary data where text belongs refused saying what it is
(docs/data-formats.md, Sources)."""

from __future__ import annotations

import codecs
import gzip
import io
import zlib
from pathlib import Path
from typing import IO

from rewardkit.errors import DataError

#: Byte-order marks of the Unicode encodings other than UTF-8 that text exports use (Excel's
#: "Unicode text", PowerShell's ``Out-File``), longest first.
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _bomless_utf16(head: bytes) -> str | None:
    """UTF-16 without a byte-order mark, told by its first two characters being ASCII (a NUL
    byte beside each): ``'{\\x00"\\x00'`` → little-endian. UTF-8 text never starts with NUL."""
    if len(head) < 4:
        return None
    if head[0] and head[2] and not head[1] and not head[3]:
        return "utf-16-le"
    if head[1] and head[3] and not head[0] and not head[2]:
        return "utf-16-be"
    return None


#: Errors of reading a file: OS errors (``gzip.BadGzipFile`` is one), a gzip stream cut short
#: (EOFError) or damaged inside (``zlib.error``).
READ_ERRORS = (OSError, EOFError, zlib.error)

#: How binary data that is not text starts, and what it is (:func:`_binary_kind`).
_MAGIC = (
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data"),
    (b"\xfd7zXZ\x00", "xz-compressed data"),
    (b"BZh", "bzip2-compressed data"),
    (b"PK\x03\x04", "a zip archive"),
    (b"PAR1\x15", "a Parquet file"),
)


def _binary_kind(head: bytes) -> str | None:
    """What binary data starting with ``head`` is (gzip, zstd, xz, bzip2, zip, Parquet), or
    None; bzip2 also needs its block magic, so a CSV column named ``BZh…`` is text."""
    for magic, what in _MAGIC:
        if head.startswith(magic) and (magic != b"BZh" or head[4:10] == b"1AY&SY"):
            return what
    return None


def _raw_open(path: Path) -> IO[bytes]:
    """The file's bytes, gunzipped for a ``.gz`` name; a ``.gz`` file that is another kind of
    compressed data (zstd under a ``.gz`` name) is a :class:`DataError` saying which."""
    if not path.name.lower().endswith(".gz"):
        return path.open("rb")
    with path.open("rb") as fh:
        what = _binary_kind(fh.read(10))
    if what is not None and what != "gzip-compressed data":
        raise DataError(f"the file is named .gz but holds {what}, not gzip", path=str(path))
    return gzip.open(path, "rb")  # type: ignore[return-value]


def _not_text(path: Path, what: str) -> DataError:
    """The error for binary data where text belongs (``what`` from :func:`_binary_kind`)."""
    if path.name.lower().endswith(".gz"):
        reason = f"expected text inside the gzip data, but it holds {what}; decompress it first"
    else:
        reason = f"expected text, but the file is {what}; decompress or convert it first"
        if what == "gzip-compressed data":
            reason += f" (or name it {path.name}.gz)"
    return DataError(reason, path=str(path))


def open_bytes(path: Path) -> IO[bytes]:
    """The file's bytes (gunzipped); a UTF-16/32 file (with a byte-order mark, or UTF-16 that
    starts with ASCII) is decoded and handed on as UTF-8, so every reader sees UTF-8
    (docs/data-formats.md, Sources). Compressed or binary data where text belongs (a gzip file
    without its ``.gz`` name, gzip inside gzip) is a :class:`DataError` saying what it is."""
    fh = _raw_open(path)
    peeked = fh.peek(10)[:10] if hasattr(fh, "peek") else b""
    what = _binary_kind(peeked)
    if what is not None:
        fh.close()
        raise _not_text(path, what)
    head = peeked[:4]
    encoding = next((enc for bom, enc in _WIDE_BOMS if head.startswith(bom)), None)
    encoding = encoding or _bomless_utf16(head)
    if encoding is None:
        return fh
    with fh:
        raw = fh.read()
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        raise DataError(
            f"expected {encoding.upper()} text (the file starts like it), got "
            f"invalid bytes {raw[e.start : e.start + 4]!r} at byte {e.start}",
            path=str(path),
        ) from None
    return io.BytesIO(text.removeprefix("\ufeff").encode("utf-8"))
