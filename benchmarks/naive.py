"""The naive baseline: "a Celery task per contact that retries with a countdown until a slot frees".

Its own small Celery app on the same Redis broker, with the broker and worker
settings read from ``workers.app.make_app`` (acks_late, reject on worker loss,
prefetch 1, JSON, the same visibility timeout, task events as the app has them). Run its
workers with::

    NAIVE_BROKER_URL=redis://... celery -A benchmarks.naive worker -Q naive -P threads -c 8

``naive.call(spec)`` INCRs a Redis counter; above the limit it DECRs and
``self.retry(countdown=1)``; otherwise it POSTs the connect request to the
(sandbox) Exotel itself. The slot is released by the benchmark's own callback
endpoint, which DECRs the counter when the call's terminal status arrives
(see ``benchmarks.slots``). ``naive.noop`` is the no-op task the dial
throughput is compared with.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis
from celery import Celery

from dialer.core.exotel import ConnectParams
from dialer.net.exotel import ExotelClient

BROKER = os.environ.get("NAIVE_BROKER_URL", "redis://127.0.0.1:6379/12")
QUEUE = "naive"
COUNTER = "naive:active"
ATTEMPTS = "naive:attempts"  # every execution of naive.call, retries included

# The broker and worker settings taken from the real app, not its queues, routes or beat.
SHARED_SETTINGS = (
    "task_acks_late",
    "task_reject_on_worker_lost",
    "worker_prefetch_multiplier",
    "task_ignore_result",
    "task_store_errors_even_if_ignored",
    "task_serializer",
    "accept_content",
    "broker_transport_options",
    "broker_connection_retry_on_startup",
    "worker_send_task_events",
    "task_send_sent_event",
    "worker_hijack_root_logger",
)


def real_settings() -> dict[str, Any]:
    """The values of ``SHARED_SETTINGS`` in the dialer's own Celery app (``workers.app``)."""
    from dialer.core.settings import load_settings
    from workers.app import make_app

    conf = make_app(load_settings()).conf
    return {name: conf[name] for name in SHARED_SETTINGS}


_shared = real_settings()  # before the naive app: the app made last is Celery's current app
app = Celery("naive", broker=BROKER)
app.conf.update(**_shared, task_default_queue=QUEUE)

_r: redis.Redis | None = None
_clients: dict[str, ExotelClient] = {}


def r() -> redis.Redis:
    global _r
    if _r is None:
        _r = redis.Redis.from_url(BROKER, decode_responses=True)
    return _r


def client(api_url: str) -> ExotelClient:
    c = _clients.get(api_url)
    if c is None:
        c = _clients[api_url] = ExotelClient(
            "sandbox",
            "sandbox-key",
            "sandbox-token",
            base_url=api_url,
            connect_timeout_s=5,
            read_timeout_s=15,
        )
    return c


# shared=False: only this app runs them (a shared task is added to every Celery app
# made later, the dialer's too, when a test imports this module first)
@app.task(bind=True, name="naive.call", max_retries=None, shared=False)
def call(self: Any, spec: dict[str, Any]) -> str:
    """spec: number, limit, api_url, callback_url, stream_url, custom."""
    rr = r()
    with rr.pipeline(transaction=False) as pipe:  # one round trip, as a bare INCR
        pipe.incr(COUNTER)
        pipe.incr(ATTEMPTS)
        active, _ = pipe.execute()
    if int(active) > int(spec["limit"]):
        rr.decr(COUNTER)
        raise self.retry(countdown=1)
    params = ConnectParams(
        from_number=spec["number"],
        caller_id="08047112345",
        stream_url=spec["stream_url"],
        custom_field=spec["custom"],
        status_callback=spec["callback_url"],
        status_callback_events=("ringing", "answered", "terminal"),
        time_limit_s=3600,
    )
    try:
        info = client(spec["api_url"]).connect(params)
    except Exception:
        rr.decr(COUNTER)
        raise self.retry(countdown=1) from None
    return info.sid


@app.task(name="naive.noop", shared=False)
def noop(key: str, total: int) -> None:
    """Counts itself (one INCR) and stamps the first and last execution."""
    rr = r()
    n = int(rr.incr(key))  # type: ignore[arg-type]
    if n == 1:
        rr.set(key + ":first", time.time())
    if n == total:
        rr.set(key + ":last", time.time())
