"""``rule:json_schema`` — does the response's JSON conform to a JSON Schema? 1.0 / 0.0.

The schema is the ``schema`` option (a dict, a JSON string, or a path to a ``.json`` file) or,
without it, ``Query.reference`` (a dict or a JSON string) — so each row can carry its own schema.
The response is read as in ``rule:json`` (the fenced block when there is one). Invalid JSON → 0.0;
valid JSON that fails validation → 0.0; NaN when there is no schema. The schema's own
``$schema`` picks the draft (default: the latest jsonschema supports). An invalid ``schema``
option is a ``SpecError`` (nothing is scored). An invalid schema in one row's reference fails
that item alone: it scores NaN and is recorded in ``ScoreResult.stats`` (``failed``, ``errors``
with the index and the reason, as ``rule:code`` does), so the other rows are scored and the run's
summary names it (:meth:`JsonSchemaReward.score_one` alone raises ``DataError`` for it).
Validators are built once per distinct schema.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.errors import SpecError
from rewardkit.rewards.rules._common import NAN, BadReference, RuleReward, as_bool, no_reference
from rewardkit.rewards.rules.json_valid import is_valid, load_json
from rewardkit.types import Query, stable_hash


class _BadReferenceSchema(BadReference):
    """A row's reference that is not a valid JSON Schema (that item alone fails, as
    :class:`RuleReward` fails any :class:`BadReference`)."""


def _schema_from_text(text: str) -> Any:
    text = text.strip()
    if text.startswith(("{", "[")) or text in ("true", "false"):
        return json.loads(text)
    path = Path(text).expanduser()
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    return json.loads(text)


def _validator(schema: Any, formats: bool) -> Any:
    from jsonschema import FormatChecker
    from jsonschema.validators import validator_for

    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=FormatChecker() if formats else None)


class JsonSchemaReward(RuleReward):
    """``rule:json_schema`` — 1.0 when the response's JSON validates against the schema.

    Options: ``schema`` (dict / JSON string / file path; else ``Query.reference``), ``fence``
    (read the fenced block, default true), ``formats`` (check ``format`` keywords such as
    ``email``, default false).
    """

    rule = "json_schema"

    def __init__(self, schema: Any = None, fence: bool = True, formats: bool = False) -> None:
        fence = as_bool("fence", self.rule, fence)
        formats = as_bool("formats", self.rule, formats)
        self._fixed = None
        if schema is not None:
            try:
                if isinstance(schema, str):
                    schema = _schema_from_text(schema)
                self._fixed = _validator(schema, formats)
            except Exception as exc:
                raise SpecError(f"rule:json_schema: invalid schema option: {exc}") from None
        super().__init__(
            schema_hash=None if schema is None else stable_hash(schema),
            fence=fence,
            formats=formats,
        )
        self._by_reference: dict[str, Any] = {}

    def _reference_validators(self, reference: Any) -> list[Any]:
        """One validator per schema in the reference: a schema (dict / JSON text / bool), or
        a list of them (the response must conform to one); missing entries are left out."""
        if isinstance(reference, np.ndarray):
            reference = reference.tolist()
        if isinstance(reference, list | tuple):
            return [self._reference_validator(r) for r in reference if not no_reference(r)]
        return [] if no_reference(reference) else [self._reference_validator(reference)]

    def _reference_validator(self, reference: Any) -> Any:
        key = reference if isinstance(reference, str) else stable_hash(reference)
        hit = self._by_reference.get(key)
        if hit is None:
            try:
                schema = json.loads(reference) if isinstance(reference, str) else reference
                hit = _validator(schema, self.options["formats"])
            except Exception as exc:
                why = getattr(exc, "message", None) or str(exc)
                raise _BadReferenceSchema(
                    f"rule:json_schema: the reference is not a valid JSON Schema: {why}",
                    field="reference",
                ) from None
            if len(self._by_reference) > 4096:
                self._by_reference.clear()
            self._by_reference[key] = hit
        return hit

    def score_one(self, query: Query) -> float:
        validators = [self._fixed] if self._fixed else self._reference_validators(query.reference)
        if not validators:
            return NAN
        value = load_json(query.response, self.options["fence"])
        if not is_valid(value):
            return 0.0
        field = "schema" if self._fixed else "reference"
        return 1.0 if any(_conforms(v, value, field) for v in validators) else 0.0


def _conforms(validator: Any, value: Any, field: str) -> bool:
    """``validator.is_valid(value)``; a ``$ref`` the schema cannot resolve (a remote URL, a
    pointer to nowhere) is the schema's fault: :class:`_BadReferenceSchema`, never a traceback."""
    try:
        return bool(validator.is_valid(value))
    except RecursionError:
        raise _BadReferenceSchema(
            "rule:json_schema: the schema's $ref chain recurses without end", field=field
        ) from None
    except Exception as exc:
        raise _BadReferenceSchema(
            f"rule:json_schema: the schema cannot be applied ({type(exc).__name__}: {exc})",
            field=field,
        ) from None


def compute_score(
    solution: str, ground_truth: Any = None, schema: Any = None, fence: bool = True
) -> float:
    """verl-style ``compute_score``: 1.0 if ``solution``'s JSON validates against ``schema``
    (or, without it, ``ground_truth`` as the schema, or any schema of a list), 0.0 if not or not
    JSON; NaN without one. An invalid schema raises (``SpecError`` / ``DataError``)."""
    if isinstance(schema, str) and not schema.strip():
        schema = None
    text = ground_truth.strip() if isinstance(ground_truth, str) else ""
    if schema is None and text and Path(text).expanduser().is_file():
        schema = text  # a path to a .json schema, as the ``schema`` option takes
    reward = JsonSchemaReward(schema=schema, fence=fence)
    return reward.score_one(Query(prompt="", response=solution, reference=ground_truth))
