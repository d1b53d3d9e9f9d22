"""Secrets an endpoint is given — the API key, a URL's ``user:password@`` — kept out of every
text rewardkit shows or stores: names, errors, reports, cache identities.

A server can echo a secret in another spelling than the one sent: JSON escaping (``\\/`` as PHP's
and Java's encoders write ``/``, ``\\u0073``), percent-encoding (``%2B``), HTML character
references, or the base64 of ``user:password`` that Basic auth sends. :class:`Redactor` matches
each character of a secret in any of those spellings, and a text that still holds a secret once
those spellings are decoded is replaced whole.
"""

from __future__ import annotations

import base64
import html
import re
import urllib.parse
from collections.abc import Iterable

#: What replaces a secret.
REDACTED = "[redacted]"

#: Secrets shorter than this are only matched in their exact spellings (a two-letter password,
#: once decoded, is in almost every text: the whole-text fallback would blank every error).
MIN_DECODED_CHECK = 8

#: ``user:password@`` of a URL anywhere in a text (up to the last ``@`` of its authority).
_USERINFO = re.compile(r"(?<=://)[^/?#\s'\"<>]*@")
#: ``name=value`` and ``'name': 'value'`` of an option whose name says it holds a secret.
_SECRET_NAME = (
    r"(?:(?:api_?|access_|secret_|private_)key|(?:access_|auth_|api_|hf_|bearer_)?token"
    r"|(?:client_)?secret|password|passwd)"
)
_SECRET_OPTION = re.compile(rf"(?i)(?<![A-Za-z0-9_])({_SECRET_NAME})=[^&\s'\"]+")
_SECRET_ITEM = re.compile(rf"(?i)(['\"])({_SECRET_NAME})\1(\s*:\s*)(['\"])(.*?)\4")


def display_url(url: str) -> str:
    """``url`` as it may be shown: ``http://[redacted]@host/…`` for ``http://user:pw@host/…``."""
    return _USERINFO.sub(f"{REDACTED}@", url)


def strip_userinfo(url: str) -> str:
    """``url`` without its ``user:password@`` (what names an endpoint in a fingerprint: the
    credentials do not change its answers, as the API key does not)."""
    return _USERINFO.sub("", url)


def redact_spec(text: str) -> str:
    """A reward spec (or its ``repr``) as it may be shown: the ``user:password@`` of its URLs and
    the values of options named like secrets (``api_key=``, ``token=``, ``password=``…) replaced
    by ``[redacted]``; ``api_key_env=`` names a variable and stays, and a bare ``key=`` (the
    ``route`` kind's meta field) is not a secret."""
    text = display_url(text)
    text = _SECRET_OPTION.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    return _SECRET_ITEM.sub(lambda m: f"{m[1]}{m[2]}{m[1]}{m[3]}{m[4]}{REDACTED}{m[4]}", text)


def userinfo(url: str) -> tuple[str, str]:
    """(user, password) of a URL's ``user:password@``, percent-decoded ('' when absent)."""
    parts = urllib.parse.urlsplit(url)
    return (
        urllib.parse.unquote(parts.username or ""),
        urllib.parse.unquote(parts.password or ""),
    )


def _hex(text: str) -> str:
    """A regex matching hex digits ``text`` in either case."""
    return "".join(f"[{d.lower()}{d.upper()}]" if d.isalpha() else d for d in text)


def _char(c: str) -> str:
    """A regex matching one character of a secret as itself or in an escaped spelling."""
    point = ord(c)
    utf8 = "".join("%" + _hex(f"{b:02x}") for b in c.encode("utf-8"))
    alts = [re.escape(c), utf8, f"&#0*{point};", f"&#[xX]0*{_hex(f'{point:x}')};"]
    if point < 0x10000:
        alts.append(r"\\u" + _hex(f"{point:04x}"))
    if point < 0x100:
        alts.append(r"\\x" + _hex(f"{point:02x}"))
    if not c.isalnum():
        alts.append(r"\\" + re.escape(c))  # \/ \" \\ \+
    return "(?:" + "|".join(alts) + ")"


def _spellings(secret: str) -> set[str]:
    """A secret and its base64 forms (standard and URL-safe, with and without padding)."""
    out = {secret}
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        coded = encode(secret.encode("utf-8")).decode("ascii")
        out |= {coded, coded.rstrip("=")}
    return out


_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})|\\x([0-9a-fA-F]{2})")
_BACKSLASH = re.compile(r"\\(.)")


def _decoded(text: str, rounds: int = 3) -> str:
    """``text`` with the spellings :func:`_char` matches decoded, up to ``rounds`` times over
    (a percent-encoded URL inside another is encoded twice), for the last check."""
    for _ in range(rounds):
        before = text
        text = urllib.parse.unquote(text)
        text = html.unescape(text) if "&" in text else text
        if "\\" in text:
            text = _UNICODE_ESCAPE.sub(lambda m: chr(int(m[1] or m[2], 16)), text)
            text = _BACKSLASH.sub(r"\1", text)
        if text == before:
            break
    return text


class Redactor:
    """Replaces secrets in texts (see the module docstring). ``secrets``: the API key, a URL's
    password, ``user:password`` (each also matched as its base64)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret:
                forms |= _spellings(secret)
        ordered = sorted(forms, key=lambda s: (-len(s), s))  # the longest spelling first
        self._pattern = (
            re.compile("|".join("".join(_char(c) for c in f) for f in ordered)) if forms else None
        )
        self._checked = [f for f in ordered if len(f) >= MIN_DECODED_CHECK]

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __call__(self, text: str) -> str:
        """``text`` with every spelling of a secret replaced by ``[redacted]``; the whole text
        replaced when a secret still shows once its escapes are decoded (a double encoding)."""
        if self._pattern is None or not isinstance(text, str) or not text:
            return text
        text = self._pattern.sub(REDACTED, text)
        decoded = _decoded(text) if self._checked else ""
        if any(s in decoded for s in self._checked):
            return f"{REDACTED} (a text that quoted a secret in an encoded form)"
        return text
