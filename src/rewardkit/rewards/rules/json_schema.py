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

Time limit: the response decides how long validation runs, and jsonschema holds the GIL
throughout: ``pattern`` / ``patternProperties`` run Python's ``re`` (``(a+)+$`` against
``"aaaa…!"``: hours), ``uniqueItems`` compares objects pairwise (8,000 objects: 42 s), recursive
schemas are walked as deep as the response nests. So every check runs in worker processes
(:mod:`.schema_worker`: one call per batch), each given ``timeout`` seconds (default 5): a row
past it scores 0.0 (unverified is not conforming, so a response cannot win by being slow to
check) and is named as a failure of its call with the reason. A response nested too deeply for
the validator (``RecursionError`` at depth ≥ :data:`~.schema_worker.DEEP`) is unverified too,
never blamed on the schema. ``timeout=0`` checks in-process, untimed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
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
from rewardkit.rewards.rules.schema_worker import outcome, validator
from rewardkit.types import Query, stable_hash

#: Seconds one check may take (in a worker) before it is given up.
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
    """A schema's validator, and its JSON text for a worker."""

    validator: Any
    text: str


def _check(schema: Any, formats: bool) -> _Check:
    return _Check(validator(schema, formats), json.dumps(schema))


class JsonSchemaReward(RuleReward):
    """``rule:json_schema`` — 1.0 when the response's JSON validates against the schema.

    Options: ``schema`` (dict / JSON string / file path; else ``Query.reference``), ``fence``
    (read the fenced block, default true), ``formats`` (check ``format`` keywords such as
    ``email``, default false), ``timeout`` (seconds one check may take, in a worker process;
    default 5, 0: in-process and untimed).
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
                self._fixed = _check(schema, formats)
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
                hit = _check(schema, self.options["formats"])
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
        else 0.0; NaN without a schema; why, where a check was given up (then 0.0, unless
        another schema of the list is met). Raises :class:`_BadReferenceSchema` for a schema
        that cannot be applied."""
        verdict = self.verdicts([query])[0]
        if isinstance(verdict, BadReference):
            raise verdict
        return verdict

    def verdicts(self, queries: Sequence[Query]) -> list[tuple[float, str | None] | BadReference]:
        """Every row's verdict; the checks of all rows in one worker call per chunk."""
        out: list[tuple[float, str | None] | BadReference] = []
        pending: list[tuple[int, list[_Check], Any]] = []
        for i, query in enumerate(queries):
            try:
                checks = [self._fixed] if self._fixed else self._reference_checks(query.reference)
            except BadReference as exc:
                out.append(exc)
                continue
            if not checks:
                out.append((NAN, None))
                continue
            value = load_json(query.response, self.options["fence"], strict=True)
            out.append((0.0, None))  # unless a check below is met
            if is_valid(value):
                pending.append((i, checks, value))
        outcomes = iter(self._outcomes([(c, v) for _, checks, v in pending for c in checks]))
        field = "schema" if self._fixed else "reference"
        for i, checks, _ in pending:
            row = [next(outcomes) for _ in checks]
            out[i] = _verdict(row, field)
        return out

    def _outcomes(self, checks: list[tuple[_Check, Any]]) -> list[dict[str, Any]]:
        """:func:`~.schema_worker.outcome` of each (schema, value): in workers, each within the
        time limit, or here when ``timeout=0`` or no worker can start."""
        timeout = float(self.options["timeout"])
        if timeout > 0 and checks:
            try:
                return self._in_workers(checks, timeout)
            except schema_worker.WorkerDidNotStart as exc:
                schema_worker.POOL.warn_no_worker(
                    exc, "schemas are now checked here, without a time limit"
                )
        return [outcome(check.validator, value) for check, value in checks]

    def _in_workers(self, checks: list[tuple[_Check, Any]], timeout: float) -> list[dict[str, Any]]:
        """Checks sent to workers; a value past the JSON encoder's nesting limit is unverified
        here (no validator could walk it either)."""
        schemas: dict[str, int] = {}
        sent: list[tuple[int, str]] = []
        out: list[dict[str, Any] | None] = []
        for check, value in checks:
            try:
                text = json.dumps(value)
            except (ValueError, RecursionError):
                out.append({"unverified": "the response's JSON nests too deeply to check"})
                continue
            sent.append((schemas.setdefault(check.text, len(schemas)), text))
            out.append(None)
        answers = iter(
            schema_worker.outcomes_in_worker(list(schemas), sent, self.options["formats"], timeout)
        )
        return [o if o is not None else next(answers) for o in out]


def _verdict(outcomes: list[dict[str, Any]], field: str) -> tuple[float, str | None]:
    """A row's verdict from its schemas' outcomes, in order: the first met scores 1.0, else 0.0
    with why the first given-up check was. A schema error met while validating (a loop through
    ``anyOf`` back to the root) is on the path this response took, so it scores 0.0 too, never
    NaN: the ``$ref`` s that make a schema unusable for every response are refused before
    (:func:`~.schema_worker.check_refs`: NaN for a reference, ``SpecError`` for the option)."""
    problem = None
    for result in outcomes:
        if result.get("valid"):
            return 1.0, None
        why = result.get("unverified") or result.get("error")
        if why and problem is None:
            problem = f"rule:json_schema: the check was given up ({why}): scored 0.0"
    return 0.0, problem


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
