"""Browser tests: Debian's Chromium (``/usr/bin/chromium``) driven headless by Playwright.

Never a downloaded browser: ``executable_path`` names the system one. Without
it (or without the playwright package) every test here is skipped, and the
run ends with one line saying why (``.ci/run`` installs Chromium first).
Screenshots of each page go to ``tests/browser/screenshots/`` (git-ignored).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.browser import CHROMIUM, skip_reason


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = skip_reason()
    if reason is None:
        return
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.skip(reason=f"browser tests skipped: {reason}"))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    reason = skip_reason()
    if reason is not None:
        terminalreporter.write_line(f"browser tests skipped: {reason}", yellow=True, bold=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        found = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield found
        finally:
            found.close()
