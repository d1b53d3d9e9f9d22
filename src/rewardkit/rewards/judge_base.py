"""Shared machinery of the generative judges that read next-token logits of answer tokens.

- versioned templates (``resources/judge_templates/NAME.txt``) with named slots, rendered through
  the model's chat template (:func:`rewardkit.engine.encoding.render_slots`);
- principle / rubric conditioning (methods.md B7, RewardAnything's idea): a ``{principle}``
  placeholder in the template is filled with the principle text; the default templates have a
  ``*_principle_v1`` twin chosen when a principle or rubric is given;
- :class:`AnswerTokenJudge`: a causal LM whose decoder runs over right-padded rows and whose LM
  head is applied only to the last position(s) and only for the answer tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any

import numpy as np
import torch

from rewardkit.engine.config import EngineConfig
from rewardkit.engine.encoding import bos_prefix, render_slots
from rewardkit.engine.execute import pad_rows
from rewardkit.engine.runner import EncodedRow, ModelBackedReward
from rewardkit.engine.truncation import fit_many
from rewardkit.models.loading import (
    fit_max_length,
    load_causal_lm_shared,
    load_tokenizer,
    resolve_device,
    resolve_model,
    set_threads,
)
from rewardkit.types import Capability, Query, stable_hash, text_queries

PRINCIPLE_SLOT = "{principle}"


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
    ``{principle}`` placeholder) when a principle is given. A literal template (one that holds the first slot) is used as is. A template with a
    ``{principle}`` placeholder needs a principle, and a principle needs the placeholder.
    """
    if name_or_text is None:
        name_or_text = defaults[1] if principle else defaults[0]
    if slots[0] in name_or_text:
        name, text = "inline", name_or_text
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


def single_token_ids(tokenizer: Any, variants: Sequence[str]) -> list[int]:
    """Ids of the variants that the tokenizer spells as exactly one token (deduplicated)."""
    ids: list[int] = []
    for v in variants:
        toks = tokenizer(v, add_special_tokens=False)["input_ids"]
        if len(toks) == 1 and toks[0] not in ids:
            ids.append(toks[0])
    return ids


def answer_token_ids(
    tokenizer: Any, model: str, first: Sequence[str], second: Sequence[str], what: str
) -> tuple[list[int], list[int]]:
    """Single-token ids of two answer classes (Yes/No, A/B); a clear error when one has none."""
    a, b = single_token_ids(tokenizer, first), single_token_ids(tokenizer, second)
    if not a or not b:
        raise ValueError(f"{model}: no single-token spelling of {what} in its vocabulary")
    return a, b


