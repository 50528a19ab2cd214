"""Thin Celery tasks: ids in, reload state, call a domain function, map errors.

Task names are a stable contract (``dialer.*``). Arguments are ids only: no
phone numbers or secrets reach the broker, Flower or logs (except
``dialer.submit_campaign``, whose payload is the public REST payload).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import requests
from celery.signals import worker_process_init

from dialer.core import campaign, results
from dialer.core.calls import Event, Kind, State
from dialer.core.errors import ConfigError, NotPlacedError, RequestRejected
from dialer.platform import queue
from dialer.platform.queue import task_name
from dialer.services import ingest, queries, settle
from dialer.services.accounts import all_accounts
from dialer.services.dialing import dial as dial_call
from dialer.services.reconcile import reconcile_account
from dialer.services.runtime import CampaignFacts, Runtime
from dialer.services.webhooks import deliver
from dialer.store import campaigns, keys, retention
from dialer.store.records import transition
from workers.app import app

log = logging.getLogger(__name__)
_rt: Runtime | None = None
_http: requests.Session | None = None


@worker_process_init.connect
def _fresh_process(**_: Any) -> None:
    global _rt, _http  # a forked child must not share its parent's sockets
    _rt, _http = None, None


def rt() -> Runtime:
    global _rt
    if _rt is None:
        _rt = Runtime(app.conf.dialer_settings)
    return _rt


def http() -> requests.Session:
    global _http
    if _http is None:
        # webhook URLs come from API callers: the egress policy judges each connect
        _http = rt().egress.session()
    return _http


class _Celery:
    """The settle step's follow-ups as Celery tasks (``dialer.services.settle.Followups``)."""

    def dial_all(self, call_ids: Sequence[str]) -> None:
        # One broker round trip for all (a submit admits up to the account's
        # limit at once), with this task as their parent, as apply_async would.
        if call_ids:
            queue.publish(app, [("dial", (c,)) for c in call_ids])

    def notify(self, call_id: str) -> None:
        notify.apply_async((call_id,))

    def notify_campaign(self, cid: str) -> None:
        notify_campaign.apply_async((cid,))


THEN = _Celery()


def admit_and_dispatch(account: str, now: float | None = None) -> list[str]:
    """Run admission for one account and send each admitted call to ``dialer.dial``."""
    return settle.admit(rt(), account, THEN, now=time.time() if now is None else now)


@app.task(name=task_name("admit"))
def admit(account: str) -> dict[str, Any]:
    return {"account": account, "admitted": len(admit_and_dispatch(account))}


@app.task(name=task_name("dial"))
def dial(call_id: str) -> dict[str, Any]:
    result = dial_call(rt(), call_id)
    THEN.dial_all(result.admitted)  # the slot it released, refilled by its commit
    if result.settlement is not None:
        settle.settle(rt(), [result.settlement], THEN, now=time.time())
    return result.summary()


@app.task(name=task_name("followup"))
def followup(call_id: str, refill: bool, final: bool, attempt: int | None = None) -> dict[str, Any]:
    """The settle step for a transition the receiver won (``Settlement.args``).

    The receiver refills inline, so ``refill`` is False from it: admission runs
    once per released slot.
    """
    done = settle.Settlement(call_id, refill=refill, final=final, attempt=attempt)
    admitted = settle.settle(rt(), [done], THEN, now=time.time())
    return {"call_id": call_id, "admitted": len(admitted), "final": final}


def webhook_key(facts: CampaignFacts) -> bytes:
    """The campaign's account's own webhook key: never the master secret or a derived key."""
    account = rt().account(facts.account)
    if account is None or not account.webhook_key:
        raise ConfigError(f"account {facts.account} has no webhook key")
    return account.webhook_key.encode()


@app.task(name=task_name("notify"), bind=True, max_retries=12)
def notify(self: Any, call_id: str) -> dict[str, Any]:
    facts = rt().campaign_of_call(call_id)
    if facts is None or not facts.webhook_url:
        return {"call_id": call_id, "sent": False}
    h: dict[str, str] = rt().r.hgetall(keys.call(facts.account, call_id))  # type: ignore[assignment]
    data = {"campaign": facts.cid, **results.call_result(call_id, h)}
    try:
        status, reply = deliver(
            http(), facts.webhook_url, webhook_key(facts), "call.final", f"{call_id}:final", data
        )
    except NotPlacedError as exc:
        # countdown stays below the broker visibility timeout (dialer.platform.queue)
        raise self.retry(countdown=min(60, 2**self.request.retries), exc=exc) from None
    except (RequestRejected, ConfigError) as exc:
        return {"call_id": call_id, "sent": False, "error": str(exc)}
    if isinstance(reply, dict) and reply.get("do_not_call") is True:
        rt().r.sadd(keys.dnc(facts.account), h["to"])  # the client said: never again
    return {"call_id": call_id, "sent": True, "status": status}


