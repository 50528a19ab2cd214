"""``--processes N``: N copies of one server on one port, so one host uses all its cores.

An aiohttp server is one event loop on one core. ``dialer streamer
--processes N`` (and ``receiver``) start a parent that binds nothing and N
children, each the same command for one process with the hidden
``--reuse-port``: every child binds host:port with ``SO_REUSEPORT`` and the
kernel spreads new connections over them (a websocket stays on the child
that accepted it). Nothing is shared between the children but Redis, which
already holds everything a call needs.

The parent supervises:

* a child that dies is restarted with back-off (0.5 s doubling to 30 s);
* SIGTERM or SIGINT is passed to every child, which drains exactly as a
  single process does (``serving.serve``: readiness red, live work finishes
  within its limit), and the parent exits when all have; a child still
  running ``stop_timeout_s`` later is killed;
* if the parent itself is killed (even SIGKILL), the kernel sends each
  child SIGTERM (``PR_SET_PDEATHSIG``, Linux), so no child outlives it: they
  drain and exit.

Metrics: child ``i`` serves ``/metrics`` on the base metrics port + ``i``
(``0`` stays ``0``: the OS picks). Prometheus scrapes each and sums in
PromQL; chosen over prometheus_client's multiprocess mode, which needs a
shared directory, per-gauge aggregation modes and clean-up after each dead
child for numbers Prometheus can add up itself.

This module does not know which server it runs; the CLI passes the argv.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_S = 0.2
BACKOFF_MAX_S = 30.0


def metrics_port(base: int, index: int) -> int:
    """Child ``index``'s metrics port: base + index, or 0 (any free one) for base 0."""
    return base + index if base else 0


def wait_healthy(
    url: str, deadline: float, between: Callable[[], None] = lambda: None, every_s: float = 0.1
) -> None:
    """Until ``url`` answers 200, or TimeoutError at ``deadline`` (``time.monotonic()``).

    ``between`` runs after each miss: the caller's chance to notice that the
    process it waits for has died (raise) or to restart it, rather than wait
    out the deadline for a server that will never come up.
    """
    import requests  # only the waiting commands need it, not every server process

    while True:
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass  # not listening yet: that is what we wait for
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not become healthy in time")
        between()
        time.sleep(every_s)


def port_available(host: str, port: int) -> bool:
    """Can a group bind host:port with SO_REUSEPORT (no other kind of listener holds it)?"""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _die_with_parent(parent: int) -> Callable[[], None]:
    """A ``preexec_fn``: SIGTERM this child when ``parent`` dies (Linux; elsewhere nothing)."""

    def arm() -> None:
        if not sys.platform.startswith("linux"):
            return
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the request took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return arm


@dataclass
class Child:
    """One supervised process (of a ``Group``, or of ``dialer up``'s supervisor)."""

    name: str  # what the logs call it
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0  # when a dead child is started again (0: not waiting)
    log: Path | None = None  # where its output goes (None: the parent's)


def restart_dead(
    children: Iterable[Child],
    now: float,
    spawn: Callable[[Child], None],
    died: Callable[[Child, float], None],
    first_s: float = 0.5,
) -> None:
    """Restart the children that died: ``first_s`` after a death, doubling with each
    restart up to ``BACKOFF_MAX_S``. ``died(child, delay)`` hears of each death once."""
    for child in children:
        if child.proc is None or child.proc.poll() is None:
            continue
        if child.next_start == 0.0:
            child.restarts += 1
            delay = min(BACKOFF_MAX_S, first_s * 2 ** min(child.restarts - 1, 6))
            child.next_start = now + delay
            died(child, delay)
        elif now >= child.next_start:
            child.next_start = 0.0
            spawn(child)


class Group:
    """N children of one command; ``run`` supervises them until a stop signal."""

    def __init__(
        self, name: str, argvs: list[list[str]], stop_timeout_s: float, env: dict[str, str]
    ) -> None:
        self.name, self.stop_timeout_s, self.env = name, stop_timeout_s, env
        self.children = [Child(f"{name}[{i}]", argv) for i, argv in enumerate(argvs)]
        self._stop = False

    def _spawn(self, child: Child) -> None:
        # Same process group and session as the parent: a terminal's Ctrl-C or a
        # `docker stop` of the group reaches every child too, which is harmless
        # (a second stop signal changes nothing in serving.serve).
        child.proc = subprocess.Popen(
            child.argv, env=self.env, preexec_fn=_die_with_parent(os.getpid())
        )
        log.info("%s started pid=%d", child.name, child.proc.pid)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop = True

    def poll(self, now: float) -> None:
        """Restart children that died (with back-off)."""
        restart_dead(self.children, now, self._spawn, _log_death)

    def stop(self) -> None:
        """SIGTERM every child (each drains), wait, SIGKILL what is left after the limit."""
        live = [c.proc for c in self.children if c.proc is not None and c.proc.poll() is None]
        for proc in live:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout_s
        for proc in live:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s pid=%d still running after %.0fs: killed", self.name, proc.pid,
                            self.stop_timeout_s)  # fmt: skip
                proc.kill()
                proc.wait()

    def run(self) -> int:
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            for child in self.children:
                self._spawn(child)
            while not self._stop:
                self.poll(time.monotonic())
                time.sleep(POLL_S)
            log.info("%s: stop signal, draining %d processes", self.name, len(self.children))
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0


def _log_death(child: Child, delay: float) -> None:
    assert child.proc is not None
    log.error("%s exited with %s; restarting in %.1fs", child.name, child.proc.returncode, delay)
