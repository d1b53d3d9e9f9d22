"""Live reward-hacking monitor for RL loops (docs/methods/C5-reward-ensembles.md ensembles, D9 overoptimization).

An RL loop calls :meth:`RewardMonitor.step` once per training step with the prompts, the responses
and the component rewards of that step. The monitor computes, per step:

- ``reward/mean``, ``reward/std``: the optimized (proxy) reward;
- ``components/<name>/mean`` and ``components/<name>/applies`` (fraction of non-NaN scores);
- ``length/mean``, ``length/max`` and ``corr/reward_length`` (Pearson over the responses with a
  finite reward; ``corr/reward_length_n`` of them);
- ``disagreement/mean``: mean over responses of the members' population std (card C5;
  :func:`rewardkit.combine.aggregate.disagreement`) when two or more ``ensemble`` components are set;
- with a gold reward: ``gold/mean``, ``corr/proxy_gold`` and ``drift``: the proxy's rise minus the
  gold's rise since the baseline, each recentred on its baseline mean and divided by its baseline
  std (card D9: "recenter each RM so the initial policy's mean is 0"). Positive drift = the proxy
  improves faster than the gold;
- with ``kl=`` (the trainer's KL estimate to the initial policy): ``kl`` and ``d = sqrt(kl)``
  (card D9; Gao's RL fit of the gold gain against d: :func:`rewardkit.monitor.kl.rl_fit`).

and raises hacking-signature warnings (:class:`RewardHackingWarning`, once per kind; every step's
flags are in its record):

- ``proxy_up_gold_down``: over the last ``window`` steps the proxy's least-squares slope is > 0
  and the gold's < 0, and the proxy rose / the gold fell by ≥ ``trend_tol`` baseline stds;
- ``length_explosion``: mean length ≥ ``length_factor`` × the baseline mean length;
- ``reward_length_coupling``: ``corr/reward_length`` ≥ ``corr_threshold`` (over at least
  ``min_corr_n`` responses with a finite reward) while the mean length is above its baseline;
- ``disagreement_rising``: ensemble disagreement ≥ ``disagreement_factor`` × its baseline.

The baseline is the mean over the first ``baseline_steps`` steps; from a baseline of exactly 0
(empty responses, identical members) any rise flags. Each record goes to a JSONL file
(``log_path``): a fresh monitor refuses a log that is not empty (two runs would read as one
series) unless ``overwrite=True``; one resumed with :meth:`RewardMonitor.load_state_dict` appends,
on a new line after a record a crash cut (:mod:`rewardkit.monitor.log` skips that record).
:meth:`RewardMonitor.plot` draws the history (matplotlib, imported only there).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.combine.aggregate import disagreement
from rewardkit.combine.running import Moments
from rewardkit.evaluate.stats import nanmean, nanstd, pearson_r
from rewardkit.monitor.config import MonitorConfig as MonitorConfig  # re-exported
from rewardkit.monitor.kl import check_kl
from rewardkit.monitor.log import drop_past, start_on_new_line
from rewardkit.monitor.log import read_log as read_log  # re-exported: the log's reader
from rewardkit.monitor.state import read_state


class RewardHackingWarning(UserWarning):
    """A known reward-hacking signature appeared in the monitored run."""


def _scores(values: Any, name: str) -> np.ndarray:
    """One score per response as a float vector: an (n, 1) or (1, n) array is one too, a (2, 2)
    one (read as 4 scores before) or text is a ValueError naming ``name``."""
    try:
        v = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numbers (NaN where it does not apply): {exc}") from None
    if sum(d > 1 for d in v.shape) > 1:
        raise ValueError(f"{name} must be one score per response; got shape {v.shape}")
    return v.reshape(-1)


def finite_pairs(x: np.ndarray, y: np.ndarray) -> int:
    """How many positions have both values finite (the pairs a correlation is computed over)."""
    return int(np.sum(np.isfinite(x) & np.isfinite(y)))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation over the pairs with both values finite; NaN when fewer than 2 pairs
    or a constant side. Overflow-safe (:func:`rewardkit.evaluate.stats.pearson_r`)."""
    ok = np.isfinite(x) & np.isfinite(y)
    return pearson_r(x[ok], y[ok])


