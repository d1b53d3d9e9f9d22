"""HTTP client layer: calling endpoints under limits, with retries, usage and cost.

Infrastructure layer: imports only core (``types``, ``errors``); rewards build on it.
"""

from rewardkit.remote.config import RemoteConfigError
from rewardkit.remote.cost import Price, PriceTable
from rewardkit.remote.http import BatchResult, HttpClient, HttpRequest, Outcome
from rewardkit.remote.limits import Limits, RateLimiter
from rewardkit.remote.usage import Usage, generation_usage, no_usage, openai_usage, token_count

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
    "generation_usage",
    "no_usage",
    "openai_usage",
    "token_count",
]
