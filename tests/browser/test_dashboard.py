"""The dashboard in real Chromium against a real system on loopback.

Receiver, worker, streamer and the sandbox Exotel run as processes (the
integration harness); the browser signs in, uploads a CSV and a survey,
starts the campaign, watches it finish without a reload, reads the answer
charts (checked against ``dialer results``), pauses, resumes, cancels,
exports, manages an account, and signs in with a key of another account
that sees none of it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.browser import shot
from tests.support.polling import wait_for
from tests.support.system import System, running_system, with_db

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

SANDBOX_ARGS = [
    "--calls-per-minute", "100000", "--ring-s", "0.05",
    "--talk-max-s", "30", "--think-s", "0.05",
]  # fmt: skip
XSS = "<script>window.__xss=1</script>"
DEMO = Path(str(resources.files("dialer.cli").joinpath("demo")))


@pytest.fixture(scope="module")
def system(redis_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    url = with_db(redis_server_url, 9)  # the suite's test database (tests/conftest.py)
    redis.Redis.from_url(url).flushdb()
    tmp = tmp_path_factory.mktemp("dashboard")
    with running_system(url, tmp, workers=1, max_concurrent=4, sandbox_args=SANDBOX_ARGS) as found:
        found.register(max_concurrent=4)
        found.api.add_account(
            "other", "k", "t", "08047112345", api_url=found.sandbox_url, max_concurrent_calls=2
        )
        yield found


@pytest.fixture
def page(browser: Any, system: System) -> Iterator[Any]:
    context = browser.new_context(base_url=system.sup.settings.api_url, accept_downloads=True)
    found = context.new_page()
    found.set_default_timeout(15_000)
    errors: list[str] = []
    # a CSP violation or a script error shows up here: none is allowed
    found.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    # ...except the browser's own note of a refused request (a 404 the test asks for)
    expected = ("Failed to load resource", "EventSource's response has a MIME type")
    found.on("pageerror", lambda e: errors.append(str(e)))
    yield found
    context.close()
    assert not [e for e in errors if not e.startswith(expected)], errors


def sign_in(page: Any, key: str) -> None:
    page.goto("/ui/signin")
    page.fill("#key", key)
    page.click("button[type=submit]")
    page.wait_for_url("**/ui/")


def closed_window() -> dict[str, str]:
    """A calling window eleven hours from now in India: calls wait, nothing is dialled."""
    hour = (datetime.now(timezone(timedelta(hours=5, minutes=30))).hour + 11) % 24
    hour = min(hour, 22)
    return {"days": "mon-sun", "start": f"{hour:02d}:00", "end": f"{hour + 1:02d}:00"}


def results_cli(system: System, cid: str) -> list[dict[str, Any]]:
    env = {**os.environ, "DIALER_API_KEY": system.sup.settings.api_key}
    out = subprocess.run(
        [str(Path(sys.prefix) / "bin" / "dialer"), "results", cid, "--format", "json",
         "--api", system.sup.settings.api_url],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    rows: list[dict[str, Any]] = json.loads(out.stdout)
    return rows


def answer_charts(page: Any) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = page.eval_on_selector_all(
        ".answer-chart",
        """charts => Object.fromEntries(charts.map(c => [c.dataset.question,
            Object.fromEntries([...c.querySelectorAll("rect[data-label]")].map(
                r => [r.dataset.label, Number(r.dataset.count)]))]))""",
    )
    return found


def test_sign_in_refuses_a_wrong_key(page: Any) -> None:
    page.goto("/ui/")
    page.wait_for_url("**/ui/signin*")
    page.fill("#key", "not-a-key")
    page.click("button[type=submit]")
    page.wait_for_selector("#signin-error:has-text('wrong API key')")
    shot(page, "signin")


def test_survey_campaign_from_upload_to_answers(page: Any, system: System) -> None:
    numbers = [f"+9198765{i:05d}" for i in range(6)]
    system.sandbox.set_numbers({numbers[0]: {"dtmf": ["2", "3"]}, numbers[1]: {"dtmf": ["2", "1"]}})
    rows = [["to", "name"], [numbers[0], XSS], ["bogus", "x"]]
    rows += [[n, f"c{n[-2:]}"] for n in numbers[1:]]
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    sign_in(page, system.sup.settings.api_key)
    shot(page, "campaigns-empty")
    page.click("text=New campaign")
    page.wait_for_url("**/ui/new")
    page.select_option("#account", "sandbox")
    page.fill("#name", "browser-survey")
    upload = {"name": "contacts.csv", "mimeType": "text/csv", "buffer": text.getvalue().encode()}
    page.set_input_files("#csv", files=[upload])
    page.check("input[name=bot][value=survey]")
    page.set_input_files("#survey", [str(DEMO / n) for n in sorted(os.listdir(DEMO))])
    page.fill("#max_attempts", "1")
    page.click("#preview")
    page.wait_for_selector("#preview-box:not(.hidden)")
    assert "6 contacts will be called, 1 rows rejected" in page.inner_text("#preview-summary")
    assert page.inner_text("#rejected tbody td").strip() == "3"  # the CSV line of "bogus"
    shot(page, "new-campaign-preview")
    page.click("#start")
    page.wait_for_url("**/ui/campaign?id=*")
    cid = page.url.rsplit("=", 1)[1]
    page.evaluate("window.__sameDocument = true")
    # live: the bar reaches 100 % by server-sent events, the page is never reloaded
    page.wait_for_selector("#progress svg[aria-valuenow='100']", timeout=150_000)
    assert page.evaluate("window.__sameDocument") is True
    page.wait_for_selector("#state:has-text('done')")

    rows_cli = results_cli(system, cid)
    expected: dict[str, Counter[str]] = {}
    for row in rows_cli:
        for q, a in row["answers"].items():
            expected.setdefault(q, Counter())[a] += 1
    assert expected and expected["q1"]["2"] == 2  # the two callees who pressed 2
    want = {q: dict(c) for q, c in expected.items()}
    wait_for(lambda: answer_charts(page) == want, timeout_s=30, what="the answer charts")

    # the contact holding markup shows it as text; nothing ran
    page.fill("#search", "script")
    page.wait_for_selector("#contacts-count:has-text('1 contacts')")
    assert page.inner_text("#contacts td.vars") == f"name: {XSS}"
    assert page.evaluate("window.__xss") is None
    assert page.locator("#contacts script").count() == 0
    page.click("#contacts tr.contact")
    detail = page.locator("#contacts tr.detail")
    detail.wait_for()
    assert "completed" in detail.inner_text() and "q1 = 2" in detail.inner_text()
    page.fill("#search", "")
    page.wait_for_selector("#contacts-count:has-text('6 contacts')")
    shot(page, "campaign-done")

    with page.expect_download() as download:
        page.click("#export-csv")
    exported = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert sorted(r["to"] for r in exported) == sorted(numbers)
    assert {r["to"]: r["answers"] for r in exported}[numbers[0]] == "q1=2;q2=3"
    with page.expect_download() as download:
        page.click("#export-json")
    assert len(json.loads(Path(download.value.path()).read_text())) == 6

    page.click("header >> text=Campaigns")
    row = page.locator(f"#campaigns tr[data-id='{cid}']")
    row.wait_for()
    assert "100 %" in row.inner_text() and "done" in row.inner_text()
    shot(page, "campaigns")


def test_pause_resume_and_cancel_with_confirmation(page: Any, system: System) -> None:
    api = system.api
    waiting = [{"to": f"+9198766{i:05d}"} for i in range(3)]
    first = api.create_campaign("sandbox", waiting, name="held", window=closed_window())["id"]
    second = api.create_campaign("sandbox", waiting, name="to-cancel", window=closed_window())["id"]
    sign_in(page, system.sup.settings.api_key)
    page.goto(f"/ui/campaign?id={first}")
    page.wait_for_selector("#state:has-text('running')")
    page.click("#pause")
    page.wait_for_selector("dialog#confirm")
    shot(page, "confirm-pause")
    page.click("#confirm-yes")
    page.wait_for_selector("#state:has-text('paused')")
    assert api.get_campaign(first)["state"] == "paused"
    page.click("#resume")
    page.click("#confirm-yes")
    page.wait_for_selector("#state:has-text('running')")
    assert api.get_campaign(first)["state"] == "running"

    page.goto(f"/ui/campaign?id={second}")
    page.wait_for_selector("#state:has-text('running')")
    page.click("#cancel")
    page.click("#confirm-no")  # changed their mind: nothing happens
    assert page.locator("dialog#confirm").count() == 0
    assert api.get_campaign(second)["state"] == "running"
    page.click("#cancel")
    page.click("#confirm-yes")
    page.wait_for_selector("#state:has-text('cancelled')")
    assert api.get_campaign(second)["state"] == "cancelled"
    assert api.get_campaign(first)["state"] == "running"
    shot(page, "campaign-cancelled")
    page.goto("/ui/")
    page.select_option("#state", "cancelled")
    page.wait_for_selector(f"#campaigns tr[data-id='{second}']")
    assert page.locator("#campaigns tbody tr").count() == 1


def test_accounts_circuit_resume_and_dnc_import(page: Any, system: System) -> None:
    from dialer.services.accounts import open_circuit

    r = redis.Redis.from_url(system.sup.settings.REDIS_URL, decode_responses=True)
    open_circuit(r, "other", "Exotel answered 401")
    sign_in(page, system.sup.settings.api_key)
    page.goto("/ui/accounts")
    other = page.locator("section[data-sid='other']")
    other.locator(".circuit:has-text('circuit open')").wait_for()
    assert "Exotel answered 401" in other.inner_text()
    shot(page, "accounts-circuit-open")
    other.locator("button.resume").click()
    page.click("#confirm-yes")
    other.locator(".circuit:has-text('circuit closed')").wait_for()
    assert r.hget("dl:{other}:account", "circuit") in (None, "", "closed")
    page.fill("#dnc-other", "+919876599999\nbogus")
    other.locator("text=Import do-not-call numbers").click()
    other.locator("p:has-text('added 1')").wait_for()
    other.locator(".dnc-count:has-text('1 numbers')").wait_for()
    sandbox = page.locator("section[data-sid='sandbox'] svg.gauge")
    assert sandbox.get_attribute("data-limit") == "4"
    shot(page, "accounts")


def test_a_key_of_another_account_sees_none_of_it(page: Any, system: System) -> None:
    some = system.api.create_campaign(
        "sandbox", [{"to": "+919876700001"}], name="not-yours", window=closed_window()
    )["id"]
    key = system.api.create_key(["other"], label="browser test")["key"]
    sign_in(page, key)
    page.wait_for_selector("#count:has-text('0 campaigns')")
    assert page.locator("#campaigns tbody tr").count() == 0
    assert page.locator("#account option").all_inner_texts() == ["any", "other"]
    page.goto(f"/ui/campaign?id={some}")
    page.wait_for_selector("#name:has-text('no such campaign')")
    assert page.request.get(f"/v1/campaigns/{some}").status == 404
    page.goto("/ui/accounts")
    page.locator("section[data-sid='other']").wait_for()
    assert page.locator("section[data-sid]").count() == 1
    shot(page, "other-account")
    page.click("#signout")
    page.wait_for_url("**/ui/signin")
    page.goto("/ui/")
    page.wait_for_url("**/ui/signin*")
