"""The public REST API (``/v1/...``), served by the receiver.

Handlers validate with pydantic (422 bodies name each field), then run the
blocking campaign functions in the receiver's thread pool. The OpenAPI
document (``dialer.receiver.openapi``) describes exactly these routes; a test
checks that every route is in it.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time
from typing import Any, Literal

import pydantic
from aiohttp import web
from prometheus_client import generate_latest
from pydantic import BaseModel, ConfigDict, Field, model_validator

from dialer import callerids, campaigns, egress, keys
from dialer.accounts import load_account, make_account, save_account
from dialer.contacts import decode_text, parse_list
from dialer.errors import ValidationError
from dialer.receiver.app import (
    AREDIS,
    METRICS,
    PROBE_DEADLINE_S,
    PROBE_SLOTS,
    PROBES,
    RUNTIME,
    SETTINGS,
    in_thread,
    send_task,
)
from dialer.receiver.openapi import document


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sid: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    api_key: str = Field(min_length=1, max_length=200)
    api_token: str = Field(min_length=1, max_length=200)
    caller_id: str = Field(min_length=1, max_length=32)
    caller_ids: list[str] = Field(
        default_factory=list,
        max_length=500,
        description="ExoPhone pool rotated least recently used first",
    )
    region: Literal["sg", "in"] | None = None
    api_url: pydantic.HttpUrl | None = None
    max_concurrent_calls: int = Field(default=10, ge=1, le=100_000)
    calls_per_minute: int = Field(default=200, ge=1, le=100_000)

    @model_validator(mode="after")
    def _one_base(self) -> AccountIn:
        if self.region and self.api_url:
            raise ValueError("give either region or api_url, not both")
        if self.api_url and (self.api_url.username or self.api_url.password):
            # it would be stored and shown back: credentials go in api_key/api_token
            raise ValueError("api_url must not carry credentials (user:pass@)")
        return self


def problem(status: int, error: str, detail: list[dict[str, Any]] | None = None) -> web.Response:
    return web.json_response({"error": error, "detail": detail or []}, status=status)


def from_pydantic(exc: pydantic.ValidationError) -> web.Response:
    detail = [
        {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
        for e in exc.errors()
    ]
    return problem(422, "invalid request", detail)


async def json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except (ValueError, RecursionError, LookupError):
        raise web.HTTPBadRequest(
            text='{"error": "body is not valid JSON"}', content_type="application/json"
        ) from None


def refuse_api_url(app: web.Application, api_url: object) -> web.Response | None:
    """An API-supplied ``api_url`` must be Exotel's (or allow-listed): egress policy."""
    if api_url is None or egress.is_exotel_url(str(api_url), app[SETTINGS].egress_policy):
        return None
    hosts = ", ".join(sorted(egress.EXOTEL_API_HOSTS))
    message = f"must be an Exotel API URL (https://{{{hosts}}}) unless DIALER_EGRESS_ALLOW names it"
    return problem(422, "invalid request", [{"field": "api_url", "message": message}])


async def put_account(request: web.Request) -> web.Response:
    try:
        body = AccountIn.model_validate(await json_body(request))
    except pydantic.ValidationError as exc:
        return from_pydantic(exc)
    refused = refuse_api_url(request.app, body.api_url)
    if refused is not None:
        return refused
    account = make_account(
        body.sid,
        body.api_key,
        body.api_token,
        body.caller_id,
        region=body.region,
        api_url=str(body.api_url) if body.api_url else None,
        max_concurrent_calls=body.max_concurrent_calls,
        calls_per_minute=body.calls_per_minute,
        caller_ids=body.caller_ids,
    )
    rt = request.app[RUNTIME]
    await in_thread(request.app, save_account, rt.r, account)
    await send_task(request.app, "dialer.admit", account.sid)  # a raised limit applies now
    return web.json_response(account.public())


