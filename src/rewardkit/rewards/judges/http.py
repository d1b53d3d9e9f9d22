"""The HTTP backend of the judges: the same kinds on any OpenAI-compatible endpoint.

``judge:openai://HOST:PORT/v1?model=NAME`` (or a dict with ``base_url``, ``model``,
``api_key_env``) sends each judged row as one ``/v1/chat/completions`` request (``endpoint=
completions``: ``/v1/completions`` with the rendered text) holding the kind's template, and reads
the verdict with :mod:`rewardkit.rewards.judges.parse`: the answer text says which verdict the
judge gave, and ``top_logprobs``, when the server returns them, how sure it was at that verdict's
token (P(Yes), the expected rating, P(A), P(best label); a listwise group past 9 labels is read
from its text). An unparseable answer is NaN and counted (``unparsed`` in the stats);
``unparsed=tie`` scores it as a tie instead (P = 0.5 / equal listwise scores), as reward-bench
does. A request that still fails after the client's retries, or whose answer is empty or has no
text, is NaN, counted as ``failed``, and not cached. ``use_chat_template=`` is refused: the
endpoint applies its own model's chat template.

Requests go through :class:`rewardkit.remote.HttpClient` (concurrency, rpm/tpm limits, retries
honouring ``Retry-After``) and every answer is kept in the on-disk score cache
(:class:`~rewardkit.rewards.endpoints.base.EndpointReward`), so a repeated evaluation sends no
request. The fingerprint holds the endpoint URL, the model, the rendered template and the
sampling settings (temperature, max_tokens, seed, logprobs), and a fixed ``query`` /
``api_version``, extra ``headers`` and ``api_key_header`` when set — never the API key, which is
read from the environment variable ``api_key_env`` (docs/remote.md: Azure OpenAI, gateways).
See docs/judges.md and docs/methods/B6-llm-judge.md.
"""

from __future__ import annotations

import base64
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from rewardkit.content import ImageContentError, ImageRef
from rewardkit.engine.special_tokens import COMMON_ENCODING, COMMON_SPECIALS, escape_content
from rewardkit.errors import SpecError, switch
from rewardkit.remote import HttpClient, HttpRequest, PriceTable, Usage, generation_usage
from rewardkit.remote.config import real_number, whole_number
from rewardkit.remote.request_url import with_api_version
from rewardkit.rewards.endpoints.base import (
    EndpointReward,
    drop_engine_options,
    limits_from_options,
    refuse_options,
)
from rewardkit.rewards.judges import listwise as lw
from rewardkit.rewards.judges import template as tpl
from rewardkit.rewards.judges import verdict
from rewardkit.rewards.judges.body import answer_text, cut_verdict, finish_reason, no_text
from rewardkit.rewards.judges.logprobs import has_logprobs, missing_logprobs
from rewardkit.rewards.judges.pairwise import Pair, PairwiseJudging
from rewardkit.rewards.judges.parse import read_answer
from rewardkit.rewards.judges.template import JudgeKind, Part
from rewardkit.types import Capability, Query, ScoreResult, stable_hash

