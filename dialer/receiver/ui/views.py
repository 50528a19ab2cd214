"""The dashboard's HTTP side: pages, sign-in, and live read-only views (SSE).

Every action (pause, resume, cancel, submit, DNC import, circuit resume) is
the REST API's own route, called by the page with the session cookie and the
CSRF token (``dialer.receiver.app.caller_scope``): one implementation each.
What lives here is only what the REST API has no route for: sign-in and out,
the pages and their files, and the read-only aggregates the charts draw,
pushed by server-sent events. ``/ui/api/*`` is authenticated (and scoped) by
the receiver's auth middleware like ``/v1``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import redis
from aiohttp import web

from dialer.platform import serving
from dialer.receiver.api import campaign_in_scope, scope  # the REST API's scoping
from dialer.receiver.app import scope_of_key, session_scope
from dialer.receiver.appkeys import AREDIS, RUNTIME, SETTINGS, in_thread
from dialer.receiver.openapi import problem  # the REST API's error body
from dialer.receiver.ui import charts, pages, sessions
from dialer.services import queries
from dialer.services.accounts import load_account
from dialer.store import apikeys, keys

log = logging.getLogger(__name__)

#: no inline script or style anywhere: every script and sheet is a file of ours
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
#: the pages behind a session, by path (``pages`` assembles each by name)
PAGES = {
    "/ui/": "campaigns",
    "/ui/campaign": "campaign",
    "/ui/new": "new",
    "/ui/accounts": "accounts",
}
SIGNIN = "/ui/signin"
TYPES = {".js": "text/javascript", ".css": "text/css"}
TICK_S = 1.0
KEEPALIVE_S = 15.0
MAX_CONTACTS_PAGE = 200
CHARTS_REFRESH_S = 5.0

#: every route but the pages is declared on its handler
ROUTES = web.RouteTableDef()


@functools.cache
def _static() -> dict[str, bytes]:
    """Every file the dashboard serves, read once: no path from a request reaches the disk."""
    root = resources.files("dialer.receiver.ui").joinpath("static")
    return {
        f.name: f.read_bytes()
        for f in root.iterdir()
        if f.is_file() and any(f.name.endswith(ext) for ext in TYPES)
    }


def _file(name: str) -> web.Response:
    body = _static().get(name)
    if body is None:
        raise web.HTTPNotFound()
    ext = name[name.rindex(".") :]
    return web.Response(body=body, content_type=TYPES[ext], charset="utf-8")


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    if not request.path.startswith("/ui"):
        return
    h = response.headers
    h["Content-Security-Policy"] = CSP
    h["X-Content-Type-Options"] = "nosniff"
    h["Referrer-Policy"] = "no-referrer"
    h["X-Frame-Options"] = "DENY"
    h.setdefault("Cache-Control", "no-store")


def _page(name: str) -> web.Response:
    return web.Response(body=pages.render(name), content_type="text/html", charset="utf-8")


async def page(request: web.Request) -> web.StreamResponse:
    if await session_scope(request) is None:
        raise web.HTTPSeeOther(SIGNIN)
    return _page(PAGES[request.path])


@ROUTES.get(SIGNIN)
async def signin_page(request: web.Request) -> web.StreamResponse:
    return _page("signin")


@ROUTES.get("/ui/static/{name}")
async def static(request: web.Request) -> web.StreamResponse:
    return _file(request.match_info["name"])


def _same_origin(request: web.Request) -> bool:
    """A browser names the page's origin on a POST: it must be this very host."""
    origin = request.headers.get("Origin")
    return origin is None or origin == f"{request.scheme}://{request.host}"


@ROUTES.post("/ui/session")
async def sign_in(request: web.Request) -> web.Response:
    if not _same_origin(request):
        return problem(403, "cross-origin sign-in refused")
    try:
        given = (await request.json())["key"]
    except (ValueError, KeyError, TypeError):
        return problem(400, 'give {"key": "..."}')
    found = await scope_of_key(request.app, given) if isinstance(given, str) and given else None
    if found is None:
        return problem(401, "wrong API key")
    s = request.app[SETTINGS]
    value = sessions.issue(s.keyring.session, found.key_id, apikeys.digest(given), now=time.time())
    resp = web.json_response({"ok": True})
    resp.set_cookie(
        sessions.COOKIE,
        value,
        max_age=sessions.LIFETIME_S,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,  # plain http on loopback (dialer up) cannot keep a Secure cookie
    )
    return resp


@ROUTES.post("/ui/api/signout")
async def sign_out(request: web.Request) -> web.Response:
    resp = web.json_response({"ok": True})
    resp.del_cookie(sessions.COOKIE, path="/")
    return resp


async def visible_accounts(request: web.Request) -> list[str]:
    who = scope(request)
    if not who.admin:
        return sorted(who.accounts)
    return sorted(str(a) for a in await request.app[AREDIS].smembers(keys.ACCOUNTS))


@ROUTES.get("/ui/api/me")
async def me(request: web.Request) -> web.Response:
    who = scope(request)
    s = request.app[SETTINGS]
    cookie = request.cookies.get(sessions.COOKIE, "")
    return web.json_response(
        {
            "key_id": who.key_id,
            "admin": who.admin,
            "accounts": await visible_accounts(request),
            "csrf": sessions.csrf_token(s.keyring.session, cookie) if cookie else "",
        }
    )


async def _campaign_of(request: web.Request) -> str:
    cid = request.match_info["id"]
    if not await campaign_in_scope(request, cid):
        raise web.HTTPNotFound()  # out of scope answers exactly like missing
    return cid


