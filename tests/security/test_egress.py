"""SSRF: the egress policy, as a table (pure) and as attacks on loopback servers.

The decision table uses public addresses as *data* only; every socket any
test here opens is on 127.0.0.0/8. The loopback "internal service" answers
with a marker text; the attacks check that no request reached it (or, where
it is allow-listed, that its text never reaches a stored reason, an API
answer or the CSV export).
"""

from __future__ import annotations

import http.server
import ipaddress
import logging
import socketserver
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import requests

from dialer.core.egress import EgressPolicy, classify, decide, is_exotel_url
from dialer.core.errors import AccountError, EgressRefused, RequestRejected, ResponseTooLarge
from dialer.core.settings import load_settings
from dialer.net.egress import Egress, fetch, system_resolver
from dialer.net.exotel import ExotelClient
from dialer.services.webhooks import deliver
from dialer.store import keys
from tests.support.seed import ACCOUNT, make_campaign
from tests.support.signing import AUTH, make_settings

INTERNAL = "INTERNAL-ONLY-b7e1 admin page"
NOTHING = EgressPolicy()
LOOPBACK_OK = EgressPolicy.parse("127.0.0.0/8")


# ---------------------------------------------------------------- the decision


@pytest.mark.parametrize(
    ("addresses", "allowed", "why"),
    [
        (["93.184.216.34"], True, "public"),
        (["2606:2800:220:1:248:1893:25c8:1946"], True, "public"),
        (["127.0.0.1"], False, "loopback"),
        (["127.9.9.9"], False, "loopback"),
        (["::1"], False, "loopback"),
        (["::ffff:127.0.0.1"], False, "loopback"),  # v4-mapped
        (["::ffff:10.0.0.1"], False, "private"),
        (["2002:7f00:1::"], False, "loopback"),  # 6to4 around 127.0.0.1
        (["0.0.0.0"], False, "unspecified"),
        (["::"], False, "unspecified"),
        (["169.254.169.254"], False, "link-local"),  # cloud metadata
        (["fe80::1"], False, "link-local"),
        (["fe80::1%eth0"], False, "link-local"),
        (["10.1.2.3"], False, "private"),
        (["172.16.0.1"], False, "private"),
        (["192.168.1.1"], False, "private"),
        (["fc00::1"], False, "private"),
        (["224.0.0.1"], False, "multicast"),
        (["ff02::1"], False, "multicast"),
        (["240.0.0.1"], False, "reserved"),
        (["100.64.0.1"], False, "not globally routable"),  # carrier-grade NAT
        (["93.184.216.34", "10.0.0.1"], False, "private"),  # one bad record spoils all
        ([], False, "does not resolve"),
        (["not-an-ip"], False, "non-address"),
    ],
)
def test_decision_table(addresses: list[str], allowed: bool, why: str) -> None:
    d = decide("svc.example", 443, addresses, NOTHING)
    assert d.allowed is allowed
    assert why in d.reason
    assert d.address == (addresses[0] if allowed else None)


@pytest.mark.parametrize(
    ("policy", "host", "port", "addresses", "allowed"),
    [
        (LOOPBACK_OK, "localhost", 80, ["127.0.0.1"], True),
        (LOOPBACK_OK, "svc", 80, ["127.0.0.1", "10.0.0.1"], False),  # 10/8 not named
        (EgressPolicy.parse("10.0.0.0/8, 127.0.0.1"), "svc", 80, ["127.0.0.1", "10.0.0.1"], True),
        (EgressPolicy.parse("::1"), "svc", 80, ["::1"], True),
        (EgressPolicy.parse("::1"), "svc", 80, ["127.0.0.1"], False),
        (EgressPolicy.parse("sandbox.internal"), "Sandbox.Internal.", 80, ["10.0.0.5"], True),
        (EgressPolicy.parse("sandbox.internal"), "other.internal", 80, ["10.0.0.5"], False),
        # the operator's own EXOTEL_API_URL is trusted, on its port only
        (EgressPolicy.parse("", ["http://10.0.0.5:8082"]), "10.0.0.5", 8082, ["10.0.0.5"], True),
        (EgressPolicy.parse("", ["http://10.0.0.5:8082"]), "10.0.0.5", 6379, ["10.0.0.5"], False),
    ],
)
def test_allow_list_and_trusted_origins(
    policy: EgressPolicy, host: str, port: int, addresses: list[str], allowed: bool
) -> None:
    assert decide(host, port, addresses, policy).allowed is allowed


def test_classify_is_pure_and_total() -> None:
    assert classify(ipaddress.ip_address("8.8.8.8")) is None
    assert classify(ipaddress.ip_address("::ffff:8.8.8.8")) is None


