"""Injection into what people read: forged log lines and spreadsheet formulas."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import redis

from dialer.platform.logs import escape_controls, make_handler
from dialer.receiver.api import csv_cell
from dialer.receiver.app import create_app
from dialer.store import keys
from streamer.app import create_app as create_streamer
from tests.support.seed import ACCOUNT, setup_account
from tests.support.signing import AUTH, make_settings

FORGED = "1999-01-01 09:00:00,000 ERROR dialer: forged"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("abc", "abc"),
        ("a\nb", "a\\u000ab"),
        ("a\r\nb", "a\\u000d\\u000ab"),
        ("\x1b[31mred", "\\u001b[31mred"),  # terminal escapes too
        ("a\u2028b", "a\\u2028b"),
        ("tab\there", "tab\\u0009here"),
        ("ünïcödé ok", "ünïcödé ok"),
    ],
)
def test_escape_controls(raw: str, shown: str) -> None:
    assert escape_controls(raw) == shown


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Records as the processes write them (dialer.platform.logs' handler), into a buffer."""
    out = io.StringIO()
    handler = make_handler(out)
    root = logging.getLogger()
    root.addHandler(handler)
    old = root.level
    root.setLevel(logging.INFO)
    yield out
    root.removeHandler(handler)
    root.setLevel(old)


def test_untrusted_values_cannot_start_a_line(log_lines: io.StringIO) -> None:
    log = logging.getLogger("dialer.test")
    log.warning("refused call_id=%s", f"x\n{FORGED}")
    log.info("context", extra={"call_id": f"y\r\n{FORGED}"})
    try:
        raise ValueError(f"bad\n{FORGED}")
    except ValueError:
        log.exception("failed")
    lines = log_lines.getvalue().splitlines()
    assert not [line for line in lines if line.startswith("1999-01-01")], lines
    assert all(line.startswith((" ", "20")) for line in lines)  # continuation is indented
    assert "x\\u000a1999-01-01" in lines[0]


async def test_a_forged_line_in_the_stream_path_is_escaped(
    redis_url: str, aiohttp_server: Any, log_lines: io.StringIO
) -> None:
    """The attack from the issue: %0A in the stream URL's call id."""
    settings = make_settings(redis_url)
    server = await aiohttp_server(create_streamer(settings), host="127.0.0.1", port=0)
    path = "/stream/abc%0A1999-01-01%2009:00:00,000%20ERROR%20dialer:%20forged"
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"http://127.0.0.1:{server.port}{path}?token=x")
        await ws.receive(timeout=5)
        await ws.close()
    text = log_lines.getvalue()
    assert "stream refused" in text
    assert not any(line.startswith("1999-01-01") for line in text.splitlines()), text


@pytest.mark.parametrize(
    ("value", "neutral"),
    [
        (
            '=HYPERLINK("http://evil.example","click")',
            '\'=HYPERLINK("http://evil.example","click")',
        ),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(1+1)", "'@SUM(1+1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("+919876500001", "+919876500001"),  # an E.164 number is no formula
        ("-12.5", "-12.5"),
        ("plain", "plain"),
        (3, 3),
        ("", ""),
    ],
)
def test_csv_cells_are_neutralised(value: Any, neutral: Any) -> None:
    assert csv_cell(value) == neutral


async def test_csv_export_carries_no_formula(
    redis_url: str, r: redis.Redis, aiohttp_client: Any
) -> None:
    setup_account(r)
    client = await aiohttp_client(create_app(make_settings(redis_url)))
    contacts = [{"to": "+919876500001", "vars": {"name": "=1+2", "=cmd": "@x"}}]
    resp = await client.post(
        "/v1/campaigns",
        json={"account": ACCOUNT, "bot": "echo", "contacts": contacts},
        headers=AUTH,
    )
    assert resp.status == 201, await resp.text()
    cid = (await resp.json())["id"]
    r.hset(keys.call(ACCOUNT, keys.call_id(cid, 0)), "reason", '=HYPERLINK("http://evil")')
    text = await (await client.get(f"/v1/campaigns/{cid}/calls?format=csv", headers=AUTH)).text()
    rows = list(csv.reader(io.StringIO(text)))
    cells = [c for row in rows for c in row]
    assert not [c for c in cells if c[:1] in ("=", "@", "\t", "\r")], rows
    assert not [c for c in cells if c[:1] in ("+", "-") and not c[1:].replace(".", "").isdigit()]
    assert '\'=HYPERLINK("http://evil")' in cells and "+919876500001" in cells