@ROUTES.get("/ui/api/campaigns/{id}/contacts")
async def contacts(request: web.Request) -> web.Response:
    """One page of the contact table, searched and filtered on the server."""
    cid = await _campaign_of(request)
    q = request.query
    text, outcome = q.get("q", "")[:100], q.get("outcome", "")[:30]
    try:
        offset = max(0, int(q.get("offset", "0")))
        limit = min(MAX_CONTACTS_PAGE, max(1, int(q.get("limit", "25"))))
    except ValueError:
        raise web.HTTPBadRequest() from None
    r = request.app[RUNTIME].r

    def page_of() -> tuple[int, list[dict[str, Any]]]:
        hits = [row for row in queries.iter_results(r, cid) if charts.matches(row, text, outcome)]
        return len(hits), hits[offset : offset + limit]

    total, rows = await in_thread(request.app, page_of)
    return web.json_response({"total": total, "offset": offset, "limit": limit, "calls": rows})


async def _stream(
    request: web.Request, produce: Callable[[], Awaitable[dict[str, Any] | None]]
) -> web.StreamResponse:
    """Server-sent events: the view again whenever it changes; ends when the receiver drains."""
    resp = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    await resp.prepare(request)
    loop = asyncio.get_running_loop()
    last, sent_at = "", loop.time()
    try:
        while not serving.draining(request.app):
            view = await produce()
            if view is None:
                await resp.write(b"event: gone\ndata: {}\n\n")
                break
            text = json.dumps(view, sort_keys=True, separators=(",", ":"))
            if text != last:
                await resp.write(f"data: {text}\n\n".encode())
                last, sent_at = text, loop.time()
            elif loop.time() - sent_at > KEEPALIVE_S:
                await resp.write(b": keepalive\n\n")
                sent_at = loop.time()
            await asyncio.sleep(TICK_S)
    except ConnectionResetError:
        pass  # the page went away
    except redis.RedisError as exc:
        log.warning("dashboard stream ended: %s", type(exc).__name__)  # the page reconnects
    return resp


@ROUTES.get("/ui/api/campaigns/{id}/events")
async def campaign_events(request: web.Request) -> web.StreamResponse:
    cid = await _campaign_of(request)
    app = request.app
    r = app[RUNTIME].r
    cache: dict[str, Any] = {"key": None, "charts": None, "at": 0.0}

    async def produce() -> dict[str, Any] | None:
        status = await in_thread(app, queries.status, r, cid)
        if status is None:
            return None
        now = time.time()
        # the charts read every contact: again when a counter moved, else now and then
        # (an answer can land after the call's last state change)
        key = json.dumps([status["counts"], status["state"]], sort_keys=True)
        if key != cache["key"] or now - cache["at"] > CHARTS_REFRESH_S:
            rows = await in_thread(app, lambda: list(queries.iter_results(r, cid)))
            cache["charts"] = charts.summarize(rows, created_at=status["created_at"], now=now)
            cache["key"], cache["at"] = key, now
        account = status["account"]
        ar = app[AREDIS]
        active = await ar.zcard(keys.active(account))
        limit = await ar.hget(keys.account(account), "max_concurrent")
        return {
            "status": status,
            "charts": cache["charts"],
            "eta_s": charts.eta_s(status["total"], status["finished"], status["created_at"], now),
            "gauge": {"active": int(active), "limit": int(limit or 0)},
        }

    return await _stream(request, produce)


@ROUTES.get("/ui/api/campaigns/events")
async def campaigns_events(request: web.Request) -> web.StreamResponse:
    app = request.app
    who = scope(request)
    state = request.query.get("state") or None
    account = request.query.get("account") or None
    r = app[RUNTIME].r

    async def produce() -> dict[str, Any]:
        total, rows = await in_thread(
            app,
            lambda: queries.list_campaigns(
                r,
                limit=200,
                state=state,
                account=account,
                allowed=None if who.admin else who.accounts,
            ),
        )
        now = time.time()
        for row in rows:
            row["eta_s"] = charts.eta_s(row["total"], row["finished"], row["created_at"], now)
        return {"total": total, "campaigns": rows}

    return await _stream(request, produce)


@ROUTES.get("/ui/api/accounts/events")
async def accounts_events(request: web.Request) -> web.StreamResponse:
    app = request.app
    sids = await visible_accounts(request)
    rt = app[RUNTIME]

    async def produce() -> dict[str, Any]:
        now = time.time()
        found = []
        ar = app[AREDIS]
        for sid in sids:
            account = await in_thread(app, load_account, rt.r, sid, rt.settings.keyring)
            if account is None:
                continue
            async with ar.pipeline(transaction=False) as pipe:
                pipe.zcard(keys.active(sid))
                pipe.zcount(keys.rate(sid), now - 60, "+inf")
                pipe.scard(keys.dnc(sid))
                active, used, dnc = await pipe.execute()
            found.append(
                {
                    **account.public(),
                    "active": int(active),
                    "requests_last_minute": int(used),
                    "dnc_count": int(dnc),
                }
            )
        return {"accounts": found}

    return await _stream(request, produce)


@ROUTES.get("/ui")
async def to_index(request: web.Request) -> web.StreamResponse:
    # a coroutine function, not a lambda returning one: aiohttp deprecates bare handlers
    raise web.HTTPSeeOther("/ui/")


def add_routes(app: web.Application) -> None:
    for name in [*PAGES.values(), "signin"]:
        pages.render(name)  # a broken template fails the start, not a visitor's request
    app.on_response_prepare.append(security_headers)
    app.router.add_routes(ROUTES)
    app.router.add_routes([web.get(path, page) for path in PAGES])
