"""Callbacks duplicated, reordered and dropped: right final states, counters, slots, webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
import redis

from dialer.store import keys
from tests.support.servers import WebhookSink, serve_in_thread
from tests.support.system import FAST, assert_no_duplicate_dials, contacts, running_system

pytestmark = pytest.mark.timeout(240)


def test_messy_callbacks_still_end_every_call_right(redis_url: str, tmp_path: Path) -> None:
    sink = WebhookSink(fail_first=3)  # the client's endpoint fails at first: at-least-once
    with (
        serve_in_thread(sink.app()) as hook_port,
        running_system(redis_url, tmp_path, workers=2, max_concurrent=8) as system,
    ):
        system.register(max_concurrent=8)
        system.sandbox.set_faults(
            dup_callbacks=0.3,
            reorder_callbacks=0.3,
            drop_callbacks=0.2,
            late_callbacks=0.2,
            late_delay_s=0.5,
            seed=7,
        )
        out = system.api.create_campaign(
            "sandbox",
            contacts(50),
            bot="echo",
            max_attempts=2,
            retry_delay_s=0.2,
            time_limit_s=5,
            webhook_url=f"http://127.0.0.1:{hook_port}/hook",
        )
        status = system.wait_done(out["id"], 180)
        rows = list(system.api.iter_calls(out["id"]))
        report = system.sandbox.report()
        # webhooks are delivered by the notify queue: give the retries a moment
        system.sandbox.wait_for(
            lambda _: len(sink.by_key(lambda d: d["body"]["event"] == "call.final")) >= 50, 60
        )
        r = redis.Redis.from_url(redis_url, decode_responses=True)
        active = r.zcard(keys.active("sandbox"))
        webhook_key = system.api.webhook_key("sandbox")["webhook_key"]
    assert_no_duplicate_dials(report)
    assert status["finished"] == 50 and sum(status["outcomes"].values()) == 50
    assert active == 0
    # each contact's outcome is what the sandbox's callee rule dictates
    expected = {
        "0": "completed",
        "1": "completed",
        "2": "completed",
        "3": "completed",
        "4": "completed",
        "5": "completed",
        "6": "busy",
        "7": "no-answer",
        "8": "failed",
        "9": "completed",
    }
    for row in rows:
        assert row["outcome"] == expected[row["to"][-1]], row
        want = 1 if row["outcome"] == "completed" else 2
        assert len(row["attempts"]) == want, row
    finals = sink.by_key(lambda d: d["body"]["event"] == "call.final")
    assert set(finals) == {f"{row['id']}:final" for row in rows}
    # the first 3 deliveries failed, so some keys arrived twice: same key, same data
    bodies: dict[str, str] = {}
    for d in sink.deliveries:
        if d["body"]["event"] == "call.final":
            key = d["headers"]["Idempotency-Key"]
            data = json.dumps(d["body"]["data"], sort_keys=True)
            assert bodies.setdefault(key, data) == data
        # signed with the account's own webhook key (what its consumer holds) ...
        ts, signature = d["headers"]["X-Dialer-Timestamp"], d["headers"]["X-Dialer-Signature"]
        expected = hmac.new(webhook_key.encode(), ts.encode() + b"." + d["raw"], hashlib.sha256)
        assert hmac.compare_digest(expected.hexdigest(), signature)
        # ... never with the master secret
        master = hmac.new(
            FAST["DIALER_SECRET"].encode(), ts.encode() + b"." + d["raw"], hashlib.sha256
        )
        assert master.hexdigest() != signature
