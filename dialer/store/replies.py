"""The Redis edge's types: replies narrowed once, here, instead of a cast per call.

redis-py types every reply ``bytes | str`` because decoding is a runtime flag of
the client. Every client the dialer makes decodes (``decode_responses=True``,
see ``dialer.platform.embedded`` and the processes' connection factories), so
a reply is ``str``; these helpers state that once. Mapping arguments go the
other way: redis-py's ``Mapping`` parameter is invariant in its key type, so a
``dict[str, str]`` needs widening to be accepted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

Field = bytes | str


def text(reply: Field | None) -> str | None:
    """One decoded string reply (``GET``, ``HGET``), or None when absent."""
    if reply is None:
        return None
    return reply.decode() if isinstance(reply, bytes) else reply


def texts(reply: Iterable[Any]) -> list[str]:
    """A list reply of members or ids (``ZRANGE``, ``SMEMBERS``, a script's list)."""
    return [m.decode() if isinstance(m, bytes) else str(m) for m in reply]


def fields(reply: Mapping[Field, Field] | None) -> dict[str, str]:
    """A hash reply (``HGETALL``) as the ``str`` mapping a decoding client returns."""
    return cast("dict[str, str]", dict(reply or {}))


def mapping(values: Mapping[str, Any]) -> Mapping[Any, Any]:
    """A ``str``-keyed mapping as the argument ``HSET mapping=`` accepts."""
    return values