@pytest.mark.parametrize(
    ("url", "policy", "ok"),
    [
        ("https://api.exotel.com", NOTHING, True),
        ("https://api.in.exotel.com/", NOTHING, True),
        ("http://api.exotel.com", NOTHING, False),  # credentials never in clear text
        ("https://api.exotel.com.evil.example", NOTHING, False),
        ("https://evil.example/api.exotel.com", NOTHING, False),
        ("http://127.0.0.1:8082", NOTHING, False),
        ("http://127.0.0.1:8082", LOOPBACK_OK, True),
        ("http://sandbox:8082", EgressPolicy.parse("sandbox"), True),
        ("http://sandbox:8082", EgressPolicy.parse("", ["http://sandbox:8082"]), True),
        ("ftp://api.exotel.com", NOTHING, False),
    ],
)
def test_account_api_url_must_be_exotel(url: str, policy: EgressPolicy, ok: bool) -> None:
    assert is_exotel_url(url, policy) is ok


def test_a_bad_allow_list_names_the_variable() -> None:
    with pytest.raises(Exception, match="DIALER_EGRESS_ALLOW"):
        load_settings(DIALER_EGRESS_ALLOW="10.0.0.0/8, not a host!")


# ------------------------------------------------------- loopback test servers


class Service:
    """A loopback HTTP server that records what reached it."""

    def __init__(self, answer: Any) -> None:
        self.hits: list[tuple[str, str, str | None]] = []
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self) -> None:
                service.hits.append((self.command, self.path, self.headers.get("Host")))
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                answer(self)

            do_GET = do_POST = do_HEAD = _any

            def log_message(self, *_: Any) -> None:
                pass

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def url(self, path: str = "/internal", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def send(handler: Any, status: int, body: bytes, **headers: str) -> None:
    handler.send_response(status)
    for k, v in headers.items():
        handler.send_header(k.replace("_", "-"), v)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


@pytest.fixture
def internal() -> Iterator[Service]:
    """The service an attacker wants to reach: answers an error page with secrets."""
    s = Service(lambda h: send(h, 400, INTERNAL.encode(), Content_Type="text/html"))
    yield s
    s.close()


@pytest.fixture
def redirector(internal: Service) -> Iterator[Service]:
    """A server that answers every request with a 307 to the internal service."""
    s = Service(lambda h: send(h, 307, b"", Location=internal.url()))
    yield s
    s.close()


def resolver_to(mapping: dict[str, list[str]]) -> Any:
    """A resolver hook: test names resolve as given, others as the system does."""
    calls: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return mapping[host] if host in mapping else system_resolver(host, port)

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


# ------------------------------------------------------------- enforcement


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "evil.test"])
def test_requests_to_internal_addresses_are_refused(internal: Service, host: str) -> None:
    egress = Egress(NOTHING, resolver_to({"evil.test": ["127.0.0.1"]}))
    with pytest.raises(EgressRefused, match="refused by the egress policy"):
        fetch(egress.session(), "GET", internal.url(host=host), timeout=(1, 1), deadline_s=2)
    assert internal.hits == []


def test_the_checked_address_is_the_one_connected_to(internal: Service) -> None:
    """DNS is asked once per connection and that answer is dialled; Host stays the name."""
    resolve = resolver_to({"svc.test": ["127.0.0.1"]})
    egress = Egress(EgressPolicy.parse("svc.test"), resolve)
    resp = fetch(
        egress.session(), "GET", internal.url(host="svc.test"), timeout=(1, 1), deadline_s=2
    )
    assert resp.status_code == 400
    assert resolve.calls == ["svc.test"]  # the system resolver never saw svc.test
    assert internal.hits == [("GET", "/internal", f"svc.test:{internal.port}")]


def test_rebinding_after_the_check_changes_nothing(internal: Service) -> None:
    """A name that is public when checked and internal a moment later: the first
    answer is judged and dialled; no second lookup happens for that connect."""
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    seen: list[str] = []

    def flapping(host: str, port: int) -> list[str]:
        got = next(answers)
        seen.extend(got)
        return got

    egress = Egress(NOTHING, flapping)
    assert egress.resolve("rebind.test", 80) == "93.184.216.34"
    with pytest.raises(EgressRefused):
        egress.resolve("rebind.test", 80)  # the next connect is judged afresh
    assert internal.hits == []


def test_redirects_are_not_followed(redirector: Service, internal: Service) -> None:
    egress = Egress(LOOPBACK_OK)
    resp = fetch(egress.session(), "GET", redirector.url(), timeout=(1, 1), deadline_s=2)
    assert resp.status_code == 307
    assert len(redirector.hits) == 1 and internal.hits == []


