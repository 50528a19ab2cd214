"""Contact ingest: CSV text or JSON lists -> E.164 contacts, with every bad row reported.

Pure (no Redis). A bad row never stops the good ones: each is reported with
its line number (the physical line where the record starts, so quoted
newlines do not shift later numbers) and a reason. Duplicate numbers within
one campaign are dropped and counted.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dialer.errors import ValidationError
from dialer.exotel.params import e164

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
        if not isinstance(raw_to, str) or not raw_to.strip():
            self.reject(line, "missing phone number in 'to'")
            return
        try:
            number = e164(raw_to.strip(), region, field_name="to")
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


def decode_text(data: bytes | str) -> str:
    """UTF-8 (with or without BOM); spreadsheets' cp1252 as a fallback."""
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def parse_csv(data: bytes | str, default_region: str | None = None) -> Ingest:
    """Header row first; a ``to`` column (or phone/number/msisdn); other columns are vars."""
    text = decode_text(data)
    result = Ingest()
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
            f"CSV header has no 'to' column (found: {', '.join(names)[:200]})",
            field="csv",
            line=1,
        )
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            result.reject(start, f"unreadable row: {exc}")
            start = reader.line_num + 1
            continue
        line, start = start, reader.line_num + 1
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
