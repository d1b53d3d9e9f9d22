"""One registry builds every reward from a spec: ``load_reward("classifier:PATH")``.

Spec grammar (see ``docs/reward-specs.md``)::

    spec    := KIND [":" ARG] ["?" OPTION ("&" OPTION)*]
    OPTION  := NAME "=" VALUE          (VALUE parsed as int, float, true/false, none, or text)

or a dict ``{"type": KIND, "arg": ARG, **options}`` (``model``/``path`` are accepted as the ARG
key), or a path to a ``.yaml``/``.yml``/``.json`` file holding such a dict (YAML read with
YAML 1.2 scalars: ``no`` and ``1:30`` are text; a key given twice is an error, as in JSON).

Composite kinds (``ensemble``, ``weighted``; see ``docs/composition.md``) are built from other
specs: ``{"ensemble": [SPEC, ...], "aggregate": "mean_minus_std"}`` is short for
``{"type": "ensemble", "members": [SPEC, ...], ...}``. Their factories also receive the
``engine_defaults`` (for their members) and ``base_dir`` (the directory of the spec file, against
which relative file members are resolved).

Factories are named as ``"module:function"`` strings and imported only when a spec of their kind
is built, so ``import rewardkit`` never imports torch.
"""

from __future__ import annotations

import errno
import importlib
import math
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardkit.errors import SpecError, switch
from rewardkit.spec_options import (  # noqa: F401 (refuse_options: the factories' import)
    UnknownOptionError,
    option_error,
    overridden,
    refuse_options,
)
from rewardkit.types import Reward


@dataclass(frozen=True)
class RewardKind:
    """A registered kind of reward."""

    kind: str
    factory: str  # "module:function"; called as function(arg, **options) -> Reward
    description: str
    card: str | None = None  # method card (docs/methods/), e.g. "B3 — Generative yes-token reward"
    arg_help: str | None = None  # what ARG means, e.g. "PATH_OR_ID"
    uses_engine: bool = False  # takes the scoring engine's options (token_budget, dtype, ...)
    #: Built from other specs (``{KIND: members, ...}``); arg_help then shows the dict form.
    composite: bool = False
    #: The options of the kind's endpoint form (``judge:openai://…``), which reads its own set;
    #: None when the kind has no endpoint form.
    endpoint_help: str | None = None


_KINDS: dict[str, RewardKind] = {}
#: Builds run one at a time: the same model loaded by parallel threads (verl's reward loop builds
#: from its worker threads) came out scoring wrong. Re-entrant: composites build their members.
_BUILD = threading.RLock()


def register(
    kind: str,
    factory: str,
    description: str,
    card: str | None = None,
    arg_help: str | None = None,
    uses_engine: bool = False,
    composite: bool = False,
    endpoint_help: str | None = None,
) -> None:
    """Register a kind of reward under ``kind`` (``factory`` is imported lazily).

    A ``composite`` kind is built from member specs: a dict ``{kind: MEMBERS, **options}`` reaches
    its factory as ``factory(None, members=MEMBERS, engine_defaults=..., base_dir=..., **options)``.
    """
    _KINDS[kind] = RewardKind(
        kind, factory, description, card, arg_help, uses_engine, composite, endpoint_help
    )


def kinds() -> list[RewardKind]:
    """Every registered kind, sorted by name."""
    return [_KINDS[k] for k in sorted(_KINDS)]


#: On/off options of the built-in kinds. The grammar reads only ``true``/``false`` as booleans
#: (``pattern=yes`` is the text "yes"); a text value of one of these is read as a switch
#: (:func:`rewardkit.errors.switch`: also ``yes``/``no``, ``1``/``0``), so that
#: ``trust_remote_code=no`` is off (a non-empty text is true to Python).
SWITCHES = frozenset(
    {
        "trust_remote_code", "progress", "attention_aware", "use_chat_template",
        "weak_chat_template", "strong_chat_template", "ref_chat_template", "answer_tag", "fence",
        "stemmer", "smooth", "allow_network", "allow_subprocess", "allow_in_process", "strict",
        "fast", "squash", "whole_words", "use_namespaces", "lowercase", "logprobs", "formats",
        "finite_only", "early_stop", "copies", "condition_weak", "append_eos", "activation",
    }
)  # fmt: skip
#: Longest spec echoed whole in an error message (a 200 kB spec is shown by its start).
SHOWN_CHARS = 200
#: Deepest chain of spec files naming spec files.
MAX_SPEC_FILES = 32


