"""The public REST API (``/v1/...``), served by the receiver.

Every route is declared through ``API`` (``dialer.receiver.openapi``), on one
of the resources below (``ACCOUNT``, ``CAMPAIGN``...: path, tag, path
parameters and access said once), with the models of
``dialer.receiver.models``; the handler's name is its operation id and its
docstring its documentation. The wrapper hands each handler its validated
input, the handler answers through a response model, and the OpenAPI document
is rendered from the same declarations. Blocking store functions run in the
receiver's thread pool through ``stored``, which also turns "not there" into
the 404 and a refused change into the 409.

Accounts: ``POST /v1/accounts`` registers (create) or, for a sid that exists,
updates only the fields the body names (a re-post without ``api_url`` keeps
the stored one); ``PUT /v1/accounts/{sid}`` replaces the whole account
(omitted optional fields take their defaults); ``PATCH`` changes only the
named fields. The circuit state is never touched by any of them.

Tenants: each request carries its key's scope (``apikeys.Scope``, put there
by the receiver's auth middleware), and each route declares whose it is
(``scope=``, checked by the wrapper before the handler runs): ``ADMIN``
(account and key management: 403 otherwise, the route is no secret),
``BY_ACCOUNT`` (the account of ``{sid}``), ``BY_CAMPAIGN`` (the account of the
campaign ``{id}``), or ``ANY_KEY`` (the handler narrows to the key's
accounts). An account or a campaign outside the key's scope answers exactly as
if it did not exist (404, or the 422 of an unregistered account on submit).
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time
from collections.abc import Callable
from typing import Any

import pydantic
from aiohttp import web
from prometheus_client import generate_latest

from dialer.core import campaign
from dialer.core.contacts import parse_list, var_columns
from dialer.core.egress import EXOTEL_API_HOSTS, EgressPolicy, is_exotel_url
from dialer.core.errors import ValidationError
from dialer.core.keyring import Keyring
from dialer.core.surveys import SurveyPathRefused
from dialer.net.egress import probe
from dialer.receiver import appkeys
from dialer.receiver.appkeys import in_thread, send_task
from dialer.receiver.models import (
    AccountDetail,
    AccountIn,
    AccountOut,
    AccountPatch,
    AccountReplace,
    CallResult,
    CallsPage,
    CallsQuery,
    CampaignList,
    CampaignPath,
    CampaignPurged,
    CampaignQuery,
    CampaignsQuery,
    CampaignStatus,
    CircuitOut,
    DncIn,
    DncOut,
    DryRunOut,
    KeyCreated,
    KeyIn,
    KeyList,
    KeyOut,
    KeyPath,
    KeyRevoked,
    Page,
    SidPath,
    SubmitOut,
    WebhookKeyOut,
)
from dialer.receiver.openapi import (
    API,
    JSON,
    Access,
    Input,
    Link,
    Problem,
    Refusal,
    Reply,
    Text,
    problem,
    pydantic_detail,
    reply,
)
from dialer.services import accounts, control, ingest, queries
from dialer.services.accounts import Account
from dialer.store import apikeys, callerids, keys, retention

ACCOUNT_LINKS = {
    "GetAccount": Link("getAccount", {"sid": "$response.body#/sid"}),
    "PatchAccount": Link("patchAccount", {"sid": "$response.body#/sid"}),
    "AddDnc": Link("addDnc", {"sid": "$response.body#/sid"}),
    "ResumeAccount": Link("resumeAccount", {"sid": "$response.body#/sid"}),
    # a campaign that can be created, so its own links (status, calls, pause...) are reached
    "CreateCampaign": Link(
        "createCampaign",
        request_body={
            "account": "$response.body#/sid",
            "bot": "echo",
            "contacts": [{"to": "+919876543210"}, {"to": "+919876543211"}],
        },
        description="a two-contact campaign on this account",
    ),
}
CAMPAIGN_LINKS = {
    name: Link(op, {"id": "$response.body#/id"})
    for name, op in (
        ("GetCampaign", "getCampaign"),
        ("ListCalls", "listCalls"),
        ("Pause", "pauseCampaign"),
        ("Resume", "resumeCampaign"),
        ("Cancel", "cancelCampaign"),
    )
}
NO_ACCOUNT = Reply("no such account (or not in the API key's scope)", Problem)
NO_CAMPAIGN = Reply("no such campaign", Problem)
ADMIN_ONLY = Reply("the route needs an admin API key", Problem)


def scope(request: web.Request) -> apikeys.Scope:
    found: apikeys.Scope = request[appkeys.SCOPE]
    return found


async def campaign_in_scope(request: web.Request, cid: str) -> bool:
    """True if the campaign exists and its account is in the caller's scope."""
    account = await request.app[appkeys.AREDIS].hget(keys.CAMPAIGNS, cid)
    return account is not None and scope(request).allows(str(account))


