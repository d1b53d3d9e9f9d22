"""``vlm-judge:`` and ``vlm-judge-pairwise:`` — generative judges on any transformers
vision-language model (``AutoModelForImageTextToText`` + ``AutoProcessor``).

The same judging as the text judges, with images where the conversation and the responses have
them: methods.md B3 — Generative "yes-token" reward (RewardDance; pointwise P(yes | instruction,
candidate)) and B6 — LLM-as-judge, pairwise, both orders as in MMRB2. The versioned templates
of ``resources/judge_templates`` are reused (``yes_no_pointwise_v1``, ``pairwise_ab_v1`` and
their ``*_principle_v1`` twins); each slot is filled with content parts (text and images, in
order), the user turn goes through the processor's chat template, and the reward reads the
next-token logits of the answer tokens at the last position (the LM head applied to that
position only, as :class:`~rewardkit.rewards.judge_base.AnswerTokenJudge` does)::

    pointwise:  r = σ(ℓ_yes − ℓ_no)            (output="logit": ℓ_yes − ℓ_no)
    pairwise:   P(a ≻ b) = ½ (σ(ℓ_A − ℓ_B | a first) + σ(ℓ_B − ℓ_A | b first))

Rows are not truncated (an image cannot be cut); keep conversations within the model's context.
A processor without a chat template gets the plain form of the text judges (``system``, the
template with the processor's image token per image, then ``"\\nAnswer:"``).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from rewardkit.engine.config import EngineConfig
from rewardkit.models.loading import resolve_device, resolve_model, set_threads, torch_dtype
from rewardkit.multimodal.content import ImageRef, normalize_content
from rewardkit.multimodal.engine import MultimodalReward, MultimodalRow
from rewardkit.rewards.judge import (
    DEFAULT_SYSTEM,
    DEFAULT_TEMPLATE,
    NO_VARIANTS,
    PRINCIPLE_TEMPLATE,
    YES_VARIANTS,
)
from rewardkit.rewards.judge_base import (
    PRINCIPLE_SLOT,
    answer_logits,
    answer_token_ids,
    load_judge_template,
    principle_text,
)
from rewardkit.rewards.judge_pairwise import (
    A_VARIANTS,
    B_VARIANTS,
    DEFAULT_TEMPLATES,
    SLOTS,
    PairwiseJudgement,
    _sigmoid,
    combine_orders,
)
from rewardkit.types import Capability, Content, Message, Query, as_messages, stable_hash

Part = dict[str, Any]


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
    separated by blank lines (the text judges' :func:`~rewardkit.types.prompt_text` layout)."""
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


