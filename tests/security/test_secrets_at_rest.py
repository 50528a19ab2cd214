"""Exotel API tokens (and webhook keys) are Fernet-encrypted in Redis.

The attack from the issue: the tokens sat in plain text in the account hash,
so a Redis dump, a replica or a `MONITOR` gave them away. Now the hash holds
ciphertext under a key derived from ``DIALER_SECRET``; a record from before
is encrypted on first read; a rotated secret still reads old records through
``DIALER_SECRET_PREVIOUS`` and re-encrypts them; an unreadable one fails with
a message saying what to do, and stops only its account.
"""

from __future__ import annotations

import pytest
import redis

from dialer.core.errors import ConfigError
from dialer.core.keyring import Keyring
from dialer.services.accounts import load_account, make_account, save_account
from dialer.store import keys
from tests.support.seed import ACCOUNT
from tests.support.signing import KEYRING, SECRET

TOKEN = "exotel-token-Zq81-secret"
NEW_SECRET = "rotated-S3cr3t-Lw9Xz4Vb6Nm1Kp8Rt5Yc0Fd7Qh2"


def save(r: redis.Redis, keyring: Keyring = KEYRING) -> None:
    account = make_account(ACCOUNT, "key", TOKEN, "0800", api_url="http://127.0.0.1:9")
    save_account(r, account, keyring)


def raw(r: redis.Redis) -> dict[str, str]:
    return r.hgetall(keys.account(ACCOUNT))  # type: ignore[return-value]


def test_the_token_is_encrypted_at_rest(r: redis.Redis) -> None:
    save(r)
    stored = raw(r)
    assert "api_token" not in stored and TOKEN not in str(stored)
    assert stored["api_token_enc"].startswith("gAAAA")  # a Fernet token
    account = load_account(r, ACCOUNT, KEYRING)
    assert account is not None and account.api_token == TOKEN
    assert account.webhook_key and account.webhook_key not in str(stored)


def test_a_plain_text_record_from_before_is_encrypted_on_first_read(r: redis.Redis) -> None:
    r.hset(
        keys.account(ACCOUNT),
        mapping={
            "sid": ACCOUNT,
            "api_key": "key",
            "api_token": TOKEN,
            "caller_id": "0800",
            "api_url": "http://127.0.0.1:9",
        },
    )
    account = load_account(r, ACCOUNT, KEYRING)
    assert account is not None and account.api_token == TOKEN
    stored = raw(r)
    assert "api_token" not in stored and TOKEN not in str(stored)
    assert KEYRING.decrypt(stored["api_token_enc"]) == TOKEN
    assert stored.get("webhook_key_enc")  # and it got its webhook key


def test_rotation_reads_old_records_and_reencrypts_them(r: redis.Redis) -> None:
    save(r)
    old_cipher = raw(r)["api_token_enc"]
    rotated = Keyring.from_secret(NEW_SECRET.encode(), SECRET.encode())
    account = load_account(r, ACCOUNT, rotated)
    assert account is not None and account.api_token == TOKEN
    new_cipher = raw(r)["api_token_enc"]
    assert new_cipher != old_cipher and not rotated.needs_rotation(new_cipher)
    # once every record is re-encrypted the previous secret can go
    only_new = Keyring.from_secret(NEW_SECRET.encode())
    reread = load_account(r, ACCOUNT, only_new)
    assert reread is not None and reread.api_token == TOKEN


def test_a_record_no_key_can_read_fails_clearly(r: redis.Redis) -> None:
    save(r)
    stranger = Keyring.from_secret(NEW_SECRET.encode())
    with pytest.raises(ConfigError) as info:
        load_account(r, ACCOUNT, stranger)
    text = str(info.value)
    assert "DIALER_SECRET_PREVIOUS" in text and "register the account again" in text
    assert TOKEN not in text


def test_an_unreadable_token_stops_only_its_account_with_the_reason(
    r: redis.Redis, redis_url: str
) -> None:
    """A worker on a changed secret does not crash or dial: the account's circuit opens."""
    import time

    from dialer.core.settings import load_settings
    from dialer.services.dialing import dial
    from dialer.services.runtime import Runtime
    from dialer.store.admission import RedisLimiter
    from tests.support.seed import make_campaign
    from tests.support.signing import API_KEY

    save(r)
    make_campaign(r, 1)
    (call_id,) = RedisLimiter(r).admit(ACCOUNT, time.time())
    settings = load_settings(REDIS_URL=redis_url, DIALER_SECRET=NEW_SECRET, DIALER_API_KEY=API_KEY)
    rt = Runtime(settings, r)
    result = dial(rt, call_id)
    assert result.outcome == "requeued"
    stored = raw(r)
    assert stored["circuit"] == "open" and "DIALER_SECRET_PREVIOUS" in stored["circuit_reason"]
    assert TOKEN not in stored["circuit_reason"]
