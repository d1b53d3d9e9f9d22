"""``EvalResult``: everything an evaluation computed, and its JSON form (``report.json``)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.data.location import describe
from rewardkit.data.readers import parse_json
from rewardkit.evaluate.benchmarks import TIES_RANGE

#: Version of the ``report.json`` layout.
SCHEMA = "rewardkit.evaluate/1"


@dataclass
class GroupScore:
    """The score of one subset or section for one reward, with its 95% (1 − alpha) CI.

    ``n`` counts the valid outcomes behind it (rows for the Ties rule); ``n_nan`` the examples
    excluded because a score was NaN. ``weight`` (subsets) is the weight in the section mean.
    """

    score: float
    ci: tuple[float, float]
    n: int
    n_nan: int = 0
    rule: str = "mean"
    section: str | None = None
    weight: float | None = None
    components: dict[str, float] | None = None


@dataclass
class ExampleRecord:
    """One example as one reward saw it: its response scores and the outcome they give.

    ``outcome`` is None when the example was skipped (``skipped`` says why) or a score was NaN.
    """

    id: str
    subset: str
    section: str
    scores: list[float]
    chosen: list[int]
    outcome: float | None
    rule: str
    skipped: str | None = None
    #: Weight in its subset's Score: MMRB2's valid order verdicts of a pairwise judge (card D6);
    #: 1 elsewhere (and in reports written before it).
    weight: float = 1.0


@dataclass
class RewardResult:
    """One column of the report: a reward (or one objective of a multi-objective reward)."""

    name: str
    reward: str
    objective: str | None
    fingerprint: str
    score: float
    ci: tuple[float, float]
    sections: dict[str, GroupScore]
    subsets: dict[str, GroupScore]
    n_scored: int
    n_nan: int
    n_truncated: int | None
    examples: list[ExampleRecord]
    seconds: float = 0.0
    stats: dict[str, Any] | None = None
    #: Pairwise-native judges: how often the verdict flipped when the order flipped.
    position_bias: float | None = None
    #: Calibration, length bias, best-of-N… (see :mod:`rewardkit.evaluate.analyses`).
    analyses: dict[str, Any] = field(default_factory=dict)


def jsonable(obj: Any) -> Any:
    """Plain JSON values: numpy scalars to Python, NaN to null, ±inf to "inf"/"-inf" strings."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [jsonable(v) for v in obj.tolist()]
    if isinstance(obj, np.bool_ | bool):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        x = float(obj)
        if math.isnan(x):
            return None
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    if obj is None or isinstance(obj, str | int):
        return obj
    return str(obj)


def _group_dict(g: GroupScore) -> dict[str, Any]:
    return {
        "score": g.score,
        "ci": list(g.ci),
        "n": g.n,
        "n_nan": g.n_nan,
        "rule": g.rule,
        "section": g.section,
        "weight": g.weight,
        "components": g.components,
    }


def _example_dict(e: ExampleRecord) -> dict[str, Any]:
    return {
        "id": e.id,
        "subset": e.subset,
        "section": e.section,
        "scores": e.scores,
        "chosen": e.chosen,
        "outcome": e.outcome,
        "rule": e.rule,
        "skipped": e.skipped,
        **({"weight": e.weight} if e.weight != 1.0 else {}),
    }