#: The options of the HTTP backend besides the judge's text options and the request limits.
HTTP_OPTIONS = (
    "base_url",
    "model",
    "api_key_env",
    "api_key_header",
    "query",
    "api_version",
    "headers",
    "endpoint",
    "temperature",
    "max_tokens",
    "seed",
    "logprobs",
    "unparsed",
    "prices",
    "cache_dir",
    "progress",
)
#: Top log-probabilities asked for per generated token.
TOP_LOGPROBS = 20
#: Columns kept per row besides the score: unparsed answer, verdict read from logprobs, and the
#: answer's token usage (so a cached answer still counts what it cost), and logprob tokens that
#: did not spell the answer's text (its verdict read from the text), and an answer that came
#: without any logprobs although they were asked for (its verdict read from the text).
_FLAGS = ("unparsed", "logprobs", "prompt_tokens", "completion_tokens", "unaligned", "no_logprobs")
#: In every HTTP judge's identity: scores read before a verdict string a judged text also held
#: stopped counting as the judge's, before logprob tokens were aligned with the answer text and
#: before a verdict at the cut of a ``finish_reason: length`` answer failed, and before the
#: published judges' formats were read (Arena-Hard, Prometheus, JSON…; a number or response the
#: reasoning only mentions unparsed), a determiner "no" ("No issues found") stopped being a
#: No and "Response B is more verbose" stopped being B, and before a verdict inside a copy of a
#: judged text stopped counting in every form (a first word, one yes/no in the text) and
#: tokens listed as raw pieces (``▁Yes``, ``ĠYes``) were read as their text, nor before an
#: answer without logprobs was flagged (``no_logprobs``: one more stored column), are not reused.
READING = (
    "own-verdicts-copies-only;logprob-tokens-aligned;cut-verdicts-fail;published-formats;"
    "no-determiner;more-of-a-merit;no-verdict-in-a-copy;piece-marks;no-logprobs-flagged"
)


def openai_base_url(arg: str) -> str:
    """``openai://HOST:PORT/v1`` → ``http://HOST:PORT/v1`` (``openai+https://`` → https)."""
    for scheme, real in (("openai+https://", "https://"), ("openai://", "http://")):
        if arg.startswith(scheme):
            return real + arg[len(scheme) :]
    return arg


def is_http_spec(arg: str | None, options: Mapping[str, Any]) -> bool:
    """Whether a judge spec names an HTTP endpoint (``openai://…``, ``openai+https://…``, a
    plain ``http(s)://`` URL — no local model is named so —, or a ``base_url`` option)."""
    return "base_url" in options or bool(
        arg and str(arg).startswith(("openai://", "openai+https://", "http://", "https://"))
    )


def openai_content(parts: Sequence[Part]) -> str | list[dict[str, Any]]:
    """Parts as OpenAI message content: one string for text only, else text and image_url parts."""
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    out: list[dict[str, Any]] = []
    for p in parts:
        if p["type"] == "text":
            out.append({"type": "text", "text": p["text"]})
        else:
            image: ImageRef = p["image"]
            data, mime = image.checked_bytes()  # never upload a file that is not an image
            url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
            out.append({"type": "image_url", "image_url": {"url": url}})
    return out


def _where(parts: Sequence[Part]) -> str:
    """Where the first image of ``parts`` came from (its record), for messages."""
    origin = next((p["image"].origin for p in parts if p["type"] != "text"), None)
    return f"the row at {origin}" if origin else "a judged row"


