"""dialer.platform.queue.publish: the very messages send_task would send, on an in-memory
broker (no Redis, no worker)."""

from __future__ import annotations

from typing import Any

import pytest
from celery._state import _task_stack
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


def test_inside_a_task_publish_names_it_as_parent_as_send_task_does(app: Any) -> None:
    """A worker's admission publishes its dials from inside a task: Flower's tree
    (parent and root ids) is the same as with ``apply_async``."""

    @app.task(name="dialer.test_parent", shared=False)
    def parent() -> None: ...

    parent.push_request(id="task-1", root_id="root-0", called_directly=False)
    _task_stack.push(parent)
    try:
        ours = sent(lambda: publish(app, TASKS[:1]))
        theirs = sent(lambda: app.send_task(task_name("dial"), args=("c1",)))
    finally:
        _task_stack.pop()
        parent.pop_request()
    assert ours == theirs
    assert ours[0]["headers"]["parent_id"] == "task-1"
    root = sent(lambda: publish(app, TASKS[:1]))  # and outside a task, none
    assert root[0]["headers"]["parent_id"] is None
