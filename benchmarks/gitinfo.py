"""The checked-out commit and the tracked files, read from ``.git`` without running git.

The test suite runs the benchmarks and checks what is committed, and it runs
only programs that ``make setup`` installs (tests/support/shellout.py): git is not one
of them. Handles a plain clone, a worktree or submodule (``.git`` is a file
naming the git directory, whose ``commondir`` holds the shared refs), loose
and packed refs, and index versions 2 and 3. Anything else reads as None.
"""

from __future__ import annotations

import struct
from pathlib import Path


def git_dir(root: Path) -> Path | None:
    dot = root / ".git"
    if dot.is_file():  # a worktree or submodule: "gitdir: <path>"
        text = dot.read_text().strip()
        if not text.startswith("gitdir:"):
            return None
        found = Path(text.split(":", 1)[1].strip())
        return found if found.is_absolute() else (root / found).resolve()
    return dot if dot.is_dir() else None


def head_commit(root: Path) -> str | None:
    """The commit HEAD points at, or None if that cannot be read."""
    try:
        gdir = git_dir(root)
        if gdir is None:
            return None
        head = (gdir / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head or None  # detached HEAD
        ref = head.split(":", 1)[1].strip()
        common = gdir / "commondir"
        base = (gdir / common.read_text().strip()).resolve() if common.is_file() else gdir
        for d in (gdir, base):
            if (d / ref).is_file():
                return (d / ref).read_text().strip()
        packed = base / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split()[0]
    except (OSError, UnicodeDecodeError):
        return None
    return None


def tracked_paths(root: Path) -> set[str] | None:
    """Paths in the index (what `git ls-files` lists); None if there is none we can read."""
    gdir = git_dir(root)
    try:
        data = (gdir / "index").read_bytes() if gdir is not None else b""
    except OSError:
        return None
    if len(data) < 12 or data[:4] != b"DIRC":
        return None
    version, count = struct.unpack(">II", data[4:12])
    if version not in (2, 3):
        return None  # v4 compresses paths; not worth parsing here
    paths, pos = set(), 12
    for _ in range(count):
        flags = struct.unpack(">H", data[pos + 60 : pos + 62])[0]
        start = pos + 62 + (2 if flags & 0x4000 else 0)  # v3 extended flags
        end = data.index(b"\0", start)
        paths.add(data[start:end].decode("utf-8", "surrogateescape"))
        pos += (end - pos + 8) // 8 * 8  # entries are NUL-padded to a multiple of 8
    return paths
