"""The streamer's Redis edge: load a call and its bot, write what the call yields.

Reads ``dl:campaigns`` (call -> account, cached: it never changes), the call
hash (``to``, ``vars``, ``state``, ``attempt``), the campaign's facts through
the shared reader (``dialer.store.campaigns.aread``: ``bot``, ``bot_config``,
``amd``), the machine message ``amd_wav`` and a survey's WAV
prompts (``keys.survey``, cached per campaign: they never change either), so no
streamer reads a file for a survey. Writes only fields of the call hash:
``a:<qid>`` answers, ``stream_sid``, ``stream_error`` (text), ``bot_error`` (a
``dialer.core.reasons.BotError``: attempt, code, text, whether the bot ran),
``amd:<attempt>`` (machine detection) and ``stream_end``. It never changes a
call's state: status callbacks own that, and read ``bot_error`` and
``amd:<attempt>`` when Exotel's terminal status arrives. The one thing
it does to a slot is pull its lease in when the stream ends
(``lua/stream_end.lua``), so a lost terminal callback is noticed after a
grace, not after the answered-call check.

``claim_stream`` makes a stream token single use: one Lua step checks that the
token's attempt is still the call's current attempt and still live, and
marks it used (``keys.stream_claim``), so two sockets racing with the same
token cannot both get in.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from dialer.core.reasons import BotError, Code
from dialer.store import campaigns, keys, replies
from dialer.store.scripts import script


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
    machine_detection: str = "off"  # the campaign's policy mode (dialer.core.machine)

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


#: Campaigns whose survey WAVs stay decoded in memory (each at most 4 MiB).
SURVEY_CACHE = 16

# A stream may open only while its attempt is live. ``dialing``/``unknown``
# count: the dial request was sent and Exotel may have connected the call
# before the worker recorded ``placed`` (or its answer was lost), and refusing
# then would drop a callee who has picked up. Finished attempts never pass.
LIVE_STATES = ("placed", "ringing", "answered", "dialing", "unknown")


class CallStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self._r = client  # created with decode_responses=True
        self._accounts: dict[str, str] = {}
        self._wavs: OrderedDict[str, dict[str, bytes]] = OrderedDict()
        self._stream_end = client.register_script(script("stream_end"))
        self._claim = client.register_script(script("stream_claim"))

    async def claim_stream(self, call: CallInfo, attempt: int, expires_at: int) -> str:
        """'ok' once per attempt; else why not: 'attempt' (not current), 'state', 'used'."""
        result = await self._claim(
            keys=[call.key, keys.stream_claim(call.account, call.call_id, attempt)],
            args=[str(attempt), str(expires_at), *LIVE_STATES],
        )
        return str(result)

    async def survey_wavs(self, account: str, campaign: str) -> dict[str, bytes]:
        """The survey's WAV prompts by name (stored base64: this client decodes text)."""
        wavs = self._wavs.get(campaign)
        if wavs is None:
            stored: dict[str, str] = await self._r.hgetall(keys.survey(account, campaign))  # type: ignore[assignment]
            wavs = {
                k[len("wav:") :]: base64.b64decode(v)
                for k, v in stored.items()
                if k.startswith("wav:")
            }
            self._wavs[campaign] = wavs
            if len(self._wavs) > SURVEY_CACHE:
                self._wavs.popitem(last=False)
        self._wavs.move_to_end(campaign)
        return wavs

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
        # the call and its campaign's facts (the one reader: dialer.store.campaigns) at once
        row, facts = await asyncio.gather(
            self._r.hmget(keys.call(account, call_id), "to", "vars", "state", "attempt"),
            campaigns.aread(self._r, campaign, account),
        )
        to, vars_, state, attempt = (replies.text(v) for v in row)
        if attempt is None or not str(attempt).isdigit():
            return None
        bot = facts.bot if facts is not None else ""
        config = dict(facts.bot_config) if facts is not None else {}
        if bot.startswith("survey") and config and "base_dir" not in config:
            # (a campaign stored before surveys travelled as content has base_dir)
            config["prompts"] = await self.survey_wavs(account, campaign)
        return CallInfo(
            call_id=call_id,
            account=account,
            campaign=campaign,
            attempt=int(attempt),
            state=state or "",
            to=to or "",
            vars=_json_dict(vars_),
            bot=bot,
            bot_config=config,
            machine_detection=facts.machine_detection if facts is not None else "off",
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
        it (``dialer.store.records`` turns "completed" into ``machine``/``voicemail``).
        """
        await self._r.hset(call.key, f"amd:{call.attempt}", json.dumps(verdict))

    async def record_error(self, call: CallInfo, code: Code, text: str, *, ran: bool) -> None:
        """Why this attempt's stream went wrong; written before the socket closes.

        Before, so that Exotel's terminal callback (which follows the close)
        finds it. The first error of an attempt wins: a relay that failed to
        connect also ends with a close, which says nothing new.
        """
        err = BotError(call.attempt, code, text, ran)
        old = await self._r.hget(call.key, "bot_error")
        previous = BotError.from_json(str(old) if old else None)
        if previous is not None and previous.attempt == call.attempt:
            return
        await self._r.hset(
            call.key, mapping={"stream_error": text[:500], "bot_error": err.to_json()}
        )

    async def record_end(self, call: CallInfo, now: float, grace_s: float) -> bool:
        """The attempt's stream ended: its slot is looked at ``grace_s`` from now
        unless a terminal callback releases it first. False: nothing to do (the
        call already moved on, or this is an older attempt's stream)."""
        done = await self._stream_end(
            keys=[call.key, keys.active(call.account)],
            args=[call.call_id, str(call.attempt), repr(now), repr(now + grace_s)],
        )
        return bool(done)
