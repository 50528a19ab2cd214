"""One reader of campaign facts: the blocking and asyncio variants agree on a real Redis."""

from __future__ import annotations

import redis
import redis.asyncio as aioredis

from dialer.core.campaign import CampaignIn
from dialer.core.keyring import Keyring
from dialer.services.accounts import make_account, save_account
from dialer.services.ingest import create_campaign
from dialer.store import campaigns

KEYRING = Keyring.from_secret(b"reader-S3cr3t-2Hq8Lm4Zx7Cv1Bn6Df9Gt3Jk")


async def test_sync_and_async_readers_agree(r: redis.Redis, redis_url: str) -> None:
    save_account(r, make_account("acme", "key", "token", "08047112345"), KEYRING)
    spec = CampaignIn.model_validate(
        {
            "account": "acme",
            "bot": "echo",
            "contacts": [{"to": "+919876543210"}],
            "max_attempts": 4,
            "machine_detection": "hangup",
            "window": "mon-sun 00:00-23:59",
            "dnc_answers": {"q1": "9"},
        }
    )
    cid = create_campaign(r, spec, default_region="IN")["id"]
    blocking = campaigns.read(r, cid)
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        asynchronous = await campaigns.aread(client, cid)
        unknown = await campaigns.aread(client, "000000000000")
    finally:
        await client.aclose()
    assert blocking is not None and blocking == asynchronous
    assert (blocking.account, blocking.bot, blocking.policy.max_attempts) == ("acme", "echo", 4)
    assert (blocking.machine_detection, blocking.dnc_answers) == ("hangup", {"q1": "9"})
    assert blocking.window is not None
    assert blocking.lease_s == spec.time_limit_s + 120
    assert unknown is None and campaigns.read(r, "000000000000") is None