def shown(spec: Any) -> str:
    """``spec`` as an error message quotes it: ``repr`` with its secrets redacted (a URL's
    ``user:password@``, ``api_key=``-like option values), cut to :data:`SHOWN_CHARS`
    characters with the full length after it."""
    from rewardkit.secrets import redact_spec

    text = redact_spec(repr(spec))
    if len(text) <= SHOWN_CHARS:
        return text
    return f"{text[:SHOWN_CHARS]}… ({len(text):,} chars)"


def _parse_value(text: str) -> Any:
    """A spec VALUE: int, float, ``true``/``false``, ``none``, else the text itself. A word
    stays text even where Python reads it as a float (``nan``, ``inf``, ``infinity``): an
    option whose choices are words (``prm:…?cut=nan``, ``judge:…?unparsed=nan``) gets the
    word it was given; a numeric option still converts it (``float("nan")``). Only a plain
    numeral is a number (:data:`_INT`, :data:`_FLOAT`): ``007``, ``1_000``, ``١٢٣`` and ``1e400``
    (past float's range) stay text, so a text option (``pal:…?user=007``, ``pattern=``) gets
    them as written instead of a different number's digits."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text) and math.isfinite(number := float(text)):
        return number
    return text


#: The numerals the grammar converts: ASCII digits, no leading zeros (``user=007`` stays the
#: text "007", where Python's ``int`` made it 7), no ``_`` separators, no other scripts' digits.
_INT = re.compile(r"[+-]?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[+-]?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def parse_spec(spec: str) -> tuple[str, str | None, dict[str, Any]]:
    """Split a string spec into (kind, arg, options)."""
    spec = spec.strip()
    if not spec:
        raise SpecError("empty reward spec; expected KIND[:ARG], e.g. 'rule:length'")
    head, _, query = spec.partition("?")
    kind, sep, arg = head.partition(":")
    options: dict[str, Any] = {}
    if query:
        for part in query.split("&"):
            if not part:
                continue
            name, eq, value = part.partition("=")
            if not eq or not name:
                raise SpecError(
                    f"reward spec {shown(spec)}: option {shown(part)} is not NAME=VALUE"
                )
            if name.strip() in options:
                raise SpecError(
                    f"reward spec {shown(spec)}: option {shown(name.strip())} is given twice"
                )
            options[name.strip()] = _parse_value(value.strip())
    return kind.strip(), (arg.strip() if sep else None), options


def _from_mapping(spec: Mapping[str, Any]) -> tuple[str, str | None, dict[str, Any]]:
    options = dict(spec)
    kind = options.pop("type", None) or options.pop("kind", None)
    shorthand = [k for k, entry in _KINDS.items() if entry.composite and k in options]
    if len(shorthand) > 1:
        raise SpecError(
            f"reward spec {shown(dict(spec))} names several composite kinds "
            f"({', '.join(shorthand)}); nest one inside the other instead"
        )
    if shorthand:
        key = shorthand[0]
        if kind and kind != key:
            raise SpecError(
                f"reward spec {shown(dict(spec))}: 'type' is {kind!r} but it holds {key!r}"
            )
        if "members" in options:
            raise SpecError(
                f"reward spec {shown(dict(spec))}: give the members once, as {key!r} or as "
                "'members'"
            )
        kind = key
        options["members"] = options.pop(key)
    if not kind:
        raise SpecError(
            f"reward spec {shown(dict(spec))} has no 'type' (nor a composite key such as "
            "'ensemble')"
        )
    entry = _KINDS.get(str(kind))
    if entry is not None and entry.composite:
        return str(kind), None, options  # 'name' is a display name here, not an ARG
    arg = None
    for key in ("arg", "model", "path", "name"):
        if key in options:
            arg = options.pop(key)
            break
    return str(kind), (None if arg is None else str(arg)), options


def spec_file(spec: Any, base_dir: str | Path | None = None) -> Path | None:
    """The file a spec names, if it names one (relative paths: ``base_dir`` first, then cwd):
    a :class:`Path`, or text ending in ``.yaml``/``.yml``/``.json``, taken whole (a file name
    may hold ``?`` or ``:``); a :class:`SpecError` for such text with no ``KIND:`` that names
    no file. Ensembles ask it before splitting a member's ``?objective=``/``?weight=`` off."""
    if isinstance(spec, Path):
        path = spec
    elif isinstance(spec, str) and spec.strip().endswith(_SPEC_SUFFIXES):
        path = Path(spec.strip()).expanduser()  # "--reward=~/x.yaml": no shell expands that ~
    else:
        return None
    near = Path(base_dir) / path if base_dir is not None and not path.is_absolute() else path
    for found in (near, path):
        if _is_file(found):
            return found
    for found in (near, path):
        if _loops(found):  # a link to itself (or round a ring of links) is no missing file
            raise SpecError(f"reward spec file {shown(str(found))} is a symlink loop")
    if isinstance(spec, Path):
        return path
    if ":" not in spec:  # no KIND: prefix, so it can only be a file name
        where = f" (looked in {base_dir} and the working directory)" if base_dir else ""
        raise SpecError(f"reward spec file {shown(spec.strip())} not found{where}")
    return None


