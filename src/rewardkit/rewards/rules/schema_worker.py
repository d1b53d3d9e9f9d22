"""JSON Schema validation that a worker process can run: ``rule:json_schema``'s checks of
schemas with ``pattern`` or ``patternProperties``.

jsonschema matches those with Python's ``re``, which holds the GIL with no time limit: a
catastrophic pattern (``(a+)+$``) against a response such as ``"aaaa…!"`` would stop a whole
server. So :class:`~rewardkit.rewards.rules.json_schema.JsonSchemaReward` validates against such
schemas in these workers (:mod:`.worker_pool`), killed past their deadline. Kept lean (jsonschema
only) so a worker starts fast.
"""

from __future__ import annotations

from typing import Any

from rewardkit.rewards.rules.worker_pool import WorkerDidNotStart, WorkerDied, WorkerPool, serve

__all__ = ["POOL", "WorkerDidNotStart", "WorkerDied", "conformance", "has_patterns", "validator"]

#: The schema-validation workers of this process.
POOL = WorkerPool("rewardkit.rewards.rules.schema_worker", "JSON Schema")

#: Keywords whose regular expressions jsonschema runs on the instance (strings, property names).
PATTERN_KEYWORDS = ("pattern", "patternProperties")


def validator(schema: Any, formats: bool) -> Any:
    """A jsonschema validator for ``schema`` (its ``$schema`` picks the draft); raises when the
    schema itself is invalid."""
    from jsonschema import FormatChecker
    from jsonschema.validators import validator_for

    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=FormatChecker() if formats else None)


def conformance(check: Any, value: Any) -> tuple[bool, str | None]:
    """Whether ``value`` conforms, and the schema's fault where it cannot be applied (a ``$ref``
    it cannot resolve: a remote URL, a pointer to nowhere, an endless chain)."""
    try:
        return bool(check.is_valid(value)), None
    except RecursionError:
        return False, "rule:json_schema: the schema's $ref chain recurses without end"
    except Exception as exc:
        why = f"{type(exc).__name__}: {exc}"
        return False, f"rule:json_schema: the schema cannot be applied ({why})"


def has_patterns(schema: Any) -> bool:
    """Whether any sub-schema holds a ``pattern`` or ``patternProperties`` (where a regular
    expression meets the response)."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if any(k in node for k in PATTERN_KEYWORDS):
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def main() -> None:
    """The worker: ``{"schema": JSON text, "formats": bool, "instance": value}`` per stdin line,
    ``{"valid": bool}`` or ``{"error": why}`` per stdout line."""
    import json

    validators: dict[tuple[str, bool], Any] = {}

    def handle(job: dict[str, Any]) -> dict[str, Any]:
        key = (job["schema"], bool(job["formats"]))
        check = validators.get(key)
        if check is None:
            try:
                check = validator(json.loads(key[0]), key[1])
            except Exception as exc:  # the caller checked it; never end the worker over it
                return {"error": f"rule:json_schema: invalid schema: {exc}"}
            if len(validators) > 1024:
                validators.clear()
            validators[key] = check
        valid, error = conformance(check, job["instance"])
        return {"valid": valid} if error is None else {"error": error}

    serve(handle)


if __name__ == "__main__":
    main()
