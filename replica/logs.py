"""Structured logs: one JSON object per line on stderr, and the latest lines kept in
memory (RecentLogs) for the web UI's Logs page."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections import deque
from typing import Any


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class RecentLogs(logging.Handler):
    """The latest log lines of this process, numbered, for the Logs page to follow."""

    def __init__(self, keep: int = 2000) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self._lines: deque[tuple[int, str]] = deque(maxlen=keep)
        self._seq = 0
        self._guard = threading.Lock()  # records come from every thread

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            return
        with self._guard:
            self._seq += 1
            self._lines.append((self._seq, line))

    def since(self, after: int, limit: int = 500) -> list[dict[str, Any]]:
        """Lines numbered above `after`, oldest first (at most the latest `limit`)."""
        with self._guard:
            lines = [(n, text) for n, text in self._lines if n > after]
        return [{"seq": n, **json.loads(text)} for n, text in lines[-limit:]]


def recent() -> RecentLogs | None:
    """The process's RecentLogs, once setup() installed it."""
    return next((h for h in logging.getLogger().handlers if isinstance(h, RecentLogs)), None)


def setup(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler, RecentLogs()]
    root.setLevel(level.upper())
    # httpx logs every request it makes at info: cache health checks, peer calls.
    logging.getLogger("httpx").setLevel(logging.WARNING)