class HttpJudge(EndpointReward):
    """A judge kind on an OpenAI-compatible endpoint (see the module docstring).

    Each judged row (a query, an ordered pair, a shown group) is one request; a row is a
    :class:`~rewardkit.types.Query` whose ``reference`` carries the other response(s)."""

    kind: ClassVar[JudgeKind]
    spec_kind: ClassVar[str] = "judge"
    capabilities = EndpointReward.capabilities | {Capability.IMAGES}

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = None,
        api_key_header: str | None = None,
        query: Mapping[str, Any] | None = None,
        api_version: str | None = None,
        headers: Mapping[str, Any] | None = None,
        endpoint: str = "chat",
        temperature: float = 0.0,
        max_tokens: int = 16,
        seed: int | None = 0,
        logprobs: bool = True,
        unparsed: str = "nan",
        prices: Mapping[str, Any] | str | None = None,
        cache_dir: str | None = None,
        progress: bool = False,
        **options: Any,
    ) -> None:
        limits = limits_from_options(options)
        if "use_chat_template" in options:
            raise SpecError(
                f"{self.spec_kind}: use_chat_template= does not apply to an HTTP judge: the "
                "endpoint applies its own model's chat template to the messages (endpoint="
                "completions sends the rendered template as plain text instead); leave it out"
            )
        fields = tpl.JudgeOptions.__dataclass_fields__
        known = [*(f for f in fields if f != "use_chat_template"), *HTTP_OPTIONS]
        refuse_options(self.spec_kind, {k: v for k, v in options.items() if k not in fields}, known)
        self.options = tpl.judge_options(self.kind, self.spec_kind, **options)
        if endpoint not in ("chat", "completions"):
            raise ValueError(f"{self.spec_kind}: endpoint must be 'chat' or 'completions'")
        if unparsed not in ("nan", "tie"):
            raise ValueError(f"{self.spec_kind}: unparsed must be 'nan' or 'tie', got {unparsed!r}")
        if not model:
            raise ValueError(f"{self.spec_kind}: an HTTP judge needs model=NAME")
        client = HttpClient(
            openai_base_url(base_url),
            api_key_env=api_key_env,
            api_key_header=api_key_header,
            query=with_api_version(query, api_version),
            headers=headers,
            limits=limits,
            usage_reader=generation_usage,
        )
        super().__init__(client, batch_size=1, cache_dir=cache_dir, progress=progress)
        self.model = str(model)
        self.endpoint = endpoint
        self.cue = "" if endpoint == "chat" else tpl.PLAIN_CUE  # escaped in judged text
        self.sampling: dict[str, Any] = {
            "temperature": real_number("temperature", temperature, 0),
            "max_tokens": whole_number("max_tokens", max_tokens, 1),
        }
        if seed is not None:
            self.sampling["seed"] = whole_number("seed", seed, -(2**63))
        self.logprobs = switch("logprobs", logprobs, "judge")
        self.unparsed = unparsed
        if isinstance(prices, str):
            self.prices: PriceTable | None = PriceTable.load(prices)
        else:
            self.prices = PriceTable(prices) if prices else None
        self.principle = tpl.principle_text(self.options.principle, self.options.rubric)
        self.template_name, self.template = tpl.judge_template(
            self.kind, self.options.template, self.principle
        )
        self.output = self.options.output

    def stored_columns(self) -> tuple[str, ...]:
        """What the cache keeps per row besides the score: the flags and the label scores."""
        return (*_FLAGS, *self.label_columns())

    # -- what a kind says ----------------------------------------------------------------------
    def label_columns(self) -> tuple[str, ...]:
        """Columns stored per row besides score and flags (listwise: one per label)."""
        return ()

    def classes(self, row: Query) -> tuple[tuple[str, ...], ...]:
        """The answer classes of a row (listwise: the labels of its group)."""
        return self.kind.classes

    def slots(self, row: Query) -> tuple[str, tuple[str, ...], list[list[Part]]]:
        """(template, slots, slot values) of a row: conversation and response by default."""
        values = [tpl.conversation_parts(row.prompt), tpl.as_parts(row.response)]
        return self.template, self.kind.slots, values

    @abstractmethod
    def value(self, scores: np.ndarray, row: Query) -> list[float]:
        """[score, *label columns] from a row's class log-scores (NaN columns when unread)."""

    # -- requests and answers ------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        return tpl.judge_identity(
            type(self).__name__,
            {"model": self.model, "endpoint": self.client.identity()},
            self.template_name,
            [self.template + self.cue, self.options.system, self.endpoint, COMMON_ENCODING],
            self.principle,
            sampling=self.sampling,
            logprobs=self.logprobs,
            unparsed=self.unparsed,
            output=self.output,
            reading=READING,
        )

    def key(self, query: Query) -> str:
        return stable_hash([query.prompt, query.response, query.reference])

    def sent_slots(self, row: Query) -> tuple[str, tuple[str, ...], list[list[Part]]]:
        """:meth:`slots` as sent: the common chat formats' control-token strings (``<|im_end|>``…:
        the server's tokenizer is unseen), the template's labels and a plain prompt's ``Answer:``
        cue are broken in judged text: a response cannot close its turn and answer for the judge."""
        template, slots, values = self.slots(row)
        specials = tpl.judged_specials(COMMON_SPECIALS, template + self.cue)  # and "[Response B]"
        return template, slots, [escape_content(v, specials) for v in values]

    def request(self, queries: Sequence[Query]) -> HttpRequest:
        (row,) = queries
        template, slots, values = self.sent_slots(row)
        parts = tpl.fill_slots(tpl.split_template(template, slots), values)
        body: dict[str, Any] = {"model": self.model, **self.sampling}
        system = self.options.system
        if self.endpoint == "chat":
            messages: list[dict[str, Any]] = []
            if system:
                messages.append({"role": "system", "content": system})
            messages.append({"role": "user", "content": openai_content(parts)})
            body["messages"] = messages
            if self.logprobs:
                body.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
            return HttpRequest("/chat/completions", body)
        if any(p["type"] != "text" for p in parts):
            raise ImageContentError(
                f"{self.spec_kind}: endpoint=completions sends text only, but "
                f"{_where(parts)} holds an image; use endpoint=chat (the default) with a "
                "vision model, or drop the images"
            )
        text = "".join(p["text"] for p in parts)
        body["prompt"] = (f"{system}\n\n" if system else "") + text + self.cue
        if self.logprobs:
            body["logprobs"] = TOP_LOGPROBS
        return HttpRequest("/completions", body)

    def judged_texts(self, row: Query) -> list[str]:
        """The texts this row put in the judge's prompt (cut out of its answer before reading
        the verdict: a quote of the response is not the judge's verdict)."""
        _, _, values = self.sent_slots(row)
        out: list[str] = []
        for value in values:
            if isinstance(value, str):
                out.append(value)
            elif isinstance(value, list):
                out += [p["text"] for p in value if isinstance(p, dict) and "text" in p]
        return out

    def reads_logprobs(self, row: Query) -> bool:
        """Whether a row's verdict may be read from ``top_logprobs`` (``logprobs=`` on)."""
        return self.logprobs

    def read(self, body: Any, queries: Sequence[Query]) -> list[dict[str, float]]:
        """The stored values of a row: the text's verdict, with the log-probabilities at its
        token when the server sent them. An answer without text, an empty one (a server
        glitch, ``finish_reason`` length), or one cut at max_tokens right at its verdict
        (``Rating: 1`` of ``Rating: 10``: :func:`~rewardkit.rewards.judges.body.cut_verdict`)
        raises: a failure, not cached."""
        (row,) = queries
        text = answer_text(body)
        if text is None:
            raise ValueError(no_text(body))
        if not text.strip():
            raise ValueError(f"the answer is empty (finish_reason {finish_reason(body)!r})")
        classes = self.classes(row)
        lp_body = body if self.reads_logprobs(row) else None
        reading = read_answer(self.kind.name, text, classes, self.judged_texts(row), lp_body)
        at = reading.at
        cut = None if at is None else cut_verdict(text, at, finish_reason(body))
        if cut is not None:
            raise ValueError(
                f"the answer was cut at max_tokens (finish_reason 'length') at its verdict "
                f"{cut!r}, which may go on; raise max_tokens"
            )
        names = ("score", *self.label_columns())
        scores = reading.scores
        if scores is None and self.unparsed == "tie":
            scores = np.zeros(len(classes))  # equal classes: P = 0.5, equal listwise scores
        values = self.value(scores, row) if scores is not None else [np.nan] * len(names)
        usage = generation_usage(body)
        known = not usage.unreported  # NaN usage: the answer reported none (its cost unknown)
        flags = {
            "unparsed": float(not reading.parsed),
            "logprobs": float(reading.source == "logprobs"),
            "prompt_tokens": float(usage.prompt_tokens) if known else np.nan,
            "completion_tokens": float(usage.completion_tokens) if known else np.nan,
            "unaligned": float(reading.unaligned),
            "no_logprobs": float(lp_body is not None and not has_logprobs(body)),
        }
        return [{**dict(zip(names, values, strict=True)), **flags}]

    # -- running rows ----------------------------------------------------------------------------
    def judge_rows(self, rows: Sequence[Query]) -> tuple[np.ndarray, dict[str, Any]]:
        """(n, 1 + label columns) values of judged rows (NaN where failed) and the call's stats.

        ``usage`` (and ``cost`` with a price table) is what the answers of these rows cost,
        whether they came from the endpoint now or from the cache, plus what this call's
        answers that failed (empty, cut at ``max_tokens``) were billed; ``usage["unreported"]``
        counts answers that gave no readable usage and makes ``cost`` None (unknown, not 0).
        ``run_usage``, ``run_cost``, ``requests``, ``retries`` and ``cache_hits`` describe this
        call only (on a run without cache hits ``usage`` equals ``run_usage``).
        ``unparsed`` and ``logprob_verdicts`` count the rows' answers by how they were read,
        ``logprobs_unaligned`` those whose logprob tokens did not spell the text (read from it),
        ``logprobs_missing`` those that came without any logprobs although ``logprobs=`` asked
        for them (read from the text; ``logprobs_note`` then says so and why);
        ``failed`` and ``errors`` (``{"index", "error"}``, indices into ``rows``) the rows whose
        request failed or whose answer could not be read."""
        table, run, failed_rows = self._score_rows(rows)
        if failed_rows:  # indices into ``rows``; pairwise/listwise move them to their items
            run["errors"] = failed_rows
        first = sorted({self.key(r): i for i, r in reversed(list(enumerate(rows)))}.values())
        raw = table[first, 1 : 1 + len(_FLAGS)].astype(np.float64)
        stored = ~np.isnan(raw[:, 0])  # a failed row stores nothing: NaN in every column
        unreported = int((stored & np.isnan(raw[:, 2])).sum())
        flags = np.nan_to_num(raw, nan=0.0)
        usage = Usage(int(flags[:, 2].sum()), int(flags[:, 3].sum()), unreported)
        usage = usage + Usage.from_dict(run.get("failed_usage"))
        stats: dict[str, Any] = {
            **run,
            "run_usage": run.get("usage", {}),
            "usage": usage.as_dict(),
            "unparsed": int(flags[:, 0].sum()),
            "logprob_verdicts": int(flags[:, 1].sum()),
            "logprobs_unaligned": int(flags[:, 4].sum()),
            **missing_logprobs(int(flags[:, 5].sum()), int(stored.sum())),
        }
        if self.prices is not None:
            stats["cost"] = self.prices.cost(self.model, usage)
            stats["run_cost"] = self.prices.cost(self.model, Usage.from_dict(run.get("usage")))
        values = np.concatenate([table[:, :1], table[:, 1 + len(_FLAGS) :]], axis=1)
        return values.astype(np.float64), stats

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        """Pointwise scores (yes/no, rating) with the call's stats."""
        values, stats = self.judge_rows(list(queries))
        return ScoreResult(values[:, 0], stats=stats)


