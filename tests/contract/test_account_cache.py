"""A worker decrypts an account once, not once per dial, and never dials with stale facts.

``Runtime.account_from`` keys its cache by the account hash as read, so a
changed token (a new ciphertext), an opened circuit or a new pool is a miss.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis

from dialer.core.keyring import Keyring
from dialer.core.states import CircuitState
from dialer.services.accounts import open_circuit, update_account
from dialer.services.runtime import Runtime
from dialer.store import keys
from tests.support import seed
from tests.support.signing import KEYRING, make_settings

A = seed.ACCOUNT


def stored(r: redis.Redis) -> dict[str, str]:
    return r.hgetall(keys.account(A))  # type: ignore[return-value]


@pytest.fixture
def decrypts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = Keyring.decrypt

    def counted(self: Keyring, ciphertext: str) -> str:
        seen.append(ciphertext)
        return real(self, ciphertext)

    monkeypatch.setattr(Keyring, "decrypt", counted)
    return seen


def test_the_same_stored_account_is_decrypted_once(
    r: redis.Redis, redis_url: str, decrypts: list[str]
) -> None:
    seed.setup_account(r, A, keyring=KEYRING)
    rt = Runtime(make_settings(redis_url), r)
    first = rt.account_from(stored(r))
    n = len(decrypts)
    assert n == 2  # the API token and the webhook key
    assert rt.account_from(stored(r)) is first
    assert len(decrypts) == n


@pytest.mark.parametrize(
    "change, check",
    [
        (
            lambda r: update_account(r, A, {"api_token": "rotated-token"}, KEYRING),
            lambda a: a.api_token == "rotated-token",
        ),
        (
            lambda r: open_circuit(r, A, "HTTP 401"),
            lambda a: a.circuit == CircuitState.OPEN and a.circuit_reason == "HTTP 401",
        ),
        (
            lambda r: update_account(r, A, {"caller_ids": ["0801"]}, KEYRING),
            lambda a: a.caller_ids == ("0801",),
        ),
    ],
    ids=["token rotated", "circuit opened", "pool set"],
)
def test_a_changed_account_is_read_afresh(
    r: redis.Redis, redis_url: str, change: Any, check: Any
) -> None:
    seed.setup_account(r, A, keyring=KEYRING)
    rt = Runtime(make_settings(redis_url), r)
    before = rt.account_from(stored(r))
    assert not check(before)
    change(r)
    assert check(rt.account_from(stored(r)))
