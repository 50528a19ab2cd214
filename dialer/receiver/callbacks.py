"""Exotel status callbacks over HTTP: read and normalise the body (the use case is
``dialer.services.callback``).

Exotel does not sign callbacks, so the URL does: ``?sig=`` is an HMAC of the
call id (``dialer.core.tokens``); a missing or wrong one gets 403 and changes
nothing. Bodies arrive as multipart, urlencoded or JSON, with key spellings
that vary; everything is read case-insensitively. The attempt comes from
``CustomField`` (``<call id>:<attempt>``) or, failing that, the sid we
recorded; an event for an older attempt is a recorded no-op.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import hdrs, web

from dialer.core import forms
from dialer.core.errors import ProtocolError

MAX_FIELD = 4096
#: a whole callback body. Exotel's are ~1 KB; the app's own cap (CSV uploads) is 8 MiB.
MAX_CALLBACK_BODY = 1024 * 1024
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def _lower(pairs: Iterable[tuple[Any, Any]]) -> dict[str, Any]:
    """Fields by lower-cased name (Exotel's spellings vary); a repeated one keeps its last."""
    return {str(k).lower(): v for k, v in pairs}


async def read_capped(request: web.Request, cap: int = MAX_CALLBACK_BODY) -> bytes:
    """The whole body, read once; 413 past ``cap`` (before reading it when declared)."""
    declared = request.content_length
    if declared is not None and declared > cap:
        raise web.HTTPRequestEntityTooLarge(max_size=cap, actual_size=declared)
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > cap:
            raise web.HTTPRequestEntityTooLarge(max_size=cap, actual_size=len(body))
    return bytes(body)


async def read_body(request: web.Request) -> dict[str, Any]:
    """The callback's fields, whatever the content type; ProtocolError if unreadable.

    Forms go through ``dialer.core.forms`` (flat text fields only: Exotel sends
    no files), JSON through the stdlib; a repeated field keeps its last value.
    """
    ctype = request.content_type
    if ctype not in FORMS and ctype != "application/json":
        raise ProtocolError(f"unsupported content type {ctype!r}")
    raw = await read_capped(request)
    if ctype in FORMS:
        return _lower(forms.parse(request.headers[hdrs.CONTENT_TYPE], raw))
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, RecursionError) as exc:
        # bad JSON (or bad UTF-8), absurd nesting
        raise ProtocolError(f"unreadable {ctype} body: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise ProtocolError("JSON body must be an object", raw=raw)
    return _lower(data.items())


def _text(fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str | int | float):
        raise ProtocolError(f"{name}: expected text")
    text = str(value)
    if len(text) > MAX_FIELD:
        raise ProtocolError(f"{name}: longer than {MAX_FIELD} characters")
    return text


#: The fields a callback is read for, in Exotel's documented spelling, each with
#: the other spellings taken for it (all case-insensitive). The OpenAPI document
#: describes the body from this table (``models.ExotelCallback``), so the two agree.
FIELDS: dict[str, tuple[str, ...]] = {
    "CallSid": ("call_sid", "sid"),
    "Status": (),
    "EventType": ("event_type",),
    "CustomField": (),
    "ConversationDuration": ("duration",),
    "RecordingUrl": (),
}


def _field(fields: Mapping[str, Any], name: str) -> str | None:
    """``name``'s text under its first spelling present (FIELDS), or None."""
    for spelling in (name.lower(), *FIELDS[name]):
        if (text := _text(fields, spelling)) is not None:
            return text
    return None


def parse_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Normalise: CallSid, Status, EventType, CustomField, duration, recording URL."""
    sid = _field(fields, "CallSid")
    status = (_field(fields, "Status") or "").lower()
    event_type = (_field(fields, "EventType") or "").lower()
    if not sid:
        raise ProtocolError("missing CallSid")
    if not status and not event_type:
        raise ProtocolError("missing Status")
    duration = _field(fields, "ConversationDuration")
    try:
        seconds = float(duration) if duration else None
    except ValueError:
        seconds = None
    # Exotel's TimeLimit caps a call at 14,400 s; anything else is junk, not a duration.
    ok = seconds is not None and math.isfinite(seconds) and 0 <= seconds <= 10 * 14_400
    duration_s = int(seconds) if ok and seconds is not None else None
    return {
        "sid": sid,
        "status": status,
        "event_type": event_type,
        "custom": _field(fields, "CustomField"),
        "duration_s": duration_s,
        "recording_url": _field(fields, "RecordingUrl"),
    }
