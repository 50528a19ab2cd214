"""The sandbox process: a faithful local Exotel as one aiohttp app.

``create_app(config)`` builds the app: Exotel's API (``api``), the control
API (``admin``), the shared state and the exchange under typed ``AppKey``s.
Its cleanup context opens the one ``aiohttp.ClientSession`` used for all
outgoing traffic (AgentStream websockets, status callbacks) and, on the way
out, releases held responses, cancels every task the sandbox started and
closes the session. ``run`` serves it until interrupted (``dialer sandbox``).
Importing this module starts nothing.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from dialer.sandbox import admin, api
from dialer.sandbox.config import SandboxConfig
from dialer.sandbox.exchange import Exchange
from dialer.sandbox.keys import EXCHANGE, STATE
from dialer.sandbox.state import SandboxState

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 256 * 1024  # a connect form is < 2 KB; control bodies are small too


async def _outgoing(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    # No connection limit per host: every answered call holds a websocket to one streamer.
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
    state.session = aiohttp.ClientSession(connector=connector)
    try:
        yield
    finally:
        state.closing.set()
        await state.cancel_tasks()
        await state.session.close()
        state.session = None


async def _release_held(app: web.Application) -> None:
    """On shutdown, answer the responses held back by the accept_timeout fault."""
    app[STATE].closing.set()


def create_app(config: SandboxConfig | None = None) -> web.Application:
    config = config or SandboxConfig()
    app = web.Application(middlewares=[api.exotel_gate], client_max_size=MAX_BODY_BYTES)
    state = SandboxState(config)
    app[STATE] = state
    app[EXCHANGE] = Exchange(state)
    app.cleanup_ctx.append(_outgoing)
    app.on_shutdown.append(_release_held)
    api.add_routes(app)
    admin.add_routes(app)
    return app


def run(host: str = "127.0.0.1", port: int = 8082, config: SandboxConfig | None = None) -> None:
    """Serve the sandbox until Ctrl-C (the ``dialer sandbox`` command)."""
    config = config or SandboxConfig()
    accounts = ", ".join(a.sid for a in config.accounts)
    print(f"Exotel sandbox on http://{host}:{port} (accounts: {accounts}; control: /_sandbox/)")
    web.run_app(create_app(config), host=host, port=port, print=None, shutdown_timeout=5.0)
