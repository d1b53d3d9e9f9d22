"""``rewardkit bon``: best-of-N over a prompt file, resumable.

Each finished prompt is appended to the output JSONL at once (flushed) with all candidates and
scores, the pick, and the run's settings hash; a rerun skips the prompts already in the file (a
line cut short by a kill is dropped) and refuses a file written with other settings.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewardkit.data import checks, iter_records
from rewardkit.data.location import Location, describe
from rewardkit.data.readers import parse_json
from rewardkit.data.record import Record
from rewardkit.errors import DataError
from rewardkit.inference.best_of_n import score_candidates, select_best
from rewardkit.inference.luce import SELECT_MODES, check_temperature, luce_pick
from rewardkit.inference.mining import mine_pairs
from rewardkit.outputs import exclusive
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
    of ``prompt``, ``question``, ``problem``, ``instruction``, ``query`` (text or messages, with
    the roles the data layer accepts); the reference likewise from ``reference``, ``answer``,
    ``solution``, ``ground_truth``, ``label``. ``instruction`` is appended to a text prompt
    (e.g. an answer-format hint).

    Ids (an ``id`` column, else ``file:line``) must be unique: a resumed run keys the prompts it
    has finished by id, so a repeated id would be skipped as done. ``limit`` keeps the first
    ``limit`` prompts (0: none)."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be an integer >= 0, got {limit!r}")
    items: list[PromptItem] = []
    first_seen: dict[str, str] = {}
    if limit == 0:
        return items
    for loc, row in iter_records(path):
        rec = Record(row, loc, {})
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
        elif isinstance(value, list):
            msgs = checks.messages(rec, pf, value)  # roles and shapes, as score/data check them
            for i, m in enumerate(msgs):
                if not isinstance(m["content"], str):
                    raise loc.error(
                        f"expected text content, got {describe(m['content'])} (a policy "
                        "generates from text prompts)",
                        field=f"{pf}[{i}].content",
                    )
            value = msgs
        else:
            raise loc.error(
                f"expected text or a list of {{role, content}} messages, got {describe(value)}",
                field=pf,
            )
        rf = reference_field or next((f for f in REFERENCE_FIELDS if f in row), None)
        if reference_field and reference_field not in row:
            raise loc.error("missing reference field", field=reference_field)
        item_id = _prompt_id(loc, row.get("id"))
        where = f"line {loc.line}" if loc.line is not None else f"row {loc.row}"
        if item_id in first_seen:
            raise loc.error(
                f"duplicate id {item_id!r} (first at {first_seen[item_id]}); ids must be unique, "
                "since a resumed run skips every prompt whose id it finished (bon's --out, curate "
                "anyprefer's --trace)",
                field="id",
            )
        first_seen[item_id] = where
        items.append(PromptItem(item_id, as_messages(value), row.get(rf) if rf else None))
        if limit is not None and len(items) >= limit:
            break
    return items


def _prompt_id(loc: Location, value: Any) -> str:
    """A prompt's id: its ``id`` (text or integer), else ``file:line``."""
    if value is None or value == "":
        return loc.label
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise loc.error(f"expected text or an integer id, got {describe(value)}", field="id")
    return str(value)


@dataclass
class BonConfig:
    """What identifies a best-of-N run (besides the prompts)."""

    n: int = 8
    policy: dict[str, Any] = field(default_factory=dict)
    generation: dict[str, Any] = field(default_factory=dict)
    reward: str = ""
    select: str = "best"  # "luce": keep a Luce draw (card E7) besides the best
    select_temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.select not in SELECT_MODES:
            raise ValueError(
                f"select must be one of {', '.join(SELECT_MODES)}, got {self.select!r}"
            )
        self.select_temperature = check_temperature(self.select_temperature)

    def key(self) -> str:
        """Hash written with every output row; a resumed run must match it (``best`` runs keep
        the hash they had before ``select`` existed, so their files still resume)."""
        d = {"n": self.n, "policy": self.policy, "gen": self.generation, "reward": self.reward}
        if self.select != "best":
            d["select"] = [self.select, self.select_temperature]
        return stable_hash(d)


@dataclass(frozen=True)
class RowsFile:
    """How a resumable rows file is named in its errors: the option that names it, what one of
    its rows is, what its rows are and the settings its run key covers."""

    option: str = "--out"
    row: str = "rewardkit bon output row"
    rows: str = "best-of-N rows"
    settings: str = "policy, n, sampling, reward or --select"
    #: The fields of the file's own rows beyond ``bon``'s, checked in the same pass:
    #: ``check(row, bad)`` raises ``bad(message, field)`` (anyprefer's rounds, passed, pair).
    check: Callable[[dict[str, Any], Callable[..., DataError]], None] | None = None


#: ``bon``'s ``--out``.
BON_ROWS = RowsFile()