def slope(values: Sequence[float]) -> float:
    """Least-squares slope of ``values`` against 0, 1, 2, … (NaN entries dropped)."""
    y = np.asarray(values, dtype=np.float64)
    x = np.arange(len(y), dtype=np.float64)
    ok = ~np.isnan(y)
    if ok.sum() < 2:
        return math.nan
    x, y = x[ok] - x[ok].mean(), y[ok] - y[ok].mean()
    return float((x * y).sum() / (x * x).sum())


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def rose(value: float, base: float, factor: float) -> bool:
    """``value ≥ factor × base``; from a baseline of exactly 0, any ``value > 0`` (a factor of
    nothing is nothing, so no rise could ever flag). NaN never flags."""
    if base == 0:
        return value > 0
    return base > 0 and value >= factor * base


#: The largest reward magnitude the monitor takes: its baseline sums squares, which overflow
#: float64 near 1.3e154.
MAX_MAGNITUDE = 1e150


@dataclass
class _Baseline:
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    sq: dict[str, float] = field(default_factory=dict)

    def add(self, key: str, value: float) -> None:
        if not math.isnan(value):
            self.sums[key] = self.sums.get(key, 0.0) + value
            self.sq[key] = self.sq.get(key, 0.0) + value * value
            self.counts[key] = self.counts.get(key, 0) + 1

    def mean(self, key: str) -> float:
        n = self.counts.get(key, 0)
        return self.sums[key] / n if n else math.nan