@dataclass
class EvalResult:
    """The result of :func:`rewardkit.evaluate.evaluate`.

    ``settings``: ties mode, seed, n_boot, alpha, benchmark rule, weighting and section weights.
    ``dataset``: subsets, sections (in report order), counts, skipped examples by reason.
    ``rewards``: one :class:`RewardResult` per report column. ``created_at``, each reward's
    scoring wall time and its ``stats`` vary between runs; they sit under ``"run"`` in the
    JSON so that everything else is byte-identical across reruns.
    """

    settings: dict[str, Any]
    dataset: dict[str, Any]
    rewards: list[RewardResult]
    created_at: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> RewardResult:
        for r in self.rewards:
            if r.name == name:
                return r
        raise KeyError(f"no reward {name!r} in this result; have {[r.name for r in self.rewards]}")

    @property
    def names(self) -> list[str]:
        """Report column names, in order."""
        return [r.name for r in self.rewards]

    def to_dict(self) -> dict[str, Any]:
        """The ``report.json`` content as plain JSON values (NaN → null)."""
        rewards = []
        for r in self.rewards:
            rewards.append(
                {
                    "name": r.name,
                    "reward": r.reward,
                    "objective": r.objective,
                    "fingerprint": r.fingerprint,
                    "score": r.score,
                    "ci": list(r.ci),
                    "n_scored": r.n_scored,
                    "n_nan": r.n_nan,
                    "n_truncated": r.n_truncated,
                    "position_bias": r.position_bias,
                    "sections": {k: _group_dict(v) for k, v in r.sections.items()},
                    "subsets": {k: _group_dict(v) for k, v in r.subsets.items()},
                    "examples": [_example_dict(e) for e in r.examples],
                    "analyses": r.analyses,
                }
            )
        run = {
            "created_at": self.created_at,
            "rewards": {r.name: {"seconds": r.seconds, "stats": r.stats} for r in self.rewards},
        }
        return jsonable(
            {
                "schema": SCHEMA,
                "settings": self.settings,
                "dataset": self.dataset,
                "rewards": rewards,
                "run": run,
                **self.extra,
            }
        )

    def json_text(self) -> str:
        """``report.json`` text: sorted keys, floats written exactly (shortest round-trip repr)."""
        return (
            json.dumps(
                self.to_dict(), sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False
            )
            + "\n"
        )

    def to_json(self, path: str | Path) -> Path:
        """Write ``report.json`` (see :meth:`json_text`) to ``path``; returns the path."""
        from rewardkit.outputs import atomic_text

        p = Path(path)
        text = self.json_text()
        with atomic_text(p, what="report.json") as fh:  # appears only once complete
            fh.write(text)
        return p

    def to_markdown(self) -> str:
        """A RewardBench-style Markdown table with CIs and notes (see ``report.to_markdown``)."""
        from rewardkit.evaluate.report import to_markdown

        return to_markdown(self)

    def write_reports(self, out_dir: str | Path, *, html: bool = True) -> dict[str, Path]:
        """Write ``report.json``, ``report.md`` and (``html``) ``report.html`` into ``out_dir``;
        returns their paths."""
        from rewardkit.evaluate.report import write_reports

        return write_reports(self, out_dir, html=html)


def _group(d: dict[str, Any], where: str, bounds: tuple[float, float] = (0.0, 1.0)) -> GroupScore:
    return GroupScore(
        score=accuracy_value(d["score"], f"{where}.score", bounds),
        ci=_ci(d["ci"], f"{where}.ci", bounds),
        n=count_value(d["n"], f"{where}.n"),
        n_nan=count_value(d.get("n_nan", 0), f"{where}.n_nan"),
        rule=d.get("rule", "mean"),
        section=d.get("section"),
        weight=d.get("weight"),
        components=d.get("components"),
    )


def _num(x: Any) -> float:
    if x is None:
        return math.nan
    if isinstance(x, str) and x in ("inf", "-inf"):  # how jsonable writes ±inf
        return float(x)
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise ValueError(f"expected a number, got {describe(x)}")
    return float(x)


def accuracy_value(x: Any, field: str, bounds: tuple[float, float] = (0.0, 1.0)) -> float:
    """A score or CI bound of ``report.json``: null (NaN) or a number in ``bounds`` ([0, 1]:
    every score rewardkit reports is an accuracy; :func:`score_bounds` for RewardBench 2's Ties
    score); anything else is a ValueError naming ``field``."""
    try:
        v = _num(x)
    except ValueError as exc:
        raise ValueError(f"{field!r}: {exc}") from None
    lo, hi = bounds
    if not math.isnan(v) and not lo <= v <= hi:
        what = "an accuracy" if bounds == (0.0, 1.0) else "RewardBench 2's Ties score range"
        raise ValueError(f"{field!r} must lie in [{lo:g}, {hi:g}] ({what}), got {describe(x)}")
    return v


def score_bounds(r: dict[str, Any]) -> tuple[float, float]:
    """The range of one reward's scores in ``report.json``: [0, 1], or [−0.01, 1.01] when a
    subset follows RewardBench 2's Ties rule (its margin term adds up to ±0.01: a reward that
    aced Ties scored 1.01 there, and its report was refused as damaged)."""
    subsets = r.get("subsets")
    ties = isinstance(subsets, dict) and any(
        isinstance(g, dict) and g.get("rule") == "ties" for g in subsets.values()
    )
    return TIES_RANGE if ties else (0.0, 1.0)


def count_value(x: Any, field: str, nullable: bool = False) -> Any:
    """A count of ``report.json``: a non-negative integer (or null where ``nullable``)."""
    if x is None and nullable:
        return None
    if isinstance(x, bool) or not isinstance(x, int) or x < 0:
        raise ValueError(f"{field!r} must be a non-negative integer, got {describe(x)}")
    return x


