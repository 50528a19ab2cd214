"""Connect request parameters and their validation (pure, shared with the sandbox).

The client validates before any HTTP request; the sandbox validates the raw
form the same way, so both refuse the same inputs with the same field names.
Sources: ../shared/docs/exotel-protocol.md section 1 and the seed page.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
from phonenumbers.phonemetadata import PhoneMetadata

from dialer.core.errors import ValidationError, excerpt

MAX_STREAM_URL = 600  # "whole URL < 600 chars"
MAX_CUSTOM_FIELD = 128
MAX_STREAM_NAME = 32
MAX_TIME_LIMIT_S = 14_400
CALLBACK_EVENTS = ("ringing", "answered", "terminal")
RECORDING_CHANNELS = ("single", "dual")


# One wording for every path a number comes in by (CSV, JSON, REST, DNC lists),
# instead of the library's "(1) The string supplied did not seem to be...".
_PARSE_ERRORS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: (
        "no country code; write it as +<country code><number> or set a default region"
    ),
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
    phonenumbers.NumberParseException.TOO_LONG: "too long",
}


def e164(number: str, default_region: str | None = None, *, field_name: str = "From") -> str:
    """Parse ``number`` into E.164 or raise ValidationError naming ``field_name``.

    Input already in strict E.164 that the metadata tables prove valid is
    returned as it is (``strict_e164_valid``, ~10x cheaper); everything else,
    and every rejection, goes through the full parse, so the reasons are its.
    """
    if strict_e164_valid(number):
        return number
    return parse_e164(number, default_region, field_name=field_name)


def parse_e164(number: str, default_region: str | None = None, *, field_name: str = "From") -> str:
    """``e164`` by the full ``phonenumbers`` parse alone (the reference for the fast path)."""
    try:
        parsed = phonenumbers.parse(number, default_region)
    except phonenumbers.NumberParseException as exc:
        why = _PARSE_ERRORS.get(exc.error_type)
        raise ValidationError(
            f"{field_name}: {excerpt(number)} is not a valid phone number"
            + (f": {why}" if why else ""),
            field=field_name,
        ) from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationError(
            f"{field_name}: {excerpt(number)} is not a valid phone number", field=field_name
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# --- the fast path: strict E.164 proven valid without the full parse ------------------------
# ``phonenumbers.parse`` is general (IDD prefixes, vanity letters, extensions,
# RFC 3966) and was two thirds of ingest time. For "+<digits>" its outcome is
# decided by the country code, the national prefix rule and the validity
# patterns alone, so those are read from the same metadata, once per country
# code, and applied directly. The check only ever says "valid, and the parse
# would format it unchanged"; any doubt falls back to the full parse.
# tests/unit/test_e164_fast.py compares both on generated numbers of every code.

_TYPE_DESCS = (  # _number_type_helper's order; mobile is added unless same as fixed line
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
)
_MIN_NSN, _MAX_NSN = 2, 17  # phonenumbers' _MIN_LENGTH_FOR_NSN / _MAX_LENGTH_FOR_NSN


def _fits(desc: Any, length: int) -> bool:
    if desc is None or not desc.national_number_pattern:
        return False
    return not desc.possible_length or length in desc.possible_length


def _region_validator(metadata: Any) -> dict[int, tuple[re.Pattern[str], re.Pattern[str]]]:
    """NSN length -> (general pattern, any number type's pattern) of one region.

    ``_number_type_helper(nsn, md) != UNKNOWN`` exactly: the general
    description matches and so does at least one type's description, each
    only for the lengths it lists (a fullmatch of an alternation is true iff
    one alternative fullmatches).
    """
    names = list(_TYPE_DESCS) + ([] if metadata.same_mobile_and_fixed_line_pattern else ["mobile"])
    out: dict[int, tuple[re.Pattern[str], re.Pattern[str]]] = {}
    for length in range(_MIN_NSN, _MAX_NSN + 1):
        if not _fits(metadata.general_desc, length):
            continue
        types = [getattr(metadata, n) for n in names]
        alts = [d.national_number_pattern for d in types if _fits(d, length)]
        if alts:
            general = re.compile(metadata.general_desc.national_number_pattern)
            out[length] = (general, re.compile("|".join(f"(?:{a})" for a in alts)))
    return out


def _valid_in(table: dict[int, tuple[re.Pattern[str], re.Pattern[str]]], nsn: str) -> bool:
    pair = table.get(len(nsn))
    return pair is not None and bool(pair[0].fullmatch(nsn)) and bool(pair[1].fullmatch(nsn))


_Plan = tuple[re.Pattern[str] | None, tuple[Any, ...]]


def _country_plan(cc: int) -> _Plan | None:
    """(national prefix rule, ((leading digits, validator) per region in order)) of a code."""
    main = phonenumbers.region_code_for_country_code(cc)
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(cc, main)
    if metadata is None:
        return None
    prefix = metadata.national_prefix_for_parsing
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE[cc]
    if len(regions) == 1:  # region_code_for_number skips leading digits then
        plan: tuple[Any, ...] = ((None, _region_validator(metadata)),)
    else:
        found = [(r, PhoneMetadata.metadata_for_region(r, None)) for r in regions]
        plan = tuple(
            (
                re.compile(md.leading_digits) if md.leading_digits is not None else None,
                _region_validator(md),
            )
            for _r, md in found
            if md is not None
        )
    return (re.compile(prefix) if prefix else None), plan


_COUNTRY_CODES = frozenset(str(cc) for cc in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
_PLANS: dict[str, _Plan | None] = {}  # built on a code's first use (metadata loads lazily)


def strict_e164_valid(number: str) -> bool:
    """True only if ``number`` is ``+<digits>`` that the full parse accepts and keeps as is."""
    digits = number[1:]
    if number[:1] != "+" or not digits.isascii() or not digits.isdigit() or digits[0] == "0":
        return False
    # the parse takes the first of 1-3 leading digits that is a known calling code
    codes = _COUNTRY_CODES
    if (
        (cc := digits[:1]) not in codes
        and (cc := digits[:2]) not in codes
        and (cc := digits[:3]) not in codes
    ):
        return False
    nsn = digits[len(cc) :]
    if not _MIN_NSN <= len(nsn) <= _MAX_NSN or len(digits) <= _MIN_NSN:
        return False
    if cc not in _PLANS:
        _PLANS[cc] = _country_plan(int(cc))
    plan = _PLANS[cc]
    if plan is None:
        return False
    prefix, regions = plan
    if prefix is not None and prefix.match(nsn):
        return False  # the parse might strip a national prefix: let it decide
    for leading, table in regions:  # region_code_for_number, then is_valid_number_for_region
        if leading is not None:
            if leading.match(nsn):
                return _valid_in(table, nsn)
        elif _valid_in(table, nsn):
            return True
    return False


@dataclass(frozen=True)
class ConnectParams:
    """One ``POST /Calls/connect`` request. Field names follow Exotel's PascalCase form."""

    from_number: str
    caller_id: str
    stream_url: str
    stream_type: str = "bidirectional"
    record: bool | None = None
    recording_channels: str | None = None
    time_limit_s: int | None = None
    custom_field: str | None = None
    status_callback: str | None = None
    status_callback_events: Sequence[str] = field(default_factory=tuple)
    stream_name: str | None = None

    def validate(self) -> ConnectParams:
        validate_connect_form(self.to_form())
        return self

    def to_form(self) -> list[tuple[str, str]]:
        """Form fields in Exotel's names; repeated ``StatusCallbackEvents[]``."""
        form: list[tuple[str, str]] = [
            ("From", self.from_number),
            ("CallerId", self.caller_id),
            ("StreamUrl", self.stream_url),
            ("StreamType", self.stream_type),
        ]
        if self.record is not None:
            form.append(("Record", "true" if self.record else "false"))
        if self.recording_channels is not None:
            form.append(("RecordingChannels", self.recording_channels))
        if self.time_limit_s is not None:
            form.append(("TimeLimit", str(self.time_limit_s)))
        if self.custom_field is not None:
            form.append(("CustomField", self.custom_field))
        if self.status_callback is not None:
            form.append(("StatusCallback", self.status_callback))
        form.extend(("StatusCallbackEvents[]", e) for e in self.status_callback_events)
        if self.stream_name is not None:
            form.append(("StreamName", self.stream_name))
        return form


def _one(form: Mapping[str, list[str]], name: str, *, required: bool = False) -> str | None:
    values = form.get(name) or []
    if len(values) > 1:
        raise ValidationError(f"{name}: given {len(values)} times", field=name)
    if not values or values[0] == "":
        if required:
            raise ValidationError(f"{name}: required", field=name)
        return None
    return values[0]


def validate_connect_form(pairs: Sequence[tuple[str, str]] | Mapping[str, list[str]]) -> None:
    """Raise ValidationError naming the first bad field of a connect form."""
    if isinstance(pairs, Mapping):
        form = {k: list(v) for k, v in pairs.items()}
    else:
        form = {}
        for k, v in pairs:
            form.setdefault(k, []).append(v)

    frm = _one(form, "From", required=True)
    assert frm is not None
    if not frm.startswith("+"):
        raise ValidationError("From: must be E.164 (start with +country code)", field="From")
    e164(frm, field_name="From")
    if _one(form, "CallerId", required=True) is None:  # pragma: no cover - required raises
        raise ValidationError("CallerId: required", field="CallerId")
    url = _one(form, "StreamUrl", required=True) or ""
    if len(url) >= MAX_STREAM_URL:
        raise ValidationError(
            f"StreamUrl: {len(url)} chars, must be under {MAX_STREAM_URL}", field="StreamUrl"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ValidationError("StreamUrl: must be a ws:// or wss:// URL", field="StreamUrl")
    if _one(form, "StreamType", required=True) != "bidirectional":
        raise ValidationError("StreamType: must be 'bidirectional'", field="StreamType")
    record = _one(form, "Record")
    if record is not None and record not in ("true", "false"):
        raise ValidationError("Record: must be 'true' or 'false'", field="Record")
    channels = _one(form, "RecordingChannels")
    if channels is not None and channels not in RECORDING_CHANNELS:
        raise ValidationError(
            "RecordingChannels: must be 'single' or 'dual'", field="RecordingChannels"
        )
    limit = _one(form, "TimeLimit")
    if limit is not None and (not limit.isdigit() or not 1 <= int(limit) <= MAX_TIME_LIMIT_S):
        raise ValidationError(
            f"TimeLimit: must be whole seconds 1..{MAX_TIME_LIMIT_S}", field="TimeLimit"
        )
    custom = _one(form, "CustomField")
    if custom is not None and len(custom) > MAX_CUSTOM_FIELD:
        raise ValidationError(
            f"CustomField: {len(custom)} chars, at most {MAX_CUSTOM_FIELD}", field="CustomField"
        )
    callback = _one(form, "StatusCallback")
    if callback is not None:
        cb = urlsplit(callback)
        if cb.scheme not in ("http", "https") or not cb.netloc:
            raise ValidationError("StatusCallback: must be an http(s) URL", field="StatusCallback")
    for event in form.get("StatusCallbackEvents[]", []):
        if event not in CALLBACK_EVENTS:
            raise ValidationError(
                f"StatusCallbackEvents[]: {event!r} not one of {', '.join(CALLBACK_EVENTS)}",
                field="StatusCallbackEvents[]",
            )
    name = _one(form, "StreamName")
    if name is not None and len(name) > MAX_STREAM_NAME:
        raise ValidationError(
            f"StreamName: {len(name)} chars, at most {MAX_STREAM_NAME}", field="StreamName"
        )
    unknown = set(form) - {
        "From",
        "CallerId",
        "StreamUrl",
        "StreamType",
        "Record",
        "RecordingChannels",
        "TimeLimit",
        "CustomField",
        "StatusCallback",
        "StatusCallbackEvents[]",
        "StreamName",
    }
    if unknown:
        name = sorted(unknown)[0]
        raise ValidationError(f"{name}: not a Connect-to-Voice-AI parameter", field=name)
