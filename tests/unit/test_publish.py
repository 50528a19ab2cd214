"""dialer.platform.queue.publish: the very messages send_task would send, on an in-memory
broker (no Redis, no worker)."""

from __future__ import annotations

from typing import Any

import pytest
from celery.signals import before_task_publish

from dialer.core.settings import load_settings
from dialer.platform.queue import make_celery, publish, task_name

TASKS = [("dial", ("c1",)), ("followup", ("c1", False, True, 1)), ("admit", ("sandbox",))]


def sent(send: Any) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []

    def record(**kw: Any) -> None:
        headers, properties = dict(kw["headers"]), dict(kw["properties"])
        headers.pop("id"), headers.pop("root_id"), properties.pop("correlation_id")
        got.append(
            {
                "task": kw["sender"],
                "body": kw["body"],
                "route": (kw["exchange"], kw["routing_key"]),
                "declare": [q.name for q in kw["declare"]],
                "headers": headers,
                "properties": properties,
                "retry_policy": kw["retry_policy"],
            }
        )

    before_task_publish.connect(record, weak=False)
    try:
        send()
    finally:
        before_task_publish.disconnect(record)
    return got


@pytest.fixture
def app() -> Any:
    app = make_celery(load_settings(REDIS_URL="redis://127.0.0.1:1/0"))
    app.conf.broker_url = "memory://"
    return app


def test_publish_sends_what_send_task_sends(app: Any) -> None:
    def one_by_one() -> None:
        for short, args in TASKS:
            app.send_task(task_name(short), args=args)

    ours = sent(lambda: publish(app, TASKS))
    theirs = sent(one_by_one)
    assert ours == theirs
    assert [m["route"] for m in ours] == [("", "dial"), ("", "followup"), ("", "followup")]
    assert ours[0]["headers"]["argsrepr"] == "('c1',)"


def test_publish_refuses_an_unknown_task(app: Any) -> None:
    with pytest.raises(KeyError):
        publish(app, [("no_such_task", ())])
