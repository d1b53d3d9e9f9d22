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

Time limit: jsonschema matches ``pattern`` and ``patternProperties`` with Python's ``re``, which
holds the GIL with no time limit, so a response could stall a whole server against a
catastrophic pattern (``(a+)+$`` and ``"aaaa…!"``). Checks against schemas with such keywords
run in worker processes (:mod:`.schema_worker`), killed after ``timeout`` seconds (default 5):
that row scores 0.0 (unverified is not conforming, so a response cannot win by being slow to
check) and is named as a failure of its call with the reason. ``timeout=0`` checks in-process,
untimed. Schemas without patterns are always checked in-process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.errors import SpecError
from rewardkit.rewards.rules import schema_worker
from rewardkit.rewards.rules._common import (
    NAN,
    BadReference,
    RuleReward,
    as_bool,
    as_number,
    no_reference,
)
from rewardkit.rewards.rules.json_valid import is_valid, load_json
from rewardkit.rewards.rules.schema_worker import conformance, has_patterns, validator
from rewardkit.types import Query, stable_hash

#: Seconds a check against a schema with patterns may take before its worker is killed.
DEFAULT_TIMEOUT_S = 5.0


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


@dataclass(frozen=True)
class _Check:
    """A schema's validator and, where the schema has patterns, its JSON text for a worker."""

    validator: Any
    isolated_text: str | None


def _check(schema: Any, formats: bool, timeout: float) -> _Check:
    built = validator(schema, formats)
    isolate = timeout > 0 and has_patterns(schema)
    return _Check(built, json.dumps(schema) if isolate else None)


class JsonSchemaReward(RuleReward):
    """``rule:json_schema`` — 1.0 when the response's JSON validates against the schema.

    Options: ``schema`` (dict / JSON string / file path; else ``Query.reference``), ``fence``
    (read the fenced block, default true), ``formats`` (check ``format`` keywords such as
    ``email``, default false), ``timeout`` (seconds for a check against a schema with patterns,
    in a worker process; default 5, 0: in-process and untimed).
    """

    rule = "json_schema"

    def __init__(
        self,
        schema: Any = None,
        fence: bool = True,
        formats: bool = False,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        fence = as_bool("fence", self.rule, fence)
        formats = as_bool("formats", self.rule, formats)
        timeout = as_number("timeout", self.rule, timeout, minimum=0.0)
        self._fixed: _Check | None = None
        if schema is not None:
            try:
                if isinstance(schema, str):
                    schema = _schema_from_text(schema)
                self._fixed = _check(schema, formats, timeout)
            except Exception as exc:
                raise SpecError(f"rule:json_schema: invalid schema option: {exc}") from None
        super().__init__(
            schema_hash=None if schema is None else stable_hash(schema),
            fence=fence,
            formats=formats,
            timeout=timeout,
        )
        self._by_reference: dict[str, _Check] = {}

    def _reference_checks(self, reference: Any) -> list[_Check]:
        """One validator per schema in the reference: a schema (dict / JSON text / bool), or
        a list of them (the response must conform to one); missing entries are left out."""
        if isinstance(reference, np.ndarray):
            reference = reference.tolist()
        if isinstance(reference, list | tuple):
            return [self._reference_check(r) for r in reference if not no_reference(r)]
        return [] if no_reference(reference) else [self._reference_check(reference)]

    def _reference_check(self, reference: Any) -> _Check:
        key = reference if isinstance(reference, str) else stable_hash(reference)
        hit = self._by_reference.get(key)
        if hit is None:
            try:
                schema = json.loads(reference) if isinstance(reference, str) else reference
                hit = _check(schema, self.options["formats"], self.options["timeout"])
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
        return self.verdict(query)[0]

    def verdict(self, query: Query) -> tuple[float, str | None]:
        """1.0 when the response's JSON conforms to the schema (to one of them, for a list),
        else 0.0; NaN without a schema. A check past its time limit scores 0.0, with the reason
        (unless another schema of the list is met)."""
        checks = [self._fixed] if self._fixed else self._reference_checks(query.reference)
        if not checks:
            return NAN, None
        value = load_json(query.response, self.options["fence"])
        if not is_valid(value):
            return 0.0, None
        field = "schema" if self._fixed else "reference"
        problem = None
        for check in checks:
            valid, why = self._conforms(check, value, field)
            if valid:
                return 1.0, None
            problem = problem or why
        return 0.0, problem

    def _conforms(self, check: _Check, value: Any, field: str) -> tuple[bool, str | None]:
        """Whether ``value`` conforms and, when the check ran past its time limit, why. A schema
        that cannot be applied (a ``$ref`` it cannot resolve) is the schema's fault:
        :class:`_BadReferenceSchema`, never a traceback."""
        answer = None
        if check.isolated_text is not None:
            try:
                answer = self._in_worker(check.isolated_text, value)
            except schema_worker.WorkerDied as exc:
                timeout = self.options["timeout"]
                return False, (
                    f"rule:json_schema: the schema check did not finish in {timeout:g} s "
                    f"({exc}; a pattern that backtracks without end?): scored 0.0"
                )
        if answer is None:
            valid, error = conformance(check.validator, value)
        else:
            valid, error = bool(answer.get("valid")), answer.get("error")
        if error is not None:
            raise _BadReferenceSchema(error, field=field)
        return valid, None

    def _in_worker(self, schema_text: str, value: Any) -> dict[str, Any] | None:
        """The check in a worker process (:mod:`.schema_worker`), killed past the time limit
        (:class:`~.worker_pool.WorkerDied`); None where no worker can start or the value cannot
        be sent (then it runs here)."""
        job = {"schema": schema_text, "formats": self.options["formats"], "instance": value}
        try:
            return schema_worker.POOL.run(job, float(self.options["timeout"]))
        except (ValueError, RecursionError):  # nested past the JSON encoder's limit
            return None
        except schema_worker.WorkerDidNotStart as exc:
            schema_worker.POOL.warn_no_worker(
                exc, "schemas with patterns are now checked here, without a time limit"
            )
            return None


def compute_score(
    solution: str,
    ground_truth: Any = None,
    schema: Any = None,
    fence: bool = True,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> float:
    """verl-style ``compute_score``: 1.0 if ``solution``'s JSON validates against ``schema``
    (or, without it, ``ground_truth`` as the schema, or any schema of a list), 0.0 if not or not
    JSON; NaN without one. An invalid schema raises (``SpecError`` / ``DataError``)."""
    if isinstance(schema, str) and not schema.strip():
        schema = None
    text = ground_truth.strip() if isinstance(ground_truth, str) else ""
    if schema is None and text and Path(text).expanduser().is_file():
        schema = text  # a path to a .json schema, as the ``schema`` option takes
    reward = JsonSchemaReward(schema=schema, fence=fence, timeout=timeout)
    return reward.score_one(Query(prompt="", response=solution, reference=ground_truth))
