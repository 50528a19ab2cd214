"""``dialer up``: run every process on this machine, supervised.

Starts embedded Redis (when ``REDIS_URL`` is unset), the sandbox (when no
Exotel credentials are set), receiver, streamer, worker(s), beat and Flower
as child processes with one shared environment. A child that dies is
reported and restarted (with back-off). On stop, children go down in an
order that loses nothing: beat first (no new ticks), then workers (a warm
shutdown lets in-flight dials finish; anything cut short stays recoverable
through leases), then the HTTP servers (they drain), then Redis. Every
child and the embedded Redis run in their own session, so a Ctrl-C reaches
only the supervisor and Redis stays up until everything that writes to it
has stopped. At start, calls the last run left live are made due at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from dialer.core.settings import LISTEN_PORTS, Settings
from dialer.platform.embedded import EmbeddedRedis
from dialer.platform.processes import Child, restart_dead, wait_healthy

SANDBOX_ACCOUNT = {
    "EXOTEL_ACCOUNT_SID": "sandbox",
    "EXOTEL_API_KEY": "sandbox-key",
    "EXOTEL_API_TOKEN": "sandbox-token",
    "EXOTEL_CALLER_ID": "08047112345",
}
# The streamer drains before the receiver stops: calls ending during the drain
# still get their terminal callbacks stored.
STOP_ORDER = ("flower", "beat", "worker", "streamer", "receiver", "sandbox")


class PortInUse(RuntimeError):
    pass


class DataDirLocked(RuntimeError):
    pass


#: how to move each process to another port; ``dialer up`` has no per-process port flags
PORT_SETTINGS = {
    "receiver": "DIALER_PORT",
    "streamer": "STREAMER_PORT",
    "sandbox": "SANDBOX_PORT",
    "flower": "FLOWER_PORT",
    "receiver metrics": "DIALER_METRICS_PORT",
    "streamer metrics": "STREAMER_METRICS_PORT",
}


def redact_url(url: str) -> str:
    """``url`` with its password replaced, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{netloc}"))


def check_port(host: str, port: int, what: str) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            env = PORT_SETTINGS.get(what, "the port setting")
            hint = f"set {env} to a free port in the environment (e.g. {env}={port + 10})"
            if what == "flower":
                hint += ", or pass --no-flower"
            raise PortInUse(f"{what} port {port} on {host} is already in use; {hint}") from None


