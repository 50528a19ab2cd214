"""The real blocking ExotelClient against the sandbox (served from a background thread)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dialer.core.errors import (
    AccountError,
    AmbiguousDialError,
    ConnectionRefused,
    DialerError,
    ProviderError,
    RateLimited,
    RequestRejected,
    ValidationError,
)
from dialer.core.exotel import ConnectParams
from dialer.net.exotel import ExotelClient
from dialer.sandbox import AccountConfig, SandboxConfig, SandboxControl, start_in_thread

TOKEN = "tok-S3CRET-do-not-leak"
ACCOUNT = AccountConfig("acme", "acme-key", TOKEN, max_concurrent=500, calls_per_minute=10_000)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[str, SandboxControl]]:
    config = SandboxConfig(
        accounts=[ACCOUNT],
        ring_s=0.02,
        talk_max_s=1.0,
        ringing_delay_s=0.0,
        callback_retry_delay_s=0.01,
        handshake_timeout_s=1.0,
    )
    base_url, stop = start_in_thread(config)
    control = SandboxControl(base_url)
    try:
        yield base_url, control
    finally:
        control.close()
        stop()


@pytest.fixture
def control(sandbox: tuple[str, SandboxControl]) -> SandboxControl:
    sandbox[1].reset()
    return sandbox[1]


@pytest.fixture
def client(sandbox: tuple[str, SandboxControl], control: SandboxControl) -> Iterator[ExotelClient]:
    c = ExotelClient("acme", "acme-key", TOKEN, base_url=sandbox[0], read_timeout_s=2.0)
    yield c
    c.close()


def params(number: str = "+919876543216", **kw: Any) -> ConnectParams:
    # Busy numbers (last digit 6) by default: no websocket needed for client tests.
    base: dict[str, Any] = dict(
        from_number=number, caller_id="08047112345", stream_url="ws://127.0.0.1:9/ws"
    )
    base.update(kw)
    return ConnectParams(**base)


class Unchecked(ConnectParams):
    """Skips client-side validation so the sandbox's own 400 can be seen."""

    def validate(self) -> ConnectParams:
        return self


INVALID = [
    ("From", {"from_number": "9876543210"}),
    ("From", {"from_number": "+91123"}),
    ("CallerId", {"caller_id": ""}),
    ("StreamUrl", {"stream_url": "https://example.com/ws"}),
    ("StreamUrl", {"stream_url": "wss://example.com/" + "a" * 600}),
    ("StreamType", {"stream_type": "unidirectional"}),
    ("RecordingChannels", {"recording_channels": "triple"}),
    ("TimeLimit", {"time_limit_s": 0}),
    ("TimeLimit", {"time_limit_s": 14_401}),
    ("CustomField", {"custom_field": "x" * 129}),
    ("StatusCallback", {"status_callback": "ftp://example.com/cb"}),
    ("StatusCallbackEvents[]", {"status_callback_events": ("hungup",)}),
    ("StreamName", {"stream_name": "n" * 33}),
]


@pytest.mark.parametrize(("field", "change"), INVALID)
def test_invalid_params_refused_before_any_request(
    client: ExotelClient, control: SandboxControl, field: str, change: dict[str, Any]
) -> None:
    before = control.report()["requests_total"]
    with pytest.raises(ValidationError) as info:
        client.connect(params(**change))
    assert info.value.field == field and str(info.value).startswith(f"{field}:")
    assert control.report()["requests_total"] == before


@pytest.mark.parametrize(("field", "change"), INVALID)
def test_sandbox_refuses_the_same_fields(
    client: ExotelClient, field: str, change: dict[str, Any]
) -> None:
    with pytest.raises(RequestRejected) as info:
        client.connect(replace(Unchecked(**vars(params())), **change))
    assert info.value.status == 400 and f"HTTP 400: {field}:" in str(info.value)


def test_connect_and_details(client: ExotelClient, control: SandboxControl) -> None:
    call = client.connect(params(custom_field="c9:1", status_callback_events=("ringing",)))
    assert len(call.sid) == 32 and call.status == "in-progress"
    assert call.from_number == "+919876543216" and call.custom_field == "c9:1"
    control.wait_idle(timeout_s=5)
    details = client.get_call(call.sid)
    assert details is not None and details.status == "busy" and details.duration_s == 0
    assert client.get_call("0" * 32) is None


