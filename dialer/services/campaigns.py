"""Campaigns: the submit payload, bulk ingest into Redis, status, results, pause/resume/cancel.

Blocking Redis client (workers, and the receiver through a thread). Ingest is
pipelined in batches, so 100k contacts queue in seconds; the campaign hash
and its entry in the running set are written *last*, so admission never sees
a half-written campaign.
"""

from __future__ import annotations

import base64
import json
import math
import secrets
import time
from collections.abc import Collection, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pydantic
import redis
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

from dialer.core import reasons, surveys
from dialer.core.calls import FINAL, State
from dialer.core.contacts import Ingest, parse_csv, parse_list
from dialer.core.errors import ValidationError
from dialer.core.machine import MAX_MESSAGE_BYTES, check_message, parse_policy
from dialer.core.policy import RETRYABLE_OUTCOMES, RetryPolicy
from dialer.core.reasons import DNC_TEXT, Code, window_text
from dialer.core.surveys import SurveyIn
from dialer.core.windows import Window, next_open, zones_for
from dialer.store import keys
from dialer.store.retention import is_gone

BATCH = 5_000
MAX_MESSAGE_B64 = MAX_MESSAGE_BYTES * 4 // 3 + 4
MAX_CONTACTS = 1_000_000


def no_default(schema: dict[str, Any]) -> None:
    """``json_schema_extra`` of a field whose default None means "not given":
    the schema must not offer null (an explicit null is refused: not in its type)."""
    schema.pop("default", None)


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str
    vars: dict[str, str | int | float | bool | None] = Field(default_factory=dict)


