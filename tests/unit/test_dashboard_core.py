"""The dashboard's pure parts: session cookies and CSRF tokens, chart counts, pages."""

from __future__ import annotations

from typing import Any

import pytest

from dialer.receiver.ui import charts, pages, sessions

KEY, OLD = b"k" * 32, b"o" * 32
NOW = 1_800_000_000.0


def test_a_session_verifies_for_its_key_only_until_it_expires() -> None:
    value = sessions.issue(KEY, "abc123", "digest-1", now=NOW)
    claim = sessions.verify([KEY], value, "digest-1", now=NOW + 10)
    assert claim is not None and claim.key_id == "abc123"
    assert claim.expires_at == int(NOW) + sessions.LIFETIME_S
    assert sessions.verify([KEY], value, "digest-2", now=NOW) is None  # another (rotated) key
    assert sessions.verify([OLD], value, "digest-1", now=NOW) is None  # another secret
    assert sessions.verify([OLD, KEY], value, "digest-1", now=NOW) is not None  # rotation
    assert sessions.verify([KEY], value, "digest-1", now=NOW + sessions.LIFETIME_S) is None


@pytest.mark.parametrize(
    "value", ["", "a.b.c", "a.1.c.d.e", "a.x.c.d", "a." + "9" * 300 + ".c.d", "é.1.c.d"]
)
def test_malformed_cookies_are_refused(value: str) -> None:
    assert sessions.verify([KEY], value, "d", now=NOW) is None


def test_csrf_token_belongs_to_one_cookie() -> None:
    one = sessions.issue(KEY, "a", "d", now=NOW)
    two = sessions.issue(KEY, "a", "d", now=NOW)
    assert one != two  # a fresh nonce each time
    token = sessions.csrf_token(KEY, one)
    assert sessions.csrf_ok([KEY], one, token)
    assert not sessions.csrf_ok([KEY], two, token)
    assert not sessions.csrf_ok([KEY], one, "")
    assert not sessions.csrf_ok([KEY], one, token + "é")


def row(outcome: str | None, attempts: list[dict[str, Any]], answers: dict[str, str]) -> dict:
    return {"id": "c", "to": "+91", "outcome": outcome, "state": outcome or "pending",
            "attempts": attempts, "answers": answers, "vars": {"name": "Asha"}}  # fmt: skip


def test_summary_counts_answers_attempts_and_outcomes_over_time() -> None:
    rows = [
        row("completed", [{"ended_at": 100.0}], {"q1": "1", "q2": "3"}),
        row("completed", [{"ended_at": 150.0}], {"q1": "2"}),
        row("busy", [{"ended_at": 110.0}, {"ended_at": 199.0}], {}),
        row(None, [], {}),
    ]
    out = charts.summarize(rows, created_at=100.0, now=500.0)
    assert out["answers"] == {"q1": {"1": 1, "2": 1}, "q2": {"3": 1}}
    assert out["attempts"] == {"0": 1, "1": 2, "2": 1}
    t = out["timeline"]
    assert t["start"] == 100.0 and t["step_s"] == pytest.approx(99.0 / charts.TIME_BUCKETS)
    assert sum(t["series"]["completed"]) == 2 and sum(t["series"]["busy"]) == 1
    assert t["series"]["busy"][-1] == 1  # its last attempt ended at the very end
    assert t["series"]["completed"][0] == 1


def test_eta_at_the_pace_so_far() -> None:
    assert charts.eta_s(100, 0, 0.0, 10.0) is None
    assert charts.eta_s(100, 25, 0.0, 10.0) == pytest.approx(30.0)
    assert charts.eta_s(100, 100, 0.0, 10.0) == 0.0


def test_search_and_filter() -> None:
    r = row("completed", [], {"q1": "2"})
    assert charts.matches(r, "", "")
    assert charts.matches(r, "asha", "completed")
    assert charts.matches(r, "q1=2", "")
    assert not charts.matches(r, "asha", "busy")
    assert not charts.matches(r, "nobody", "")


def test_up_and_demo_name_the_dashboard_and_a_sign_in_only_in_sandbox_mode() -> None:
    from dialer.cli.up import dashboard_hint
    from dialer.core.settings import load_settings

    s = load_settings(DIALER_PORT=8123, DIALER_API_KEY="own-ApiKey-3Hj8Tq2Wz7Lm5Xc1Vb9Nr4Gk6")
    made = {"DIALER_API_KEY": "made-up-key"}
    assert dashboard_hint(s, made).startswith("dashboard: http://127.0.0.1:8123/ui/")
    assert "made-up-key" in dashboard_hint(s, made)
    assert "own-ApiKey" not in dashboard_hint(s, {})  # an operator's own key is never shown


@pytest.mark.parametrize("name", sorted(pages.TITLES))
def test_every_page_is_the_one_layout_around_its_own_body_and_script(name: str) -> None:
    html = pages.render(name).decode()
    assert html.startswith("<!doctype html>\n") and html.endswith("</main>\n</body>\n</html>\n")
    assert f"<title>{pages.TITLES[name]} · Dialer</title>" in html
    assert '<link rel="stylesheet" href="/ui/static/dashboard.css">' in html
    scripts = [line for line in html.splitlines() if line.startswith("<script ")]
    assert scripts == [
        f'<script src="/ui/static/{js}" defer></script>'
        for js in ("common.js", "charts.js", f"{name}.js")
    ]
    assert "$" not in html  # every placeholder filled
