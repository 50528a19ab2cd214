"""Shared by the fuzzers: what the server logged when a request crashed."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator

import pytest


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


@pytest.fixture
def server_errors() -> Iterator[ServerErrors]:
    handler = ServerErrors()
    logger = logging.getLogger("aiohttp.server")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
