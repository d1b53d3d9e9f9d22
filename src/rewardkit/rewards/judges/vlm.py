"""The local vision-language-model backend (``vlm-judge:``, ``vlm-judge-pairwise:``).

The same judge kinds as the text backend (docs/methods/B3-yes-token-reward.md,
docs/methods/B6-llm-judge.md) on any ``AutoModelForImageTextToText`` + ``AutoProcessor``:
each slot is filled with content parts (text and images, in order), the user turn goes through
the processor's chat template, and the answer-token logits at the last position are read by the
shared verdict readers. A row over ``max_length`` tokens (default: the language model's own
limit; image tokens count) is cut as the text judges cut theirs, under ``truncation``: only the
judged texts lose tokens (the conversation its oldest, each response its last, fairly), never the
template, its instructions, the verdict position nor an image; ``truncation=error`` raises a
:class:`~rewardkit.engine.truncation.TruncationError` naming the reward and the item. A
processor without a chat template gets the plain form of the text judges (``system``, the
template with the processor's image token per image, then ``"\\nAnswer:"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from rewardkit.content import ImageRef
from rewardkit.engine.config import EngineConfig
from rewardkit.engine.special_tokens import escape_content, special_strings
from rewardkit.engine.truncation import TruncationError, fit_many
from rewardkit.errors import SpecError
from rewardkit.models.causal_lm import at_last, measure_logit_scale, select_logits, softcap_of
from rewardkit.models.chat_roles import render_chat
from rewardkit.models.loading import (
    fit_max_length,
    resolve_device,
    resolve_model,
    set_threads,
    torch_dtype,
)
from rewardkit.multimodal.engine import MultimodalReward, MultimodalRow
from rewardkit.multimodal.fitting import item_label, keep_tokens, slot_ids, tokenize_parts
from rewardkit.rewards.judges.answers import AnswerTokens, label_scores, label_token_ids
from rewardkit.rewards.judges.listwise import (
    Group,
    ListwiseJudging,
    expand_template,
)
from rewardkit.rewards.judges.local import read_logits
from rewardkit.rewards.judges.pairwise import Pair, PairwiseJudging
from rewardkit.rewards.judges.template import (
    LISTWISE,
    PAIRWISE,
    PLAIN_CUE,
    YES_NO,
    JudgeKind,
    Part,
    as_parts,
    conversation_parts,
    fill_slots,
    judge_identity,
    judge_options,
    judge_template,
    judged_specials,
    principle_text,
    split_template,
)
from rewardkit.types import Capability, Query

#: A limit no model has (fit_max_length's default when the model states none: no cut).
_NO_LIMIT = 1 << 62
#: Re-renderings of a cut row before giving up (each removes what the last one was over by:
#: text cut apart tokenizes a little differently from text in place).
_REFITS = 4


class VLMJudge(MultimodalReward):
    """A vision-language model reading the logits of a kind's answer tokens after its template."""

    kind: ClassVar[JudgeKind]
    spec_kind: ClassVar[str] = "vlm-judge"

    def __init__(
        self,
        model: str,
        config: EngineConfig | None = None,
        *,
        trust_remote_code: bool = False,
        **options: Any,
    ) -> None:
        opts = judge_options(self.kind, self.spec_kind, **options)
        self.options = opts
        self.output = opts.output
        super().__init__(config)
        import transformers

        set_threads(self.config.threads)
        self.resolved = resolve_model(model)
        self.device = resolve_device(self.config.device)
        kw = {"trust_remote_code": True} if trust_remote_code else {}
        self.processor = transformers.AutoProcessor.from_pretrained(self.resolved.source, **kw)
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        self.tokenizer.padding_side = "right"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        dtype = torch_dtype(self.config.dtype)
        self.model = (
            transformers.AutoModelForImageTextToText.from_pretrained(
                self.resolved.source, dtype=dtype, **kw
            )
            .to(dtype)
            .to(self.device)
            .eval()
        )
        self._decoder = getattr(self.model, self.model.base_model_prefix)
        self._head = self.model.get_output_embeddings()
        text_config = getattr(self.model.config, "text_config", None) or self.model.config
        self._softcap = softcap_of(text_config)
        limit = fit_max_length(text_config, self.tokenizer, self.config.max_length, _NO_LIMIT)
        #: Longest row (image tokens included) fed to the model; None: no limit known.
        self.max_length: int | None = None if limit >= _NO_LIMIT else limit
        # the model's own logit scale (Cohere-based VLMs such as Aya Vision scale their logits)
        self._scale = measure_logit_scale(
            self.model, self._decoder, self._head, str(self.resolved.source)
        )
        self.principle = principle_text(opts.principle, opts.rubric)
        self.template_name, text = judge_template(self.kind, opts.template, self.principle)
        self.pieces = split_template(text, self.kind.slots)
        self.system = opts.system
        self.use_chat_template = bool(
            opts.use_chat_template and getattr(self.processor, "chat_template", None)
        )
        self.image_token = str(getattr(self.processor, "image_token", None) or "<image>")
        self.cue = "" if self.use_chat_template else PLAIN_CUE  # plain prompts: escaped in texts
        self._identity = self.base_identity()
        if self.kind.name in ("yes_no", "pairwise"):
            self.answers = AnswerTokens(self.kind, self.tokenizer, model, opts.output or "prob")
            self._identity.update(self.answers.identity)

    def base_identity(self) -> dict[str, Any]:
        return judge_identity(
            type(self).__name__,
            self.resolved.identity,
            self.template_name,
            [self.pieces, self.system, self.use_chat_template or self.cue],  # plain: cue escaped
            self.principle,
            max_length=self.max_length,
            **self.engine_identity(),
        )

    def identity(self) -> dict[str, Any]:
        return self._identity

    @property
    def pad_token_id(self) -> int:
        return int(self.tokenizer.pad_token_id)

    # -- rows -----------------------------------------------------------------------------------
    def render(
        self, values: Sequence[list[Part]], pieces: Sequence[str] | None = None
    ) -> tuple[str, list[ImageRef]]:
        """The prompt text (chat template applied, generation prompt added) and its images;
        ``pieces`` are the template's text around the slots (default: the judge's own)."""
        parts = fill_slots(self.pieces if pieces is None else pieces, values)
        images = [p["image"] for p in parts if p["type"] == "image"]
        if self.use_chat_template:
            content = [p if p["type"] == "text" else {"type": "image"} for p in parts]
            messages: list[dict[str, Any]] = []
            if self.system:
                messages.append(
                    {"role": "system", "content": [{"type": "text", "text": self.system}]}
                )
            messages.append({"role": "user", "content": content})
            text = render_chat(self.processor, messages, add_generation_prompt=True, who=self.name)
        else:
            body = "".join(p["text"] if p["type"] == "text" else self.image_token for p in parts)
            text = (f"{self.system}\n\n" if self.system else "") + body + self.cue
        return text, images

    def _inputs(self, texts: list[str], images: list[list[ImageRef]]) -> dict[str, Any]:
        return self._processed(texts, [[img.load() for img in row] for row in images])

    def _processed(self, texts: list[str], loaded: list[list[Any]]) -> dict[str, Any]:
        """The processor's tensors for rendered ``texts`` and their loaded (PIL) images."""
        kwargs: dict[str, Any] = {"text": texts, "padding": True, "return_tensors": "pt"}
        if any(loaded):
            # nested per row when every row has images (Idefics/SmolVLM need it), else flat
            kwargs["images"] = loaded if all(loaded) else [im for row in loaded for im in row]
        return dict(self.processor(**kwargs))

    def encode_values(
        self, values: Sequence[Sequence[list[Part]]], pieces: Sequence[str] | None = None
    ) -> list[MultimodalRow]:
        """One row per tuple of slot values; ``input_ids`` (image tokens expanded) set its length
        (rows over ``max_length`` are cut, :meth:`fit_row`)."""
        # judged text writes no control/image token, nor a section label of the template
        template = "\n".join(self.pieces if pieces is None else pieces) + self.cue
        specials = judged_specials(special_strings(self.tokenizer), template)
        return [
            self.fit_row([escape_content(parts, specials) for parts in v], pieces) for v in values
        ]

    def fit_row(self, values: Sequence[list[Part]], pieces: Sequence[str] | None) -> MultimodalRow:
        """The row of one tuple of slot values, within ``max_length`` tokens.

        Over it, the slots' text is cut as :func:`fit_many` says under ``truncation`` (slot 0,
        the conversation: its oldest tokens under ``"left"``; the responses: their last tokens,
        fairly); template text and images are never cut. ``"error"``, or a template and images
        leaving no room for text, raise :class:`TruncationError` naming the reward and the item.
        """
        text, images = self.render(values, pieces)
        loaded = [img.load() for img in images]
        ids = self._processed([text], [loaded])["input_ids"][0].tolist()
        limit = self.max_length
        if limit is None or len(ids) <= limit:
            return MultimodalRow(ids, payload=(text, images))
        where = f"{self.name}: {item_label(values)}"
        policy = self.config.truncation
        if policy == "error":
            raise TruncationError(
                f"{where} has {len(ids)} tokens (template and {len(images)} image(s) included), "
                f"over the limit of {limit} (set truncation='left' or 'right': the judged texts "
                "are cut, never the template nor an image; or raise max_length)"
            )
        tokens = [tokenize_parts(self.tokenizer, slot) for slot in values]
        columns = [slot_ids(t) for t in tokens]
        budget = limit - (len(ids) - sum(len(c) for c in columns))
        for _ in range(_REFITS):
            if budget < 1:
                raise TruncationError(
                    f"{where}: its template and {len(images)} image(s) take about "
                    f"{limit - budget} tokens, leaving no room under the limit of {limit} for "
                    "its text (images are never cut): raise max_length"
                )
            f = fit_many(columns[0], columns[1:], budget, policy)
            kept = [len(f.prompt), *(len(r) for r in f.responses)]
            cut = [
                keep_tokens(self.tokenizer, slot, t, k, tail=j == 0 and policy == "left")
                for j, (slot, t, k) in enumerate(zip(values, tokens, kept, strict=True))
            ]
            text, _ = self.render(cut, pieces)
            ids = self._processed([text], [loaded])["input_ids"][0].tolist()
            if len(ids) <= limit:
                return MultimodalRow(
                    ids,
                    prompt_dropped=f.prompt_dropped,
                    response_dropped=f.response_dropped,
                    payload=(text, images),
                )
            budget -= len(ids) - limit  # cut text tokenizes a little differently: cut more
        raise TruncationError(f"{where}: cannot cut it to {limit} tokens: raise max_length")

    def run_batch(self, rows: list[MultimodalRow]) -> torch.Tensor:
        inputs = self._inputs([r.payload[0] for r in rows], [r.payload[1] for r in rows])
        dtype = next(self.model.parameters()).dtype
        for k, v in inputs.items():
            if isinstance(v, torch.Tensor):
                inputs[k] = (
                    v.to(self.device, dtype=dtype) if v.is_floating_point() else v.to(self.device)
                )
        hidden = self._decoder(**inputs).last_hidden_state
        return self.read_hidden(at_last(hidden, inputs["attention_mask"]).float())

    def logits_of(self, h: torch.Tensor, ids: Sequence[int]) -> torch.Tensor:
        """Next-token logits (b, len(ids)) of ``ids`` from last hidden states ``h``."""
        return select_logits(self._head, h, ids, self._softcap, self._scale)

    def read_hidden(self, h: torch.Tensor) -> torch.Tensor:
        """The kind's reward from the last hidden states (yes/no and pairwise answer tokens)."""
        return read_logits(self.logits_of(h, self.answers.ids), self.answers.read)


