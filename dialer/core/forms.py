"""Flat HTML form bodies (``application/x-www-form-urlencoded``, ``multipart/form-data``)
as the (name, text value) pairs they carry, in order.

Exotel's status callbacks are a dozen short text fields (``CallSid``,
``Status``, ...; /work/shared/docs/exotel-protocol.md section 2), so this reads
exactly that and refuses the rest with a :class:`ProtocolError` that says why:
an upload (a part with a filename or a non-text type), a nested multipart, a
``Content-Transfer-Encoding`` (RFC 7578 section 4.7 deprecates it for
form-data), a missing or malformed boundary, a missing terminator, an unknown
charset, undecodable text, too many fields or too long a part header. It was
written because aiohttp's general multipart reader spent ~23 % of the
receiver's samples per callback (a ``re.escape`` of 128 characters for every
part's header, a stream reader per part; benchmarks/profiles.md).

Pure: bytes in, pairs out. It does not read HTTP (``dialer.receiver.callbacks``
does, with a size cap) and does not decide what the fields mean.
"""

from __future__ import annotations

import codecs
import re
from urllib.parse import parse_qsl

from dialer.core.errors import ProtocolError

MAX_FIELDS = 1000  # aiohttp's client_max_fields; a callback has ~15
MAX_PART_HEADERS = 8190  # one part's header block, aiohttp's header line limit
MAX_BOUNDARY = 70  # RFC 2046 section 5.1.1
IDENTITY = ("7bit", "8bit", "binary")  # the transfer encodings that change nothing

# `; name=value` or `; name="quoted \" value"` (RFC 2045 section 5.1, RFC 7578 4.2).
_PARAM = re.compile(r'[ \t]*;[ \t]*([^\s=;"]+)[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.)*)"|([^;"]*))', re.S)
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)
# Controls other than tab have no place in a header (a NUL or a 0x1f is an attack or junk).
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# RFC 2046 bchars, plus ASCII punctuation senders use in practice.
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? !#$%&*\[\]^`{|}~]+")
_SKIP = re.compile(r"[ \t;]*")


def header_params(value: str) -> tuple[str, dict[str, str]]:
    """``"form-data; name=\\"a\\""`` -> ``("form-data", {"name": "a"})``; names lower-cased."""
    head, sep, _ = value.partition(";")
    params: dict[str, str] = {}
    pos = len(head)
    while sep and pos < len(value):
        m = _PARAM.match(value, pos)
        if m is None:
            rest = _SKIP.match(value, pos)
            if rest is not None and rest.end() == len(value):
                break  # a trailing ';'
            raise ProtocolError(f"malformed header parameters: {value[:200]!r}")
        quoted, token = m.group(2), m.group(3)
        if quoted is None:
            params[m.group(1).lower()] = token.strip()
        else:
            params[m.group(1).lower()] = (
                _QUOTED_PAIR.sub(r"\1", quoted) if "\\" in quoted else quoted
            )
        pos = m.end()
    return head.strip().lower(), params