class CampaignIn(BaseModel):
    """``POST /v1/campaigns`` and the ``dialer.submit_campaign`` task payload.

    Exactly one of ``contacts`` and ``csv``: the schema says so (``oneOf``)
    and ``_one_source`` enforces it, so the document allows no body the
    server refuses for that reason.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [{"required": ["contacts"]}, {"required": ["csv"]}],
            "examples": [
                {
                    "account": "acme",
                    "name": "csat-december",
                    "bot": "echo",
                    "contacts": [{"to": "+919876543210", "vars": {"name": "Asha"}}],
                    "max_attempts": 2,
                }
            ],
        },
    )

    account: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field(default="", max_length=200)
    bot: str = Field(
        default="echo",
        max_length=500,
        description="echo | survey[:LABEL] (with `survey`) | relay:wss://... | plugin:NAME",
    )
    #: the survey document and its WAV prompts (dialer.core.surveys); never a server path
    survey: SurveyIn | None = None
    # None only as "not given": an explicit null is not the type, so it is refused
    contacts: list[dict[str, Any]] = Field(
        default=None,
        description='[{"to": "+9198...", "vars": {...}}, ...]',
        json_schema_extra=no_default,
    )
    csv: str = Field(
        default=None,
        description="a CSV document with a `to` column; other columns are vars",
        json_schema_extra=no_default,
    )
    default_region: str | None = Field(default=None, min_length=2, max_length=2)
    max_attempts: int = Field(default=3, ge=1, le=20)
    retry_delay_s: float | dict[str, float] = 300.0
    max_per_outcome: dict[str, int] = Field(default_factory=dict)
    priority: int = Field(default=0, ge=-100, le=100)
    weight: float = Field(default=1.0, gt=0, le=1000)
    webhook_url: HttpUrl | None = None
    record: bool = False
    recording_channels: Literal["single", "dual"] | None = None
    time_limit_s: int = Field(default=3600, ge=1, le=14_400)
    stream_name: str | None = Field(default=None, max_length=32)
    sample_rate: Literal[8000, 16000, 24000] = 8000
    #: in each contact's zone: "mon-sat 09:00-20:00" or
    #: {"days": "mon-sat", "start": "09:00", "end": "20:00"}; stored as the object form
    window: str | dict[str, Any] | None = Field(
        default=None,
        description="Calling window in each contact's local time: text like "
        '"mon-fri 09:00-17:00" or {"days": "mon-fri", "start": "09:00", "end": "17:00"}',
    )
    #: survey answers that put the number on the account's do-not-call list, {"q3": "9"}
    dnc_answers: dict[str, str] = Field(default_factory=dict)
    #: answering-machine policy (see dialer.core.machine)
    machine_detection: str = Field(
        default="off",
        max_length=300,
        pattern=r"^\s*(off|hangup|continue|message(:[^\x00]*)?)\s*$",
        description="answering machines: off (no detection), hangup (outcome machine, "
        "retried like busy), message or message:NAME.wav (play machine_message_wav after "
        "the greeting's beep, then hang up; outcome voicemail), continue (only tell the bot)",
    )
    # None only as "not given", like contacts/csv
    machine_message_wav: str = Field(
        default=None,
        max_length=MAX_MESSAGE_B64,
        description="the message for machine_detection message: a PCM WAV file, base64 "
        f"(at most {MAX_MESSAGE_BYTES // 1024} KB, 120 s)",
        json_schema_extra=no_default,
    )
    #: for the preflight estimate only
    expected_call_s: float = Field(default=60.0, gt=0, le=14_400)

    @field_validator("window")
    @classmethod
    def _window(cls, v: str | dict[str, Any] | None) -> dict[str, Any] | None:
        if v is None:
            return None
        try:
            return Window.parse(v).to_dict()
        except ValidationError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("machine_detection")
    @classmethod
    def _machine(cls, v: str) -> str:
        try:
            parse_policy(v)
        except ValidationError as exc:
            raise ValueError(str(exc)) from None
        return v.strip()

    @field_validator("retry_delay_s")
    @classmethod
    def _delays(cls, v: float | dict[str, float]) -> float | dict[str, float]:
        values = v.values() if isinstance(v, dict) else [v]
        if any(not math.isfinite(d) or d < 0 for d in values):
            raise ValueError("delays must be finite and >= 0")
        if isinstance(v, dict) and set(v) - set(RETRYABLE_OUTCOMES):
            raise ValueError(f"keys must be among {', '.join(RETRYABLE_OUTCOMES)}")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> CampaignIn:
        if self.contacts is not None and self.csv is not None:
            raise ValueError("give either 'contacts' or 'csv', not both")
        if self.contacts is None and self.csv is None:
            raise ValueError("a campaign needs 'contacts' or 'csv'")
        return self

    def policy(self) -> RetryPolicy:
        delays = (
            self.retry_delay_s
            if isinstance(self.retry_delay_s, dict)
            else dict.fromkeys(RETRYABLE_OUTCOMES, self.retry_delay_s)
        )
        return RetryPolicy(
            max_attempts=self.max_attempts,
            retry_delay_s=delays,
            max_per_outcome=self.max_per_outcome,
        )

    def options(self) -> dict[str, Any]:
        return {
            "record": self.record,
            "recording_channels": self.recording_channels,
            "time_limit_s": self.time_limit_s,
            "stream_name": self.stream_name,
            "sample_rate": self.sample_rate,
        }


def ingest(spec: CampaignIn, default_region: str | None) -> Ingest:
    region = spec.default_region or default_region
    if spec.contacts is not None and spec.csv is not None:
        raise ValidationError("give either 'contacts' or 'csv', not both", field="contacts")
    if spec.csv is not None:
        result = parse_csv(spec.csv, region)
    elif spec.contacts is not None:
        result = parse_list(spec.contacts, region)
    else:
        raise ValidationError("a campaign needs 'contacts' or 'csv'", field="contacts")
    if len(result.contacts) > MAX_CONTACTS:
        raise ValidationError(f"at most {MAX_CONTACTS} contacts per campaign", field="contacts")
    return result


def validate_bot(
    spec: CampaignIn, survey_dir: Path | None = None
) -> tuple[dict[str, Any] | None, dict[str, bytes]]:
    """Check the bot now, at submit: (the survey document, its WAVs) for a survey bot.

    The survey comes as content (``spec.survey``); a ``survey:NAME`` without
    content is read from the operator's ``survey_dir`` or refused with
    ``SurveyPathRefused``. Both are stored with the campaign, so every
    streamer plays the same questions and no streamer reads a file.
    """
    # lazy: the streamer package pulls in the audio stack
    from streamer.bots import load_plugin, parse_bot_spec

    parsed = parse_bot_spec(spec.bot)
    if parsed.kind == "plugin":
        load_plugin(parsed.arg)
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
    from streamer.bots.survey import parse_survey

    try:
        parse_survey(content.document, wavs=wavs)  # the document's own errors first
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
                fields = {"to": contact.to, "state": "pending", "attempt": "1"}
                if contact.vars:
                    fields["vars"] = json.dumps(contact.vars, separators=(",", ":"))
                if contact.to in dnc:
                    fields.update(
                        state="suppressed",
                        outcome="suppressed",
                        reason=DNC_TEXT,
                        reason_code=Code.DO_NOT_CALL.value,
                    )
                    counts["suppressed"] += 1
                elif window is not None:
                    fields["tz"] = ",".join(zones[i])
                    opens = next_open(now, window, zones[i])
                    if opens > now:
                        later[call_id] = opens
                        fields.update(
                            reason=window_text(opens), reason_code=Code.OUTSIDE_WINDOW.value
                        )
                    else:
                        queue[call_id] = i
                    counts["pending"] += 1
                else:
                    queue[call_id] = i
                    counts["pending"] += 1
                pipe.hset(keys.call(a, call_id), mapping=fields)
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
        "state": "running",
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
    with r.pipeline() as pipe:
        if wavs:  # base64: every client of this Redis decodes responses as text
            pipe.hset(
                keys.survey(a, cid),
                mapping={f"wav:{n}": base64.b64encode(w).decode() for n, w in wavs.items()},
            )
        pipe.hset(keys.counts(a, cid), mapping=counts)
        pipe.hset(keys.campaign(a, cid), mapping=meta)
        pipe.hset(keys.CAMPAIGNS, cid, a)
        pipe.sadd(keys.running(a), cid)
        pipe.execute()
    return {"id": cid, **summary}


def _dnc_hits(r: redis.Redis, account: str, numbers: list[str]) -> set[str]:
    hits: set[str] = set()
    for start in range(0, len(numbers), BATCH):
        chunk = numbers[start : start + BATCH]
        flags = r.smismember(keys.dnc(account), chunk) if chunk else []
        hits.update(n for n, on in zip(chunk, flags, strict=True) if on)
    return hits


def preflight(
    r: redis.Redis,
    spec: CampaignIn,
    callable_n: int,
    window: Window | None,
    zones: list[tuple[str, ...]],
    now: float,
) -> dict[str, Any]:
    """What a dry run adds: limits, webhook reachability and a finish-time estimate."""
    limit, cpm = r.hmget(keys.account(spec.account), "max_concurrent", "calls_per_minute")
    limit_n, cpm_n = int(limit or 1), int(cpm or 200)
    # busy seconds of dialling: bound by concurrency and by the API rate
    work_s = max(callable_n * spec.expected_call_s / limit_n, callable_n * 60.0 / cpm_n)
    finish = estimate_finish(now, work_s, window, zones[0] if zones else ("UTC",))
    return {
        "preflight": {
            "max_concurrent_calls": limit_n,
            "calls_per_minute": cpm_n,
            "bot": "ok",
            # filled in by the receiver, asynchronously (dialer.net.egress.probe): a
            # slow URL must not hold a thread of the pool callbacks use
            "webhook_reachable": None,
            "estimate": {
                "busy_s": round(work_s, 1),
                "finish_at": finish,
                "finish_in_s": round(finish - now, 1),
            },
        }
    }


def estimate_finish(
    now: float, work_s: float, window: Window | None, zone: tuple[str, ...]
) -> float:
    """Pure: when ``work_s`` seconds of dialling end, spending them only in open windows."""
    if window is None:
        return now + work_s
    t = now
    for _ in range(400):  # a year of windows at most
        t = next_open(t, window, zone)
        day = datetime.fromtimestamp(t, UTC).date() - timedelta(days=1)
        closes = [
            hi
            for lo, hi in window.open_intervals(ZoneInfo(zone[0]), day, 3)
            if lo.timestamp() <= t < hi.timestamp()
        ]
        end = closes[0].timestamp() if closes else t + work_s
        if t + work_s <= end:
            return t + work_s
        work_s -= end - t
        t = end
    return t


def account_of(r: redis.Redis, cid: str) -> str | None:
    return r.hget(keys.CAMPAIGNS, cid)  # type: ignore[return-value]


def load_meta(r: redis.Redis, cid: str) -> tuple[str, dict[str, str]] | None:
    """The campaign's account and meta; None if unknown, expired or being purged."""
    account = account_of(r, cid)
    if account is None:
        return None
    meta: dict[str, str] = r.hgetall(keys.campaign(account, cid))  # type: ignore[assignment]
    if is_gone(meta):
        return None
    return account, meta


