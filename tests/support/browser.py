"""Debian's Chromium for the browser tests: where it is, why it cannot run, screenshots."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
#: git-ignored; one PNG per page the browser tests visit
SCREENSHOTS = Path(__file__).resolve().parents[1] / "browser" / "screenshots"


def skip_reason() -> str | None:
    """None when the browser tests can run; else why not, for the skip and the summary line."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is not installed (`apt-get install chromium`; .ci/run installs it)"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (`make setup`)"
    return None


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
