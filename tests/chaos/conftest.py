"""Shared by the fuzzers: what the server logged when a request crashed."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.support.receiver import ServerErrors


@pytest.fixture
def server_errors() -> Iterator[ServerErrors]:
    handler = ServerErrors()
    logger = logging.getLogger("aiohttp.server")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
