"""The dial-outcome table: what the dial step does with each answer Exotel can give.

One row per answer to the Connect request, made real by the sandbox (in a
thread on loopback) and dialled by the real dial service against the real
Redis. Each row states the call's state and reason, the slots held, whether
a retry is scheduled, what happens to the account, whether the call exists
at Exotel, and whether the account's other calls still go out. The rules
are ``dialer/services/dialing.py``'s table and DESIGN.md's no-double-dial
rule: an answer lost after the request was sent (timeout, reset) is never
dialled again blindly; the slot stays held until reconciliation asks Exotel.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis

from dialer.core.calls import State
from dialer.core.campaign import CampaignIn
from dialer.core.keyring import Keyring
from dialer.core.reasons import Code
from dialer.core.settings import load_settings
from dialer.core.states import CircuitState
from dialer.sandbox.config import AccountConfig, SandboxConfig
from dialer.sandbox.control import SandboxControl
from dialer.sandbox.testing import start_in_thread
from dialer.services.accounts import make_account, save_account
from dialer.services.dialing import dial
from dialer.services.ingest import create_campaign
from dialer.services.runtime import Runtime
from dialer.store import keys
from dialer.store.records import call_from_hash

A = "sandbox"
SECRET = "outcomes-S3cr3t-8Jd4Lq2Wx7Zb1Nm5Vp9Rt3Yc6Fh"
RETRY_AFTER_S = 30
NOWHERE = "127.0.0.1:9"  # the sandbox's callbacks and streams for these calls go nowhere


@dataclass(frozen=True)
class Row:
    id: str
    #: the sandbox's faults while the call is dialled
    faults: dict[str, Any]
    outcome: str
    state: State
    code: Code | None
    slots: int  # held by the dialled call after the dial (1 or 0)
    retry: bool  # the call waits in the campaign's delayed set for another try
    exists: bool  # Exotel placed the call (the sandbox has it)
    others_go: bool  # the account's next call is still admitted (into a freed slot: at once)
    circuit: CircuitState = CircuitState.CLOSED
    backed_off: bool = False  # the whole account waits (429's Retry-After)
    token: str = "sandbox-token"  # the credentials the dialer holds for the account
    settings: dict[str, Any] = field(default_factory=dict)


TABLE = [
    Row("accepted", {}, "placed", State.PLACED, None, 1, False, True, True),
    Row(
        "429 rate limited",
        {"http_429": 1.0, "retry_after_s": RETRY_AFTER_S},
        "not_placed", State.PENDING, Code.NOT_PLACED, 0, True, False, False,
        backed_off=True,
    ),
    Row(
        "503 provider down",
        {"http_5xx": 1.0},
        "not_placed", State.PENDING, Code.NOT_PLACED, 0, True, False, True,
    ),
    Row(
        "401 bad credentials",
        {},
        "requeued", State.PENDING, Code.ACCOUNT_STOPPED, 0, True, False, False,
        circuit=CircuitState.OPEN, token="WRONG-token",
    ),
    Row(
        "403 forbidden",
        {"http_4xx": 1.0, "http_4xx_status": 403},
        "requeued", State.PENDING, Code.ACCOUNT_STOPPED, 0, True, False, False,
        circuit=CircuitState.OPEN,
    ),
    Row(
        # no balance or plan: every call of the account would fail the same way
        "402 payment required",
        {"http_4xx": 1.0, "http_4xx_status": 402},
        "requeued", State.PENDING, Code.ACCOUNT_STOPPED, 0, True, False, False,
        circuit=CircuitState.OPEN,
    ),
    Row(
        "400 refused",
        {"http_4xx": 1.0, "http_4xx_status": 400},
        "rejected", State.FAILED, Code.DIAL_REJECTED, 0, False, False, True,
    ),
    Row(
        "timeout after accept",
        {"accept_timeout": 1.0, "timeout_delay_s": 60},
        "unknown", State.UNKNOWN, Code.DIAL_UNKNOWN, 1, False, True, True,
        settings={"EXOTEL_READ_TIMEOUT_S": 0.5},
    ),
    Row(
        "reset after accept",
        {"reset_after_accept": 1.0},
        "unknown", State.UNKNOWN, Code.DIAL_UNKNOWN, 1, False, True, True,
    ),
]  # fmt: skip


@pytest.fixture
def sandbox() -> Iterator[tuple[str, SandboxControl]]:
    config = SandboxConfig(
        accounts=[AccountConfig(A, "sandbox-key", "sandbox-token", max_concurrent=50)],
        ring_s=0.05,
        talk_max_s=0.2,
    )
    url, stop = start_in_thread(config)
    control = SandboxControl(url)
    yield url, control
    control.close()
    stop()  # answers a held (timed-out) response and ends every call


def runtime(r: redis.Redis, redis_url: str, sandbox_url: str, row: Row) -> Runtime:
    keyring = Keyring.from_secret(SECRET.encode())
    account = make_account(
        A, "sandbox-key", row.token, "08047112345", api_url=sandbox_url, max_concurrent_calls=5
    )
    save_account(r, account, keyring)
    settings = load_settings(
        REDIS_URL=redis_url,
        DIALER_SECRET=SECRET,
        DIALER_EGRESS_ALLOW="127.0.0.0/8",  # the sandbox listens on loopback
        DIALER_PUBLIC_URL=f"http://{NOWHERE}",
        STREAMER_PUBLIC_URL=f"ws://{NOWHERE}",
        **row.settings,
    )
    return Runtime(settings, r)


@pytest.mark.parametrize("row", TABLE, ids=[row.id for row in TABLE])
def test_dial_outcome(
    row: Row, r: redis.Redis, redis_url: str, sandbox: tuple[str, SandboxControl]
) -> None:
    url, control = sandbox
    rt = runtime(r, redis_url, url, row)
    now = time.time()
    spec = CampaignIn(
        account=A, bot="echo", contacts=[{"to": "+919876500010"}, {"to": "+919876500020"}]
    )
    cid = str(create_campaign(r, spec, now=now)["id"])
    first, second = keys.call_id(cid, 0), keys.call_id(cid, 1)
    assert rt.limiter.admit(A, now, limit=1) == [first]
    control.set_faults(row.faults)

    result = dial(rt, first, now=now)

    call = call_from_hash(r.hgetall(keys.call(A, first)))
    account = r.hgetall(keys.account(A))
    retry_at = r.zscore(keys.delayed(A, cid), first)
    assert result.outcome == row.outcome, result
    assert call.state is row.state
    assert call.reason_code == row.code and bool(call.reason) == (row.code is not None), call
    assert (r.zscore(keys.active(A), first) is not None) == (row.slots == 1)
    assert result.slot_released == (row.slots == 0)
    # A released slot is refilled by the dial's own commit, when the account may dial.
    refilled = [second] if row.slots == 0 and row.others_go else []
    assert list(result.admitted) == refilled
    assert rt.limiter.in_use(A) == row.slots + len(refilled)
    assert (retry_at is not None) == row.retry
    if row.backed_off:  # the retry and the account both wait out Retry-After
        assert retry_at is not None and retry_at >= now + RETRY_AFTER_S
    assert (float(account.get("paused_until") or 0) > now) == row.backed_off
    assert account.get("circuit", CircuitState.CLOSED) == row.circuit
    control.set_faults()
    report = control.report()
    assert report["calls_total"] == (1 if row.exists else 0)
    assert report["requests_total"] == 1  # the one connect request

    # Redelivered, the same dial sends nothing: the call is no longer admitted, and
    # a lost answer (timeout, reset) is for reconciliation to settle, never a redial.
    assert dial(rt, first, now=now).outcome == "skipped"
    assert control.report()["requests_total"] == 1
    # An open circuit or a back-off holds the whole account: no retry storm.
    admitted = list(result.admitted) + rt.limiter.admit(A, now)
    assert admitted == ([second] if row.others_go else [])
