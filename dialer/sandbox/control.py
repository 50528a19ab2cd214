"""``SandboxControl``: a small blocking client of the sandbox's control API.

Tests and the demo use it to set faults, callee overrides and account limits
and to read the report. It speaks only ``/_sandbox/`` endpoints; Exotel's
own API is exercised through ``dialer.net.exotel.ExotelClient``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import requests

from dialer.sandbox.config import AccountConfig, Faults


@dataclass(eq=False)
class SandboxControl:
    """A handle on one sandbox; it holds no secret, so its repr is the generated one."""

    base_url: str
    timeout_s: float = field(default=5.0, kw_only=True)
    _session: requests.Session = field(default_factory=requests.Session, init=False, repr=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")

    def close(self) -> None:
        self._session.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        resp = self._session.request(
            method, f"{self.base_url}/_sandbox/{path}", json=body, timeout=self.timeout_s
        )
        if resp.status_code >= 400:
            raise ValueError(f"sandbox {method} /_sandbox/{path}: {resp.status_code} {resp.text}")
        return resp.json()

    def healthz(self) -> bool:
        try:
            return bool(self._call("GET", "healthz").get("ok"))
        except (requests.RequestException, ValueError):
            return False

    def report(self) -> dict[str, Any]:
        return self._call("GET", "report")

    def reset(self) -> None:
        self._call("POST", "reset")

    def faults(self) -> dict[str, Any]:
        return self._call("GET", "faults")

    def set_faults(self, faults: Faults | Mapping[str, Any] | None = None, **fields: Any) -> dict:
        """Replace the faults (unset fields return to no fault): ``set_faults(http_5xx=0.5)``."""
        body = faults.to_json() if isinstance(faults, Faults) else dict(faults or {})
        body.update(fields)
        return self._call("PUT", "faults", body)

    def set_numbers(self, overrides: Mapping[str, Mapping[str, Any] | None]) -> dict:
        """Per-number behaviour: ``{"+919800000001": {"outcome": "busy"}}``; None removes."""
        body = {k: (dict(v) if v is not None else None) for k, v in overrides.items()}
        for fields in body.values():
            if fields and "dtmf" in fields:
                fields["dtmf"] = list(fields["dtmf"])
        return self._call("PUT", "numbers", body)

    def set_accounts(self, accounts: Iterable[AccountConfig | Mapping[str, Any]]) -> dict:
        body = [asdict(a) if isinstance(a, AccountConfig) else dict(a) for a in accounts]
        return self._call("PUT", "accounts", body)

    def wait_for(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        timeout_s: float = 10.0,
        poll_s: float = 0.05,
    ) -> dict[str, Any]:
        """Poll the report until ``predicate(report)``; returns it, or raises TimeoutError."""
        deadline = time.monotonic() + timeout_s
        while True:
            rep = self.report()
            if predicate(rep):
                return rep
            if time.monotonic() >= deadline:
                raise TimeoutError(f"sandbox report did not settle in {timeout_s}s: {rep}")
            time.sleep(poll_s)

    def wait_idle(self, timeout_s: float = 10.0) -> dict[str, Any]:
        """Wait until no call is active on any account."""
        return self.wait_for(lambda r: not any(r["active"].values()), timeout_s)
