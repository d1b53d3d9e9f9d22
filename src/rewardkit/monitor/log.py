"""The monitor's JSONL log: reading it back, and appending to one a crash may have cut.

A run that stops mid-write (killed, out of memory, a full disk) leaves its last record cut short:
a line that is the start of a JSON object. Such a line is skipped and reported (it holds no whole
step), where it made the whole log unreadable; any other line that is not a monitor record is
still a :class:`~rewardkit.errors.DataError` naming the file, line and field. A resumed monitor
starts its first record on a new line, where it was glued to the cut one (unreadable from there).

A run resumed from a checkpoint repeats the steps it had logged after that checkpoint: the
resumed monitor drops them from the log first (:func:`drop_past`), and a reader keeps a rewound
run's records over the ones they replace (a step number lower than the one before it: those
from it on are superseded), counted, so a log written before either reads as one series.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from pathlib import Path
from typing import Any, NamedTuple


class LogRead(NamedTuple):
    """What :func:`read_log_report` found: the records, the lines cut short (1-based) and how
    many records a resumed run's rewrite of their steps superseded (left out)."""

    records: list[dict[str, Any]]
    cut_lines: list[int]
    superseded: int = 0


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """Records of a monitor JSONL log (None back to NaN). A line cut short by a crash is
    skipped with a warning; a line that is not a record the monitor writes (an object with a
    numeric ``step``, numbers or null, ``warnings`` a list of texts) is a
    :class:`~rewardkit.errors.DataError` naming the file, line and field."""
    found = read_log_report(path)
    if found.cut_lines:
        warnings.warn(cut_note(path, found.cut_lines), UserWarning, stacklevel=2)
    if found.superseded:
        warnings.warn(superseded_note(path, found.superseded), UserWarning, stacklevel=2)
    return found.records


def superseded_note(path: str | Path, n: int) -> str:
    """One line saying that ``n`` records of ``path`` were rewritten by a resumed run."""
    return (
        f"{path}: left out {n} record(s) that a run resumed from an earlier checkpoint wrote "
        "again (its steps went back): the resumed run's records are kept"
    )


def cut_note(path: str | Path, lines: list[int]) -> str:
    """One line saying which records of ``path`` were cut short and skipped."""
    where = ", ".join(map(str, lines[:5])) + (" …" if len(lines) > 5 else "")
    return (
        f"{path}: skipped {len(lines)} record(s) cut short mid-write (line {where}): the run "
        "stopped while writing them"
    )


def read_log_report(path: str | Path) -> LogRead:
    """:func:`read_log`'s records, the line numbers of the records cut short (skipped) and the
    count of records superseded by a resumed run (a step lower than the record before it: the
    records from that step on are replaced by the resumed run's; equal steps are kept, as a
    trainer calling the reward several times per step logs them)."""
    out, superseded = [], 0
    whole, cut = log_lines(path)
    for _, rec in whole:
        rec = {k: (math.nan if v is None else v) for k, v in rec.items()}
        if out and rec["step"] < out[-1]["step"]:
            kept = [r for r in out if r["step"] < rec["step"]]
            superseded += len(out) - len(kept)
            out = kept
        out.append(rec)
    return LogRead(out, cut, superseded)


def log_lines(path: str | Path) -> tuple[list[tuple[int, dict[str, Any]]], list[int]]:
    """``([(line, record)], cut lines)`` of a log, in file order (1-based lines; records as
    written, null kept); a line that is not a monitor record is a DataError naming it."""
    from rewardkit.errors import DataError

    out, cut = [], []
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            if is_cut_short(line, exc):
                cut.append(i)
                continue
            raise DataError(f"not a JSON record: {exc}", path=str(path), line=i) from None
        problem = _record_problem(rec)
        if problem is not None:
            field_name, what = problem
            raise DataError(what, path=str(path), line=i, field=field_name)
        out.append((i, rec))
    return out, cut


def drop_past(path: Path, steps: list[Any]) -> int:
    """Before a monitor resumed with ``steps`` (its restored history's step numbers) appends:
    when the log's first records are those steps and more records follow (the run went on past
    its checkpoint, then was resumed from it), cut the log after them, atomically; returns how
    many records were dropped (0, the log untouched, when it is shorter, unreadable, not this
    history's or cannot be replaced; a reader then keeps the resumed run's records)."""
    from rewardkit.errors import DataError

    try:
        whole, _ = log_lines(path)
    except (OSError, UnicodeDecodeError, DataError):
        return 0
    if len(whole) <= len(steps) or [r["step"] for _, r in whole[: len(steps)]] != steps:
        return 0
    last = whole[len(steps) - 1][0] if steps else 0  # the line of the last record kept
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)[:last]
    text = "".join(lines)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text + ("" if not text or text.endswith("\n") else "\n"), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:  # a folder that takes no new file: append as before (the reader copes)
        tmp.unlink(missing_ok=True)
        return 0
    return len(whole) - len(steps)


#: What is left after the decoder's error position when a line ends inside a token: part of a
#: number, of true/false/null, or of a \\uXXXX escape.
_PARTIAL_TOKEN = re.compile(r"-?[0-9.eE+-]*|t(r(u)?)?|f(a(l(s)?)?)?|n(u(l)?)?|u[0-9a-fA-F]{0,4}")


def is_cut_short(line: str, exc: json.JSONDecodeError) -> bool:
    """Whether ``line`` is the start of a JSON object whose text ended early: the decoder
    stopped at the end of the line, inside a string running to it (a JSON string holds no raw
    line break) or inside the line's last token. Text broken in the middle is not."""
    text = line.rstrip()
    return text.startswith("{") and (
        exc.pos >= len(text)
        or exc.msg.startswith("Unterminated string")
        or _PARTIAL_TOKEN.fullmatch(text, exc.pos) is not None
    )


def start_on_new_line(path: Path) -> str:
    """``"\\n"`` when the log's last line has no line end (a record cut by a crash), so the next
    record is not glued to it; else ``""``."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            if fh.tell() == 0:
                return ""
            fh.seek(-1, 2)
            return "" if fh.read(1) == b"\n" else "\n"
    except FileNotFoundError:
        return ""


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _record_problem(rec: Any) -> tuple[str | None, str] | None:
    """``(field, what is wrong)`` for a log line that is not a monitor record, else None."""
    if not isinstance(rec, dict):
        return None, f"expected a monitor record (a JSON object), got {type(rec).__name__}"
    if not _is_number(rec.get("step")):
        return "step", f"expected a step number, got {rec.get('step')!r}"
    for k, v in rec.items():
        if k == "warnings":
            if not (isinstance(v, list) and all(isinstance(w, str) for w in v)):
                return k, f"expected a list of warning names, got {v!r}"
        elif v is not None and not _is_number(v):
            return k, f"expected a number or null, got {v!r}"
    return None
