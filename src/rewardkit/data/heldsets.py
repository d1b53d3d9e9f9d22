"""Held-out layouts that are not one preference per record: OpenAssistant's oasst1/oasst2 message
trees (one tree per record, or one message per record) and Vezora's Code-Preference-Pairs.

OpenAssistant (``OpenAssistant/oasst1`` and ``oasst2`` dataset cards): every message has
``message_id``, ``role`` (``prompter`` or ``assistant``, strictly alternating from the initial
prompt to a leaf), ``text``, ``lang`` and, where it has ranked siblings, ``rank`` (the aggregated
user preference among the replies to one parent; 0 is the most preferred). The ``.trees`` export
nests ``replies`` under the tree's ``prompt``; the ``.messages`` export (and the Hub parquet) lists
messages flat, linked by ``parent_id``. Each parent with two or more ranked, non-deleted assistant
replies gives one example: prompt = the conversation from the initial prompt to that parent,
responses = the ranked replies in file order, chosen = the reply (or replies, on equal ranks) with
the lowest rank; ``meta["ranks"]`` keeps every rank. Unranked (``null``/NaN) or deleted replies and
prompter replies are not compared. Sources: docs/data-formats.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from rewardkit.data import checks
from rewardkit.data.location import Location, describe
from rewardkit.data.record import Record, csv_number, finite_number, identical_sides
from rewardkit.errors import DataError
from rewardkit.types import Example, Message

_ROLES = {"prompter": "user", "assistant": "assistant"}


@dataclass
class _Node:
    """One oasst message, validated."""

    id: str
    role: str
    text: str
    rank: float | None
    deleted: bool
    lang: str | None
    loc: Location
    where: str  # the field path errors name
    parent: str | None = None
    children: list[_Node] = field(default_factory=list)


def _err(loc: Location, where: str, message: str) -> DataError:
    return loc.error(message, field=where)


def _node(raw: Any, loc: Location, where: str, csv: bool = False) -> _Node:
    """Validate one message object (``where``: the field path to name in errors)."""
    if not isinstance(raw, dict):
        raise _err(loc, where, f"expected a message object, got {describe(raw)}")
    for key in ("message_id", "role", "text"):
        if raw.get(key) is None:
            found = ", ".join(repr(k) for k in raw) or "none"
            what = "missing required field" if key not in raw else "required field is null"
            raise _err(loc, _sub(where, key), f"{what} (fields found: {found})")
    mid = raw["message_id"]
    if not isinstance(mid, str) or not mid:
        raise _err(loc, _sub(where, "message_id"), f"expected an id text, got {describe(mid)}")
    role = raw["role"]
    if not isinstance(role, str) or role not in _ROLES:
        raise _err(
            loc, _sub(where, "role"), f"expected 'prompter' or 'assistant', got {describe(role)}"
        )
    text = raw["text"]
    if not isinstance(text, str):
        raise _err(loc, _sub(where, "text"), f"expected a message text, got {describe(text)}")
    if role == "prompter" and not text.strip():  # it would be the prompt of its replies
        raise _err(
            loc,
            _sub(where, "text"),
            f"expected a prompt text that is not empty, got {describe(text)}",
        )
    rank = csv_number(raw.get("rank")) if csv else raw.get("rank")
    if isinstance(rank, float) and math.isnan(rank):
        rank = None  # the Hub parquet's unranked messages
    if rank is not None and (not finite_number(rank) or rank < 0):
        raise _err(
            loc,
            _sub(where, "rank"),
            f"expected a rank >= 0 (0 = best) or null, got {describe(rank)}",
        )
    deleted = raw.get("deleted")
    if csv and isinstance(deleted, str) and deleted in ("True", "False", ""):
        deleted = {"True": True, "False": False, "": None}[deleted]
    if deleted is not None and not isinstance(deleted, bool):
        raise _err(loc, _sub(where, "deleted"), f"expected true or false, got {describe(deleted)}")
    lang = raw.get("lang")
    lang = lang if isinstance(lang, str) and lang else None
    return _Node(
        mid, role, text, None if rank is None else float(rank), bool(deleted), lang, loc, where
    )


def _sub(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _check_child(parent: _Node, child: _Node) -> None:
    if child.role == parent.role:
        raise _err(
            child.loc,
            _sub(child.where, "role"),
            f"a {child.role} message replies to a {parent.role} message {parent.id!r}; oasst "
            "roles alternate between prompter and assistant",
        )


def _examples(root: _Node, tree_id: str | None, fmt: str) -> list[Example]:
    """One example per parent with two or more ranked assistant replies, depth first."""
    out: list[Example] = []
    stack: list[tuple[_Node, list[Message]]] = [(root, [])]
    while stack:  # depth first, in file order (no recursion: message chains can be long)
        node, path = stack.pop()
        here = [*path, {"role": _ROLES[node.role], "content": node.text}]
        ranked = [
            c
            for c in node.children
            if c.role == "assistant" and c.rank is not None and not c.deleted
        ]
        if node.role == "prompter" and len(ranked) >= 2:
            ranks = [c.rank for c in ranked]
            meta: dict[str, Any] = {
                "format": fmt,
                "ranks": ranks,
                "message_ids": [c.id for c in ranked],
                "parent_id": node.id,
            }
            if tree_id is not None:
                meta["message_tree_id"] = tree_id
            responses = [c.text for c in ranked]
            chosen = [i for i, r in enumerate(ranks) if r == min(ranks)]
            if identical_sides(responses, chosen):  # as Record.finish flags every other format
                meta["identical_responses"] = True
            out.append(
                Example(
                    id=node.id,
                    prompt=here,
                    responses=responses,
                    chosen=chosen,
                    language=node.lang,
                    meta=meta,
                )
            )
        stack.extend((c, here) for c in reversed(node.children))
    return out


# --- the .trees export: one tree per record -----------------------------------------------------


def convert_oasst_tree(rec: Record) -> list[Example]:
    """An oasst ``.trees.jsonl`` record: ``message_tree_id``, ``tree_state`` and ``prompt`` (the
    initial prompter message, with nested ``replies``). See the module docstring for the
    examples built; a tree without ranked replies gives none."""
    raw = rec.require("prompt", structured=True)
    tree_id = rec.get("message_tree_id")
    csv = rec.loc.kind == "csv"
    root = _node(raw, rec.loc, rec.field("prompt"), csv)
    if root.role != "prompter":
        raise rec.error("prompt", "expected the initial prompt to be a 'prompter' message", ".role")
    stack = [(root, raw)]
    while stack:
        node, obj = stack.pop()
        replies = obj.get("replies") or []
        if not isinstance(replies, list):
            raise _err(
                rec.loc,
                _sub(node.where, "replies"),
                f"expected a list of messages, got {describe(replies)}",
            )
        for i, r in enumerate(replies):
            child = _node(r, rec.loc, f"{node.where}.replies[{i}]", csv)
            _check_child(node, child)
            node.children.append(child)
            stack.append((child, r))
    return _examples(root, str(tree_id) if tree_id is not None else None, "oasst")


# --- the .messages export / Hub parquet: one message per record ---------------------------------


class OasstMessages:
    """Collects flat oasst messages (linked by ``parent_id``) and builds the examples once the
    whole file is read (:meth:`finish`)."""

    def __init__(self) -> None:
        self.nodes: dict[str, _Node] = {}
        self.roots: list[_Node] = []
        self.trees: dict[str, str | None] = {}
        #: Ids of messages refused by :meth:`add`, with where they are (their replies say so).
        self.refused: dict[str, str] = {}

    def add(self, rec: Record) -> None:
        """Validate one message record and keep it."""
        csv = rec.loc.kind == "csv"
        try:
            node = _node(rec.data, rec.loc, "", csv)
        except DataError:
            mid = rec.data.get("message_id")
            if isinstance(mid, str) and mid:
                self.refused[mid] = rec.loc.label
            raise
        parent = rec.get("parent_id")
        if isinstance(parent, str) and parent.strip() == "" and csv:
            parent = None
        if parent is not None and (not isinstance(parent, str) or not parent):
            raise rec.error("parent_id", f"expected a message id or null, got {describe(parent)}")
        if node.id in self.nodes:
            raise rec.error("message_id", f"duplicate message id {node.id!r}")
        node.parent = parent
        self.nodes[node.id] = node
        tree = rec.get("message_tree_id")
        self.trees[node.id] = str(tree) if tree is not None else None

    def _in_cycle(self, node: _Node) -> bool:
        seen = {node.id}
        while node.parent is not None and node.parent in self.nodes:
            node = self.nodes[node.parent]
            if node.id in seen:
                return True
            seen.add(node.id)
        return False

    def finish(self) -> tuple[list[Example], list[DataError]]:
        """The examples, and one error per message whose parent is missing or breaks the role
        alternation (its subtree is left out)."""
        errors: list[DataError] = []
        for node in self.nodes.values():
            if node.parent is None:
                if node.role != "prompter":
                    errors.append(
                        _err(
                            node.loc,
                            "role",
                            "an initial prompt (parent_id null) must be a 'prompter' message",
                        )
                    )
                    continue
                self.roots.append(node)
                continue
            parent = self.nodes.get(node.parent)
            if parent is None:
                where = self.refused.get(node.parent)
                why = (
                    f"was refused ({where})"
                    if where
                    else "is not in the data (read the whole split or file)"
                )
                errors.append(_err(node.loc, "parent_id", f"parent message {node.parent!r} {why}"))
                continue
            try:
                _check_child(parent, node)
            except DataError as e:
                errors.append(e)
                continue
            parent.children.append(node)
        out: list[Example] = []
        reached: set[str] = set()
        for root in self.roots:
            out.extend(_examples(root, self.trees.get(root.id), "oasst-messages"))
            stack = [root]
            while stack:
                n = stack.pop()
                reached.add(n.id)
                stack.extend(n.children)
        for node in self.nodes.values():
            if node.id not in reached and self._in_cycle(node):
                errors.append(
                    _err(
                        node.loc,
                        "parent_id",
                        "the message is in a parent_id cycle (no initial prompt above it)",
                    )
                )
        return out, errors


def convert_oasst_message(rec: Record) -> list[Example]:
    """One oasst message record on its own (``load`` reads such files whole,
    :class:`OasstMessages`): a lone message has no ranked siblings, so it gives no example."""
    messages = OasstMessages()
    messages.add(rec)
    out, errors = messages.finish()
    if errors:
        raise errors[0]
    return out


# --- Vezora/Code-Preference-Pairs ---------------------------------------------------------------


def convert_code_preference_pairs(rec: Record) -> Example:
    """Code-Preference-Pairs (``Vezora/Code-Preference-Pairs``; TRL's dataset-formats guide maps
    it as ``input`` → prompt, ``accepted`` → chosen, ``rejected`` → rejected): the accepted code
    is preferred."""
    prompt = checks.prompt(rec, "input")
    sides = [checks.response(rec, k, rec.require(k)) for k in ("accepted", "rejected")]
    return rec.finish("code-preference-pairs", prompt, sides, [0])
