"""Score a JSONL file on a Ray cluster with Ray Data: ``rewardkit score --ray``.

The driver cuts the input into byte ranges at line boundaries (it reads the file once, counting
lines, and keeps only the range table); Ray Data streams the ranges through an actor pool where
each actor has built the reward once (one GPU per actor when the cluster has enough); each actor
reads its range straight from the file, scores it and sends the finished output lines back; the
driver writes them in input order (``preserve_order``) to a temporary file moved in place at
the end (:func:`rewardkit.outputs.atomic_file`). Memory on the driver and in the object store is a few ranges in flight, whatever the file
size. With a score cache (``cache_dir``, the CLI default) the actors share one SQLite file, so a
killed run restarted with the same arguments rescoring only what was not stored. Scores equal a
single-process :func:`rewardkit.scoring.score_file` run: the same reward scores the same queries;
only the batching differs, which the engine keeps within float error (1e-5 in fp32).

The file must be readable at the same path on every node (a local cluster, or shared storage).
"""

from __future__ import annotations

import json
import os
import pickle
import resource
import signal
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.data.location import Location, describe
from rewardkit.errors import (
    CapabilityError,
    DataError,
    MissingDependencyError,
    ModelNotFoundError,
    RewardkitError,
    SpecError,
)
from rewardkit.outputs import atomic_file
from rewardkit.results import failed_items, failed_values, merge_stats

#: Columns an actor returns per range (``stats``: the pickled ``ScoreResult.stats``;
#: ``error``: "" or "KIND\tMESSAGE", see :func:`error_value`).
OUTPUT_COLUMNS = ("text", "rows", "stats", "error")

#: Keys an actor adds to a range's stats: rows that failed alone, and the first one's error
#: (``"line N: ..."``; taken off before the stats are merged).
FAILED_ROWS, FIRST_ERROR, NULL_ROWS = "failed_rows", "first_error", "null_rows"

#: Target bytes of input per range (one actor call).
DEFAULT_RANGE_BYTES = 1 << 20


def line_ranges(
    path: str | Path, range_bytes: int = DEFAULT_RANGE_BYTES
) -> list[tuple[int, int, int]]:
    """``(start, end, first_line)`` byte ranges of ``path`` cut after a newline every
    ~``range_bytes``; ``first_line`` is the 1-based number of the range's first line."""
    if range_bytes < 1:
        raise ValueError(f"range_bytes must be >= 1, got {range_bytes}")
    ranges: list[tuple[int, int, int]] = []
    start, line, pos, lines_in = 0, 1, 0, 0
    with open(path, "rb") as fh:
        for raw in fh:
            pos += len(raw)
            lines_in += 1
            if pos - start >= range_bytes:
                ranges.append((start, pos, line))
                start, line, lines_in = pos, line + lines_in, 0
    if pos > start:
        ranges.append((start, pos, line))
    return ranges


