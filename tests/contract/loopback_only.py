"""``python -m tests.contract.loopback_only ARGS``: the ``dialer`` CLI, jailed to loopback.

For processes fed generated input (schemathesis invents webhook URLs, and a
dry run probes them): every TCP/UDP connection to an address that is not
loopback is refused and host names other than ``localhost`` do not resolve,
so no test traffic, DNS included, leaves the machine whatever URL is tried.
The refusal is an ordinary ``OSError``, which the code under test must
handle like any unreachable host.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from typing import Any

_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_getaddrinfo = socket.getaddrinfo


def _is_loopback(host: Any) -> bool:
    if host in ("localhost", b"localhost"):
        return True
    try:
        text = host.decode() if isinstance(host, bytes) else str(host)
        return ipaddress.ip_address(text.strip("[]").split("%")[0]).is_loopback
    except ValueError:
        return False


def _check(sock: socket.socket, address: Any) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
        raise ConnectionRefusedError(f"test jail: only loopback may be reached, not {address[0]}")


def connect(self: socket.socket, address: Any) -> None:
    _check(self, address)
    _connect(self, address)


def connect_ex(self: socket.socket, address: Any) -> int:
    _check(self, address)
    return _connect_ex(self, address)


def getaddrinfo(host: Any, *args: Any, **kw: Any) -> Any:
    if host is not None and not _is_loopback(host):
        raise socket.gaierror(socket.EAI_NONAME, f"test jail: {host!r} does not resolve")
    return _getaddrinfo(host, *args, **kw)


def install() -> None:
    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo


if __name__ == "__main__":
    install()
    from dialer.cli.main import main

    sys.argv = ["dialer", *sys.argv[1:]]
    main()
