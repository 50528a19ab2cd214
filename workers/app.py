"""The Celery app: configuration for at-most-once dialling and role queues.

Entry point of the worker and beat processes (``dialer worker``, ``dialer
beat``, or ``celery -A workers.app``). Settings are read once, here.

Why these settings: ``acks_late`` + ``task_reject_on_worker_lost`` so a task
whose worker died is delivered again (the dial compare-and-set makes that
safe); prefetch 1 so a busy worker does not hoard dial tasks; a visibility
timeout longer than any task (the Redis transport re-delivers unacked tasks
after it) but short enough that leases, not redelivery, are the safety net.
No task ever waits for a slot in the broker: calls wait in Redis.
"""

from __future__ import annotations

import logging
import os
import sys

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger, beat_init, worker_init
from kombu import Exchange, Queue

from dialer.core.settings import Settings, load_settings, server_secret_problems
from dialer.platform.logs import RedactSecrets, register_settings_secrets

QUEUES = ("dial", "followup", "notify", "maintenance")
VISIBILITY_TIMEOUT_S = 120  # > connect+read timeout of a dial, > longest notify countdown
RETENTION_SWEEP_S = 300.0  # how often finished campaigns get their expiry (dialer.store.retention)


def make_app(settings: Settings) -> Celery:
    url = settings.REDIS_URL or "redis://127.0.0.1:6379/0"
    app = Celery("dialer", broker=url, include=["workers.tasks"])
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_store_errors_even_if_ignored=False,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue="followup",
        # One direct exchange per queue: with a shared default exchange every queue
        # would be bound to the same routing key and receive every task.
        task_queues=[Queue(q, Exchange(q, type="direct"), routing_key=q) for q in QUEUES],
        task_routes={
            "dialer.dial": {"queue": "dial"},
            "dialer.admit": {"queue": "followup"},
            "dialer.followup": {"queue": "followup"},
            "dialer.notify": {"queue": "notify"},
            "dialer.notify_campaign": {"queue": "notify"},
            "dialer.submit_campaign": {"queue": "maintenance"},
            "dialer.cancel_campaign": {"queue": "maintenance"},
            "dialer.tick": {"queue": "maintenance"},
            "dialer.services.reconcile": {"queue": "maintenance"},
            "dialer.store.retention": {"queue": "maintenance"},
        },
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
        broker_connection_retry_on_startup=True,
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_hijack_root_logger=False,
        beat_schedule={
            "tick": {
                "task": "dialer.tick",
                "schedule": settings.DIALER_TICK_S,
                "options": {"expires": settings.DIALER_TICK_S * 5},
            },
            # Often: a stream's end makes its call due DIALER_STREAM_GRACE_S later,
            # and the pass is one ZRANGEBYSCORE per account when nothing is due.
            "reconcile": {
                "task": "dialer.services.reconcile",
                "schedule": settings.DIALER_RECONCILE_TICK_S,
                "options": {"expires": max(30.0, settings.DIALER_RECONCILE_TICK_S * 5)},
            },
            # Expiry is set on finished campaigns here; Redis itself deletes them later.
            "retention": {
                "task": "dialer.store.retention",
                "schedule": RETENTION_SWEEP_S,
                "options": {"expires": RETENTION_SWEEP_S},
            },
        },
        beat_schedule_filename=str(settings.DIALER_DATA_DIR / "celerybeat-schedule"),
    )
    app.conf.dialer_settings = settings
    return app


@after_setup_logger.connect
@after_setup_task_logger.connect
def _redact(logger: logging.Logger, **_: object) -> None:
    """Celery sets up its own handlers: give each the secret-redacting filter."""
    register_settings_secrets(app.conf.dialer_settings)
    for handler in logger.handlers:
        handler.addFilter(RedactSecrets())


@worker_init.connect
@beat_init.connect
def _fail_closed(**_: object) -> None:
    """``celery -A workers.app worker|beat`` too refuses to run on missing/default secrets.

    (``dialer worker``/``beat`` check before Celery starts.) Celery logs and
    swallows exceptions from signal handlers, hence the hard exit.
    """
    problems = server_secret_problems(app.conf.dialer_settings)
    if problems:
        print("error: refusing to start: " + "; ".join(problems), file=sys.stderr, flush=True)
        os._exit(2)


settings = load_settings()
app = make_app(settings)
