"""HTTP client for Exotel's Connect and Call-details APIs (blocking, for workers).

One pooled ``requests.Session`` per client, explicit connect and read
timeouts, no automatic retries (a retried POST could dial twice). Every HTTP
outcome is mapped to the error tree in exactly one place, ``_raise_for``;
the transport failures in ``_send``. Credentials never appear in a log line,
an exception or a repr.

Every request goes through the egress policy (``dialer.net.egress``): the
address is judged and pinned at connect time, redirects are refused, the
answer is size-capped and deadlined. An error's text carries only the HTTP
status and Exotel's own ``RestException`` message fields, never a remote
body: an ``api_url`` pointing at some other server must not be a way to read
that server's pages back through a call's ``reason``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from dialer.core.egress import EgressPolicy, is_exotel_url, origin
from dialer.core.errors import (
    AccountError,
    AmbiguousDialError,
    ConnectionRefused,
    EgressRefused,
    ProviderError,
    RateLimited,
    RequestRejected,
    ResponseTooLarge,
)
from dialer.core.exotel import ConnectParams
from dialer.core.settings import REGION_URLS
from dialer.net.egress import Egress, fetch

log = logging.getLogger(__name__)
DEFAULT_RETRY_AFTER_S = 60.0


def base_url_for(region: str | None = None, api_url: str | None = None) -> str:
    if api_url:
        return api_url.rstrip("/")
    if region is None:
        region = "sg"
    try:
        return REGION_URLS[region]
    except KeyError:
        raise ValueError(f"region must be one of {sorted(REGION_URLS)}, got {region!r}") from None


def ci_get(obj: Mapping[str, Any] | None, key: str, default: Any = None) -> Any:
    """Case-insensitive lookup: Exotel's docs show both ``Call.Sid`` and ``call.sid``."""
    if not obj:
        return default
    if key in obj:
        return obj[key]
    low = key.lower()
    for k, v in obj.items():
        if isinstance(k, str) and k.lower() == low:
            return v
    return default


@dataclass(frozen=True)
class CallInfo:
    """The fields of a Call object that the dialer uses."""

    sid: str
    status: str
    to: str | None = None
    from_number: str | None = None
    duration_s: int | None = None
    recording_url: str | None = None
    custom_field: str | None = None

    @classmethod
    def parse(cls, call: Mapping[str, Any]) -> CallInfo:
        if not isinstance(call, Mapping):
            raise ProviderError("Exotel response: a Call is not an object")
        sid = ci_get(call, "Sid")
        if not sid:
            raise ProviderError("Exotel response has no Call.Sid")
        duration = ci_get(call, "Duration")
        if duration in (None, ""):
            duration = ci_get(ci_get(call, "Details") or {}, "ConversationDuration")
        try:
            duration_s = int(float(duration)) if duration not in (None, "") else None
        except (TypeError, ValueError):
            duration_s = None
        return cls(
            sid=str(sid),
            status=str(ci_get(call, "Status") or ""),
            to=ci_get(call, "To"),
            from_number=ci_get(call, "From"),
            duration_s=duration_s,
            recording_url=ci_get(call, "RecordingUrl"),
            custom_field=ci_get(call, "CustomField"),
        )


def _retry_after(resp: requests.Response) -> float:
    value = resp.headers.get("Retry-After")
    if value is None:
        return DEFAULT_RETRY_AFTER_S
    try:
        return max(0.0, float(value))
    except ValueError:
        return DEFAULT_RETRY_AFTER_S


def _message(resp: requests.Response) -> str:
    """Exotel's RestException message fields, or nothing.

    Never the body itself, nor the reason phrase (the server picks both): a
    non-Exotel server's error page must not reach a stored reason.
    """
    try:
        body = resp.json()
    except ValueError:
        return "(no Exotel error message)"
    exc = ci_get(body, "RestException") if isinstance(body, Mapping) else None
    if not isinstance(exc, Mapping):
        return "(no Exotel error message)"
    msg = ci_get(exc, "Message")
    return (
        str(msg)[:300] if isinstance(msg, (str, int)) and msg != "" else "(no Exotel error message)"
    )


