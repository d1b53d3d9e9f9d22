"""Server metrics and their Prometheus text exposition (format 0.0.4), without a client library.

Counters, gauges and cumulative histograms keyed by label tuples; :meth:`Metrics.render` writes
the text that ``GET /metrics`` answers.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

Labels = tuple[tuple[str, str], ...]


def _labels(**labels: str) -> Labels:
    return tuple(sorted((k, str(v)) for k, v in labels.items()))


def _fmt_labels(labels: Labels, extra: tuple[str, str] | None = None) -> str:
    items = list(labels) + ([extra] if extra else [])
    if not items:
        return ""
    body = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34)).replace(chr(10), chr(92) + "n")}"'
        for k, v in items
    )
    return "{" + body + "}"


def _num(x: float) -> str:
    if x == float("inf"):
        return "+Inf"
    return repr(float(x)) if not float(x).is_integer() else str(int(x))


class Histogram:
    """A cumulative histogram: counts per upper bound, a sum and a count."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.bounds = tuple(sorted(buckets))
        self.counts = [0] * (len(self.bounds) + 1)  # last: +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        out, running = [], 0
        for bound, c in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += c
            out.append((bound, running))
        return out


#: The endpoints that score (the ``endpoint`` label of their counters).
SCORING_ENDPOINTS = ("/v1/rewards", "/get_reward")


