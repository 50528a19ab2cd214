"""The Celery configuration: queues, routes, broker options, beat schedule.

One home for it, shared by the consumer side (``workers.app``, which adds the
task modules and the process signals) and the producer side (the receiver,
which only publishes). Importing this module has no side effect: no settings
are read and no app is built until a process calls ``make_celery(settings)``.

The broker is ``Settings.broker_url``: ``CELERY_BROKER_URL`` when set (a
RabbitMQ ``amqp://`` URL, or another Redis), else the state Redis
(``REDIS_URL``), so a single host needs nothing more.

Why these settings, on any broker: ``acks_late`` + ``task_reject_on_worker_lost``
so a task whose worker died is delivered again (the dial compare-and-set makes
that safe); prefetch multiplier 1 so a busy worker does not hoard dial tasks
(each worker thread holds at most the task it runs). No task ever waits for a
slot in the broker: calls wait in Redis.

Redis transport: a visibility timeout longer than any task (it re-delivers
unacked tasks after it) but short enough that leases, not redelivery, are the
safety net. Queues are taken in the order the worker lists them
(``queue_order_strategy: priority``; ``dialer worker --queues`` puts ``dial``
first): a worker with a free thread takes a waiting dial before any follow-up,
notify or maintenance task, where kombu's default rotates between the queues.
A dial is the one task on the refill path (a free slot waits for it), and at
most the admitted calls are ever queued as dials, so the other queues wait
only as long as the admitted dials take. Measured in the whole-system
benchmark (``benchmarks/profiles.md``): refill p99 193-254 ms against
231-301 ms rotating, in four interleaved pairs of runs.

RabbitMQ: durable *classic* queues, persistent messages (Celery's default
delivery mode), publisher confirms (``confirm_publish``: a publish returns only
once the broker has the message, so an accepted callback's follow-up is not
lost in a broker crash). Not quorum queues, although RabbitMQ recommends them
for replication: Celery turns global QoS off on quorum queues, and then
countdown/ETA tasks (the retries of ``dialer.notify`` and ``dialer.followup``)
work only through kombu's native delayed delivery, which needs topic
exchanges (ours are one direct exchange per queue, see ``task_queues``) and
declares 28 extra ``celery_delayed_*`` queues. A replicated broker is the
operator's RabbitMQ policy (or a managed broker), not a queue argument here;
losing a queued dial is safe either way (the call stays admitted in Redis and
reconciliation settles its lease).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextlib import nullcontext
from typing import Any
from urllib.parse import urlsplit

from celery import Celery
from celery.utils import uuid
from kombu import Exchange, Queue

from dialer.core.settings import Settings

log = logging.getLogger(__name__)

QUEUES = ("dial", "followup", "notify", "maintenance")
#: every task the dialer runs, by its short name, and the queue it goes to. The
#: names themselves (``dialer.<short>``, see ``task_name``) are a stable contract:
#: other applications and beats of an older release send them.
TASK_QUEUES = {
    "dial": "dial",
    "admit": "followup",
    "followup": "followup",
    "notify": "notify",
    "notify_campaign": "notify",
    "submit_campaign": "maintenance",
    "cancel_campaign": "maintenance",
    "tick": "maintenance",
    "reconcile": "maintenance",
    "retention": "maintenance",
}


def task_name(short: str) -> str:
    """``"reconcile"`` -> ``"dialer.reconcile"``.

    Spelled through this function, never as a literal beside module paths, so
    that a rewrite of module paths (``dialer.reconcile`` became
    ``dialer.services.reconcile``) cannot rename a task.
    """
    if short not in TASK_QUEUES:
        raise KeyError(f"no task {short!r}")
    return f"dialer.{short}"


ROUTES = {task_name(short): {"queue": queue} for short, queue in TASK_QUEUES.items()}
VISIBILITY_TIMEOUT_S = 120  # > connect+read timeout of a dial, > longest notify countdown
RETENTION_SWEEP_S = 300.0  # how often finished campaigns get their expiry (dialer.store.retention)


def broker_kind(url: str) -> str:
    """``"amqp"`` (RabbitMQ) or ``"redis"``, from the broker URL's scheme."""
    scheme = urlsplit(url).scheme
    return "amqp" if scheme in ("amqp", "amqps", "pyamqp") else "redis"


def transport_options(url: str) -> dict[str, Any]:
    if broker_kind(url) == "amqp":
        return {"confirm_publish": True}
    return {"visibility_timeout": VISIBILITY_TIMEOUT_S, "queue_order_strategy": "priority"}


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    return {
        "tick": {
            "task": task_name("tick"),
            "schedule": settings.DIALER_TICK_S,
            "options": {"expires": settings.DIALER_TICK_S * 5},
        },
        # Often: a stream's end makes its call due DIALER_STREAM_GRACE_S later,
        # and the pass is one ZRANGEBYSCORE per account when nothing is due.
        "reconcile": {
            "task": task_name("reconcile"),
            "schedule": settings.DIALER_RECONCILE_TICK_S,
            "options": {"expires": max(30.0, settings.DIALER_RECONCILE_TICK_S * 5)},
        },
        # Expiry is set on finished campaigns here; Redis itself deletes them later.
        "retention": {
            "task": task_name("retention"),
            "schedule": RETENTION_SWEEP_S,
            "options": {"expires": RETENTION_SWEEP_S},
        },
    }


