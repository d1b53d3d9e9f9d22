"""``rule:sql`` — text-to-SQL reward: execution match, format, optional semantic similarity.

docs/methods/B14-text-to-sql.md: ``R = w_format·R_format + w_exec·R_exec + w_sem·R_sem``, with
``R_exec = 1[execute(predicted) == execute(gold)]`` on the row's SQLite database (run read-only
and bounded in worker processes, :mod:`.sql_exec`), ``R_format = 1`` for exactly one query
(SELECT / WITH / VALUES) and ``R_sem = max(0, cos(E(predicted), E(gold)))`` (MiniLM, built only
when ``w_sem > 0``). The gold SQL is ``Query.reference``; the database the ``db`` option or
the row's ``db_path`` / ``db`` / ``db_id`` (:func:`~.sql_exec.find_database`); the predicted
SQL :func:`extract_sql`; results compare by :func:`results_equal`. NaN (whatever the
response): no gold SQL, no database file, no gold query that runs (why: ``stats["errors"]``).
The response's own failures score 0 (a query stopped by a limit is named there, with 0.0).
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rewardkit.engine.cache import files_stamp
from rewardkit.errors import SpecError
from rewardkit.rewards.rules import sql_exec
from rewardkit.rewards.rules._common import (
    RuleReward,
    as_choice,
    as_count,
    as_number,
    as_text,
    is_missing,
)
from rewardkit.rewards.rules.sql_compare import results_equal
from rewardkit.rewards.rules.sql_exec import (
    DB_KEYS,
    is_one_query,
    split_statements,
    top_level_order_by,
)
from rewardkit.rewards.tags import last_block
from rewardkit.types import Capability, Query, ScoreResult, stable_hash

__all__ = [
    "SqlReward",
    "compute_score",
    "extract_sql",
    "gold_sqls",
    "is_one_query",
    "results_equal",
    "split_statements",
    "top_level_order_by",
]

log = logging.getLogger(__name__)

#: Fence tags read as SQL before any other fenced block.
SQL_TAGS = frozenset({"sql", "sqlite", "sqlite3", "mysql", "postgresql", "postgres", "psql"})
#: Reference-mapping keys holding the gold SQL.
SQL_KEYS = ("sql", "query", "SQL", "gold")
COMPARE_MODES = ("auto", "multiset", "set", "ordered")
#: Gold results kept per reward (database file, its size and time, gold SQL).
GOLD_CACHE = 1024

_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+-]*)[^\n]*\n(.*?)^[ \t]*```", re.M | re.S)


# -- reading the SQL --------------------------------------------------------------------------
def extract_sql(text: str) -> str:
    """The predicted SQL of a response (the module's docstring), stripped, without trailing
    semicolons."""
    cut = text.rfind("</think>")
    if cut >= 0 and text[cut + len("</think>") :].strip():
        text = text[cut + len("</think>") :]
    blocks = [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text)]
    tagged = [body for tag, body in blocks if tag in SQL_TAGS]
    if tagged or blocks:
        sql = (tagged or [body for _, body in blocks])[-1]
    else:
        answer = last_block(text, "<answer>", "</answer>")
        sql = text if answer is None else answer
    return sql.strip().rstrip("; \t\r\n")


def gold_sqls(reference: Any) -> list[str]:
    """The gold SQL text(s) of a reference: text, a list of texts, or a mapping's ``sql`` /
    ``query`` / ``SQL`` / ``gold``; blanks and missing values left out. ValueError for a
    mapping with none of those keys, and for a value that is no text (``5``, ``true``: a
    reference was given, but no SQL, so the row's NaN gets its reason)."""
    if isinstance(reference, np.ndarray):
        reference = reference.tolist()
    if isinstance(reference, Mapping):
        key = next((k for k in SQL_KEYS if k in reference), None)
        if key is None:
            keys = sorted(map(str, reference))[:8]
            raise ValueError(f"the reference is a mapping with keys {keys}, none of {SQL_KEYS}")
        return gold_sqls(reference[key])
    if isinstance(reference, list | tuple):
        return [s for r in reference for s in gold_sqls(r)]
    if is_missing(reference):
        return []
    if not isinstance(reference, str):
        raise ValueError(
            f"the reference holds {type(reference).__name__} {reference!r:.60}, not SQL text"
        )
    sql = reference.strip().rstrip("; \t\r\n")
    return [sql] if sql else []


# -- the reward -------------------------------------------------------------------------------
@dataclass
class _Plan:
    """One row: its gold SQL, database, predicted SQL, and its outcome so far."""

    golds: list[str]
    db: str | None = None
    pred: str = ""
    one: bool = False
    nan_reason: str | None = None
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def applies(self) -> bool:
        return bool(self.golds) and self.nan_reason is None


class SqlReward(RuleReward):
    """``rule:sql`` — execution match of the response's SQL with the gold SQL (card B14).

    Options (defaults): ``db`` (one database file for every row), ``db_root`` (folder of the
    rows' databases), ``db_key`` (the row field naming the database; default ``db_path``, then
    ``db``, then ``db_id``), ``compare`` (``auto``: ordered when the gold has a top-level ORDER
    BY, else ``multiset``; or ``multiset``, ``set``, ``ordered``), ``float_tol`` (1e-9, 0 for
    exact), ``column_order`` (``strict`` or ``any``), weights ``w_format`` (0), ``w_exec`` (1),
    ``w_sem`` (0), ``encoder`` (``minilm``), limits per query ``timeout`` (5 s), ``max_rows``
    (100000), ``max_mb`` (64, result size), ``memory_mb`` (512, SQLite heap), at most
    :data:`MAXIMA`, and ``workers`` (worker processes at once, default up to 4). Components:
    ``format``, ``exec`` and, with ``w_sem > 0``, ``sem``.
    """

    rule = "sql"
    uses_meta = True
    capabilities = frozenset({Capability.COMPONENTS})

    def __init__(
        self,
        db: str | None = None,
        db_root: str | None = None,
        db_key: str | None = None,
        compare: str = "auto",
        float_tol: float = 1e-9,
        column_order: str = "strict",
        w_format: float = 0.0,
        w_exec: float = 1.0,
        w_sem: float = 0.0,
        encoder: str = "minilm",
        timeout: float = 5.0,
        max_rows: int = 100_000,
        max_mb: float = 64,
        memory_mb: int = 512,
        workers: int | None = None,
    ) -> None:
        r = self.rule
        given = {"w_format": w_format, "w_exec": w_exec, "w_sem": w_sem}
        weights = [as_number(name, r, v, minimum=0.0) for name, v in given.items()]
        if not any(weights):
            raise SpecError("rule:sql needs a positive weight (w_format, w_exec or w_sem)")
        super().__init__(
            db=_existing(as_text("db", r, db), "db", os.path.isfile) if db is not None else None,
            db_root=_existing(as_text("db_root", r, db_root), "db_root", os.path.isdir)
            if db_root is not None
            else None,
            db_key=as_text("db_key", r, db_key) if db_key is not None else None,
            compare=as_choice("compare", r, compare, COMPARE_MODES),
            float_tol=as_number("float_tol", r, float_tol, minimum=0.0),
            column_order=as_choice("column_order", r, column_order, ("strict", "any")),
            w_format=weights[0],
            w_exec=weights[1],
            w_sem=weights[2],
            encoder=as_text("encoder", r, encoder),
            timeout=_at_most("timeout", as_number("timeout", r, timeout, minimum=0.001)),
            max_rows=as_count("max_rows", r, max_rows),
            max_mb=_at_most("max_mb", as_number("max_mb", r, max_mb, minimum=0.001)),
            memory_mb=_at_most("memory_mb", as_count("memory_mb", r, memory_mb, minimum=8)),
        )
        o = self.options
        self.limits = sql_exec.Limits(
            o["timeout"], o["max_rows"], int(o["max_mb"] * (1 << 20)), o["memory_mb"]
        )
        self.workers = as_count("workers", r, workers) if workers else min(4, os.cpu_count() or 1)
        self._gold: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
        self._encoder: Any = None

    def identity(self) -> dict[str, Any]:
        """The options and the state of the ``db`` file, or of the databases under ``db_root``
        (:func:`~rewardkit.engine.cache.files_stamp`): a database edited in place is another key
        (a row's own absolute ``db_path`` is not in it)."""
        where = self.options["db"] or self.options["db_root"]
        stamp = files_stamp(where, (".sqlite", ".sqlite3", ".db")) if where else None
        return {**super().identity(), **({"databases": stamp} if stamp else {})}

    def _run(self, jobs: list[tuple[str, str]]) -> list[dict[str, Any]]:
        return sql_exec.execute_all(jobs, self.limits, self.workers)

    def score_one(self, query: Query) -> float:
        return float(self._score([query]).scores[0])

    def _plan(self, query: Query) -> _Plan:
        try:
            golds = gold_sqls(query.reference)
        except ValueError as e:
            return _Plan([], nan_reason=f"rule:sql: {e}")
        response = query.response if isinstance(query.response, str) else ""
        pred = extract_sql(response)
        one = len(pred) <= sql_exec.MAX_SQL_CHARS and is_one_query(pred)  # a long text: no query
        plan = _Plan(golds, pred=pred, one=one)
        if golds:
            plan.db, plan.nan_reason = self._database(query)
        return plan

    def _database(self, query: Query) -> tuple[str | None, str | None]:
        """The row's database file, or why there is none."""
        if self.options["db"]:
            return self.options["db"], None
        keys = (self.options["db_key"],) if self.options["db_key"] else DB_KEYS
        ref = query.reference
        sources = [ref, query.meta] if isinstance(ref, Mapping) else [query.meta]
        return sql_exec.find_database(sources, keys, self.options["db_root"])

    def _gold_results(
        self, jobs: set[tuple[str, str]], counts: Counter[str]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """Each (database, gold SQL)'s result, from the cache or run now (cached unless a
        passing condition stopped it: a timeout, the heap, a killed worker, a file not open)."""
        keys = {job: sql_exec.cache_key(*job) for job in jobs}
        out = {job: self._gold[key] for job, key in keys.items() if key in self._gold}
        todo = sorted(set(jobs) - set(out))
        counts.update(gold_cached=len(out), gold_runs=len(todo))
        for job, res in zip(todo, self._run(todo), strict=True):
            out[job] = res
            if res.get("kind") not in ("timeout", "memory", "killed", "open"):
                self._gold[keys[job]] = res
                if len(self._gold) > GOLD_CACHE:
                    self._gold.popitem(last=False)
        return out

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        plans = [self._plan(q) for q in queries]
        counts = Counter[str]()
        golds = self._gold_results({(p.db, g) for p in plans if p.db for g in p.golds}, counts)
        preds: set[tuple[str, str]] = set()
        for p in plans:
            ran = [golds[(p.db, g)] for g in p.golds] if p.db else []
            if p.applies and not any("rows" in r for r in ran):
                p.nan_reason = f"rule:sql: the gold SQL did not run on {p.db}: {ran[0]['error']}"
            if p.applies and p.one:
                preds.add((p.db, p.pred))
        todo = sorted(preds)
        counts["pred_runs"] = len(todo)
        ran_pred = dict(zip(todo, self._run(todo), strict=True))
        errors: list[dict[str, Any]] = []
        for i, p in enumerate(plans):
            problem = self._judge(p, golds, ran_pred, counts)
            if problem is not None:
                entry: dict[str, Any] = {"index": i, "error": problem}
                if p.nan_reason is None:
                    entry["score"] = 0.0  # the response's query was given up: 0, not NaN
                errors.append(entry)
        if self.options["w_sem"] > 0:
            self._semantic(plans)
        return self._result(plans, errors, counts)

    def _judge(
        self,
        p: _Plan,
        golds: dict[tuple[str, str], dict[str, Any]],
        preds: dict[tuple[str, str], dict[str, Any]],
        counts: Counter[str],
    ) -> str | None:
        """Fill the row's format and exec scores; the problem to report, if any."""
        p.scores.update(format=1.0 if p.one else 0.0, exec=math.nan)
        res = preds.get((p.db, p.pred)) if p.applies else None
        if res is not None and res.get("kind") == "open":  # the file went away, not the response
            p.nan_reason = f"rule:sql: {res['error']}"
        if not p.applies:
            return p.nan_reason
        p.scores["exec"] = 0.0
        if res is None:
            counts["not_one_query"] += 1
        elif "rows" in res:
            ran = [golds[(p.db, g)] for g in p.golds]
            if all(not r.get("rows") for r in ran):
                counts["gold_empty"] += 1  # any query of its width that returns nothing passes
            p.scores["exec"] = float(
                any(self._match(g, r, res) for g, r in zip(p.golds, ran, strict=True))
            )
        else:
            counts[f"pred_{res['kind']}"] += 1
            if res["kind"] in sql_exec.LIMIT_KINDS:
                return f"rule:sql: the predicted query was given up ({res['error']}): scored 0.0"
        return None

    def _match(self, gold_sql: str, gold: dict[str, Any], pred: dict[str, Any]) -> bool:
        o = self.options
        mode = o["compare"]
        if mode == "auto":
            mode = "ordered" if top_level_order_by(gold_sql) else "multiset"
        any_order = o["column_order"] == "any"
        if "rows" not in gold:
            return False
        if not gold["rows"] and gold.get("columns") != pred.get("columns"):
            return False  # an empty result stands for the gold's only with as many columns
        return results_equal(gold["rows"], pred["rows"], mode, o["float_tol"], any_order)

    def _semantic(self, plans: list[_Plan]) -> None:
        """``sem``: the best cosine of the predicted SQL with a gold SQL (0 below 0, and for a
        response without a single query); NaN where the reward does not apply."""
        live = [p for p in plans if p.applies]
        texts = list(dict.fromkeys(t for p in live for t in ([p.pred] if p.one else []) + p.golds))
        emb = self._encoder_model().embed(texts).astype(np.float64) if texts else None
        where = {t: i for i, t in enumerate(texts)}
        for p in plans:
            if not p.applies:
                p.scores["sem"] = math.nan
            elif not p.one or emb is None:
                p.scores["sem"] = 0.0
            else:
                best = max(float(emb[where[p.pred]] @ emb[where[g]]) for g in p.golds)
                p.scores["sem"] = min(1.0, max(0.0, best))

    def _encoder_model(self) -> Any:
        if self._encoder is None:
            from rewardkit.engine.config import EngineConfig
            from rewardkit.rewards.similarity import EmbeddingSimilarityReward

            self._encoder = EmbeddingSimilarityReward(
                self.options["encoder"], EngineConfig(progress=False)
            )
        return self._encoder

    def _result(
        self, plans: list[_Plan], errors: list[dict[str, Any]], counts: Counter[str]
    ) -> ScoreResult:
        o = self.options
        parts = ["format", "exec"] + (["sem"] if o["w_sem"] > 0 else [])
        cols = {k: np.array([p.scores.get(k, math.nan) for p in plans]) for k in parts}
        total = o["w_format"] * cols["format"] + o["w_exec"] * np.nan_to_num(cols["exec"])
        if "sem" in cols:
            total = total + o["w_sem"] * np.nan_to_num(cols["sem"])
        applies = np.array([p.applies for p in plans])
        scores = np.where(applies, total, np.nan)
        if errors:
            first = errors[0]
            why = first["error"].removeprefix("rule:sql: ")
            n, i = len(errors), first["index"] + 1
            log.warning("rule:sql: %d of %d rows failed (row %d: %s)", n, len(plans), i, why)
        stats = {"queries": len(plans), "failed": len(errors), "errors": errors, **counts}
        return ScoreResult(scores, components=cols, stats=stats)


#: The largest value of each limit option: a day per query, SQLite's longest string or blob
#: (1 GiB) as a result, 1 TiB of heap (larger values overflowed the clocks and the worker's
#: address-space cap: an OverflowError traceback, or every row NaN).
MAXIMA = {"timeout": 86_400.0, "max_mb": 1024.0, "memory_mb": 1 << 20}


def _at_most(name: str, value: Any) -> Any:
    top = MAXIMA[name]
    if value > top:
        raise SpecError(f"rule:sql option {name} must be ≤ {top:g}, got {value!r}")
    return value


def _existing(path: str, name: str, check: Any) -> str:
    full = os.path.abspath(os.path.expanduser(path))
    if not check(full):
        what = "database file" if name == "db" else "folder"
        raise SpecError(f"rule:sql option {name}: no {what} at {full}")
    return full


_REWARDS: dict[str, SqlReward] = {}


def compute_score(
    data_source: Any, solution_str: str, ground_truth: Any, extra_info: Any = None, **options: Any
) -> float:
    """verl-shaped scorer: ``rule:sql`` of ``solution_str`` against the gold SQL
    ``ground_truth``, the database named by ``options`` (``db``, ``db_root``…) or by
    ``extra_info`` (``db_path`` / ``db`` / ``db_id``). NaN where the reward does not apply (the
    reason is logged). One reward (and its gold cache) is kept per set of options."""
    key = stable_hash(options)
    reward = _REWARDS.get(key)
    if reward is None:
        reward = _REWARDS[key] = SqlReward(**options)
    meta = {str(k): v for k, v in extra_info.items()} if isinstance(extra_info, Mapping) else {}
    meta.setdefault("data_source", data_source)
    query = Query("", solution_str, reference=ground_truth, meta=meta)
    return float(reward.score_full([query]).scores[0])