def load_done(
    path: Path, run_key: str | None, words: RowsFile = BON_ROWS
) -> dict[str, dict[str, Any]]:
    """Rows already in ``path`` by prompt id; a truncated last line is cut off the file.

    Every row is checked (an object with the fields a ``bon`` row has, each of the right type,
    ids unique) and a bad one is a :class:`DataError` with the file and line. ``run_key=None``
    only checks (nothing is cut off, any settings accepted): the CLI does that before loading
    the policy."""
    done: dict[str, dict[str, Any]] = {}
    lines: dict[str, int] = {}
    if not path.exists() or not path.is_file():
        return done
    good_bytes = 0
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                good_bytes += len(raw)
                continue
            try:
                row = parse_json(raw.decode("utf-8"))
            except ValueError as exc:
                if raw.endswith(b"\n"):
                    bad_text = isinstance(exc, UnicodeDecodeError)
                    reason = "not valid UTF-8 text" if bad_text else str(exc)
                    raise DataError(reason, path=str(path), line=lineno) from None
                break  # an incomplete last line: the run was killed while writing it
            _check_row(row, path, lineno, words)
            if run_key is not None and row["run"] != run_key:
                raise DataError(
                    f"this file was written by a run with other settings ({words.settings}); "
                    f"pass a new {words.option} or delete the file",
                    path=str(path),
                    line=lineno,
                    field="run",
                )
            key = str(row["id"])
            if key in done:
                raise DataError(
                    f"id {key!r} appears twice (first at line {lines[key]}): a run that skips "
                    f"finished prompts by id cannot tell them apart; pass a new {words.option}",
                    path=str(path),
                    line=lineno,
                    field="id",
                )
            done[key], lines[key] = row, lineno
            good_bytes += len(raw)
    if run_key is not None and good_bytes < path.stat().st_size:
        with path.open("r+b") as fh:
            fh.truncate(good_bytes)
    if run_key is not None and good_bytes and _last_byte(path) != b"\n":
        # a whole last row cut before its newline (a full disk): the next row would join it
        with path.open("ab") as fh:
            fh.write(b"\n")
    return done


def _last_byte(path: Path) -> bytes:
    with path.open("rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1)


def _check_row(row: Any, path: Path, line: int, words: RowsFile = BON_ROWS) -> None:
    """Refuse a line of a ``bon`` output file that is not a row ``bon`` writes."""

    def bad(message: str, field: str | None = None) -> DataError:
        return DataError(
            f"{message}; not a {words.row} (pass a new {words.option}, or delete the file)",
            path=str(path),
            line=line,
            field=field,
        )

    if not isinstance(row, dict):
        raise bad(f"expected an object, got {describe(row)}")
    for name in ("run", "id", "prompt", "candidates"):
        if name not in row:
            raise bad("missing field", name)
    if not isinstance(row["run"], str):
        raise bad(f"expected text, got {describe(row['run'])}", "run")
    if isinstance(row["id"], bool) or not isinstance(row["id"], str | int):
        raise bad(f"expected text or an integer id, got {describe(row['id'])}", "id")
    prompt = row["prompt"]
    if not isinstance(prompt, list) or not prompt:
        raise bad(f"expected a list of messages, got {describe(prompt)}", "prompt")
    for i, m in enumerate(prompt):
        if not (isinstance(m, dict) and isinstance(m.get("role"), str) and "content" in m):
            raise bad(f"expected a {{role, content}} message, got {describe(m)}", f"prompt[{i}]")
    cands = row["candidates"]
    if not isinstance(cands, list) or not cands:
        raise bad(f"expected a list of candidates, got {describe(cands)}", "candidates")
    for i, c in enumerate(cands):
        if not isinstance(c, dict) or not isinstance(c.get("text"), str):
            raise bad(f"expected a {{text, score}} object, got {describe(c)}", f"candidates[{i}]")
        score = c.get("score")
        if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)):
            raise bad(f"expected a number or null, got {describe(score)}", f"candidates[{i}].score")
    if words.check is not None:
        words.check(row, bad)


def _json_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def check_same_prompt(
    row: dict[str, Any], item: PromptItem, path: Path, words: RowsFile = BON_ROWS
) -> None:
    """Refuse to resume a prompt whose finished row holds another prompt text or another
    reference (its scores were computed against the old one: a rule reward checks the answer
    with it); a row without a ``reference`` field (written before it was kept) is not checked
    for it."""
    if row["prompt"] != item.prompt:
        what, field = "prompt text; the prompt file or --instruction", "prompt"
    elif "reference" in row and _json_text(row["reference"]) != _json_text(item.reference):
        what, field = "reference; the prompt file or --reference-field", "reference"
    else:
        return
    raise DataError(
        f"prompt id {item.id!r} is done in this file with another {what} changed since that "
        f"run; pass a new {words.option}",
        path=str(path),
        field=field,
    )


