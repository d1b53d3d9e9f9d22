"""RM-Bench rows: three chosen and three rejected responses in three styles (docs/methods/D1-rewardbench.md-style
pairwise accuracy over a 3×3 style matrix; Liu et al., "RM-Bench", ICLR 2025)."""

from __future__ import annotations

from rewardkit.data import checks
from rewardkit.data.record import Record
from rewardkit.types import Example

#: Response styles, in the published order of ``chosen`` and ``rejected``.
STYLES = ("concise", "detailed", "detailed_markdown")
#: RM-Bench domains, in the published order.
DOMAINS = ("chat", "math", "code", "safety")

_SUBSET_DOMAIN = {
    "alpacaeval": "chat",
    "bigcode/humanevalpack": "code",
    "math-prm": "math",
    "math": "math",
    "xstest-should-refuse": "safety",
    "xstest-should-respond": "safety",
    "refusals-dangerous": "safety",
    "refusals-offensive": "safety",
    "donotanswer": "safety",
}


def domain_of(subset: str | None, file_name: str = "", given: object = None) -> str:
    """The RM-Bench domain of a row: its ``domain`` field, else the file name
    (``chat_filtered.json`` → chat, ``safety-refuse_filtered.json`` → safety), else the subset."""
    if isinstance(given, str) and given:
        return given.split("-")[0].lower()
    stem = file_name.rsplit("/", 1)[-1].split(".")[0].lower()
    for d in DOMAINS:
        if stem.startswith(d):
            return d
    if subset and subset in _SUBSET_DOMAIN:
        return _SUBSET_DOMAIN[subset]
    return (subset or "chat").split("-")[0]


def convert(rec: Record) -> Example:
    """``prompt``, ``chosen`` (3 texts) and ``rejected`` (3 texts) in the style order
    concise, detailed, detailed markdown; responses = chosen + rejected, chosen = [0, 1, 2].

    ``meta["section"]`` is the domain (chat, math, code, safety) and ``meta["style_matrix"]``
    marks the row for the 3×3 style-matrix rule. A row without ``subset`` (``total_dataset.json``
    has ``domain`` only) takes its domain as subset.
    """
    prompt = checks.prompt(rec, allow_messages=False)
    chosen = checks.text_list(rec, "chosen", rec.require("chosen", structured=True))
    rejected = checks.text_list(rec, "rejected", rec.require("rejected", structured=True))
    for name, got in (("chosen", chosen), ("rejected", rejected)):
        if len(got) != len(STYLES):
            raise rec.error(
                name, f"expected {len(STYLES)} responses (one per style), got {len(got)}"
            )
    meta = {}
    if rec.has("language"):  # code rows: the programming language, not a natural language
        meta["code_language"] = rec.data.pop("language")
    subset = rec.opt_text("subset")
    rec.used.discard("subset")  # finish() reads it again
    domain = domain_of(subset, rec.loc.name, rec.get("domain"))
    if subset is None:  # total_dataset.json rows carry a domain only: the domain is the subset
        rec.data["subset"] = domain
    return rec.finish(
        "rm-bench",
        prompt,
        chosen + rejected,
        [0, 1, 2],
        meta={**meta, "section": domain, "style_matrix": True},
    )
