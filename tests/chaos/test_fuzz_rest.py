"""Fuzz the REST API's JSON bodies: ``POST /v1/campaigns`` and ``POST /v1/accounts``.

Wrong types, extra fields, huge strings and nested junk must get a 2xx or a
4xx whose JSON body says what is wrong (a 422 names each field), never a 5xx.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialer.store import keys
from tests.support.receiver import ServerErrors, receiver_with_account
from tests.support.signing import API_KEY

AUTH = {"Authorization": f"Bearer {API_KEY}"}
ACCOUNT = "AC_rest"
FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@pytest.fixture
async def client(redis_url: str, aiohttp_client: Callable[..., Awaitable[Any]]) -> Any:
    return await receiver_with_account(redis_url, aiohttp_client, ACCOUNT)


# --- strategies ------------------------------------------------------------------

NASTY = [
    "",
    " ",
    "\x00",
    "é" * 300,
    "x" * 70_000,
    "../../etc/passwd",
    "inf",
    "NaN",
    "-1",
    "1e400",
    "null",
    "true",
    "{}",
    "[]",
    "\ud800",
    "'; --",
    "%00",
    "\u202e",
    "0" * 400,
]


def junk(max_leaves: int = 10) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=2**63),
        st.floats(),
        st.text(max_size=30),
        st.sampled_from(NASTY),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a plausible value, sometimes anything at all."""
    return st.one_of(valid, valid, junk(6))


CONTACT = st.one_of(
    st.fixed_dictionaries(
        {"to": st.sampled_from(["+919876500001", "+919876500002", "9876500003", "bad", ""])},
        optional={
            "vars": maybe(st.dictionaries(st.text(max_size=8), st.text(max_size=20), max_size=5)),
            "extra": junk(3),
        },
    ),
    junk(4),
)

CAMPAIGN = st.fixed_dictionaries(
    {
        "account": maybe(
            st.sampled_from([ACCOUNT, ACCOUNT, "AC_nobody", "bad sid!", "{x}", "a" * 65])
        )
    },
    optional={
        "name": maybe(st.text(max_size=250)),
        "bot": maybe(
            st.sampled_from(
                [
                    "echo",
                    "beep",
                    "plugin:beep",
                    "plugin:nope",
                    "relay:ws://127.0.0.1:9/x",
                    "relay:http://x",
                    "survey:/nonexistent.json",
                    "survey:",
                    ":",
                    "echo:x",
                ]
            )
        ),
        "contacts": maybe(st.lists(CONTACT, max_size=6)),
        "csv": maybe(st.sampled_from(["to\n+919876500001\n", "", "nope", "to\n\x00\n"])),
        "default_region": maybe(st.sampled_from(["IN", "US", "in", "ZZ", "I"])),
        "max_attempts": maybe(st.integers(-5, 30)),
        "retry_delay_s": maybe(
            st.one_of(
                st.floats(-10, 1e6),
                st.dictionaries(
                    st.sampled_from(["busy", "no-answer", "failed", "completed", "x"]),
                    st.floats(-1, 1e6),
                    max_size=3,
                ),
            )
        ),
        "max_per_outcome": maybe(st.dictionaries(st.text(max_size=8), st.integers())),
        "priority": maybe(st.integers(-200, 200)),
        "weight": maybe(st.floats(-1, 2000)),
        "webhook_url": maybe(
            st.sampled_from(
                [
                    "http://127.0.0.1:9/hook",
                    "ftp://x",
                    "not a url",
                    "http://" + "a" * 3000 + ".com/",
                ]
            )
        ),
        "record": maybe(st.booleans()),
        "recording_channels": maybe(st.sampled_from(["single", "dual", "stereo"])),
        "time_limit_s": maybe(st.integers(-1, 20_000)),
        "stream_name": maybe(st.text(max_size=40)),
        "sample_rate": maybe(st.sampled_from([8000, 16000, 24000, 44100, "8000"])),
        "surprise": junk(4),
    },
)

ACCOUNT_BODY = st.fixed_dictionaries(
    {},
    optional={
        "sid": maybe(
            st.sampled_from(["AC_new", "AC.new-2", "bad sid", "{x}", "", "a" * 65, "AC\n", "é"])
        ),
        "api_key": maybe(st.text(max_size=250)),
        "api_token": maybe(st.text(max_size=250)),
        "caller_id": maybe(st.text(max_size=40)),
        "caller_ids": maybe(
            st.lists(st.one_of(st.text(max_size=20), st.sampled_from(NASTY)), max_size=5)
        ),
        "region": maybe(st.sampled_from(["sg", "in", "us", "SG"])),
        "api_url": maybe(
            st.sampled_from(
                [
                    "http://127.0.0.1:9",
                    "https://api.exotel.com/",
                    "ftp://x",
                    "no",
                    "http://user:pw@h/",
                ]
            )
        ),
        "max_concurrent_calls": maybe(st.integers(-2, 200_000)),
        "calls_per_minute": maybe(st.integers(-2, 200_000)),
        "surprise": junk(4),
    },
)

