"""Server processes refuse to start on missing, default, placeholder or short secrets.

Each attack from the issue: with ``DIALER_API_KEY``/``DIALER_SECRET`` unset
the system ran on public defaults and a forged callback signed with the
default secret was accepted. Now every server entry point (the ``dialer``
commands and ``celery -A workers.app``) exits non-zero, naming the variable
and how to generate one, before it listens or connects anywhere. Only
``dialer up``/``demo`` in sandbox mode make up throwaway secrets, and say so.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from dialer.cli.up import SANDBOX_SECRETS_FILE, run_secrets, sandbox_api_key
from dialer.core.settings import (
    GENERATE_HINT,
    load_settings,
    secret_problem,
    server_secret_problems,
)
from tests.support.signing import API_KEY, SECRET

GOOD = {"DIALER_SECRET": SECRET, "DIALER_API_KEY": API_KEY}
DIALER = [sys.executable, "-m", "dialer.cli.main"]
CELERY = [sys.executable, "-m", "celery", "-A", "workers.app"]
PUBLISHED = "published default or placeholder"


def start(argv: list[str], tmp_path: Path, **env_vars: str) -> subprocess.CompletedProcess[str]:
    """Start a server process with only ``env_vars`` set among the dialer's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIALER_", "EXOTEL_"))}
    # an address nothing listens on: a process that wrongly started would hang or
    # fail on Redis, not exit at once with the secrets message
    env.update(REDIS_URL="redis://127.0.0.1:9/0", DIALER_DATA_DIR=str(tmp_path), **env_vars)
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param([*DIALER, "receiver", "--port", "0"], id="receiver"),
        pytest.param([*DIALER, "streamer", "--port", "0"], id="streamer"),
        pytest.param([*DIALER, "worker"], id="worker"),
        pytest.param([*DIALER, "beat"], id="beat"),
        pytest.param([*CELERY, "worker", "--pool", "solo"], id="celery-worker"),
        pytest.param([*CELERY, "beat"], id="celery-beat"),
    ],
)
def test_every_server_process_refuses_to_start_without_secrets(
    argv: list[str], tmp_path: Path
) -> None:
    done = start(argv, tmp_path)
    assert done.returncode != 0, done.stderr[-2000:]
    assert "DIALER_SECRET is not set" in done.stderr, done.stderr[-2000:]
    assert "DIALER_API_KEY is not set" in done.stderr
    assert GENERATE_HINT in done.stderr


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("DIALER_SECRET", "dev-insecure-secret-change-me", PUBLISHED),
        ("DIALER_API_KEY", "dev-api-key", PUBLISHED),
        (
            "DIALER_SECRET",
            "REPLACE-ME-with-32-random-bytes-hex",
            "published default or placeholder",
        ),
        ("DIALER_API_KEY", "REPLACE-ME-with-a-random-api-key", PUBLISHED),
        ("DIALER_SECRET", "Kd2Lq7Wx4Zb6", "too short"),
    ],
)
def test_a_default_placeholder_or_short_value_stops_the_receiver(
    tmp_path: Path, name: str, value: str, why: str
) -> None:
    done = start([*DIALER, "receiver", "--port", "0"], tmp_path, **{**GOOD, name: value})
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"{name} is a" in done.stderr or f"{name} is too short" in done.stderr
    assert why in done.stderr and GENERATE_HINT in done.stderr
    assert value not in done.stderr  # the message names the variable, never echoes it


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (None, False),
        ("", False),
        ("a" * 64, False),  # long but not random
        ("changeme-" + "Kd2Lq7Wx4Zb6Nm1Vp8Rt5Yc0Fh9Qw", False),
        ("your-secret-here-Kd2Lq7Wx4Zb6Nm1Vp8Rt5Yc0Fh", False),
        ("<generate-one>-Kd2Lq7Wx4Zb6Nm1Vp8Rt5Yc0Fh9", False),
        ("0123456789abcdef0123456789abcde", False),  # 31 characters
        ("0123456789abcdef0123456789abcdef", True),
        (SECRET, True),
    ],
)
def test_secret_rules(value: str | None, ok: bool) -> None:
    problem = secret_problem("DIALER_SECRET", None if value is None else SecretStr(value))
    assert (problem is None) is ok, problem
    if problem:
        assert problem.startswith("DIALER_SECRET ") and GENERATE_HINT in problem


def test_the_same_value_for_both_is_refused() -> None:
    s = load_settings(DIALER_SECRET=SECRET, DIALER_API_KEY=SECRET)
    assert any("must differ" in p for p in server_secret_problems(s))


def test_client_commands_need_no_signing_secret() -> None:
    """Only servers fail closed: `dialer status` on a laptop needs just the API key."""
    s = load_settings(DIALER_API_KEY=API_KEY)
    assert s.api_key == API_KEY


def test_dialer_up_in_sandbox_mode_makes_up_throwaway_secrets_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = load_settings(DIALER_DATA_DIR=tmp_path, DIALER_API_KEY="dev-api-key")
    made = run_secrets(s)
    err = capsys.readouterr().err
    assert "sandbox mode" in err and "throwaway" in err
    assert set(made) == {"DIALER_SECRET", "DIALER_API_KEY"}
    assert not server_secret_problems(load_settings(DIALER_DATA_DIR=tmp_path, **made))
    path = tmp_path / SANDBOX_SECRETS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sandbox_api_key(tmp_path) == made["DIALER_API_KEY"]
    # a restart on the same data directory keeps them (its Redis is encrypted with them)
    assert run_secrets(s) == made
    assert made["DIALER_SECRET"] not in err and made["DIALER_API_KEY"] not in err
    assert json.loads(path.read_text()) == made


def test_dialer_up_with_real_exotel_credentials_fails_closed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = load_settings(
        DIALER_DATA_DIR=tmp_path,
        EXOTEL_ACCOUNT_SID="AC1",
        EXOTEL_API_KEY="k",
        EXOTEL_API_TOKEN="t",
    )
    with pytest.raises(SystemExit) as info:
        run_secrets(s)
    assert info.value.code == 2
    assert "DIALER_SECRET is not set" in capsys.readouterr().err
    assert not (tmp_path / SANDBOX_SECRETS_FILE).exists()