class AnswerTokenJudge(ModelBackedReward):
    """A causal LM judge reading the logits of a few answer tokens at the end of a template.

    Subclasses give the template slots and pick the answer tokens; :meth:`encode_slots` fills the
    slots (the first slot is the conversation, cut oldest-first; the others are responses, cut
    fairly), and :meth:`last_hidden` returns the final hidden states of the real positions.
    Its features are those hidden states at each query's last position.
    """

    layouts = frozenset({"packed", "shared"})
    capabilities = ModelBackedReward.capabilities | {Capability.FEATURES}

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
    ) -> None:
        super().__init__(config)
        set_threads(self.config.threads)
        resolved = resolve_model(model)
        self.resolved = resolved
        self.tokenizer = load_tokenizer(resolved.source)
        self.device = resolve_device(self.config.device)
        self.model = load_causal_lm_shared(resolved.source, self.config.dtype, self.device)
        self.slots = list(slots)
        self.principle = principle_text(principle, rubric)
        self.template_name, self.template = load_judge_template(
            template, default_templates, self.slots, self.principle
        )
        parts = render_slots(self.tokenizer, self.template, self.slots, system, use_chat_template)
        if self.principle:
            parts = [p.replace(PRINCIPLE_SLOT, self.principle) for p in parts]
        if not use_chat_template or not getattr(self.tokenizer, "chat_template", None):
            bos = self.tokenizer.bos_token
            if bos and bos_prefix(self.tokenizer):
                parts[0] = bos + parts[0]
        self.parts = parts
        self._part_ids = [
            list(ids) for ids in self.tokenizer(parts, add_special_tokens=False)["input_ids"]
        ]
        self.max_length = fit_max_length(
            self.model.config,
            self.tokenizer,
            self.config.max_length,
            self.config.default_max_length,
        )
        self._decoder = getattr(self.model, self.model.base_model_prefix)
        self._head = self.model.get_output_embeddings()

    def base_identity(self) -> dict[str, Any]:
        """What every judge's fingerprint holds: weights, template, rendered prompt, limits."""
        out = {
            "class": type(self).__name__,
            **self.resolved.identity,
            "template": self.template_name,
            "prompt_sha": stable_hash(self.parts),
            "max_length": self.max_length,
            **self.engine_identity(),
        }
        if self.principle:
            out["principle"] = self.principle
        return out

    @property
    def pad_token_id(self) -> int:
        return int(self.tokenizer.pad_token_id)

    def backbone(self) -> torch.nn.Module:
        return self._decoder

    def _texts_ids(self, texts: Sequence[str]) -> list[list[int]]:
        if not texts:
            return []
        return [list(x) for x in self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    def encode_slots(
        self, values: Sequence[Sequence[str]], suffix: Sequence[int] = ()
    ) -> list[EncodedRow]:
        """Rows ``part0 slot0 part1 slot1 … partN [suffix]`` for each tuple of slot texts.

        Slot 0 (the conversation) is truncated from the start; the other slots (responses) keep
        their first tokens, each at least a fair share (:func:`fit_many`). Template tokens and
        ``suffix`` are never cut.
        """
        n = len(self.slots)
        columns = [self._texts_ids([v[j] for v in values]) for j in range(n)]
        fixed = sum(len(p) for p in self._part_ids) + len(suffix)
        rows = []
        for i in range(len(values)):
            f = fit_many(
                columns[0][i],
                [columns[j][i] for j in range(1, n)],
                self.max_length - fixed,
                self.config.truncation,
            )
            ids = list(self._part_ids[0])
            for piece, part in zip([f.prompt, *f.responses], self._part_ids[1:], strict=True):
                ids += piece + part
            rows.append(EncodedRow(ids + list(suffix), None, f.prompt_dropped, f.response_dropped))
        return rows

    def last_hidden(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, back: int = 0
    ) -> torch.Tensor:
        """Hidden states (b, H) in float32 at the ``back``-th real position from each row's end."""
        hidden = self.hidden(input_ids, attention_mask)
        last = attention_mask.sum(dim=1) - 1 - back
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last].float()

    def features(self, queries: Sequence[Query], batch_size: int = 8) -> np.ndarray:
        """Hidden states (n, H) at the last position of each query's judge prompt (what the
        answer-token logits read), in batches of ``batch_size`` rows."""
        rows = self.encode(text_queries(queries, self.name))
        out = []
        with torch.no_grad():
            for s in range(0, len(rows), batch_size):
                chunk = [r.input_ids for r in rows[s : s + batch_size]]
                ids, mask, _ = pad_rows(chunk, None, self.pad_token_id)
                h = self.last_hidden(ids.to(self.device), mask.to(self.device))
                out.append(h.float().cpu().numpy())
        return np.concatenate(out, axis=0).astype(np.float64)

    def answer_logits(self, h: torch.Tensor, ids: Sequence[int]) -> torch.Tensor:
        """Next-token logits (b, len(ids)) of the given token ids from hidden states ``h``."""
        return answer_logits(self._head, self.model.config, h, ids)


def answer_logits(head: Any, config: Any, h: torch.Tensor, ids: Sequence[int]) -> torch.Tensor:
    """Next-token logits (b, len(ids)) of token ``ids`` from hidden states ``h`` (b, H): only
    the needed rows of the output embedding, with its bias and the model's logit soft-capping."""
    rows = torch.tensor(list(ids), device=h.device)
    logits = h @ head.weight[rows].float().T
    bias = getattr(head, "bias", None)
    if bias is not None:
        logits = logits + bias[rows].float()
    cap = getattr(config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits
