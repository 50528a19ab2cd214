"""``dialer up`` and ``dialer demo``."""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import time
from importlib import resources
from pathlib import Path
from types import FrameType

import click
from pydantic import SecretStr

from dialer.cli.main import EXIT_FAILED, EXIT_UNREACHABLE, EXIT_USAGE, settings_or_exit
from dialer.cli.supervisor import DataDirLocked, PortInUse, Supervisor
from dialer.core.errors import ConfigError
from dialer.core.settings import (
    LISTEN_PORTS,
    Settings,
    load_settings,
    require_server_secrets,
    secret_problem,
    server_secret_problems,
)
from dialer.core.states import CampaignState
from dialer.platform.embedded import free_port

SANDBOX_SECRETS_FILE = "sandbox-secrets.json"  # in DIALER_DATA_DIR, mode 0600


def run_secrets(s: Settings) -> dict[str, str]:
    """Environment overrides that give this run real secrets, or exit 2.

    With real Exotel credentials the operator's own secrets are required (fail
    closed, like every server process). In sandbox mode, a missing or weak
    ``DIALER_SECRET``/``DIALER_API_KEY`` is replaced by a random throwaway one,
    and the user is told so. They are kept (0600) in the data directory beside
    the embedded Redis whose encrypted records depend on them, so a restart on
    the same data directory continues its campaigns, and client commands run
    next to it find the API key there (``sandbox_api_key``).
    """
    if not server_secret_problems(s):
        return {}
    if s.exotel_configured:
        try:
            require_server_secrets(s)
        except ConfigError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USAGE)
    path = s.DIALER_DATA_DIR / SANDBOX_SECRETS_FILE
    kept = _read_secrets(path)
    made: dict[str, str] = {}
    for name in ("DIALER_SECRET", "DIALER_API_KEY"):
        if secret_problem(name, getattr(s, name)):
            made[name] = kept.get(name) or secrets.token_urlsafe(32)
    if made.items() - kept.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({**kept, **made}, f)
    click.echo(
        f"sandbox mode: using a throwaway {' and '.join(sorted(made))} made up for this "
        f"data directory (kept in {path}); set your own to choose them. With real Exotel "
        "credentials, servers refuse to start without them.",
        err=True,
    )
    return made


def dashboard_hint(s: Settings, made: dict[str, str]) -> str:
    """Where the dashboard is and how to sign in to it.

    A sandbox run shows the throwaway admin key it made up (it is on the
    user's own disk already, and works only here); an operator's own key is
    never printed.
    """
    url = f"{s.api_url}/ui/"
    if "DIALER_API_KEY" in made:
        return f"dashboard: {url} (sign in with the sandbox API key {made['DIALER_API_KEY']})"
    return f"dashboard: {url} (sign in with DIALER_API_KEY or a key from `dialer key create`)"


def _read_secrets(path: Path) -> dict[str, str]:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(found, dict):
        return {}
    return {
        k: v for k, v in found.items() if isinstance(v, str) and not secret_problem(k, SecretStr(v))
    }


def sandbox_api_key(data_dir: Path) -> str | None:
    """The API key a sandbox ``dialer up`` on this data directory made up, if any."""
    return _read_secrets(data_dir / SANDBOX_SECRETS_FILE).get("DIALER_API_KEY")


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop()


def _on_stop_signals() -> None:
    """SIGTERM and SIGINT both stop the system in order.

    SIGINT is set explicitly: a shell script that starts ``dialer up`` in the
    background hands it SIGINT *ignored*, Python then installs no
    KeyboardInterrupt, and a ``kill -INT`` (or Ctrl-C sent to the group) was lost.
    """
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _start(sup: Supervisor) -> None:
    try:
        sup.start()
        sup.wait_ready()
    except (PortInUse, DataDirLocked) as exc:
        sup.stop()
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except (TimeoutError, RuntimeError) as exc:
        sup.stop()
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_UNREACHABLE)