def load_policy(r: redis.Redis, account: str, cid: str) -> RetryPolicy:
    raw = r.hget(keys.campaign(account, cid), "policy")
    return RetryPolicy.from_dict(json.loads(raw)) if raw else RetryPolicy()  # type: ignore[arg-type]


def status(r: redis.Redis, cid: str) -> dict[str, Any] | None:
    """The contract's status object (``GET /v1/campaigns/{id}``, ``dialer status --json``)."""
    found = load_meta(r, cid)
    if found is None:
        return None
    account, meta = found
    counts = {k: int(v) for k, v in r.hgetall(keys.counts(account, cid)).items() if int(v)}  # type: ignore[union-attr]
    total = int(meta.get("total", 0))
    finished = sum(n for s, n in counts.items() if State(s) in FINAL)
    state = meta.get("state", "running")
    if state == "running" and finished >= total:
        state = "done"
    return {
        "id": cid,
        "name": meta.get("name"),
        "account": account,
        "bot": meta.get("bot"),
        "state": state,
        "total": total,
        "counts": counts,
        "outcomes": {s: n for s, n in counts.items() if State(s) in FINAL},
        "progress": round(finished / total, 4) if total else 1.0,
        "finished": finished,
        "active": int(meta.get("active", 0)),
        "rejected": int(meta.get("rejected", 0)),
        "duplicates": int(meta.get("duplicates", 0)),
        "created_at": float(meta.get("created_at", 0)),
        "waiting": waiting(r, account, cid, meta, state, total - finished),
    }


