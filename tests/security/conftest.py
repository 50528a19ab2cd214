"""Fixtures for the security suite: the receiver app in-process on a real Redis."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from dialer.receiver.app import create_app
from tests.support.receiver import Client
from tests.support.signing import make_settings


@pytest.fixture
async def receiver(redis_url: str, aiohttp_client: Callable[..., Awaitable[Client]]) -> Client:
    """The receiver (callbacks + REST API) with known secret and API key."""
    return await aiohttp_client(create_app(make_settings(redis_url)))
