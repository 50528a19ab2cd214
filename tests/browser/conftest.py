"""Browser tests: Debian's Chromium (``/usr/bin/chromium``) driven headless by Playwright.

Never a downloaded browser: ``executable_path`` names the system one. Without
it (or without the playwright package) every test here is skipped, and the
run ends with one line saying why (``.ci/run`` installs Chromium first).
Screenshots of each page go to ``tests/browser/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).parent / "screenshots"


def skip_reason() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is not installed (`apt-get install chromium`; .ci/run installs it)"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (`make setup`)"
    return None


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


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