def parse_line(raw: bytes, loc: Location) -> dict[str, Any]:
    """One JSON object from a JSONL line; a clear :class:`DataError` at ``loc`` otherwise."""
    try:
        rec = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise loc.error("not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise loc.error(f"invalid JSON: {e.msg} (column {e.pos + 1})") from None
    if not isinstance(rec, dict):
        raise loc.error(f"expected a JSON object, got {describe(rec)}")
    return rec


class RangeScorer:
    """A Ray Data actor: builds the reward once, then scores whole byte ranges of the file."""

    def __init__(self, spec: Any, engine_defaults: Mapping[str, Any] | None, path: str) -> None:
        from rewardkit.registry import load_reward

        self.path = path
        self.name = Path(path).name
        self.build_error = ""  # a build that failed here (a node without a file): as a value
        try:
            self.reward = load_reward(spec, engine_defaults=engine_defaults)
        except tuple(CARRIED_ERRORS.values()) as exc:
            self.build_error = error_value(exc)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out: dict[str, list[Any]] = {k: [] for k in OUTPUT_COLUMNS}
        for start, end, first in zip(batch["start"], batch["end"], batch["line"], strict=True):
            try:
                raise_error_value(self.build_error)
                text, rows, stats = self._score_range(int(start), int(end), int(first))
                error = ""
            except tuple(CARRIED_ERRORS.values()) as exc:
                text, rows, stats, error = "", 0, {}, error_value(exc)
            out["text"].append(text)
            out["rows"].append(rows)
            out["stats"].append(pickle.dumps(dict(stats)))
            out["error"].append(error)
        return {k: np.array(v, dtype=np.int64 if k == "rows" else object) for k, v in out.items()}

    def _score_range(self, start: int, end: int, first: int) -> tuple[str, int, Any]:
        from rewardkit.scoring import _null_not_failed, query_from_row, scored_line
        from rewardkit.types import Capability

        if self.reward.can(Capability.LISTWISE):  # a group's rows may span two ranges
            raise CapabilityError(
                f"{self.reward.name} ranks all responses to a prompt in one call; byte ranges "
                "on Ray would split those groups: score it without --ray"
            )

        with open(self.path, "rb") as fh:
            fh.seek(start)
            data = fh.read(end - start)
        if start == 0 and data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 BOM, as the reader skips
            data = data[3:]
        lines = data.split(b"\n")  # only newlines end a line; a "\r" is JSON whitespace
        rows, queries, numbers = [], [], []
        for offset, raw in enumerate(lines):
            if not raw.strip():
                continue
            loc = Location(self.path, self.name, line=first + offset, kind="jsonl")
            row = parse_line(raw, loc)
            rows.append(row)
            queries.append(query_from_row(row, loc))
            numbers.append(first + offset)
        result = self.reward.score_full(queries)
        text = "".join(
            scored_line(self.reward, r, v) for r, v in zip(rows, result.scores, strict=True)
        )
        stats = dict(result.stats)
        failed, errors = failed_items(stats)
        stats[FAILED_ROWS] = failed
        stats[NULL_ROWS] = _null_not_failed(result.scores, failed, errors)
        if errors:
            stats[FIRST_ERROR] = f"line {numbers[errors[0][0]]}: {errors[0][1]}"
        return text, len(rows), stats


#: Errors an actor returns as values, by name (most specific first): bad input, not a bug.
CARRIED_ERRORS: dict[str, type[Exception]] = {
    e.__name__: e
    for e in (
        DataError,
        SpecError,
        CapabilityError,
        ModelNotFoundError,
        MissingDependencyError,
        RewardkitError,
        FileNotFoundError,
        ValueError,
    )
}


def error_value(exc: Exception) -> str:
    """An actor's error as a value, ``"KIND\tMESSAGE"`` (Ray would re-raise it as its own
    type); KIND is the first of :data:`CARRIED_ERRORS` that ``exc`` is."""
    kind = next(name for name, cls in CARRIED_ERRORS.items() if isinstance(exc, cls))
    return f"{kind}\t{exc}"


def raise_error_value(error: str) -> None:
    """Raise on the driver what :func:`error_value` carried (nothing for "")."""
    if error:
        kind, _, message = str(error).partition("\t")
        raise CARRIED_ERRORS.get(kind, RewardkitError)(message)


#: Seconds the driver waits for a TCP connection to ``--ray-address`` before giving up.
CONNECT_TIMEOUT = 5.0


def cluster_address(address: str | None) -> str:
    """The address Ray is started with: ``address``, else ``RAY_ADDRESS``, else ``"local"`` (a
    new local cluster, never one that happens to run on this machine)."""
    return address or os.environ.get("RAY_ADDRESS") or "local"


def probe_address(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Refuse a ``host:port`` (or ``ray://host:port``) address where nothing accepts a TCP
    connection within ``timeout`` seconds, where ``ray.init`` would wait for minutes; a
    :class:`RewardkitError` naming the address. ``local``/``auto`` are not probed."""
    if address in ("local", "auto"):
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        raise RewardkitError(f"Ray address {address!r}: expected host:port or ray://host:port")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout):
            return
    except (OSError, ValueError) as exc:
        raise RewardkitError(
            f"Ray address {address}: no Ray cluster answers there ({exc}); start one with "
            "`ray start --head` or check --ray-address / RAY_ADDRESS"
        ) from None


def start_ray(
    address: str | None, actors: int, gpus_per_actor: float | None, progress: bool
) -> tuple[Any, float]:
    """Ray, initialised (joining ``address``, else ``RAY_ADDRESS``, else a new local cluster;
    an already initialised Ray is used as it is), with Ray Data keeping input order; and the
    GPUs per actor (None: one each when the cluster has one per actor, else none)."""
    try:
        import ray
        import ray.data
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise MissingDependencyError(
            "scoring on Ray needs Ray Data: pip install 'rewardkit[ray]'"
        ) from exc
    if actors < 1:
        raise ValueError(f"actors must be >= 1, got {actors}")
    if not ray.is_initialized():
        target = cluster_address(address)
        probe_address(target)
        on_term = signal.getsignal(signal.SIGTERM)
        ray.init(address=target, include_dashboard=False, log_to_driver=False)
        if on_term is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, on_term)  # ours (exit 143, one line), not Ray's dump
    if gpus_per_actor is None:
        gpus = float(ray.cluster_resources().get("GPU", 0.0))
        gpus_per_actor = 1.0 if gpus >= actors else 0.0
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = progress
    return ray, gpus_per_actor


def cluster_gpus(ray: Any) -> float:
    """The GPUs of the cluster Ray has joined."""
    return float(ray.cluster_resources().get("GPU", 0.0))


def driver_spec(spec: Any) -> Any:
    """``spec`` checked on the driver before Ray starts (its file read and parsed, its kind
    known: a typo is one :class:`SpecError` here, not an actor's traceback), with a spec file's
    path made absolute (an actor's working directory is not the driver's)."""
    from rewardkit.data.readers import read_config_file
    from rewardkit.registry import _KINDS, _from_mapping, _unknown_kind, parse_spec, spec_file

    path = spec_file(spec)
    if path is not None:
        loaded = read_config_file(path, "reward spec file", core_yaml=True)
        if not isinstance(loaded, Mapping):
            raise SpecError(f"{path}: a reward spec file must hold a mapping with a 'type'")
        kind, label, checked = _from_mapping(loaded)[0], str(path), str(path.resolve())
    elif isinstance(spec, Mapping):
        kind = _from_mapping(spec)[0]
        label, checked = kind, spec
    else:
        kind, label, checked = parse_spec(str(spec))[0], str(spec), spec
    if kind not in _KINDS:
        raise SpecError(_unknown_kind(kind, label, spec, path))
    return checked


def check_ray_input(path: str | Path) -> Path:
    """``path`` made absolute once checked to be what every actor can read by its path: a
    regular JSON Lines file (not a pipe such as ``/dev/stdin``, which only the driver has)."""
    given = Path(path)
    if given.exists() and not given.is_file():
        raise DataError(
            "scoring on Ray: the actors read the input by its path, on every node, and this is "
            "not a regular file (a pipe, /dev/stdin); save it to a .jsonl file first or score "
            "it without --ray",
            path=str(given),
        )
    in_path = given.resolve()
    if not in_path.is_file():
        raise FileNotFoundError(f"{in_path}: no such file")
    if in_path.suffix.lower() not in (".jsonl", ".ndjson"):
        raise DataError(
            "scoring on Ray reads JSON Lines (.jsonl); convert the file or score it without --ray",
            path=str(in_path),
        )
    return in_path


def score_file_ray(
    spec: Any,
    in_path: str | Path,
    out_path: str | Path,
    *,
    engine_defaults: Mapping[str, Any] | None = None,
    address: str | None = None,
    actors: int = 2,
    gpus_per_actor: float | None = None,
    range_bytes: int = DEFAULT_RANGE_BYTES,
    progress: bool = False,
) -> dict[str, Any]:
    """Score the JSONL file ``in_path`` on Ray and write ``out_path`` (rows in input order, each
    with ``reward`` added), like :func:`rewardkit.scoring.score_file`.

    ``spec`` is a reward spec (each actor builds it; a built reward is not shipped).
    ``address``: a cluster to join (None: ``RAY_ADDRESS`` or a new local one; an already
    initialised Ray is used as it is). ``gpus_per_actor``: None gives each actor one GPU when
    the cluster has one per actor, else none. A listwise reward is refused (a prompt's group
    could span two ranges). Returns counters: rows, null_rows, failed_rows (with
    first_error and failed_values, as :func:`rewardkit.scoring.score_rows`), cache_hits and
    truncated_rows (None when the reward does not report them in ``ScoreResult.stats``),
    reward_stats (every range's ``ScoreResult.stats`` merged by
    :func:`~rewardkit.results.merge_stats`), actors, gpus_per_actor, seconds,
    driver_peak_rss_mb (this process's peak).
    """
    from rewardkit.ray_reward import REFUSED, check_on_ray
    from rewardkit.types import Capability

    in_path = check_ray_input(in_path)
    started = time.monotonic()
    spec = driver_spec(spec)
    ranges = line_ranges(in_path, range_bytes)
    items = [{"start": s, "end": e, "line": n} for s, e, n in ranges]
    if actors >= 1:  # one range keeps one actor busy (and asks for one GPU), not a pool
        actors = max(1, min(actors, len(items)))
    ray, gpus_per_actor = start_ray(address, actors, gpus_per_actor, progress)
    out_path = Path(out_path)
    rows, parts = 0, []
    if items:
        # built once where the actors run: a spec that fails to build, or a reward Ray cannot
        # spread over ranges (listwise, batch-relative), stops here as one error, not a traceback
        split = {c: REFUSED[c] for c in (Capability.LISTWISE, Capability.BATCH_RELATIVE)}
        check_on_ray(ray, spec, dict(engine_defaults or {}), gpus_per_actor, split)
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        ds = ds.map_batches(
            RangeScorer,
            fn_constructor_kwargs={
                "spec": spec,
                "engine_defaults": dict(engine_defaults or {}),
                "path": str(in_path),
            },
            batch_size=1,
            concurrency=actors,
            num_cpus=1,
            num_gpus=gpus_per_actor,
        )
    with atomic_file(out_path, what="--out") as out:
        if items:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                for text, n, blob, error in zip(
                    batch["text"], batch["rows"], batch["stats"], batch["error"], strict=True
                ):
                    raise_error_value(error)
                    out.write(str(text))
                    rows += int(n)
                    if n:
                        parts.append(pickle.loads(bytes(blob)))
    failed = sum(int(p.get(FAILED_ROWS, 0)) for p in parts)
    null = sum(int(p.pop(NULL_ROWS, 0)) for p in parts)
    first_error = next((e for e in [p.pop(FIRST_ERROR, None) for p in parts] if e), None)
    values = set().union(*(failed_values(p) for p in parts))
    stats = merge_stats(parts)
    return {
        "rows": rows,
        "failed_rows": failed,
        "null_rows": null,
        "first_error": first_error,
        "failed_values": sorted(values, key=lambda v: (v is not None, v or 0.0)),
        "cache_hits": stats.get("cache_hits"),
        "truncated_rows": stats.get("truncated_rows"),
        "reward_stats": stats,
        "actors": actors if items else 0,
        "gpus_per_actor": gpus_per_actor,
        "cluster_gpus": cluster_gpus(ray),
        "seconds": time.monotonic() - started,
        "driver_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