@app.task(name=task_name("notify_campaign"), bind=True, max_retries=12)
def notify_campaign(self: Any, cid: str) -> dict[str, Any]:
    facts = rt().campaign(cid)
    if facts is None or not facts.webhook_url:
        return {"campaign": cid, "sent": False}
    data = queries.status(rt().r, cid) or {}
    try:
        deliver(http(), facts.webhook_url, webhook_key(facts), "campaign.done", f"{cid}:done", data)
    except NotPlacedError as exc:
        raise self.retry(countdown=min(60, 2**self.request.retries), exc=exc) from None
    except (RequestRejected, ConfigError) as exc:
        return {"campaign": cid, "sent": False, "error": str(exc)}
    return {"campaign": cid, "sent": True}


@app.task(name=task_name("tick"))
def tick() -> dict[str, int]:
    """Beat: admit due retries and whatever a lost follow-up left waiting."""
    return {a: len(admit_and_dispatch(a)) for a in all_accounts(rt().r)}


@app.task(name=task_name("reconcile"))
def reconcile() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for account in all_accounts(rt().r):
        try:
            report = reconcile_account(rt(), account)
        except Exception:
            # One account's trouble (its hash unreadable, its API down in a way
            # nobody foresaw) must not stop the pass for the others.
            log.exception("reconcile failed for account %s", account, extra={"account": account})
            out[account] = {"error": True}
            continue
        THEN.dial_all(report.redispatch)
        settle.settle(rt(), report.settlements, THEN, now=time.time())
        out[account] = {
            "redispatched": len(report.redispatch),
            "settled": len(report.settled),
            "requeued": len(report.requeued),
            "renewed": len(report.renewed),
            "deferred": len(report.deferred),
            "requests": report.requests,
            "errors": report.errors,
        }
    return out


@app.task(name=task_name("retention"))
def retention_sweep() -> dict[str, int]:
    """Beat: finished campaigns get their expiry; expired ones leave the index."""
    return retention.sweep(rt().r, retention_s=rt().settings.retention_s)


@app.task(name=task_name("submit_campaign"))
def submit_campaign(payload: dict[str, Any]) -> dict[str, Any]:
    spec = campaign.CampaignIn.model_validate(payload)
    s = rt().settings
    result = ingest.create_campaign(
        rt().r,
        spec,
        default_region=s.DIALER_DEFAULT_REGION,
        lease_margin_s=s.DIALER_LEASE_MARGIN_S,
        survey_dir=s.DIALER_SURVEY_DIR,
    )
    admit_and_dispatch(spec.account)
    return {
        "id": result["id"],
        "accepted": result["accepted"],
        "rejected": len(result["rejected"]),
        "duplicates": result["duplicates"],
    }


@app.task(name=task_name("cancel_campaign"))
def cancel_campaign(cid: str) -> dict[str, Any]:
    """Settle every waiting call of a cancelled campaign; ringing calls go on."""
    facts = rt().campaign(cid)
    if facts is None:
        return {"campaign": cid, "cancelled": 0}
    n = 0
    now = time.time()
    done: list[settle.Settlement] = []
    for call_id in campaigns.waiting_calls(rt().r, facts.account, cid):
        t = transition(
            rt().r,
            facts.account,
            call_id,
            Event(Kind.CANCEL, reason="campaign cancelled", at=now),
            facts.policy,
            now=now,
            leases=facts.leases,
        )
        if t is not None and t.changed and t.after.state is State.CANCELLED:
            n += 1
        settled = settle.of(call_id, t)
        if settled is not None:
            done.append(settled)
    rt().r.delete(keys.queue(facts.account, cid), keys.delayed(facts.account, cid))
    settle.settle(rt(), done, THEN, now=now)
    if not done:  # nothing was waiting: the campaign may be complete all the same
        settle.finish_if_done(rt(), facts, THEN, now=now)
    return {"campaign": cid, "cancelled": n}
