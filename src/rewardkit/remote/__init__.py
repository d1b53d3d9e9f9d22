"""HTTP client layer: calling endpoints under limits, with retries, usage and cost.

Infrastructure layer: imports only core (``types``, ``errors``); rewards build on it.
"""

from rewardkit.remote.cost import Price, PriceTable
from rewardkit.remote.http import (
    BatchResult,
    HttpClient,
    HttpRequest,
    Outcome,
    RemoteConfigError,
    Usage,
    openai_usage,
)
from rewardkit.remote.limits import Limits, RateLimiter

__all__ = [
    "BatchResult",
    "HttpClient",
    "HttpRequest",
    "Limits",
    "Outcome",
    "Price",
    "PriceTable",
    "RateLimiter",
    "RemoteConfigError",
    "Usage",
    "openai_usage",
]