class DataDirLock:
    """An exclusive ``flock`` on the data directory, held while ``up``/``demo`` runs.

    Two supervisors on one directory would start two embedded Redis servers
    appending to the same AOF and two beats writing one schedule. ``flock``
    is released by the kernel when the holder dies, so a crash never leaves a
    stale lock behind; the holder's pid is written for the refusal message.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "dialer.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DataDirLocked(
                f"the data directory {self.path.parent} is in use by another `dialer up` or "
                f"`dialer demo` (pid {holder}); stop that one first, or give this one its own "
                "directory with DIALER_DATA_DIR=..."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


@dataclass
class Supervisor:
    settings: Settings
    workers: int = 1
    with_flower: bool = True
    quiet: bool = False
    children: list[Child] = field(default_factory=list)
    redis: EmbeddedRedis | None = None
    env: dict[str, str] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    extra_sandbox_args: list[str] = field(default_factory=list)
    max_concurrent: int | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    #: more ``dialer worker`` options for every worker (a benchmark tries pools and prefetch)
    worker_args: list[str] = field(default_factory=list)
    lock: DataDirLock | None = None

    def say(self, text: str) -> None:
        if not self.quiet:
            print(text, file=sys.stderr, flush=True)

    def start(self) -> None:
        s = self.settings
        data = s.DIALER_DATA_DIR.resolve()
        (data / "logs").mkdir(parents=True, exist_ok=True)
        if self.lock is None:  # before anything opens the AOF or binds a port
            self.lock = DataDirLock(data)
            self.lock.acquire()
        host = "127.0.0.1"
        ports = {
            "receiver": s.DIALER_PORT,
            "streamer": s.STREAMER_PORT,
            "receiver metrics": s.DIALER_METRICS_PORT,
            "streamer metrics": s.STREAMER_METRICS_PORT,
        }
        sandbox = not s.exotel_configured
        if sandbox:
            ports["sandbox"] = s.SANDBOX_PORT
        if self.with_flower:
            ports["flower"] = s.FLOWER_PORT
        for what, port in ports.items():
            check_port(host, port, what)
        # the internal /metrics listeners: a taken one would crash-loop its server
        for what, port in (
            ("receiver metrics", s.DIALER_METRICS_PORT),
            ("streamer metrics", s.STREAMER_METRICS_PORT),
        ):
            if port:  # 0: the OS picks a free one
                check_port(s.DIALER_METRICS_HOST, port, what)
        env = {**os.environ, **self.extra_env}
        if not s.REDIS_URL:
            self.redis = EmbeddedRedis(data / "redis").start()
            env["REDIS_URL"] = self.redis.url
            self.urls["redis"] = self.redis.url + " (embedded, AOF in " + str(data / "redis") + ")"
        else:
            self.urls["redis"] = "(REDIS_URL)"
        if s.CELERY_BROKER_URL:
            self.urls["broker"] = f"{redact_url(s.CELERY_BROKER_URL)}  (CELERY_BROKER_URL)"
        self._expedite_stale(env.get("REDIS_URL") or s.REDIS_URL)
        if sandbox:
            env.update(SANDBOX_ACCOUNT)
            env["EXOTEL_API_URL"] = f"http://{host}:{s.SANDBOX_PORT}"
            env.setdefault("EXOTEL_MAX_CONCURRENT", str(s.EXOTEL_MAX_CONCURRENT))
            # Sandbox mode: everything (sandbox, sample bots, webhook sinks) is local.
            env.setdefault("DIALER_EGRESS_ALLOW", "127.0.0.0/8,::1")
        env.setdefault("DIALER_PUBLIC_URL", f"http://{host}:{s.DIALER_PORT}")
        env.setdefault("STREAMER_PUBLIC_URL", f"ws://{host}:{s.STREAMER_PORT}")
        env["DIALER_DATA_DIR"] = str(data)
        # Ctrl-C should not wait five minutes: live calls get 15 s to end, then the
        # streamer closes them with 1001 (below stop()'s 20 s before SIGKILL).
        env.setdefault("STREAMER_DRAIN_S", "15")
        for name in LISTEN_PORTS:
            env[name] = str(getattr(s, name))
        if self.max_concurrent is not None:
            env["EXOTEL_MAX_CONCURRENT"] = str(self.max_concurrent)
        self.env = env
        py = [sys.executable, "-m", "dialer.cli.main"]
        if sandbox:
            self.children.append(
                Child(
                    "sandbox",
                    [
                        *py,
                        "sandbox",
                        "--port",
                        str(s.SANDBOX_PORT),
                        "--max-concurrent",
                        env["EXOTEL_MAX_CONCURRENT"],
                        *self.extra_sandbox_args,
                    ],
                )
            )
            self.urls["sandbox"] = env["EXOTEL_API_URL"] + "  (local Exotel)"
        self.children.append(Child("receiver", [*py, "receiver", "--host", host]))
        self.children.append(Child("streamer", [*py, "streamer", "--host", host]))
        for i in range(self.workers):
            self.children.append(
                Child("worker", [*py, "worker", "-n", f"worker{i}@%h", *self.worker_args])
            )
        self.children.append(Child("beat", [*py, "beat"]))
        if self.with_flower:
            self.children.append(Child("flower", [*py, "flower"]))
            self.urls["flower"] = f"http://{host}:{s.FLOWER_PORT}"
        self.urls["api"] = f"http://{host}:{s.DIALER_PORT}  (REST, /v1/openapi.json)"
        self.urls["streamer"] = env["STREAMER_PUBLIC_URL"]
        self.urls["metrics"] = (
            f"http://{s.DIALER_METRICS_HOST}:{s.DIALER_METRICS_PORT}/metrics (receiver), "
            f"http://{s.DIALER_METRICS_HOST}:{s.STREAMER_METRICS_PORT}/metrics (streamer)"
        )
        for child in self.children:
            child.log = data / "logs" / f"{child.name}.log"
            self._spawn(child)
        for name, url in self.urls.items():
            self.say(f"  {name:9} {url}")
        self.say(f"  logs      {data / 'logs'}")

    def _expedite_stale(self, url: str | None) -> None:
        """Calls left placed, ringing or answered by the last run are due now.

        Their callbacks may have come while nothing listened: the first
        reconciliation pass asks Exotel's call details for each, instead of
        each holding its slot until the answered-call check.
        """
        import redis

        from dialer.services.reconcile import expedite_stale
        from dialer.store.connection import connect

        if not url:
            return
        client = connect(self.settings.model_copy(update={"REDIS_URL": url}), socket_timeout=5)
        try:
            n = expedite_stale(client)
        except redis.RedisError as exc:
            self.say(f"! could not look for calls left by the last run: {exc}")
            return
        finally:
            client.close()
        if n:
            self.say(f"  {n} call(s) left live by the last run: settling them with Exotel now")

    def add(self, child: Child) -> None:
        """Start a child the caller built (argv and log set), supervised like the others.

        ``poll`` restarts it and ``stop`` stops it in ``STOP_ORDER``; the
        multi-host test uses this to run each process on its own test host.
        """
        self.children.append(child)
        self._spawn(child)

    def _spawn(self, child: Child) -> None:
        assert child.log is not None
        out = open(child.log, "ab")  # noqa: SIM115 - handed to the child, closed with it
        # A new session: Ctrl-C reaches only us, and we stop children in order.
        child.proc = subprocess.Popen(
            child.argv, env=self.env, stdout=out, stderr=out, start_new_session=True
        )
        out.close()

    def poll(self) -> None:
        """Restart children that died (with back-off from 1 s); call this periodically."""
        restart_dead(self.children, time.monotonic(), self._spawn, self._died, first_s=1.0)

    def _died(self, child: Child, delay: float) -> None:
        assert child.proc is not None
        self.say(
            f"! {child.name} exited with {child.proc.returncode}; restarting in "
            f"{delay:.1f}s (see {child.log})"
        )

    def stop(self, timeout_s: float = 20.0) -> None:
        for name in STOP_ORDER:
            group = [c for c in self.children if c.name == name and c.proc is not None]
            for c in group:
                if c.proc and c.proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(c.proc.pid, signal.SIGTERM)
            for c in group:
                assert c.proc is not None
                try:
                    c.proc.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(c.proc.pid, signal.SIGKILL)
                    c.proc.wait()
                # Celery's pool threads or forks: make sure nothing of the group is left.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(c.proc.pid, signal.SIGKILL)
        if self.redis is not None:
            self.redis.stop()
            self.redis = None
        if self.lock is not None:  # last: nothing of ours touches the directory any more
            self.lock.release()
            self.lock = None

    def wait_ready(self, timeout_s: float = 60.0, checks: list[str] | None = None) -> None:
        """Until every URL of ``checks`` answers 200 (default: this host's servers)."""
        s = self.settings
        if checks is None:
            checks = [
                f"http://127.0.0.1:{s.DIALER_PORT}/readyz",
                f"http://127.0.0.1:{s.STREAMER_PORT}/readyz",
            ]
            if any(c.name == "sandbox" for c in self.children):
                checks.append(f"http://127.0.0.1:{s.SANDBOX_PORT}/_sandbox/healthz")
        deadline = time.monotonic() + timeout_s
        for url in checks:
            wait_healthy(url, deadline, between=self.poll, every_s=0.2)