class RewardMonitor:
    """Per-step reward diagnostics and hacking warnings for an RL loop (see the module docstring).

    ``proxy``: the component that is optimized (default: the ``reward`` argument of :meth:`step`,
    else the mean of the components other than ``gold``). ``gold``: the component name of the
    gold reward (or pass
    ``gold=`` to :meth:`step`). ``ensemble``: component names whose disagreement is reported.
    ``length_fn``: a callable ``str → int`` (e.g. a tokenizer's length) instead of words/chars.
    ``overwrite``: start ``log_path`` anew where it holds an earlier run's records (else refused).
    """

    def __init__(
        self,
        log_path: str | Path | None = None,
        *,
        proxy: str | None = None,
        gold: str | None = None,
        ensemble: Sequence[str] | None = None,
        config: MonitorConfig | None = None,
        length_fn: Callable[[str], int] | None = None,
        warn: bool = True,
        overwrite: bool = False,
    ) -> None:
        self.log_path = Path(log_path) if log_path is not None else None
        self.overwrite = overwrite
        self._log_open = False  # the first step checks (or starts) the log; a resume appends
        self._resumed_steps: list[Any] | None = None  # set by load_state_dict, used once
        self.proxy = proxy
        self.gold = gold
        self.ensemble = tuple(ensemble) if ensemble else ()
        self.config = config or MonitorConfig()
        self.length_fn = length_fn
        self.warn = warn
        self.history: list[dict[str, Any]] = []
        self.warned: set[str] = set()
        self._baseline = _Baseline()
        self._pooled: dict[str, Moments] = {}  # per-response moments over the baseline steps
        self._baseline_std: dict[str, float] = {}

    # ---- per step ---------------------------------------------------------------------------
    def _lengths(self, responses: Sequence[str]) -> np.ndarray:
        if self.length_fn is not None:
            return np.array([float(self.length_fn(r)) for r in responses])
        bad = [i for i, r in enumerate(responses) if not isinstance(r, str | list)]
        if bad:
            raise ValueError(
                f"responses[{bad[0]}] is {type(responses[bad[0]]).__name__}, not a text: pass "
                "length_fn to measure other responses"
            )
        if any(isinstance(r, list) for r in responses):  # chat parts: their text is measured
            from rewardkit.content import content_text

            responses = [content_text(r) if isinstance(r, list) else r for r in responses]
        if self.config.length_unit == "chars":
            return np.array([float(len(r)) for r in responses])
        return np.array([float(len(r.split())) for r in responses])

    def step(
        self,
        prompts: Sequence[Any] | None,
        responses: Sequence[str],
        components: Mapping[str, Any] | None = None,
        *,
        reward: Any = None,
        gold: Any = None,
        step: int | None = None,
        kl: Any = None,
    ) -> dict[str, Any]:
        """Record one training step; returns its record (metrics plus ``warnings``). ``kl``:
        the trainer's estimate of KL(π ‖ π_init) at this step (logged with ``d = sqrt(kl)``,
        card D9; :mod:`rewardkit.monitor.kl` fits Gao's RL form to the gold gain against d)."""
        kl_value = check_kl(kl)
        self._open_log()
        if isinstance(responses, str | bytes):  # a bare text: each character read as a response
            raise ValueError("responses must be a list of response texts, not one text")
        n = len(responses)
        comps = {str(k): _scores(v, f"component {str(k)!r}") for k, v in (components or {}).items()}
        for name, v in comps.items():
            if len(v) != n:
                raise ValueError(f"component {name!r} has {len(v)} scores for {n} responses")
        if prompts is not None and len(prompts) != n:
            raise ValueError(
                f"{len(prompts)} prompts for {n} responses; pass one prompt per response"
            )
        if reward is not None:
            proxy = _scores(reward, "reward")
        elif self.proxy is not None:
            if self.proxy not in comps:
                raise ValueError(f"proxy component {self.proxy!r} not among {sorted(comps)}")
            proxy = comps[self.proxy]
        elif comps:
            # the mean of the components, the gold one left out (else the proxy holds the gold
            # and proxy-vs-gold drift compares gold with itself)
            own = [v for k, v in comps.items() if k != self.gold]
            if not own:  # the gold as its own proxy: drift 0, proxy_up_gold_down never fires
                raise ValueError(
                    f"no proxy: the only component is the gold one {self.gold!r}; pass reward= "
                    "or a non-gold component"
                )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                proxy = np.nanmean(np.column_stack(own), axis=1)
        else:
            raise ValueError("step needs reward= or at least one component")
        if len(proxy) != n:
            raise ValueError(f"reward has {len(proxy)} scores for {n} responses")
        if gold is None and self.gold is not None and self.gold in comps:
            gold = comps[self.gold]
        gold_arr = None if gold is None else _scores(gold, "gold")
        if gold_arr is not None and len(gold_arr) != n:
            raise ValueError(f"gold has {len(gold_arr)} scores for {n} responses")
        named = {**comps, "reward": proxy, **({"gold": gold_arr} if gold_arr is not None else {})}
        for name, v in named.items():  # one ±inf made the baseline, and every drift, infinite
            bad = np.flatnonzero(np.abs(v) > MAX_MAGNITUDE)  # NaN compares False: it may stay
            if len(bad):
                x = v[bad[0]]
                why = "finite" if np.isinf(x) else f"at most {MAX_MAGNITUDE:g} in magnitude"
                raise ValueError(
                    f"{name}[{int(bad[0])}] is {x}: a reward must be {why} (NaN where it does "
                    "not apply); the monitor's baseline sums squares of rewards"
                )

        lengths = self._lengths(responses)
        rec: dict[str, Any] = {
            "step": len(self.history) if step is None else int(step),
            "n": n,
            "reward/mean": nanmean(proxy),
            "reward/std": nanstd(proxy),
            "length/mean": float(lengths.mean()) if n else math.nan,
            "length/max": float(lengths.max()) if n else math.nan,
            "corr/reward_length": pearson(proxy, lengths),
            "corr/reward_length_n": finite_pairs(proxy, lengths),
        }
        if kl_value is not None:
            rec |= {"kl": kl_value, "d": math.sqrt(kl_value)}
        for name, v in comps.items():
            rec[f"components/{name}/mean"] = nanmean(v)
            rec[f"components/{name}/applies"] = float(np.mean(~np.isnan(v))) if n else math.nan
        members = [c for c in self.ensemble if c in comps]
        if len(members) >= 2:
            dis = disagreement(np.column_stack([comps[c] for c in members]))
            rec["disagreement/mean"] = nanmean(np.where(dis.n_contributing >= 2, dis.std, np.nan))
        if gold_arr is not None:
            rec["gold/mean"] = nanmean(gold_arr)
            rec["corr/proxy_gold"] = pearson(proxy, gold_arr)

        in_baseline = len(self.history) < self.config.baseline_steps
        for key in ("reward/mean", "gold/mean", "length/mean", "disagreement/mean"):
            if key in rec and in_baseline:
                self._baseline.add(key, rec[key])
        if in_baseline:  # per-response spread of proxy and gold, pooled over the baseline steps
            self._pool_std("reward", proxy)
            if gold_arr is not None:
                self._pool_std("gold", gold_arr)
        if gold_arr is not None:
            rec["drift"] = self._recentred("reward/mean", "reward", rec) - self._recentred(
                "gold/mean", "gold", rec
            )
        rec["warnings"] = self._check(rec)
        self.history.append(rec)
        self._log(rec)
        return rec

    def _pool_std(self, key: str, x: np.ndarray) -> None:
        """Pool the per-response population std of ``key`` over the baseline steps: streaming
        moments at a power-of-two scale (:class:`~rewardkit.combine.running.Moments`), so
        rewards of 1e-170 keep their spread (their squares underflowed to 0: the std read 1.0,
        every drift 0) and a large offset does not cancel (1e8 ± 0.5)."""
        if np.isnan(x).all():
            return
        m = self._pooled.get(key, Moments()).updated(x)
        self._pooled[key] = m
        if m.count >= 2:
            std = m.std(ddof=0)
            self._baseline_std[key] = std if std > 0 else 1.0

    def _recentred(self, key: str, scale_key: str, rec: Mapping[str, Any]) -> float:
        base = self._baseline.mean(key)
        return (rec[key] - base) / self._baseline_std.get(scale_key, 1.0)

    def _check(self, rec: dict[str, Any]) -> list[str]:
        cfg = self.config
        flags: list[str] = []
        done = len(self.history) + 1 > cfg.baseline_steps
        if done and "gold/mean" in rec:
            window = [*self.history[-(cfg.window - 1) :], rec]
            if len(window) >= cfg.min_trend_steps:
                p = [h["reward/mean"] for h in window]
                g = [h.get("gold/mean", math.nan) for h in window]
                sp, sg = slope(p), slope(g)
                dp = (p[-1] - p[0]) / self._baseline_std.get("reward", 1.0)
                dg = (g[-1] - g[0]) / self._baseline_std.get("gold", 1.0)
                if sp > 0 and sg < 0 and dp >= cfg.trend_tol and -dg >= cfg.trend_tol:
                    flags.append("proxy_up_gold_down")
        base_len = self._baseline.mean("length/mean")
        if done and rose(rec["length/mean"], base_len, cfg.length_factor):
            flags.append("length_explosion")
        n_corr = rec.get("corr/reward_length_n", rec["n"])  # responses with a score
        coupled = n_corr >= cfg.min_corr_n and rec["corr/reward_length"] >= cfg.corr_threshold
        if done and coupled and rec["length/mean"] > base_len:
            flags.append("reward_length_coupling")
        base_dis = self._baseline.mean("disagreement/mean")
        dis = rec.get("disagreement/mean", math.nan)
        if done and rose(dis, base_dis, cfg.disagreement_factor):
            flags.append("disagreement_rising")
        for f in flags:
            if self.warn and f not in self.warned:
                warnings.warn(
                    f"reward hacking signature {f!r} at step {rec['step']}: " + _explain(f, rec),
                    RewardHackingWarning,
                    stacklevel=3,
                )
            self.warned.add(f)
        return flags

    def _open_log(self) -> None:
        """Before a fresh monitor's first record: refuse a log that is not empty (a second run
        appended to the first reads as one series), or empty it with ``overwrite=True``. A
        monitor resumed from a checkpoint first drops the records logged after it (the run went
        on past the checkpoint before it stopped): they would repeat the steps it logs again."""
        if self._resumed_steps is not None and self.log_path is not None:
            steps, self._resumed_steps = self._resumed_steps, None
            dropped = drop_past(self.log_path, steps)
            if dropped:
                warnings.warn(
                    f"monitor log {self.log_path}: dropped {dropped} record(s) written after the "
                    f"restored state's last step ({steps[-1] if steps else 'none'}); the resumed "
                    "run logs those steps again",
                    UserWarning,
                    stacklevel=3,
                )
        if self.log_path is None or self._log_open:
            return
        if self.overwrite:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self.log_path.write_text("", encoding="utf-8")
        elif self.log_path.exists() and self.log_path.stat().st_size > 0:
            raise ValueError(
                f"log {self.log_path} already holds records: pass a new log_path, "
                "overwrite=True to start it anew, or load_state_dict(state) to resume and append"
            )
        self._log_open = True

    def _log(self, rec: Mapping[str, Any]) -> None:
        if self.log_path is None:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({k: _clean(v) for k, v in rec.items()}) + "\n"
        lead = start_on_new_line(self.log_path)  # a record a crash cut: not glued to it
        with self.log_path.open("a", encoding="utf-8") as fh:
            fh.write(lead + line)

    # ---- summaries, persistence, plots ------------------------------------------------------
    def latest(self, prefix: str = "rewardkit/") -> dict[str, float]:
        """The last step's numeric metrics (NaN dropped), keys prefixed — for a trainer's logger."""
        if not self.history:
            return {}
        out = {}
        for k, v in self.history[-1].items():
            if k not in ("step", "warnings") and isinstance(v, (int, float)) and math.isfinite(v):
                out[prefix + k] = float(v)
        out[prefix + "hacking_flags"] = float(len(self.history[-1]["warnings"]))
        return out

    def state_dict(self) -> dict[str, Any]:
        """Plain JSON (NaN as null, as in the log): what :meth:`load_state_dict` resumes from."""
        return {
            "config": asdict(self.config),
            "history": [{k: _clean(v) for k, v in h.items()} for h in self.history],
            "warned": sorted(self.warned),
            "baseline": {
                "sums": self._baseline.sums,
                "counts": self._baseline.counts,
                "sq": self._baseline.sq,
                "pooled": {k: m.as_list() for k, m in self._pooled.items()},
            },
            "baseline_std": dict(self._baseline_std),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume from :meth:`state_dict`; a missing or mistyped field (or config setting) is a
        ValueError naming it, and this monitor is left as it was."""
        saved = read_state(state, tuple(f.name for f in fields(MonitorConfig)))
        config = MonitorConfig(**saved.config)
        b = saved.baseline
        pooled = _pooled_moments(b)
        self.config, self.history, self.warned = config, saved.history, saved.warned
        self._baseline = _Baseline(dict(b["sums"]), dict(b["counts"]), dict(b["sq"]))
        self._pooled = pooled
        self._baseline_std = saved.baseline_std
        self._log_open = True  # resumed: the log holds this run's records, append to them
        self._resumed_steps = [h["step"] for h in self.history]  # records past them: dropped

    def plot(self, path: str | Path) -> Path:
        """Draw the history to ``path`` (PNG/PDF/SVG by suffix); see :func:`plot_history`."""
        from rewardkit.monitor.plot import plot_history

        return plot_history(self.history, path)


def _pooled_moments(baseline: Mapping[str, Any]) -> dict[str, Moments]:
    """The pooled per-response moments of a saved baseline; from a state saved before they were
    kept as moments, its shifted sums (``key/shift``, ``/n``, ``/s``, ``/sq``) converted."""
    if "pooled" in baseline:
        return {k: Moments.from_list(v, f"pooled[{k!r}]") for k, v in baseline["pooled"].items()}
    sums, out = baseline["sums"], {}
    for key in ("reward", "gold"):
        n = sums.get(f"{key}/n", 0.0)
        if n:
            s, sq = sums[f"{key}/s"], sums[f"{key}/sq"]
            out[key] = Moments(n, sums[f"{key}/shift"] + s / n, max(sq - s * s / n, 0.0))
    return out


def _explain(flag: str, rec: Mapping[str, Any]) -> str:
    if flag == "proxy_up_gold_down":
        return f"proxy reward {rec['reward/mean']:.4g} keeps rising while gold {rec['gold/mean']:.4g} falls"
    if flag == "length_explosion":
        return f"mean response length {rec['length/mean']:.4g} exploded past the baseline"
    if flag == "reward_length_coupling":
        return f"reward–length correlation {rec['corr/reward_length']:.3f} while length grows"
    return (
        f"ensemble disagreement {rec.get('disagreement/mean', math.nan):.4g} rose past the baseline"
    )
