"""Fixtures for the security suite: the receiver app in-process on a real Redis."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from dialer.receiver.app import create_app
from tests.security.helpers import make_settings

Client = TestClient[Any, Any]


@pytest.fixture
async def receiver(redis_url: str, aiohttp_client: Callable[..., Awaitable[Client]]) -> Client:
    """The receiver (callbacks + REST API) with known secret and API key."""
    return await aiohttp_client(create_app(make_settings(redis_url)))
