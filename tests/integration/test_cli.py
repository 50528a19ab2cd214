"""The CLI as a user runs it: ``dialer up`` in a subprocess, client commands, SIGTERM, restart."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import requests

from tests.support import broker
from tests.support.cli import DIALER, alive, cli_env, descendants, run_cli
from tests.support.polling import wait_for

pytestmark = pytest.mark.timeout(240)


def _up(env: dict[str, str], log: Path, talk_s: float = 1.5) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 - closed by the child
    proc = subprocess.Popen(
        [
            *DIALER,
            "up",
            "--no-flower",
            "--sandbox-arg=--ring-s=0.05",
            f"--sandbox-arg=--talk-max-s={talk_s}",
            # the run's RabbitMQ, when it has one, through the flag (tests/support/broker.py)
            *(["--broker", amqp] if (amqp := broker.amqp_url()) else []),
        ],
        env=env,
        stdout=out,
        stderr=out,
        start_new_session=True,
    )
    out.close()
    url = f"http://127.0.0.1:{env['DIALER_PORT']}/healthz"

    def healthy() -> bool:
        assert proc.poll() is None, log.read_text()
        try:
            return requests.get(url, timeout=1).status_code == 200
        except requests.RequestException:
            return False

    wait_for(healthy, 60, 0.2, what=f"dialer up healthy; its log: {log}")
    return proc


def test_up_submit_status_sigterm_restart_results(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    log = tmp_path / "up.log"
    contacts = tmp_path / "contacts.csv"
    rows = ["to,name"] + [f"+9198765{i:05d},N{i}" for i in range(0, 120, 10)]
    rows.insert(3, "12,broken")
    contacts.write_text("\n".join(rows) + "\n")
    # Calls that talk for 30 s: the campaign is still under way when SIGTERM comes
    # after the checks below (it used to be done by then, and the restart had
    # nothing left to finish).
    up = _up(env, log, talk_s=30)
    try:
        sub = run_cli(
            env,
            "submit",
            str(contacts),
            "--account",
            "sandbox",
            "--bot",
            "echo",
            "--max-attempts",
            "2",
            "--retry-delay",
            "0.5",
        )
        assert sub.returncode == 0, sub.stderr
        assert f"{contacts}:4:" in sub.stderr  # the bad row, by line
        cid = sub.stdout.strip().splitlines()[-1]
        st = run_cli(env, "status", cid, "--json")
        status = json.loads(st.stdout)
        assert {"id", "state", "total", "counts", "outcomes"} <= set(status)
        assert status["total"] == 12
        _bad_input_is_refused_clearly(env, tmp_path, contacts)
        _tenant_keys_work_from_the_cli(env, cid)
        # one data directory, one supervisor: a second `up` or `demo` is refused, clearly
        for second in (["up", "--no-flower"], ["demo", "--no-flower", "--contacts", "1"]):
            again = run_cli(env, *second)
            assert again.returncode == 2, (second, again.stdout, again.stderr)
            assert "is in use by another `dialer up` or `dialer demo`" in again.stderr
            assert f"pid {up.pid}" in again.stderr and "DIALER_DATA_DIR" in again.stderr
            assert "Traceback" not in again.stderr
        assert up.poll() is None  # the first one is untouched

        def under_way() -> dict[str, object] | None:
            now = json.loads(run_cli(env, "status", cid, "--json").stdout)
            started = sum(now["counts"].values()) - now["counts"].get("pending", 0)
            return now if started and now["finished"] < now["total"] else None

        # dialling has begun and calls are left: SIGTERM meets a campaign under way
        wait_for(under_way, 30, 0.1, what="the campaign under way")
        children = descendants(up.pid)
        assert children
    finally:
        os.kill(up.pid, signal.SIGTERM)
        up.wait(timeout=60)
    # Grandchildren (a worker's pool) may still be exiting as up returns; one left
    # running is an orphan.
    wait_for(lambda: not [p for p in children if alive(p)], 10, what="dialer up left no orphans")
    up = _up(env, log)  # same data dir: the embedded Redis replays its AOF
    try:
        wait_for(
            lambda: json.loads(run_cli(env, "status", cid, "--json").stdout)["state"] == "done",
            120,
            0.5,
            what="the campaign done after the restart",
        )
        res = run_cli(env, "results", cid, "--format", "json")
        results = json.loads(res.stdout)
        assert len(results) == 12 and all(r["outcome"] for r in results)
        # people get a summary (no JSON, no epoch seconds); the contact's columns come along
        human = run_cli(env, "status", cid)
        assert human.returncode == 0, human.stderr
        assert "state      done" in human.stdout and "12/12 finished" in human.stdout
        assert not human.stdout.lstrip().startswith("{")
        assert str(int(status["created_at"])) not in human.stdout
        table = run_cli(env, "results", cid, env_extra={"COLUMNS": "200"})
        assert table.returncode == 0, table.stderr
        assert "name" in table.stdout and "N10" in table.stdout
        csv_out = run_cli(env, "results", cid, "--format", "csv").stdout.splitlines()
        assert csv_out[0].startswith("id,to,name,state,outcome")
        assert any(",N10," in line for line in csv_out[1:])
        bad = run_cli(env, "status", "000000000000", "--json")
        assert bad.returncode == 1 and "no such campaign" in bad.stderr
    finally:
        os.kill(up.pid, signal.SIGTERM)
        up.wait(timeout=60)
    # a whole run's output: no secret in any log, the supervisor's or a child's
    logs = [log, *(tmp_path / "data" / "logs").glob("*.log")]
    text = "".join(p.read_text(errors="replace") for p in logs)
    assert text and "cli-signing-secret-4242" not in text and "cli-api-key-4242" not in text
    assert f"dashboard: http://127.0.0.1:{env['DIALER_PORT']}/ui/" in log.read_text()
    assert "sandbox-token" not in text


@pytest.mark.parametrize(
    ("setting", "what"),
    [("DIALER_PORT", "receiver"), ("DIALER_METRICS_PORT", "receiver metrics")],
)
def test_port_clash_names_the_setting_that_exists(tmp_path: Path, setting: str, what: str) -> None:
    env = cli_env(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        env[setting] = str(busy.getsockname()[1])
        out = run_cli(env, "up", "--no-flower")
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert f"{what} port {env[setting]} on 127.0.0.1 is already in use" in out.stderr
    assert f"{setting}=" in out.stderr and "--receiver-port" not in out.stderr
    assert "Traceback" not in out.stderr
    # the refused run released the data directory: nothing is left holding it
    from dialer.cli.supervisor import DataDirLock

    lock = DataDirLock(tmp_path / "data")
    lock.acquire()
    lock.release()


def _bad_input_is_refused_clearly(env: dict[str, str], tmp: Path, contacts: Path) -> None:
    """Against the live receiver: dry-run for people, window typos, binary files, DNC lines."""
    submit = [*("submit", str(contacts), "--account", "sandbox", "--bot", "echo")]
    dry = run_cli(env, *submit, "--dry-run", "--window", "mon-fri 9:00-17:00")
    assert dry.returncode == 0, dry.stderr
    assert "dry run: nothing was queued" in dry.stdout and "finish     around" in dry.stdout
    assert "12 accepted" in dry.stdout and "finish_at" not in dry.stdout
    typo = run_cli(env, *submit, "--window", "mon-fri 9-5")
    assert typo.returncode == 2 and "'9-5' is not a time range" in typo.stderr
    assert "accepted forms:" in typo.stderr and "Traceback" not in typo.stderr
    binary = tmp / "contacts.xlsx"
    binary.write_bytes(b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 8)
    refused = run_cli(env, "submit", str(binary), "--account", "sandbox", "--bot", "echo")
    assert refused.returncode == 2 and "not CSV text" in refused.stderr
    assert refused.stderr.replace("\n", "").isprintable(), refused.stderr
    dnc = tmp / "dnc.csv"
    dnc.write_text("to\n+919876599999\n\nnot-a-number\n")
    out = run_cli(env, "account", "dnc", "sandbox", str(dnc))
    assert out.returncode == 0, out.stderr
    assert f"{dnc}:4: to: 'not-a-number' is not a valid phone number" in out.stderr
    assert json.loads(out.stdout)["added"] == 1
    # a partial update changes the named field only
    before = run_cli(env, "account", "update", "sandbox", "--calls-per-minute", "199")
    assert before.returncode == 0, before.stderr
    after = json.loads(
        run_cli(env, "account", "update", "sandbox", "--calls-per-minute", "200").stdout
    )
    assert after["calls_per_minute"] == 200
    assert after["max_concurrent_calls"] == json.loads(before.stdout)["max_concurrent_calls"]


def _tenant_keys_work_from_the_cli(env: dict[str, str], cid: str) -> None:
    """`dialer key create/list/revoke` with the sandbox's throwaway admin key."""
    made = run_cli(env, "key", "create", "--account", "sandbox", "--label", "cli-test")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("dk_") and "not shown again" in made.stderr
    listed = json.loads(run_cli(env, "key", "list", "--json").stdout)
    (record,) = [k for k in listed if k["label"] == "cli-test"]
    assert record["accounts"] == ["sandbox"] and key not in json.dumps(listed)
    tenant = {**env, "DIALER_API_KEY": key}
    assert json.loads(run_cli(tenant, "status", cid, "--json").stdout)["id"] == cid
    assert run_cli(tenant, "key", "list").returncode == 1  # not an admin key: 403
    assert run_cli(env, "key", "revoke", record["id"]).returncode == 0
    refused = run_cli(tenant, "status", cid, "--json")
    assert refused.returncode == 1 and "API key" in refused.stderr
