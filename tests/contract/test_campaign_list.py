"""``GET /v1/campaigns`` through ``DialerClient`` and ``dialer campaigns``, on a live receiver."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from dialer.cli import commands
from dialer.cli.client import ApiError, DialerClient
from tests.support.signing import API_KEY, SECRET


def test_list_page_filter_and_cli(live_receiver: str, monkeypatch: pytest.MonkeyPatch) -> None:
    api = DialerClient(live_receiver, API_KEY)
    api.replace_account("acme", "k", "t", "0800", region="in")
    api.replace_account("other", "k", "t", "0800", region="in")
    ids = [
        api.create_campaign(a, [{"to": f"+91987654321{n}"}], name=f"c{n}", bot="echo")["id"]
        for n, a in enumerate(["acme", "acme", "other"])
    ]
    api.pause(ids[1])
    everything = list(api.iter_campaigns(page_size=1))  # three pages of one
    assert sorted(c["id"] for c in everything) == sorted(ids)
    assert [c["id"] for c in api.iter_campaigns(state="paused")] == [ids[1]]
    assert {c["id"] for c in api.iter_campaigns(account="acme")} == set(ids[:2])
    with pytest.raises(ApiError) as bad:
        api.list_campaigns(limit=0)
    assert bad.value.status == 400 and bad.value.detail[0]["field"] == "query.limit"

    monkeypatch.setenv("DIALER_API_KEY", API_KEY)
    monkeypatch.setenv("DIALER_SECRET", SECRET)
    out = CliRunner().invoke(
        commands.campaigns, ["--api", live_receiver, "--account", "acme", "--json"]
    )
    assert out.exit_code == 0, out.output
    assert {c["id"] for c in json.loads(out.output)} == set(ids[:2])
    out = CliRunner().invoke(commands.campaigns, ["--api", live_receiver, "--limit", "2"])
    assert out.exit_code == 0, out.output
    # newest first: the last two created, the paused one among them
    assert [i for i in ids if i in out.output] == ids[1:] and "paused" in out.output
    out = CliRunner().invoke(commands.campaigns, ["--api", live_receiver, "--state", "done"])
    assert out.exit_code == 0 and "no campaigns" in out.output
