"""A real receiver process: a request aiohttp cannot parse gets 400 and one quiet log line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from dialer.platform.embedded import free_port
from tests.support.polling import wait_for

pytestmark = pytest.mark.timeout(60)


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        chunks = []
        while chunk := s.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks)


def test_nul_in_a_header_is_a_400_without_an_error_traceback(
    redis_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EXOTEL_", "DIALER_"))}
    env.update(
        REDIS_URL=redis_url,
        DIALER_API_KEY="malformed-test-api-key-0123456789abcdef",
        DIALER_SECRET="malformed-test-secret-0123456789abcdef",
        DIALER_LOG_LEVEL="INFO",
        DIALER_DATA_DIR=str(tmp_path),
        DIALER_METRICS_PORT=str(free_port()),  # never a fixed port: other runs share the host
    )
    log = tmp_path / "receiver.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dialer.cli.main",
                "receiver",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            stdout=out,
            stderr=out,
        )
    try:

        def healthy() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok
            except requests.RequestException:
                return False

        wait_for(healthy, 30, 0.1, what="the receiver healthy")
        reply = _raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Probe: a\x00b\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 400") or reply.startswith(b"HTTP/1.0 400"), reply
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).ok  # still serving
        wait_for(lambda: "malformed request" in log.read_text(), 10, what="the refusal logged")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    text = log.read_text(errors="replace")
    assert "refused a malformed request from 127.0.0.1 with 400" in text, text
    assert "Traceback" not in text and " ERROR " not in text, text
    assert "\x00" not in text
