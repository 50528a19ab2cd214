"""The OpenAPI 3 document of the REST API, built from the pydantic models it validates with."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from dialer import __version__

BEARER = [{"bearer": []}]


def _op(
    summary: str,
    *,
    body: dict[str, Any] | None = None,
    ok: str = "200",
    params: list[str] | None = None,
    auth: bool = True,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            ok: {
                "description": "success",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            "401": {"description": "missing or wrong API key"},
            "404": {"description": "not found"},
            "422": {"description": "invalid request; `detail` names each field"},
            "429": {
                "description": "per-key rate limit (DIALER_API_RATE_PER_MIN) exceeded",
                "headers": {
                    "Retry-After": {
                        "description": "seconds until the next window",
                        "schema": {"type": "integer"},
                    }
                },
            },
            "503": {"description": "store unavailable; retry"},
        },
        "parameters": [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in params or []
        ],
    }
    if auth:
        op["security"] = BEARER
    if body is not None:
        op["requestBody"] = {"required": True, "content": body}
    return op


def document() -> dict[str, Any]:
    from dialer.campaigns import CampaignIn
    from dialer.receiver.api import AccountIn, DncIn

    schemas: dict[str, Any] = {}

    def ref(model: type[BaseModel]) -> dict[str, str]:
        # OpenAPI 3.1 schemas are JSON Schema 2020-12, which is what pydantic emits;
        # nested definitions move to components so every $ref resolves.
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    account = {"application/json": {"schema": ref(AccountIn)}}
    campaign = {
        "application/json": {"schema": ref(CampaignIn)},
        "text/csv": {"schema": {"type": "string"}},
    }
    paths: dict[str, Any] = {
        "/v1/accounts": {"post": _op("Register or update an Exotel account", body=account)},
        "/v1/accounts/{sid}": {"get": _op("An account (never its token)", params=["sid"])},
        "/v1/accounts/{sid}/resume": {
            "post": _op("Close the account's circuit after a 401/403", params=["sid"])
        },
        "/v1/accounts/{sid}/dnc": {
            "post": _op(
                "Add numbers to the account's do-not-call list",
                params=["sid"],
                body={"application/json": {"schema": ref(DncIn)}},
            )
        },
        "/v1/campaigns": {
            "post": _op(
                "Create a campaign (JSON or CSV body; ?dry_run=1 validates only)",
                body=campaign,
                ok="201",
            )
        },
        "/v1/campaigns/{id}": {"get": _op("Counters by state and outcome", params=["id"])},
        "/v1/campaigns/{id}/calls": {
            "get": _op(
                "Every contact: attempts, sids, outcome, answers (?offset, ?limit, ?format=csv)",
                params=["id"],
            )
        },
        "/v1/openapi.json": {"get": _op("This document", auth=False)},
        "/exotel/status/{call_id}": {
            "post": _op(
                "Exotel status callback (HMAC-signed URL, ?sig=)", params=["call_id"], auth=False
            )
        },
        "/healthz": {"get": _op("Liveness", auth=False)},
    }
    for action in ("pause", "resume", "cancel"):
        paths[f"/v1/campaigns/{{id}}/{action}"] = {
            "post": _op(f"{action.title()} a campaign", params=["id"])
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Exotel voice-AI dialer", "version": __version__},
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": paths,
    }
