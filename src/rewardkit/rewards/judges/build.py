"""Registry factories of the judge kinds: one spec, the backend chosen by its ARG.

``judge:default`` / ``judge:PATH_OR_ID`` run a local causal LM (torch imported then);
``judge:openai://HOST:PORT/v1?model=NAME`` (``openai+https://`` for TLS; a plain ``http://`` or
``https://`` URL means the same) or a dict with ``base_url`` and ``model`` run the same kind on
an OpenAI-compatible endpoint (docs/judges.md).
"""

from __future__ import annotations

from typing import Any

from rewardkit.types import Reward


def _build(kind: str, arg: str | None, options: dict[str, Any]) -> Reward:
    from rewardkit.rewards.judges.http import build_http, is_http_spec

    if is_http_spec(arg, options):
        return build_http(kind, arg, **options)
    from rewardkit.rewards.judges import local

    factory = {
        "judge": local.build,
        "judge-pairwise": local.build_pairwise,
        "judge-rating": local.build_rating,
        "judge-listwise": local.build_listwise,
    }[kind]
    return factory(arg, **options)


def judge(arg: str | None, **options: Any) -> Reward:
    """``judge:`` — the yes/no judge."""
    return _build("judge", arg, options)


def pairwise(arg: str | None, **options: Any) -> Reward:
    """``judge-pairwise:`` — the pairwise judge, both orders."""
    return _build("judge-pairwise", arg, options)


def rating(arg: str | None, **options: Any) -> Reward:
    """``judge-rating:`` — the 1–10 rating judge."""
    return _build("judge-rating", arg, options)


def listwise(arg: str | None, **options: Any) -> Reward:
    """``judge-listwise:`` — the listwise judge."""
    return _build("judge-listwise", arg, options)
