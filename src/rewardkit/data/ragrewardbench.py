"""RAG-RewardBench rows (Jin et al., 2412.13746; docs/methods/D4-rag-rewardbench.md): pairs whose prompt carries the
retrieved documents, in RAG-specific scenarios."""

from __future__ import annotations

from typing import Any

from rewardkit.data import checks
from rewardkit.data.location import describe
from rewardkit.data.record import Record
from rewardkit.types import Example

#: Scenario of a subset or file name keyword (paper §3: four RAG scenarios, plus the general
#: helpfulness / harmlessness files of the public release).
SCENARIOS = (
    ("reason", "multi-hop reasoning"),
    ("multi", "multi-hop reasoning"),
    ("hop", "multi-hop reasoning"),
    ("citation", "fine-grained citation"),
    ("abstain", "appropriate abstain"),
    ("conflict", "conflict robustness"),
    ("helpful", "helpfulness"),
    ("harmless", "harmlessness"),
)
_DOC_FIELDS = ("documents", "docs", "retrieved_documents", "context", "contexts", "passages")


def scenario_of(name: str) -> str:
    """``"multi_hop_hotpotqa"`` → ``"multi-hop reasoning"``; unknown names are their own."""
    low = name.lower()
    for key, scenario in SCENARIOS:
        if key in low:
            return scenario
    return name


def _docs_text(rec: Record, name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise rec.error(name, f"expected text or a list of documents, got {describe(value)}")
    parts = []
    for i, d in enumerate(value):
        if isinstance(d, dict):
            title, body = d.get("title"), d.get("text", d.get("content"))
            if not isinstance(body, str):
                raise rec.error(
                    name, f"expected a document with 'text', got {describe(d)}", f"[{i}]"
                )
            parts.append(f"[{i + 1}] {title}\n{body}" if title else f"[{i + 1}] {body}")
        else:
            parts.append(f"[{i + 1}] {checks.text(rec, name, d, f'[{i}]', 'a document')}")
    return "\n\n".join(parts)


def convert(rec: Record) -> Example:
    """``prompt`` (or ``question``), optional documents (``documents``/``docs``/``context``…,
    text or a list, prepended to the prompt as numbered passages), ``chosen``, ``rejected``, and
    ``subset`` (else the file name). Section = the RAG scenario."""
    key = "prompt" if rec.has("prompt") else "question"
    prompt = checks.prompt(rec, key, allow_messages=True)
    for name in _DOC_FIELDS:
        if rec.has(name):
            docs = _docs_text(rec, name, rec.get(name, structured=True))
            first = prompt[-1]
            prompt = [
                *prompt[:-1],
                {
                    "role": first["role"],
                    "content": f"Documents:\n{docs}\n\nQuestion: {first['content']}",
                },
            ]
            break
    chosen = checks.response(rec, "chosen", rec.require("chosen"))
    rejected = checks.response(rec, "rejected", rec.require("rejected"))
    subset = rec.opt_text("subset") or rec.loc.name.rsplit("/", 1)[-1].split(".")[0]
    rec.data["subset"] = subset
    return rec.finish(
        "rag-rewardbench", prompt, [chosen, rejected], [0], meta={"section": scenario_of(subset)}
    )
