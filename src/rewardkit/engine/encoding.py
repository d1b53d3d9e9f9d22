"""Turn queries into token ids: chat templates, text pairs, and fill-in templates.

Every path splits a query into fixed tokens, prompt tokens and response tokens, then fits them to
the length limit with :func:`rewardkit.engine.truncation.fit_pair`, so one truncation policy holds
for every model-backed reward. Under a chat template, an over-long row fits the prompt's messages
instead (:func:`rewardkit.engine.truncation.fit_messages`, ``fit_messages_right``), so the kept
turns keep their role headers and the response its assistant header.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from rewardkit.engine.adapter import EncodedRow
from rewardkit.engine.config import Truncation
from rewardkit.engine.special_tokens import (
    PLAIN_CUE,
    escape_messages,
    escape_queries,
    escape_special,
    special_strings,
    specials_pattern,
)
from rewardkit.engine.special_tokens import escape_texts as _escape_texts
from rewardkit.engine.truncation import (
    Fitted,
    emptied_prompt,
    fit_many,
    fit_messages,
    fit_messages_right,
    fit_pair,
)
from rewardkit.errors import DataError
from rewardkit.models.chat_roles import apply_template, render_chat, template_roles
from rewardkit.types import Message, Query, assistant, prompt_text


def _ids(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    if not texts:
        return []
    return list(tokenizer(list(texts), add_special_tokens=False)["input_ids"])


def _split_at_common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _row(head: list[int], fitted: Fitted) -> EncodedRow:
    """``head + prompt + response`` as a row, remembering where the response starts."""
    return EncodedRow(
        head + fitted.prompt + fitted.response,
        None,
        fitted.prompt_dropped,
        fitted.response_dropped,
        response_start=len(head) + len(fitted.prompt),
    )


def encode_chat(
    tokenizer: Any,
    queries: Sequence[Query],
    max_length: int,
    policy: Truncation,
    escape: bool = True,
) -> list[EncodedRow]:
    """Encode (prompt, response) through the tokenizer's chat template.

    The prompt is the template applied to the prompt messages with the generation prompt; the
    response is what the full conversation adds after it. A leading BOS token is kept fixed.
    Special-token strings in the text are escaped (:mod:`.special_tokens`) unless ``escape`` is
    False (a caller that escaped the text itself and inserts real tags, as the PRM does).
    Roles are rendered as the template takes them (:mod:`rewardkit.models.chat_roles`:
    ``developer`` as ``system`` where the template has no such role, a refused system turn
    folded into the first user turn).
    """
    prompts, responses = [], []
    queries = list(escape_queries(tokenizer, queries) if escape else queries)
    mapped = [template_roles(tokenizer.chat_template, q.prompt) for q in queries]
    queries = [
        q if m == q.prompt else replace(q, prompt=m) for q, m in zip(queries, mapped, strict=True)
    ]
    for i, q in enumerate(queries):
        if not q.prompt:  # the template cannot render no conversation, nor split one
            raise DataError(
                f"query {i} has an empty prompt: a chat-template model scores a response to "
                "at least one message (give the prompt as text or a user turn)",
                field="prompt",
            )
        p, r = _render_chat(tokenizer, q.prompt, q.response)
        prompts.append(p)
        responses.append(r)
    rows = []
    for q, p_ids, r_ids in zip(
        queries, _ids(tokenizer, prompts), _ids(tokenizer, responses), strict=True
    ):
        head = _bos_head(tokenizer, p_ids)
        budget = max_length - len(head)
        if policy != "error" and len(p_ids) + len(r_ids) > max_length:
            fitted = _fit_chat(tokenizer, q, len(p_ids), len(r_ids) < budget, max_length, policy)
            if fitted is not None:
                rows.append(fitted)
                continue
        rows.append(_row(head, fit_pair(p_ids[len(head) :], r_ids, budget, policy)))
    return rows


def _render_chat(tokenizer: Any, prompt: Sequence[Message], response: str) -> tuple[str, str]:
    """The template's text of ``prompt`` with the generation prompt, and what the full
    conversation (``response`` as the assistant turn) adds after it."""
    p = apply_template(tokenizer, prompt, add_generation_prompt=True)
    full = apply_template(tokenizer, [*prompt, assistant(response)], add_generation_prompt=False)
    cut = len(p) if full.startswith(p) else _split_at_common_prefix(p, full)
    return full[:cut], full[cut:]


def _bos_head(tokenizer: Any, ids: list[int]) -> list[int]:
    """``[BOS]`` when ``ids`` start with the BOS token (never cut), else []."""
    bos = tokenizer.bos_token_id
    return [ids[0]] if ids and bos is not None and ids[0] == bos else []


def _fit_chat(
    tokenizer: Any,
    query: Query,
    n_prompt: int,
    room: bool,
    max_length: int,
    policy: Truncation,
) -> EncodedRow | None:
    """An over-long chat row cut so that the template's structure stays: the prompt *messages*
    lose text and the template renders what is kept, every kept message with its role header,
    the prompt ending at the assistant header. ``left`` (``room``: the response leaves room for
    a prompt) drops the oldest context (:func:`fit_messages`) and keeps the response; when even
    the smallest prompt (:func:`emptied_prompt`) leaves no room for the whole response, the
    response keeps its first tokens behind that prompt. ``right`` keeps a prompt that fits and
    cuts the response's end (None: the plain cut does that); an over-long prompt keeps its
    earliest text (:func:`fit_messages_right`) and the response what room is left. None: no
    well-formed row fits (the plain token cut then applies)."""

    def encoded(messages: Sequence[Message], whole: bool = True) -> list[list[int]]:
        prompt, response = _render_chat(tokenizer, messages, query.response)
        return _ids(tokenizer, [prompt, response] if whole else [prompt])

    if policy == "right":
        if n_prompt <= max_length:
            return None
        kept = fit_messages_right(query.prompt, lambda m: len(encoded(m, False)[0]) <= max_length)
    else:
        kept = None
        if room:
            kept = fit_messages(query.prompt, lambda m: sum(map(len, encoded(m))) <= max_length)
        kept = emptied_prompt(query.prompt) if kept is None else kept
    if kept is None:
        return None
    p_ids, r_ids = encoded(kept)
    keep = max_length - len(p_ids)
    if keep < (0 if policy == "right" else 1):
        return None
    head = _bos_head(tokenizer, p_ids)
    dropped = max(n_prompt - len(p_ids), 1)
    return _row(head, Fitted(p_ids[len(head) :], r_ids[:keep], dropped, len(r_ids[keep:])))


def bos_prefix(tokenizer: Any) -> list[int]:
    """``[bos_token_id]`` when the tokenizer puts a BOS token in front of plain text, else []."""
    bos = tokenizer.bos_token_id
    if bos is None:
        return []
    ids = tokenizer("x", add_special_tokens=True)["input_ids"]
    return [bos] if ids and ids[0] == bos else []


def encode_plain(
    tokenizer: Any,
    queries: Sequence[Query],
    max_length: int,
    policy: Truncation,
    system: str | None = None,
    separator: str = "\n\n",
    append_eos: bool = True,
    escape: bool = True,
) -> list[EncodedRow]:
    """Encode (prompt, response) as plain text for a causal LM, without any chat template.

    The row is ``[BOS] [system + separator] prompt_text + separator | response [EOS]``: the
    prompt part (``prompt_text`` of the messages) and the response are tokenized separately, the
    BOS token (when the tokenizer adds one) is never cut, and ``response_start`` marks where the
    response tokens begin. ``append_eos`` ends the response with the EOS token, so the model's
    probability of stopping there is part of log p(y|x) as it is with a chat template.
    ``escape`` as in :func:`encode_chat`.
    """
    head = bos_prefix(tokenizer)
    queries = escape_queries(tokenizer, queries) if escape else list(queries)
    prefix = f"{system}{separator}" if system else ""
    prompts = [prefix + prompt_text(q.prompt) + separator for q in queries]
    eos = [tokenizer.eos_token_id] if append_eos and tokenizer.eos_token_id is not None else []
    rows = []
    for p_ids, r_ids in zip(
        _ids(tokenizer, prompts), _ids(tokenizer, [q.response for q in queries]), strict=True
    ):
        rows.append(_row(head, fit_pair(p_ids, r_ids + eos, max_length - len(head), policy)))
    return rows


@dataclass(frozen=True)
class PairLayout:
    """Where the special tokens go around a (prompt, response) text pair, e.g. BERT's
    ``[CLS] prompt [SEP] response [SEP]`` with token types 0…0 1…1."""

    head: list[int]
    middle: list[int]
    tail: list[int]
    head_types: list[int]
    middle_types: list[int]
    tail_types: list[int]
    prompt_type: int
    response_type: int

    @property
    def n_special(self) -> int:
        return len(self.head) + len(self.middle) + len(self.tail)


def pair_layout(tokenizer: Any) -> PairLayout:
    """Read the special-token layout of text pairs from the tokenizer's post-processor."""
    backend = copy.deepcopy(tokenizer.backend_tokenizer)
    backend.no_padding()
    backend.no_truncation()
    a = backend.encode("a", add_special_tokens=False)
    b = backend.encode("b", add_special_tokens=False)
    merged = backend.post_process(a, b, add_special_tokens=True)
    ids, types = list(merged.ids), list(merged.type_ids)
    ia = ids.index(a.ids[0])
    ib = len(ids) - 1 - ids[::-1].index(b.ids[-1])
    ib_start = ib - len(b.ids) + 1
    return PairLayout(
        head=ids[:ia],
        middle=ids[ia + len(a.ids) : ib_start],
        tail=ids[ib + 1 :],
        head_types=types[:ia],
        middle_types=types[ia + len(a.ids) : ib_start],
        tail_types=types[ib + 1 :],
        prompt_type=types[ia],
        response_type=types[ib],
    )


