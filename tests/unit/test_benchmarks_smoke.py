"""Smoke test: the cheap in-process benchmarks run at tiny size and write their results.

No time is asserted: only that ``python -m benchmarks --quick`` runs, exits 0
and writes a well-formed ``results.json`` and ``results.md`` where it is told.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(120)


def test_quick_ingest_and_memory_write_results(redis_server_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "REDIS_URL": redis_server_url}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--only",
            "ingest,memory",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["mode"] == "quick"
    assert data["machine"]["cpus"] >= 1
    names = [r["name"] for r in data["results"]]
    assert names == ["ingest", "memory"]
    for res in data["results"]:
        assert not res["error"]
        assert res["rows"]
        for row in res["rows"]:
            assert row["ours"] is not None and row["ours"] > 0
            assert row["met"] in (True, False, None)
    ingest = data["results"][0]["rows"][0]
    assert ingest["unit"] == "contacts/s" and ingest["baseline"] > 0
    md = (tmp_path / "results.md").read_text()
    assert "| benchmark | metric | ours | baseline | ratio | target | met |" in md