def _loops(path: Path) -> bool:
    """Whether ``path`` is a symbolic link that never reaches a file (a loop)."""
    try:
        path.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 says "Symlink loop" this way
        return True
    except (OSError, ValueError) as exc:
        return getattr(exc, "errno", None) == errno.ELOOP
    return False


def file_options(spec: Any, base_dir: str | Path | None = None) -> tuple[str, str] | None:
    """``(FILE, OPTIONS)`` for text that is a spec file (its name may hold ``?``) and then
    ``?OPTIONS`` (``odd?name.yaml?weight=2``): the longest such FILE that exists; else None.
    Asked where :func:`spec_file` found no file in the whole text."""
    if not isinstance(spec, str):
        return None
    text = spec.strip()
    cuts = [i for i, c in enumerate(text) if c == "?" and text[:i].endswith(_SPEC_SUFFIXES)]
    for i in reversed(cuts):
        try:
            if spec_file(text[:i], base_dir) is not None:
                return text[:i], text[i + 1 :]
        except SpecError:  # not that one
            continue
    return None


_SPEC_SUFFIXES = (".yaml", ".yml", ".json")


class SpecChainError(SpecError):
    """A :class:`SpecError` that names the whole chain of spec files it is about (a cycle, a
    chain too deep): passed on unchanged by the composites that prefix their members' errors."""


#: The spec files being built in this context, outermost first: (resolved path, as named).
_OPENING: ContextVar[tuple[tuple[Path, str], ...]] = ContextVar("rewardkit_spec_files", default=())


@contextmanager
def _opening(path: Path) -> Iterator[None]:
    """Build the reward of spec file ``path`` with it on the chain of files being opened: a file
    that (through others) names itself is a :class:`SpecError` naming the cycle, where the
    build recursed until Python's stack ran out."""
    chain = _OPENING.get()
    try:
        key = path.resolve()
    except (OSError, RuntimeError):
        key = path.absolute()
    seen = [k for k, _ in chain]
    if key in seen:
        cycle = [name for _, name in chain[seen.index(key) :]] + [str(path)]
        raise SpecChainError(f"{' → '.join(cycle)}: spec files reference each other in a cycle")
    if len(chain) >= MAX_SPEC_FILES:
        names = " → ".join([name for _, name in chain[:3]] + ["…", str(path)])
        raise SpecChainError(f"{names}: spec files nested more than {MAX_SPEC_FILES} deep")
    token = _OPENING.set((*chain, (key, str(path))))
    try:
        yield
    finally:
        _OPENING.reset(token)