class HttpYesNoJudge(HttpJudge):
    """``judge:openai://…`` — P(Yes) (``output=logit``: ℓ_yes − ℓ_no) from an endpoint."""

    kind = tpl.YES_NO

    def value(self, scores: np.ndarray, row: Query) -> list[float]:
        return [float(verdict.yes_no(scores[None, :], self.output or "prob")[0])]


class HttpRatingJudge(HttpJudge):
    """``judge-rating:openai://…`` — the expected 1–10 rating from an endpoint."""

    kind = tpl.RATING
    spec_kind = "judge-rating"

    def __init__(self, base_url: str, model: str, **options: Any) -> None:
        super().__init__(base_url, model, **options)
        if self.output != "expected":
            raise ValueError("judge-rating on an endpoint gives output=expected only")

    def value(self, scores: np.ndarray, row: Query) -> list[float]:
        return [float(verdict.rating(verdict.softmax(scores[None, :]))[0])]


class HttpPairwiseJudge(PairwiseJudging, HttpJudge):
    """``judge-pairwise:openai://…`` — P(a ≻ b), both orders averaged, from an endpoint."""

    kind = tpl.PAIRWISE
    spec_kind = "judge-pairwise"
    capabilities = HttpJudge.capabilities | {Capability.PAIRWISE}
    image_references = True

    def slots(self, row: Query) -> tuple[str, tuple[str, ...], list[list[Part]]]:
        values = [
            tpl.conversation_parts(row.prompt),
            tpl.as_parts(row.response),
            tpl.as_parts(row.reference),
        ]
        return self.template, self.kind.slots, values

    def value(self, scores: np.ndarray, row: Query) -> list[float]:
        return [float(verdict.margin(scores[None, :])[0])]

    def pair_margins(self, rows: Sequence[Pair]) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        values, stats = self.judge_rows([Query(p, x, reference=y) for p, x, y in rows])
        return values[:, 0], np.zeros(len(rows), dtype=bool), stats