async def account_in_scope(request: web.Request, sid: str) -> Account | None:
    """The account if it exists and the caller may see it; None for both other cases."""
    if not scope(request).allows(sid):
        return None
    found: Account | None = await stored(request, accounts.load_account, sid, _keyring(request))
    return found


async def stored(
    request: web.Request,
    fn: Callable[..., Any],
    *args: Any,
    missing: str = "",
    conflict: type[Exception] | tuple[type[Exception], ...] = (),
) -> Any:
    """``fn(redis, *args)``, a blocking store function, run on the receiver's thread pool.

    With ``missing``, a None answer (nothing there) is refused as a 404 with that
    text; a ``conflict`` exception is refused as a 409 with its message.
    """
    try:
        found = await in_thread(request.app, fn, request.app[appkeys.RUNTIME].r, *args)
    except conflict as exc:
        raise Refusal(409, str(exc)) from exc
    if found is None and missing:
        raise Refusal(404, missing)
    return found


def _keyring(request: web.Request) -> Keyring:
    return request.app[appkeys.SETTINGS].keyring


async def _any_key(request: web.Request, inp: Input[Any, Any]) -> web.Response | None:
    return None


async def _admin(request: web.Request, inp: Input[Any, Any]) -> web.Response | None:
    if scope(request).admin:
        return None
    return problem(403, "this route needs an admin API key")


async def _account_of_path(request: web.Request, inp: Input[Any, Any]) -> web.Response | None:
    account = await account_in_scope(request, inp.path.sid)
    if account is None:
        return problem(404, "no such account")
    inp.scoped = account  # the handler's, loaded once
    return None


async def _campaign_of_path(request: web.Request, inp: Input[Any, Any]) -> web.Response | None:
    if await campaign_in_scope(request, inp.path.id):
        return None
    return problem(404, "no such campaign")


#: Whose a route is (``scope=``, mostly its resource's); every keyed route has one.
ANY_KEY = Access("any key; the handler narrows to the key's accounts", _any_key)
ADMIN = Access("an admin key", _admin, {403: ADMIN_ONLY})
BY_ACCOUNT = Access("the account {sid}", _account_of_path, {404: NO_ACCOUNT})
BY_CAMPAIGN = Access("the account of the campaign {id}", _campaign_of_path, {404: NO_CAMPAIGN})

#: The REST resources: what their routes share (tag, path parameters, default access).
ACCOUNTS = API.resource("/v1/accounts", tags=("accounts",), scope=ADMIN)
ACCOUNT = API.resource(
    "/v1/accounts/{sid}", tags=("accounts",), path_params=SidPath, scope=BY_ACCOUNT
)
CAMPAIGNS = API.resource("/v1/campaigns", tags=("campaigns",), scope=ANY_KEY)
CAMPAIGN = API.resource(
    "/v1/campaigns/{id}", tags=("campaigns",), path_params=CampaignPath, scope=BY_CAMPAIGN
)
KEYS = API.resource("/v1/keys", tags=("keys",), scope=ADMIN)


async def _after_account_change(request: web.Request, sid: str) -> web.Response:
    await send_task(request.app, "admit", sid)  # a raised limit applies now
    account = await account_in_scope(request, sid)
    assert account is not None  # admin routes only: every account is in scope
    return reply(AccountOut.model_validate(account.public()))


def _named(body: pydantic.BaseModel, *skip: str) -> dict[str, Any]:
    """The fields the client named, as ``update_account`` takes them."""
    out = {k: getattr(body, k) for k in body.model_fields_set if k not in skip}
    if out.get("api_url") is not None:
        out["api_url"] = str(out["api_url"])
    return out


