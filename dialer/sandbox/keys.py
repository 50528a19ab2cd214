"""Typed keys of the sandbox app and its requests (one place, no import cycles)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from dialer.sandbox.config import AccountConfig
    from dialer.sandbox.exchange import Exchange
    from dialer.sandbox.state import SandboxState

STATE: web.AppKey[SandboxState] = web.AppKey("sandbox_state")
EXCHANGE: web.AppKey[Exchange] = web.AppKey("sandbox_exchange")
ACCOUNT: web.RequestKey[AccountConfig] = web.RequestKey("sandbox_account")
