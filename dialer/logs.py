"""Logging setup for the processes: one line per record, with call/account context.

Secrets never reach a record: nothing here formats settings, and a filter
redacts any registered secret that a third-party library might print.
"""

from __future__ import annotations

import logging
import sys

_SECRETS: set[str] = set()


def register_secret(value: str | None) -> None:
    if value and len(value) >= 6:
        _SECRETS.add(value)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _SECRETS:
            text = record.getMessage()
            if any(s in text for s in _SECRETS):
                for s in _SECRETS:
                    text = text.replace(s, "***")
                record.msg, record.args = text, None
        return True


class ContextFormatter(logging.Formatter):
    FIELDS = ("call_id", "account", "campaign", "stream_sid")

    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        extra = " ".join(f"{k}={getattr(record, k)}" for k in self.FIELDS if hasattr(record, k))
        return f"{base} {extra}" if extra else base


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ContextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
