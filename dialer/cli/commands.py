"""Client commands: REST clients of the receiver (``--api``, ``$DIALER_API_KEY``).

They import only the HTTP client and rich, so ``dialer status`` works from
any machine that can reach the API.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import click

from dialer.cli.main import EXIT_FAILED, EXIT_UNREACHABLE, EXIT_USAGE, settings_or_exit
from dialer.cli.progress import results_table, status_progress
from dialer.client import ApiError, DialerClient
from dialer.contacts import decode_text


def client_from(api: str | None) -> DialerClient:
    s = settings_or_exit()
    return DialerClient(api or s.api_url, s.DIALER_API_KEY.get_secret_value())


def fail(exc: ApiError) -> None:
    click.echo(f"error: {exc.error or exc}", err=True)
    for d in exc.detail or []:
        where = f"line {d['line']}: " if isinstance(d, dict) and d.get("line") else ""
        field = d.get("field", "") if isinstance(d, dict) else ""
        click.echo(
            f"  {where}{field}: {d.get('message', d) if isinstance(d, dict) else d}", err=True
        )
    sys.exit(EXIT_UNREACHABLE if exc.status in (0, 503) else EXIT_FAILED)


api_option = click.option(
    "--api",
    default=None,
    metavar="URL",
    help="Receiver URL (default $DIALER_API_URL, else http://127.0.0.1:$DIALER_PORT).",
)


@click.group()
def account() -> None:
    """Exotel accounts."""


@account.command("add")
@click.argument("sid")
@click.option("--api-key", required=True)
@click.option("--api-token", required=True, help="Stored server-side; never printed.")
@click.option("--caller-id", required=True, help="Your ExoPhone.")
@click.option("--max-concurrent", type=int, default=10, show_default=True)
@click.option("--calls-per-minute", type=int, default=200, show_default=True)
@click.option("--region", type=click.Choice(["sg", "in"]), default=None)
@click.option("--api-url", default=None, help="Custom Exotel base URL (e.g. the sandbox).")
@api_option
def account_add(
    sid: str,
    api_key: str,
    api_token: str,
    caller_id: str,
    max_concurrent: int,
    calls_per_minute: int,
    region: str | None,
    api_url: str | None,
    api: str | None,
) -> None:
    """Register or update account SID."""
    options: dict[str, Any] = {
        "max_concurrent_calls": max_concurrent,
        "calls_per_minute": calls_per_minute,
    }
    if region:
        options["region"] = region
    if api_url:
        options["api_url"] = api_url
    try:
        out = client_from(api).add_account(sid, api_key, api_token, caller_id, **options)
    except ApiError as exc:
        fail(exc)
    click.echo(json.dumps(out))


@account.command("resume")
@click.argument("sid")
@api_option
def account_resume(sid: str, api: str | None) -> None:
    """Close the account's circuit after fixing credentials (401/403)."""
    try:
        click.echo(json.dumps(client_from(api).resume_account(sid)))
    except ApiError as exc:
        fail(exc)


