"""JSON Schema validation with a time limit per check, in a worker process: ``rule:json_schema``.

A response decides how long validation runs: jsonschema matches ``pattern`` and
``patternProperties`` with Python's ``re`` (``^(a+)+$`` against ``"aaaa…!"``: hours), checks
``uniqueItems`` on objects pairwise in Python (8,000 objects: 42 s), and walks recursive
schemas as deep as the response nests. All of it holds the GIL, so in the scoring process it
would stop a whole server. So :class:`~rewardkit.rewards.rules.json_schema.JsonSchemaReward`
validates in these workers (:mod:`.worker_pool`): one call per batch, each check given its own
time (:func:`~.worker_pool.run_timed`). Kept lean (jsonschema only) so a worker starts fast.
"""

from __future__ import annotations

import json
from functools import lru_cache, partial
from typing import Any

from rewardkit.rewards.rules.worker_pool import (
    WorkerDidNotStart,
    WorkerDied,
    WorkerPool,
    run_timed,
    serve,
)

__all__ = ["POOL", "WorkerDidNotStart", "WorkerDied", "outcome", "outcomes_in_worker", "validator"]

#: The schema-validation workers of this process.
POOL = WorkerPool("rewardkit.rewards.rules.schema_worker", "JSON Schema")

#: Nesting depth from which a validator's ``RecursionError`` is the response's (too deep to
#: check), not the schema's (a ``$ref`` chain without end): jsonschema spends a few Python
#: frames per level, so a shallower value cannot exhaust the interpreter's limit alone.
DEEP = 32


class SchemaCannotApply(ValueError):
    """A ``$ref`` of the schema that cannot be resolved, or a chain of bare ``$ref`` s that
    loops: found before any response is read, so it never depends on the response."""


#: Bare ``$ref`` s followed from one reference before the chain counts as endless.
MAX_REF_CHAIN = 64


def validator(schema: Any, formats: bool) -> Any:
    """A jsonschema validator for ``schema`` (its ``$schema`` picks the draft); raises when the
    schema itself is invalid, or cannot be applied (:func:`check_refs`). Nothing is fetched: a
    remote ``$ref`` resolves only to the meta-schemas jsonschema ships (jsonschema's default
    registry would download any other URL)."""
    import referencing
    from jsonschema import FormatChecker
    from jsonschema.validators import validator_for

    cls = validator_for(schema)
    cls.check_schema(schema)
    checker = FormatChecker() if formats else None
    built = cls(schema, format_checker=checker, registry=referencing.Registry())
    check_refs(built)
    return built


def check_refs(built: Any) -> None:
    """Raise :class:`SchemaCannotApply` when a ``$ref`` anywhere in the schema cannot be
    resolved or a chain of bare ``$ref`` s loops (``{"$ref": "#"}``). Whether validation reaches
    such a ``$ref`` depends on the response (``{"anyOf": [{"type": "integer"}, {"$ref":
    "#/nowhere"}]}`` met ``5`` and failed on ``"x"``), so it is checked here, for every response
    alike: a row scored NaN only for the responses that went there."""
    import referencing.exceptions
    import referencing.jsonschema

    spec = referencing.jsonschema.specification_with(
        built.ID_OF(built.META_SCHEMA) or "", default=referencing.jsonschema.DRAFT202012
    )
    stack = [(built._resolver, spec.create_resource(built.schema))]
    while stack:
        resolver, resource = stack.pop()
        resolver = resolver.in_subresource(resource)
        ref = resource.contents.get("$ref") if isinstance(resource.contents, dict) else None
        if isinstance(ref, str):
            try:
                _follow(resolver, ref)
            except referencing.exceptions.Unresolvable as exc:
                why = f"{type(exc).__name__}: {exc}"
                raise SchemaCannotApply(f"the schema cannot be applied ({why})") from None
        stack.extend((resolver, sub) for sub in resource.subresources())


