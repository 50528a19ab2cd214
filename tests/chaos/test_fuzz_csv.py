"""Fuzz contact ingest: ``dialer.core.contacts.parse_csv`` directly, then ``POST /v1/campaigns``.

Properties: parse_csv raises nothing but ``ValidationError``; every valid row
planted among the junk is accepted; every planted bad row is rejected with
its own physical line number (quoted newlines included) and a reason; every
rejection has a line and a reason. Over HTTP: 201 or 422 with details, never 5xx.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialer.core.contacts import MAX_FIELD_BYTES, TO_COLUMNS, parse_csv
from dialer.core.errors import ValidationError
from dialer.store import keys
from tests.support.receiver import receiver_with_account
from tests.support.signing import API_KEY

AUTH = {"Authorization": f"Bearer {API_KEY}"}
ACCOUNT = "AC_csv"
FAST = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
HTTP = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
BREAK = re.compile(r"\r\n|\r|\n")  # what io.StringIO(newline="") splits lines on

# Junk cell text: quotes, separators, newlines of every kind, NUL, non-ASCII, injection bait.
JUNK = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.sampled_from(",\"\r\n\x00;\t '=+-@éü€ß漢\ufeff"), max_size=30),
    st.sampled_from(['=HYPERLINK("x")', "+91", "null", "NaN", "to", "\\N", '""', "#"]),
)
CP1252_SAFE = st.text(alphabet=st.sampled_from(list('abc XYZ,"\r\n\x00;éüß€™…Œ')), max_size=20)


@dataclass
class Doc:
    text: str
    valid: dict[int, str]  # line -> planted good number (normalised)
    invalid: dict[int, str]  # line -> why it must be rejected (for the message)


def good_number(n: int, national: bool) -> tuple[str, str]:
    digits = f"98765{n:05d}"
    return (digits if national else f"+91 {digits[:5]} {digits[5:]}"), f"+91{digits}"


@st.composite
def documents(draw: st.DrawFn, *, cp1252: bool = False) -> Doc:
    cell = CP1252_SAFE if cp1252 else JUNK
    to_name = draw(st.sampled_from(TO_COLUMNS))
    to_name = draw(st.sampled_from([to_name, to_name.upper(), f" {to_name} ", to_name.title()]))
    extras = draw(
        st.lists(st.text(alphabet="abcdefghij_", min_size=1, max_size=6), max_size=4, unique=True)
    )
    extras = [e for e in extras if e.strip().lower() not in TO_COLUMNS]
    pos = draw(st.integers(0, len(extras)))
    header = [*extras[:pos], to_name, *extras[pos:]]
    width = len(header)
    terminator = draw(st.sampled_from(["\r\n", "\n", "\r"]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))

    def record(row: list[str]) -> str:
        # "\r\n" as the writer's terminator makes it quote any cell holding \r or \n;
        # the record then ends with the terminator this document uses.
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n", quoting=quoting).writerow(row)
        return buf.getvalue()[:-2] + terminator

    def breaks(text: str) -> int:  # parse_csv drops NULs first: "\r\x00\n" is one break
        return len(BREAK.findall(text.replace("\x00", "")))

    parts = [record(header)]
    line = 1 + breaks(parts[0])
    valid: dict[int, str] = {}
    invalid: dict[int, str] = {}
    serial = 0
    kinds = st.sampled_from(
        ["valid", "valid", "short_valid", "bad_number", "too_many", "junk", "blank", "huge"]
    )
    for kind in draw(st.lists(kinds, max_size=25)):
        row: list[str]
        if kind in ("valid", "short_valid"):
            serial += 1
            raw, norm = good_number(serial, national=draw(st.booleans()))
            row = [draw(cell) for _ in range(width)]
            row[pos] = raw
            if kind == "short_valid":  # missing trailing columns are fine
                row = row[: pos + 1]
            valid[line] = norm
        elif kind == "bad_number":
            row = [draw(cell) for _ in range(width)]
            row[pos] = draw(st.sampled_from(["12", "not-a-number", "+999", "phone"]))
            invalid[line] = "invalid number"
        elif kind == "too_many":
            row = [draw(cell) for _ in range(width + draw(st.integers(1, 3)))]
            row[pos] = good_number(90_000 + line, False)[0]
            invalid[line] = "too many fields"
        elif kind == "junk":
            row = [draw(cell) for _ in range(draw(st.integers(0, width)))]
        elif kind == "blank":
            row = []
        else:  # one field over the csv field limit, on a single physical line
            size = draw(st.integers(MAX_FIELD_BYTES + 1, MAX_FIELD_BYTES * 2))
            row = ["x" * size if draw(st.booleans()) else "y" for _ in range(width)]
            row[pos] = "+91" + "9" * size
            invalid[line] = "field too large"
        parts.append(record(row))
        line += breaks(parts[-1])
    return Doc("".join(parts), valid, invalid)


def sprinkle_nuls(text: str, where: list[int]) -> str:
    for i in sorted(where, reverse=True):
        i = min(i, len(text))
        if text[i - 1 : i + 1] == "\r\n":
            continue  # a NUL there splits one line break into two before parse_csv strips it
        text = text[:i] + "\x00" + text[i:]
    return text


def check(doc: Doc, data: bytes | str) -> None:
    result = parse_csv(data, "IN")
    numbers = {c.to for c in result.contacts}
    missing = {ln: n for ln, n in doc.valid.items() if n not in numbers}
    assert not missing, (missing, result.rejected[:5])
    rejected = {r["line"]: r["reason"] for r in result.rejected}
    for ln, why in doc.invalid.items():
        assert ln in rejected, (ln, why, result.rejected[:8])
    assert not set(doc.valid) & set(rejected), "a planted good row was reported as bad"
    for r in result.rejected:
        assert isinstance(r["line"], int) and r["line"] >= 2, r
        assert isinstance(r["reason"], str) and r["reason"].strip(), r


@FAST
@given(
    doc=documents(),
    encoding=st.sampled_from(["str", "utf-8", "utf-8-sig", "str-bom"]),
    nuls=st.lists(st.integers(0, 10_000), max_size=5),
)
def test_planted_rows_survive_any_junk(doc: Doc, encoding: str, nuls: list[int]) -> None:
    text = sprinkle_nuls(doc.text, nuls)
    data: str | bytes
    if encoding == "str":
        data = text
    elif encoding == "str-bom":
        data = "\ufeff" + text
    else:
        data = text.encode(encoding, "surrogatepass")  # a lone surrogate: invalid UTF-8 too
    check(doc, data)


@FAST
@given(doc=documents(cp1252=True))
def test_planted_rows_survive_in_cp1252(doc: Doc) -> None:
    check(doc, doc.text.encode("cp1252"))


@FAST
@given(
    data=st.one_of(
        st.binary(max_size=3000),
        st.text(max_size=3000),
        st.builds(
            lambda head, body: head + body,
            st.sampled_from(
                [
                    b"to\n",
                    b"\xef\xbb\xbfto,x\r\n",
                    b"\xff\xfet\x00o\x00\n\x00",
                    b'"to\n',
                    b"to,to\n",
                ]
            ),
            st.binary(max_size=3000),
        ),
    ),
    region=st.sampled_from([None, "IN", "US", "ZZ", "in", "??"]),
)
def test_parse_csv_raises_only_validation_error(data: bytes | str, region: str | None) -> None:
    try:
        result = parse_csv(data, region)
    except ValidationError as exc:
        assert exc.line == 1 and exc.field == "csv"
        return
    for r in result.rejected:
        assert isinstance(r["line"], int) and r["line"] >= 2 and r["reason"], r


def test_a_10mb_row_is_rejected_with_its_line_and_the_rest_accepted() -> None:
    big = "+91" + "9" * (10 * 1024 * 1024)
    text = (
        "to,name\r\n+919876500001,a\r\n"
        + big
        + ",huge\r\n+919876500002,b\r\n"
        + '"'
        + "y" * (10 * 1024 * 1024)
        + '",quoted huge\r\n+919876500003,c\r\n'
    )
    result = parse_csv(text.encode(), "IN")
    assert [c.to for c in result.contacts] == ["+919876500001", "+919876500002", "+919876500003"]
    assert [r["line"] for r in result.rejected] == [3, 5]
    assert all(r["reason"] for r in result.rejected)


def test_quoted_newlines_do_not_shift_line_numbers() -> None:
    text = 'to,note\n+919876500001,"a\nb\r\nc"\nbad,"x"\n+919876500002,"\r"\nworse,y\n'
    result = parse_csv(text, "IN")
    assert [c.to for c in result.contacts] == ["+919876500001", "+919876500002"]
    assert [r["line"] for r in result.rejected] == [5, 8]  # the lone \r is a line of its own


def test_utf16_with_bom_fails_cleanly() -> None:
    """Not supported (UTF-8 or cp1252 only), but refused with a ValidationError, not a crash."""
    data = "to,name\r\n+919876500001,a\r\n".encode("utf-16")
    try:
        result = parse_csv(data, "IN")
    except ValidationError as exc:
        assert exc.line == 1
    else:
        assert result.rejected or result.contacts


# --- over HTTP ----------------------------------------------------------------------


@pytest.fixture
async def client(redis_url: str, aiohttp_client: Callable[..., Awaitable[Any]]) -> Any:
    return await receiver_with_account(redis_url, aiohttp_client, ACCOUNT)


def assert_problem(body: dict[str, Any]) -> None:
    assert isinstance(body.get("error"), str) and body["error"]
    assert isinstance(body.get("detail"), list) and body["detail"]
    for d in body["detail"]:
        assert d.get("field") and d.get("message"), d


QUERY = st.fixed_dictionaries(
    {"account": st.sampled_from([ACCOUNT]), "bot": st.sampled_from(["echo"])},
    optional={
        "name": st.text(max_size=300),
        "max_attempts": st.sampled_from(["1", "3", "0", "99", "x", "-1", "1.5"]),
        "default_region": st.sampled_from(["IN", "US", "in", "ZZ", "??", "INDIA", "é1"]),
        "priority": st.sampled_from(["0", "101", "abc"]),
        "unknown_param": st.text(max_size=5),
    },
)


@HTTP
@given(
    doc=documents(),
    query=QUERY,
    ctype=st.sampled_from(["text/csv", "text/plain", "text/csv; charset=utf-8"]),
    bom=st.booleans(),
)
async def test_csv_upload_is_201_400_or_422_never_5xx(
    client: Any, r: redis.Redis, doc: Doc, query: dict[str, str], ctype: str, bom: bool
) -> None:
    body = ("\ufeff" if bom else "") + doc.text
    data = body.encode("utf-8", "surrogatepass")
    resp = await client.post(
        "/v1/campaigns", params=query, data=data, headers=AUTH | {"Content-Type": ctype}
    )
    assert resp.status in (201, 400, 422), (resp.status, await resp.text())
    out = await resp.json()
    if resp.status == 400:  # a bad or unknown query parameter, named
        assert_problem(out)
        assert all(d["field"].startswith("query.") for d in out["detail"]), out
        return
    if resp.status == 422:
        assert_problem(out)
        return
    assert isinstance(out["id"], str) and out["accepted"] >= 1
    for rej in out["rejected"]:
        assert isinstance(rej["line"], int) and rej["reason"]
    region = query.get("default_region", "IN")
    if region == "IN":  # the planted rows are Indian numbers, some written nationally
        assert out["accepted"] >= len(doc.valid)
        rejected_lines = {rej["line"] for rej in out["rejected"]}
        assert set(doc.invalid) <= rejected_lines
    assert r.hget(keys.CAMPAIGNS, out["id"]) == ACCOUNT


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\xef\xbb\xbf",
        b"name\nx\n",
        b"\x00\x00\x00",
        b"to\n",
        b"to\n12\n",
        b'"to\n+919876500001\n',
        b"\xff\xfe\x00",
        b"to\n" + b"+91" + b"9" * 200_000 + b"\n",
    ],
)
async def test_csv_upload_edge_bodies_are_422_with_details(client: Any, body: bytes) -> None:
    resp = await client.post(
        "/v1/campaigns",
        params={"account": ACCOUNT, "bot": "echo"},
        data=body,
        headers=AUTH | {"Content-Type": "text/csv"},
    )
    assert resp.status == 422, (resp.status, await resp.text())
    assert_problem(await resp.json())


async def test_a_cp1252_csv_upload_keeps_its_accents(client: Any, r: redis.Redis) -> None:
    data = "to,name\r\n+919876500001,José Müller\r\n".encode("cp1252")
    resp = await client.post(
        "/v1/campaigns",
        params={"account": ACCOUNT, "bot": "echo"},
        data=data,
        headers=AUTH | {"Content-Type": "text/csv"},
    )
    assert resp.status == 201, await resp.text()
    cid = (await resp.json())["id"]
    calls = await (await client.get(f"/v1/campaigns/{cid}/calls", headers=AUTH)).json()
    assert calls["calls"][0]["vars"] == {"name": "José Müller"}
