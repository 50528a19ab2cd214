"""Submitting a campaign: validate, ingest the contacts and queue them in Redis.

Blocking Redis client (workers, and the receiver through a thread). Ingest is
pipelined in batches, so 100k contacts queue in seconds; the campaign hash
and its entry in the running set are written *last*, so admission never sees
a half-written campaign. The payload model and the contact parsing are pure
(``dialer.core.campaign``); the bot spec and the survey document are checked
by the core too (``dialer.core.bots``, ``dialer.core.questions``), so this
path loads no audio stack.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import pydantic
import redis

from dialer.core import bots, questions, surveys
from dialer.core.calls import Call, State
from dialer.core.campaign import CampaignIn, ingest
from dialer.core.errors import ValidationError
from dialer.core.machine import check_message, parse_policy
from dialer.core.reasons import DNC_TEXT, Code, window_text
from dialer.core.states import CampaignState
from dialer.core.surveys import SurveyIn
from dialer.core.windows import Window, next_open, zones_for
from dialer.services.preflight import preflight
from dialer.store import keys, replies
from dialer.store.records import new_call_hash

BATCH = 5_000


def _compact_json(values: Mapping[str, Any]) -> str:
    # orjson: compact, and several times faster than json's encoder on the
    # 100k small objects of a big upload (UTF-8 kept as is, not \u-escaped).
    try:
        return orjson.dumps(values).decode()
    except TypeError:  # what orjson refuses and json takes: an integer past 64 bits
        return json.dumps(values, separators=(",", ":"))


def validate_bot(
    spec: CampaignIn, survey_dir: Path | None = None
) -> tuple[dict[str, Any] | None, dict[str, bytes]]:
    """Check the bot now, at submit: (the survey document, its WAVs) for a survey bot.

    The survey comes as content (``spec.survey``); a ``survey:NAME`` without
    content is read from the operator's ``survey_dir`` or refused with
    ``SurveyPathRefused``. Both are stored with the campaign, so every
    streamer plays the same questions and no streamer reads a file.
    """
    parsed = bots.parse_bot_spec(spec.bot)
    if parsed.kind == "plugin":
        bots.load_plugin(parsed.arg)
    if parsed.kind != "survey":
        if spec.survey is not None:
            raise ValidationError("'survey' needs bot 'survey'", field="survey")
        return None, {}
    content = spec.survey
    if content is None:
        if not parsed.arg:
            raise ValidationError(
                "a survey bot needs its survey: 'survey': {'document': ..., 'prompts': ...}",
                field="survey",
            )
        try:
            content = SurveyIn.model_validate(surveys.from_survey_dir(parsed.arg, survey_dir))
        except pydantic.ValidationError as exc:
            raise ValidationError(f"survey {parsed.arg}: {exc.errors()[0]['msg']}") from None
    wavs = content.wavs()
    try:
        # the document alone: whether text can be spoken is the streamer's to check
        questions.parse_survey(content.document, wavs=wavs)  # the document's own errors first
    except ValidationError as exc:
        field = f"survey.document.{exc.field}" if exc.field else "survey.document"
        raise ValidationError(f"survey: {exc}", field=field) from None
    surveys.check_unused(content.document, wavs)
    return content.document, wavs


def create_campaign(
    r: redis.Redis,
    spec: CampaignIn,
    *,
    now: float | None = None,
    default_region: str | None = None,
    lease_margin_s: int = 120,
    dry_run: bool = False,
    survey_dir: Path | None = None,
) -> dict[str, Any]:
    """Validate, ingest and queue a campaign. Returns the contract's submit result.

    ``survey_dir``: the operator's ``DIALER_SURVEY_DIR``, the only place a
    ``survey:NAME`` bot sent without its content may be read from.
    """
    now = time.time() if now is None else now
    keys.check_account(spec.account)
    if not r.exists(keys.account(spec.account)):
        raise ValidationError(
            f"unknown account {spec.account!r}: register it first", field="account"
        )
    bot_config, wavs = validate_bot(spec, survey_dir)
    machine = parse_policy(spec.machine_detection)
    check_message(spec.machine_message_wav, machine)
    result = ingest(spec, default_region)
    window = Window.parse(spec.window) if spec.window else None
    zones: list[tuple[str, ...]] = []
    if window is not None:
        kept = []
        for contact in result.contacts:
            try:
                zones.append(zones_for(contact.to, str(contact.vars.get("tz") or "") or None))
                kept.append(contact)
            except ValidationError as exc:
                result.reject(contact.line, str(exc))
        result.contacts = kept
    dnc = _dnc_hits(r, spec.account, [c.to for c in result.contacts])
    summary: dict[str, Any] = {
        "accepted": len(result.contacts),
        "rejected": result.rejected,
        "duplicates": result.duplicates,
        "suppressed": len(dnc),
    }
    if dry_run:
        return {
            "id": None,
            **summary,
            **preflight(r, spec, len(result.contacts) - len(dnc), window, zones, now),
        }
    if not result.contacts:
        raise ValidationError("no valid contacts to call", field="contacts")
    cid = secrets.token_hex(6)
    a = spec.account
    counts = {"pending": 0, "suppressed": 0}
    for start in range(0, len(result.contacts), BATCH):
        queue: dict[str, float] = {}
        later: dict[str, float] = {}
        with r.pipeline(transaction=False) as pipe:
            for i, contact in enumerate(result.contacts[start : start + BATCH], start=start):
                call_id = keys.call_id(cid, i)
                call: Call | None = None  # fresh and pending, the common case
                extra: dict[str, str] = {}
                if contact.vars:
                    extra["vars"] = _compact_json(contact.vars)
                if contact.to in dnc:
                    call = Call(
                        state=State.SUPPRESSED,
                        outcome=State.SUPPRESSED.value,
                        reason=DNC_TEXT,
                        reason_code=Code.DO_NOT_CALL.value,
                    )
                    counts["suppressed"] += 1
                elif window is not None:
                    extra["tz"] = ",".join(zones[i])
                    opens = next_open(now, window, zones[i])
                    if opens > now:
                        later[call_id] = opens
                        call = Call(reason=window_text(opens), reason_code=Code.OUTSIDE_WINDOW)
                    else:
                        queue[call_id] = i
                    counts["pending"] += 1
                else:
                    queue[call_id] = i
                    counts["pending"] += 1
                fields = new_call_hash(contact.to, call, **extra)
                pipe.hset(keys.call(a, call_id), mapping=replies.mapping(fields))
            if queue:
                pipe.zadd(keys.queue(a, cid), queue)
            if later:
                pipe.zadd(keys.delayed(a, cid), later)
            pipe.execute()
    meta = {
        "id": cid,
        "account": a,
        "name": spec.name or cid,
        "bot": spec.bot,
        "policy": json.dumps(spec.policy().to_dict()),
        "options": json.dumps(spec.options()),
        "state": CampaignState.RUNNING,
        "total": len(result.contacts),
        "weight": spec.weight,
        "priority": spec.priority,
        "active": 0,
        "finished": counts["suppressed"],
        "created_at": now,
        "lease_s": spec.time_limit_s + lease_margin_s,
        "webhook_url": str(spec.webhook_url) if spec.webhook_url else "",
        "rejected": len(result.rejected),
        "duplicates": result.duplicates,
        "window": json.dumps(spec.window) if spec.window else "",
        "dnc_answers": json.dumps(spec.dnc_answers) if spec.dnc_answers else "",
    }
    if bot_config is not None:
        meta["bot_config"] = json.dumps(bot_config)
    if machine.detects:
        meta["amd"] = json.dumps({"mode": machine.mode, "message": machine.message_name})
        if spec.machine_message_wav:
            meta["amd_wav"] = spec.machine_message_wav  # base64: every streamer reads it
    # Three steps, because the global index is another slot on a cluster:
    # the campaign's own keys (one MULTI), then the index that callbacks, the
    # streamer and the sweep find it by, then ``running``, which lets admission
    # dial it. Each step needs the one before; a crash between two leaves a
    # campaign nobody dials (an unindexed one, or an indexed one that
    # ``resume`` starts), never calls whose campaign cannot be found.
    with r.pipeline(transaction=True) as pipe:  # one slot: the account's
        if wavs:  # base64: every client of this Redis decodes responses as text
            pipe.hset(
                keys.survey(a, cid),
                mapping={f"wav:{n}": base64.b64encode(w).decode() for n, w in wavs.items()},
            )
        pipe.hset(keys.counts(a, cid), mapping=replies.mapping(counts))
        pipe.hset(keys.campaign(a, cid), mapping=replies.mapping(meta))
        pipe.execute()
    r.hset(keys.CAMPAIGNS, cid, a)
    r.sadd(keys.running(a), cid)
    return {"id": cid, **summary}


def _dnc_hits(r: redis.Redis, account: str, numbers: list[str]) -> set[str]:
    hits: set[str] = set()
    for start in range(0, len(numbers), BATCH):
        chunk = numbers[start : start + BATCH]
        flags = r.smismember(keys.dnc(account), chunk) if chunk else []
        hits.update(n for n, on in zip(chunk, flags, strict=True) if on)
    return hits