def load_reward(
    spec: str | Mapping[str, Any] | Path,
    *,
    engine_defaults: Mapping[str, Any] | None = None,
    base_dir: str | Path | None = None,
    **overrides: Any,
) -> Reward:
    """Build a reward from a spec string, a dict, or a YAML/JSON file.

    ``overrides`` win over the spec's options. ``engine_defaults`` (e.g. ``{"dtype": "bf16",
    "cache_dir": ...}`` from the command line) apply to model-backed kinds only, and only where
    the spec does not set the option itself; composite kinds pass them on to their members.
    ``base_dir`` is where a relative spec-file path is looked up first (composite specs set it to
    the directory of the file that names it).
    """
    path = spec_file(spec, base_dir)
    if path is None and (split := file_options(spec, base_dir)) is not None:
        raise SpecError(
            f"reward spec {shown(spec)}: {split[0]!r} is a spec file (its name holds '?'); a "
            f"spec file takes no options after its name (?{split[1]}): write them in the file, "
            "and give an ensemble member's weight as [FILE, WEIGHT] or {reward: FILE, weight: W}"
        )
    if path is None:
        return _build(spec, None, engine_defaults, base_dir, overrides)
    with _opening(path):
        try:
            return _build(spec, path, engine_defaults, base_dir, overrides)
        except SpecError as exc:  # a member's error says which file holds it
            if type(exc) is not SpecError or str(path) in str(exc):
                raise
            raise SpecError(f"{path}: {exc}") from exc


def _build(
    spec: str | Mapping[str, Any] | Path,
    path: Path | None,
    engine_defaults: Mapping[str, Any] | None,
    base_dir: str | Path | None,
    overrides: Mapping[str, Any],
) -> Reward:
    """:func:`load_reward` once the spec file (``path``), if any, is known."""
    if path is not None:
        from rewardkit.data.readers import read_config_file

        loaded = read_config_file(path, "reward spec file", core_yaml=True)
        if not isinstance(loaded, Mapping):
            raise SpecError(f"{path}: a reward spec file must hold a mapping with a 'type'")
        kind, arg, options = _from_mapping(loaded)
        label = str(path)
        base_dir = path.parent
    elif isinstance(spec, Mapping):
        from rewardkit.data.readers import check_tree

        bad = check_tree(dict(spec), surrogates=False)  # as a spec file's depth is checked
        if bad:
            raise SpecError(f"reward spec: {bad}")
        kind, arg, options = _from_mapping(spec)
        label = kind + (f":{arg}" if arg else "")
    else:
        kind, arg, options = parse_spec(str(spec))
        label = str(spec)
    entry = _KINDS.get(kind)
    if entry is None:
        raise SpecError(_unknown_kind(kind, label, spec, path))
    written = dict(options)
    if base_dir is not None and not entry.composite:  # a spec file's own paths: next to it
        arg = _near(arg, base_dir) if entry.uses_engine or kind == "domain" else arg
        options.update({k: _near(options[k], base_dir) for k in PATH_OPTIONS if k in options})
    if entry.uses_engine and engine_defaults:
        options = {**{k: v for k, v in engine_defaults.items() if v is not None}, **options}
    options.update(overrides)
    for name in SWITCHES.intersection(options):
        if isinstance(options[name], str) and options[name].lower() in _SWITCH_WORDS:
            options[name] = switch(name, options[name], kind)
    if entry.composite:
        name = options.get("name")
        if name is not None and not isinstance(name, str):  # YAML's `name: 2024` is a number
            raise SpecError(
                f"reward spec {shown(label)}: name {name!r} is {type(name).__name__}, not text "
                '(in a YAML spec file quote it: name: "2024")'
            )
        options = {"engine_defaults": engine_defaults, "base_dir": base_dir, **options}
    factory = _import_factory(entry.factory)
    try:
        with _BUILD:
            reward = factory(arg, **options)
    except TypeError as exc:
        raise SpecError(f"reward spec {shown(label)}: {option_error(exc, kind)}") from exc
    except UnknownOptionError as exc:
        raise SpecError(f"reward spec {shown(label)}: {exc}") from None
    except SpecError as exc:  # a kind that echoes a 200 kB option value whole
        if type(exc) is not SpecError or len(str(exc)) <= 4 * SHOWN_CHARS:
            raise
        text = str(exc)
        cut = f" … ({len(text) - 2 * SHOWN_CHARS:,} chars) … "
        raise SpecError(text[:SHOWN_CHARS] + cut + text[-SHOWN_CHARS:]) from None
    named = entry.composite and options.get("name") is not None
    if not (named or (entry.composite and isinstance(spec, Mapping) and path is None)):
        from rewardkit.secrets import redact_spec

        # an inline composite, or one given a name, keeps its own name; a name is shown and
        # stored (reports, logs), so a URL's credentials are not in it
        reward.name = redact_spec(overridden(label, written, overrides, path is None))
    return reward


