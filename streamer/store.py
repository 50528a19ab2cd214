"""The streamer's Redis edge: load a call and its bot, write what the call yields.

Reads ``dl:campaigns`` (call -> account, cached: it never changes), the call
hash (``to``, ``vars``, ``state``, ``attempt``) and the campaign hash (``bot``,
``bot_config``, ``amd`` and its message ``amd_wav``). Writes only fields of
the call hash: ``a:<qid>`` answers, ``stream_sid``, ``stream_error`` and
``amd:<attempt>`` (machine detection). It never changes a call's state:
status callbacks own that.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from dialer import keys


@dataclass(frozen=True)
class CallInfo:
    call_id: str
    account: str
    campaign: str
    attempt: int
    state: str = ""
    to: str = ""
    vars: dict[str, Any] = field(default_factory=dict)
    bot: str = ""
    bot_config: dict[str, Any] = field(default_factory=dict)
    machine_detection: str = "off"  # the campaign's policy mode (dialer.machine)

    @property
    def key(self) -> str:
        return keys.call(self.account, self.call_id)


def _json_dict(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


class CallStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self._r = client  # created with decode_responses=True
        self._accounts: dict[str, str] = {}

    async def account_of(self, campaign: str) -> str | None:
        if campaign not in self._accounts:
            account = await self._r.hget(keys.CAMPAIGNS, campaign)
            if account is None:
                return None
            self._accounts[campaign] = str(account)
        return self._accounts[campaign]

    async def load(self, call_id: str) -> CallInfo | None:
        """The call and its campaign's bot, or None if there is no such call."""
        try:
            campaign, _ = keys.split_call_id(call_id)
        except ValueError:
            return None
        account = await self.account_of(campaign)
        if account is None:
            return None
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.hmget(keys.call(account, call_id), "to", "vars", "state", "attempt")
            pipe.hmget(keys.campaign(account, campaign), "bot", "bot_config", "amd")
            (to, vars_, state, attempt), (bot, bot_config, amd) = await pipe.execute()
        if attempt is None or not str(attempt).isdigit():
            return None
        return CallInfo(
            call_id=call_id,
            account=account,
            campaign=campaign,
            attempt=int(attempt),
            state=state or "",
            to=to or "",
            vars=_json_dict(vars_),
            bot=bot or "",
            bot_config=_json_dict(bot_config),
            machine_detection=str(_json_dict(amd).get("mode") or "off"),
        )

    async def record_answer(self, call: CallInfo, qid: str, value: str) -> None:
        await self._r.hset(call.key, f"a:{qid}", value)

    async def record_stream(self, call: CallInfo, stream_sid: str) -> None:
        await self._r.hset(call.key, "stream_sid", stream_sid)

    async def machine_message(self, call: CallInfo) -> bytes | None:
        """The campaign's voicemail message (a WAV file), or None if it has none."""
        raw = await self._r.hget(keys.campaign(call.account, call.campaign), "amd_wav")
        if not raw:
            return None
        try:
            return base64.b64decode(raw)
        except (binascii.Error, ValueError):
            return None

    async def record_detection(self, call: CallInfo, verdict: dict[str, Any]) -> None:
        """This attempt's ``answered_by``/``detection_ms`` (and outcome when acted on).

        Written before any hang-up, so the terminal callback that follows finds
        it (``dialer.records`` turns "completed" into ``machine``/``voicemail``).
        """
        await self._r.hset(call.key, f"amd:{call.attempt}", json.dumps(verdict))

    async def record_error(self, call: CallInfo, reason: str) -> None:
        await self._r.hset(call.key, "stream_error", reason[:500])