def _follow(resolver: Any, ref: str) -> None:
    """Resolve ``ref`` and the bare ``$ref`` s it leads to; raise when the chain loops."""
    for _ in range(MAX_REF_CHAIN):
        resolved = resolver.lookup(ref)
        contents = resolved.contents
        if not (isinstance(contents, dict) and set(contents) <= {"$ref", "$id", "$comment"}):
            return
        ref, resolver = contents.get("$ref"), resolved.resolver
        if not isinstance(ref, str):
            return
    raise SchemaCannotApply("rule:json_schema: the schema's $ref chain recurses without end")


def depth(value: Any) -> int:
    """How deeply ``value``'s arrays and objects nest (a scalar: 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        )
        if children is not None:
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in children)
    return deepest


def outcome(check: Any, value: Any) -> dict[str, Any]:
    """One check: ``{"valid": bool}``; ``{"error": why}`` where the schema cannot be applied (a
    ``$ref`` it cannot resolve: a remote URL, a pointer to nowhere, an endless chain: the
    schema's fault); ``{"unverified": why}`` where the response nests too deeply to check."""
    try:
        return {"valid": bool(check.is_valid(value))}
    except RecursionError:
        levels = depth(value)
        if levels >= DEEP:
            return {
                "unverified": f"the response's JSON nests {levels} levels deep, too deep to check"
            }
        return {"error": "rule:json_schema: the schema's $ref chain recurses without end"}
    except Exception as exc:
        why = f"{type(exc).__name__}: {exc}"
        return {"error": f"rule:json_schema: the schema cannot be applied ({why})"}


def outcomes_in_worker(
    schemas: list[str], checks: list[tuple[int, str]], formats: bool, timeout: float
) -> list[dict[str, Any]]:
    """:func:`outcome` of each ``(schema index, instance JSON text)`` in ``checks``, checked in
    workers, each within ``timeout`` seconds (past it, or when its worker stopped:
    ``{"unverified": why}``). Raises :class:`WorkerDidNotStart` when no worker can start."""

    def job(chunk: list[tuple[int, str]]) -> dict[str, Any]:
        used = sorted({s for s, _ in chunk})
        where = {s: k for k, s in enumerate(used)}
        return {
            "schemas": [schemas[s] for s in used],
            "checks": [[where[s], text] for s, text in chunk],
            "formats": formats,
            "timeout": timeout,
        }

    def died(exc: WorkerDied) -> dict[str, Any]:
        return {"unverified": str(exc)}

    return POOL.run_batches(checks, job, "outcomes", timeout, died)


def checked(check: Any, instance: str, timeout: float) -> dict[str, Any]:
    """:func:`outcome` of the JSON text ``instance`` within ``timeout`` seconds (a worker's)."""
    try:
        value = json.loads(instance)
    except (ValueError, RecursionError):
        return {"unverified": "the response's JSON could not be read back in the worker"}
    finished, result = run_timed(partial(outcome, check, value), timeout)
    return result if finished else {"unverified": f"did not finish in {timeout:g} s"}


@lru_cache(maxsize=1024)
def _built(schema_text: str, formats: bool) -> Any:
    """The validator of a schema sent as JSON text (built once per distinct schema)."""
    return validator(json.loads(schema_text), formats)


def main() -> None:
    """The worker: ``{"schemas": [JSON text], "checks": [[schema index, instance JSON text]],
    "formats", "timeout"}`` per stdin line, ``{"outcomes": [...]}`` per stdout line (each as
    :func:`outcome`, or ``{"unverified": why}`` past the time limit)."""

    def handle(job: dict[str, Any]) -> dict[str, Any]:
        formats, timeout = bool(job["formats"]), float(job["timeout"])
        try:
            checks = [_built(text, formats) for text in job["schemas"]]
        except Exception as exc:  # the caller checked them; never end the worker over it
            return {"error": f"rule:json_schema: invalid schema: {exc}"}
        outcomes = [checked(checks[i], text, timeout) for i, text in job["checks"]]
        return {"outcomes": outcomes}

    serve(handle)


if __name__ == "__main__":
    main()
