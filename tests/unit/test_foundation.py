"""Settings, tokens, keys and contact ingest: the small pure pieces."""

from __future__ import annotations

import pytest

from dialer.core import tokens
from dialer.core.contacts import parse_csv, parse_list
from dialer.core.errors import ConfigError, ValidationError
from dialer.core.settings import load_settings
from dialer.store import keys

SECRET = b"k" * 32


def test_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIALER_PORT", "not-a-port")
    with pytest.raises(ConfigError, match="DIALER_PORT"):
        load_settings()


def test_secrets_not_in_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXOTEL_API_TOKEN", "tok-very-secret")
    monkeypatch.setenv("DIALER_SECRET", "sign-very-secret")
    s = load_settings()
    assert "very-secret" not in repr(s) and "very-secret" not in str(s.model_dump())


def test_callback_signature_is_bound_to_the_call_and_attempt() -> None:
    sig = tokens.callback_sig(SECRET, "abcd1234-1", 2)
    assert tokens.verify_callback([SECRET], "abcd1234-1", "2", sig) == 2
    assert tokens.verify_callback([SECRET], "abcd1234-2", "2", sig) is None
    assert tokens.verify_callback([SECRET], "abcd1234-1", "1", sig) is None
    assert tokens.verify_callback([SECRET], "abcd1234-1", "3", sig) is None
    assert tokens.verify_callback([SECRET], "abcd1234-1", None, sig) is None
    assert tokens.verify_callback([SECRET], "abcd1234-1", "2", None) is None
    assert tokens.verify_callback([b"other"], "abcd1234-1", "2", sig) is None
    assert tokens.verify_callback([b"other", SECRET], "abcd1234-1", "2", sig) == 2


def test_stream_token_attempt_and_expiry() -> None:
    tok = tokens.stream_token(SECRET, "abcd1234-1", 2, expires_at=1000)
    assert tokens.verify_stream_token([SECRET], "abcd1234-1", tok, now=999) == (2, 1000)
    assert tokens.verify_stream_token([SECRET], "abcd1234-1", tok, now=1001) is None
    assert tokens.verify_stream_token([SECRET], "abcd1234-9", tok, now=999) is None
    forged = tok.replace("2.", "3.", 1)
    assert tokens.verify_stream_token([SECRET], "abcd1234-1", forged, now=999) is None


def test_keys_share_the_account_hash_tag() -> None:
    for key in (
        keys.account("A1"),
        keys.active("A1"),
        keys.call("A1", "abcd-1"),
        keys.queue("A1", "abcd"),
        keys.campaign("A1", "abcd"),
    ):
        assert "{A1}" in key
    assert keys.split_call_id("abcdef012345-17") == ("abcdef012345", 17)
    with pytest.raises(ValueError):
        keys.split_call_id("nope")
    with pytest.raises(ValueError):
        keys.check_account("bad{sid}")


def test_csv_reports_bad_rows_by_line_and_keeps_good_ones() -> None:
    text = (
        "\ufeffto,name\n+919876543210,A\nnot-a-number,B\n"
        '"+91 98765 43211","two\nlines"\n+919876543210,dup\n,empty\n+919876543212,x,extra\n'
    )
    result = parse_csv(text.encode(), "IN")
    assert [c.to for c in result.contacts] == ["+919876543210", "+919876543211"]
    assert result.contacts[1].vars == {"name": "two\nlines"}
    assert [r["line"] for r in result.rejected] == [3, 7, 8]
    assert result.duplicates == 1


def test_csv_without_to_column_is_refused() -> None:
    with pytest.raises(ValidationError, match="no 'to' column"):
        parse_csv("phone_number,name\n1,2\n")


def test_json_contacts() -> None:
    result = parse_list([{"to": "+14155550123", "vars": {"a": 1}}, {"to": 5}, "x"], None)
    assert len(result.contacts) == 1 and [r["line"] for r in result.rejected] == [2, 3]
