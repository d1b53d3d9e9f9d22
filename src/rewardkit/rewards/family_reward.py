"""The common base of rewards built from the model-family table (``classifier:PATH``).

:class:`FamilyModelReward` opens a checkpoint through :func:`rewardkit.models.families.
open_family_model` and hands the family's adapter to the engine; :class:`~rewardkit.rewards.
classifier.ClassifierReward` (scalar families) and :class:`~rewardkit.rewards.pairwise_model.
PairwiseModelReward` (pairwise families) add their inputs and outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rewardkit.engine.adapter import text_config
from rewardkit.engine.config import EngineConfig
from rewardkit.engine.runner import EncodedRow, EngineRun, ModelBackedReward
from rewardkit.errors import SpecError
from rewardkit.models.families import open_family_model
from rewardkit.models.heads import FamilyAdapter
from rewardkit.models.loading import fit_max_length


class FamilyModelReward(ModelBackedReward):
    """A model-backed reward whose model comes from the family table."""

    #: Whether queries are rendered through the tokenizer's chat template (scalar families).
    use_chat_template: bool = False

    def __init__(
        self,
        model: str,
        config: EngineConfig | None = None,
        family: str | None = None,
        **load: Any,
    ) -> None:
        super().__init__(config)
        opened = open_family_model(model, self.config, family, **load)
        self.model_name = model
        self.family = opened.family
        self.tokenizer = opened.tokenizer
        self.loaded = opened.loaded
        self.model = opened.loaded.module
        self.device = opened.device
        #: Where the weights came from (model id or path, weights hash), for :meth:`identity`.
        self.source_identity = opened.identity
        #: The longest row fed to the model (the configured one, never above the model's limit).
        self.max_length = fit_max_length(
            self.loaded.config,
            self.tokenizer,
            self.config.max_length,
            self.config.default_max_length,
        )
        #: Rows of the model's input-embedding table when the tokenizer has more tokens (a
        #: tokenizer that is not the weights'): every row is then checked before it runs.
        self._vocab_rows: int | None = None
        vocab = getattr(text_config(self.loaded.config), "vocab_size", None)
        if isinstance(vocab, int) and 0 < vocab < len(self.tokenizer):
            self._vocab_rows = vocab

    @property
    def adapter(self) -> FamilyAdapter:
        """The family adapter the engine runs."""
        return self.loaded.adapter

    def model_adapter(self) -> FamilyAdapter:
        return self.loaded.adapter

    @property
    def pad_token_id(self) -> int:
        """The id batches are padded with: the adapter's (a sequence classifier's
        ``config.pad_token_id``, where the model reads it), not always the tokenizer's."""
        return int(self.adapter.pad_token_id)

    def identity(self) -> dict[str, Any]:
        return self._identity

    def encode_items(self, items: Sequence[Any]) -> list[EncodedRow]:
        """Rows of the items this reward's engine runs: queries (scalar families) or ordered
        (prompt, first, second) pairs (pairwise families)."""
        return self.checked_rows(self.encode(items))

    def truncation_policy(self) -> str:
        """How long rows are cut, in words (``check-model`` reports it)."""
        return str(self.config.truncation)

    def checked_rows(self, rows: list[EncodedRow]) -> list[EncodedRow]:
        """``rows``, refused in one line when a token id is past the model's embedding table
        (the tokenizer has more tokens than the weights: the model would fail mid-run)."""
        limit = self._vocab_rows
        for row in rows if limit is not None else ():
            bad = [t for t in row.input_ids if t >= limit]
            if bad:
                token = self.tokenizer.convert_ids_to_tokens(bad[0])
                raise SpecError(
                    f"{self.model_name}: token id {bad[0]} ({token!r}) is past the model's "
                    f"embedding table of {limit} rows; the tokenizer ({len(self.tokenizer)} "
                    "tokens) does not belong to these weights"
                )
        return rows

    def run_rows(
        self,
        items: Sequence[Any],
        keys: Sequence[str],
        encode: Callable[[list[Any]], list[EncodedRow]],
    ) -> EngineRun:
        """:meth:`ModelBackedReward.run_rows`, every encoded row checked (:meth:`checked_rows`)."""
        if self._vocab_rows is None:
            return super().run_rows(items, keys, encode)
        return super().run_rows(items, keys, lambda todo: self.checked_rows(encode(todo)))
