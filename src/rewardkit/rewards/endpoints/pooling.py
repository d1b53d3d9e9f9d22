"""Classifier reward models behind vLLM's and SGLang's scoring endpoints.

Implemented from the projects' documented request/response shapes (the engines themselves were
not run here; tests replay the shapes with a loopback stub):

- vLLM ``POST /classify`` — chat form ``{"model", "messages"}`` (the server applies the model's
  chat template) or completion form ``{"model", "input": [TEXT, ...]}``; answer
  ``{"data": [{"index", "label", "probs": [...], "num_classes"}], "usage"}``. ``"use_activation":
  false`` asks for raw logits instead of softmax/sigmoid probabilities (vLLM ≥ 0.11; older
  servers take ``--override-pooler-config '{"softmax": false}'``).
- vLLM ``POST /pooling`` — same request forms; answer ``{"data": [{"index", "data": ...}],
  "usage"}`` where ``data`` is one vector, or one vector per token for ``*RewardModel``
  architectures (ALL pooling): the reward is then the last token's value.
- SGLang ``POST /classify`` (a server started with ``--is-embedding``) — ``{"model", "text":
  [TEXT, ...]}`` with the chat template applied by the client; answer ``[{"embedding": [s, ...],
  "meta_info": {"prompt_tokens", ...}}, ...]`` in request order.

``label`` picks the output column (0 for a scalar reward model). Where the client formats the
text (``tokenizer=``), it applies that tokenizer's chat template, as Skywork's and SGLang's own
examples do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rewardkit.engine.special_tokens import (
    COMMON_ENCODING,
    COMMON_SPECIALS,
    escape_messages,
    special_strings,
)
from rewardkit.remote import HttpRequest, RemoteConfigError, Usage, token_count
from rewardkit.remote.config import whole_number
from rewardkit.rewards.endpoints.base import (
    HTTP_EXTRA_OPTIONS,
    AnswerError,
    EndpointReward,
    chat_of,
    drop_engine_options,
    endpoint_client,
    failed_row,
    finite_number,
    limits_from_options,
    refuse_options,
)
from rewardkit.types import Query, stable_hash

VLLM_ENDPOINTS = ("classify", "pooling")
_COMMON_OPTIONS = (
    "model",
    "label",
    "tokenizer",
    "api_key_env",
    *HTTP_EXTRA_OPTIONS,
    "batch_size",
    "cache_dir",
)
_VLLM_OPTIONS = (*_COMMON_OPTIONS, "endpoint", "activation", "progress")
_SGLANG_OPTIONS = (*_COMMON_OPTIONS, "progress")


def _value(vector: Any, label: int) -> float:
    if isinstance(vector, list) and vector and isinstance(vector[0], list):
        vector = vector[-1]  # one vector per token: the reward sits on the last one
    if not isinstance(vector, list) or not -len(vector) <= label < len(vector):
        raise AnswerError(f"no output {label} in {str(vector)[:80]}")
    return finite_number(vector[label], f"output {label}")


def _row(vector: Any, label: int) -> dict[str, Any]:
    """``{"score": …}`` of one answer entry, or a failed row when its value is unusable."""
    try:
        return {"score": _value(vector, label)}
    except AnswerError as exc:
        return failed_row(f"unreadable answer: {exc}")


def _http_options(
    api_key_header: str | None,
    query: Mapping[str, Any] | None,
    api_version: str | None,
    headers: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """:data:`~rewardkit.rewards.endpoints.base.HTTP_EXTRA_OPTIONS` by name."""
    values = (api_key_header, query, api_version, headers)
    return dict(zip(HTTP_EXTRA_OPTIONS, values, strict=True))


class ChatTemplate:
    """Formats a query as text with a local tokenizer's chat template (loaded on first use)."""

    def __init__(self, tokenizer: str) -> None:
        self.name = tokenizer
        self._tok: Any = None

    def _load(self) -> Any:
        if self._tok is None:
            from transformers import AutoTokenizer

            from rewardkit.models.embedded import embedded_key, embedded_model_dir

            key = embedded_key(self.name)
            path = str(embedded_model_dir(key)) if key else self.name
            self._tok = AutoTokenizer.from_pretrained(path)
            if not self._tok.chat_template:
                raise RemoteConfigError(f"tokenizer={self.name!r} has no chat template")
        return self._tok

    def identity(self) -> dict[str, Any]:
        return {"tokenizer": self.name, "template": stable_hash(self._load().chat_template)}

    def __call__(self, query: Query) -> str:
        tok = self._load()
        # the server tokenizes this text: the query's own text must not write control tokens
        messages = escape_messages(chat_of(query), special_strings(tok))
        from rewardkit.models.chat_roles import render_chat

        return render_chat(tok, messages, add_generation_prompt=False, who=f"tokenizer={self.name}")