def check_same_prompts(
    done: dict[str, dict[str, Any]],
    items: Sequence[PromptItem],
    path: Path,
    words: RowsFile = BON_ROWS,
) -> None:
    """Refuse to append to a file written from another prompt file: a prompt of this run done
    there under another id that is not a prompt of this run (the file was renamed or moved,
    so its ``file:line`` ids changed, or its ``id`` column did: a resumed run would answer it
    again and the file would hold it twice), or a file none of whose rows is a prompt of this
    run (another prompt file's rows with this run's appended after them). Rows of prompts past
    a smaller ``--limit`` are still accepted."""
    if not done or not items:
        return
    ids = {it.id for it in items}
    others = {_json_text([r["prompt"], r.get("reference")]): k for k, r in done.items()}
    for it in items:
        if it.id in done:
            continue
        other = others.get(_json_text([it.prompt, it.reference]))
        if other is not None and other not in ids:
            raise DataError(
                f"prompt id {it.id!r} is done in this file as id {other!r} (the same prompt "
                "and reference): the prompt file was renamed or moved (its ids are file:line) "
                "or its ids changed since that run, so it would be answered twice; rerun with "
                f"that prompt file, or pass a new {words.option}",
                path=str(path),
                field="id",
            )
    if not ids & done.keys():
        first = next(iter(done))
        raise DataError(
            f"none of the {len(done):,} rows in this file is a prompt of this run (the first "
            f"row's id is {first!r}): it holds the {words.rows} of another prompt file, and a "
            f"resumed run appends only to its own rows; pass a new {words.option}",
            path=str(path),
            field="id",
        )


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
    with exclusive(path, "--out"):  # two runs appending to one file would interleave rows
        return _run_bon(items, sample, reward, path, config, progress)


def _run_bon(
    items: Sequence[PromptItem],
    sample: Callable[[list[Message], int], Sequence[str]],
    reward: Reward,
    path: Path,
    config: BonConfig,
    progress: bool,
) -> dict[str, Any]:
    run_key = config.key()
    done = load_done(path, run_key)
    for it in items:  # same id, other prompt or reference: the prompt file changed
        row = done.get(it.id)
        if row is not None:
            check_same_prompt(row, it, path)
    check_same_prompts(done, items, path)
    todo = [it for it in items if it.id not in done]
    gen_s = score_s = 0.0
    unscored = 0
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
            unscored += int(all(math.isnan(x) for x in scores))
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
            if config.select == "luce":
                k, prob = luce_pick(
                    scores, config.generation.get("seed", 0), it.prompt, config.select_temperature
                )
                row |= {"select": "luce", "select_temperature": config.select_temperature}
                row |= {"kept": k, "kept_response": cands[k], "kept_score": _num(scores[k])}
                row["kept_prob"] = _num(prob)
            try:
                fh.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")
                fh.flush()
            except OSError as exc:  # a full disk or a size limit: say which file
                raise OSError(exc.errno, exc.strerror, str(path)) from None
            done[it.id] = row
    return {
        "prompts": len(items),
        "skipped_done": len(items) - len(todo),
        "generated": len(todo),
        "unscored": unscored,  # every candidate NaN: its "best" is the first, best_score null
        "generate_s": gen_s,
        "score_s": score_s,
    }


def _num(x: float) -> float | None:
    """A score as JSON holds it: NaN and ±inf (which JSON has not: ``Infinity`` broke ``jq`` and
    every strict reader of the file) are null, as every rewardkit output writes them."""
    x = float(x)
    return x if math.isfinite(x) else None


def _progress(items: Sequence[Any], enabled: bool) -> Iterable[Any]:
    if not enabled or len(items) < 2:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return items
    return tqdm(items, desc="best-of-N", unit="prompt")


def read_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rows of a ``bon`` output file; a line that is not JSON names its file and line."""
    rows = []
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except ValueError as exc:
                raise DataError(f"invalid JSON: {exc}", path=str(path), line=lineno) from None
    return rows


def repeated_prompts(items: Sequence[PromptItem]) -> list[str]:
    """Ids of the prompts whose text and reference repeat an earlier prompt's: sampling is
    seeded by the prompt, so they get that prompt's candidates again (and its pairs)."""
    seen: set[str] = set()
    out = []
    for it in items:
        key = _json_text([it.prompt, it.reference])
        if key in seen:
            out.append(it.id)
        seen.add(key)
    return out


def mine_from_rows(
    rows: Iterable[dict[str, Any]], min_gap: float = 0.0, mode: str = "best_worst"
) -> list[Example]:
    """Preference pairs (card E5/F1) from ``bon`` output rows; a pair (prompt, chosen,
    rejected) that an earlier row gave already (a repeated prompt) is written once."""
    out: list[Example] = []
    seen: set[str] = set()
    for row in rows:
        cands = [c["text"] for c in row["candidates"]]
        scores = [float("nan") if c["score"] is None else c["score"] for c in row["candidates"]]
        for ex in mine_pairs(
            row["prompt"],
            cands,
            scores,
            min_gap=min_gap,
            mode=mode,
            id=str(row["id"]),
            reference=row.get("reference"),
        ):
            key = _json_text([ex.prompt, ex.reference, ex.responses])
            if key not in seen:
                seen.add(key)
                out.append(ex)
    return out