def test_list_calls_follows_pages(client: ExotelClient) -> None:
    sids = {client.connect(params()).sid for _ in range(101)}  # client pages 100 at a time
    now = datetime.now(UTC).replace(tzinfo=None)
    listed = [
        c.sid for c in client.list_calls(now - timedelta(minutes=5), now + timedelta(minutes=1))
    ]
    assert len(listed) == 101 and set(listed) == sids


def test_connection_refused(sandbox: tuple[str, SandboxControl]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    closed = ExotelClient("acme", "acme-key", TOKEN, base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(ConnectionRefused):
        closed.connect(params())


def test_wrong_token_is_account_error(sandbox: tuple[str, SandboxControl]) -> None:
    bad = ExotelClient("acme", "acme-key", "wrong", base_url=sandbox[0])
    with pytest.raises(AccountError) as info:
        bad.connect(params())
    assert info.value.status == 401


def test_rate_limited_carries_retry_after(client: ExotelClient, control: SandboxControl) -> None:
    control.set_faults(http_429=1.0, retry_after_s=7)
    with pytest.raises(RateLimited) as info:
        client.connect(params())
    assert info.value.retry_after_s == 7.0


def test_concurrency_cap_is_rate_limited(client: ExotelClient, control: SandboxControl) -> None:
    control.set_accounts([replace(ACCOUNT, max_concurrent=1)])
    try:
        control.set_numbers({"+919876543216": {"ring_s": 5.0}})
        client.connect(params())
        with pytest.raises(RateLimited) as info:
            client.connect(params())
        assert info.value.retry_after_s >= 1
        assert [v["kind"] for v in control.report()["violations"]] == ["concurrency_cap"]
    finally:
        control.set_accounts([ACCOUNT])


def test_5xx_is_provider_error(client: ExotelClient, control: SandboxControl) -> None:
    control.set_faults(http_5xx=1.0)
    with pytest.raises(ProviderError) as info:
        client.connect(params())
    assert info.value.status == 503


def test_accept_then_timeout_is_ambiguous(sandbox: Any, control: SandboxControl) -> None:
    control.set_faults(accept_timeout=1.0, timeout_delay_s=1.0)
    impatient = ExotelClient("acme", "acme-key", TOKEN, base_url=sandbox[0], read_timeout_s=0.3)
    with pytest.raises(AmbiguousDialError):
        impatient.connect(params("+919876543217"))
    rep = control.report()
    assert rep["calls_total"] == 1 and rep["dials_per_number"] == {"+919876543217": 1}


def test_reset_after_accept_is_ambiguous(client: ExotelClient, control: SandboxControl) -> None:
    control.set_faults(reset_after_accept=1.0)
    with pytest.raises(AmbiguousDialError):
        client.connect(params())
    assert control.report()["calls_total"] == 1


def test_token_never_leaks(
    sandbox: tuple[str, SandboxControl],
    control: SandboxControl,
    client: ExotelClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    assert TOKEN not in repr(client)
    errors: list[BaseException] = []
    for faults in ({"http_5xx": 1.0}, {"http_429": 1.0}, {"reset_after_accept": 1.0}):
        control.set_faults(**faults)
        with pytest.raises(DialerError) as info:
            client.connect(params())
        errors.append(info.value)
    control.set_faults()
    with pytest.raises(RequestRejected) as rejected:
        client.connect(Unchecked(**{**vars(params()), "stream_type": "x"}))
    errors.append(rejected.value)
    with pytest.raises(ValidationError) as invalid:
        client.connect(params(from_number="bad"))
    errors.append(invalid.value)
    wrong = ExotelClient("acme", "acme-key", TOKEN + "x", base_url=sandbox[0])
    with pytest.raises(AccountError) as denied:
        wrong.connect(params())
    errors.append(denied.value)
    for exc in errors:
        chain: BaseException | None = exc
        while chain is not None:
            assert TOKEN not in str(chain) and TOKEN not in repr(chain)
            chain = chain.__cause__ or chain.__context__
    # The sandbox thread logs each call's end as it happens: once it reports none
    # active, every line it will write about these calls is in caplog.
    control.wait_for(lambda rep: not any(rep["active"].values()), 5)
    assert TOKEN not in caplog.text


def test_token_in_base_url_userinfo_never_leaks() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = ExotelClient(
        "acme", "acme-key", TOKEN, base_url=f"http://acme:{TOKEN}@127.0.0.1:{port}"
    )
    assert TOKEN not in repr(client)
    with pytest.raises(ConnectionRefused) as refused:
        client.connect(params())
    assert TOKEN not in str(refused.value)
