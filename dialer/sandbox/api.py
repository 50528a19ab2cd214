"""Exotel's HTTP API as the sandbox serves it: connect, call details, bulk list.

Every ``/v1/`` request passes one gate (``exotel_gate``): counted, then
HTTP Basic auth against the account in the path (401 otherwise), then the
account's sliding-window request budget (429 with ``Retry-After``), then the
injected 5xx/429/4xx faults. Handlers then verify, parse, apply, respond.
Connect validates with ``dialer.core.exotel.validate_connect_form``, the
same function the client uses, so both refuse the same input naming the same
field. Errors use Exotel's body ``{"RestException": {Status, Message, Code}}``.
Garbage in gets a 4xx, never a crash.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from aiohttp import hdrs, web

from dialer.core.errors import ValidationError
from dialer.core.exotel import validate_connect_form
from dialer.sandbox.calls import parse_exotel_time
from dialer.sandbox.config import AccountConfig
from dialer.sandbox.keys import ACCOUNT, EXCHANGE, STATE

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 50
DEFAULT_LOOKBACK_S = 31 * 86_400  # bulk listing covers the last 31 days by default


def rest_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {"RestException": {"Status": status, "Message": message, "Code": status}}
    return web.json_response(body, status=status, headers=headers)


def basic_credentials(header: str) -> tuple[str, str] | None:
    """``Basic base64(key:token)`` -> (key, token); None if absent or malformed."""
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    key, sep, token = decoded.partition(":")
    return (key, token) if sep else None


def _authorised(request: web.Request, account: AccountConfig) -> bool:
    creds = basic_credentials(request.headers.get(hdrs.AUTHORIZATION, ""))
    if creds is None:
        return False
    ok_key = hmac.compare_digest(creds[0].encode(), account.api_key.encode())
    ok_token = hmac.compare_digest(creds[1].encode(), account.api_token.encode())
    return ok_key and ok_token


def request_kind(path: str) -> str:
    """connect, list (bulk call details) or details (one call), for the report."""
    tail = path.rstrip("/").rsplit("/", 1)[-1]
    if tail in ("connect", "connect.json"):
        return "connect"
    return "list" if tail in ("Calls", "Calls.json") else "details"


@web.middleware
async def exotel_gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/v1/"):
        return await handler(request)
    state = request.app[STATE]
    state.report.requests_total += 1
    sid = request.match_info.get("sid")
    if sid is None:  # no route matched: let aiohttp say which 4xx, in Exotel's body
        state.report.reject("not_found")
        try:
            return await handler(request)
        except web.HTTPException as exc:
            return rest_error(exc.status, exc.reason)
    account = state.accounts.get(sid)
    if account is None or not _authorised(request, account):
        state.report.reject("auth")
        return rest_error(
            401, "Authentication failed", {"WWW-Authenticate": 'Basic realm="Exotel"'}
        )
    state.report.requests_by_kind[request_kind(request.path)] += 1
    wait_s = state.admit_request(account)
    if wait_s:
        state.report.reject("rate_limit")
        return rest_error(429, "Too many requests", {"Retry-After": str(wait_s)})
    faults = state.faults
    if state.chance(faults.http_5xx):
        state.report.reject("fault_5xx")
        return rest_error(503, "Service temporarily unavailable (injected)")
    if state.chance(faults.http_429):
        state.report.reject("fault_429")
        return rest_error(
            429, "Too many requests (injected)", {"Retry-After": str(faults.retry_after_s)}
        )
    if state.chance(faults.http_4xx):
        state.report.reject("fault_4xx")
        return rest_error(faults.http_4xx_status, "Request refused (injected)")
    request[ACCOUNT] = account
    return await handler(request)


async def connect(request: web.Request) -> web.StreamResponse:
    """``POST /v1/Accounts/{sid}/Calls/connect[.json]``: place one call."""
    state, account = request.app[STATE], request[ACCOUNT]
    try:
        posted = await request.post()
    except web.HTTPException:
        raise
    except Exception:  # malformed multipart and the like: the body is the client's fault
        state.report.reject("validation")
        return rest_error(400, "Body: not a readable form")
    form: dict[str, list[str]] = {}
    for name, value in posted.items():
        if not isinstance(value, str):
            state.report.reject("validation")
            return rest_error(400, f"{name}: must be a plain form field, not a file")
        form.setdefault(name, []).append(value)
    try:
        validate_connect_form(form)
    except ValidationError as exc:
        state.report.reject("validation")
        return rest_error(400, str(exc))
    active = state.report.active_calls(account.sid)
    if active >= account.max_concurrent:
        state.report.reject("concurrency_cap")
        state.report.violation(
            "concurrency_cap", None,
            f"account {account.sid} has {active} calls, max_concurrent {account.max_concurrent}",
        )  # fmt: skip
        retry = str(state.config.concurrency_retry_after_s)
        return rest_error(429, "Concurrent call limit reached", {"Retry-After": retry})
    call = request.app[EXCHANGE].place(account, form)
    body = {"Call": call.to_connect_json()}
    if state.chance(state.faults.accept_timeout):
        state.report.faults_injected["accept_timeout"] += 1
        with contextlib.suppress(TimeoutError):  # answer late (or at shutdown): client gave up
            await asyncio.wait_for(state.closing.wait(), state.faults.timeout_delay_s)
    elif state.chance(state.faults.reset_after_accept):
        state.report.faults_injected["reset_after_accept"] += 1
        if request.transport is not None:
            request.transport.abort()  # the call exists; the client never hears of it
        return web.Response(status=200)
    return web.json_response(body)


async def call_details(request: web.Request) -> web.StreamResponse:
    """``GET /v1/Accounts/{sid}/Calls/{call_sid}.json``."""
    state, account = request.app[STATE], request[ACCOUNT]
    call = state.calls.get(account.sid, request.match_info["call_sid"])
    if call is None:
        return rest_error(404, "Call not found")
    return web.json_response({"Call": call.to_details_json()})


def _date_range(text: str | None) -> tuple[float, float]:
    """``gte:YYYY-MM-DD HH:MM:SS;lte:...`` -> (since, until) epoch; ValueError if malformed."""
    now = time.time()
    since, until = now - DEFAULT_LOOKBACK_S, now
    if not text:
        return since, until
    for part in text.split(";"):
        op, sep, value = part.partition(":")
        if not sep or op.strip() not in ("gte", "lte"):
            raise ValueError(
                "DateCreated: expected gte:YYYY-MM-DD HH:MM:SS;lte:YYYY-MM-DD HH:MM:SS"
            )
        try:
            moment = parse_exotel_time(value)
        except ValueError:
            raise ValueError(
                f"DateCreated: {value.strip()[:40]!r} is not YYYY-MM-DD HH:MM:SS"
            ) from None
        if op.strip() == "gte":
            since = moment
        else:
            until = moment
    return since, until


def _whole(query: dict[str, str], name: str, default: int, high: int) -> int:
    text = query.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit() or not 0 <= int(text) <= high:
        raise ValueError(f"{name}: must be a whole number up to {high}")
    return int(text)


async def list_calls(request: web.Request) -> web.StreamResponse:
    """``GET /v1/Accounts/{sid}/Calls.json``: bulk details, cursor-paged by creation order."""
    state, account = request.app[STATE], request[ACCOUNT]
    query = dict(request.query)
    try:
        since, until = _date_range(query.get("DateCreated"))
        page_size = _whole(query, "PageSize", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE) or DEFAULT_PAGE_SIZE
        after = _whole(query, "After", 0, 1 << 62)
        before = _whole(query, "Before", 0, 1 << 62)
        sids = [s for s in query.get("Sid", "").split(",") if s] or None
        if sids is not None and len(sids) > MAX_PAGE_SIZE:
            raise ValueError(f"Sid: at most {MAX_PAGE_SIZE} call sids")
    except ValueError as exc:
        return rest_error(400, str(exc))
    matching = state.calls.query(
        account.sid, since=since, until=until, sids=sids, status=query.get("Status") or None
    )
    window = [c for c in matching if c.seq > after and (not before or c.seq < before)]
    page = window[:page_size]
    next_uri = None
    if len(window) > page_size:
        nxt = {k: v for k, v in query.items() if k not in ("After", "Before")}
        nxt["After"] = str(page[-1].seq)
        next_uri = f"/v1/Accounts/{account.sid}/Calls.json?{urlencode(nxt)}"
    meta = {"Total": len(matching), "PageSize": page_size, "NextPageUri": next_uri}
    return web.json_response({"Metadata": meta, "Calls": [c.to_details_json() for c in page]})


def add_routes(app: web.Application) -> None:
    base = "/v1/Accounts/{sid}/Calls"
    app.router.add_post(f"{base}/connect", connect)
    app.router.add_post(f"{base}/connect.json", connect)
    app.router.add_get(base + "/{call_sid}.json", call_details)
    app.router.add_get(f"{base}.json", list_calls)