def refuse_api_url(app: web.Application, api_url: object) -> None:
    """An API-supplied ``api_url`` must be Exotel's (or allow-listed): egress policy.
    Any other is refused (the 422)."""
    if api_url is None or is_exotel_url(str(api_url), app[appkeys.SETTINGS].egress_policy):
        return
    hosts = ", ".join(sorted(EXOTEL_API_HOSTS))
    message = f"must be an Exotel API URL (https://{{{hosts}}}) unless DIALER_EGRESS_ALLOW names it"
    raise Refusal(422, "invalid request", [{"field": "api_url", "message": message}])


async def probe_webhook(app: web.Application, url: str) -> tuple[bool, str]:
    """On the event loop, bounded in time and in number: never the thread pool."""
    slots = app[appkeys.PROBE_SLOTS]
    try:
        await asyncio.wait_for(slots.acquire(), appkeys.PROBE_DEADLINE_S)
    except TimeoutError:
        return False, "not checked: too many checks in progress"
    try:
        return await asyncio.wait_for(probe(app[appkeys.PROBES], url), appkeys.PROBE_DEADLINE_S + 1)
    except TimeoutError:
        return False, "no answer in time"
    finally:
        slots.release()


def _make(sid: str, body: AccountIn | AccountReplace) -> Account:
    return accounts.make_account(
        sid,
        body.api_key,
        body.api_token,
        body.caller_id,
        region=body.region,
        api_url=str(body.api_url) if body.api_url else None,
        max_concurrent_calls=body.max_concurrent_calls,
        calls_per_minute=body.calls_per_minute,
        caller_ids=body.caller_ids,
    )