def test_answers_are_size_capped() -> None:
    big = Service(lambda h: send(h, 200, b"x" * 300_000))
    try:
        egress = Egress(LOOPBACK_OK)
        with pytest.raises(ResponseTooLarge):
            fetch(
                egress.session(),
                "GET",
                big.url(),
                timeout=(1, 1),
                deadline_s=2,
                max_bytes=100_000,
            )
    finally:
        big.close()


def trickled_body(h: Any) -> None:
    h.send_response(200)
    h.send_header("Content-Length", "1000")
    h.end_headers()
    for _ in range(1000):
        h.wfile.write(b"x")
        h.wfile.flush()
        time.sleep(0.05)


def trickled_headers(h: Any) -> None:
    h.wfile.write(b"HTTP/1.1 200 OK\r\n")
    for _ in range(200):
        h.wfile.write(b"X-Slow: 1\r\n")
        h.wfile.flush()
        time.sleep(0.05)


@pytest.mark.parametrize("trickle", [trickled_body, trickled_headers])
def test_a_trickling_answer_hits_the_total_deadline(trickle: Any) -> None:
    """Each byte arrives within the read timeout, the whole far past the deadline."""
    slow = Service(trickle)
    try:
        egress = Egress(LOOPBACK_OK)
        started = time.monotonic()
        with pytest.raises(requests.exceptions.ReadTimeout):
            fetch(egress.session(), "GET", slow.url(), timeout=(1, 1), deadline_s=0.5)
        assert time.monotonic() - started < 1.5
    finally:
        slow.close()


