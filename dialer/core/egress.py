"""The egress decision, pure: what an outbound connection may reach.

No I/O here (resolution is the caller's, see ``dialer.net.egress``), so
the whole decision is tested from a table without any traffic.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from dialer.core.errors import EgressRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

#: Exotel's API hosts (exotel-protocol.md: Singapore and Mumbai clusters).
EXOTEL_API_HOSTS = frozenset({"api.exotel.com", "api.in.exotel.com"})
#: A response body larger than this is refused; Exotel's pages and webhook
#: replies are a few KB.
MAX_RESPONSE_BYTES = 1024 * 1024
SCHEMES = frozenset({"http", "https", "ws", "wss"})
DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


@dataclass(frozen=True)
class EgressPolicy:
    """What may be reached: the operator's allow-list and trusted origins."""

    allow_hosts: frozenset[str] = frozenset()
    allow_networks: tuple[Network, ...] = ()
    #: (host, port) origins the operator configured in the environment
    trusted: frozenset[tuple[str, int]] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, allow: str = "", trusted_urls: Iterable[str] = ()) -> EgressPolicy:
        """``allow``: comma-separated host names, IP addresses and CIDRs."""
        hosts: set[str] = set()
        nets: list[Network] = []
        for item in (x.strip() for x in allow.split(",")):
            if not item:
                continue
            try:
                nets.append(ipaddress.ip_network(item.strip("[]"), strict=False))
            except ValueError:
                if not _is_hostname(item):
                    raise ValueError(f"not a host name, address or CIDR: {item!r}") from None
                hosts.add(item.lower().rstrip("."))
        trusted = {origin(u) for u in trusted_urls if u}
        return cls(frozenset(hosts), tuple(nets), frozenset(trusted))

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.allow_hosts

    def allows_address(self, ip: IPAddress) -> bool:
        return any(ip in net for net in self.allow_networks if ip.version == net.version)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    address: str | None  # the address to connect to, when allowed
    reason: str


def origin(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    return host, parts.port or DEFAULT_PORTS.get(parts.scheme, 80)


def _is_hostname(s: str) -> bool:
    labels = s.rstrip(".").split(".")
    return all(0 < len(x) <= 63 and x.replace("-", "").isalnum() for x in labels)


def classify(ip: IPAddress) -> str | None:
    """Why an address is internal (or None when it is public). Pure."""
    if isinstance(ip, ipaddress.IPv6Address):
        # ::ffff:127.0.0.1 reaches 127.0.0.1: judge the IPv4 address inside.
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            return classify(mapped)
    for name in ("loopback", "unspecified", "link_local", "multicast", "reserved", "private"):
        if getattr(ip, f"is_{name}"):
            return name.replace("_", "-")
    if not ip.is_global:  # shared address space (100.64/10), documentation ranges, ...
        return "not globally routable"
    return None


def decide(host: str, port: int, addresses: Sequence[str], policy: EgressPolicy) -> Decision:
    """May we connect to ``host:port``, which resolved to ``addresses``? Pure.

    The first address is the one to connect to (it is what the check saw).
    """
    if not addresses:
        return Decision(False, None, f"{host} does not resolve")
    host = host.lower().rstrip(".").strip("[]")
    if (host, port) in policy.trusted or policy.allows_host(host):
        return Decision(True, addresses[0], "allowed by configuration")
    for a in addresses:
        try:
            ip = ipaddress.ip_address(a.split("%", 1)[0])
        except ValueError:
            return Decision(False, None, f"{host} resolved to a non-address")
        why = classify(ip)
        if why is not None and not policy.allows_address(ip):
            return Decision(
                False, None, f"{host} resolves to a {why} address, refused by the egress policy"
            )
    return Decision(True, addresses[0], "public")


def check_url_shape(url: str) -> tuple[str, str, int]:
    """Scheme and host of an outbound URL; (scheme, host, port). No I/O."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise EgressRefused(f"scheme {parts.scheme!r} is not allowed for outbound requests")
    if not parts.hostname:
        raise EgressRefused("outbound URL has no host")
    if parts.username or parts.password:
        raise EgressRefused("outbound URL must not carry credentials")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise EgressRefused("outbound URL has a bad port") from None
    return parts.scheme, parts.hostname.lower(), port


def is_exotel_url(url: str, policy: EgressPolicy) -> bool:
    """An account's ``api_url`` must name Exotel (over https) unless allow-listed."""
    try:
        scheme, host, port = check_url_shape(url)
    except EgressRefused:
        return False
    if (host, port) in policy.trusted or policy.allows_host(host):
        return True
    try:
        if policy.allows_address(ipaddress.ip_address(host.strip("[]"))):
            return True
    except ValueError:
        pass
    return scheme == "https" and host.rstrip(".") in EXOTEL_API_HOSTS