def _json_object(resp: requests.Response) -> Mapping[str, Any]:
    """A 2xx body as a JSON object; ProviderError if it is anything else.

    A proxy's HTML error page or a truncated body must become an error of the
    tree (retryable), never a bare ValueError escaping into a reconcile pass.
    """
    try:
        body = resp.json()
    except ValueError:
        raise ProviderError("Exotel response is not JSON") from None
    if not isinstance(body, Mapping):
        raise ProviderError("Exotel response is not a JSON object")
    return body


def _raise_for(resp: requests.Response) -> None:
    """The one place HTTP statuses become errors (see dialer.core.errors)."""
    status = resp.status_code
    if 300 <= status < 400:
        # Redirects are never followed (egress policy); Exotel does not send them.
        raise RequestRejected(f"Exotel HTTP {status}: redirect refused", status=status)
    if status < 400:
        return
    msg = f"Exotel HTTP {status}: {_message(resp)}"
    # 401 credentials, 402 plan or balance, 403 feature not enabled: the whole
    # account is refused, so its circuit opens instead of failing each call for good.
    if status in (401, 402, 403):
        raise AccountError(msg, status=status)
    if status == 429:
        raise RateLimited(msg, retry_after_s=_retry_after(resp))
    if status >= 500:
        raise ProviderError(msg, status=status)
    raise RequestRejected(msg, status=status)


