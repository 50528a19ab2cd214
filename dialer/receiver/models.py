"""The REST API's request and response models (pydantic).

Handlers validate input with these and build every JSON answer through them,
and the OpenAPI document is generated from the very same classes
(``dialer.receiver.openapi``). Response models forbid unknown fields: a new
field in a campaign/call/account answer must be added here, so it cannot
reach clients undocumented. ``CampaignIn`` lives in ``dialer.core.campaign``
because the Celery ``dialer.submit_campaign`` task takes it too.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args, get_origin

import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model, model_validator
from pydantic.config import JsonDict
from pydantic.fields import FieldInfo

from dialer.core.campaign import CampaignIn
from dialer.core.fields import absent_field, no_default
from dialer.core.reasons import CODES, Code
from dialer.receiver import callbacks
from dialer.receiver.openapi import Out
from dialer.store import keys

SID_PATTERN = r"^[A-Za-z0-9_.-]+$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StrictOut(Out):
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


# --- parameters -------------------------------------------------------------------------


class SidPath(Strict):
    sid: str = Field(min_length=1, max_length=64, pattern=SID_PATTERN)


class CampaignPath(Strict):
    id: str = Field(pattern=keys.CID_PATTERN, description="campaign id from POST /v1/campaigns")


class PageQuery(Strict):
    """Bad paging values are refused with a 400 (never clamped)."""

    offset: int = Field(default=0, ge=0, le=10_000_000, description="first item (0-based)")
    limit: int = Field(default=100, ge=1, le=1000, description="items per page (1-1000)")


class CallsQuery(PageQuery):
    format: Literal["json", "csv"] = Field(
        default="json", description="`csv`: every contact as one CSV document (paging ignored)"
    )


class CampaignsQuery(PageQuery):
    state: Literal["running", "paused", "done", "cancelled"] | None = Field(
        default=None, description="only campaigns in this state"
    )
    account: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=SID_PATTERN,
        description="only this account's campaigns",
    )


#: CampaignIn's scalar fields, which a text/csv body takes as query parameters
#: (the CSV itself is the body). Generated from CampaignIn so they cannot drift.
CSV_QUERY_FIELDS = (
    "account", "name", "bot", "default_region", "max_attempts", "priority", "weight",
    "webhook_url", "record", "recording_channels", "time_limit_s", "stream_name",
    "sample_rate", "expected_call_s", "machine_detection",
)  # fmt: skip


def _digits_to_int(v: Any) -> Any:
    # a query value is text; Literal[8000, ...] would not take "8000" otherwise
    return int(v) if isinstance(v, str) and v.isdigit() else v


def _csv_query_model() -> type[BaseModel]:
    fields: dict[str, Any] = {
        "dry_run": (
            bool,
            Field(default=False, description="validate and estimate; queue nothing (200)"),
        )
    }
    for name in CSV_QUERY_FIELDS:
        f = CampaignIn.model_fields[name]
        info = FieldInfo.merge_field_infos(
            f,
            default=None,
            json_schema_extra=no_default,
            description=(f.description or name.replace("_", " "))
            + " (text/csv body only; with JSON it goes in the body)",
        )
        annotation: Any = f.annotation
        if get_origin(annotation) is Literal and all(type(a) is int for a in get_args(annotation)):
            annotation = Annotated[annotation, BeforeValidator(_digits_to_int)]
        fields[name] = (annotation, info)
    # the window's text form ("mon-fri 09:00-17:00"), the grammar the CLI uses
    fields["window"] = (
        str,
        Field(
            default=None,
            json_schema_extra=no_default,
            description="calling window in each contact's local time, e.g. "
            "'mon-fri 09:00-17:00' (text/csv body only)",
        ),
    )
    # retry_delay_s is a number or a per-outcome object in JSON; only a number fits a query
    fields["retry_delay_s"] = (
        float,
        Field(
            default=None,
            ge=0,
            allow_inf_nan=False,
            json_schema_extra=no_default,
            description="seconds between attempts (text/csv body only)",
        ),
    )
    return create_model("CampaignQuery", __config__=ConfigDict(extra="forbid"), **fields)


CampaignQuery = _csv_query_model()


# --- accounts ---------------------------------------------------------------------------


def _check_base(region: str | None, api_url: pydantic.HttpUrl | None) -> None:
    if region and api_url:
        raise ValueError("give either region or api_url, not both")
    if api_url and (api_url.username or api_url.password):
        # it would be stored and shown back: credentials go in api_key/api_token
        raise ValueError("api_url must not carry credentials (user:pass@)")


#: region and api_url are two ways to name one thing: not both (null counts as absent)
ONE_BASE: JsonDict = {
    "not": {
        "required": ["region", "api_url"],
        "properties": {"region": {"type": "string"}, "api_url": {"type": "string"}},
    }
}


class _AccountFields(Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra=ONE_BASE)

    api_key: str = Field(min_length=1, max_length=200)
    api_token: str = Field(min_length=1, max_length=200, description="stored; never returned")
    caller_id: str = Field(min_length=1, max_length=32, description="the ExoPhone dialled from")
    caller_ids: list[str] = Field(
        default_factory=list,
        max_length=500,
        description="ExoPhone pool rotated least recently used first",
    )
    region: Literal["sg", "in"] | None = Field(
        default=None, description="Exotel cluster; or give api_url (not both)"
    )
    api_url: pydantic.HttpUrl | None = None
    max_concurrent_calls: int = Field(default=10, ge=1, le=100_000)
    calls_per_minute: int = Field(default=200, ge=1, le=100_000)

    @model_validator(mode="after")
    def _one_base(self) -> _AccountFields:
        _check_base(self.region, self.api_url)
        return self


class AccountReplace(_AccountFields):
    """``PUT /v1/accounts/{sid}``: the whole account; an omitted optional field
    takes its default (region/api_url omitted: Exotel's default host)."""


class AccountIn(_AccountFields):
    """``POST /v1/accounts``: register (create), or update the fields named."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            **ONE_BASE,
            "examples": [
                {
                    "sid": "acme",
                    "api_key": "your-exotel-api-key",
                    "api_token": "your-exotel-api-token",
                    "caller_id": "08047112345",
                    "region": "in",
                    "max_concurrent_calls": 5,
                }
            ],
        },
    )

    sid: str = Field(min_length=1, max_length=64, pattern=SID_PATTERN)


class AccountPatch(Strict):
    """``PATCH /v1/accounts/{sid}``: only the fields named change.

    None is only "not named": an explicit null is refused (not the field's
    type), since resetting a field is PUT's job, not a guess made here.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=ONE_BASE)
    api_key: str = absent_field(min_length=1, max_length=200)
    api_token: str = absent_field(min_length=1, max_length=200)
    caller_id: str = absent_field(min_length=1, max_length=32)
    caller_ids: list[str] = absent_field(max_length=500)
    region: Literal["sg", "in"] = absent_field()
    api_url: pydantic.HttpUrl = absent_field()
    max_concurrent_calls: int = absent_field(ge=1, le=100_000)
    calls_per_minute: int = absent_field(ge=1, le=100_000)

    @model_validator(mode="after")
    def _one_base(self) -> AccountPatch:
        _check_base(self.region, self.api_url)
        return self


class AccountOut(StrictOut):
    sid: str
    caller_id: str
    api_url: str
    max_concurrent_calls: int
    calls_per_minute: int
    circuit: Literal["open", "closed"]
    circuit_reason: str
    caller_ids: list[str]


class CallerIdPool(StrictOut):
    in_rotation: list[str]
    removed: dict[str, str] = Field(description="ExoPhone -> why it was taken out")


class AccountDetail(AccountOut):
    caller_id_pool: CallerIdPool
    dnc_count: int


class CircuitOut(StrictOut):
    sid: str
    circuit: Literal["closed"]


class DncIn(Strict):
    #: numbers as text; a JSON number is taken here only to be refused per item with the
    #: wording a CSV row gets (it has lost its leading + or 0), not as a 422 for the list
    #: (strict: true/false are neither, so they are refused as the schema says)
    numbers: list[pydantic.StrictStr | pydantic.StrictInt] = Field(min_length=1, max_length=100_000)
    default_region: str | None = Field(default=None, min_length=2, max_length=2)


class Rejected(StrictOut):
    line: int = Field(description="CSV line, or 1-based index in a JSON list")
    reason: str


class DncOut(StrictOut):
    added: int
    rejected: list[Rejected]
    count: int


# --- campaigns --------------------------------------------------------------------------


class SubmitOut(StrictOut):
    id: str
    accepted: int
    rejected: list[Rejected]
    duplicates: int
    suppressed: int = Field(description="on the do-not-call list: not called")


class Estimate(StrictOut):
    busy_s: float
    finish_at: float
    finish_in_s: float


class Preflight(StrictOut):
    max_concurrent_calls: int
    calls_per_minute: int
    bot: str
    webhook_reachable: bool | None
    webhook_note: str = Field(
        default="",
        description="why the webhook is (not) reachable: HTTP status, refused by the egress "
        "policy, no answer in time; never the remote body",
    )
    estimate: Estimate


class DryRunOut(StrictOut):
    id: None = None
    accepted: int
    rejected: list[Rejected]
    duplicates: int
    suppressed: int
    preflight: Preflight


class WaitReason(StrictOut):
    code: Literal[
        "paused",
        "cancelled",
        "circuit_open",
        "backoff",
        "slots_full",
        "rate_limit",
        "window",
        "retry",
    ] = Field(description="the gate holding the calls (see dialer.services.queries.waiting)")
    text: str = Field(description="the same, for people")
    at: float | None = Field(description="when this gate opens (epoch s), when known")


class Waiting(StrictOut):
    queued: int = Field(description="calls due now, waiting for admission")
    scheduled: int = Field(description="calls waiting for a retry delay or a calling window")
    next_due_at: float | None = Field(description="the earliest scheduled call (epoch s)")
    reasons: list[WaitReason] = Field(description="empty when nothing holds the calls")


class CampaignStatus(StrictOut):
    id: str
    name: str | None
    account: str
    bot: str | None
    state: Literal["running", "paused", "done", "cancelled"]
    total: int
    counts: dict[str, int] = Field(description="calls by state")
    outcomes: dict[str, int] = Field(description="finished calls by outcome")
    progress: float = Field(ge=0, le=1)
    finished: int
    active: int
    rejected: int
    duplicates: int
    created_at: float
    waiting: Waiting = Field(description="why calls are not being dialled right now")


class CampaignPurged(StrictOut):
    id: str
    deleted: Literal[True]
    calls: int = Field(description="call records deleted (contacts, outcomes, answers)")
    events: int = Field(description="raw status callbacks deleted")


class Reason(StrictOut):
    """Why an attempt failed, was deferred or not made (dialer.core.reasons; README, "Reasons")."""

    code: Code = Field(
        description="machine-readable; codes are added, never renamed: "
        + "; ".join(f"{c.value}: {meaning}" for c, meaning in CODES.items())
    )
    text: str = Field(description="for people; wording may change")


class Attempt(StrictOut):
    n: int | None
    exotel_sid: str | None
    started_at: float | None
    ended_at: float | None
    status: str | None = Field(description="Exotel's terminal status, as Exotel said it")
    duration_s: int | None
    recording_url: str | None
    reason: Reason | None = Field(description="null when the attempt was a plain conversation")
    answered_by: Literal["human", "machine", "unknown"] | None = Field(
        description="who answered, by answering-machine detection; null when it did not run "
        "(machine_detection off, or the call was not answered)"
    )
    detection_ms: int | None = Field(
        description="audio time from answer to the detection's decision (ms)"
    )


class CallResult(StrictOut):
    id: str
    to: str | None
    vars: dict[str, Any]
    state: str
    outcome: str | None = Field(
        description="completed, busy, no-answer, failed, bot-failed (Exotel connected the "
        "call but the bot never ran), suppressed, cancelled, unknown; with machine "
        "detection also machine (hung up on) and voicemail (left the message)"
    )
    reason: Reason | None = Field(description="the contact's latest reason, if any")
    attempts: list[Attempt]
    answers: dict[str, str]


class Page(StrictOut):
    offset: int
    limit: int
    total: int
    next_offset: int | None = Field(description="offset of the next page; null on the last")

    @staticmethod
    def of(offset: int, limit: int, shown: int, total: int) -> dict[str, Any]:
        """The paging fields of a page showing ``shown`` items from ``offset`` of ``total``."""
        nxt = offset + shown
        return {
            "offset": offset,
            "limit": limit,
            "total": total,
            "next_offset": nxt if shown and nxt < total else None,
        }


class CallsPage(Page):
    calls: list[CallResult]


class CampaignList(Page):
    campaigns: list[CampaignStatus]


# --- the rest ---------------------------------------------------------------------------


class Health(StrictOut):
    ok: bool
    redis: str | None = None
    reason: str | None = None  # why not ready: "draining" or "redis unreachable"


class CallbackOut(StrictOut):
    ok: bool
    ignored: str | None = None


ExotelCallback = create_model(
    "ExotelCallback",
    __config__=ConfigDict(extra="allow"),
    __doc__="What Exotel posts (form or JSON); key spellings vary and are read "
    "case-insensitively, unknown keys are kept in the event log.",
    # the fields the receiver reads, from its one table of them
    **{name: (str | None, None) for name in callbacks.FIELDS},  # type: ignore[call-overload]
)


class SigQuery(BaseModel):
    # Required, but a missing one is answered like a wrong one (403, recorded as a
    # rejected callback), so the model takes "" and the schema still says required.
    model_config = ConfigDict(json_schema_extra={"required": ["attempt", "sig"]})
    attempt: str = Field(
        default="",
        description="the attempt this callback URL was issued for",
        json_schema_extra=no_default,
    )
    sig: str = Field(
        default="",
        description="HMAC of the call id and attempt (callback key), put in the URL by the dialer",
        json_schema_extra=no_default,
    )


# --- tenants: API keys and webhook keys ------------------------------------------------


class KeyPath(Strict):
    key_id: str = Field(min_length=1, max_length=32, pattern=r"^[0-9a-f]+$")


class KeyIn(Strict):
    # the schema says what _scoped enforces: some account, or admin
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"required": ["accounts"], "properties": {"accounts": {"minItems": 1}}},
                {"required": ["admin"], "properties": {"admin": {"const": True}}},
            ]
        },
    )
    accounts: list[Annotated[str, Field(min_length=1, max_length=64, pattern=SID_PATTERN)]] = Field(
        default_factory=list,
        max_length=1000,
        description="account sids the key may use; may be empty only for an admin key",
    )
    admin: bool = Field(
        default=False, strict=True, description="manage accounts and keys, see everything"
    )
    label: str = Field(default="", max_length=200, description="a note shown in the key list")

    @model_validator(mode="after")
    def _scoped(self) -> KeyIn:
        if not self.accounts and not self.admin:
            raise ValueError("give accounts, or admin: true")
        return self


class KeyOut(StrictOut):
    """A key's public record: never the key, never its hash."""

    id: str
    accounts: list[str]
    admin: bool
    label: str
    created_at: float


class KeyCreated(KeyOut):
    key: str = Field(description="the API key: shown in this answer only, Redis keeps its hash")


class KeyList(StrictOut):
    keys: list[KeyOut]


class KeyRevoked(StrictOut):
    id: str
    revoked: bool


class WebhookKeyOut(StrictOut):
    sid: str
    webhook_key: str = Field(
        description="HMAC-SHA256 key of this account's webhook signatures (X-Dialer-Signature)"
    )
