"""Logging setup for the processes: one line per record, with call/account context.

Secrets never reach a record: nothing here formats settings, and a filter
redacts any registered secret that a third-party library might print.

Log injection: messages and context fields carry untrusted text (call ids
from URL paths, relay URLs, remote error text). ``escape_controls`` renders
every control character visibly (``\n`` -> ``\x0a``) in the message and the
context fields, so one record is always one line and no value can forge a
record of its own. A traceback keeps its line breaks but every line of it is
indented, so nothing in an exception's text can start a line like a record.
This is done once, in the formatter, not at each call site.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from dialer.core.settings import Settings

_SECRETS: set[str] = set()


def register_secret(value: str | None) -> None:
    if value and len(value) >= 6:
        _SECRETS.add(value)


# Per-call and per-tenant credentials cannot be registered one by one: stream
# tokens and callback signatures in URLs, tenant API keys, webhook keys.
_PATTERNS = re.compile(
    r"(?<=[?&]token=)[^&\s\"']+|(?<=[?&]sig=)[^&\s\"']+|\bdk_[0-9a-f]{12}_[\w-]+|\bwhk_[\w-]+"
)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        redacted = _PATTERNS.sub("***", text)
        for s in _SECRETS:
            if s in redacted:
                redacted = redacted.replace(s, "***")
        if redacted != text:
            record.msg, record.args = redacted, None
        return True


# C0 and C1 controls, DEL, and the Unicode line/paragraph separators
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape_controls(text: str) -> str:
    """Every control character as a visible escape: one value, one line."""
    return _CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class MalformedRequests(logging.Filter):
    """A request aiohttp cannot parse (a NUL in a header, a bad request line) is the
    client's error, already answered with 400: one INFO line, not an ERROR traceback.

    Anything else aiohttp.server logs (a handler that crashed) stays an ERROR.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        from aiohttp.http_exceptions import HttpProcessingError

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and record.levelno >= logging.ERROR:
            peer = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            # the parser's message quotes the raw header bytes: keep only its first line
            why = str(exc.message).splitlines()[0] if exc.message else type(exc).__name__
            record.msg, record.args = (
                "refused a malformed request from %s with %s: %r",
                (
                    peer,
                    exc.code,
                    why,
                ),
            )
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info, record.exc_text = None, None
            return logging.getLogger(record.name).isEnabledFor(logging.INFO)
        return True


class ContextFormatter(logging.Formatter):
    FIELDS = ("call_id", "account", "campaign", "stream_sid")

    def formatMessage(self, record: logging.LogRecord) -> str:
        # record.message is the %-formatted text, untrusted arguments included
        record.message = escape_controls(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:
        return "\n".join("  " + line for line in super().formatException(ei).splitlines())

    def formatStack(self, stack_info: str) -> str:
        return "\n".join("  " + line for line in stack_info.splitlines())

    def format(self, record: logging.LogRecord) -> str:
        # Another handler may have cached its own, unindented traceback text on
        # the record: render ours, and leave theirs as it was.
        cached, record.exc_text = record.exc_text, None
        try:
            base = super().format(record)
        finally:
            record.exc_text = cached
        extra = " ".join(
            f"{k}={escape_controls(str(getattr(record, k)))}"
            for k in self.FIELDS
            if hasattr(record, k)
        )
        return f"{base} {extra}" if extra else base


def register_settings_secrets(settings: Settings) -> None:
    for value in (settings.DIALER_SECRET, settings.DIALER_SECRET_PREVIOUS, settings.DIALER_API_KEY):
        if value is not None:
            register_secret(value.get_secret_value())
    if settings.EXOTEL_API_TOKEN is not None:
        register_secret(settings.EXOTEL_API_TOKEN.get_secret_value())
    for url in (settings.REDIS_URL, settings.CELERY_BROKER_URL):  # their passwords
        if url:
            register_secret(urlsplit(url).password)


LINE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def make_handler(stream: Any = None) -> logging.Handler:
    """The processes' handler: one escaped line per record, secrets redacted."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(ContextFormatter(LINE_FORMAT))
    handler.addFilter(RedactSecrets())
    return handler


def setup_logging(level: str = "INFO", settings: Settings | None = None) -> None:
    if settings is not None:
        register_settings_secrets(settings)
    handler = make_handler()
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequests) for f in server.filters):
        server.addFilter(MalformedRequests())
