"""``DialerClient``: the Python client other applications use (REST, blocking).

Errors come back as :class:`ApiError` carrying the HTTP status and the
server's ``error``/``detail`` body; the API key never appears in a repr or
an exception.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: list[Any] | None = None):
        super().__init__(f"HTTP {status}: {error}")
        self.status = status
        self.error = error
        self.detail = detail or []


class DialerClient:
    def __init__(self, base_url: str, api_key: str, *, timeout_s: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self.timeout_s = timeout_s
        self._session = requests.Session()

    def __repr__(self) -> str:
        return f"DialerClient({self.base_url!r})"

    def close(self) -> None:
        self._session.close()

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            resp = self._session.request(
                method, self.base_url + path, headers=self._headers, timeout=self.timeout_s, **kw
            )
        except requests.RequestException as exc:
            raise ApiError(0, f"cannot reach {self.base_url}: {type(exc).__name__}") from None
        if resp.status_code >= 400:
            try:
                body = resp.json()
            except ValueError:
                body = {"error": resp.text[:300]}
            raise ApiError(resp.status_code, str(body.get("error", "")), body.get("detail"))
        if resp.headers.get("Content-Type", "").startswith("text/csv"):
            return resp.text
        return resp.json()

    def add_account(
        self, sid: str, api_key: str, api_token: str, caller_id: str, **options: Any
    ) -> dict[str, Any]:
        return self._call(
            "POST",
            "/v1/accounts",
            json={
                "sid": sid,
                "api_key": api_key,
                "api_token": api_token,
                "caller_id": caller_id,
                **options,
            },
        )

    def get_account(self, sid: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/accounts/{sid}")

    def replace_account(
        self, sid: str, api_key: str, api_token: str, caller_id: str, **options: Any
    ) -> dict[str, Any]:
        """``PUT``: the whole account; options not given take their defaults."""
        body = {"api_key": api_key, "api_token": api_token, "caller_id": caller_id, **options}
        return self._call("PUT", f"/v1/accounts/{sid}", json=body)

    def update_account(self, sid: str, **fields: Any) -> dict[str, Any]:
        """``PATCH``: only the named fields change (limits, caller ids, credentials...)."""
        return self._call("PATCH", f"/v1/accounts/{sid}", json=fields)

    def add_dnc(
        self, sid: str, numbers: list[str], default_region: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"numbers": numbers}
        if default_region:
            body["default_region"] = default_region
        return self._call("POST", f"/v1/accounts/{sid}/dnc", json=body)

    def resume_account(self, sid: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/accounts/{sid}/resume")

    def create_campaign(
        self,
        account: str,
        contacts: list[dict[str, Any]] | None = None,
        *,
        csv: str | None = None,
        dry_run: bool = False,
        **options: Any,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"account": account, **options}
        if contacts is not None:
            payload["contacts"] = contacts
        if csv is not None:
            payload["csv"] = csv
        params = {"dry_run": "1"} if dry_run else None
        return self._call("POST", "/v1/campaigns", json=payload, params=params)

    def list_campaigns(
        self,
        *,
        state: str | None = None,
        account: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> dict[str, Any]:
        """One page, newest first: ``{"campaigns": [...], "total", "next_offset", ...}``."""
        params: dict[str, Any] = {"offset": offset, "limit": limit}
        if state:
            params["state"] = state
        if account:
            params["account"] = account
        return self._call("GET", "/v1/campaigns", params=params)

    def iter_campaigns(
        self, *, state: str | None = None, account: str | None = None, page_size: int = 100
    ) -> Iterator[dict[str, Any]]:
        """Every matching campaign's status object, newest first, page by page."""
        offset: int | None = 0
        while offset is not None:
            page = self.list_campaigns(state=state, account=account, offset=offset, limit=page_size)
            yield from page["campaigns"]
            offset = page["next_offset"]

    def get_campaign(self, campaign_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/campaigns/{campaign_id}")

    def iter_calls(self, campaign_id: str, page_size: int = 500) -> Iterator[dict[str, Any]]:
        offset: int | None = 0
        while offset is not None:
            page = self._call(
                "GET",
                f"/v1/campaigns/{campaign_id}/calls",
                params={"offset": offset, "limit": page_size},
            )
            yield from page["calls"]
            offset = page["next_offset"]

    def results_csv(self, campaign_id: str) -> str:
        return self._call("GET", f"/v1/campaigns/{campaign_id}/calls", params={"format": "csv"})

    def pause(self, campaign_id: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/campaigns/{campaign_id}/pause")

    def resume(self, campaign_id: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/campaigns/{campaign_id}/resume")

    def cancel(self, campaign_id: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/campaigns/{campaign_id}/cancel")

    def delete(self, campaign_id: str) -> dict[str, Any]:
        """Purge a finished or cancelled campaign (ApiError 409 while it can still dial)."""
        return self._call("DELETE", f"/v1/campaigns/{campaign_id}")

    # --- API keys (admin key) and webhook keys ------------------------------
    def create_key(
        self, accounts: list[str], *, admin: bool = False, label: str = ""
    ) -> dict[str, Any]:
        """A new API key; ``["key"]`` is shown in this answer only."""
        body = {"accounts": accounts, "admin": admin, "label": label}
        return dict(self._call("POST", "/v1/keys", json=body))

    def list_keys(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/v1/keys")["keys"])

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        return dict(self._call("DELETE", f"/v1/keys/{key_id}"))

    def webhook_key(self, sid: str, *, rotate: bool = False) -> dict[str, Any]:
        """The account's webhook signing key; ``rotate=True`` replaces it first."""
        if rotate:
            return dict(self._call("POST", f"/v1/accounts/{sid}/webhook-key/rotate"))
        return dict(self._call("GET", f"/v1/accounts/{sid}/webhook-key"))