class Metrics:
    """Thread-safe registry of the server's counters, gauges and histograms."""

    HELP: ClassVar[dict[str, tuple[str, str]]] = {
        "rewardkit_requests_total": ("counter", "HTTP requests answered, by endpoint and status."),
        "rewardkit_items_total": ("counter", "Items answered, by route and outcome."),
        "rewardkit_rejected_total": (
            "counter",
            "Requests refused with 503 because a queue was full.",
        ),
        "rewardkit_disconnects_total": ("counter", "Requests whose client left before the answer."),
        "rewardkit_connections_refused_total": (
            "counter",
            "Connections closed because max_connections were open (the oldest waiting one or the new one).",
        ),
        "rewardkit_cache_hits_total": ("counter", "Items answered from the response cache."),
        "rewardkit_cache_misses_total": ("counter", "Items not found in the response cache."),
        "rewardkit_cache_hit_rate": ("gauge", "Cache hits / (hits + misses) since start."),
        "rewardkit_queue_depth": ("gauge", "Items waiting to be scored, by route."),
        "rewardkit_inflight_requests": ("gauge", "Requests being handled now."),
        "rewardkit_unsent_bytes": (
            "gauge",
            "Bytes of answers held for clients that do not read them (unsent_budget_bytes).",
        ),
        "rewardkit_batch_size": ("histogram", "Items per batch sent to a reward, by route."),
        "rewardkit_batch_seconds": ("histogram", "Seconds a reward spent on one batch, by route."),
        "rewardkit_request_latency_seconds": ("histogram", "Request latency, by endpoint."),
        "rewardkit_endpoint_tokens_total": (
            "counter",
            "Tokens spent by rewards behind HTTP endpoints (judges), by route and kind.",
        ),
        "rewardkit_endpoint_cost_total": (
            "counter",
            "Cost of those tokens by the reward's price table, by route.",
        ),
        "rewardkit_endpoint_requests_total": (
            "counter",
            "HTTP requests rewards sent to their endpoints, by route and outcome.",
        ),
        "rewardkit_model_tokens_total": (
            "counter",
            "Tokens a model-backed reward ran, by route and kind (real; run: padding included).",
        ),
        "rewardkit_model_forwards_total": (
            "counter",
            "Forward passes (engine sub-batches) a model-backed reward ran, by route.",
        ),
    }

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        self.gauges: dict[str, dict[Labels, float]] = defaultdict(dict)
        self.histograms: dict[str, dict[Labels, Histogram]] = defaultdict(dict)
        # Counters of rare events are exposed at 0 from the start (Prometheus convention), so a
        # scraper sees them before the first one happens and rate() counts that first one.
        # ``rewardkit_rejected_total`` gets a 0 per route in :meth:`render` (routes are known
        # from ``rewardkit_queue_depth``, which /metrics sets for every route with a queue).
        self.counters["rewardkit_connections_refused_total"][_labels()] = 0.0
        for endpoint in SCORING_ENDPOINTS:
            self.counters["rewardkit_disconnects_total"][_labels(endpoint=endpoint)] = 0.0
        self.counters["rewardkit_rejected_total"]  # listed (HELP/TYPE) before any route is known

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        with self._lock:
            self.counters[name][_labels(**labels)] += amount

    def set(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            self.gauges[name][_labels(**labels)] = value

    def add(self, name: str, amount: float, **labels: str) -> None:
        with self._lock:
            key = _labels(**labels)
            self.gauges[name][key] = self.gauges[name].get(key, 0.0) + amount

    def observe(self, name: str, value: float, buckets: Sequence[float], **labels: str) -> None:
        with self._lock:
            key = _labels(**labels)
            hist = self.histograms[name].get(key)
            if hist is None:
                hist = self.histograms[name][key] = Histogram(buckets)
            hist.observe(value)

    def counter(self, name: str, **labels: str) -> float:
        with self._lock:
            return self.counters[name].get(_labels(**labels), 0.0)

    def gauge(self, name: str, **labels: str) -> float:
        with self._lock:
            return self.gauges[name].get(_labels(**labels), 0.0)

    def record_endpoint(self, route: str, stats: Mapping[str, Any]) -> None:
        """Count what a reward behind an HTTP endpoint spent in one call (its ``run_usage`` or
        ``usage``, ``run_cost``, requests, retries and failures); nothing for other rewards."""
        usage = stats.get("run_usage", stats.get("usage"))
        if not isinstance(usage, Mapping):
            return
        for kind in ("prompt", "completion"):
            self.inc(
                "rewardkit_endpoint_tokens_total",
                float(usage.get(f"{kind}_tokens", 0)),
                route=route,
                kind=kind,
            )
        if stats.get("run_cost") is not None:
            self.inc("rewardkit_endpoint_cost_total", float(stats["run_cost"]), route=route)
        # a pairwise/listwise judge counts failed items in ``failed``, its requests in ``failed_rows``
        failed = "failed_rows" if "failed_rows" in stats else "failed"
        for outcome, key in (("sent", "requests"), ("retried", "retries"), ("failed", failed)):
            self.inc(
                "rewardkit_endpoint_requests_total",
                float(stats.get(key, 0)),
                route=route,
                outcome=outcome,
            )

    def record_model(self, route: str, stats: Mapping[str, Any]) -> None:
        """Count the tokens and forward passes of one model-backed reward call (its engine's
        ``tokens``, ``model_tokens`` and ``batches``): their ratio is the padding the server's
        batches cost, comparable with an offline run's statistics."""
        for kind, key in (("real", "tokens"), ("run", "model_tokens")):
            if isinstance(stats.get(key), int):
                self.inc("rewardkit_model_tokens_total", stats[key], route=route, kind=kind)
        if isinstance(stats.get("batches"), int):
            self.inc("rewardkit_model_forwards_total", stats["batches"], route=route)

    def cache_hit_rate(self) -> float | None:
        hits = sum(self.counters["rewardkit_cache_hits_total"].values())
        misses = sum(self.counters["rewardkit_cache_misses_total"].values())
        return hits / (hits + misses) if hits + misses else None

    def render(self) -> str:
        """The Prometheus text exposition of every metric."""
        rate = self.cache_hit_rate()
        self.set("rewardkit_cache_hit_rate", 0.0 if rate is None else rate)
        lines: list[str] = []
        with self._lock:
            rejected = self.counters["rewardkit_rejected_total"]
            for labels in self.gauges.get("rewardkit_queue_depth", {}):
                rejected.setdefault(labels, 0.0)  # labels: (("route", NAME),)
            names = sorted(set(self.counters) | set(self.gauges) | set(self.histograms))
            for name in names:
                kind, text = self.HELP.get(name, ("untyped", name))
                lines.append(f"# HELP {name} {text}")
                lines.append(f"# TYPE {name} {kind}")
                for labels, value in sorted(self.counters.get(name, {}).items()):
                    lines.append(f"{name}{_fmt_labels(labels)} {_num(value)}")
                for labels, value in sorted(self.gauges.get(name, {}).items()):
                    lines.append(f"{name}{_fmt_labels(labels)} {_num(value)}")
                for labels, hist in sorted(self.histograms.get(name, {}).items()):
                    for bound, cum in hist.cumulative():
                        le = ("le", _num(bound))
                        lines.append(f"{name}_bucket{_fmt_labels(labels, le)} {cum}")
                    lines.append(f"{name}_sum{_fmt_labels(labels)} {_num(hist.sum)}")
                    lines.append(f"{name}_count{_fmt_labels(labels)} {hist.count}")
        return "\n".join(lines) + "\n"