BODY = st.one_of(
    CAMPAIGN.map(lambda b: ("/v1/campaigns", b)),
    ACCOUNT_BODY.map(lambda b: ("/v1/accounts", b)),
    st.tuples(st.sampled_from(["/v1/campaigns", "/v1/accounts"]), junk(12)),
)


def encode(body: Any) -> bytes:
    return json.dumps(body).encode("utf-8", "surrogatepass")


def assert_named(status: int, body: Any) -> None:
    assert isinstance(body, dict) and isinstance(body.get("error"), str), body
    if status == 422:
        assert isinstance(body.get("detail"), list) and body["detail"], body
        for d in body["detail"]:
            assert isinstance(d.get("field"), str) and d["field"], d
            assert isinstance(d.get("message"), str) and d["message"], d


@FUZZ
@given(target=BODY)
async def test_fuzzed_json_is_2xx_or_4xx_with_named_fields(
    client: Any, r: redis.Redis, server_errors: ServerErrors, target: tuple[str, Any]
) -> None:
    path, body = target
    server_errors.last = None
    resp = await client.post(
        path, data=encode(body), headers=AUTH | {"Content-Type": "application/json"}
    )
    text = await resp.text()
    assert resp.status < 500, (resp.status, server_errors.last, text[:300])
    assert 200 <= resp.status < 300 or 400 <= resp.status < 500, resp.status
    out = json.loads(text)
    if resp.status >= 400:
        assert_named(resp.status, out)
    elif path == "/v1/campaigns":
        assert resp.status == 201 and r.hget(keys.CAMPAIGNS, out["id"]) == ACCOUNT
    else:
        assert "api_token" not in out and set(out) >= {"sid", "caller_id"}


async def test_the_api_still_serves_after_the_fuzz(client: Any, r: redis.Redis) -> None:
    for body in (b"{", b"[]", b'{"account": 1}', b"\xff", b"null", b'"x"'):
        resp = await client.post(
            "/v1/campaigns", data=body, headers=AUTH | {"Content-Type": "application/json"}
        )
        assert 400 <= resp.status < 500
        assert "error" in await resp.json()
    resp = await client.post(
        "/v1/campaigns",
        headers=AUTH,
        json={"account": ACCOUNT, "contacts": [{"to": "+919876500001"}, {"to": "nope"}]},
    )
    assert resp.status == 201, await resp.text()
    out = await resp.json()
    assert out["accepted"] == 1 and out["rejected"][0]["line"] == 2


# --- the bugs, one regression test each ---------------------------------------------


async def _post(
    client: Any, path: str, data: bytes, ctype: str = "application/json"
) -> tuple[int, Any]:
    resp = await client.post(path, data=data, headers=AUTH | {"Content-Type": ctype})
    text = await resp.text()
    try:
        return resp.status, json.loads(text)
    except ValueError:
        return resp.status, text


@pytest.mark.parametrize("account", ["bad sid!", "{x}", "a b", "ç"])
async def test_a_malformed_account_id_is_422(client: Any, account: str) -> None:
    status, body = await _post(
        client,
        "/v1/campaigns",
        json.dumps({"account": account, "contacts": [{"to": "+919876500001"}]}).encode(),
    )
    assert status == 422, (status, body)
    assert body["detail"][0]["field"] == "account"


@pytest.mark.parametrize("path", ["/v1/campaigns", "/v1/accounts"])
@pytest.mark.parametrize(
    "data", [pytest.param(b"[" * 100_000, id="array"), pytest.param(b'{"a":' * 50_000, id="object")]
)
async def test_deeply_nested_json_is_400(client: Any, path: str, data: bytes) -> None:
    status, body = await _post(client, path, data)
    assert status == 400, (status, body)


@pytest.mark.parametrize("path", ["/v1/campaigns", "/v1/accounts"])
async def test_an_unknown_charset_is_a_client_error(client: Any, path: str) -> None:
    status, body = await _post(client, path, b"{}", "application/json; charset=no-such-charset")
    assert status in (400, 415, 422), (status, body)


@pytest.mark.parametrize(
    "bot",
    [
        pytest.param("survey:~no-such-user-xyz/s.json", id="unknown_home_dir"),
        pytest.param("survey:a\x00b.json", id="nul_in_path"),
    ],
)
async def test_a_survey_path_is_refused_without_reading_it(client: Any, bot: str) -> None:
    # the API never opens a path it is sent (dialer.core.surveys): 400, whatever the path
    status, body = await _post(
        client,
        "/v1/campaigns",
        json.dumps(
            {"account": ACCOUNT, "bot": bot, "contacts": [{"to": "+919876500001"}]}
        ).encode(),
    )
    assert status == 400, (status, body)
    assert body["detail"][0]["field"] == "bot"


@pytest.mark.parametrize("delay", [b"NaN", b"Infinity", b'{"busy": NaN}'])
async def test_non_finite_retry_delays_are_422(client: Any, delay: bytes) -> None:
    status, body = await _post(
        client,
        "/v1/campaigns",
        b'{"account": "'
        + ACCOUNT.encode()
        + b'", "retry_delay_s": '
        + delay
        + b', "contacts": [{"to": "+919876500001"}]}',
    )
    assert status == 422, (status, body)
    assert body["detail"][0]["field"].startswith("retry_delay_s")