def waiting(
    r: redis.Redis,
    account: str,
    cid: str,
    meta: dict[str, str],
    state: str,
    unfinished: int,
    now: float | None = None,
) -> dict[str, Any]:
    """Why calls are not being dialled right now, for ``status`` (codes + human text).

    Reads what admission itself reads (the account's circuit, 429 back-off,
    slots, per-minute budget; the campaign's queue and delayed set), so the
    answer names the gate that really holds the calls. Codes: ``paused``,
    ``cancelled``, ``circuit_open``, ``backoff``, ``slots_full``,
    ``rate_limit``, ``window`` (first calls waiting for their calling window),
    ``retry`` (retries waiting for their delay).
    """
    now = time.time() if now is None else now
    if state == "done" or unfinished <= 0:
        # nothing left to dial: no reads (a campaign list is mostly finished campaigns)
        return {"queued": 0, "scheduled": 0, "next_due_at": None, "reasons": []}
    with r.pipeline(transaction=False) as pipe:
        pipe.zcard(keys.queue(account, cid))
        pipe.zcard(keys.delayed(account, cid))
        pipe.zrange(keys.delayed(account, cid), 0, 0, withscores=True)
        pipe.hmget(
            keys.account(account),
            "circuit",
            "circuit_reason",
            "paused_until",
            "max_concurrent",
            "calls_per_minute",
        )
        pipe.zcard(keys.active(account))
        pipe.zcount(keys.rate(account), now - 60, "+inf")
        queued, scheduled, first, acct, active, dialled = pipe.execute()
    circuit, circuit_reason, paused_until, limit, cpm = acct
    next_due = float(first[0][1]) if first else None
    reasons: list[dict[str, Any]] = []

    def why(code: str, text: str, at: float | None = None) -> None:
        # ``at``: when this gate opens (epoch s), for the CLI to show as a local date
        reasons.append({"code": code, "text": text, "at": at})

    if state == "cancelled":
        why("cancelled", "cancelled: no new calls; calls already ringing finish")
    elif state == "paused":
        why("paused", f"paused: `dialer resume {cid}` continues")
    if circuit == "open":
        why(
            "circuit_open",
            f"account {account}'s circuit is open ({circuit_reason or 'Exotel refused it'}): "
            f"fix the credentials, then `dialer account resume {account}`",
        )
    if float(paused_until or 0) > now:
        why(
            "backoff",
            "Exotel answered 429 (too many requests): admission waits",
            float(paused_until or 0),
        )
    if queued and limit is not None and active >= int(limit):
        why("slots_full", f"all {int(limit)} call slots of account {account} are in use")
    if queued and cpm is not None and dialled >= int(cpm):
        why("rate_limit", f"the per-minute budget of {int(cpm)} dials is used up")
    if not queued and scheduled and next_due is not None and next_due > now:
        kind = _deferred_kind(r, account, str(first[0][0]), meta)
        if kind == "window":
            why("window", "waiting for the calling window in the contacts' local time", next_due)
        else:
            why("retry", "waiting for retry delays", next_due)
    return {"queued": queued, "scheduled": scheduled, "next_due_at": next_due, "reasons": reasons}


