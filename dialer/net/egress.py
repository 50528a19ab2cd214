"""The egress policy: every outbound request the dialer makes goes through here.

Outbound traffic goes to URLs chosen by three kinds of party: the operator
(``EXOTEL_API_URL`` in the environment: trusted), API callers (an account's
``api_url``, a campaign's ``webhook_url``, ``relay:`` bot URLs: untrusted),
and Exotel. An untrusted URL must not turn the dialer into a proxy into the
network it runs in (SSRF), so:

* ``dialer.core.egress.decide`` (pure) judges one resolved host: every address it resolves to
  must be public, unless the operator's allow-list (``DIALER_EGRESS_ALLOW``,
  hosts and CIDRs) names the host or the address. One internal address
  among public ones refuses the lot: round-robin records are an old trick.
* Enforcement resolves *at connect time* and connects to exactly the address
  that was judged (urllib3 connection classes for ``requests``, a resolver for
  aiohttp), so there is no window in which DNS can be rebound between the
  check and the connect. TLS still verifies and sends SNI for the host name,
  and the ``Host`` header is the name, because only the socket address is
  pinned.
* Redirects are never followed (a 3xx is an answer, not an instruction), the
  environment's proxies are ignored (a proxy would connect for us,
  unchecked), every exchange has a total deadline and a response-size cap.

This module does not decide *what* to tell a caller about a failure: callers
keep remote bodies out of anything they store (see ``dialer.net.exotel``).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import ipaddress
import os
import socket
import threading
import time
from typing import Any

import aiohttp
import requests
from aiohttp.abc import AbstractResolver, ResolveResult
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.retry import Retry

from dialer.core.egress import (
    MAX_RESPONSE_BYTES,
    EgressPolicy,
    Resolver,
    check_url_shape,
    decide,
)
from dialer.core.errors import EgressRefused, ResponseTooLarge


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (v4 and v6), in resolver order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    seen: list[str] = []
    for *_, sockaddr in infos:
        if sockaddr[0] not in seen:
            seen.append(str(sockaddr[0]))
    return seen


class Egress:
    """The policy plus a resolver: the one gate outbound connections pass."""

    def __init__(self, policy: EgressPolicy, resolver: Resolver = system_resolver) -> None:
        self.policy = policy
        self.resolver = resolver

    def resolve(self, host: str, port: int) -> str:
        """The checked address to connect to, or EgressRefused."""
        bare = host.strip("[]")
        try:
            addresses = [str(ipaddress.ip_address(bare.split("%", 1)[0]))]
        except ValueError:
            addresses = self.resolver(bare, port)
        d = decide(bare, port, addresses, self.policy)
        if not d.allowed or d.address is None:
            raise EgressRefused(d.reason)
        return d.address

    def check_literal(self, url: str) -> None:
        """No I/O: refuse a bad URL, or a literal address the policy refuses."""
        _, host, port = check_url_shape(url)
        try:
            ip = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
        except ValueError:
            return  # a name: judged by the resolver at connect time
        d = decide(host, port, [str(ip)], self.policy)
        if not d.allowed:
            raise EgressRefused(d.reason)

    def client_session(self, *, total_s: float | None) -> aiohttp.ClientSession:
        """An aiohttp session under the policy: checked resolver, no redirects, deadline.

        aiohttp skips the resolver for literal addresses, so a trace hook judges
        those before connecting; another refuses every redirect (``ws_connect``
        follows them otherwise). ``total_s`` None: no session-wide deadline (a
        relayed websocket lives as long as the call; its connect has its own).
        """
        trace = aiohttp.TraceConfig()

        async def on_start(_s: Any, _c: Any, params: aiohttp.TraceRequestStartParams) -> None:
            self.check_literal(str(params.url))

        async def on_redirect(_s: Any, _c: Any, params: Any) -> None:
            raise EgressRefused(f"redirect refused (HTTP {params.response.status})")

        trace.on_request_start.append(on_start)
        trace.on_request_redirect.append(on_redirect)
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=_GuardedResolver(self)),
            timeout=aiohttp.ClientTimeout(total=total_s),
            trace_configs=[trace],
            trust_env=False,
        )

    def session(self, *, pool_maxsize: int = 10) -> requests.Session:
        """A requests session whose every new connection is resolved and judged."""
        session = _Session()
        session.trust_env = False  # no proxies, no .netrc: we connect ourselves
        adapter = _GuardedAdapter(
            self, pool_maxsize=pool_maxsize, max_retries=Retry(total=0, read=0, connect=0)
        )
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session


class _Session(requests.Session):
    def request(self, *args: Any, **kw: Any) -> requests.Response:
        # A 3xx is an answer, never an instruction, whoever calls us.
        kw["allow_redirects"] = False
        return super().request(*args, **kw)


class _GuardedResolver(AbstractResolver):
    """aiohttp resolver returning only the judged address (so that is what it dials)."""

    def __init__(self, egress: Egress) -> None:
        self._egress = egress

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        loop = asyncio.get_running_loop()
        address = await loop.run_in_executor(None, self._egress.resolve, host, port)
        fam = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=fam,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        return None


async def probe(session: aiohttp.ClientSession, url: str) -> tuple[bool, str]:
    """Would a request to ``url`` get an answer? (HEAD, no redirects.) For dry runs.

    Internal addresses are refused before any connect, so this cannot be used
    to scan the dialer's own network; the note says why without remote text.
    """
    try:
        async with session.head(url, allow_redirects=False) as resp:
            status = resp.status
    except EgressRefused as exc:
        return False, str(exc)
    except TimeoutError:
        return False, "no answer in time"
    except (aiohttp.ClientError, OSError, ValueError):
        return False, "cannot connect"
    if 300 <= status < 400:
        return False, f"HTTP {status}: redirects are not followed"
    return status < 500, f"HTTP {status}"


def _pinned(base: type[HTTPConnection], egress: Egress) -> type[HTTPConnection]:
    class Pinned(base):  # type: ignore[valid-type,misc]
        def _new_conn(self) -> socket.socket:
            # Resolve and judge here, at connect time, and connect to exactly that
            # address: TLS (server_hostname) and Host still use self.host.
            address = egress.resolve(self.host, self.port)
            real: str = self._dns_host  # type: ignore[has-type]
            self._dns_host = address
            try:
                return super()._new_conn()
            finally:
                self._dns_host = real

        def getresponse(self, *args: Any, **kw: Any) -> Any:
            # Each recv has its own timeout, so a server trickling its status line
            # and headers a byte at a time could hold us for hours: past fetch()'s
            # deadline the watchdog shuts the socket, which ends the wait at once.
            end = getattr(_exchange, "end", None)
            sock = self.sock
            if end is None or sock is None:
                return super().getresponse(*args, **kw)
            ticket = _WATCHDOG.arm(end, sock)
            try:
                return super().getresponse(*args, **kw)
            finally:
                _WATCHDOG.disarm(ticket)

    return Pinned


#: the deadline of the exchange this thread is in (set by fetch)
_exchange = threading.local()


def _cut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    """One thread per process that shuts each armed socket at its deadline.

    Not a ``threading.Timer`` per exchange: that started a thread (and waited
    for it to start) for every request, each dial's Connect included, a
    visible share of a busy worker's samples (issue #17). Deadlines wait in a
    heap; a disarmed one is dropped when it comes up, and only the armed map
    holds the socket. The thread starts on first use, and again in a forked
    child (threads do not survive a fork; the lock is made anew there).
    """

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._cv = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int]] = []
        self._armed: dict[int, socket.socket] = {}
        self._seq = 0
        self._running = False

    def arm(self, end: float, sock: socket.socket) -> int:
        with self._cv:
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="egress-watchdog", daemon=True).start()
            self._seq += 1
            heapq.heappush(self._heap, (end, self._seq))
            self._armed[self._seq] = sock
            if self._heap[0][1] == self._seq:
                self._cv.notify()  # earlier than the deadline the thread waits for
            return self._seq

    def disarm(self, ticket: int) -> None:
        with self._cv:
            self._armed.pop(ticket, None)

    def _run(self) -> None:
        cv = self._cv
        with cv:
            while True:
                while self._heap and self._heap[0][1] not in self._armed:
                    heapq.heappop(self._heap)  # disarmed: its exchange is over
                if not self._heap:
                    cv.wait()
                    continue
                end, ticket = self._heap[0]
                wait = end - time.monotonic()
                if wait > 0:
                    cv.wait(wait)
                    continue
                heapq.heappop(self._heap)
                _cut(self._armed.pop(ticket))


_WATCHDOG = _Watchdog()


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, egress: Egress, **kw: Any) -> None:
        self._egress = egress
        super().__init__(**kw)

    def init_poolmanager(self, *args: Any, **kw: Any) -> None:
        super().init_poolmanager(*args, **kw)
        egress = self._egress

        class Http(HTTPConnectionPool):
            ConnectionCls = _pinned(HTTPConnection, egress)

        class Https(HTTPSConnectionPool):
            ConnectionCls = _pinned(HTTPSConnection, egress)  # type: ignore[assignment]

        self.poolmanager.pool_classes_by_scheme = {"http": Http, "https": Https}

    def proxy_manager_for(self, *args: Any, **kw: Any) -> Any:
        raise EgressRefused("outbound requests never go through a proxy")


def fetch(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout: tuple[float, float],
    deadline_s: float,
    max_bytes: int = MAX_RESPONSE_BYTES,
    **kw: Any,
) -> requests.Response:
    """One exchange: no redirects, a total deadline and a body cap.

    Until the headers are in, a watchdog cuts the connection at the deadline;
    after that the deadline is checked between body reads, each of which waits
    at most ``timeout[1]``: the worst case is ``deadline_s + timeout[1]``.
    Raises ``requests`` transport errors as they are (callers map them) and
    ``ResponseTooLarge`` / ``requests.Timeout`` past the cap / deadline.
    """
    end = time.monotonic() + deadline_s
    connect_s, read_s = (min(t, deadline_s) for t in timeout)
    _exchange.end = end
    try:
        resp = session.request(
            method, url, timeout=(connect_s, read_s), allow_redirects=False, stream=True, **kw
        )
    except requests.ConnectionError as exc:
        # the watchdog cut it (a connect timeout means nothing was sent: keep it)
        if not isinstance(exc, requests.ConnectTimeout) and time.monotonic() >= end:
            raise requests.exceptions.ReadTimeout(f"no answer within {deadline_s}s") from None
        raise
    finally:
        _exchange.end = None
    if time.monotonic() >= end:
        # cut mid-headers, http.client may take the EOF for their end: not an answer
        resp.close()
        raise requests.exceptions.ReadTimeout(f"no answer within {deadline_s}s")
    try:
        body = bytearray()
        # read1: whatever has arrived (at most 16 KB), so the deadline is checked
        # between small reads rather than after a read that waits for 16 KB.
        while chunk := resp.raw.read1(16 * 1024, decode_content=True):
            body += chunk
            if len(body) > max_bytes:
                raise ResponseTooLarge(f"response larger than {max_bytes} bytes")
            if time.monotonic() > end:
                raise requests.exceptions.ReadTimeout(f"no complete answer within {deadline_s}s")
    except BaseException:
        resp.close()  # a half-read connection must not go back to the pool
        raise
    resp.raw.release_conn()  # fully read: the connection may be reused
    resp._content = bytes(body)
    return resp