def test_proxies_from_the_environment_are_ignored(
    internal: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy would connect for us, unchecked: the egress session never uses one.
    monkeypatch.setenv("HTTP_PROXY", internal.url(path=""))
    monkeypatch.setenv("HTTPS_PROXY", internal.url(path=""))
    egress = Egress(NOTHING)
    with pytest.raises((EgressRefused, requests.ConnectionError)):
        fetch(egress.session(), "GET", "http://192.0.2.1:9/", timeout=(0.2, 0.2), deadline_s=0.5)
    assert internal.hits == []


# ----------------------------------------------------------- the Exotel client


def test_exotel_client_under_policy_refuses_internal_api_url(internal: Service) -> None:
    client = ExotelClient(ACCOUNT, "k", "t", base_url=internal.url(path=""), egress=Egress(NOTHING))
    with pytest.raises(AccountError, match="egress policy"):
        client.get_call("CA1")
    assert internal.hits == []


def test_a_stored_non_exotel_api_url_is_never_contacted() -> None:
    """An account record from before the api_url rule: stopped before any lookup."""
    resolve = resolver_to({"not-exotel.test": ["93.184.216.34"]})
    client = ExotelClient(
        ACCOUNT, "k", "t", base_url="https://not-exotel.test", egress=Egress(NOTHING, resolve)
    )
    with pytest.raises(AccountError, match="not an Exotel API host"):
        client.get_call("CA1")
    assert resolve.calls == []


def test_exotel_errors_carry_only_the_restexception_message() -> None:
    def rest(h: Any) -> None:
        if "json-error" in h.path:
            body = b'{"RestException": {"Status": 400, "Message": "To is invalid", "Extra": "x"}}'
            send(h, 400, body, Content_Type="application/json")
        else:
            send(h, 400, INTERNAL.encode(), Content_Type="text/html")

    server = Service(rest)
    try:
        client = ExotelClient(ACCOUNT, "k", "t", base_url=server.url(path="/json-error"))
        with pytest.raises(RequestRejected) as info:
            client.get_call("CA1")
        assert str(info.value) == "Exotel HTTP 400: To is invalid"
        client = ExotelClient(ACCOUNT, "k", "t", base_url=server.url(path="/html"))
        with pytest.raises(RequestRejected) as info:
            client.get_call("CA1")
        assert INTERNAL not in str(info.value) and "Bad Request" not in str(info.value)
    finally:
        server.close()


# ---------------------------------------------------------- through the system


async def test_rest_refuses_an_internal_api_url(
    redis_url: str, aiohttp_client: Any, internal: Service
) -> None:
    from dialer.receiver.app import create_app

    client = await aiohttp_client(create_app(make_settings(redis_url, DIALER_EGRESS_ALLOW="")))
    base = {"sid": "AC_ssrf", "api_key": "k", "api_token": "t", "caller_id": "0800"}
    for url in (internal.url(path="/internal?x="), internal.url(host="localhost"), "http://[::1]/"):
        resp = await client.post("/v1/accounts", json={**base, "api_url": url}, headers=AUTH)
        body = await resp.json()
        assert resp.status == 422, body
        assert body["detail"][0]["field"] == "api_url"
        assert "Exotel API URL" in body["detail"][0]["message"]
    resp = await client.post(
        "/v1/accounts", json={**base, "api_url": "https://api.in.exotel.com"}, headers=AUTH
    )
    assert resp.status == 200
    assert internal.hits == []


def dial_one(settings: Any, r: redis.Redis, api_url: str) -> tuple[str, str]:
    """Register an account at ``api_url`` as a stored record (as an older version, or
    an allow-list since narrowed, would have left it), submit and dial one call."""
    from dialer.services.accounts import make_account, save_account
    from dialer.services.dialing import dial
    from dialer.services.runtime import Runtime
    from dialer.store.admission import RedisLimiter

    account = make_account(ACCOUNT, "k", "t", "08000000000", api_url=api_url)
    save_account(r, account, settings.keyring)
    cid = make_campaign(r, n=1)
    (call_id,) = RedisLimiter(r).admit(ACCOUNT, time.time())
    dial(Runtime(settings, r), call_id)
    return cid, call_id


@pytest.mark.parametrize("allow", ["", "127.0.0.0/8"])
async def test_no_internal_text_reaches_reason_api_or_csv(
    redis_url: str,
    r: redis.Redis,
    aiohttp_client: Any,
    internal: Service,
    allow: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Refused (no allow-list): nothing reaches the service. Allowed: its error page
    is answered, yet neither the reason, the REST answer nor the CSV export shows it."""
    from dialer.receiver.app import create_app

    settings = make_settings(redis_url, DIALER_EGRESS_ALLOW=allow)
    caplog.set_level(logging.DEBUG)
    cid, call_id = dial_one(settings, r, internal.url(path="/internal?x="))
    reason = str(r.hget(keys.call(ACCOUNT, call_id), "reason") or "")
    if allow:
        assert len(internal.hits) == 1 and "HTTP 400" in reason
    else:
        assert internal.hits == [] and "egress policy" in reason
    client = await aiohttp_client(create_app(settings))
    answers = [
        await (await client.get(f"/v1/campaigns/{cid}/calls", headers=AUTH)).text(),
        await (await client.get(f"/v1/campaigns/{cid}/calls?format=csv", headers=AUTH)).text(),
        await (await client.get(f"/v1/accounts/{ACCOUNT}", headers=AUTH)).text(),
        await (await client.get(f"/v1/campaigns/{cid}", headers=AUTH)).text(),
    ]
    assert caplog.records  # the dial was logged at all
    for text in [reason, *answers, caplog.text]:
        assert INTERNAL not in text and "admin page" not in text


# ------------------------------------------------------------------ webhooks


def test_webhook_to_an_internal_address_is_not_sent(internal: Service) -> None:
    session = Egress(NOTHING, resolver_to({"hook.test": ["127.0.0.1"]})).session()
    for url in (internal.url(), internal.url(host="localhost"), internal.url(host="hook.test")):
        with pytest.raises(RequestRejected, match="egress policy"):
            deliver(session, url, b"k" * 32, "call.final", "c1:final", {"x": 1})
    assert internal.hits == []


def test_webhook_redirect_is_not_followed(redirector: Service, internal: Service) -> None:
    """A 307 would carry the signed body to another host: refused, never followed."""
    session = Egress(LOOPBACK_OK).session()
    with pytest.raises(RequestRejected, match="redirects are not followed"):
        deliver(session, redirector.url(), b"k" * 32, "call.final", "c1:final", {"x": 1})
    assert [h[0] for h in redirector.hits] == ["POST"] and internal.hits == []


# -------------------------------------------------------------- dry-run probe


async def test_dry_run_probe_cannot_scan_internal_ports(
    redis_url: str, r: redis.Redis, aiohttp_client: Any, internal: Service
) -> None:
    from dialer.receiver.app import create_app
    from tests.support.seed import setup_account

    setup_account(r)
    client = await aiohttp_client(create_app(make_settings(redis_url, DIALER_EGRESS_ALLOW="")))
    payload = {"account": ACCOUNT, "bot": "echo", "contacts": [{"to": "+919876500001"}]}
    notes = []
    for url in (internal.url(), internal.url(host="localhost"), "http://127.0.0.1:1/closed"):
        resp = await client.post(
            "/v1/campaigns?dry_run=1", json={**payload, "webhook_url": url}, headers=AUTH
        )
        pre = (await resp.json())["preflight"]
        assert pre["webhook_reachable"] is False
        notes.append(pre["webhook_note"])
    # an open and a closed internal port look the same: refused before any connect
    assert all("egress policy" in n for n in notes), notes
    assert internal.hits == []
