"""API keys as HTTP carries them: the one check the server, its client and remote endpoints share."""

from __future__ import annotations

import re

_KEY_CHARS = re.compile(r"[!-~]+")  # visible ASCII: what an HTTP header carries unchanged


def check_api_key(api_key: str | None) -> None:
    """Refuse an API key no request could present: blank, padded with whitespace, or holding a
    character outside visible ASCII (headers travel as latin-1, so ``clé`` sent as UTF-8 would
    never match, and a client could not even encode ``€``). None means no key."""
    if api_key is None:
        return
    if not api_key.strip():
        raise ValueError("the API key is empty or whitespace; give a real key or none")
    if api_key != api_key.strip():
        raise ValueError("the API key has leading or trailing whitespace; remove it")
    if not _KEY_CHARS.fullmatch(api_key):
        bad = next(c for c in api_key if not _KEY_CHARS.fullmatch(c))
        raise ValueError(
            f"the API key holds {bad!r}: use visible ASCII characters only (letters, digits, "
            "punctuation), which every HTTP client sends unchanged in a header"
        )
