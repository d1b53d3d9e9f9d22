"""The record formats and how the first record picks one."""

from __future__ import annotations

from collections.abc import Callable

from rewardkit.data import (
    autoj,
    generic,
    hh_rlhf,
    judgebench,
    mathbon,
    mrewardbench,
    mtbench,
    multimodal,
    pandalm,
    prd,
    ragrewardbench,
    ratings,
    rewardbench,
    rmb,
    rmbench,
    steps,
    trl,
)
from rewardkit.data.record import Record
from rewardkit.types import Example

#: Record format name → converter.
CONVERTERS: dict[str, Callable[[Record], Example]] = {
    "generic": generic.convert,
    "trl": trl.convert,
    "hh-rlhf": hh_rlhf.convert,
    "rewardbench": rewardbench.convert_v1,
    "rewardbench2": rewardbench.convert_v2,
    "rm-bench": rmbench.convert,
    "rmb": rmb.convert,
    "judgebench": judgebench.convert,
    "autoj": autoj.convert,
    "pandalm": pandalm.convert,
    "mt-bench-human": mtbench.convert,
    "m-rewardbench": mrewardbench.convert,
    "rag-rewardbench": ragrewardbench.convert,
    "helpsteer2": ratings.convert_helpsteer2,
    "prometheus-absolute": ratings.convert_prometheus,
    "math-bon": mathbon.convert,
    "prd-lfqa": prd.convert,
    "t2i-pairs": multimodal.convert_t2i,
    "image-edit": multimodal.convert_edit,
    "mm-qa": multimodal.convert_mm_qa,
    "mmrb2": multimodal.convert_mmrb2,
    "steps": steps.convert,
}
#: The names accepted by ``load(format=...)``.
FORMATS: tuple[str, ...] = tuple(CONVERTERS)


def _is_messages(value: object) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], dict)


def sniff_format(rec: Record) -> str:
    """The most specific format whose shape the record has (see ``docs/data-formats.md``)."""
    bench = _sniff_benchmark(rec)
    if bench:
        return bench
    chosen = rec.peek("chosen", structured=True)
    rejected = rec.peek("rejected", structured=True)
    if _is_messages(chosen) and _is_messages(rejected):
        return "trl"
    if hh_rlhf.looks_like(chosen) and hh_rlhf.looks_like(rejected):
        return "hh-rlhf"
    if (
        isinstance(chosen, list)
        and all(isinstance(c, str) for c in chosen)
        and isinstance(rejected, list)
        and not rec.has("responses")
    ):
        return "rewardbench2"
    texts = (rec.peek(k) for k in ("prompt", "chosen", "rejected", "subset"))
    if all(isinstance(v, str) for v in texts) and not rec.has("responses"):
        return "rewardbench"
    return "generic"


#: Benchmark formats recognised by their own field names (docs/data-formats.md).
_KEYED_FORMATS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("conversation_input", "category_path"), "rmb"),
    (("response_A", "response_B", "label"), "judgebench"),
    (("response 1", "response 2", "label"), "autoj"),
    (("response1", "response2", "annotator1"), "pandalm"),
    (("conversation_a", "conversation_b", "winner"), "mt-bench-human"),
    (("response", "score", "pred_score"), "math-bon"),
    (("instruction", "gpt4_score"), "prometheus-absolute"),
    (("answer_a", "answer_b", "overall_preference"), "prd-lfqa"),
    (("prompt", "response", "helpfulness"), "helpsteer2"),
)


def _sniff_benchmark(rec: Record) -> str | None:
    """A benchmark format recognised by its field names, or None."""
    image_format = multimodal.sniff(rec)
    if image_format:
        return image_format
    if steps.looks_like(rec):
        return "steps"
    for keys, fmt in _KEYED_FORMATS:
        if all(k in rec.data for k in keys):
            return fmt
    chosen = rec.peek("chosen", structured=True)
    rejected = rec.peek("rejected", structured=True)
    if (
        isinstance(chosen, list)
        and isinstance(rejected, list)
        and len(chosen) == len(rejected) == len(rmbench.STYLES)
        and all(isinstance(c, str) for c in chosen + rejected)
        and not rec.has("num_correct")
        and not rec.has("responses")
    ):
        return "rm-bench"
    if isinstance(chosen, str) and isinstance(rejected, str):
        has_prompt = isinstance(rec.peek("prompt"), str)
        if has_prompt and rec.has("language") and rec.has("subset"):
            return "m-rewardbench"
        if (has_prompt or isinstance(rec.peek("question"), str)) and any(
            rec.has(k) for k in ("documents", "docs", "retrieved_documents", "contexts")
        ):
            return "rag-rewardbench"
    return None
