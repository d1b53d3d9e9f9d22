"""``rewardkit bon``: best-of-N over a prompt file, resumable.

Each finished prompt is appended to the output JSONL at once (flushed) with all candidates and
scores, the pick, and the run's settings hash; a rerun skips the prompts already in the file (a
line cut short by a kill is dropped) and refuses a file written with other settings.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewardkit.data import iter_records
from rewardkit.errors import DataError
from rewardkit.inference.best_of_n import score_candidates, select_best
from rewardkit.inference.mining import mine_pairs
from rewardkit.types import Example, Message, Reward, as_messages, stable_hash

PROMPT_FIELDS = ("prompt", "question", "problem", "instruction", "query")
REFERENCE_FIELDS = ("reference", "answer", "solution", "ground_truth", "label")


@dataclass
class PromptItem:
    """One prompt to answer, with its gold reference (for rules) when the data has one."""

    id: str
    prompt: list[Message]
    reference: Any = None


def read_prompts(
    path: str | os.PathLike[str],
    prompt_field: str | None = None,
    reference_field: str | None = None,
    limit: int | None = None,
    instruction: str | None = None,
) -> list[PromptItem]:
    """Prompts from a JSONL/JSON/CSV/Parquet file. The prompt is ``prompt_field`` or the first
    of ``prompt``, ``question``, ``problem``, ``instruction``, ``query`` (text or messages); the
    reference likewise from ``reference``, ``answer``, ``solution``, ``ground_truth``, ``label``.
    ``instruction`` is appended to a text prompt (e.g. an answer-format hint)."""
    items: list[PromptItem] = []
    for loc, row in iter_records(path):
        pf = prompt_field or next((f for f in PROMPT_FIELDS if f in row), None)
        if pf is None or pf not in row:
            raise loc.error(
                f"no prompt field (looked for {prompt_field or ', '.join(PROMPT_FIELDS)})",
                field=prompt_field,
            )
        value = row[pf]
        if isinstance(value, str):
            if not value.strip():
                raise loc.error("empty prompt", field=pf)
            value = value + ("\n\n" + instruction if instruction else "")
        elif not (
            isinstance(value, list)
            and value
            and all(
                isinstance(m, dict) and isinstance(m.get("content"), str) and "role" in m
                for m in value
            )
        ):
            raise loc.error("expected text or a list of {role, content} messages", field=pf)
        rf = reference_field or next((f for f in REFERENCE_FIELDS if f in row), None)
        if reference_field and reference_field not in row:
            raise loc.error("missing reference field", field=reference_field)
        items.append(
            PromptItem(
                str(row.get("id", loc.label)), as_messages(value), row.get(rf) if rf else None
            )
        )
        if limit is not None and len(items) >= limit:
            break
    return items


@dataclass
class BonConfig:
    """What identifies a best-of-N run (besides the prompts)."""

    n: int = 8
    policy: dict[str, Any] = field(default_factory=dict)
    generation: dict[str, Any] = field(default_factory=dict)
    reward: str = ""

    def key(self) -> str:
        """Hash written with every output row; a resumed run must match it."""
        return stable_hash(
            {"n": self.n, "policy": self.policy, "gen": self.generation, "reward": self.reward}
        )


def load_done(path: Path, run_key: str) -> dict[str, dict[str, Any]]:
    """Rows already in ``path`` by prompt id; a truncated last line is cut off the file."""
    done: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return done
    good_bytes = 0
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                row = json.loads(raw)
            except ValueError:
                if raw.endswith(b"\n"):
                    raise DataError("not valid JSON", path=str(path), line=lineno) from None
                break  # an incomplete last line: the run was killed while writing it
            if row.get("run") != run_key:
                raise DataError(
                    "this file was written by a run with other settings (policy, n, sampling "
                    "or reward); pass a new --out or delete the file",
                    path=str(path),
                    line=lineno,
                    field="run",
                )
            done[str(row["id"])] = row
            good_bytes += len(raw)
    if good_bytes < path.stat().st_size:
        with path.open("r+b") as fh:
            fh.truncate(good_bytes)
    return done


def run_bon(
    items: Sequence[PromptItem],
    sample: Callable[[list[Message], int], Sequence[str]],
    reward: Reward,
    out: str | os.PathLike[str],
    config: BonConfig,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate, score (one pass per prompt's N candidates) and write each prompt's row; skip
    prompts already done. Returns counts and timings."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    run_key = config.key()
    done = load_done(path, run_key)
    todo = [it for it in items if it.id not in done]
    gen_s = score_s = 0.0
    bar = _progress(todo, progress)
    with path.open("a", encoding="utf-8") as fh:
        for it in bar:
            t0 = time.perf_counter()
            cands = list(sample(it.prompt, config.n))
            t1 = time.perf_counter()
            scores = score_candidates(reward, [it.prompt], [cands], [it.reference])[0]
            t2 = time.perf_counter()
            gen_s, score_s = gen_s + t1 - t0, score_s + t2 - t1
            best = select_best(scores)
            row = {
                "id": it.id,
                "prompt": it.prompt,
                "reference": it.reference,
                "candidates": [
                    {"text": c, "score": _num(s)} for c, s in zip(cands, scores, strict=True)
                ],
                "best": best,
                "best_response": cands[best],
                "best_score": _num(scores[best]),
                "run": run_key,
            }
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            fh.flush()
            done[it.id] = row
    return {
        "prompts": len(items),
        "skipped_done": len(items) - len(todo),
        "generated": len(todo),
        "generate_s": gen_s,
        "score_s": score_s,
    }


def _num(x: float) -> float | None:
    x = float(x)
    return None if x != x else x


def _progress(items: Sequence[Any], enabled: bool) -> Iterable[Any]:
    if not enabled or len(items) < 2:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return items
    return tqdm(items, desc="best-of-N", unit="prompt")


def read_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rows of a ``bon`` output file."""
    with Path(path).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def mine_from_rows(
    rows: Iterable[dict[str, Any]], min_gap: float = 0.0, mode: str = "best_worst"
) -> list[Example]:
    """Preference pairs (card E5/F1) from ``bon`` output rows."""
    out: list[Example] = []
    for row in rows:
        cands = [c["text"] for c in row["candidates"]]
        scores = [float("nan") if c["score"] is None else c["score"] for c in row["candidates"]]
        out.extend(
            mine_pairs(
                row["prompt"],
                cands,
                scores,
                min_gap=min_gap,
                mode=mode,
                id=str(row["id"]),
                reference=row.get("reference"),
            )
        )
    return out
