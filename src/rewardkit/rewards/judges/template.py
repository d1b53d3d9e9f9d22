"""Judge kinds and their prompt templates, shared by every backend (no torch).

- :class:`JudgeKind`: a kind's slots, its default templates (a plain one and a ``*_principle_v1``
  twin) and its answer classes. One kind = one template family + one verdict reader
  (:mod:`rewardkit.rewards.judges.verdict`), whatever backend runs it.
- versioned templates (``resources/judge_templates/NAME.txt``) with named slots;
- principle / rubric conditioning (docs/methods/B7-listwise-judge.md, RewardAnything's idea): a
  ``{principle}`` placeholder is filled with the principle text;
- slot filling with content parts (text and images in order), so that the text, VLM and HTTP
  backends render the same template the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from rewardkit.content import ImageRef, normalize_content
from rewardkit.engine.special_tokens import PLAIN_CUE as PLAIN_CUE  # re-exported for the judges
from rewardkit.engine.special_tokens import Specials, specials_pattern
from rewardkit.errors import SpecError
from rewardkit.rewards.judges import sections
from rewardkit.rewards.judges.verdict import (
    A_VARIANTS,
    B_VARIANTS,
    GENORM_NO,
    GENORM_YES,
    NO_VARIANTS,
    ONE_VARIANTS,
    RATING_SCALE,
    YES_VARIANTS,
    ZERO_VARIANTS,
)
from rewardkit.types import Content, Message, Query, stable_hash

PRINCIPLE_SLOT = "{principle}"
DEFAULT_SYSTEM = "You are a strict and fair judge of AI assistant responses."
Part = dict[str, Any]


@dataclass(frozen=True)
class JudgeKind:
    """What a judge asks and which answers it reads; the same for every backend."""

    name: str
    slots: tuple[str, ...]
    default_templates: tuple[str, str]
    #: The spellings of each answer class, in class order (Yes/No, A/B, 1…10).
    classes: tuple[tuple[str, ...], ...]
    #: The ``output=`` values the kind offers, the default first (empty: no option).
    outputs: tuple[str, ...] = ()


YES_NO = JudgeKind(
    "yes_no",
    ("{conversation}", "{response}"),
    ("yes_no_pointwise_v1", "yes_no_principle_v1"),
    (YES_VARIANTS, NO_VARIANTS),
    ("prob", "logit"),
)
PAIRWISE = JudgeKind(
    "pairwise",
    ("{conversation}", "{response_a}", "{response_b}"),
    ("pairwise_ab_v1", "pairwise_ab_principle_v1"),
    (A_VARIANTS, B_VARIANTS),
)
RATING = JudgeKind(
    "rating",
    ("{conversation}", "{response}"),
    ("rating_v1", "rating_principle_v1"),
    tuple((str(k), f" {k}") for k in RATING_SCALE),
    ("expected", "probs"),
)
LISTWISE = JudgeKind(
    "listwise",
    ("{conversation}", "{responses}"),
    ("listwise_v1", "listwise_principle_v1"),
    (),  # the labels [1] … [k] depend on the group size: see rewards/judges/listwise.py
)
#: The soft verifier (docs/methods/B5-soft-verifier.md): question, reference answer and the
#: response's final part; "1" or "0". It takes no principle, so it has no twin template.
VERIFIER = JudgeKind(
    "verifier",
    ("{conversation}", "{reference}", "{response}"),
    ("verifier_v1", "verifier_v1"),
    (ONE_VARIANTS, ZERO_VARIANTS),
    ("prob", "raw", "binary", "logit"),
)
#: The generative outcome verifier (docs/methods/B4-orm-vs-prm.md): the problem and the solution;
#: sampled critiques, each ending in the marker and Yes or No. No principle, so no twin template.
GENORM = JudgeKind(
    "genorm",
    ("{conversation}", "{response}"),
    ("genorm_v1", "genorm_v1"),
    (GENORM_YES, GENORM_NO),
    ("mean", "readable"),
)
KINDS = {k.name: k for k in (YES_NO, PAIRWISE, RATING, LISTWISE, VERIFIER, GENORM)}


@dataclass(frozen=True)
class JudgeOptions:
    """The options every judge takes, whatever its backend (checked by :func:`judge_options`)."""

    template: str | None = None
    system: str | None = DEFAULT_SYSTEM
    use_chat_template: bool = True
    principle: str | None = None
    rubric: Sequence[str] | str | None = None
    output: str | None = None


def judge_options(kind: JudgeKind, name: str, **options: Any) -> JudgeOptions:
    """:class:`JudgeOptions` for ``kind`` from keyword options; a clear error for a bad one."""
    fields = JudgeOptions.__dataclass_fields__
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise SpecError(
            f"{name}: unknown option(s) {', '.join(unknown)}; known: {', '.join(fields)}"
        )
    opts = JudgeOptions(**options)
    if kind.outputs:
        output = opts.output or kind.outputs[0]
        if output not in kind.outputs:
            raise ValueError(
                f"{name} output must be {' or '.join(repr(o) for o in kind.outputs)}, got {output!r}"
            )
        opts = replace(opts, output=output)
    elif opts.output is not None:
        raise ValueError(f"{name} has no output option")
    return opts


def principle_text(
    principle: str | None = None, rubric: Sequence[str] | str | None = None
) -> str | None:
    """The text that fills ``{principle}``: the principle, then the rubric as a bulleted list.

    ``rubric`` is a list of criteria, or one string with criteria separated by ``|`` (the form a
    string spec can carry). None when neither is given.
    """
    items: list[str] = []
    if isinstance(rubric, str):
        items = [r.strip() for r in rubric.split("|") if r.strip()]
    elif rubric:
        items = [str(r).strip() for r in rubric if str(r).strip()]
    parts = []
    if principle and str(principle).strip():
        parts.append(str(principle).strip())
    if items:
        parts.append("\n".join(f"- {item}" for item in items))
    return "\n".join(parts) if parts else None


def template_file(name: str) -> Any:
    return resources.files("rewardkit") / "resources" / "judge_templates" / f"{name}.txt"


def load_judge_template(
    name_or_text: str | None,
    defaults: tuple[str, str],
    slots: Sequence[str],
    principle: str | None,
) -> tuple[str, str]:
    """(template name or "inline", template text) with the principle rules applied.

    ``name_or_text`` None picks ``defaults[0]``, or ``defaults[1]`` (the twin with a
    ``{principle}`` placeholder) when a principle is given. A literal template (one that holds
    the first slot) is used as is; a path (with ``/`` or ending ``.txt``) is read from its file
    (the rendered prompt's hash in the judge's identity holds its text). A template with a ``{principle}`` placeholder needs a
    principle, and a principle needs the placeholder.
    """
    if name_or_text is None:
        name_or_text = defaults[1] if principle else defaults[0]
    if slots[0] in name_or_text:
        name, text = "inline", name_or_text
    elif "/" in name_or_text or name_or_text.endswith(".txt"):  # a template file of one's own
        path = Path(name_or_text).expanduser()
        if not path.is_file():
            raise ValueError(f"judge template file {name_or_text!r} does not exist")
        name, text = str(path), path.read_text(encoding="utf-8").rstrip("\n")
        if slots[0] not in text:
            raise ValueError(f"judge template file {name_or_text!r} has no {slots[0]} slot")
    else:
        path = template_file(name_or_text)
        if not path.is_file():
            raise ValueError(f"unknown judge template {name_or_text!r} (no file {path.name})")
        name, text = name_or_text, path.read_text(encoding="utf-8").rstrip("\n")
    has_slot = PRINCIPLE_SLOT in text
    if principle and not has_slot:
        raise ValueError(f"judge template {name!r} has no {PRINCIPLE_SLOT} for the principle")
    if has_slot and not principle:
        raise ValueError(f"judge template {name!r} needs a principle (or rubric)")
    return name, text


def judge_template(kind: JudgeKind, template: str | None, principle: str | None) -> tuple[str, str]:
    """(name, text) of a kind's template with the principle filled in."""
    name, text = load_judge_template(template, kind.default_templates, kind.slots, principle)
    if principle:
        text = text.replace(PRINCIPLE_SLOT, principle)
    return name, text


