"""Contact ingest: CSV text or JSON lists -> E.164 contacts, with every bad row reported.

Pure (no Redis). A bad row never stops the good ones: each is reported with
its line number (the physical line where the record starts, so quoted
newlines do not shift later numbers) and a reason. Duplicate numbers within
one campaign are dropped and counted.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from dialer.core.errors import ValidationError, excerpt
from dialer.core.exotel import e164

MAX_FIELD_BYTES = 64 * 1024
MAX_VARS = 50
TO_COLUMNS = ("to", "phone", "number", "msisdn")


@dataclass(frozen=True)
class Contact:
    to: str
    vars: Mapping[str, Any] = field(default_factory=dict)
    line: int = 0  # where it came from, for errors found after ingest


@dataclass
class Ingest:
    contacts: list[Contact] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    duplicates: int = 0
    _seen: set[str] = field(default_factory=set, repr=False)

    def add(self, line: int, raw_to: Any, variables: Mapping[str, Any], region: str | None) -> None:
        try:
            number = phone_number(raw_to, region)
        except ValidationError as exc:
            self.reject(line, str(exc))
            return
        if number in self._seen:
            self.duplicates += 1
            return
        self._seen.add(number)
        self.contacts.append(Contact(number, dict(variables), line))

    def reject(self, line: int, reason: str) -> None:
        self.rejected.append({"line": line, "reason": reason[:300]})


def phone_number(raw: Any, region: str | None) -> str:
    """A contact's number in E.164, or one wording for every way it can be wrong.

    CSV rows, JSON contacts and the do-not-call API all come through here, so
    the same bad number gets the same reason whichever way it was sent.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise ValidationError("to: missing phone number", field="to")
    if not isinstance(raw, str):
        # a JSON number has already lost its leading + or 0: refuse, never guess
        raise ValidationError(
            f"to: {excerpt(str(raw))} is not a valid phone number: "
            'send it as text, e.g. "+919876543210"',
            field="to",
        )
    return e164(raw.strip(), region, field_name="to")


def decode_text(data: bytes | str) -> str:
    """UTF-8 (with or without BOM), UTF-16 with a BOM; spreadsheets' cp1252 as a fallback."""
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def looks_binary(text: str) -> bool:
    """Many control characters near the start: an image or .xlsx, not CSV text.

    A few stray NULs (some exporters write them) are tolerated and dropped;
    this only decides how a refusal is worded.
    """
    head = text[:4096]
    nuls = head.count("\x00")
    others = sum(ch in _BINARY for ch in head) - nuls
    return others * 10 > len(head) or (len(head) >= 64 and nuls * 3 > len(head))


def read_text_file(data: bytes) -> str:
    """A contacts or numbers file's text; a binary file is refused with a printable excerpt."""
    text = decode_text(data)
    if looks_binary(text):
        raise ValidationError(_binary_message(text), field="csv", line=1)
    return text


def _binary_message(text: str) -> str:
    return (
        f"not CSV text (a binary file such as .xlsx or an image?): it starts with "
        f"{excerpt(text, 24)}; save it as CSV (UTF-8) with a 'to' column"
    )


# C0 controls other than tab, newline, carriage return, form feed; DEL; cp1252 "replace"
_BINARY = frozenset([*map(chr, range(0, 9)), "\x0b", *map(chr, range(14, 32)), "\x7f", "\ufffd"])


def records(reader: Any) -> Iterator[tuple[int, list[str] | csv.Error]]:
    """``(physical line where the record starts, row or its csv.Error)`` of a csv.reader.

    Quoted newlines and blank lines do not shift later numbers, so every
    report points at the line a user sees in an editor.
    """
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, exc
            start = reader.line_num + 1
            continue
        line, start = start, reader.line_num + 1
        yield line, row


def parse_csv(data: bytes | str, default_region: str | None = None) -> Ingest:
    """Header row first; a ``to`` column (or phone/number/msisdn); other columns are vars."""
    text = decode_text(data)
    result = Ingest()
    if looks_binary(text):
        raise ValidationError(_binary_message(text), field="csv", line=1)
    if "\x00" in text:
        text = text.replace("\x00", "")
    csv.field_size_limit(MAX_FIELD_BYTES)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ValidationError(
            "CSV is empty: expected a header row with a 'to' column", field="csv", line=1
        ) from None
    except csv.Error as exc:
        raise ValidationError(f"CSV header unreadable: {exc}", field="csv", line=1) from None
    names = [h.strip().lower() for h in header]
    to_col = next((names.index(c) for c in TO_COLUMNS if c in names), None)
    if to_col is None:
        raise ValidationError(
            f"CSV header has no 'to' column (found: {excerpt(', '.join(names), 200)})",
            field="csv",
            line=1,
        )
    for line, row in records(reader):
        if isinstance(row, csv.Error):
            result.reject(line, f"unreadable row: {row}")
            continue
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) > len(names):
            result.reject(line, f"row has {len(row)} fields, header has {len(names)}")
            continue
        values = dict(zip(names, row, strict=False))
        to = values.pop(names[to_col], "")
        result.add(line, to, {k: v for k, v in values.items() if k}, default_region)
    return result


def parse_list(items: Iterable[Any], default_region: str | None = None) -> Ingest:
    """JSON contacts ``[{"to": ..., "vars": {...}}]``; ``line`` is the 1-based index."""
    result = Ingest()
    for i, item in enumerate(items, start=1):
        if not isinstance(item, Mapping):
            result.reject(i, "contact must be an object with 'to'")
            continue
        variables = item.get("vars") or {}
        if not isinstance(variables, Mapping) or len(variables) > MAX_VARS:
            result.reject(i, f"'vars' must be an object with at most {MAX_VARS} keys")
            continue
        result.add(i, item.get("to"), variables, default_region)
    return result


def var_columns(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The contacts' own columns (``vars``) in first-seen order, i.e. the CSV's order."""
    seen: dict[str, None] = {}
    for row in rows:
        for key in row.get("vars") or {}:
            seen.setdefault(key, None)
    return list(seen)
