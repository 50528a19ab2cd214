"""Test hosts on this machine: Linux network namespaces joined by one bridge.

Each host is a network namespace with one link, ``eth0`` (a veth pair), to a
bridge that lives in a namespace of its own (the switch). Addresses come from
198.18.0.0/24, the range set aside for network tests (RFC 2544), and exist
only inside these namespaces: the machine's own namespace gets no address,
route or link of the test network, so nothing a test host sends can leave it.

A process runs on a host through ``ip netns exec`` (its argv from
``Host.argv``, so a supervisor restart lands on the same host). The test
itself steps onto a host with ``Network.inside``, which moves only the
calling thread (``setns``) and moves it back afterwards.

``cut`` partitions a host: its port on the switch goes down, as when a cable
is pulled. The host is not told: its packets are dropped, connections hang
rather than reset. ``heal`` brings the port back.

The network is built with ``ip`` (iproute2), a system program the test suite
runs only when asked: ``DIALER_TEST_TOOLS=ip`` (``make test-slow`` sets it,
see tests/support/shellout.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

from tests.support import shellout

SUBNET = "198.18.0"
#: every namespace of ours starts with this, then the pid of the test process
PREFIX = "dialer-hosts-"
CLONE_NEWNET = 0x40000000


class NamespacesRefused(RuntimeError):
    """This machine (kernel, permissions, missing iproute2) cannot make test hosts."""


def _ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def refusal() -> str | None:
    """Why test hosts cannot be made here, or None when they can be tried."""
    if sys.platform != "linux":
        return "network namespaces are Linux only"
    if "ip" not in shellout.opted_in():
        return "builds test hosts with `ip` only when asked: DIALER_TEST_TOOLS=ip (make test-slow)"
    if shutil.which("ip") is None:
        return "`ip` (iproute2) is not installed"
    return None


@dataclass
class Host:
    role: str
    ns: str
    address: str
    port: str  # the host's port on the switch (a veth name in the switch namespace)

    def argv(self, *command: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *command]


@dataclass
class Network:
    tag: str = field(default_factory=lambda: f"{PREFIX}{os.getpid()}")
    hosts: dict[str, Host] = field(default_factory=dict)
    switch: str = ""

    def start(self) -> Network:
        _remove_stale()
        self.switch = f"{self.tag}-sw"
        try:
            _ip("netns", "add", self.switch)
        except RuntimeError as exc:
            raise NamespacesRefused(str(exc)) from None
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        return self

    def add(self, role: str) -> Host:
        n = len(self.hosts) + 1
        host = Host(role, f"{self.tag}-{role}", f"{SUBNET}.{10 + n}", f"p{n}")
        _ip("netns", "add", host.ns)
        self.hosts[role] = host
        _ip("-n", self.switch, "link", "add", host.port, "type", "veth",
            "peer", "name", "eth0", "netns", host.ns)  # fmt: skip
        _ip("-n", self.switch, "link", "set", host.port, "master", "br0")
        _ip("-n", self.switch, "link", "set", host.port, "up")
        _ip("-n", host.ns, "addr", "add", f"{host.address}/24", "dev", "eth0")
        _ip("-n", host.ns, "link", "set", "eth0", "up")
        _ip("-n", host.ns, "link", "set", "lo", "up")
        return host

    def cut(self, host: Host) -> None:
        _ip("-n", self.switch, "link", "set", host.port, "down")

    def heal(self, host: Host) -> None:
        _ip("-n", self.switch, "link", "set", host.port, "up")

    @contextlib.contextmanager
    def inside(self, host: Host) -> Iterator[None]:
        """The calling thread on ``host`` (sockets it opens, children it starts)."""
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        there = os.open(f"/run/netns/{host.ns}", os.O_RDONLY)
        try:
            _setns(there)
            yield
        finally:
            _setns(home)
            os.close(there)
            os.close(home)

    def close(self) -> None:
        """Kill whatever still runs on a host, then remove every namespace of ours."""
        for ns in [h.ns for h in self.hosts.values()] + [self.switch]:
            if ns:
                _delete(ns)
        self.hosts.clear()
        self.switch = ""


def _delete(ns: str) -> None:
    with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
        for pid in _ip("netns", "pids", ns).split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), 9)
    with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
        _ip("netns", "del", ns)


def _remove_stale() -> None:
    """Namespaces a killed test run left (its pid is gone): they would only pile up."""
    for line in _ip("netns", "list").splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith(PREFIX):
            continue
        pid = name[len(PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            _delete(name)


@contextlib.contextmanager
def network() -> Iterator[Network]:
    net = Network()
    try:
        yield net.start()
    finally:
        net.close()
