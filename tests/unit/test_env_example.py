""".env.example names every setting (and every variable compose reads), secrets left empty."""

from __future__ import annotations

import re
from pathlib import Path

from dialer.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "DIALER_SECRET",
    "DIALER_API_KEY",
    "REDIS_PASSWORD",
    "EXOTEL_API_TOKEN",
    "EXOTEL_API_KEY",
}


def entries() -> dict[str, str]:
    """NAME -> value for `NAME=value` and `# NAME=value` lines."""
    text = (ROOT / ".env.example").read_text()
    return dict(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]+)=(.*)$", text, flags=re.M))


def test_every_setting_and_compose_variable_is_there() -> None:
    compose = set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", (ROOT / "docker-compose.yml").read_text()))
    missing = (set(Settings.model_fields) | compose) - set(entries())
    assert not missing, f".env.example lacks {sorted(missing)}"


def test_nothing_unknown_is_there() -> None:
    compose = set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", (ROOT / "docker-compose.yml").read_text()))
    unknown = set(entries()) - set(Settings.model_fields) - compose
    assert not unknown, f".env.example names unknown variables {sorted(unknown)}"


def test_secrets_are_placeholders_never_values() -> None:
    values = entries()
    for name in SECRETS:
        assert values[name] == "", f"{name} must be left empty in .env.example"