class HttpListwiseJudge(lw.ListwiseJudging, HttpJudge):
    """``judge-listwise:openai://…`` — k ≤ 20 responses ranked in one request."""

    kind = tpl.LISTWISE
    spec_kind = "judge-listwise"
    capabilities = HttpJudge.capabilities | {Capability.LISTWISE}
    max_group = 20

    def __init__(self, base_url: str, model: str, *, order_seed: int = 0, **options: Any) -> None:
        super().__init__(base_url, model, **options)
        self.seed = whole_number("order_seed", order_seed, -(2**63))

    def label_columns(self) -> tuple[str, ...]:
        return tuple(f"label_{i}" for i in range(1, self.max_group + 1))

    def classes(self, row: Query) -> tuple[tuple[str, ...], ...]:
        return lw.label_classes(len(row.reference))

    def reads_logprobs(self, row: Query) -> bool:
        """Not past 9 labels: a server spells "12" as "1" "2", whose first token is label 1."""
        return self.logprobs and lw.first_token_labels(len(row.reference))

    def slots(self, row: Query) -> tuple[str, tuple[str, ...], list[list[Part]]]:
        text, slots = lw.expand_template(self.template, len(row.reference))
        return (
            text,
            slots,
            [tpl.conversation_parts(row.prompt), *(tpl.as_parts(r) for r in row.reference)],
        )

    def value(self, scores: np.ndarray, row: Query) -> list[float]:
        p = verdict.softmax(scores)
        return [np.nan, *p.tolist(), *([np.nan] * (self.max_group - len(p)))]

    def shown_scores(self, groups: Sequence[lw.Group]) -> tuple[list[np.ndarray], dict[str, Any]]:
        table, stats = self.judge_rows([Query(m, "", reference=list(shown)) for m, shown in groups])
        return [table[i, 1 : 1 + len(g[1])] for i, g in enumerate(groups)], stats


HTTP_JUDGES: dict[str, type[HttpJudge]] = {
    "judge": HttpYesNoJudge,
    "judge-rating": HttpRatingJudge,
    "judge-pairwise": HttpPairwiseJudge,
    "judge-listwise": HttpListwiseJudge,
}


def build_http(spec_kind: str, arg: str | None, **options: Any) -> HttpJudge:
    """An HTTP judge from a spec: ``openai://HOST:PORT/v1?model=NAME`` or ``base_url=`` +
    ``model=`` (then ARG, if any, is the model)."""
    return http_judge(HTTP_JUDGES[spec_kind], arg, options)


def http_judge(cls: Callable[..., Any], arg: str | None, options: dict[str, Any]) -> Any:
    """``cls(base_url, model, **options)`` from a spec's ARG and options, as :func:`build_http`
    reads them (engine options dropped); the verifier kinds build theirs with it too."""
    options = drop_engine_options(options)
    base_url = options.pop("base_url", None)
    model = options.pop("model", None)
    if base_url is None:
        base_url, arg = str(arg), None
    return cls(str(base_url), str(model or arg or ""), **options)