#: In every judge's identity: scores made before judged texts had the template's labels (any
#: case, width and spacing) and ``<think>`` tags broken are not reused.
SECTION_ENCODING = "section-labels-and-think-tags-escaped"


def section_labels(template: str) -> re.Pattern[str] | None:
    """What in a judged text would open a section of the judge's own prompt: each structural
    label the template writes (bracketed, tags, ``Label:`` lines; numbered ``[k]`` where a line
    starts), :func:`rewardkit.rewards.judges.sections.section_labels`."""
    return sections.section_labels(template)


@lru_cache(maxsize=64)
def judged_specials(specials: Specials, template: str) -> Specials:
    """One pattern of what judged text gets escaped with a word joiner: ``specials``
    (control-token strings), the template's section labels and ``<think>`` tags."""
    labels = section_labels(template)
    found = (
        sections.think_tags() if labels is None else specials_pattern(sections.think_tags(), labels)
    )
    return specials_pattern(specials, found)


def judge_identity(
    cls: str,
    model: Mapping[str, Any],
    template: str,
    prompt: Any,
    principle: str | None,
    **more: Any,
) -> dict[str, Any]:
    """The fingerprint fields every judge has: class, model, template name, rendered-prompt hash
    (``prompt`` is hashed), the principle when given, plus backend settings in ``more``."""
    out = {"class": cls, **model, "template": template, "prompt_sha": stable_hash(prompt), **more}
    out["sections"] = SECTION_ENCODING
    if principle:
        out["principle"] = principle
    return out


