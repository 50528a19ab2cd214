"""The error tree. The first split is *may retry* vs *must not retry*.

::

    DialerError
    ├── RetryableError            nothing happened that forbids trying again
    │   ├── NotPlacedError        Exotel provably did not place the call
    │   │   ├── ConnectionRefused   refused before the request was written
    │   │   ├── RateLimited         429, carries retry_after_s
    │   │   └── ProviderError       5xx
    │   └── StoreUnavailable      Redis unreachable (caller retries later)
    └── PermanentError            retrying the same thing cannot help
        ├── ConfigError           bad settings, named by variable
        ├── ValidationError       bad input, names the field (and line)
        ├── RequestRejected       4xx other than 401/402/403/429
        ├── AccountError          401/402/403: credentials, plan or feature; opens the circuit
        ├── AmbiguousDialError    request written, answer lost: the call MAY exist
        ├── ProtocolError         malformed AgentStream / callback data, keeps raw text
        ├── EgressRefused         the egress policy refused an outbound connection
        └── ResponseTooLarge      a remote answer exceeded the size cap

``AmbiguousDialError`` sits under *permanent* on purpose: the dial must not be
sent again blindly; only a callback or reconciliation settles it.
Provider HTTP outcomes are mapped to this tree in one place:
``dialer.net.exotel._raise_for``.
"""

from __future__ import annotations


class DialerError(Exception):
    """Root of every error this package raises on purpose."""


class RetryableError(DialerError):
    """Trying again later may succeed and cannot cause harm."""


class PermanentError(DialerError):
    """Trying the same thing again cannot help (or could cause harm)."""


class NotPlacedError(RetryableError):
    """Exotel provably did not place the call."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ConnectionRefused(NotPlacedError):
    """The connection failed before the request was written."""


class RateLimited(NotPlacedError):
    """HTTP 429; ``retry_after_s`` is Exotel's Retry-After (or a default)."""

    def __init__(self, message: str, *, retry_after_s: float, status: int = 429) -> None:
        super().__init__(message, status=status)
        self.retry_after_s = retry_after_s


class ProviderError(NotPlacedError):
    """HTTP 5xx: the provider failed and did not place the call."""


class StoreUnavailable(RetryableError):
    """Redis could not be reached."""


class ConfigError(PermanentError):
    """A setting is missing or invalid; the message names the variable."""


class ValidationError(PermanentError):
    """Input is invalid. ``field`` names what was wrong, ``line`` where (CSV)."""

    def __init__(self, message: str, *, field: str | None = None, line: int | None = None):
        super().__init__(message)
        self.field = field
        self.line = line


class RequestRejected(PermanentError):
    """A 4xx other than 401/402/403/429: the request itself is wrong."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class AccountError(PermanentError):
    """401/402/403: bad credentials, no balance or plan, feature off; stop the account."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class AmbiguousDialError(PermanentError):
    """The request was written but no answer came: the call may be ringing."""


class ProtocolError(PermanentError):
    """Malformed wire data. ``raw`` keeps (a bounded prefix of) what arrived."""

    def __init__(self, message: str, *, raw: str | bytes = "") -> None:
        super().__init__(message)
        self.raw = raw[:2048]


class EgressRefused(PermanentError):
    """The egress policy refused an outbound connection (internal address, bad URL)."""


class ResponseTooLarge(PermanentError):
    """A remote answer exceeded the response-size cap."""


def excerpt(text: str, limit: int = 40) -> str:
    """A quoted, printable excerpt of untrusted input, for an error message.

    Control characters and other unprintables are escaped and long input is
    cut, so a binary file's bytes never reach a terminal or a log line raw.
    """
    shown = "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
        for ch in text[:limit]
    )
    return f"'{shown}{'...' if len(text) > limit else ''}'"