_SWITCH_WORDS = ("true", "false", "yes", "no", "1", "0")
#: Options that name a model folder or file (``dpo:…?ref=``, ``base=``, ``aligndistil:…?rev=``,
#: ``density-ratio:…?weak=``, ``tokenizer=``, ``image-rm:…?processor=``).
PATH_OPTIONS = ("ref", "base", "rev", "weak", "tokenizer", "processor")


def _near(value: Any, base_dir: str | Path) -> Any:
    """A model path written in a spec file, looked up as its member files are: a relative path
    that exists next to the file is that one (``path: ./rm`` in ``cfg/rm.yaml`` is
    ``cfg/rm``, whatever the working directory; it was ``./rm`` of the working directory, a
    different model or none); anything else (a Hub id, a URL, an embedded name) is unchanged."""
    if not isinstance(value, str) or not value.strip() or "://" in value:
        return value
    path = Path(value.strip()).expanduser()
    if path.is_absolute():
        return value
    return str(Path(base_dir) / path) if _is_path(str(Path(base_dir) / path)) else value


def _unknown_kind(kind: str, label: str, spec: Any, path: Path | None) -> str:
    """The error for a kind no one registered: a spec file's ``type`` is named as such."""
    known = ", ".join(sorted(_KINDS))
    if path is not None:
        return f"{path}: unknown reward kind {shown(kind)} (its 'type'); known kinds: {known}"
    hint = ""
    if label.lstrip().startswith(("{", "[")):
        hint = " (a dict spec is written in a YAML or JSON file, whose path is the spec)"
    elif isinstance(spec, str | Path) and _is_path(str(spec).strip()):
        hint = f" ({shown(label)} is a path: give its kind first, e.g. classifier:{label})"
    elif isinstance(spec, str) and any(x + "?" in spec for x in _SPEC_SUFFIXES):
        hint = " (if it is a spec file whose name holds '?', followed by options: no such file)"
    return f"unknown reward kind {shown(kind)} in spec {shown(label)}{hint}; known kinds: {known}"


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False for what cannot be a path (a name too long, a NUL byte)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _is_path(text: str) -> bool:
    """Whether ``text`` names an existing file or folder (False for what cannot be a path)."""
    try:
        return Path(text).expanduser().exists()
    except (OSError, ValueError):  # a name too long, a NUL byte
        return False


def _import_factory(target: str) -> Callable[..., Reward]:
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr)


# The built-in kinds register themselves (each factory lives in the module of its reward).
import rewardkit.reward_kinds  # noqa: E402, F401