class ExotelClient:
    """Blocking client for one Exotel account."""

    def __init__(
        self,
        account_sid: str,
        api_key: str,
        api_token: str,
        *,
        base_url: str,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 15.0,
        session: requests.Session | None = None,
        egress: Egress | None = None,
        deadline_s: float | None = None,
    ) -> None:
        self.account_sid = account_sid
        # Exotel's docs show https://key:token@host; keep credentials out of the URL
        # we print, so no repr or error message can carry them.
        parts = urlsplit(base_url.rstrip("/"))
        if parts.username or parts.password:
            host = parts.hostname or ""
            netloc = f"{host}:{parts.port}" if parts.port else host
            parts = parts._replace(netloc=netloc)
        self.base_url = urlunsplit(parts)
        self._auth = (api_key, api_token)
        self.timeout = (connect_timeout_s, read_timeout_s)
        self.deadline_s = deadline_s or connect_timeout_s + read_timeout_s
        # An account's api_url must name Exotel (or be allow-listed / the operator's):
        # checked on every request too, for records stored before that rule.
        self._not_exotel = egress is not None and not is_exotel_url(self.base_url, egress.policy)
        if egress is None:
            # Whoever builds a client without a policy chose base_url themselves (the
            # operator, a test): trust it. Runtime passes the settings' policy, under
            # which an account's API-supplied api_url is judged like any other URL.
            egress = Egress(EgressPolicy(trusted=frozenset({origin(self.base_url)})))
        # The egress session never resends (a resent POST may dial twice), never
        # follows a redirect and never uses a proxy.
        self._session = session or egress.session(pool_maxsize=32)

    def __repr__(self) -> str:
        return f"ExotelClient(account_sid={self.account_sid!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        self._session.close()

    def _url(self, path: str) -> str:
        return f"{self.base_url}/v1/Accounts/{self.account_sid}/{path}"

    def _send(self, method: str, path: str, *, dial: bool, **kw: Any) -> requests.Response:
        """Transport failures -> errors. ``dial`` marks a request whose loss is ambiguous.

        Transport exceptions are dropped (``from None``): their text can carry the
        URL, and with it credentials.
        """
        if self._not_exotel:
            raise AccountError(
                f"{self.base_url} is not an Exotel API host (egress policy)", status=0
            )
        try:
            resp = fetch(
                self._session,
                method,
                self._url(path),
                auth=self._auth,
                timeout=self.timeout,
                deadline_s=self.deadline_s,
                **kw,
            )
        except EgressRefused as exc:
            # Nothing was sent; retrying cannot help: stop the account, say why.
            raise AccountError(f"{self.base_url}: {exc}", status=0) from None
        except ResponseTooLarge:
            if dial:
                raise AmbiguousDialError(f"oversized answer from {self.base_url}") from None
            raise ProviderError(f"oversized answer from {self.base_url}") from None
        except requests.exceptions.ConnectTimeout:
            raise ConnectionRefused(f"connect timeout to {self.base_url}") from None
        except requests.exceptions.ReadTimeout:
            if dial:
                raise AmbiguousDialError(
                    f"no answer from {self.base_url} within {self.timeout[1]}s after the request"
                ) from None
            raise ProviderError(f"read timeout from {self.base_url}") from None
        except requests.exceptions.ConnectionError as exc:
            if _before_write(exc):
                raise ConnectionRefused(f"cannot connect to {self.base_url}") from None
            if dial:
                raise AmbiguousDialError(
                    f"connection to {self.base_url} lost after the request was sent"
                ) from None
            raise ProviderError(f"connection to {self.base_url} lost") from None
        _raise_for(resp)
        return resp

    def connect(self, params: ConnectParams) -> CallInfo:
        """Place one call. Validates first: a bad field never reaches Exotel."""
        form = params.validate().to_form()
        resp = self._send("POST", "Calls/connect.json", dial=True, data=form)
        try:
            body = resp.json()
        except ValueError:
            # Exotel accepted (2xx) but the body is unreadable: the call exists.
            raise AmbiguousDialError("Exotel accepted the call but the body is not JSON") from None
        call = ci_get(body, "Call")
        if not isinstance(call, Mapping):
            raise AmbiguousDialError("Exotel accepted the call but sent no Call object")
        try:
            return CallInfo.parse(call)
        except ProviderError as exc:
            raise AmbiguousDialError(str(exc)) from None

    def get_call(self, sid: str) -> CallInfo | None:
        """Call details; None when Exotel has no such call (404)."""
        try:
            resp = self._send("GET", f"Calls/{sid}.json", dial=False, params={"details": "true"})
        except RequestRejected as exc:
            if exc.status == 404:
                return None
            raise
        return CallInfo.parse(ci_get(_json_object(resp), "Call") or {})

    def list_calls(self, since: datetime, until: datetime) -> Iterator[CallInfo]:
        """Bulk call details created in [since, until] (Exotel time strings), all pages."""
        fmt = "%Y-%m-%d %H:%M:%S"  # naive times are sent as given (the sandbox reads UTC)
        params: dict[str, str] | None = {
            "DateCreated": f"gte:{since.strftime(fmt)};lte:{until.strftime(fmt)}",
            "PageSize": "100",
        }
        path = "Calls.json"
        while True:
            resp = self._send("GET", path, dial=False, params=params)
            body = _json_object(resp)
            calls = ci_get(body, "Calls") or []
            if not isinstance(calls, list):
                raise ProviderError("Exotel call list: Calls is not a list")
            # A malformed entry fails the whole listing: skipping it could make a
            # placed call look absent, and an absent call is dialled again.
            for call in calls:
                yield CallInfo.parse(call)
            meta = ci_get(body, "Metadata")
            nxt = ci_get(meta, "NextPageUri") if isinstance(meta, Mapping) else None
            if not nxt:
                return
            path = str(nxt).split(f"/Accounts/{self.account_sid}/", 1)[-1]
            params = None


def _before_write(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the failure happened while connecting (nothing was sent)."""
    text = repr(exc.args[0]) if exc.args else repr(exc)
    markers = (
        "NewConnectionError",
        "Failed to establish",
        "NameResolutionError",
        "ConnectionRefusedError",
        "Connection refused",
    )
    return any(m in text for m in markers) and "RemoteDisconnected" not in text
