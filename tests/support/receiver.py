"""The receiver in-process on a real Redis, and what it logged when a request crashed."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient

from dialer.receiver.app import create_app
from tests.support.signing import API_KEY, make_settings

Client = TestClient[Any, Any]


class ServerErrors(logging.Handler):
    """Remembers the exception aiohttp logged for the last request that crashed,
    with the innermost frame of ours, so a 500 in an assertion says where."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last: tuple[str, str] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            frames = traceback.extract_tb(record.exc_info[2])
            ours = [
                f"{f.filename.rsplit('/', 2)[-1]}:{f.name}"
                for f in frames
                if "/dialer/" in f.filename or "/streamer/" in f.filename
            ]
            self.last = (type(record.exc_info[1]).__name__, ours[-1] if ours else "")


async def receiver_with_account(
    redis_url: str, aiohttp_client: Callable[..., Awaitable[Any]], account: str
) -> Any:
    """An in-process receiver on a real Redis, with ``account`` registered."""
    c = await aiohttp_client(create_app(make_settings(redis_url)))
    resp = await c.post(
        "/v1/accounts",
        headers={"Authorization": f"Bearer {API_KEY}"},
        json={
            "sid": account,
            "api_key": "k",
            "api_token": "t",
            "caller_id": "08000000000",
            "api_url": "http://127.0.0.1:9",
            "max_concurrent_calls": 5,
        },
    )
    assert resp.status == 200, await resp.text()
    return c