class _PoolingReward(EndpointReward):
    finite_only = True  # the stored value is the score

    def __init__(
        self,
        url: str,
        *,
        model: str | None,
        label: int,
        tokenizer: str | None,
        api_key_env: str | None,
        batch_size: int,
        cache_dir: str | None,
        progress: bool,
        limit_options: dict[str, Any],
        http_options: Mapping[str, Any],
        usage_reader: Any = None,
        kind: str = "vllm",
        known: Sequence[str] = (),
    ) -> None:
        kwargs = {"usage_reader": usage_reader} if usage_reader else {}
        limits = limits_from_options(limit_options)
        refuse_options(kind, limit_options, known)
        self.label = whole_number("label", label, -(2**31))  # negative: from the end
        client = endpoint_client(
            url, api_key_env=api_key_env, limits=limits, **http_options, **kwargs
        )
        super().__init__(client, batch_size=batch_size, cache_dir=cache_dir, progress=progress)
        self.model = model
        self.template = ChatTemplate(tokenizer) if tokenizer else None

    def identity(self) -> dict[str, Any]:
        out = {**super().identity(), "model": self.model, "label": self.label}
        if self.template is not None:
            out.update(self.template.identity())
        else:
            out["text"] = COMMON_ENCODING
        return out

    def _with_model(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"model": self.model, **body} if self.model else body


class VLLMReward(_PoolingReward):
    """``vllm:URL?model=NAME&endpoint=classify|pooling&label=0&activation=false[&tokenizer=]``;
    ``api_key_header``, ``query`` / ``api_version`` and ``headers`` as the HTTP judges take them.

    Without ``tokenizer`` each query goes alone in the chat form (the server applies the
    template); with it, ``batch_size`` formatted texts go in one completion-form request."""

    def __init__(
        self,
        url: str,
        *,
        model: str | None = None,
        endpoint: str = "classify",
        label: int = 0,
        activation: bool | None = False,
        tokenizer: str | None = None,
        api_key_env: str | None = None,
        api_key_header: str | None = None,
        query: Mapping[str, Any] | None = None,
        api_version: str | None = None,
        headers: Mapping[str, Any] | None = None,
        batch_size: int = 32,
        cache_dir: str | None = None,
        progress: bool = False,
        **limit_options: Any,
    ) -> None:
        whole_number("batch_size", batch_size, 1)  # checked even where it does not apply
        if endpoint not in VLLM_ENDPOINTS:
            raise RemoteConfigError(
                f"vllm: endpoint must be one of {', '.join(VLLM_ENDPOINTS)}, got {endpoint!r}"
            )
        super().__init__(
            url,
            model=model,
            label=label,
            tokenizer=tokenizer,
            api_key_env=api_key_env,
            batch_size=batch_size if tokenizer else 1,
            cache_dir=cache_dir,
            progress=progress,
            limit_options=limit_options,
            http_options=_http_options(api_key_header, query, api_version, headers),
            known=_VLLM_OPTIONS,
        )
        self.endpoint = endpoint
        if activation is not None and not isinstance(activation, bool):
            raise RemoteConfigError(
                f"vllm: activation={activation!r}: expected true, false or none"
            )
        self.activation = activation

    def identity(self) -> dict[str, Any]:
        # "endpoint" holds the client's identity (URL, query, headers): the route has its own
        # key (it overwrote the URL, so two vLLM servers at other URLs shared cache entries)
        return {**super().identity(), "route": self.endpoint, "activation": self.activation}

    def request(self, queries: Sequence[Query]) -> HttpRequest:
        if self.template is None:  # the server's tokenizer: escape the common control strings
            body: dict[str, Any] = {
                "messages": escape_messages(chat_of(queries[0]), COMMON_SPECIALS)
            }
        else:
            body = {"input": [self.template(q) for q in queries]}
        if self.endpoint == "classify" and self.activation is not None:
            body["use_activation"] = self.activation
        return HttpRequest(f"/{self.endpoint}", self._with_model(body))

    def read(self, body: Any, queries: Sequence[Query]) -> list[dict[str, Any]]:
        """Each ``data`` entry goes to the input its ``index`` names: indices must be distinct
        ints in ``range(len(queries))`` (else the whole answer is unreadable); an input with no
        entry fails alone. One entry without an index answers a one-input request."""
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise AnswerError("no 'data' list")
        n = len(queries)
        if len(data) > n:
            raise AnswerError(f"{len(data)} entries for {n} inputs")
        for e in data:
            if not isinstance(e, dict):
                raise AnswerError(f"entry {str(e)[:80]!r} is not an object")
        indices = [e.get("index") for e in data]
        if n == 1 and indices == [None]:
            indices = [0]
        for i in indices:
            if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n:
                raise AnswerError(f"entry index {str(i)[:40]!r} is not one of 0..{n - 1}")
        if len(set(indices)) != len(indices):
            twice = sorted({i for i in indices if indices.count(i) > 1})
            raise AnswerError(f"input(s) {twice} answered more than once")
        field = "probs" if self.endpoint == "classify" else "data"
        rows = [failed_row(f"unreadable answer: no entry with index {i}") for i in range(n)]
        for e, i in zip(data, indices, strict=True):
            rows[i] = _row(e.get(field), self.label)
        return rows