@ACCOUNTS.route(
    "POST",
    body={JSON: AccountIn},
    responses={200: Reply("the account (never its token)", AccountOut, links=ACCOUNT_LINKS)},
)
async def register_account(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    """Register an Exotel account, or update the fields named of an existing one

    Create: omitted optional fields take their defaults. For a sid that exists, only the
    fields in the body change (a re-post without `api_url` keeps the stored one); use PUT
    to replace an account whole.
    """
    body: AccountIn = inp.body
    refuse_api_url(request.app, body.api_url)
    changes, keyring = _named(body, "sid"), _keyring(request)
    if await stored(request, accounts.update_account, body.sid, changes, keyring) is None:
        await stored(request, accounts.save_account, _make(body.sid, body), keyring)
    return await _after_account_change(request, body.sid)


@ACCOUNT.route(
    "PUT",
    body={JSON: AccountReplace},
    responses={
        200: Reply("replaced", AccountOut, links=ACCOUNT_LINKS),
        201: Reply("created", AccountOut, links=ACCOUNT_LINKS),
    },
    scope=ADMIN,
)
async def replace_account(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    """Create or replace an account whole (omitted optional fields take their defaults)"""
    sid = inp.path.sid
    refuse_api_url(request.app, inp.body.api_url)
    existed = await request.app[appkeys.AREDIS].exists(keys.account(sid)) > 0
    await stored(request, accounts.save_account, _make(sid, inp.body), _keyring(request))
    resp = await _after_account_change(request, sid)
    resp.set_status(200 if existed else 201)
    return resp


@ACCOUNT.route(
    "PATCH",
    body={JSON: AccountPatch},
    responses={200: Reply("the updated account", AccountOut), 404: NO_ACCOUNT},
    scope=ADMIN,
)
async def patch_account(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    """Change only the fields named; every other field keeps its value"""
    sid = inp.path.sid
    refuse_api_url(request.app, inp.body.api_url)
    changes, keyring = _named(inp.body), _keyring(request)
    await stored(request, accounts.update_account, sid, changes, keyring, missing="no such account")
    return await _after_account_change(request, sid)


@ACCOUNT.route("GET", responses={200: Reply("the account", AccountDetail)})
async def get_account(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    """An account (never its token), its caller-ID pool and do-not-call count"""
    account: Account = inp.scoped
    pool = await stored(request, callerids.pool_report, account.sid)
    dnc = await request.app[appkeys.AREDIS].scard(keys.dnc(account.sid))
    return reply(
        AccountDetail.model_validate({**account.public(), "caller_id_pool": pool, "dnc_count": dnc})
    )


@ACCOUNT.route("POST", "/dnc", body={JSON: DncIn}, responses={200: Reply("added", DncOut)})
async def add_dnc(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    """Add numbers to the account's do-not-call list; bad ones are reported by index"""
    sid = inp.path.sid
    body: DncIn = inp.body
    region = body.default_region or request.app[appkeys.SETTINGS].DIALER_DEFAULT_REGION
    parsed = parse_list([{"to": n} for n in body.numbers], region)
    numbers = [c.to for c in parsed.contacts]
    r = request.app[appkeys.AREDIS]
    if numbers:
        await r.sadd(keys.dnc(sid), *numbers)
    count = await r.scard(keys.dnc(sid))
    return reply(
        DncOut.model_validate({"added": len(numbers), "rejected": parsed.rejected, "count": count})
    )


@ACCOUNT.route("POST", "/resume", responses={200: Reply("circuit closed", CircuitOut)})
async def resume_account(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    """Close the account's circuit after a 401/402/403 from Exotel"""
    sid = inp.path.sid
    await stored(request, accounts.close_circuit, sid)
    await send_task(request.app, "admit", sid)
    return reply(CircuitOut(sid=sid, circuit="closed"))


CSV_BODY = Text(
    {"type": "string", "description": "CSV with a `to` column; other columns become vars"}
)


@CAMPAIGNS.route(
    "POST",
    query=CampaignQuery,
    body={JSON: campaign.CampaignIn, "text/csv": CSV_BODY, "text/plain": CSV_BODY},
    responses={
        201: Reply("created and queued", SubmitOut, links=CAMPAIGN_LINKS),
        200: Reply("dry run: validated and estimated, nothing queued", DryRunOut),
    },
)  # any key: the body names the account, checked below and answered as a missing one
async def create_campaign(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    """Create a campaign (JSON body, or a CSV body with the fields as query parameters)

    With a text/csv body, `account` (required) and the other scalar campaign fields are
    query parameters; with a JSON body they go in the body and only `dry_run` is read from
    the query. Bad rows are reported by line, good rows still go in; a campaign with no
    callable row, or for an unregistered account, is a 422.
    """
    app = request.app
    q = inp.query
    named = q.model_fields_set - {"dry_run"}
    if isinstance(inp.body, str):
        payload = {**q.model_dump(include=named, mode="json"), "csv": inp.body}
        try:
            spec = campaign.CampaignIn.model_validate(payload)
        except pydantic.ValidationError as exc:
            return problem(422, "invalid request", pydantic_detail(exc))
    else:
        if named:
            return problem(
                422,
                "with a JSON body, give the campaign fields in the body",
                [{"field": f"query.{n}", "message": "only with a text/csv body"} for n in named],
            )
        spec = inp.body
    if not scope(request).allows(spec.account):
        # the very answer an unregistered account gets: nothing tells them apart
        msg = f"unknown account {spec.account!r}: register it first"
        return problem(422, msg, [{"field": "account", "message": msg}])
    s = app[appkeys.SETTINGS]
    try:
        result = await stored(
            request,
            lambda r: ingest.create_campaign(
                r,
                spec,
                default_region=s.DIALER_DEFAULT_REGION,
                lease_margin_s=s.DIALER_LEASE_MARGIN_S,
                dry_run=q.dry_run,
                survey_dir=s.DIALER_SURVEY_DIR,
            ),
        )
    except SurveyPathRefused as exc:  # a path on this host: never a reason to read a file
        return problem(400, str(exc), [{"field": "bot", "message": str(exc)}])
    except ValidationError as exc:
        return problem(
            422, str(exc), [{"field": exc.field or "body", "message": str(exc), "line": exc.line}]
        )
    if q.dry_run:
        if spec.webhook_url:
            ok, note = await probe_webhook(app, str(spec.webhook_url))
            result["preflight"].update(webhook_reachable=ok, webhook_note=note)
        return reply(DryRunOut.model_validate(result))
    await send_task(app, "admit", spec.account)
    return reply(SubmitOut.model_validate(result), status=201)


@CAMPAIGNS.route(
    "GET",
    query=CampaignsQuery,
    responses={200: Reply("one page of campaign status objects", CampaignList)},
)  # any key: lists only the key's accounts' campaigns
async def list_campaigns(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    """Campaigns, newest first (paged; filter by state and account)"""
    q: CampaignsQuery = inp.query
    who = scope(request)
    total, rows = await stored(
        request,
        lambda r: queries.list_campaigns(
            r,
            offset=q.offset,
            limit=q.limit,
            state=q.state,
            account=q.account,
            allowed=None if who.admin else who.accounts,
        ),
    )
    return reply(
        CampaignList(
            campaigns=[CampaignStatus.model_validate(s) for s in rows],
            **Page.of(q.offset, q.limit, len(rows), total),
        )
    )


@CAMPAIGN.route("GET", responses={200: Reply("the status object", CampaignStatus)})
async def get_campaign(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    """Counters by state and outcome, progress, timing"""
    found = await stored(request, queries.status, inp.path.id, missing="no such campaign")
    return reply(CampaignStatus.model_validate(found))


CSV_COLUMNS = [
    "id",
    "to",
    "state",
    "outcome",
    "attempts",
    "last_exotel_sid",
    "duration_s",
    "answers",
    "reason",
    "reason_code",
    "answered_by",  # the last attempt's, when answering-machine detection ran
    "detection_ms",
]


@CAMPAIGN.route(
    "GET",
    "/calls",
    query=CallsQuery,
    responses={
        200: Reply(
            "a page of results (JSON), or every result (format=csv)",
            CallsPage,
            media={"text/csv": Text({"type": "string"})},
        ),
    },
)
async def list_calls(request: web.Request, inp: Input[Any, Any]) -> web.StreamResponse:
    """Every contact: attempts, Exotel sids, outcome, answers (paged, or CSV)"""
    cid = inp.path.id
    q: CallsQuery = inp.query
    meta = await stored(request, queries.status, cid, missing="no such campaign")
    if q.format == "csv":
        rows = await stored(request, lambda r: list(queries.iter_results(r, cid)))
        return web.Response(text=results_csv(rows), content_type="text/csv")
    rows = await stored(request, lambda r: list(queries.iter_results(r, cid, q.offset, q.limit)))
    return reply(
        CallsPage(
            calls=[CallResult.model_validate(row) for row in rows],
            **Page.of(q.offset, q.limit, len(rows), meta["total"]),
        )
    )


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def csv_cell(value: object) -> object:
    """Neutralise spreadsheet formulas (CSV injection): a text cell starting with
    = + - @ tab or CR gets a leading apostrophe, so Excel/Sheets show it as text.

    Plain numbers (``+919876500000``, ``-3``) are left alone: they are no formula
    and an E.164 number must stay readable.
    """
    if not isinstance(value, str) or not value.startswith(_FORMULA_START):
        return value
    if _PLAIN_NUMBER.fullmatch(value):
        return value
    return "'" + value


def results_csv(rows: list[dict[str, Any]]) -> str:
    """Fixed columns with the contact's own columns (``vars``) after ``to``.

    A contact column named like a fixed one is written as ``vars.<name>`` so
    neither hides the other.
    """
    names = var_columns(rows)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(
        csv_cell(v)  # contact column names are the uploader's text too
        for v in [
            *CSV_COLUMNS[:2],
            *(f"vars.{n}" if n in CSV_COLUMNS else n for n in names),
            *CSV_COLUMNS[2:],
        ]
    )
    for row in rows:
        last = row["attempts"][-1] if row["attempts"] else {}
        answers = ";".join(f"{k}={v}" for k, v in sorted(row["answers"].items()))
        variables = row.get("vars") or {}
        w.writerow(
            csv_cell(v)
            for v in [
                row["id"],
                row["to"],
                *("" if variables.get(n) is None else variables[n] for n in names),
                row["state"],
                row["outcome"] or "",
                len(row["attempts"]),
                last.get("exotel_sid") or "",
                last.get("duration_s") or "",
                answers,
                (row["reason"] or {}).get("text", ""),
                (row["reason"] or {}).get("code", ""),
                last.get("answered_by") or "",
                "" if last.get("detection_ms") is None else last["detection_ms"],
            ]
        )
    return out.getvalue()


def _campaign_action(action: str) -> None:
    @CAMPAIGN.route(
        "POST",
        f"/{action}",
        operation_id=f"{action}Campaign",
        summary={
            "pause": "Pause: admit no new calls (calls in progress go on)",
            "resume": "Resume a paused campaign",
            "cancel": "Cancel: settle every waiting call; ringing calls are never dropped",
        }[action],
        responses={
            200: Reply("the campaign's status after the change", CampaignStatus),
            **(
                {409: Reply("the campaign is cancelled; it cannot be paused or resumed", Problem)}
                if action != "cancel"
                else {}
            ),
        },
    )
    async def run(request: web.Request, inp: Input[Any, Any]) -> web.Response:
        cid = inp.path.id
        result = await stored(
            request,
            control.set_state,
            cid,
            action,
            missing="no such campaign",
            conflict=ValidationError,
        )
        if action == "cancel":
            await send_task(request.app, "cancel_campaign", cid)
        elif action == "resume":
            await send_task(request.app, "admit", result["account"])
        return reply(CampaignStatus.model_validate(result))


for _action in ("pause", "resume", "cancel"):
    _campaign_action(_action)


@CAMPAIGN.route(
    "DELETE",
    responses={
        200: Reply("what was deleted", CampaignPurged),
        409: Reply("the campaign can still dial or a call is live; cancel it first", Problem),
    },
)
async def delete_campaign(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    """Purge a finished or cancelled campaign now: calls, answers, recordings' URLs,
    raw callbacks

    Refused (409) while the campaign can still dial or one of its calls is live: cancel it
    first, then retry once its live calls have ended. Finished campaigns are also deleted by
    themselves DIALER_RETENTION_DAYS after they finish.
    """
    purged = await stored(
        request,
        retention.purge,
        inp.path.id,
        missing="no such campaign",
        conflict=retention.PurgeRefused,
    )
    return reply(CampaignPurged.model_validate(purged.to_dict()))


@ACCOUNT.route(
    "GET", "/webhook-key", responses={200: Reply("the account's webhook key", WebhookKeyOut)}
)
async def get_webhook_key(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    """The key that signs this account's webhooks (give it to their receiver)"""
    account: Account = inp.scoped
    return reply(WebhookKeyOut(sid=account.sid, webhook_key=account.webhook_key))


@ACCOUNT.route(
    "POST", "/webhook-key/rotate", responses={200: Reply("the new webhook key", WebhookKeyOut)}
)
async def rotate_webhook_key(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    """Replace the account's webhook key; deliveries are signed with the new one at once"""
    sid = inp.path.sid
    fresh = await stored(
        request, accounts.rotate_webhook_key, sid, _keyring(request), missing="no such account"
    )
    return reply(WebhookKeyOut(sid=sid, webhook_key=fresh))


@KEYS.route(
    "POST",
    body={JSON: KeyIn},
    responses={
        201: Reply(
            "the key and its record",
            KeyCreated,
            links={"RevokeKey": Link("revokeKey", {"key_id": "$response.body#/id"})},
        ),
    },
)
async def create_key(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    """Create an API key scoped to accounts, or an admin key (admin only)

    The key is in this answer only; Redis keeps its SHA-256 hash.
    """
    body: KeyIn = inp.body
    key, record = await stored(
        request,
        lambda r: apikeys.create_key(r, body.accounts, admin=body.admin, label=body.label),
    )
    return reply(KeyCreated.model_validate({**record, "key": key}), status=201)


@KEYS.route("GET", responses={200: Reply("the keys", KeyList)})
async def list_keys(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    """Every API key's id, scope and label; never the keys (admin only)"""
    found = await stored(request, apikeys.list_keys)
    return reply(KeyList(keys=[KeyOut.model_validate(k) for k in found]))


@KEYS.route(
    "DELETE",
    "/{key_id}",
    path_params=KeyPath,
    responses={200: Reply("revoked", KeyRevoked), 404: Reply("no such key", Problem)},
)
async def revoke_key(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    """Revoke an API key: requests with it get 401 from now on (admin only)"""
    key_id = inp.path.key_id
    if not await stored(request, apikeys.revoke_key, key_id):
        return problem(404, "no such key")
    return reply(KeyRevoked(id=key_id, revoked=True))


@API.route(
    "GET",
    "/v1/openapi.json",
    auth=False,
    responses={
        200: Reply("the OpenAPI 3.1 document", None, media={JSON: Text({"type": "object"})})
    },
)
async def openapi(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    """This document"""
    doc = API.document()
    # The api_url rule depends on this deployment's egress allow-list: say it here.
    pattern = api_url_pattern(request.app[appkeys.SETTINGS].egress_policy)
    for name in ("AccountIn", "AccountReplace", "AccountPatch"):
        prop = doc["components"]["schemas"][name]["properties"]["api_url"]
        for branch in prop.get("anyOf", [prop]):
            if branch.get("type") == "string":
                branch["pattern"] = pattern
    return web.json_response(doc)


def _anycase(text: str) -> str:
    # JSON Schema patterns (ECMA-262) have no inline (?i); host names are case-blind
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in text)


def api_url_pattern(policy: EgressPolicy) -> str:
    """The ``api_url`` values ``refuse_api_url`` lets through, as a pattern.

    Exotel's hosts over https, allow-listed host names and single addresses,
    and the environment's own (trusted) origins. An allow-listed network wider
    than one address cannot be spelt here; the server still accepts it.
    """
    port = "(:[1-9][0-9]{0,3})?"
    https, http, either = _anycase("https://"), _anycase("http://"), "[hH][tT][tT][pP][sS]?://"
    alts = [f"{https}{_anycase(h)}\\.?(:443)?" for h in sorted(EXOTEL_API_HOSTS)]
    alts += [f"{either}{_anycase(h)}\\.?{port}" for h in sorted(policy.allow_hosts)]
    for net in policy.allow_networks:
        if net.num_addresses == 1:
            host = str(net.network_address)
            alts.append(f"{either}{re.escape(host if net.version == 4 else f'[{host}]')}{port}")
    for host, p in sorted(policy.trusted):
        alts.append(f"{either}{_anycase(host)}:{p}")
        alts.append(f"{https if p == 443 else http}{_anycase(host)}")
    return f"^({'|'.join(alts)})(/[A-Za-z0-9._~-]*)*$"


GAUGES_TTL_S = 10.0


async def render_metrics(app: web.Application) -> web.Response:
    """``/metrics``, served on the internal port only (dialer.platform.scrape), not a REST route.

    Cheap per scrape: the per-account gauges are refreshed at most every
    ``GAUGES_TTL_S`` (a scrape in between reuses them), and a refresh is three
    pipelined round trips however many accounts and campaigns there are.
    """
    m = app[appkeys.METRICS]
    now = time.monotonic()
    if now - m.gauges_at >= GAUGES_TTL_S:
        m.gauges_at = now
        await refresh_gauges(app[appkeys.AREDIS], m)
    return web.Response(
        body=generate_latest(m.registry), headers={"Content-Type": "text/plain; version=0.0.4"}
    )


async def refresh_gauges(r: Any, m: Any) -> None:
    sids = sorted(await r.smembers(keys.ACCOUNTS))
    async with r.pipeline(transaction=False) as pipe:
        for sid in sids:
            pipe.zcard(keys.active(sid))
            pipe.hget(keys.account(sid), "max_concurrent")
            pipe.smembers(keys.running(sid))
        first = await pipe.execute()
    running: list[tuple[str, list[str]]] = []
    for i, sid in enumerate(sids):
        active, limit, cids = first[3 * i : 3 * i + 3]
        m.slots.labels(account=sid).set(active)
        m.limit.labels(account=sid).set(int(limit or 0))
        running.append((sid, sorted(cids)))
    async with r.pipeline(transaction=False) as pipe:
        for sid, cids in running:
            for cid in cids:
                pipe.zcard(keys.queue(sid, cid))
                pipe.zcard(keys.delayed(sid, cid))
        depths = iter(await pipe.execute())
    for sid, cids in running:
        m.queued.labels(account=sid).set(sum(next(depths) + next(depths) for _ in cids))


def add_routes(app: web.Application) -> None:
    API.install(app)