@click.command()
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes to run.")
@click.option("--no-flower", is_flag=True, help="Do not start Flower.")
@click.option(
    "--broker",
    metavar="URL",
    default=None,
    help="Celery broker apart from the state Redis, e.g. amqp://user:pass@host:5672/vhost "
    "(RabbitMQ); default $CELERY_BROKER_URL, else the state Redis.",
)
@click.option(
    "--sandbox-arg",
    "sandbox_args",
    multiple=True,
    metavar="ARG",
    help="Extra option for the sandbox, e.g. --sandbox-arg=--talk-max-s=2.",
)
def up(workers: int, no_flower: bool, broker: str | None, sandbox_args: tuple[str, ...]) -> None:
    """Run the whole system here until Ctrl-C (embedded Redis and sandbox by default)."""
    overrides = run_secrets(settings_or_exit())
    if broker:
        overrides["CELERY_BROKER_URL"] = broker  # every child reads it from the environment
    try:
        s = load_settings(**overrides)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    sup = Supervisor(
        s,
        workers=workers,
        with_flower=not no_flower,
        extra_sandbox_args=list(sandbox_args),
        extra_env=overrides,
    )
    _on_stop_signals()
    click.echo("starting the dialer:", err=True)
    _start(sup)
    click.echo(dashboard_hint(s, overrides), err=True)
    click.echo("ready. Ctrl-C stops everything.", err=True)
    try:
        while True:
            sup.poll()
            time.sleep(0.5)
    except (KeyboardInterrupt, _Stop):
        click.echo("stopping (in-flight dials finish first)...", err=True)
    finally:
        sup.stop()


@click.command()
@click.option("--contacts", type=int, default=50, show_default=True, help="Contacts to call.")
@click.option("--max-concurrent", type=int, default=20, show_default=True)
@click.option("--timeout", "timeout_s", type=float, default=600.0, show_default=True)
@click.option("--no-flower", is_flag=True)
def demo(contacts: int, max_concurrent: int, timeout_s: float, no_flower: bool) -> None:
    """Run a sample survey campaign end to end against the sandbox, then show the results."""
    from dialer.cli.client import ApiError, DialerClient
    from dialer.cli.progress import results_table, status_progress
    from dialer.core.surveys import read_survey

    base = settings_or_exit()
    if base.exotel_configured:
        click.echo("error: the demo calls the sandbox; unset EXOTEL_* to run it", err=True)
        sys.exit(EXIT_USAGE)
    overrides = run_secrets(base)
    # Free ports unless the environment chose them: a busy 8080 must not stop a demo.
    ports = {k: free_port() for k in LISTEN_PORTS if k not in os.environ}
    s = load_settings(**ports, **overrides)
    sup = Supervisor(
        s,
        workers=1,
        with_flower=not no_flower,
        max_concurrent=max_concurrent,
        extra_env=overrides,
    )
    _on_stop_signals()
    click.echo("starting the dialer (embedded Redis, sandbox Exotel):", err=True)
    _start(sup)
    click.echo(dashboard_hint(s, overrides), err=True)
    ok = False
    try:
        demo_dir = resources.files("dialer.cli").joinpath("demo")
        # sent as content, like `dialer submit --bot survey:FILE.json` does
        survey = read_survey(str(demo_dir.joinpath("survey.json")))
        client = DialerClient(s.api_url, s.api_key)
        client.add_account(
            "sandbox",
            "sandbox-key",
            "sandbox-token",
            "08047112345",
            api_url=sup.env["EXOTEL_API_URL"],
            max_concurrent_calls=max_concurrent,
        )
        csv_text = demo_contacts(contacts)
        out = client.create_campaign(
            "sandbox",
            csv=csv_text,
            bot="survey:demo-csat.json",
            survey=survey,
            name="demo-csat",
            max_attempts=2,
            retry_delay_s=3,
        )
        click.echo(f"campaign {out['id']}: {out['accepted']} contacts queued", err=True)

        def fetch() -> dict[str, object]:
            sup.poll()
            return client.get_campaign(out["id"])

        final = status_progress(fetch, 0.5, timeout_s=timeout_s)
        rows = list(client.iter_calls(out["id"]))
        results_table(rows)
        summary = ", ".join(f"{k} {v}" for k, v in sorted(final["outcomes"].items()))
        click.echo(f"{final['finished']}/{final['total']} contacts finished: {summary}")
        ok = final["state"] == CampaignState.DONE and all(r["outcome"] for r in rows)
    except ApiError as exc:
        click.echo(f"error: {exc}", err=True)
    except (KeyboardInterrupt, _Stop):
        click.echo("interrupted", err=True)
    finally:
        sup.stop()
    sys.exit(0 if ok else EXIT_FAILED)


def demo_contacts(n: int) -> str:
    """Indian mobile numbers whose last digit picks the sandbox callee's behaviour."""
    names = ["Asha", "Ravi", "Meera", "Kiran", "Dev", "Lata", "Arjun", "Nina", "Omar", "Zoya"]
    rows = ["to,name"]
    for i in range(n):
        rows.append(f"+9198765{43000 + i:05d},{names[i % len(names)]}")
    return "\n".join(rows) + "\n"


def register(cli: click.Group) -> None:
    cli.add_command(up)
    cli.add_command(demo)