def _charset(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise ProtocolError(f"unknown charset {name[:40]!r}") from None


def parse(content_type: str, body: bytes) -> list[tuple[str, str]]:
    """The form's fields, by the request's ``Content-Type`` header; ProtocolError if malformed."""
    mime, params = header_params(content_type)
    if mime == "application/x-www-form-urlencoded":
        return urlencoded(body, params.get("charset") or "utf-8")
    if mime == "multipart/form-data":
        boundary = params.get("boundary")
        if not boundary:
            raise ProtocolError("multipart body without a boundary")
        return multipart(body, boundary)
    raise ProtocolError(f"not a form: {mime[:100]!r}")


def urlencoded(body: bytes, charset: str = "utf-8") -> list[tuple[str, str]]:
    """``a=1&b=2`` -> pairs; blank values kept, ``+`` and ``%XX`` decoded (as browsers send)."""
    charset = _charset(charset)
    try:
        text = body.rstrip().decode(charset)
    except UnicodeDecodeError:
        raise ProtocolError(f"body is not {charset} text", raw=body) from None
    if not text:
        return []
    if text.count("&") >= MAX_FIELDS:
        raise ProtocolError(f"more than {MAX_FIELDS} fields")
    if "%" not in text:  # nothing to unquote but '+': skip parse_qsl's per-field work
        pairs = []
        for item in text.replace("+", " ").split("&"):
            if item:
                name, _, value = item.partition("=")
                pairs.append((name, value))
        return pairs
    return parse_qsl(text, keep_blank_values=True, encoding=charset, errors="replace")


def multipart(body: bytes, boundary: str) -> list[tuple[str, str]]:
    """RFC 7578 ``multipart/form-data`` with flat text parts only -> pairs.

    The preamble before the first delimiter and the epilogue after the last
    are ignored (RFC 2046 section 5.1.1); every part needs a
    ``Content-Disposition: form-data; name=...`` and may have a ``text/*``
    ``Content-Type`` with a charset (default UTF-8).
    """
    if len(boundary) > MAX_BOUNDARY or not _BOUNDARY.fullmatch(boundary):
        raise ProtocolError(f"bad multipart boundary {boundary[:80]!r}")
    delimiter = b"--" + boundary.encode("ascii")
    between = b"\r\n" + delimiter
    if body.startswith(delimiter):
        pos = len(delimiter)
    else:
        first = body.find(between)
        if first < 0:
            raise ProtocolError("multipart body without its opening boundary", raw=body)
        pos = first + len(between)
    pairs: list[tuple[str, str]] = []
    while True:
        if body.startswith(b"--", pos):
            return pairs  # the close delimiter: what follows is the epilogue
        eol = body.find(b"\r\n", pos)
        if eol < 0:
            raise ProtocolError("multipart body without its closing boundary", raw=body[:2048])
        if body[pos:eol].strip(b" \t"):  # only transport padding may follow a delimiter
            raise ProtocolError("malformed multipart boundary line", raw=body[pos:eol])
        if len(pairs) >= MAX_FIELDS:
            raise ProtocolError(f"more than {MAX_FIELDS} fields")
        start = eol + 2
        if body.startswith(b"\r\n", start):
            raise ProtocolError("multipart part without headers")
        end_headers = body.find(b"\r\n\r\n", start, start + MAX_PART_HEADERS + 4)
        if end_headers < 0:
            raise ProtocolError("multipart part headers too long or unterminated")
        name, charset = _part_headers(body[start:end_headers])
        value_at = end_headers + 4
        value_end = body.find(between, value_at)
        if value_end < 0:
            raise ProtocolError("multipart body without its closing boundary", raw=body[:2048])
        try:
            value = body[value_at:value_end].decode(charset)
        except UnicodeDecodeError:
            raise ProtocolError(f"field {name[:100]!r} is not {charset} text") from None
        pairs.append((name, value))
        pos = value_end + len(between)


def _part_headers(block: bytes) -> tuple[str, str]:
    """One part's header block -> (field name, charset of its value)."""
    name: str | None = None
    charset = "utf-8"
    for line in block.split(b"\r\n"):
        if _CONTROL.search(line):
            raise ProtocolError("control character in a multipart part header", raw=line)
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("multipart part header is not UTF-8", raw=line) from None
        key, colon, value = text.partition(":")
        if not colon or not key or key != key.strip():
            raise ProtocolError("malformed multipart part header", raw=line)
        key = key.lower()
        if key == "content-disposition":
            kind, params = header_params(value)
            if kind != "form-data":
                raise ProtocolError(f"part disposition {kind[:40]!r}, not form-data")
            if params.get("filename"):  # an upload: Exotel sends none
                raise ProtocolError(f"unexpected file field {params.get('name', '')[:100]!r}")
            name = params.get("name")
        elif key == "content-type":
            mime, params = header_params(value)
            if not mime.startswith("text/"):
                raise ProtocolError(f"part of type {mime[:60]!r}: only text fields are read")
            charset = _charset(params.get("charset") or "utf-8")
        elif key == "content-transfer-encoding" and value.strip().lower() not in IDENTITY:
            raise ProtocolError(f"content-transfer-encoding {value.strip()[:40]!r}")
    if name is None:
        raise ProtocolError("multipart part without a name")
    return name, charset