def sglang_usage(body: Any) -> Usage:
    """Prompt tokens summed over SGLang's per-item ``meta_info``, each read by
    :func:`~rewardkit.remote.token_count` (the reader OpenAI usage blocks go through); an
    answer with an item whose count is absent or unreadable is ``unreported`` (counts 0)."""
    if not isinstance(body, list):
        return Usage(unreported=1)
    total, unreadable = 0, False
    for item in body:
        meta = item.get("meta_info") if isinstance(item, dict) else None
        tokens = token_count(meta.get("prompt_tokens")) if isinstance(meta, dict) else None
        unreadable |= tokens is None
        total += tokens or 0
    return Usage(unreported=1) if unreadable else Usage(total, 0)


class SGLangReward(_PoolingReward):
    """``sglang:URL?tokenizer=PATH_OR_ID&model=NAME&label=0`` (native ``/classify``);
    ``api_key_header``, ``query`` / ``api_version`` and ``headers`` as the HTTP judges take them."""

    def __init__(
        self,
        url: str,
        *,
        tokenizer: str | None = None,
        model: str | None = None,
        label: int = 0,
        api_key_env: str | None = None,
        api_key_header: str | None = None,
        query: Mapping[str, Any] | None = None,
        api_version: str | None = None,
        headers: Mapping[str, Any] | None = None,
        batch_size: int = 32,
        cache_dir: str | None = None,
        progress: bool = False,
        **limit_options: Any,
    ) -> None:
        if not tokenizer:
            raise RemoteConfigError(
                "sglang: SGLang's /classify takes formatted text: pass tokenizer=PATH_OR_ID "
                "(the reward model's tokenizer, whose chat template formats each query)"
            )
        super().__init__(
            url,
            model=model,
            label=label,
            tokenizer=tokenizer,
            api_key_env=api_key_env,
            batch_size=batch_size,
            cache_dir=cache_dir,
            progress=progress,
            limit_options=limit_options,
            http_options=_http_options(api_key_header, query, api_version, headers),
            usage_reader=sglang_usage,
            kind="sglang",
            known=_SGLANG_OPTIONS,
        )

    def request(self, queries: Sequence[Query]) -> HttpRequest:
        assert self.template is not None
        return HttpRequest(
            "/classify", self._with_model({"text": [self.template(q) for q in queries]})
        )

    def read(self, body: Any, queries: Sequence[Query]) -> list[dict[str, Any]]:
        """One result per text, in request order (SGLang's answer carries no index)."""
        if not isinstance(body, list):
            raise AnswerError("expected a list of results")
        if len(body) != len(queries):
            raise AnswerError(f"{len(body)} results for {len(queries)} texts")
        return [
            _row(e.get("embedding"), self.label)
            if isinstance(e, dict)
            else failed_row(f"unreadable answer: result {str(e)[:80]!r} is not an object")
            for e in body
        ]


def _url(kind: str, arg: str | None) -> str:
    if not arg:
        raise RemoteConfigError(
            f"{kind}: needs the server's URL, e.g. '{kind}:http://127.0.0.1:8000'"
        )
    return arg


def build_vllm(arg: str | None, **options: Any) -> VLLMReward:
    """Registry factory of ``vllm:URL``."""
    return VLLMReward(_url("vllm", arg), **drop_engine_options(options))


def build_sglang(arg: str | None, **options: Any) -> SGLangReward:
    """Registry factory of ``sglang:URL``."""
    return SGLangReward(_url("sglang", arg), **drop_engine_options(options))
