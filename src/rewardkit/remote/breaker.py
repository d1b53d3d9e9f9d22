"""Fail fast on a dead endpoint: a circuit breaker shared by one client's requests.

Every attempt that got no answer at all — connection refused, a name that does not resolve, a
connect timeout, a server that accepted and then hung or hung up before answering — counts as a
connection failure; any answer (an HTTP error included) resets the count. After ``threshold``
failures in a row the breaker opens: requests not yet sent, and retries not yet made, fail at
once with the first failure's text instead of each waiting out its own retries. A later batch
tries again (half-open): its first answer closes the breaker, its first failure opens it again.
"""

from __future__ import annotations

import threading


class Breaker:
    """Counts consecutive connection failures across requests (see the module docstring);
    ``threshold`` 0 never opens."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.failures = 0
        self.first_error: str | None = None
        self.is_open = False
        self._lock = threading.Lock()

    def failed(self, error: str) -> None:
        """An attempt got no answer."""
        with self._lock:
            self.failures += 1
            if self.first_error is None:
                self.first_error = error
            if self.threshold and self.failures >= self.threshold:
                self.is_open = True

    def answered(self) -> None:
        """An attempt got an answer (whatever its status)."""
        with self._lock:
            self.failures, self.first_error, self.is_open = 0, None, False

    def new_batch(self) -> None:
        """A batch starts: an open breaker lets requests through again, and opens at the next
        failure."""
        with self._lock:
            if self.is_open:
                self.is_open = False
                self.failures = self.threshold - 1

    def reason(self) -> str:
        """The error a request gets while the breaker is open."""
        return (
            f"{self.first_error} (gave up: the endpoint answered none of {self.failures} "
            f"attempts in a row, fail_fast_after={self.threshold})"
        )
