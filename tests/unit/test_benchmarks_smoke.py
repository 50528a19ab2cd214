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


def test_git_commit_is_read_without_running_git(tmp_path: Path) -> None:
    from benchmarks.gitinfo import head_commit as git_commit

    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "repo"
    (repo / ".git" / "refs" / "heads").mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (repo / ".git" / "packed-refs").write_text(f"# pack-refs\n{sha} refs/heads/main\n")
    assert git_commit(repo) == sha  # packed
    (repo / ".git" / "refs" / "heads" / "main").write_text(sha[::-1] + "\n")
    assert git_commit(repo) == sha[::-1]  # loose wins
    # a worktree: .git is a file naming its gitdir, whose commondir holds the refs
    wt_git = repo / ".git" / "worktrees" / "wt"
    wt_git.mkdir(parents=True)
    (wt_git / "HEAD").write_text("ref: refs/heads/main\n")
    (wt_git / "commondir").write_text("../..\n")
    (tmp_path / "wt").mkdir()
    (tmp_path / "wt" / ".git").write_text(f"gitdir: {wt_git}\n")
    assert git_commit(tmp_path / "wt") == sha[::-1]
    assert git_commit(tmp_path) is None  # not a repository


def test_tracked_paths_match_the_repository_index() -> None:
    from benchmarks.gitinfo import tracked_paths

    paths = tracked_paths(ROOT)
    if paths is None:
        pytest.skip("not a git checkout with a v2/v3 index")
    assert {
        "pyproject.toml",
        "dialer/core/calls.py",
        "tests/unit/test_benchmarks_smoke.py",
    } <= paths
    assert ".venv/bin/python" not in paths


def test_steady_utilisation_starts_when_the_slots_are_first_full() -> None:
    from benchmarks.common import analyse  # not via slots: that imports the naive app

    # L=2: two dials at 0 and 1 (ramp), then each slot refilled 0.5 s after it frees
    dials = [0.0, 1.0, 2.5, 3.5, 5.0]
    terminals = [2.0, 3.0, 4.5, 5.5, 6.0]
    whole = analyse(dials, terminals, 2)
    steady = analyse(dials, terminals, 2, steady=True)
    # from the 2nd dial (t=1) to the last (t=5): 2 active except 2.0-2.5 and 3.0-3.5 and 4.5-5.0
    assert steady["utilisation"] == (2 * 4 - 1.5) / (2 * 4)
    assert whole["utilisation"] == (1 * 1 + 2 * 4 - 1.5) / (2 * 5)
    assert steady["refill_ms"] == whole["refill_ms"] == [500.0, 500.0, 500.0]


def test_tree_cpu_counts_a_child_that_exited() -> None:
    from benchmarks.common import cpu_seconds, tree_cpu_seconds

    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"
    before_tree, before_self = tree_cpu_seconds(os.getpid()), cpu_seconds(os.getpid())
    subprocess.run([sys.executable, "-c", spin], check=True)  # reaped: into our cutime
    assert tree_cpu_seconds(os.getpid()) - before_tree >= 0.25
    assert cpu_seconds(os.getpid()) - before_self < 0.25