def split_template(template: str, slots: Sequence[str]) -> list[str]:
    """The len(slots) + 1 fixed text pieces around the slots (each slot once, in order)."""
    pieces, rest = [], template
    for slot in slots:
        if template.count(slot) != 1:
            raise ValueError(f"a judge template needs exactly one {slot}")
        before, sep, rest = rest.partition(slot)
        if not sep:
            raise ValueError(
                f"a judge template must hold its slots in the order {', '.join(slots)}"
            )
        pieces.append(before)
    return [*pieces, rest]


def as_parts(content: Content | ImageRef) -> list[Part]:
    """Content as canonical parts (text becomes one text part)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    norm = normalize_content(content)
    return [{"type": "text", "text": norm}] if isinstance(norm, str) else list(norm)


def conversation_parts(prompt: Sequence[Message]) -> list[Part]:
    """The conversation as parts: one user turn as it is; several turns as ``Role: …`` blocks
    separated by blank lines (the layout of :func:`~rewardkit.types.prompt_text`)."""
    if len(prompt) == 1 and prompt[0]["role"] == "user":
        return as_parts(prompt[0]["content"])
    out: list[Part] = []
    for i, m in enumerate(prompt):
        out.append({"type": "text", "text": ("\n\n" if i else "") + f"{m['role'].capitalize()}: "})
        out += as_parts(m["content"])
    return out


def fill_slots(pieces: Sequence[str], values: Sequence[list[Part]]) -> list[Part]:
    """Template pieces and slot parts interleaved; adjacent text parts merged."""
    out: list[Part] = []
    for i, piece in enumerate(pieces):
        seq = [{"type": "text", "text": piece}] + (list(values[i]) if i < len(values) else [])
        for part in seq:
            if part["type"] == "text":
                if not part["text"]:
                    continue
                if out and out[-1]["type"] == "text":
                    out[-1] = {"type": "text", "text": out[-1]["text"] + part["text"]}
                    continue
            out.append(part)
    return out


def references(query: Query, images: bool = False) -> list[Content]:
    """The references a pairwise judge compares a response with.

    Text: the reference string, or the strings of a list. With ``images`` (VLM and HTTP judges)
    a part list or an image is one reference too. Empty strings are no reference.
    """
    ref = query.reference
    if isinstance(ref, str):
        return [ref] if ref.strip() else []
    if images and (
        isinstance(ref, ImageRef) or (isinstance(ref, list) and ref and isinstance(ref[0], Mapping))
    ):
        return [normalize_content(ref)]
    if isinstance(ref, list | tuple):
        return [r for r in ref if isinstance(r, str) and r.strip()]
    return []
