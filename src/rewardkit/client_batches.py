"""The requests of the HTTP clients (:mod:`rewardkit.client`): their bodies, and one
``/v1/rewards`` call as requests the server accepts.

A server holds at most ``--max-items`` items per request (4,096 by default; a rollout batch of
512 prompts × 16 samples is 8,192) and at most ``--max-body-bytes`` per body; it answers 413
otherwise. :class:`Parts` sends a call's items in consecutive parts: at most the client's
``max_items`` (given, or learned), and after a 413 ``too_many_items`` at most the limit the
answer states (``… exceeds the limit of 8 per request``), else the ``limits.max_items`` of
``/v1/info``, else half the refused part; the learned limit is kept for the client's next calls.
After a 413 ``body_too_large`` the part is halved for this call only (a byte limit says nothing
of the next call's items). The results are joined in order, so the call returns what one request
would: one result per item, ids and per-item errors kept. A part of one item that is still
refused, and a request with more new items than a route's whole queue (``--max-queue``), raise
the server's error.

``get_reward`` (OpenRLHF's ``/get_reward``) is split the same way (:class:`OpenRLHFParts`): each
part sends its queries with their prompts and labels, and the parts' ``rewards``, ``scores`` and
``extra_logs`` lists are joined in order. What the server derives from a whole request is then
derived per part: a failed item's default ``--failed-reward`` (the lowest reward of its part) and
a component's fill where it does not apply (its mean over the part); with a fixed
``--failed-reward`` the rewards are what one request gives.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rewardkit.outputs import finite_json

if TYPE_CHECKING:
    from rewardkit.client import Answer, RewardServerError

#: How a 413 states the most items one request may hold (``serve.app``, ``--max-items``).
_STATED = re.compile(r"limit of (\d+) per request")
#: How an item's error names the item (``items[5]: response: …``).
_INDEX = re.compile(r"items\[(\d+)\]")


def openrlhf_body(
    queries: Sequence[str], prompts: Sequence[str] | None, labels: Sequence[Any] | None
) -> dict[str, Any]:
    """The JSON body of OpenRLHF's ``/get_reward``: queries, and prompts/labels when given."""
    for name, value in (("queries", queries), ("prompts", prompts), ("labels", labels)):
        if isinstance(value, str | bytes):  # list("abc") would send three queries 'a', 'b', 'c'
            raise TypeError(f"{name} must be a list with one entry per query, not one string")
    body: dict[str, Any] = {"query": list(queries)}  # an iterator is read here, once
    for key, value in (("prompts", prompts), ("labels", labels)):
        if value is not None:
            body[key] = list(value)
            if len(body[key]) != len(body["query"]):  # as the server says it (a 422)
                raise ValueError(
                    f"'{key}' has {len(body[key])} entries but 'query' has {len(body['query'])}"
                )
    return finite_json(body)  # a NaN label (a missing cell of a DataFrame) is sent as null


def to_item(item: Any) -> dict[str, Any]:
    """A ``/v1/rewards`` item from a dict, a pydantic model or a rewardkit ``Query`` (the
    clients send NaN and ±inf in it as null, "no value": JSON has neither)."""
    if isinstance(item, Mapping):
        return dict(item)
    if hasattr(item, "model_dump"):
        return item.model_dump()
    if hasattr(item, "prompt") and hasattr(item, "response"):  # a rewardkit Query
        out = {"prompt": list(item.prompt), "response": item.response}
        if getattr(item, "reference", None) is not None:
            out["reference"] = item.reference
        source = (getattr(item, "meta", None) or {}).get("data_source")
        if source is not None:  # the server routes on it, as for a dict item (docs/serving.md)
            out["data_source"] = str(source)
        return out
    raise TypeError(f"cannot send a {type(item).__name__} as a reward item")


def is_number(v: Any) -> bool:
    """A finite JSON number; an integer past float's range (``1`` and 400 zeros) is not one."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    try:
        return math.isfinite(float(v))
    except OverflowError:
        return False


def checked_openrlhf(answer: Answer, n: int) -> dict[str, Any]:
    """A ``/get_reward`` answer: ``rewards`` (and ``scores`` when given) n finite numbers,
    ``extra_logs`` an object of lists of n numbers."""
    body = answer.object()
    for key in ("rewards", "scores"):
        values = body.get(key)
        if key == "scores" and values is None:
            continue
        if not (isinstance(values, list) and len(values) == n and all(map(is_number, values))):
            got = f"{len(values)} entries" if isinstance(values, list) else f"no {key!r} list"
            raise answer.invalid(f"{key}: {got}, not {n} finite numbers")
    logs = body.get("extra_logs", {})
    if not isinstance(logs, dict) or not all(
        isinstance(v, list) and len(v) == n and all(map(is_number, v)) for v in logs.values()
    ):
        raise answer.invalid(f"extra_logs is not an object of lists of {n} finite numbers")
    return body


def check_max_items(value: int | None) -> int | None:
    """``max_items`` of a client: None (learned from the server) or a positive integer."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"max_items must be a positive integer or None, got {value!r}")
    return value


def stated_limit(err: RewardServerError) -> int | None:
    """The most items per request a 413 ``too_many_items`` states; None when it states none."""
    found = _STATED.search(err.message) if err.status == 413 else None
    return int(found.group(1)) if found and err.type == "too_many_items" else None


