"""What an endpoint needs besides ``base_url``: a fixed query on every request, the header the
API key goes in, and fixed extra headers — each checked when the reward is built.

- ``query`` (``{"api-version": "2024-06-01"}``: Azure OpenAI) is added to every request's path
  (``/chat/completions?api-version=2024-06-01``). Its values are not secrets — they are shown
  and part of the reward's fingerprint —, so a parameter named like a credential (``key``,
  ``api-key``, ``token``, ``sig``…) is refused: the key goes in a header, from ``api_key_env``.
- ``api_key_header`` names the header the key from ``api_key_env`` is sent in: ``Authorization``
  (the default) as ``Bearer KEY``, any other (``api-key``: Azure OpenAI) as the bare key.
- ``headers`` (``{"HTTP-Referer": …, "X-Title": …}``: OpenRouter) are sent with every request;
  a header that carries a credential (``Authorization``, ``api-key``, ``Cookie``…) is refused,
  as is one the client sets itself (``Host``, ``Content-Length``…).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rewardkit.remote.config import RemoteConfigError

#: The default key header; the key goes in it as ``Bearer KEY``.
BEARER_HEADER = "Authorization"
#: A header name (RFC 9110 token characters).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}")
#: A query parameter name as accepted (and shown): letters, digits and ``-_.~[]``.
_PARAM = re.compile(r"[A-Za-z0-9_.~\-\[\]]{1,64}")
#: Words that mark a query parameter or header name as a credential's.
_SECRET_WORDS = frozenset(
    [
        "key",
        "apikey",
        "token",
        "sig",
        "signature",
        "secret",
        "password",
        "passwd",
        "pwd",
        "auth",
        "authorization",
        "cookie",
        "credential",
        "credentials",
        "sas",
        "session",
        "bearer",
        "jwt",
    ]
)
#: Headers that carry credentials whatever their words (and their names run together).
_CREDENTIAL_HEADERS = frozenset(
    [
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "api-key",
        "x-api-key",
        "apikey",
        "x-auth-token",
        "ocp-apim-subscription-key",
        "x-goog-api-key",
    ]
)
#: Headers the client writes itself (a copy would contradict the request it sends).
_CLIENT_HEADERS = frozenset(
    [
        "host",
        "content-length",
        "content-type",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "accept-encoding",
        "te",
        "upgrade",
        "keep-alive",
        "trailer",
        "expect",
    ]
)
#: A fixed value as sent: visible ASCII and inner spaces (headers travel as latin-1).
_VALUE = re.compile(r"[!-~]+(?: +[!-~]+)*")


def _secret_name(name: str) -> bool:
    """Whether ``name`` reads like a credential's (``api-key``, ``access_token``, ``sig``,
    ``subscriptionKey``, ``X-Auth-Token``)."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).lower()
    words = [w for w in re.split(r"[^a-z0-9]+", spaced) if w]
    joined = "".join(words)
    secret = any(w in _SECRET_WORDS for w in words) or joined == "code"  # Azure Functions' key
    return secret or joined.endswith(("key", "token", "secret"))


def _text(where: str, value: Any) -> str:
    """A fixed value as text: a string (an int, e.g. YAML's ``2024``, as its digits)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _VALUE.fullmatch(value):
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:60] + "…"
        raise RemoteConfigError(
            f"{where}={shown}: expected non-empty text of visible ASCII characters and inner "
            "spaces (no control characters, no surrounding whitespace)"
        )
    return value


def _mapping(option: str, value: Any) -> Mapping[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RemoteConfigError(
            f"{option}: expected a mapping of name → value (in a YAML or JSON spec file), got "
            f"{type(value).__name__}"
        )
    return value


def check_query(query: Any) -> dict[str, str]:
    """``query`` as ``{name: value}`` text, sorted by name; a name that is not a plain parameter
    name or reads like a credential's, or a value that is not plain text, is a
    :class:`RemoteConfigError` naming it (never showing a refused parameter's value)."""
    out: dict[str, str] = {}
    for name, value in _mapping("query", query).items():
        if not isinstance(name, str) or not _PARAM.fullmatch(name):
            raise RemoteConfigError(
                f"query: parameter name {str(name)[:40]!r} is not a plain name (letters, digits, "
                "-_.~[])"
            )
        if _secret_name(name):
            raise RemoteConfigError(
                f"query: parameter {name!r} looks like a credential, and query values are shown "
                "and stored in the reward's fingerprint: put the key in an environment variable, "
                "name it with api_key_env=NAME, and its header with api_key_header= (e.g. "
                "api-key)"
            )
        out[name] = _text(f"query[{name!r}]", value)
    return dict(sorted(out.items()))


def check_key_header(name: Any, api_key_env: str | None) -> str:
    """The header the API key goes in (:data:`BEARER_HEADER` when None)."""
    if name is None or (isinstance(name, str) and name.lower() == BEARER_HEADER.lower()):
        return BEARER_HEADER
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        raise RemoteConfigError(
            f"api_key_header={str(name)[:40]!r}: expected a header name (letters, digits, -)"
        )
    if name.lower() in _CLIENT_HEADERS:
        raise RemoteConfigError(f"api_key_header={name!r}: the client writes that header itself")
    if not api_key_env:
        raise RemoteConfigError(
            f"api_key_header={name!r} names where the API key goes, but no key is given: add "
            "api_key_env=NAME (the environment variable holding it)"
        )
    return name


def check_headers(headers: Any, key_header: str = BEARER_HEADER) -> dict[str, str]:
    """``headers`` as ``{name: value}`` text, sorted by name; a name that carries a credential
    (Authorization, api-key, Cookie…), one the client writes itself, the key's header or a name
    given twice in other case is a :class:`RemoteConfigError` (never showing its value)."""
    out: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in _mapping("headers", headers).items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise RemoteConfigError(
                f"headers: {str(name)[:40]!r} is not a header name (letters, digits, -)"
            )
        low = name.lower()
        if low in _CREDENTIAL_HEADERS or _secret_name(name) or low == key_header.lower():
            raise RemoteConfigError(
                f"headers: {name!r} carries a credential, and header values are shown and "
                "stored in the reward's fingerprint: put the key in an environment variable, "
                "name it with api_key_env=NAME, and the header it goes in with api_key_header="
            )
        if low in _CLIENT_HEADERS:
            raise RemoteConfigError(f"headers: {name!r} is written by the client itself")
        if low in seen:
            raise RemoteConfigError(f"headers: {name!r} is given twice (header names ignore case)")
        seen.add(low)
        out[name] = _text(f"headers[{name!r}]", value)
    return dict(sorted(out.items()))


def key_header_value(key_header: str, api_key: str) -> str:
    """What the key's header holds: ``Bearer KEY`` in Authorization, else the bare key."""
    return f"Bearer {api_key}" if key_header == BEARER_HEADER else api_key


def with_api_version(query: Any, api_version: Any) -> Any:
    """``query`` with ``api-version`` set from the ``api_version=`` shorthand (a spec string's
    way to Azure's ``?api-version=…``); given in both is an error."""
    if api_version is None:
        return query
    given = dict(_mapping("query", query))
    if "api-version" in given:
        raise RemoteConfigError("api_version= and query['api-version'] both given: give one")
    version = str(api_version) if isinstance(api_version, float) else api_version
    return {**given, "api-version": version}


def with_query(path: str, query: Mapping[str, str]) -> str:
    """``path`` with ``query`` appended, after a query it already holds (``/x?page=1&v=2``)."""
    if not query:
        return path
    import urllib.parse

    return path + ("&" if "?" in path else "?") + urllib.parse.urlencode(query)
