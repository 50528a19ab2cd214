"""The README's configuration table matches the settings object; quickstart is two commands."""

from __future__ import annotations

import re
from pathlib import Path

from dialer.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_settings_table_matches_settings() -> None:
    text = README.read_text()
    table = text.split("<!-- settings-table -->")[1].split("<!-- /settings-table -->")[0]
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", table, flags=re.M))
    assert documented == set(Settings.model_fields)


def test_quickstart_has_the_two_commands() -> None:
    quick = README.read_text().split("## Quickstart")[1].split("##")[0]
    assert "make demo" in quick and "make test" in quick