def splits(err: RewardServerError) -> bool:
    """Whether smaller parts may pass where ``err`` refused a request: a 413 for too many items
    or too many bytes. Not one for more new items than a route's whole queue holds
    (``max_queue``, docs/serving.md "Backpressure"): the server's operator sizes that queue, and
    the client raises it as before."""
    if err.status != 413 or err.type not in ("too_many_items", "body_too_large"):
        return False
    return "(max_queue)" not in err.message


def info_limit(info: Mapping[str, Any] | None) -> int | None:
    """``limits.max_items`` of a ``/v1/info`` answer, when it reports a positive integer."""
    limits = info.get("limits") if isinstance(info, Mapping) else None
    value = limits.get("max_items") if isinstance(limits, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _in_call(result: dict[str, Any], offset: int) -> dict[str, Any]:
    """``result`` of a part that starts at item ``offset``, its error's ``items[i]`` shifted."""
    error = result.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    if not offset or not isinstance(error, dict) or not isinstance(message, str):
        return result
    found = _INDEX.match(message)
    if found is None:
        return result
    shifted = f"items[{int(found.group(1)) + offset}]" + message[found.end() :]
    return {**result, "error": {**error, "message": shifted}}


class Parts:
    """The parts of one call's ``items``, sent in turn: iterate to get the next part, then call
    :meth:`answered` with its results or :meth:`refused` with the error the server gave it."""

    def __init__(self, items: list[dict[str, Any]], client: Any) -> None:
        self.items = items
        self.client = client  # holds ``max_items``, read now and updated by what is learned
        self.results: list[dict[str, Any]] = []
        self.size = max(1, client.max_items or len(items))

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        while True:  # once at least: an empty call is still one request, as before
            start = len(self.results)
            yield self.items[start : start + self.size]
            if len(self.results) >= len(self.items):
                return

    def answered(self, results: list[dict[str, Any]]) -> None:
        """Keep the results of the last part; an item's error names its index in the call
        (``items[13]: …``), as one request would, not its index in the part."""
        offset = len(self.results)
        self.results.extend(_in_call(r, offset) for r in results)

    def asks_info(self, err: RewardServerError) -> bool:
        """Whether ``err`` is an item limit that it does not state (``/v1/info`` may say it)."""
        return splits(err) and err.type == "too_many_items" and stated_limit(err) is None

    def refused(self, err: RewardServerError, info: Mapping[str, Any] | None = None) -> None:
        """Make the next part smaller after the server refused the last one with ``err`` (the
        ``/v1/info`` answer ``info`` where :meth:`asks_info`); raise ``err`` when a smaller part
        cannot help: another error, or a part of one item."""
        if not splits(err):
            raise err
        sent = min(self.size, len(self.items) - len(self.results))
        limit = stated_limit(err) or (info_limit(info) if err.type == "too_many_items" else None)
        if limit is None or limit >= sent:  # not stated, or not what refused this part
            limit = sent // 2
        if limit < 1:
            raise err
        if err.type == "too_many_items":
            self.client.max_items = min(limit, self.client.max_items or limit)
        self.size = limit


class OpenRLHFParts(Parts):
    """The parts of one ``/get_reward`` call (module doc): iterate for the next part's queries,
    send :meth:`body`, then call :meth:`answered` with the answer or :meth:`refused`."""

    def __init__(self, body: dict[str, Any], client: Any) -> None:
        self.keys = [k for k in ("query", "prompts", "labels") if k in body]
        rows = zip(*(body[k] for k in self.keys), strict=True)
        super().__init__([dict(zip(self.keys, row, strict=True)) for row in rows], client)
        self.answers: list[dict[str, Any]] = []

    def body(self, part: list[dict[str, Any]]) -> dict[str, Any]:
        """The ``/get_reward`` body of a part: its queries, prompts and labels."""
        return {k: [row[k] for row in part] for k in self.keys}

    def answered(self, answer: Answer) -> None:  # type: ignore[override]
        """Keep the answer to the last part, checked (:func:`checked_openrlhf`); one whose
        ``extra_logs`` keys differ from an earlier part's cannot be joined (``invalid_response``)."""
        n = min(self.size, len(self.items) - len(self.results))
        got = checked_openrlhf(answer, n)
        if self.answers and set(got.get("extra_logs", {})) != set(
            self.answers[0].get("extra_logs", {})
        ):
            raise answer.invalid(
                f"extra_logs keys {sorted(got.get('extra_logs', {}))} differ from the first "
                f"part's {sorted(self.answers[0].get('extra_logs', {}))}: the parts of the call "
                "cannot be joined"
            )
        self.answers.append(got)
        self.results.extend({} for _ in range(n))  # counts the items answered

    def joined(self) -> dict[str, Any]:
        """The call's answer: the one answer of an unsplit call as the server gave it, else
        the parts' lists joined in order (``scores`` where a part gave none: its rewards)."""
        if len(self.answers) == 1:
            return self.answers[0]
        rewards = [x for a in self.answers for x in a["rewards"]]
        out: dict[str, Any] = {"rewards": rewards}
        scores = [a["rewards"] if a.get("scores") is None else a["scores"] for a in self.answers]
        if any(a.get("scores") is not None for a in self.answers):
            out["scores"] = [x for part in scores for x in part]
        if any("extra_logs" in a for a in self.answers):
            keys = list(self.answers[0].get("extra_logs", {}))
            logs = [a.get("extra_logs", {}) for a in self.answers]
            out["extra_logs"] = {k: [x for lg in logs for x in lg[k]] for k in keys}
        return out
