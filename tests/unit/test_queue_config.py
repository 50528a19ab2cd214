"""The Celery configuration module: side-effect free, broker-aware, the receiver's only link."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dialer.core.errors import ConfigError
from dialer.core.settings import load_settings
from dialer.platform.queue import QUEUES, ROUTES, celery_config, make_celery


def _imports(module: str) -> set[str]:
    """Modules loaded by importing ``module`` in a fresh interpreter.

    With an invalid setting in its environment: an import that loaded the
    settings (or built the worker app, which does) would fail.
    """
    out = subprocess.run(
        [sys.executable, "-c", f"import sys, {module}; print(*sorted(sys.modules))"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DIALER_PORT": "not-a-port"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return set(out.stdout.split())


def test_importing_the_config_module_reads_no_settings_and_loads_no_worker() -> None:
    loaded = _imports("dialer.platform.queue")
    assert not {m for m in loaded if m.split(".")[0] == "workers"}


def test_the_receiver_never_imports_the_worker_side() -> None:
    loaded = _imports("dialer.receiver.app")
    assert not {m for m in loaded if m.split(".")[0] == "workers"}
    assert "dialer.platform.queue" in loaded, "its producer comes from the config module"


def test_the_broker_defaults_to_the_state_redis() -> None:
    s = load_settings(REDIS_URL="redis://10.9.8.7:6380/3")
    assert s.broker_url == "redis://10.9.8.7:6380/3"
    conf = celery_config(s)
    assert conf["broker_url"] == s.redis_url
    assert conf["broker_transport_options"] == {
        "visibility_timeout": 120,
        "queue_order_strategy": "priority",
    }


def test_rabbitmq_gets_confirms_durable_queues_and_late_acks() -> None:
    s = load_settings(
        REDIS_URL="redis://127.0.0.1:6379/0", CELERY_BROKER_URL="amqp://u:p@mq:5672/dialer"
    )
    app = make_celery(s)
    conf = app.conf
    assert conf.broker_url == "amqp://u:p@mq:5672/dialer" and s.redis_url.startswith("redis:")
    assert conf.broker_transport_options == {"confirm_publish": True}
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_default_delivery_mode == "persistent"
    assert {q.name for q in conf.task_queues} == set(QUEUES)
    assert all(q.durable and q.exchange.durable for q in conf.task_queues)
    assert conf.task_routes == ROUTES and conf.task_routes["dialer.dial"] == {"queue": "dial"}
    assert not app.conf.include, "a producer loads no task module"


def test_a_broker_url_of_another_scheme_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="CELERY_BROKER_URL"):
        load_settings(CELERY_BROKER_URL="sqs://queue")
    assert load_settings(CELERY_BROKER_URL="").CELERY_BROKER_URL is None  # compose's empty default


def test_the_brokers_password_is_redacted_from_logs_and_the_up_banner() -> None:
    import logging

    from dialer.cli.supervisor import redact_url
    from dialer.platform.logs import RedactSecrets, register_settings_secrets

    s = load_settings(CELERY_BROKER_URL="amqp://dialer:s3cret-broker-pw@mq:5672/v")
    register_settings_secrets(s)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, s.broker_url, None, None)
    RedactSecrets().filter(record)
    assert "s3cret-broker-pw" not in record.getMessage()
    assert redact_url(s.broker_url) == "amqp://dialer:***@mq:5672/v"


def test_up_refuses_a_bad_broker_url_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from dialer.cli.up import up

    monkeypatch.setenv("DIALER_DATA_DIR", str(tmp_path))
    for name in ("EXOTEL_ACCOUNT_SID", "EXOTEL_API_KEY", "EXOTEL_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    out = CliRunner().invoke(up, ["--broker", "sqs://queue"])
    assert out.exit_code == 2, out.output
    assert "CELERY_BROKER_URL" in out.output


def test_task_names_are_the_stable_contract_and_all_routed() -> None:
    import workers.tasks  # noqa: F401  (registers the tasks)
    from workers.app import app

    ours = {name for name in app.tasks if not name.startswith("celery.")}
    assert ours == set(ROUTES), "every task has a queue, every route a task"
    # the published names (DESIGN.md), spelled apart so no module-path rewrite can touch them
    contract = {"dial", "admit", "followup", "notify", "notify_campaign", "submit_campaign"}
    contract |= {"cancel_campaign", "tick", "reconcile", "retention"}
    assert ours == {"dialer" + "." + short for short in contract}