def _ci(x: Any, field: str, bounds: tuple[float, float] = (0.0, 1.0)) -> tuple[float, float]:
    if not isinstance(x, list) or len(x) != 2:
        raise ValueError(f"{field!r} must be a list [low, high], got {describe(x)}")
    return accuracy_value(x[0], f"{field}[0]", bounds), accuracy_value(x[1], f"{field}[1]", bounds)


#: Analysis numbers the leaderboard prints: (analysis, key) → the range they must lie in.
_ANALYSIS_NUMBERS: dict[tuple[str, str], tuple[float, float]] = {
    ("calibration", "ece"): (0.0, 1.0),
    ("length_bias", "spearman"): (-1.0, 1.0),
    ("best_of_n", "gain"): (-math.inf, math.inf),
}


def _example_weight(x: Any, field: str) -> float:
    """An example's weight in its subset's Score: a finite number in [0, 2] (MMRB2's valid
    order verdicts); null or NaN is refused (it would weigh as nothing, or poison the mean)."""
    v = _optional_number(x, field, 0, 2)
    if v is None or math.isnan(v):
        raise ValueError(f"{field!r} must be a number in [0, 2], got {describe(x)}")
    return v


def _optional_number(x: Any, field: str, low: float, high: float) -> float | None:
    """null, or a number in [low, high]; a text where a number goes is refused."""
    if x is None:
        return None
    try:
        v = _num(x)
    except ValueError as exc:
        raise ValueError(f"{field!r}: {exc}") from None
    if not math.isnan(v) and not low <= v <= high:
        raise ValueError(f"{field!r} must lie in [{low:g}, {high:g}], got {describe(x)}")
    return v


def _check_analyses(analyses: Any) -> dict[str, Any]:
    """The analyses of one reward, with the numbers the leaderboard prints checked."""
    if not analyses:
        return {}
    if not isinstance(analyses, dict):
        raise ValueError(f"'analyses' must be an object, got {describe(analyses)}")
    for (name, key), (low, high) in _ANALYSIS_NUMBERS.items():
        block = analyses.get(name)
        if isinstance(block, dict) and key in block:
            _optional_number(block[key], f"analyses.{name}.{key}", low, high)
    return analyses


#: Top-level fields of report.json and the JSON type each must have.
_TOP_FIELDS: dict[str, tuple[type, str]] = {
    "settings": (dict, "an object"),
    "dataset": (dict, "an object"),
    "rewards": (list, "a list"),
}


def _check_top(raw: dict[str, Any]) -> None:
    """Refuse a report whose top-level fields are missing or of the wrong JSON type, naming the
    field (``"dataset": []`` would otherwise fail deep inside the report writer)."""
    for name, (kind, want) in _TOP_FIELDS.items():
        if name not in raw:
            raise ValueError(f"missing field {name!r}")
        if not isinstance(raw[name], kind):
            raise ValueError(f"field {name!r} must be {want}, got {describe(raw[name])}")
    if "run" in raw and not isinstance(raw["run"], dict):
        raise ValueError(f"field 'run' must be an object, got {describe(raw['run'])}")


def _reward_result(r: dict[str, Any], run: dict[str, Any]) -> RewardResult:
    """One entry of ``report.json``'s ``rewards`` list."""
    if not isinstance(r, dict):
        raise ValueError(f"expected an object, got {describe(r)}")
    rr = run.get("rewards", {}).get(r["name"], {})
    bounds = score_bounds(r)
    return RewardResult(
        name=r["name"],
        reward=r["reward"],
        objective=r.get("objective"),
        fingerprint=r["fingerprint"],
        score=accuracy_value(r["score"], "score", bounds),
        ci=_ci(r["ci"], "ci", bounds),
        sections={k: _group(v, f"sections.{k}", bounds) for k, v in r["sections"].items()},
        subsets={k: _group(v, f"subsets.{k}", bounds) for k, v in r["subsets"].items()},
        n_scored=count_value(r["n_scored"], "n_scored"),
        n_nan=count_value(r["n_nan"], "n_nan"),
        n_truncated=count_value(r.get("n_truncated"), "n_truncated", nullable=True),
        examples=[
            ExampleRecord(
                id=e["id"],
                subset=e["subset"],
                section=e["section"],
                scores=[_num(x) for x in e["scores"]],
                chosen=e["chosen"],
                outcome=None
                if e["outcome"] is None
                else accuracy_value(e["outcome"], f"examples[{j}].outcome"),
                rule=e["rule"],
                skipped=e.get("skipped"),
                weight=_example_weight(e.get("weight", 1.0), f"examples[{j}].weight"),
            )
            for j, e in enumerate(r["examples"])
        ],
        seconds=float(rr.get("seconds") or 0.0),
        stats=rr.get("stats", rr.get("last_stats")),  # older files call it last_stats
        position_bias=_optional_number(r.get("position_bias"), "position_bias", 0.0, 1.0),
        analyses=_check_analyses(r.get("analyses")),
    )


