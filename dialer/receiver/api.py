"""The public REST API (``/v1/...``), served by the receiver.

Every route is declared through ``API.route`` (``dialer.receiver.openapi``)
with the models of ``dialer.receiver.models``: the wrapper hands each handler
its validated input, the handler answers through a response model, and the
OpenAPI document is rendered from the same declarations. Blocking campaign
functions run in the receiver's thread pool.

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
from typing import Any

import pydantic
from aiohttp import web
from prometheus_client import generate_latest

from dialer.core import campaign
from dialer.core.contacts import parse_list, var_columns
from dialer.core.egress import EXOTEL_API_HOSTS, EgressPolicy, is_exotel_url
from dialer.core.errors import ValidationError
from dialer.core.surveys import SurveyPathRefused
from dialer.net.egress import probe
from dialer.receiver.appkeys import (
    AREDIS,
    METRICS,
    PROBE_DEADLINE_S,
    PROBE_SLOTS,
    PROBES,
    RUNTIME,
    SCOPE,
    SETTINGS,
    in_thread,
    send_task,
)
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
    Reply,
    Text,
    problem,
    pydantic_detail,
    reply,
)
from dialer.services import control, ingest, queries
from dialer.services.accounts import (
    Account,
    close_circuit,
    load_account,
    make_account,
    rotate_webhook_key,
    save_account,
    update_account,
)
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
    found: apikeys.Scope = request[SCOPE]
    return found


async def campaign_in_scope(request: web.Request, cid: str) -> bool:
    """True if the campaign exists and its account is in the caller's scope."""
    account = await request.app[AREDIS].hget(keys.CAMPAIGNS, cid)
    return account is not None and scope(request).allows(str(account))


async def account_in_scope(request: web.Request, sid: str) -> Account | None:
    """The account if it exists and the caller may see it; None for both other cases."""
    if not scope(request).allows(sid):
        return None
    rt = request.app[RUNTIME]
    found: Account | None = await in_thread(
        request.app, load_account, rt.r, sid, rt.settings.keyring
    )
    return found


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


#: Whose a route is (``API.route(scope=...)``); every keyed route names one.
ANY_KEY = Access("any key; the handler narrows to the key's accounts", _any_key)
ADMIN = Access("an admin key", _admin, {403: ADMIN_ONLY})
BY_ACCOUNT = Access("the account {sid}", _account_of_path, {404: NO_ACCOUNT})
BY_CAMPAIGN = Access("the account of the campaign {id}", _campaign_of_path, {404: NO_CAMPAIGN})


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


def refuse_api_url(app: web.Application, api_url: object) -> web.Response | None:
    """An API-supplied ``api_url`` must be Exotel's (or allow-listed): egress policy."""
    if api_url is None or is_exotel_url(str(api_url), app[SETTINGS].egress_policy):
        return None
    hosts = ", ".join(sorted(EXOTEL_API_HOSTS))
    message = f"must be an Exotel API URL (https://{{{hosts}}}) unless DIALER_EGRESS_ALLOW names it"
    return problem(422, "invalid request", [{"field": "api_url", "message": message}])


async def probe_webhook(app: web.Application, url: str) -> tuple[bool, str]:
    """On the event loop, bounded in time and in number: never the thread pool."""
    slots = app[PROBE_SLOTS]
    try:
        await asyncio.wait_for(slots.acquire(), PROBE_DEADLINE_S)
    except TimeoutError:
        return False, "not checked: too many checks in progress"
    try:
        return await asyncio.wait_for(probe(app[PROBES], url), PROBE_DEADLINE_S + 1)
    except TimeoutError:
        return False, "no answer in time"
    finally:
        slots.release()


