"""The README's configuration table matches the settings object; quickstart is two commands."""

from __future__ import annotations

import re
from pathlib import Path

from dialer.core.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_settings_table_matches_settings() -> None:
    text = README.read_text()
    table = text.split("<!-- settings-table -->")[1].split("<!-- /settings-table -->")[0]
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", table, flags=re.M))
    assert documented == set(Settings.model_fields)


def test_quickstart_has_the_two_commands() -> None:
    quick = README.read_text().split("## Quickstart")[1].split("##")[0]
    assert "make demo" in quick and "make test" in quick


def test_reason_table_matches_the_codes() -> None:
    from dialer.core.reasons import CODES

    table = (
        README.read_text().split("<!-- reasons-table -->")[1].split("<!-- /reasons-table -->")[0]
    )
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| (.+?) \|$", table, flags=re.M))
    assert rows == {code.value: meaning for code, meaning in CODES.items()}


def test_requirements_line_names_every_program_the_code_starts() -> None:
    """Each module that starts a process is named in the README's requirements line."""
    root = README.parent
    starters = set()
    for path in [
        *root.glob("dialer/**/*.py"),
        *root.glob("streamer/**/*.py"),
        *root.glob("workers/**/*.py"),
    ]:
        text = path.read_text()
        if re.search(
            r"subprocess\.(Popen|run|call|check_\w+)\(|os\.system\(|create_subprocess_", text
        ):
            starters.add(path.relative_to(root).as_posix())
    quick = README.read_text().split("**Requirements**")[1].split("##")[0]
    assert starters == {
        "dialer/cli/supervisor.py",
        "dialer/platform/embedded.py",
        "dialer/platform/processes.py",
    }, starters
    for module in starters:
        assert f"`{module}`" in quick
