"""The control API under ``/_sandbox/``: report, reset, faults, callees, accounts.

Tests and the demo drive the sandbox through these endpoints (or the
``control.SandboxControl`` wrapper). They are not part of Exotel's API, need
no auth and do not count against any account's request budget. Every body is
validated whole before anything changes, and a bad field is named in a 400.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from dialer.sandbox.config import AccountConfig, CalleeBehaviour, Faults
from dialer.sandbox.keys import STATE

#: each route is declared on its handler; ``add_routes`` adds them all
ROUTES = web.RouteTableDef()


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise web.HTTPBadRequest(
            text='{"error": "body must be JSON"}', content_type="application/json"
        ) from None


@ROUTES.get("/_sandbox/healthz")
async def healthz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response({"ok": True, "calls": len(state.calls), "tasks": len(state.tasks)})


@ROUTES.get("/_sandbox/report")
async def report(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].report.to_json())


@ROUTES.post("/_sandbox/reset")
async def reset(request: web.Request) -> web.Response:
    await request.app[STATE].reset()
    return web.json_response({"ok": True})


@ROUTES.get("/_sandbox/faults")
async def get_faults(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].faults.to_json())


@ROUTES.put("/_sandbox/faults")
async def put_faults(request: web.Request) -> web.Response:
    """Replace the faults: fields not given go back to their defaults (no faults)."""
    try:
        faults = Faults.from_json(await _json_body(request))
    except ValueError as exc:
        return _bad(str(exc))
    request.app[STATE].set_faults(faults)
    return web.json_response(faults.to_json())


@ROUTES.put("/_sandbox/numbers")
async def put_numbers(request: web.Request) -> web.Response:
    """``{number: {behaviour fields}}``; an empty object or null removes a number's override."""
    body = await _json_body(request)
    if not isinstance(body, dict):
        return _bad("body must be a JSON object {number: behaviour}")
    state = request.app[STATE]
    for number, fields in body.items():
        if fields is not None and not isinstance(fields, dict):
            return _bad(f"{number}: behaviour must be a JSON object or null")
        try:  # validate everything before changing anything
            if fields:
                CalleeBehaviour().with_fields(fields)
        except ValueError as exc:
            return _bad(f"{number}: {exc}")
    for number, fields in body.items():
        state.set_override(number, fields)
    return web.json_response({"overrides": state.overrides})


@ROUTES.put("/_sandbox/accounts")
async def put_accounts(request: web.Request) -> web.Response:
    """A list of accounts to add or replace (by sid)."""
    body = await _json_body(request)
    if not isinstance(body, list):
        return _bad("body must be a JSON list of accounts")
    try:
        accounts = [AccountConfig.from_json(item) for item in body]
    except ValueError as exc:
        return _bad(str(exc))
    state = request.app[STATE]
    for account in accounts:
        state.put_account(account)
    return web.json_response(
        {"accounts": [{"sid": a.sid, "max_concurrent": a.max_concurrent,
                       "calls_per_minute": a.calls_per_minute} for a in state.accounts.values()]}
    )  # fmt: skip


def add_routes(app: web.Application) -> None:
    app.router.add_routes(ROUTES)