@account.command("dnc")
@click.argument("sid")
@click.argument("numbers_csv", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@api_option
def account_dnc(sid: str, numbers_csv: Path, api: str | None) -> None:
    """Import a do-not-call list (CSV with a 'to' column, or one number per line)."""
    from dialer.contacts import parse_csv

    text = numbers_csv.read_bytes().decode("utf-8-sig", errors="replace")
    if not text.lower().lstrip().startswith(("to", "phone", "number", "msisdn")):
        text = "to\n" + text
    numbers = [line.split(",")[0] for line in text.splitlines()[1:] if line.strip()]
    parse_csv(text)  # a file without a usable column is refused before any request
    try:
        out = client_from(api).add_dnc(sid, numbers)
    except ApiError as exc:
        fail(exc)
    for rej in out.get("rejected", []):
        click.echo(f"{numbers_csv}:{rej['line'] + 1}: {rej['reason']}", err=True)
    click.echo(json.dumps({"added": out["added"], "count": out["count"]}))


@click.command()
@click.argument("contacts", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--account", "account_sid", required=True, help="Exotel account sid.")
@click.option(
    "--bot", required=True, help="echo | survey:FILE.json | relay:wss://... | plugin:NAME"
)
@click.option("--max-attempts", type=int, default=3, show_default=True)
@click.option(
    "--retry-delay",
    type=float,
    default=300.0,
    show_default=True,
    help="Seconds before calling a busy/unanswered number again.",
)
@click.option("--name", default="")
@click.option("--priority", type=int, default=0)
@click.option("--weight", type=float, default=1.0)
@click.option("--webhook-url", default=None)
@click.option(
    "--time-limit",
    type=int,
    default=3600,
    show_default=True,
    help="Exotel TimeLimit per call, seconds (max 14400).",
)
@click.option("--region", default=None, help="Default country for numbers without +, e.g. IN.")
@click.option(
    "--window",
    default=None,
    metavar="DAYS,HH:MM-HH:MM",
    help="Calling window in each contact's local time, e.g. mon-sat,09:00-20:00.",
)
@click.option(
    "--machine-detection",
    default="off",
    show_default=True,
    metavar="off|hangup|message:FILE.wav|continue",
    help="Answering machines: hang up on them, leave them FILE.wav after the beep, "
    "or only tell the bot.",
)
@click.option("--dry-run", is_flag=True, help="Validate everything, queue nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole result as JSON.")
@api_option
def submit(
    contacts: Path,
    account_sid: str,
    bot: str,
    max_attempts: int,
    retry_delay: float,
    name: str,
    priority: int,
    weight: float,
    webhook_url: str | None,
    time_limit: int,
    region: str | None,
    window: str | None,
    machine_detection: str,
    dry_run: bool,
    as_json: bool,
    api: str | None,
) -> None:
    """Submit a campaign from CONTACTS (.csv with a 'to' column, or .json list)."""
    bot = _absolute_survey(bot)
    machine = _machine_options(machine_detection)
    options: dict[str, Any] = {
        "bot": bot,
        "max_attempts": max_attempts,
        "retry_delay_s": retry_delay,
        "name": name or contacts.stem,
        "priority": priority,
        "weight": weight,
        "time_limit_s": time_limit,
        **machine,
    }
    if webhook_url:
        options["webhook_url"] = webhook_url
    if region:
        options["default_region"] = region
    if window:
        days, _, hours = window.partition(",")
        start, _, end = hours.partition("-")
        options["window"] = {"days": days, "start": start or "00:00", "end": end or "23:59"}
    raw = contacts.read_bytes()
    try:
        if contacts.suffix.lower() == ".json":
            try:
                items = json.loads(raw)
            except ValueError as exc:
                click.echo(f"error: {contacts}: not valid JSON: {exc}", err=True)
                sys.exit(EXIT_USAGE)
            out = client_from(api).create_campaign(account_sid, items, dry_run=dry_run, **options)
        else:
            text = decode_text(raw)
            out = client_from(api).create_campaign(
                account_sid, csv=text, dry_run=dry_run, **options
            )
    except ApiError as exc:
        fail(exc)
    if as_json:
        click.echo(json.dumps(out))
        return
    for rej in out.get("rejected", []):
        click.echo(f"{contacts}:{rej['line']}: {rej['reason']}", err=True)
    click.echo(
        f"accepted {out['accepted']}, rejected {len(out.get('rejected', []))}, "
        f"duplicates {out.get('duplicates', 0)}",
        err=True,
    )
    if dry_run:
        click.echo(json.dumps(out.get("preflight", {}), indent=2))
    else:
        click.echo(out["id"])


def _machine_options(value: str) -> dict[str, Any]:
    """``--machine-detection``: a message WAV is read here and uploaded with the campaign."""
    from dialer.errors import ValidationError
    from dialer.machine import parse_policy

    try:
        policy = parse_policy(value)
    except ValidationError as exc:
        click.echo(f"error: --machine-detection: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    if policy.mode == "off":
        return {}
    if policy.mode != "message":
        return {"machine_detection": policy.mode}
    path = Path(value.strip().partition(":")[2].strip()).expanduser()
    if not path.name:
        click.echo("error: --machine-detection message:FILE.wav needs a WAV file", err=True)
        sys.exit(EXIT_USAGE)
    try:
        data = path.read_bytes()
    except OSError as exc:
        click.echo(f"error: --machine-detection: cannot read {path}: {exc.strerror}", err=True)
        sys.exit(EXIT_USAGE)
    return {
        "machine_detection": f"message:{path.name}",
        "machine_message_wav": base64.b64encode(data).decode("ascii"),
    }


def _absolute_survey(bot: str) -> str:
    """The receiver may run elsewhere: send the survey path as an absolute path."""
    kind, _, arg = bot.partition(":")
    if kind == "survey" and arg:
        return f"survey:{Path(arg).expanduser().resolve()}"
    return bot


@click.command()
@click.argument("campaign_id")
@click.option("--watch", is_flag=True, help="Live progress bar until the campaign ends.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--interval", type=float, default=1.0, show_default=True)
@api_option
def status(campaign_id: str, watch: bool, as_json: bool, interval: float, api: str | None) -> None:
    """Progress of a campaign."""
    c = client_from(api)
    try:
        if watch and not as_json:
            status_progress(lambda: c.get_campaign(campaign_id), interval)
            return
        click.echo(json.dumps(c.get_campaign(campaign_id), indent=None if as_json else 2))
    except ApiError as exc:
        fail(exc)


@click.command()
@click.argument("campaign_id")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@api_option
def results(campaign_id: str, fmt: str, api: str | None) -> None:
    """Per-contact outcomes and answers."""
    c = client_from(api)
    try:
        if fmt == "csv":
            click.echo(c.results_csv(campaign_id), nl=False)
            return
        rows = list(c.iter_calls(campaign_id))
    except ApiError as exc:
        fail(exc)
    if fmt == "json":
        click.echo(json.dumps(rows))
    else:
        results_table(rows)


def _action(name: str) -> click.Command:
    @click.command(name=name, help=f"{name.title()} a campaign.")
    @click.argument("campaign_id")
    @api_option
    def run(campaign_id: str, api: str | None) -> None:
        try:
            out = getattr(client_from(api), name)(campaign_id)
        except ApiError as exc:
            fail(exc)
        click.echo(json.dumps({"id": out["id"], "state": out["state"]}))

    return run


def register(cli: click.Group) -> None:
    cli.add_command(account)
    cli.add_command(submit)
    cli.add_command(status)
    cli.add_command(results)
    for name in ("pause", "resume", "cancel"):
        cli.add_command(_action(name))