class VLMJudge(MultimodalReward):
    """A vision-language model reading the logits of answer tokens after a judging template."""

    def __init__(
        self,
        model: str,
        config: EngineConfig | None,
        *,
        slots: Sequence[str],
        template: str | None,
        default_templates: tuple[str, str],
        system: str | None,
        use_chat_template: bool,
        principle: str | None,
        rubric: Sequence[str] | str | None,
        trust_remote_code: bool = False,
    ) -> None:
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
        self.slots = list(slots)
        self.principle = principle_text(principle, rubric)
        self.template_name, text = load_judge_template(
            template, default_templates, self.slots, self.principle
        )
        if self.principle:
            text = text.replace(PRINCIPLE_SLOT, self.principle)
        self.pieces = split_template(text, self.slots)
        self.system = system
        self.use_chat_template = bool(
            use_chat_template and getattr(self.processor, "chat_template", None)
        )
        self.image_token = str(getattr(self.processor, "image_token", None) or "<image>")

    def base_identity(self) -> dict[str, Any]:
        out = {
            "class": type(self).__name__,
            **self.resolved.identity,
            "template": self.template_name,
            "prompt_sha": stable_hash([self.pieces, self.system, self.use_chat_template]),
            **self.engine_identity(),
        }
        if self.principle:
            out["principle"] = self.principle
        return out

    @property
    def pad_token_id(self) -> int:
        return int(self.tokenizer.pad_token_id)

    # -- rows -----------------------------------------------------------------------------------
    def render(self, values: Sequence[list[Part]]) -> tuple[str, list[ImageRef]]:
        """The prompt text (chat template applied, generation prompt added) and its images."""
        parts = fill_slots(self.pieces, values)
        images = [p["image"] for p in parts if p["type"] == "image"]
        if self.use_chat_template:
            content = [p if p["type"] == "text" else {"type": "image"} for p in parts]
            messages: list[dict[str, Any]] = []
            if self.system:
                messages.append(
                    {"role": "system", "content": [{"type": "text", "text": self.system}]}
                )
            messages.append({"role": "user", "content": content})
            text = self.processor.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
        else:
            body = "".join(p["text"] if p["type"] == "text" else self.image_token for p in parts)
            text = (f"{self.system}\n\n" if self.system else "") + body + "\nAnswer:"
        return text, images

    def _inputs(self, texts: list[str], images: list[list[ImageRef]]) -> dict[str, Any]:
        loaded = [[img.load() for img in row] for row in images]
        kwargs: dict[str, Any] = {"text": texts, "padding": True, "return_tensors": "pt"}
        if any(loaded):
            # nested per row when every row has images (Idefics/SmolVLM need it), else flat
            kwargs["images"] = loaded if all(loaded) else [im for row in loaded for im in row]
        return dict(self.processor(**kwargs))

    def encode_values(self, values: Sequence[Sequence[list[Part]]]) -> list[MultimodalRow]:
        """One row per tuple of slot values; ``input_ids`` (image tokens expanded) set its length."""
        rows = []
        for v in values:
            text, images = self.render(v)
            ids = self._inputs([text], [images])["input_ids"][0].tolist()
            rows.append(MultimodalRow(ids, payload=(text, images)))
        return rows

    def run_batch(self, rows: list[MultimodalRow]) -> torch.Tensor:
        inputs = self._inputs([r.payload[0] for r in rows], [r.payload[1] for r in rows])
        dtype = next(self.model.parameters()).dtype
        for k, v in inputs.items():
            if isinstance(v, torch.Tensor):
                inputs[k] = (
                    v.to(self.device, dtype=dtype) if v.is_floating_point() else v.to(self.device)
                )
        hidden = self._decoder(**inputs).last_hidden_state
        last = inputs["attention_mask"].sum(dim=1) - 1
        h = hidden[torch.arange(hidden.shape[0], device=hidden.device), last].float()
        return self.margin(h)

    def answer_logits(self, h: torch.Tensor, ids: Sequence[int]) -> torch.Tensor:
        """Next-token logits of ``ids`` from the last hidden states (the text judges' code)."""
        return answer_logits(
            self._head, getattr(self.model.config, "text_config", None) or self.model.config, h, ids
        )

    @abstractmethod
    def margin(self, h: torch.Tensor) -> torch.Tensor:
        """The score of a batch of last hidden states."""


