"""A campaign as submitted: the payload model, its contacts, and the finish-time estimate.

Pure: no Redis, no clock, no network. The submit use case
(``dialer.services.ingest``) validates with ``CampaignIn``, parses the
contacts with ``ingest`` and writes them; a dry run's estimate comes from
``estimate_finish``; what processes read back of it is ``CampaignFacts``
(parsed by ``facts``, read by ``dialer.store.campaigns``). This module does
not read the survey or the bot: that is ``dialer.core.bots`` and
``dialer.core.questions``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

from dialer.core.contacts import Ingest, parse_csv, parse_list
from dialer.core.errors import ValidationError
from dialer.core.fields import ABSENT, no_default
from dialer.core.machine import MAX_MESSAGE_BYTES, parse_policy
from dialer.core.policy import RETRYABLE_OUTCOMES, RetryPolicy
from dialer.core.surveys import SurveyIn
from dialer.core.windows import Window, next_open

MAX_MESSAGE_B64 = MAX_MESSAGE_BYTES * 4 // 3 + 4
MAX_CONTACTS = 1_000_000
#: The fields of a campaign every dial copies into its Connect request
#: (dialer.services.dialing reads them back from the campaign's facts).
CALL_OPTIONS = ("record", "recording_channels", "time_limit_s", "stream_name", "sample_rate")


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
        default=ABSENT,
        description='[{"to": "+9198...", "vars": {...}}, ...]',
        json_schema_extra=no_default,
    )
    csv: str = Field(
        default=ABSENT,
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
        default=ABSENT,
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
        """The stored ``options``: the campaign's fields that shape each Connect request."""
        return self.model_dump(include=set(CALL_OPTIONS))


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


@dataclass(frozen=True)
class CampaignFacts:
    """What a process needs of a stored campaign to place and settle its calls.

    Written once at submit and never changed (pause/cancel change ``state``,
    which is not here: read it fresh), so a process may cache these.
    """

    cid: str
    account: str
    bot: str = "echo"
    bot_config: dict[str, Any] = field(default_factory=dict)
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    options: dict[str, Any] = field(default_factory=dict)
    lease_s: float = 3720.0  # the answered call's lease: time_limit_s + a margin
    webhook_url: str = ""
    window: Window | None = None
    dnc_answers: dict[str, str] | None = None
    machine_detection: str = "off"  # the policy's mode (dialer.core.machine)


#: The campaign hash fields ``facts`` reads (never ``amd_wav``: up to 1.4 MB).
FACT_FIELDS = (
    "bot",
    "bot_config",
    "policy",
    "options",
    "lease_s",
    "webhook_url",
    "window",
    "dnc_answers",
    "amd",
)


def facts(cid: str, account: str, meta: Mapping[str, str | None]) -> CampaignFacts:
    """Pure: the stored campaign hash (``FACT_FIELDS``) -> its facts; the one parser
    the receiver, the workers and the streamer share (``dialer.store.campaigns``)."""
    window = _json(meta.get("window"))
    dnc = _json(meta.get("dnc_answers"))
    policy = _json(meta.get("policy"))
    return CampaignFacts(
        cid=cid,
        account=account,
        bot=meta.get("bot") or "echo",
        bot_config=_json(meta.get("bot_config")) or {},
        policy=RetryPolicy.from_dict(policy) if policy is not None else RetryPolicy(),
        options=_json(meta.get("options")) or {},
        lease_s=float(meta.get("lease_s") or 3720),
        webhook_url=meta.get("webhook_url") or "",
        window=Window.parse(window) if window else None,
        dnc_answers=dnc or None,
        machine_detection=str((_json(meta.get("amd")) or {}).get("mode") or "off"),
    )


def _json(raw: str | None) -> dict[str, Any] | None:
    """A stored JSON object; None for an absent, empty or malformed field."""
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
