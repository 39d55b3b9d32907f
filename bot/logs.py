"""Logging without personal data.

Log records carry only whitelisted fields (channel, event type, pseudonymous id, intent,
latency, counts). Anything else a caller passes in ``extra`` is dropped, and message
arguments are never interpolated from user data: callers log fixed event names.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

SAFE_FIELDS = (
    "event",
    "channel",
    "contact",
    "intent",
    "replies",
    "latency_ms",
    "count",
    "attempts",
    "status",
    "method",
    "route",
    "error_type",
)


class SafeJsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, event name and safe fields only."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,  # which worker, when several share one log
            "msg": record.msg if isinstance(record.msg, str) else type(record.msg).__name__,
        }
        for field in SAFE_FIELDS:
            if hasattr(record, field):
                data[field] = getattr(record, field)
        if record.exc_info and record.exc_info[0] is not None:
            data["error_type"] = record.exc_info[0].__name__
        return json.dumps(data, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeJsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("sanic.access", "httpx", "httpcore", "aiosqlite", "asyncio", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for name in ("sanic.root", "sanic.error", "sanic.server", "sanic.websockets"):
        sanic_logger = logging.getLogger(name)
        sanic_logger.handlers[:] = []
        sanic_logger.propagate = True