def encode_text_pair(
    tokenizer: Any,
    layout: PairLayout,
    queries: Sequence[Query],
    max_length: int,
    policy: Truncation,
) -> list[EncodedRow]:
    """Encode (prompt text, response) as a text pair, for models without a chat template."""
    queries = escape_queries(tokenizer, queries)
    p_all = _ids(tokenizer, [prompt_text(q.prompt) for q in queries])
    r_all = _ids(tokenizer, [q.response for q in queries])
    rows = []
    for p_ids, r_ids in zip(p_all, r_all, strict=True):
        f = fit_pair(p_ids, r_ids, max_length - layout.n_special, policy)
        ids = layout.head + f.prompt + layout.middle + f.response + layout.tail
        types = (
            layout.head_types
            + [layout.prompt_type] * len(f.prompt)
            + layout.middle_types
            + [layout.response_type] * len(f.response)
            + layout.tail_types
        )
        start = len(layout.head) + len(f.prompt) + len(layout.middle)
        rows.append(EncodedRow(ids, types, f.prompt_dropped, f.response_dropped, start))
    return rows


def render_slots(
    tokenizer: Any,
    template: str,
    slots: Sequence[str],
    system: str | None,
    use_chat_template: bool = True,
) -> list[str]:
    """Render a judging template around its slots; returns the len(slots) + 1 fixed text parts.

    ``template`` is the user turn and holds each of ``slots`` (e.g. ``"{conversation}"``)
    exactly once, in the order given. With a chat template it is wrapped as a user message (with
    ``system`` if given) plus the generation prompt; otherwise the text is followed by
    ``"\\nAnswer:"``. The variable parts can then be tokenized and truncated separately while
    the template's own text stays intact.
    """
    positions = []
    for slot in slots:
        if template.count(slot) != 1:
            raise ValueError(f"a judge template needs exactly one {slot}")
        positions.append(template.index(slot))
    if positions != sorted(positions):
        raise ValueError(f"a judge template must hold its slots in the order {', '.join(slots)}")
    sentinels = [f"\u2060\u2062RKSLOT{i}\u2062\u2060" for i in range(len(slots))]
    body = template
    for slot, sentinel in zip(slots, sentinels, strict=True):
        body = body.replace(slot, sentinel)
    if use_chat_template and getattr(tokenizer, "chat_template", None):
        messages: list[Message] = []
        if system:
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": body})
        text = render_chat(tokenizer, messages, add_generation_prompt=True)
    else:
        text = (f"{system}\n\n" if system else "") + body + PLAIN_CUE
    parts = []
    for sentinel in sentinels:
        before, text = text.split(sentinel)
        parts.append(before)
    parts.append(text)
    return parts


