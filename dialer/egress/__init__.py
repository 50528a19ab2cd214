"""The egress policy: every outbound request the dialer makes goes through here.

Outbound traffic goes to URLs chosen by three kinds of party: the operator
(``EXOTEL_API_URL`` in the environment: trusted), API callers (an account's
``api_url``, a campaign's ``webhook_url``, ``relay:`` bot URLs: untrusted),
and Exotel. An untrusted URL must not turn the dialer into a proxy into the
network it runs in (SSRF), so:

* ``decide`` (pure) judges one resolved host: every address it resolves to
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
keep remote bodies out of anything they store (see ``dialer.exotel.client``).
"""

from dialer.egress.policy import (
    EXOTEL_API_HOSTS,
    MAX_RESPONSE_BYTES,
    Decision,
    EgressPolicy,
    check_url_shape,
    classify,
    decide,
    is_exotel_url,
    origin,
)
from dialer.egress.transport import Egress, fetch, probe, system_resolver

__all__ = [
    "EXOTEL_API_HOSTS",
    "MAX_RESPONSE_BYTES",
    "Decision",
    "Egress",
    "EgressPolicy",
    "check_url_shape",
    "classify",
    "decide",
    "fetch",
    "is_exotel_url",
    "origin",
    "probe",
    "system_resolver",
]