def _deferred_kind(r: redis.Redis, account: str, call_id: str, meta: dict[str, str]) -> str:
    """A delayed call never dialled yet waits for its window; a dialled one for its retry."""
    if not meta.get("window"):
        return "retry"
    attempt, record = r.hmget(keys.call(account, call_id), "attempt", "h:1")
    return "window" if (attempt or "1") == "1" and record is None else "retry"


def call_result(call_id: str, h: dict[str, str]) -> dict[str, Any]:
    """One contact in the contract's results shape."""
    attempts = sorted(
        (json.loads(v) for k, v in h.items() if k.startswith("h:")), key=lambda rec: rec.get("n", 0)
    )
    state = h.get("state", "pending")
    outcome = h.get("outcome") or (state if State(state) in FINAL else None)
    # A completed call's leftover note (e.g. "settled by reconciliation") is no failure.
    why = reasons.of(h.get("reason_code"), h.get("reason"))
    if why is not None and why.code is Code.OTHER and outcome == State.COMPLETED.value:
        why = None
    return {
        "id": call_id,
        "to": h.get("to"),
        "vars": json.loads(h["vars"]) if h.get("vars") else {},
        "state": state,
        "outcome": outcome or ("unknown" if state == "unknown" else None),
        "reason": why.to_dict() if why else None,
        "attempts": [
            {
                "n": a.get("n"),
                "exotel_sid": a.get("exotel_sid"),
                "started_at": a.get("started_at"),
                "ended_at": a.get("ended_at"),
                "status": a.get("status"),
                "duration_s": a.get("duration_s"),
                "recording_url": a.get("recording_url"),
                "reason": a.get("reason"),
                **_detection(h, a.get("n")),
            }
            for a in attempts
        ],
        "answers": {k[2:]: v for k, v in h.items() if k.startswith("a:")},
    }