def from_dict(raw: dict[str, Any]) -> EvalResult:
    """Rebuild an :class:`EvalResult` from ``report.json`` content (no rescoring)."""
    if raw.get("schema") != SCHEMA:
        raise ValueError(f"not a rewardkit report (schema {raw.get('schema')!r}, want {SCHEMA!r})")
    _check_top(raw)
    run = raw.get("run", {})
    rewards = []
    for i, r in enumerate(raw["rewards"]):
        try:
            rewards.append(_reward_result(r, run))
        except KeyError as e:
            raise ValueError(f"missing field {e.args[0]!r} in rewards[{i}]") from None
        except (TypeError, AttributeError, IndexError, ValueError) as e:
            raise ValueError(f"field 'rewards[{i}]': {e}") from None
    known = {"schema", "settings", "dataset", "rewards", "run"}
    return EvalResult(
        settings=raw["settings"],
        dataset=raw["dataset"],
        rewards=rewards,
        created_at=run.get("created_at", ""),
        extra={k: v for k, v in raw.items() if k not in known},
    )


def read_report_json(path: str | Path) -> dict[str, Any]:
    """The JSON object of ``report.json`` (a file, or a directory holding one); a ValueError
    saying why for a file that is not one (hostile JSON, not UTF-8, not an object)."""
    p = report_path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no report.json at {p}")
    try:
        raw = parse_json(p.read_text(encoding="utf-8"))  # hostile nesting, numbers, surrogates
    except UnicodeDecodeError as e:
        raise ValueError(f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except ValueError as e:
        raise ValueError(str(e)) from None
    if not isinstance(raw, dict):
        raise ValueError(f"not a rewardkit report (expected a JSON object, got {describe(raw)})")
    return raw


def load_report(path: str | Path) -> EvalResult:
    """Read ``report.json`` (a file, or a directory holding one) into an :class:`EvalResult`.

    Any file that is not a readable report (hostile JSON, wrong shape, a number out of its
    range) is a ValueError saying why (naming the field, for a wrong shape); the caller names
    the file."""
    return report_from_json(read_report_json(path))


def report_from_json(raw: dict[str, Any]) -> EvalResult:
    """:func:`from_dict` with the checks of :func:`load_report` (every printed field renders)."""
    try:
        result = from_dict(raw)
        _render_markdown(result)  # a hand-edited analysis (a text where a number goes) fails here
    except KeyError as e:
        raise ValueError(f"damaged rewardkit report (missing field {e})") from None
    except (TypeError, AttributeError, IndexError, ValueError) as e:
        msg = str(e)
        if msg.startswith("not a rewardkit report"):
            raise ValueError(msg) from None
        raise ValueError(f"damaged rewardkit report ({msg})") from None
    return result


def _render_markdown(result: EvalResult) -> str:
    """The Markdown report of ``result`` (its table, notes and analyses): rendering it is the
    check that every field a report prints has a printable shape."""
    from rewardkit.evaluate.report import analyses_markdown, to_markdown

    return to_markdown(result) + analyses_markdown(result)


def data_identity(path: str, examples: list[Any]) -> dict[str, Any]:
    """Which data a run scored, for ``settings["data"]``: the path as given, the number of
    examples and a content hash of them (prompts, responses, labels, subsets, references; not
    the ids, which default to the file's name), so that a leaderboard can tell runs on
    different data apart and the same file copied elsewhere is the same data. A response with
    its own history (``meta["prompt_b"]``, :func:`~rewardkit.example_context.own_prompts`) adds
    the histories to its example's entry, so data differing only there hashes apart."""
    from rewardkit.example_context import has_own_histories, own_prompts
    from rewardkit.types import stable_hash

    content = [
        [ex.prompt, ex.responses, ex.chosen, ex.ratings, ex.subset, ex.reference]
        + ([own_prompts(ex)] if has_own_histories(ex) else [])
        for ex in examples
    ]
    return {"path": str(path), "n_examples": len(examples), "hash": stable_hash(content)}


def report_path(path: str | Path) -> Path:
    """The ``report.json`` that ``path`` names (the file itself, or the one in a directory)."""
    p = Path(path)
    return p / "report.json" if p.is_dir() else p