class VLMYesNoJudge(VLMJudge):
    """``vlm-judge:`` — P(Yes) vs P(No) after the pointwise template."""

    kind = YES_NO

    def encode(self, queries: Sequence[Query]) -> list[MultimodalRow]:
        return self.encode_values(
            [(conversation_parts(q.prompt), as_parts(q.response)) for q in queries]
        )


class VLMPairwiseJudge(PairwiseJudging, VLMJudge):
    """``vlm-judge-pairwise:`` — P(a ≻ b) from the logits of A and B, both orders averaged
    (MMRB2 protocol); ``score`` = P(response ≻ reference), NaN without one."""

    image_references = True

    kind = PAIRWISE
    spec_kind = "vlm-judge-pairwise"
    capabilities = VLMJudge.capabilities | {Capability.PAIRWISE}
    pair_tag = "vlm-pair"

    def encode_pairs(self, pairs: Sequence[Pair]) -> list[MultimodalRow]:
        return self.encode_values(
            [(conversation_parts(p), as_parts(x), as_parts(y)) for p, x, y in pairs]
        )

    def encode(self, queries: Sequence[Query]) -> list:
        raise TypeError(f"{self.name}: a pairwise judge encodes pairs (compare_many), not queries")


class VLMListwiseJudge(ListwiseJudging, VLMJudge):
    """``vlm-judge-listwise:`` — k ≤ 9 responses (text or images) to one prompt ranked in one
    call; P(best) from the logits of the labels 1…9 (docs/methods/B7-listwise-judge.md)."""

    kind = LISTWISE
    spec_kind = "vlm-judge-listwise"
    capabilities = VLMJudge.capabilities | {Capability.LISTWISE}
    list_tag = "vlm-list"

    def __init__(
        self, model: str, config: EngineConfig | None = None, *, order_seed: int = 0, **options: Any
    ) -> None:
        super().__init__(model, config, **options)
        self.seed = int(order_seed)
        self.label_ids = label_token_ids(self.tokenizer, model, self.max_group)
        self._identity.update(label_ids=self.label_ids, seed=self.seed)
        self._text = judge_template(self.kind, self.options.template, self.principle)[1]

    def encode_groups(self, groups: Sequence[Group]) -> list[MultimodalRow]:
        rows: list[MultimodalRow] = []
        for msgs, shown in groups:
            text, slots = expand_template(self._text, len(shown))
            values = [conversation_parts(msgs), *(as_parts(r) for r in shown)]
            rows += self.encode_values([values], split_template(text, slots))
        return rows

    def encode(self, queries: Sequence[Query]) -> list:
        raise TypeError(f"{self.name}: a listwise judge encodes groups (rank_many), not queries")

    def read_hidden(self, h: torch.Tensor) -> torch.Tensor:
        """Log-scores (b, 9) of the labels 1…9 as the first answer token."""
        flat = [i for ids in self.label_ids for i in ids]
        return read_logits(self.logits_of(h, flat), lambda x: label_scores(x, self.label_ids))


def build(arg: str | None, **options: Any) -> VLMYesNoJudge:
    """Registry factory for ``vlm-judge:PATH_OR_ID``."""
    if not arg:
        raise SpecError("vlm-judge needs a model: vlm-judge:PATH_OR_ID")
    return VLMYesNoJudge(arg, EngineConfig.from_options(options), **options)


def build_listwise(arg: str | None, **options: Any) -> VLMListwiseJudge:
    """Registry factory for ``vlm-judge-listwise:PATH_OR_ID``."""
    if not arg:
        raise SpecError("vlm-judge-listwise needs a model: vlm-judge-listwise:PATH_OR_ID")
    return VLMListwiseJudge(arg, EngineConfig.from_options(options), **options)


def build_pairwise(arg: str | None, **options: Any) -> VLMPairwiseJudge:
    """Registry factory for ``vlm-judge-pairwise:PATH_OR_ID``."""
    if not arg:
        raise SpecError("vlm-judge-pairwise needs a model: vlm-judge-pairwise:PATH_OR_ID")
    return VLMPairwiseJudge(arg, EngineConfig.from_options(options), **options)
