"""Per-process context for workers: settings, Redis, limiter, Exotel clients, caches.

Built once per worker process (``workers.app``); holds nothing that matters
across a crash. The campaign cache keeps only immutable facts (account,
policy, options, lease), never state such as paused/cancelled.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import redis

from dialer.core.policy import RetryPolicy
from dialer.core.settings import Settings
from dialer.core.windows import Window
from dialer.net.egress import Egress
from dialer.net.exotel import ExotelClient
from dialer.services.accounts import Account, load_account
from dialer.store import campaigns, keys
from dialer.store.admission import RedisLimiter
from dialer.store.connection import connect
from dialer.store.records import Leases

#: distinct stored account hashes a process keeps decrypted (accounts x recent changes)
_ACCOUNTS_KEPT = 256


@dataclass(frozen=True)
class CampaignFacts:
    """The stored facts (``dialer.store.campaigns.read``) with this process's leases."""

    cid: str
    account: str
    policy: RetryPolicy
    options: dict[str, Any]
    leases: Leases
    webhook_url: str
    bot: str
    window: Window | None = None
    dnc_answers: dict[str, str] | None = None


class Runtime:
    def __init__(self, settings: Settings, r: redis.Redis | None = None):
        self.settings = settings
        self.r = r or connect(
            settings, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30
        )
        self.limiter = RedisLimiter(
            self.r,
            admit_lease_s=settings.DIALER_RECONCILE_AFTER_S,
            reserve_pct=settings.DIALER_RECONCILE_RESERVE_PCT,
        )
        self._campaigns: dict[str, CampaignFacts] = {}
        self._clients: dict[tuple[str, str, str], ExotelClient] = {}
        self._accounts: dict[frozenset[tuple[str, str]], Account] = {}
        self._lock = threading.Lock()
        self.egress = Egress(settings.egress_policy)

    def campaign(self, cid: str) -> CampaignFacts | None:
        facts = self._campaigns.get(cid)
        if facts is not None:
            return facts
        stored = campaigns.read(self.r, cid)
        if stored is None:
            return None
        facts = CampaignFacts(
            cid=cid,
            account=stored.account,
            policy=stored.policy,
            options=stored.options,
            leases=Leases(
                dialing_s=self.settings.DIALER_RECONCILE_AFTER_S,
                ringing_s=self.settings.DIALER_RING_TIMEOUT_S,
                answered_s=min(stored.lease_s, self.settings.DIALER_ANSWERED_CHECK_S),
                stream_grace_s=self.settings.DIALER_STREAM_GRACE_S,
            ),
            webhook_url=stored.webhook_url,
            bot=stored.bot,
            window=stored.window,
            dnc_answers=stored.dnc_answers,
        )
        self._campaigns[cid] = facts
        return facts

    def cached_campaign_of_call(self, call_id: str) -> CampaignFacts | None:
        """Only what is already cached: no I/O, safe on an event loop."""
        cid = keys.campaign_part(call_id)
        return self._campaigns.get(cid)

    def campaign_of_call(self, call_id: str) -> CampaignFacts | None:
        try:
            cid, _ = keys.split_call_id(call_id)
        except ValueError:
            return None
        return self.campaign(cid)

    def account(self, sid: str) -> Account | None:
        return load_account(self.r, sid, self.settings.keyring)

    def account_from(self, stored: dict[str, str]) -> Account:
        """The account of its stored hash, decrypted once per process, not once per dial.

        Keyed by the whole hash as read, so whatever changes in it (a new token
        is a new ciphertext, as Fernet's are never alike; a circuit, limit or
        pool) is a miss and decrypted afresh: nothing stale is returned. Only
        the ciphertexts are in the key. ConfigError as ``Account.from_hash``.
        """
        key = frozenset(stored.items())
        account = self._accounts.get(key)
        if account is None:
            account = Account.from_hash(stored, self.settings.keyring)
            with self._lock:
                if len(self._accounts) >= _ACCOUNTS_KEPT:
                    self._accounts.clear()  # old forms of hashes: rare, and cheap to redo
                self._accounts[key] = account
        return account

    def client(self, account: Account) -> ExotelClient:
        """One pooled client per account per process; rebuilt when credentials change."""
        key = (account.sid, account.api_url, account.api_key + ":" + account.api_token)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = account.client(
                    connect_timeout_s=self.settings.EXOTEL_CONNECT_TIMEOUT_S,
                    read_timeout_s=self.settings.EXOTEL_READ_TIMEOUT_S,
                    egress=self.egress,
                )
                self._clients[key] = client
            return client