def _make(sid: str, body: AccountIn | AccountReplace) -> Account:
    return make_account(
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


@API.route(
    "POST",
    "/v1/accounts",
    operation_id="registerAccount",
    summary="Register an Exotel account, or update the fields named of an existing one",
    description="Create: omitted optional fields take their defaults. For a sid that exists, "
    "only the fields in the body change (a re-post without `api_url` keeps the stored one); "
    "use PUT to replace an account whole.",
    tags=("accounts",),
    body={JSON: AccountIn},
    responses={
        200: Reply("the account (never its token)", AccountOut, links=ACCOUNT_LINKS),
    },
    scope=ADMIN,
)
async def post_account(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    body: AccountIn = inp.body
    if (refused := refuse_api_url(request.app, body.api_url)) is not None:
        return refused
    rt = request.app[RUNTIME]
    r, keyring = rt.r, rt.settings.keyring
    changes = _named(body, "sid")
    updated = await in_thread(request.app, update_account, r, body.sid, changes, keyring)
    if updated is None:
        await in_thread(request.app, save_account, r, _make(body.sid, body), keyring)
    return await _after_account_change(request, body.sid)


@API.route(
    "PUT",
    "/v1/accounts/{sid}",
    operation_id="replaceAccount",
    summary="Create or replace an account whole (omitted optional fields take their defaults)",
    tags=("accounts",),
    path_params=SidPath,
    body={JSON: AccountReplace},
    responses={
        200: Reply("replaced", AccountOut, links=ACCOUNT_LINKS),
        201: Reply("created", AccountOut, links=ACCOUNT_LINKS),
    },
    scope=ADMIN,
)
async def put_account(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    sid = inp.path.sid
    if (refused := refuse_api_url(request.app, inp.body.api_url)) is not None:
        return refused
    rt = request.app[RUNTIME]
    existed = await request.app[AREDIS].exists(keys.account(sid)) > 0
    await in_thread(request.app, save_account, rt.r, _make(sid, inp.body), rt.settings.keyring)
    resp = await _after_account_change(request, sid)
    resp.set_status(200 if existed else 201)
    return resp


@API.route(
    "PATCH",
    "/v1/accounts/{sid}",
    operation_id="patchAccount",
    summary="Change only the fields named; every other field keeps its value",
    tags=("accounts",),
    path_params=SidPath,
    body={JSON: AccountPatch},
    responses={200: Reply("the updated account", AccountOut), 404: NO_ACCOUNT},
    scope=ADMIN,
)
async def patch_account(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    sid = inp.path.sid
    if (refused := refuse_api_url(request.app, inp.body.api_url)) is not None:
        return refused
    rt = request.app[RUNTIME]
    changes = _named(inp.body)
    keyring = rt.settings.keyring
    if await in_thread(request.app, update_account, rt.r, sid, changes, keyring) is None:
        return problem(404, "no such account")
    return await _after_account_change(request, sid)


@API.route(
    "GET",
    "/v1/accounts/{sid}",
    operation_id="getAccount",
    summary="An account (never its token), its caller-ID pool and do-not-call count",
    tags=("accounts",),
    path_params=SidPath,
    responses={200: Reply("the account", AccountDetail)},
    scope=BY_ACCOUNT,
)
async def get_account(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    rt = request.app[RUNTIME]
    account: Account = inp.scoped
    pool = await in_thread(request.app, callerids.pool_report, rt.r, account.sid)
    dnc = await request.app[AREDIS].scard(keys.dnc(account.sid))
    return reply(
        AccountDetail.model_validate({**account.public(), "caller_id_pool": pool, "dnc_count": dnc})
    )


@API.route(
    "POST",
    "/v1/accounts/{sid}/dnc",
    operation_id="addDnc",
    summary="Add numbers to the account's do-not-call list; bad ones are reported by index",
    tags=("accounts",),
    path_params=SidPath,
    body={JSON: DncIn},
    responses={200: Reply("added", DncOut)},
    scope=BY_ACCOUNT,
)
async def add_dnc(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    sid = inp.path.sid
    body: DncIn = inp.body
    region = body.default_region or request.app[SETTINGS].DIALER_DEFAULT_REGION
    parsed = parse_list([{"to": n} for n in body.numbers], region)
    numbers = [c.to for c in parsed.contacts]
    if numbers:
        await request.app[AREDIS].sadd(keys.dnc(sid), *numbers)
    count = await request.app[AREDIS].scard(keys.dnc(sid))
    return reply(
        DncOut.model_validate({"added": len(numbers), "rejected": parsed.rejected, "count": count})
    )


@API.route(
    "POST",
    "/v1/accounts/{sid}/resume",
    operation_id="resumeAccount",
    summary="Close the account's circuit after a 401/402/403 from Exotel",
    tags=("accounts",),
    path_params=SidPath,
    responses={200: Reply("circuit closed", CircuitOut)},
    scope=BY_ACCOUNT,
)
async def resume_account(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    rt = request.app[RUNTIME]
    sid = inp.path.sid
    await in_thread(request.app, close_circuit, rt.r, sid)
    await send_task(request.app, "admit", sid)
    return reply(CircuitOut(sid=sid, circuit="closed"))


CSV_BODY = Text(
    {"type": "string", "description": "CSV with a `to` column; other columns become vars"}
)


@API.route(
    "POST",
    "/v1/campaigns",
    operation_id="createCampaign",
    summary="Create a campaign (JSON body, or a CSV body with the fields as query parameters)",
    description="With a text/csv body, `account` (required) and the other scalar campaign "
    "fields are query parameters; with a JSON body they go in the body and only `dry_run` "
    "is read from the query. Bad rows are reported by line, good rows still go in; a "
    "campaign with no callable row, or for an unregistered account, is a 422.",
    tags=("campaigns",),
    query=CampaignQuery,
    body={JSON: campaign.CampaignIn, "text/csv": CSV_BODY, "text/plain": CSV_BODY},
    responses={
        201: Reply("created and queued", SubmitOut, links=CAMPAIGN_LINKS),
        200: Reply("dry run: validated and estimated, nothing queued", DryRunOut),
    },
    scope=ANY_KEY,  # the body names the account: checked below, answered as a missing one
)
async def post_campaign(request: web.Request, inp: Input[Any, Any]) -> web.Response:
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
    s = app[SETTINGS]
    try:
        result = await in_thread(
            app,
            lambda: ingest.create_campaign(
                app[RUNTIME].r,
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


@API.route(
    "GET",
    "/v1/campaigns",
    operation_id="listCampaigns",
    summary="Campaigns, newest first (paged; filter by state and account)",
    tags=("campaigns",),
    query=CampaignsQuery,
    responses={200: Reply("one page of campaign status objects", CampaignList)},
    scope=ANY_KEY,  # lists only the key's accounts' campaigns
)
async def list_campaigns(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    q: CampaignsQuery = inp.query
    who = scope(request)
    total, rows = await in_thread(
        request.app,
        lambda: queries.list_campaigns(
            request.app[RUNTIME].r,
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


@API.route(
    "GET",
    "/v1/campaigns/{id}",
    operation_id="getCampaign",
    summary="Counters by state and outcome, progress, timing",
    tags=("campaigns",),
    path_params=CampaignPath,
    responses={200: Reply("the status object", CampaignStatus)},
    scope=BY_CAMPAIGN,
)
async def get_campaign(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    rt = request.app[RUNTIME]
    found = await in_thread(request.app, queries.status, rt.r, inp.path.id)
    if found is None:
        return problem(404, "no such campaign")
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


@API.route(
    "GET",
    "/v1/campaigns/{id}/calls",
    operation_id="listCalls",
    summary="Every contact: attempts, Exotel sids, outcome, answers (paged, or CSV)",
    tags=("campaigns",),
    path_params=CampaignPath,
    query=CallsQuery,
    responses={
        200: Reply(
            "a page of results (JSON), or every result (format=csv)",
            CallsPage,
            media={"text/csv": Text({"type": "string"})},
        ),
    },
    scope=BY_CAMPAIGN,
)
async def get_calls(request: web.Request, inp: Input[Any, Any]) -> web.StreamResponse:
    app = request.app
    cid = inp.path.id
    q: CallsQuery = inp.query
    rt = app[RUNTIME]
    meta = await in_thread(app, queries.status, rt.r, cid)
    if meta is None:
        return problem(404, "no such campaign")
    if q.format == "csv":
        rows = await in_thread(app, lambda: list(queries.iter_results(rt.r, cid)))
        return web.Response(text=results_csv(rows), content_type="text/csv")
    rows = await in_thread(app, lambda: list(queries.iter_results(rt.r, cid, q.offset, q.limit)))
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
    @API.route(
        "POST",
        f"/v1/campaigns/{{id}}/{action}",
        operation_id=f"{action}Campaign",
        summary={
            "pause": "Pause: admit no new calls (calls in progress go on)",
            "resume": "Resume a paused campaign",
            "cancel": "Cancel: settle every waiting call; ringing calls are never dropped",
        }[action],
        tags=("campaigns",),
        path_params=CampaignPath,
        responses={
            200: Reply("the campaign's status after the change", CampaignStatus),
            **(
                {409: Reply("the campaign is cancelled; it cannot be paused or resumed", Problem)}
                if action != "cancel"
                else {}
            ),
        },
        scope=BY_CAMPAIGN,
    )
    async def run(request: web.Request, inp: Input[Any, Any]) -> web.Response:
        app = request.app
        cid = inp.path.id
        try:
            result = await in_thread(app, control.set_state, app[RUNTIME].r, cid, action)
        except ValidationError as exc:
            return problem(409, str(exc))
        if result is None:
            return problem(404, "no such campaign")
        if action == "cancel":
            await send_task(app, "cancel_campaign", cid)
        elif action == "resume":
            await send_task(app, "admit", result["account"])
        return reply(CampaignStatus.model_validate(result))


for _action in ("pause", "resume", "cancel"):
    _campaign_action(_action)


@API.route(
    "DELETE",
    "/v1/campaigns/{id}",
    operation_id="deleteCampaign",
    summary="Purge a finished or cancelled campaign now: calls, answers, recordings' URLs, "
    "raw callbacks",
    description="Refused (409) while the campaign can still dial or one of its calls is "
    "live: cancel it first, then retry once its live calls have ended. Finished campaigns "
    "are also deleted by themselves DIALER_RETENTION_DAYS after they finish.",
    tags=("campaigns",),
    path_params=CampaignPath,
    responses={
        200: Reply("what was deleted", CampaignPurged),
        409: Reply("the campaign can still dial or a call is live; cancel it first", Problem),
    },
    scope=BY_CAMPAIGN,
)
async def delete_campaign(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    app = request.app
    try:
        purged = await in_thread(app, retention.purge, app[RUNTIME].r, inp.path.id)
    except retention.PurgeRefused as exc:
        return problem(409, str(exc))
    if purged is None:
        return problem(404, "no such campaign")
    return reply(CampaignPurged.model_validate(purged.to_dict()))


@API.route(
    "GET",
    "/v1/accounts/{sid}/webhook-key",
    operation_id="getWebhookKey",
    summary="The key that signs this account's webhooks (give it to their receiver)",
    tags=("accounts",),
    path_params=SidPath,
    responses={200: Reply("the account's webhook key", WebhookKeyOut)},
    scope=BY_ACCOUNT,
)
async def get_webhook_key(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    account: Account = inp.scoped
    return reply(WebhookKeyOut(sid=account.sid, webhook_key=account.webhook_key))


@API.route(
    "POST",
    "/v1/accounts/{sid}/webhook-key/rotate",
    operation_id="rotateWebhookKey",
    summary="Replace the account's webhook key; deliveries are signed with the new one at once",
    tags=("accounts",),
    path_params=SidPath,
    responses={200: Reply("the new webhook key", WebhookKeyOut)},
    scope=BY_ACCOUNT,
)
async def rotate_webhook(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    sid = inp.path.sid
    rt = request.app[RUNTIME]
    fresh = await in_thread(request.app, rotate_webhook_key, rt.r, sid, rt.settings.keyring)
    if fresh is None:
        return problem(404, "no such account")
    return reply(WebhookKeyOut(sid=sid, webhook_key=fresh))


@API.route(
    "POST",
    "/v1/keys",
    operation_id="createKey",
    summary="Create an API key scoped to accounts, or an admin key (admin only)",
    description="The key is in this answer only; Redis keeps its SHA-256 hash.",
    tags=("keys",),
    body={JSON: KeyIn},
    responses={
        201: Reply(
            "the key and its record",
            KeyCreated,
            links={"RevokeKey": Link("revokeKey", {"key_id": "$response.body#/id"})},
        ),
    },
    scope=ADMIN,
)
async def post_key(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    body: KeyIn = inp.body
    r = request.app[RUNTIME].r
    key, record = await in_thread(
        request.app,
        lambda: apikeys.create_key(r, body.accounts, admin=body.admin, label=body.label),
    )
    return reply(KeyCreated.model_validate({**record, "key": key}), status=201)


@API.route(
    "GET",
    "/v1/keys",
    operation_id="listKeys",
    summary="Every API key's id, scope and label; never the keys (admin only)",
    tags=("keys",),
    responses={200: Reply("the keys", KeyList)},
    scope=ADMIN,
)
async def get_keys(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    found = await in_thread(request.app, apikeys.list_keys, request.app[RUNTIME].r)
    return reply(KeyList(keys=[KeyOut.model_validate(k) for k in found]))


@API.route(
    "DELETE",
    "/v1/keys/{key_id}",
    operation_id="revokeKey",
    summary="Revoke an API key: requests with it get 401 from now on (admin only)",
    tags=("keys",),
    path_params=KeyPath,
    responses={
        200: Reply("revoked", KeyRevoked),
        404: Reply("no such key", Problem),
    },
    scope=ADMIN,
)
async def delete_key(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    key_id = inp.path.key_id
    if not await in_thread(request.app, apikeys.revoke_key, request.app[RUNTIME].r, key_id):
        return problem(404, "no such key")
    return reply(KeyRevoked(id=key_id, revoked=True))


@API.route(
    "GET",
    "/v1/openapi.json",
    operation_id="openapi",
    summary="This document",
    auth=False,
    responses={
        200: Reply("the OpenAPI 3.1 document", None, media={JSON: Text({"type": "object"})})
    },
)
async def openapi(request: web.Request, inp: Input[Any, Any]) -> web.Response:
    doc = API.document()
    # The api_url rule depends on this deployment's egress allow-list: say it here.
    pattern = api_url_pattern(request.app[SETTINGS].egress_policy)
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
    m = app[METRICS]
    now = time.monotonic()
    if now - m.gauges_at >= GAUGES_TTL_S:
        m.gauges_at = now
        await refresh_gauges(app[AREDIS], m)
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
