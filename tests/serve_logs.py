"""The server's log records in tests: one handler on the loggers of uvicorn and of
``rewardkit.serve`` (uvicorn's records do not reach the root logger)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

LOGGERS = ("uvicorn.error", "rewardkit.serve")


class ServerLogs(logging.Handler):
    """Keeps every record of the loggers it is attached to."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def tracebacks(self) -> list[str]:
        """The messages of records that carry an exception (a traceback in the log)."""
        return [r.getMessage() for r in self.records if r.exc_info]

    def text(self) -> str:
        """Every message, a record with an exception followed by ``Traceback: <exception>``."""
        return "\n".join(
            r.getMessage() + (f"\nTraceback: {r.exc_info}" if r.exc_info else "")
            for r in self.records
        )


@contextlib.contextmanager
def server_logs() -> Iterator[ServerLogs]:
    """A :class:`ServerLogs` attached to :data:`LOGGERS` for the block."""
    handler = ServerLogs()
    loggers = [logging.getLogger(n) for n in LOGGERS]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