async def get_account(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    account = await in_thread(request.app, load_account, rt.r, request.match_info["sid"])
    if account is None:
        return problem(404, "no such account")
    pool = await in_thread(request.app, callerids.pool_report, rt.r, account.sid)
    dnc = await request.app[AREDIS].scard(keys.dnc(account.sid))
    return web.json_response({**account.public(), "caller_id_pool": pool, "dnc_count": dnc})


class DncIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    numbers: list[str] = Field(min_length=1, max_length=100_000)
    default_region: str | None = Field(default=None, min_length=2, max_length=2)


async def add_dnc(request: web.Request) -> web.Response:
    """Add numbers to the account's do-not-call list; bad ones are reported by index."""
    sid = request.match_info["sid"]
    rt = request.app[RUNTIME]
    if await in_thread(request.app, load_account, rt.r, sid) is None:
        return problem(404, "no such account")
    try:
        body = DncIn.model_validate(await json_body(request))
    except pydantic.ValidationError as exc:
        return from_pydantic(exc)
    region = body.default_region or request.app[SETTINGS].DIALER_DEFAULT_REGION
    ingest = parse_list([{"to": n} for n in body.numbers], region)
    numbers = [c.to for c in ingest.contacts]
    if numbers:
        await request.app[AREDIS].sadd(keys.dnc(sid), *numbers)
    return web.json_response(
        {
            "added": len(numbers),
            "rejected": ingest.rejected,
            "count": await request.app[AREDIS].scard(keys.dnc(sid)),
        }
    )


async def resume_account(request: web.Request) -> web.Response:
    from dialer.accounts import close_circuit

    rt = request.app[RUNTIME]
    sid = request.match_info["sid"]
    account = await in_thread(request.app, load_account, rt.r, sid)
    if account is None:
        return problem(404, "no such account")
    await in_thread(request.app, close_circuit, rt.r, sid)
    await send_task(request.app, "dialer.admit", sid)
    return web.json_response({"sid": sid, "circuit": "closed"})


async def post_campaign(request: web.Request) -> web.Response:
    app = request.app
    dry_run = request.query.get("dry_run", "") in ("1", "true", "yes")
    if request.content_type in ("text/csv", "text/plain"):
        payload: Any = {k: v for k, v in request.query.items() if k != "dry_run"}
        payload["csv"] = decode_text(await request.read())
    else:
        payload = await json_body(request)
    try:
        spec = campaigns.CampaignIn.model_validate(payload)
    except pydantic.ValidationError as exc:
        return from_pydantic(exc)
    s = app[SETTINGS]
    try:
        result = await in_thread(
            app,
            lambda: campaigns.create_campaign(
                app[RUNTIME].r,
                spec,
                default_region=s.DIALER_DEFAULT_REGION,
                lease_margin_s=s.DIALER_LEASE_MARGIN_S,
                dry_run=dry_run,
            ),
        )
    except ValidationError as exc:
        return problem(
            422, str(exc), [{"field": exc.field or "body", "message": str(exc), "line": exc.line}]
        )
    if dry_run:
        if spec.webhook_url:
            ok, note = await probe_webhook(app, str(spec.webhook_url))
            result["preflight"].update(webhook_reachable=ok, webhook_note=note)
        return web.json_response(result)
    await send_task(app, "dialer.admit", spec.account)
    return web.json_response(result, status=201)


async def probe_webhook(app: web.Application, url: str) -> tuple[bool, str]:
    """On the event loop, bounded in time and in number: never the thread pool."""
    slots = app[PROBE_SLOTS]
    try:
        await asyncio.wait_for(slots.acquire(), PROBE_DEADLINE_S)
    except TimeoutError:
        return False, "not checked: too many checks in progress"
    try:
        return await asyncio.wait_for(egress.probe(app[PROBES], url), PROBE_DEADLINE_S + 1)
    except TimeoutError:
        return False, "no answer in time"
    finally:
        slots.release()


async def get_campaign(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    found = await in_thread(request.app, campaigns.status, rt.r, request.match_info["id"])
    if found is None:
        return problem(404, "no such campaign")
    return web.json_response(found)


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
]


async def get_calls(request: web.Request) -> web.StreamResponse:
    app = request.app
    cid = request.match_info["id"]
    rt = app[RUNTIME]
    meta = await in_thread(app, campaigns.status, rt.r, cid)
    if meta is None:
        return problem(404, "no such campaign")
    try:
        offset = max(0, int(request.query.get("offset", 0)))
        limit = min(1000, max(1, int(request.query.get("limit", 100))))
    except ValueError:
        return problem(422, "offset and limit must be integers")
    if request.query.get("format") == "csv":
        rows = await in_thread(app, lambda: list(campaigns.iter_results(rt.r, cid)))
        return web.Response(text=results_csv(rows), content_type="text/csv")
    rows = await in_thread(app, lambda: list(campaigns.iter_results(rt.r, cid, offset, limit)))
    nxt = offset + len(rows)
    return web.json_response(
        {
            "calls": rows,
            "offset": offset,
            "limit": limit,
            "total": meta["total"],
            "next_offset": nxt if nxt < meta["total"] else None,
        }
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
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(CSV_COLUMNS)
    for row in rows:
        last = row["attempts"][-1] if row["attempts"] else {}
        answers = ";".join(f"{k}={v}" for k, v in sorted(row["answers"].items()))
        w.writerow(
            csv_cell(v)
            for v in [
                row["id"],
                row["to"],
                row["state"],
                row["outcome"] or "",
                len(row["attempts"]),
                last.get("exotel_sid") or "",
                last.get("duration_s") or "",
                answers,
                row["reason"] or "",
            ]
        )
    return out.getvalue()


async def campaign_action(request: web.Request) -> web.Response:
    app = request.app
    cid = request.match_info["id"]
    action = request.path.rsplit("/", 1)[-1]
    rt = app[RUNTIME]
    try:
        result = await in_thread(app, campaigns.set_state, rt.r, cid, action)
    except ValidationError as exc:
        return problem(409, str(exc))
    if result is None:
        return problem(404, "no such campaign")
    if action == "cancel":
        await send_task(app, "dialer.cancel_campaign", cid)
    elif action == "resume":
        await send_task(app, "dialer.admit", result["account"])
    return web.json_response(result)


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document())


async def render_metrics(app: web.Application) -> web.Response:
    """``/metrics`` (served on the internal port, dialer.scrape).

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


GAUGES_TTL_S = 10.0


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
    app.router.add_post("/v1/accounts", put_account)
    app.router.add_get("/v1/accounts/{sid}", get_account)
    app.router.add_post("/v1/accounts/{sid}/resume", resume_account)
    app.router.add_post("/v1/accounts/{sid}/dnc", add_dnc)
    app.router.add_post("/v1/campaigns", post_campaign)
    app.router.add_get("/v1/campaigns/{id}", get_campaign)
    app.router.add_get("/v1/campaigns/{id}/calls", get_calls)
    for action in ("pause", "resume", "cancel"):
        app.router.add_post(f"/v1/campaigns/{{id}}/{action}", campaign_action)
    app.router.add_get("/v1/openapi.json", openapi)
