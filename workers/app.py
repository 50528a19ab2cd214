"""The worker side's Celery app: the shared configuration plus the tasks.

Entry point of the worker and beat processes (``dialer worker``, ``dialer
beat``, or ``celery -A workers.app``). Settings are read once, here. Queues,
routes, broker options and the beat schedule live in ``dialer.platform.queue``
(the receiver builds its producer from the same module).
"""

from __future__ import annotations

import logging
import os
import sys

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger, beat_init, worker_init

from dialer.core.settings import Settings, load_settings, server_secret_problems
from dialer.platform.logs import RedactSecrets, register_settings_secrets
from dialer.platform.queue import make_celery


def make_app(settings: Settings) -> Celery:
    return make_celery(settings, include=("workers.tasks",))


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