def _detection(h: dict[str, str], n: object) -> dict[str, Any]:
    """``answered_by``/``detection_ms`` of attempt ``n``, when detection ran (streamer writes)."""
    try:
        found = json.loads(h.get(f"amd:{n}") or "{}")
    except ValueError:
        found = {}
    if not isinstance(found, dict):
        found = {}
    return {"answered_by": found.get("answered_by"), "detection_ms": found.get("detection_ms")}


def iter_results(
    r: redis.Redis, cid: str, offset: int = 0, limit: int | None = None
) -> Iterator[dict[str, Any]]:
    found = load_meta(r, cid)
    if found is None:
        return
    account, meta = found
    total = int(meta.get("total", 0))
    end = total if limit is None else min(total, offset + limit)
    for start in range(offset, end, 1000):
        ids = [keys.call_id(cid, i) for i in range(start, min(start + 1000, end))]
        with r.pipeline(transaction=False) as pipe:
            for call_id in ids:
                pipe.hgetall(keys.call(account, call_id))
            rows = pipe.execute()
        for call_id, h in zip(ids, rows, strict=True):
            yield call_result(call_id, h)


def set_state(
    r: redis.Redis, cid: str, action: Literal["pause", "resume", "cancel"]
) -> dict[str, Any] | None:
    """Pause and cancel stop new admissions; calls already dialling or ringing go on."""
    found = load_meta(r, cid)
    if found is None:
        return None
    account, meta = found
    current = meta.get("state", "running")
    if current == "cancelled" and action != "cancel":
        raise ValidationError("campaign is cancelled", field="state")
    ckey = keys.campaign(account, cid)
    if action == "pause":
        r.hset(ckey, "state", "paused")
    elif action == "resume":
        with r.pipeline() as pipe:
            pipe.hset(ckey, "state", "running")
            pipe.sadd(keys.running(account), cid)
            pipe.execute()
    else:
        with r.pipeline() as pipe:
            pipe.hset(ckey, "state", "cancelled")
            pipe.srem(keys.running(account), cid)
            pipe.execute()
    return status(r, cid)


def waiting_calls(r: redis.Redis, account: str, cid: str) -> list[str]:
    """Calls queued or scheduled for a retry (what cancel must settle)."""
    q = r.zrange(keys.queue(account, cid), 0, -1)
    d = r.zrange(keys.delayed(account, cid), 0, -1)
    return [*q, *d]  # type: ignore[misc]


def list_campaigns(
    r: redis.Redis,
    *,
    offset: int = 0,
    limit: int = 100,
    state: str | None = None,
    account: str | None = None,
    allowed: Collection[str] | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """(matching total, one page of status objects), newest first.

    ``allowed``: only campaigns of these accounts (an API key's scope).

    Reads the whole campaign index (one hash) and each campaign's creation
    time in one pipeline; a ``state`` filter needs every candidate's status,
    because ``done`` is derived from the counters, not stored.
    """
    index: dict[str, str] = r.hgetall(keys.CAMPAIGNS)  # type: ignore[assignment]
    items = sorted(
        (cid, a)
        for cid, a in index.items()
        if (account is None or a == account) and (allowed is None or a in allowed)
    )
    with r.pipeline(transaction=False) as pipe:
        for cid, a in items:
            pipe.hget(keys.campaign(a, cid), "created_at")
        created = pipe.execute()
    # no created_at: expired, its index entry not yet forgotten (dialer.store.retention)
    listed = [(item, c) for item, c in zip(items, created, strict=True) if c is not None]
    newest = [cid for (cid, _), _ in sorted(listed, key=_newest_first)]
    if state is None:
        page = (status(r, cid) for cid in newest[offset : offset + limit])
        return len(newest), [s for s in page if s is not None]
    matching = [s for s in (status(r, cid) for cid in newest) if s and s["state"] == state]
    return len(matching), matching[offset : offset + limit]


def _newest_first(item: tuple[tuple[str, str], str | None]) -> tuple[float, str]:
    (cid, _), created = item
    return -float(created or 0), cid