def celery_config(settings: Settings) -> dict[str, Any]:
    """The ``app.conf`` of every dialer process, worker or producer."""
    url = settings.broker_url
    return {
        "broker_url": url,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "task_store_errors_even_if_ignored": False,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_default_queue": "followup",
        # One direct exchange per queue: with a shared default exchange every queue
        # would be bound to the same routing key and receive every task. Durable
        # (kombu's default), so a RabbitMQ restart keeps them and their messages.
        "task_queues": [
            Queue(q, Exchange(q, type="direct", durable=True), routing_key=q, durable=True)
            for q in QUEUES
        ],
        "task_routes": dict(ROUTES),
        "task_default_delivery_mode": "persistent",
        "broker_transport_options": transport_options(url),
        "broker_connection_retry_on_startup": True,
        # Off: publishing task-received/started/succeeded events was ~16 % of a
        # busy worker's samples (py-spy, issue #17) and the receiver paid a
        # task-sent event per publish. Flower turns the workers' events on itself
        # (its enable_events broadcast); ``dialer worker --task-events`` does too.
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "worker_hijack_root_logger": False,
        "beat_schedule": beat_schedule(settings),
        "beat_schedule_filename": str(settings.DIALER_DATA_DIR / "celerybeat-schedule"),
    }


def make_celery(settings: Settings, include: tuple[str, ...] = ()) -> Celery:
    """A Celery app on ``settings``' broker; ``include``: task modules (workers only).

    The receiver calls it with no ``include``: a producer that publishes by
    task name (``send_task``) and never imports the worker side.
    """
    app = Celery("dialer", include=list(include))
    app.conf.update(celery_config(settings))
    app.conf.dialer_settings = settings
    return app


def publish(app: Celery, tasks: Iterable[tuple[str, tuple[Any, ...]]]) -> None:
    """Send tasks (short name, args) from a producer process, blocking: one producer for all.

    The same messages as ``app.send_task(task_name(short), args=args)`` (queue by
    ``TASK_QUEUES``, the queue still declared), without its per-call work that
    a producer of id-only tasks does not need: the router (our routes are this
    module's table), the task registry lookup, a producer from the pool per
    task, and ``saferepr`` of the arguments (``repr`` of a tuple of ids is the
    same text). Half the CPU per publish of ``send_task`` (issue #17).

    On the Redis broker the messages go in one round trip (kombu's
    ``Producer.batch``: their ``LPUSH``es in one pipeline) instead of one each;
    a terminal callback's dial and follow-up were a fifth of the receiver's
    CPU, most of it in those round trips. On RabbitMQ kombu publishes each at
    once, confirmed, as before. A batch is sent without kombu's publish retry,
    so one that fails is sent again message by message, with it: a batch cut
    short may then deliver a message twice, which is what a redelivered task
    (``acks_late``) already is to its task (a second dial loses the
    compare-and-set).

    Called inside a task (a worker's admission), the messages name it as
    their parent and its root as theirs, as ``send_task`` does: Flower's task
    tree stays whole.
    """
    # named here, once: an unknown task is a KeyError before anything is sent
    todo = [(task_name(short), TASK_QUEUES[short], args) for short, args in tasks]
    try:
        _send(app, todo, batch=True)
    except Exception as exc:
        log.warning("batched publish failed (%s), sending one by one", type(exc).__name__)
        _send(app, todo, batch=False)


def _send(app: Celery, tasks: list[tuple[str, str, tuple[Any, ...]]], *, batch: bool) -> None:
    """``tasks``: (task name, queue, args) each."""
    amqp = app.amqp
    parent = app.current_worker_task
    parent_id = parent.request.id if parent is not None else None
    root_id = (parent.request.root_id or parent_id) if parent is not None else None
    with app.producer_or_acquire() as producer, producer.batch() if batch else nullcontext():
        for name, queue, args in tasks:
            message = amqp.create_task_message(
                uuid(),
                name,
                args,
                {},
                reply_to=app.thread_oid,
                create_sent_event=app.conf.task_send_sent_event,
                argsrepr=repr(args),
                kwargsrepr="{}",
                root_id=root_id,
                parent_id=parent_id,
                ignore_result=None,  # as send_task: the task (ignore_result) decides
            )
            with producer.connection._reraise_as_library_errors():
                amqp.send_task_message(producer, name, message, queue=queue)
