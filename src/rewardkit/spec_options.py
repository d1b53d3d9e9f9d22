"""How a spec's options are checked and named: an option a kind does not take is refused
naming the ones it takes (:func:`option_error`, :func:`refuse_options`), and options given to
``load_reward`` over a spec's own are in the reward's name (:func:`overridden`)."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from rewardkit.errors import SpecError


def option_error(exc: TypeError, kind: str) -> str:
    """A factory's ``TypeError`` in a user's words: an option the kind does not take is named
    as such (not as a Python class's keyword argument); anything else is passed on."""
    found = re.search(r"unexpected keyword argument '([^']+)'", str(exc))
    if found is None:
        return str(exc)
    return _unknown_options([found.group(1)], kind, _refusing_options(exc) or None)


class UnknownOptionError(SpecError):
    """Options a kind does not take (:func:`refuse_options`); the registry names the spec."""


def refuse_options(options: Mapping[str, Any], kind: str, known: list[str]) -> None:
    """Refuse the ``options`` a factory left over, naming those ``kind`` takes (``known``; the
    engine options too where it uses the engine), as :func:`option_error` does."""
    if options:
        raise UnknownOptionError(_unknown_options(sorted(options), kind, known))


def _unknown_options(names: list[str], kind: str, known: list[str] | None) -> str:
    engine = _uses_engine(kind)
    listed = ", ".join(known or []) + (" and the engine options" if known and engine else "")
    listed = listed if known else ("only the engine options" if engine else "none")
    listed = f"; known: {listed}" if known is not None else ""
    return (
        f"unknown option{'s' * (len(names) > 1)} {', '.join(map(repr, names))} for {kind!r} "
        f"rewards{listed} (`rewardkit rewards list` and docs/reward-specs.md list each kind's "
        "options)"
    )


def _refusing_options(exc: TypeError) -> list[str]:
    """The options the callable that refused a keyword in ``exc`` takes (its optional keyword
    parameters, ``…`` when it also takes ``**kwargs``), found by the name the message gives
    (``LengthReward.__init__()``) where the call was made; [] when it cannot be found."""
    named = re.match(r"([\w.]+)\(\) got an unexpected keyword", str(exc))
    if named is None:
        return []
    qualname = named.group(1).removesuffix(".__init__")
    frames, tb = [], exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):  # the innermost frame made the call
        for value in (*frame.f_locals.values(), *frame.f_globals.values()):
            if callable(value) and getattr(value, "__qualname__", None) == qualname:
                return _keyword_options(value)
    return []


def _keyword_options(target: Callable[..., Any]) -> list[str]:
    """The optional keyword parameters of ``target`` (a class: its constructor's)."""
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return []
    named = [
        p.name
        for p in params
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.default is not p.empty
        and not p.name.startswith("_")
        # the engine options (listed as such), and what the registry passes composites itself
        and p.name not in ("config", "engine_defaults", "base_dir")
    ]
    return named + (["…"] if any(p.kind is p.VAR_KEYWORD for p in params) else [])


def overridden(
    label: str, written: Mapping[str, Any], overrides: Mapping[str, Any], text: bool
) -> str:
    """``label`` with the ``overrides`` that change what is scored: a string spec's own option
    replaced (``load_reward("rule:length?unit=words", unit="chars")`` is named
    ``rule:length?unit=chars``, not the words it no longer counts), others appended; an engine
    option is named only where it replaces the spec's own (``progress=False`` is not)."""
    from rewardkit.engine.config import EngineConfig

    engine = EngineConfig.__dataclass_fields__  # how it runs (progress=False), as engine_defaults
    changed = {
        k: v
        for k, v in overrides.items()
        if (k not in written and k not in engine) or (k in written and _differ(written[k], v))
    }
    if not changed:
        return label
    head, _, query = label.partition("?") if text and isinstance(label, str) else (label, "", "")
    kept = [p for p in query.split("&") if p and p.partition("=")[0].strip() not in changed]
    return head + "?" + "&".join(kept + [f"{k}={_option_text(v)}" for k, v in changed.items()])


def _differ(a: Any, b: Any) -> bool:
    try:
        return a is not b and bool(a != b)
    except (TypeError, ValueError):  # arrays and the like: compared as objects
        return True


def _option_text(value: Any) -> str:
    """An option value as the grammar writes it (``true``, ``none``, ``3``, text as is)."""
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, default=repr, ensure_ascii=False)


def _uses_engine(kind: str) -> bool:
    from rewardkit.registry import _KINDS  # registered there; imported when an error is made

    return _KINDS.get(kind) is not None and _KINDS[kind].uses_engine
