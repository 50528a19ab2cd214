"""The architecture as a test: the import contract and the types (ARCHITECTURE.md).

Both run the real tools over the real tree, so `make test` fails on an upward
import or a type error exactly as `make lint` would; the contracts and the mypy
settings live in pyproject.toml, not here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():  # pragma: no cover - the dev extra installs both
        found = shutil.which(name)
        if found is None:
            pytest.fail(f"{name} is not installed: run `make setup`")
        return found
    return str(path)


def test_layers_import_only_downwards() -> None:
    done = subprocess.run(
        [_tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