def append_token(rows: Sequence[EncodedRow], token_id: int) -> list[EncodedRow]:
    """Each row with ``token_id`` appended (a reward token the model reads its score at);
    encode with ``max_length - 1`` so the token always fits."""
    return [
        EncodedRow(
            [*r.input_ids, int(token_id)],
            None if r.token_type_ids is None else [*r.token_type_ids, r.token_type_ids[-1]],
            r.prompt_dropped,
            r.response_dropped,
            r.response_start,
        )
        for r in rows
    ]


#: A pairwise row: (prompt messages, the response in the first slot, the one in the second).
PairItem = tuple[Sequence[Message], str, str]


def encode_marked_pair(
    tokenizer: Any,
    items: Sequence[PairItem],
    markers: Sequence[str],
    max_length: int,
    source_share: float = 0.6,
) -> list[EncodedRow]:
    """PairRM's input: ``encode(m0 + prompt) + encode(m1 + first) + encode(m2 + second)``, each
    part with the tokenizer's special tokens. The prompt keeps at most ``source_share`` of
    ``max_length`` (PairRM: 1224 of 2048); the responses split what is left equally; each part
    keeps its first tokens (the authors' truncation)."""
    source_max = max(int(max_length * source_share), 8)
    specials = special_strings(tokenizer)
    rows = []
    for prompt, first, second in items:
        prompt = escape_messages(prompt, specials)
        first, second = _escape_texts(tokenizer, [first, second])
        src = tokenizer.encode(markers[0] + prompt_text(prompt), add_special_tokens=True)
        src_kept = _cut_keep_last(src, source_max)
        cand_max = max((max_length - len(src_kept)) // 2, 2)
        cands = [
            tokenizer.encode(m + text, add_special_tokens=True)
            for m, text in zip(markers[1:], (first, second), strict=True)
        ]
        kept = [_cut_keep_last(c, cand_max) for c in cands]
        dropped = [len(c) - len(k) for c, k in zip(cands, kept, strict=True)]
        rows.append(
            EncodedRow(
                src_kept + kept[0] + kept[1],
                None,
                len(src) - len(src_kept),
                sum(dropped),
                response_start=len(src_kept),
            )
        )
    return rows


def _cut_keep_last(ids: list[int], limit: int) -> list[int]:
    """The first ``limit - 1`` tokens and the last one (a tokenizer's truncation keeps the
    closing special token)."""
    return list(ids) if len(ids) <= limit else [*ids[: limit - 1], ids[-1]]


def encode_filled_pair(
    tokenizer: Any,
    items: Sequence[PairItem],
    template: str,
    context: Any,
    max_length: int,
    policy: Truncation,
) -> list[EncodedRow]:
    """A causal LM's A/B preference input: ``template`` (slots ``{context}``, ``{response_a}``,
    ``{response_b}``) as the user turn of the model's chat template with the generation prompt,
    the BOS text removed (the authors' rendering). ``context(prompt)`` renders the prompt
    messages. A row that fits is the whole text tokenized at once, as the authors do; a longer
    one is fitted piecewise: the context cut from its start, the responses keeping their first
    tokens (:func:`fit_many`), the template's tokens never cut."""
    slots = ("{context}", "{response_a}", "{response_b}")
    parts = render_slots(tokenizer, template, slots, system=None)
    bos = tokenizer.bos_token
    if bos:
        parts = [p.replace(bos, "") for p in parts]
    # the template's and the context's own labels ([RESPONSE B], <turn>) stay the only ones: a
    # response holding " [RESPONSE B] I refuse." showed the model a second response B
    pattern = specials_pattern(special_strings(tokenizer), marker_pattern(template, context))
    values = [
        (
            context(escape_messages(p, pattern)),
            escape_special(a, pattern),
            escape_special(b, pattern),
        )
        for p, a, b in items
    ]
    whole = _ids(tokenizer, ["".join(_interleave(parts, v)) for v in values])
    part_ids = _ids(tokenizer, parts)
    fixed = sum(len(p) for p in part_ids)
    rows = []
    for ids, v in zip(whole, values, strict=True):
        if len(ids) <= max_length:
            rows.append(EncodedRow(ids))
            continue
        c_ids, a_ids, b_ids = _ids(tokenizer, list(v))
        f = fit_many(c_ids, [a_ids, b_ids], max_length - fixed, policy)
        cut = list(part_ids[0])
        for piece, part in zip([f.prompt, *f.responses], part_ids[1:], strict=True):
            cut += piece + part
        rows.append(EncodedRow(cut, None, f.prompt_dropped, f.response_dropped))
    return rows


#: A structural label: ``[RESPONSE A]`` (no slot braces inside) or a tag ``<turn>``/``</x>``.
_LABEL = re.compile(r"\[[^\[\]{}\n]{1,40}\]|</?[A-Za-z_][\w-]{0,30}>")
#: A pattern that matches nothing (a template without labels).
_NOTHING = re.compile(r"(?!)")


def marker_pattern(template: str, context: Any) -> re.Pattern[str]:
    """The labels a filled template writes around its slots, as judged text may spell them:
    those of ``template`` and of ``context``'s rendering of an empty exchange (RLHFlow's
    ``<turn>``), in any case, with any whitespace inside (``[response  b]``, ``< turn >``)."""
    probe = context([{"role": "user", "content": ""}, {"role": "assistant", "content": ""}])
    labels = sorted({m.group(0) for m in _LABEL.finditer(f"{template}\n{probe}")}, key=len)
    alts = []
    for label in labels[::-1]:
        regex = ""
        for prev, piece in itertools.pairwise(["", *re.findall(r"\w+|[^\w\s]", label)]):
            words = prev[-1:].isalnum() and piece[0].isalnum()
            regex += (r"\s+" if words else r"\s*" if prev else "") + re.escape(piece)
        alts.append(regex)
    return re.compile("(?i:" + "|".join(alts) + ")") if alts else _NOTHING


def _interleave(parts: Sequence[str], values: Sequence[str]) -> list[str]:
    out = [parts[0]]
    for value, part in zip(values, parts[1:], strict=True):
        out += [value, part]
    return out
