"""AgentStream codec: JSON text frames <-> typed, frozen messages (pure).

Exotel -> bot messages (``decode``): Connected, Start, Media, Dtmf, Mark, Stop.
Bot -> Exotel messages (``decode_outbound``): OutMedia, OutMark, Clear.
``encode`` writes either kind (the inbound kinds are what a test client or the
sandbox plays as Exotel). Base64 lives here and nowhere else.

The hot path is per frame on every stream, so JSON is orjson, base64 is
pybase64's SIMD codec (binascii's byte loop was ~60 % of decoding a media
frame and the largest part of building one; ``base64.b64decode(validate=True)``
also runs a regex over the whole payload), and ``MediaFrames`` writes
outbound media by concatenation. A decoded ``Media`` keeps its payload's base64 text (``b64``)
so audio passed on unchanged is never encoded again.

Providers disagree on key spelling (``stream_sid`` vs ``streamSid``, see
exotel-protocol.md §5.1) and on numbers vs strings (§5.2): both are read, at
the top level and under ``start``. Malformed input raises ``ProtocolError``
keeping the raw text. This module does no I/O and never logs.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
import pybase64

from dialer.core.errors import ProtocolError

_INT = re.compile(r"-?[0-9]+")
Spelling = Literal["stream_sid", "streamSid"]
SPELLINGS: tuple[Spelling, ...] = ("stream_sid", "streamSid")
_CAMEL = {
    "stream_sid": "streamSid",
    "call_sid": "callSid",
    "account_sid": "accountSid",
    "media_format": "mediaFormat",
    "custom_parameters": "customParameters",
    "sample_rate": "sampleRate",
    "sequence_number": "sequenceNumber",
}


@dataclass(frozen=True)
class Connected:
    pass


@dataclass(frozen=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str = ""
    from_: str = ""
    to: str = ""
    custom_parameters: Mapping[str, str] = field(default_factory=dict)
    sample_rate: int | None = None  # None: media_format absent, the URL's rate applies
    encoding: str | None = None


@dataclass(frozen=True)
class Media:
    sequence: int | None
    chunk: int | None
    timestamp: int | None
    payload: bytes
    # The payload as base64 text, as received ("" when built from bytes): lets
    # audio passed on unchanged skip encoding. Not part of equality.
    b64: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class Dtmf:
    digit: str
    duration: int | None = None


@dataclass(frozen=True)
class Mark:
    name: str


@dataclass(frozen=True)
class Stop:
    reason: str = ""
    call_sid: str = ""


@dataclass(frozen=True)
class OutMedia:
    payload: bytes


@dataclass(frozen=True)
class OutMark:
    name: str


@dataclass(frozen=True)
class Clear:
    pass


Inbound = Connected | Start | Media | Dtmf | Mark | Stop
Outbound = OutMedia | OutMark | Clear
Message = Inbound | Outbound


def _get(obj: Mapping[str, Any], key: str) -> Any:
    """Read a snake_case key or its camelCase twin."""
    if key in obj:
        return obj[key]
    return obj.get(_CAMEL.get(key, key))


def _str(obj: Mapping[str, Any], key: str, raw: str, *, required: bool = False) -> str:
    value = _get(obj, key)
    if value is None:
        if required:
            raise ProtocolError(f"missing field {key!r}", raw=raw)
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ProtocolError(f"field {key!r} must be a string", raw=raw)
    return str(value)


def _int(obj: Mapping[str, Any], key: str, raw: str) -> int | None:
    value = _get(obj, key)
    if value is None or value == "":
        return None
    if type(value) is str and len(value) < 19 and value.isascii() and value.isdigit():
        return int(value)  # the common case, without the regex (ASCII digits only)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INT.fullmatch(value.strip()):
        try:
            return int(value)
        except ValueError:  # past Python's 4,300-digit int limit
            raise ProtocolError(f"field {key!r} is too long", raw=raw) from None
    raise ProtocolError(f"field {key!r} must be an integer", raw=raw)


def _obj(obj: Mapping[str, Any], key: str, raw: str, *, required: bool = True) -> dict[str, Any]:
    value = _get(obj, key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise ProtocolError(f"field {key!r} must be an object", raw=raw)
    return value


def _b64(media: Mapping[str, Any], raw: str) -> tuple[bytes, str]:
    """The payload decoded, and its text; strict: only the base64 alphabet, right padding."""
    value = media.get("payload")
    if not isinstance(value, str):
        raise ProtocolError("media.payload must be a base64 string", raw=raw)
    try:
        return pybase64.b64decode(value, validate=True), value
    except (binascii.Error, ValueError) as exc:  # binascii.Error also for non-ASCII text
        raise ProtocolError(f"media.payload is not base64: {exc}", raw=raw) from exc


def b64encode(pcm: bytes | memoryview) -> str:
    return pybase64.b64encode_as_string(pcm)


def _load(text: str | bytes) -> tuple[dict[str, Any], str]:
    if isinstance(text, bytes | bytearray):
        # AgentStream is text frames only; a binary frame is a broken peer.
        raise ProtocolError("binary frame (AgentStream sends JSON text)", raw=bytes(text))
    try:
        obj = orjson.loads(text)
    except ValueError as exc:  # orjson.JSONDecodeError: syntax, nesting depth
        raise ProtocolError(f"bad JSON: {exc}", raw=text) from exc
    if not isinstance(obj, dict):
        raise ProtocolError("frame is not a JSON object", raw=text)
    if not isinstance(obj.get("event"), str):
        raise ProtocolError("missing field 'event'", raw=text)
    return obj, text


# Query parameters of our stream URL that Exotel echoes back in
# ``start.custom_parameters`` but that are credentials: no bot may see them.
CREDENTIAL_PARAMS = frozenset({"token"})


def without_credentials(text: str) -> str:
    """A ``start`` frame's text minus ``CREDENTIAL_PARAMS`` (unchanged if it has none).

    The relay forwards frames as the text Exotel sent; this is the one place it
    must not, so the customer's bot never receives the stream token.
    """
    obj = orjson.loads(text)
    found = False
    for holder in (obj, obj.get("start")):
        if not isinstance(holder, dict):
            continue
        for name in ("custom_parameters", "customParameters"):
            params = holder.get(name)
            if isinstance(params, dict) and CREDENTIAL_PARAMS & params.keys():
                holder[name] = {k: v for k, v in params.items() if k not in CREDENTIAL_PARAMS}
                found = True
    return orjson.dumps(obj).decode() if found else text


def _start(obj: dict[str, Any], raw: str) -> Start:
    inner = _obj(obj, "start", raw, required=False)
    fmt = _obj(inner, "media_format", raw, required=False)
    params = _obj(inner, "custom_parameters", raw, required=False)
    sid = _str(inner, "stream_sid", raw) or _str(obj, "stream_sid", raw, required=True)
    return Start(
        stream_sid=sid,
        call_sid=_str(inner, "call_sid", raw) or _str(obj, "call_sid", raw),
        account_sid=_str(inner, "account_sid", raw) or _str(obj, "account_sid", raw),
        from_=_str(inner, "from", raw),
        to=_str(inner, "to", raw),
        custom_parameters={str(k): str(v) for k, v in params.items() if k not in CREDENTIAL_PARAMS},
        sample_rate=_int(fmt, "sample_rate", raw),
        encoding=_str(fmt, "encoding", raw) or None,
    )


def decode(text: str | bytes) -> Inbound:
    """Decode one Exotel -> bot frame; ProtocolError (raw kept) if malformed."""
    obj, raw = _load(text)
    event = obj["event"]
    if event == "media":  # nearly every frame: first
        media = _obj(obj, "media", raw)
        payload, b64 = _b64(media, raw)
        return Media(
            sequence=_int(obj, "sequence_number", raw),
            chunk=_int(media, "chunk", raw),
            timestamp=_int(media, "timestamp", raw),
            payload=payload,
            b64=b64,
        )
    if event == "connected":
        return Connected()
    if event == "start":
        return _start(obj, raw)
    if event == "dtmf":
        dtmf = _obj(obj, "dtmf", raw)
        return Dtmf(_str(dtmf, "digit", raw, required=True), _int(dtmf, "duration", raw))
    if event == "mark":
        return Mark(_str(_obj(obj, "mark", raw), "name", raw, required=True))
    if event == "stop":
        stop = _obj(obj, "stop", raw, required=False)
        return Stop(_str(stop, "reason", raw), _str(stop, "call_sid", raw))
    raise ProtocolError(f"unknown event {event!r}", raw=raw)


def decode_outbound(text: str | bytes) -> Outbound:
    """Decode one bot -> Exotel frame (what a customer's bot sends to the relay)."""
    obj, raw = _load(text)
    event = obj["event"]
    if event == "media":
        return OutMedia(_b64(_obj(obj, "media", raw), raw)[0])
    if event == "mark":
        return OutMark(_str(_obj(obj, "mark", raw), "name", raw, required=True))
    if event == "clear":
        return Clear()
    raise ProtocolError(f"unknown outbound event {event!r}", raw=raw)


def sniff_spelling(text: str | bytes) -> Spelling | None:
    """Which stream-sid spelling a peer uses, without a second JSON parse."""
    probe = text if isinstance(text, str) else text.decode("utf-8", "replace")
    if '"streamSid"' in probe:
        return "streamSid"
    if '"stream_sid"' in probe:
        return "stream_sid"
    return None


def _body(msg: Message, k: Any, stream_sid: str) -> dict[str, Any]:
    if isinstance(msg, OutMedia):
        return {"event": "media", "media": {"payload": b64encode(msg.payload)}}
    if isinstance(msg, OutMark | Mark):
        return {"event": "mark", "mark": {"name": msg.name}}
    if isinstance(msg, Clear):
        return {"event": "clear"}
    if isinstance(msg, Connected):
        return {"event": "connected"}
    if isinstance(msg, Media):
        media: dict[str, Any] = {"payload": msg.b64 or b64encode(msg.payload)}
        if msg.chunk is not None:
            media["chunk"] = str(msg.chunk)
        if msg.timestamp is not None:
            media["timestamp"] = str(msg.timestamp)
        body: dict[str, Any] = {"event": "media", "media": media}
        if msg.sequence is not None:
            body[k("sequence_number")] = str(msg.sequence)
        return body
    if isinstance(msg, Dtmf):
        dtmf = {"digit": msg.digit}
        if msg.duration is not None:
            dtmf["duration"] = str(msg.duration)
        return {"event": "dtmf", "dtmf": dtmf}
    if isinstance(msg, Stop):
        return {"event": "stop", "stop": {k("call_sid"): msg.call_sid, "reason": msg.reason}}
    fmt: dict[str, Any] = {}
    if msg.encoding is not None:
        fmt["encoding"] = msg.encoding
    if msg.sample_rate is not None:
        fmt[k("sample_rate")] = str(msg.sample_rate)
    return {
        "event": "start",
        "start": {
            k("stream_sid"): stream_sid,  # the frame's sid, wherever the peer looks
            k("call_sid"): msg.call_sid,
            k("account_sid"): msg.account_sid,
            "from": msg.from_,
            "to": msg.to,
            k("custom_parameters"): dict(msg.custom_parameters),
            k("media_format"): fmt,
        },
    }


def encode(msg: Message, stream_sid: str, *, spelling: Spelling = "stream_sid") -> str:
    """One JSON text frame for ``msg`` on stream ``stream_sid``, in ``spelling``."""
    if spelling not in SPELLINGS:
        raise ValueError(f"unknown spelling {spelling!r}")

    def key(name: str) -> str:
        return _CAMEL[name] if spelling == "streamSid" else name

    body = _body(msg, key, stream_sid)
    if not isinstance(msg, Connected):
        body[key("stream_sid")] = stream_sid
    return orjson.dumps(body).decode()


class MediaFrames:
    """Outbound media frames of one stream, as the UTF-8 bytes of the text frame.

    Byte for byte what ``encode(OutMedia(pcm), stream_sid, spelling=...)``
    writes, built by concatenation: base64 needs no JSON escaping and the
    stream sid is escaped once, here.
    """

    HEAD = b'{"event":"media","media":{"payload":"'

    def __init__(self, stream_sid: str, spelling: Spelling = "stream_sid") -> None:
        if spelling not in SPELLINGS:
            raise ValueError(f"unknown spelling {spelling!r}")
        key = _CAMEL["stream_sid"] if spelling == "streamSid" else "stream_sid"
        self._tail = b'"},' + orjson.dumps(key) + b":" + orjson.dumps(stream_sid) + b"}"

    def encode(self, pcm: bytes | memoryview) -> bytes:
        """The frame for ``pcm`` (a chunk: the caller keeps to the size rule)."""
        return self.HEAD + pybase64.b64encode(pcm) + self._tail

    def wrap(self, b64: str) -> bytes:
        """The frame for a payload already in base64 (audio passed on unchanged)."""
        return self.HEAD + b64.encode("ascii") + self._tail