class VLMYesNoJudge(VLMJudge):
    """``vlm-judge:`` — P(Yes) vs P(No) after the pointwise template (methods.md B3)."""

    def __init__(
        self,
        model: str,
        config: EngineConfig | None = None,
        *,
        template: str | None = None,
        system: str | None = DEFAULT_SYSTEM,
        output: str = "prob",
        use_chat_template: bool = True,
        principle: str | None = None,
        rubric: Sequence[str] | str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        if output not in ("prob", "logit"):
            raise ValueError(f"judge output must be 'prob' or 'logit', got {output!r}")
        super().__init__(
            model,
            config,
            slots=("{conversation}", "{response}"),
            template=template,
            default_templates=(DEFAULT_TEMPLATE, PRINCIPLE_TEMPLATE),
            system=system,
            use_chat_template=use_chat_template,
            principle=principle,
            rubric=rubric,
            trust_remote_code=trust_remote_code,
        )
        self.output = output
        self.yes_ids, self.no_ids = answer_token_ids(
            self.tokenizer, model, YES_VARIANTS, NO_VARIANTS, "Yes/No"
        )
        self._identity = {
            **self.base_identity(),
            "yes_ids": self.yes_ids,
            "no_ids": self.no_ids,
            "output": output,
        }

    def identity(self) -> dict[str, Any]:
        return self._identity

    def encode(self, queries: Sequence[Query]) -> list[MultimodalRow]:
        return self.encode_values(
            [(conversation_parts(q.prompt), as_parts(q.response)) for q in queries]
        )

    def margin(self, h: torch.Tensor) -> torch.Tensor:
        logits = self.answer_logits(h, self.yes_ids + self.no_ids).double()
        n = len(self.yes_ids)
        m = torch.logsumexp(logits[:, :n], dim=1) - torch.logsumexp(logits[:, n:], dim=1)
        return m if self.output == "logit" else torch.sigmoid(m)


def _references(reference: Any) -> list[Content]:
    """The references a pairwise judge compares a response with (text, parts or images)."""
    if reference is None or reference == "" or reference == []:
        return []
    if isinstance(reference, str | ImageRef) or (
        isinstance(reference, list) and reference and isinstance(reference[0], Mapping)
    ):
        return [normalize_content(reference)]
    if isinstance(reference, list):
        return [r for r in reference if isinstance(r, str) and r.strip()]
    return []


class VLMPairwiseJudge(VLMJudge):
    """``vlm-judge-pairwise:`` — P(a ≻ b) from the logits of A and B, both orders averaged
    (methods.md B6, MMRB2 protocol); ``score`` = P(response ≻ reference), NaN without one."""

    capabilities = VLMJudge.capabilities | {Capability.PAIRWISE}

    def __init__(
        self,
        model: str,
        config: EngineConfig | None = None,
        *,
        template: str | None = None,
        system: str | None = DEFAULT_SYSTEM,
        use_chat_template: bool = True,
        principle: str | None = None,
        rubric: Sequence[str] | str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        super().__init__(
            model,
            config,
            slots=SLOTS,
            template=template,
            default_templates=DEFAULT_TEMPLATES,
            system=system,
            use_chat_template=use_chat_template,
            principle=principle,
            rubric=rubric,
            trust_remote_code=trust_remote_code,
        )
        self.a_ids, self.b_ids = answer_token_ids(
            self.tokenizer, model, A_VARIANTS, B_VARIANTS, "A/B"
        )
        self._identity = {**self.base_identity(), "a_ids": self.a_ids, "b_ids": self.b_ids}
        self.last_judgement: PairwiseJudgement | None = None

    def identity(self) -> dict[str, Any]:
        return self._identity

    def encode_pairs(self, pairs: Sequence[tuple[list[Message], Content, Content]]) -> list:
        return self.encode_values(
            [(conversation_parts(p), as_parts(x), as_parts(y)) for p, x, y in pairs]
        )

    def encode(self, queries: Sequence[Query]) -> list:
        raise TypeError(f"{self.name}: a pairwise judge encodes pairs (compare_many), not queries")

    def margin(self, h: torch.Tensor) -> torch.Tensor:
        logits = self.answer_logits(h, self.a_ids + self.b_ids).double()
        n = len(self.a_ids)
        return torch.logsumexp(logits[:, :n], dim=1) - torch.logsumexp(logits[:, n:], dim=1)

    def compare_many(
        self, prompts: Sequence[Any], a: Sequence[Content], b: Sequence[Content]
    ) -> PairwiseJudgement:
        """Judge n pairs in both orders in one engine run; ``last_judgement`` keeps the result."""
        if not (len(prompts) == len(a) == len(b)):
            raise ValueError(f"{len(prompts)} prompts, {len(a)} a's and {len(b)} b's")
        msgs = [as_messages(p) for p in prompts]
        n = len(msgs)
        rows = [(m, x, y) for m, x, y in zip(msgs, a, b, strict=True)]
        rows += [(m, y, x) for m, x, y in zip(msgs, a, b, strict=True)]
        keys = [stable_hash(["vlm-pair", p, x, y]) for p, x, y in rows]
        logits = (
            self.score_rows(rows, keys, self.encode_pairs)[:, 0].astype(np.float64)
            if n
            else np.zeros(0)
        )
        fwd, rev = logits[:n], logits[n:]
        self.last_judgement = PairwiseJudgement(
            p=combine_orders(fwd, rev),
            p_forward=_sigmoid(fwd),
            p_reverse=_sigmoid(-rev),
            logit_forward=fwd,
            logit_reverse=rev,
        )
        return self.last_judgement

    def compare(self, prompt: Sequence[Message] | str, a: Content, b: Content) -> float:
        """P(a ≻ b), the mean of both orders."""
        return float(self.compare_many([prompt], [a], [b]).p[0])

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        index, prompts, resp, refs = [], [], [], []
        for i, q in enumerate(queries):
            for ref in _references(q.reference):
                index.append(i)
                prompts.append(q.prompt)
                resp.append(q.response)
                refs.append(ref)
        out = np.full(len(queries), math.nan)
        if not index:
            return out
        p = self.compare_many(prompts, resp, refs).p
        sums, counts = np.zeros(len(queries)), np.zeros(len(queries))
        np.add.at(sums, index, p)
        np.add.at(counts, index, 1)
        out[counts > 0] = sums[counts > 0] / counts[counts > 0]
        return out


def build(arg: str | None, **options: Any) -> VLMYesNoJudge:
    """Registry factory for ``vlm-judge:PATH_OR_ID``."""
    if not arg:
        raise ValueError("vlm-judge needs a model: vlm-judge:PATH_OR_ID")
    config = EngineConfig.from_options(options)
    return VLMYesNoJudge(arg, config, **options)


def build_pairwise(arg: str | None, **options: Any) -> VLMPairwiseJudge:
    """Registry factory for ``vlm-judge-pairwise:PATH_OR_ID``."""
    if not arg:
        raise ValueError("vlm-judge-pairwise needs a model: vlm-judge-pairwise:PATH_OR_ID")
    config = EngineConfig.from_options(options)
    return VLMPairwiseJudge(arg, config, **options)
