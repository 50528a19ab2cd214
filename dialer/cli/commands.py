"""Client commands: REST clients of the receiver (``--api``, ``$DIALER_API_KEY``).

They import only the HTTP client and rich, so ``dialer status`` works from
any machine that can reach the API.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from dialer.cli.client import ApiError, DialerClient
from dialer.cli.main import EXIT_FAILED, EXIT_UNREACHABLE, EXIT_USAGE, settings_or_exit
from dialer.cli.progress import (
    campaigns_table,
    dry_run_text,
    results_table,
    status_progress,
    status_text,
)
from dialer.core.campaign import CampaignIn
from dialer.core.contacts import read_text_file
from dialer.core.errors import ValidationError
from dialer.core.policy import RETRYABLE_OUTCOMES as RETRYABLE
from dialer.core.states import SHOWN_STATES
from dialer.core.surveys import read_survey


def client_from(api: str | None) -> DialerClient:
    s = settings_or_exit()
    if s.DIALER_API_KEY is not None:
        key = s.DIALER_API_KEY.get_secret_value()
    else:
        # `dialer up` in sandbox mode left its throwaway key for us (local API only).
        from dialer.cli.up import sandbox_api_key

        key = (sandbox_api_key(s.DIALER_DATA_DIR) if api is None else None) or ""
        if not key:
            click.echo("error: DIALER_API_KEY is not set (the key the API gave you)", err=True)
            sys.exit(EXIT_USAGE)
    return DialerClient(api or s.api_url, key)


def fail(exc: ApiError) -> None:
    headline = exc.error or str(exc)
    click.echo(f"error: {headline}", err=True)
    for d in exc.detail or []:
        where = f"line {d['line']}: " if isinstance(d, dict) and d.get("line") else ""
        field = d.get("field", "") if isinstance(d, dict) else ""
        message = d.get("message", d) if isinstance(d, dict) else d
        if message == headline and not where:
            continue  # the API repeats a single error as its detail: print it once
        click.echo(f"  {where}{field}: {message}", err=True)
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


#: Every field of the API's account payload (``AccountIn``) and its ``account add``
#: option; a unit test fails when the model gains a field the CLI lacks.
ACCOUNT_OPTIONS = {
    "sid": "SID",
    "api_key": "--api-key",
    "api_token": "--api-token",
    "caller_id": "--caller-id",
    "caller_ids": "--caller-ids",
    "region": "--region",
    "api_url": "--api-url",
    "max_concurrent_calls": "--max-concurrent",
    "calls_per_minute": "--calls-per-minute",
}


def _account_options(required: bool) -> Any:
    """The account fields as options: ``add`` needs the credentials, ``update`` none."""
    when = "" if required else " (unchanged when not given)"
    credentials = {
        "--api-key": "Exotel API key",
        "--api-token": "Stored server-side; never printed",
        "--caller-id": "Your ExoPhone",
    }
    # (what the limit is, the API's value for a new account)
    limits = {
        "--max-concurrent": ("Concurrent calls Exotel allows the account", 10),
        "--calls-per-minute": ("API calls per minute", 200),
    }
    options = [
        *(
            click.option(flag, required=required, help=text + when + ".")
            for flag, text in credentials.items()
        ),
        click.option(
            "--caller-ids",
            "caller_ids",
            multiple=True,
            metavar="EXOPHONE",
            help="A pool of ExoPhones rotated least recently used first (repeatable; "
            "replaces the pool).",
        ),
        *(
            click.option(
                flag,
                type=click.IntRange(1, 100_000),
                default=None,
                help=f"{text} ({new} for a new account; kept when updating).",
            )
            for flag, (text, new) in limits.items()
        ),
        click.option("--region", type=click.Choice(["sg", "in"]), default=None),
        click.option("--api-url", default=None, help="Custom Exotel base URL (e.g. the sandbox)."),
    ]

    def wrap(f: Any) -> Any:
        for option in reversed(options):
            f = option(f)
        return f

    return wrap


def _account_fields(**given: Any) -> dict[str, Any]:
    """Only what the user named: an update never resets a limit to its default."""
    fields = {
        "api_key": given["api_key"],
        "api_token": given["api_token"],
        "caller_id": given["caller_id"],
        "caller_ids": list(given["caller_ids"]) or None,
        "max_concurrent_calls": given["max_concurrent"],
        "calls_per_minute": given["calls_per_minute"],
        "region": given["region"],
        "api_url": given["api_url"],
    }
    return {k: v for k, v in fields.items() if v is not None}


def _account_command(name: str, *, required: bool) -> Any:
    """``account add`` and ``account update``: SID, the account fields as options and
    ``--api``; the function gets only the fields the user named (``_account_fields``)."""

    def make(f: Callable[[str, dict[str, Any], str | None], None]) -> click.Command:
        @account.command(name, help=f.__doc__)
        @click.argument("sid")
        @_account_options(required=required)
        @api_option
        def run(sid: str, api: str | None, **given: Any) -> None:
            f(sid, _account_fields(**given), api)

        return run

    return make


@_account_command("add", required=True)
def account_add(sid: str, fields: dict[str, Any], api: str | None) -> None:
    """Register account SID, or update it (only the options given change)."""
    try:
        out = client_from(api).add_account(
            sid, fields.pop("api_key"), fields.pop("api_token"), fields.pop("caller_id"), **fields
        )
    except ApiError as exc:
        fail(exc)
    click.echo(json.dumps(out))


@_account_command("update", required=False)
def account_update(sid: str, fields: dict[str, Any], api: str | None) -> None:
    """Change some fields of account SID (e.g. --max-concurrent 50); the rest stay."""
    if not fields:
        click.echo("error: name at least one field to change (see --help)", err=True)
        sys.exit(EXIT_USAGE)
    try:
        out = client_from(api).update_account(sid, **fields)
    except ApiError as exc:
        fail(exc)
    click.echo(json.dumps(out))


@account.command("resume")
@click.argument("sid")
@api_option
def account_resume(sid: str, api: str | None) -> None:
    """Close the account's circuit after fixing credentials or the plan (401/402/403)."""
    try:
        click.echo(json.dumps(client_from(api).resume_account(sid)))
    except ApiError as exc:
        fail(exc)


@account.command("dnc")
@click.argument("sid")
@click.argument("numbers_csv", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--region", default=None, help="Default country for numbers without +, e.g. IN.")
@api_option
def account_dnc(sid: str, numbers_csv: Path, region: str | None, api: str | None) -> None:
    """Import a do-not-call list (CSV with a 'to' column, or one number per line)."""
    try:
        rows = dnc_numbers(read_text_file(numbers_csv.read_bytes()))
    except ValidationError as exc:
        where = f":{exc.line}" if exc.line else ""
        click.echo(f"error: {numbers_csv}{where}: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    if not rows:
        click.echo(f"error: {numbers_csv}: no numbers in the file", err=True)
        sys.exit(EXIT_USAGE)
    try:
        out = client_from(api).add_dnc(sid, [number for _, number in rows], region)
    except ApiError as exc:
        fail(exc)
    for rej in out.get("rejected", []):
        # the API counts list items from 1; report the file's own line
        click.echo(f"{numbers_csv}:{rows[rej['line'] - 1][0]}: {rej['reason']}", err=True)
    click.echo(json.dumps({"added": out["added"], "count": out["count"]}))


def dnc_numbers(text: str) -> list[tuple[int, str]]:
    """``(physical line, number)`` of a DNC file: a header naming the column, or bare numbers.

    Lines are the file's own (a blank line or a quoted newline does not shift
    them), so a rejected number is reported where the user can find it.
    """
    import csv
    import io

    from dialer.core.contacts import TO_COLUMNS, records

    out: list[tuple[int, str]] = []
    col, first = 0, True
    for line, row in records(csv.reader(io.StringIO(text, newline=""))):
        if isinstance(row, csv.Error):
            raise ValidationError(f"unreadable row: {row}", line=line)
        if not row or all(not c.strip() for c in row):
            continue
        names = [c.strip().lower() for c in row]
        if first and any(c in names for c in TO_COLUMNS):
            col = next(names.index(c) for c in TO_COLUMNS if c in names)
            first = False
            continue
        first = False
        out.append((line, row[col] if col < len(row) else ""))
    return out


def _pairs(kind: type[int] | type[float], allowed: tuple[str, ...] | None = None) -> Any:
    """A click callback turning repeated ``KEY=VALUE`` options into a dict."""

    def convert(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> Any:
        out: dict[str, Any] = {}
        for item in values:
            key, sep, raw = item.partition("=")
            key = key.strip()
            if not sep or not key or not raw.strip():
                raise click.BadParameter(f"{item!r}: expected KEY=VALUE", ctx, param)
            if allowed is not None and key not in allowed:
                raise click.BadParameter(
                    f"{key!r}: must be one of {', '.join(allowed)}", ctx, param
                )
            try:
                out[key] = kind(raw.strip())
            except ValueError:
                what = "an integer" if kind is int else "a number"
                raise click.BadParameter(
                    f"{item!r}: {raw.strip()!r} is not {what}",
                    ctx,
                    param,
                ) from None
        return out

    return convert


def _text_pairs(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> Any:
    out: dict[str, str] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip() or not raw.strip():
            raise click.BadParameter(f"{item!r}: expected QUESTION=DIGIT", ctx, param)
        out[key.strip()] = raw.strip()
    return out


def _window(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Checked here with the server's own grammar, so a typo fails before the upload."""
    if value is None:
        return None
    from dialer.core.errors import ValidationError
    from dialer.core.windows import Window

    try:
        Window.parse(value)
    except ValidationError as exc:
        raise click.BadParameter(str(exc).removeprefix("window: "), ctx, param) from None
    return value


#: Every field of the API's campaign payload (``CampaignIn``) and the ``submit``
#: option that sets it; a unit test fails when the model gains a field the CLI lacks.
SUBMIT_OPTIONS = {
    "account": "--account",
    "name": "--name",
    "bot": "--bot",
    "machine_detection": "--machine-detection",
    "machine_message_wav": "--machine-detection",  # message:FILE.wav: the CLI reads FILE
    "survey": "--bot",  # --bot survey:FILE.json reads FILE and its WAVs and sends them
    "contacts": "CONTACTS",
    "csv": "CONTACTS",
    "default_region": "--region",
    "max_attempts": "--max-attempts",
    "retry_delay_s": "--retry-delay",
    "max_per_outcome": "--max-per-outcome",
    "priority": "--priority",
    "weight": "--weight",
    "webhook_url": "--webhook-url",
    "record": "--record",
    "recording_channels": "--recording-channels",
    "time_limit_s": "--time-limit",
    "stream_name": "--stream-name",
    "sample_rate": "--sample-rate",
    "window": "--window",
    "dnc_answers": "--dnc-answer",
    "expected_call_s": "--expected-call-s",
}


def _campaign_option(field: str, help: str, **kw: Any) -> Any:
    """The ``submit`` option that sets ``field``, defaulting to the API's own default."""
    default = CampaignIn.model_fields[field].default
    return click.option(SUBMIT_OPTIONS[field], default=default, show_default=True, help=help, **kw)


@click.command()
@click.argument("contacts", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--account", "account_sid", required=True, help="Exotel account sid.")
@click.option(
    "--bot", required=True, help="echo | survey:FILE.json | relay:wss://... | plugin:NAME"
)
@_campaign_option("max_attempts", "Dials per contact.", type=int)
@_campaign_option(
    "retry_delay_s", "Seconds before calling a busy/unanswered/failed number again.", type=float
)
@click.option(
    "--retry-delay-for",
    "retry_delay_for",
    multiple=True,
    metavar="OUTCOME=S",
    callback=_pairs(float, RETRYABLE),
    help="Per-outcome retry delay, e.g. --retry-delay-for busy=120 (repeatable; "
    "outcomes not named use --retry-delay).",
)
@click.option(
    "--max-per-outcome",
    multiple=True,
    metavar="OUTCOME=N",
    callback=_pairs(int, RETRYABLE),
    help="At most N dials ending in OUTCOME, e.g. --max-per-outcome failed=1 (repeatable).",
)
@click.option("--name", default="", help="Campaign name (default: the file's name).")
@_campaign_option(
    "priority", "Higher is admitted first on the account.", type=click.IntRange(-100, 100)
)
@_campaign_option(
    "weight", "Share of the account's slots among campaigns of equal priority.", type=float
)
@click.option("--webhook-url", default=None, help="POSTed each contact's final result.")
@click.option("--record/--no-record", default=False, show_default=True, help="Record calls.")
@click.option("--recording-channels", type=click.Choice(["single", "dual"]), default=None)
@_campaign_option("time_limit_s", "Exotel TimeLimit per call, seconds (max 14400).", type=int)
@click.option("--stream-name", default=None, help="Exotel stream name (max 32 characters).")
@click.option(
    "--sample-rate",
    type=click.Choice(["8000", "16000", "24000"]),
    default="8000",
    show_default=True,
    help="Audio sample rate of the stream, Hz.",
)
@click.option("--region", default=None, help="Default country for numbers without +, e.g. IN.")
@click.option(
    "--window",
    default=None,
    metavar="'DAYS HH:MM-HH:MM'",
    callback=_window,
    help="Calling window in each contact's local time, e.g. 'mon-fri 09:00-17:00' or "
    "mon-sat,09:00-20:00.",
)
@click.option(
    "--dnc-answer",
    "dnc_answers",
    multiple=True,
    metavar="QUESTION=DIGIT",
    callback=_text_pairs,
    help="A survey answer that puts the number on the do-not-call list, e.g. q3=9 (repeatable).",
)
@_campaign_option(
    "expected_call_s", "Typical call length, for the --dry-run finish estimate.", type=float
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
    dry_run: bool,
    as_json: bool,
    api: str | None,
    **given: Any,
) -> None:
    """Submit a campaign from CONTACTS (.csv with a 'to' column, or .json list).

    With --bot survey:FILE.json, FILE.json and the WAV prompts it names are read
    here and sent with the campaign (the receiver never reads your files).
    """
    options = _campaign_options(given, default_name=contacts.stem)
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
            try:
                text = read_text_file(raw)
            except ValidationError as exc:
                click.echo(f"error: {contacts}: {exc}", err=True)
                sys.exit(EXIT_USAGE)
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
        click.echo(dry_run_text(out))
    else:
        click.echo(out["id"])


def _campaign_options(given: dict[str, Any], default_name: str) -> dict[str, Any]:
    """The campaign's payload but its contacts, from ``submit``'s options (``SUBMIT_OPTIONS``)."""
    bot, survey = _survey_content(given["bot"])
    machine = _machine_options(given["machine_detection"])
    retry_delay, retry_delay_for = given["retry_delay"], given["retry_delay_for"]
    options: dict[str, Any] = {
        "bot": bot,
        "max_attempts": given["max_attempts"],
        "retry_delay_s": (
            {**dict.fromkeys(RETRYABLE, retry_delay), **retry_delay_for}
            if retry_delay_for
            else retry_delay
        ),
        "name": given["name"] or default_name,
        "priority": given["priority"],
        "weight": given["weight"],
        "time_limit_s": given["time_limit"],
        "record": given["record"],
        "sample_rate": int(given["sample_rate"]),
        "expected_call_s": given["expected_call_s"],
        **machine,
    }
    optional = {
        "webhook_url": given["webhook_url"],
        "default_region": given["region"],
        "window": given["window"],  # the text form: the server parses it with the same grammar
        "max_per_outcome": given["max_per_outcome"],
        "recording_channels": given["recording_channels"],
        "stream_name": given["stream_name"],
        "dnc_answers": given["dnc_answers"],
    }
    options.update({k: v for k, v in optional.items() if v})
    if survey is not None:
        options["survey"] = survey
    return options


def _machine_options(value: str) -> dict[str, Any]:
    """``--machine-detection``: a message WAV is read here and uploaded with the campaign."""
    from dialer.core.errors import ValidationError
    from dialer.core.machine import parse_policy

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


def _survey_content(bot: str) -> tuple[str, dict[str, Any] | None]:
    """``survey:FILE.json`` -> (``survey:FILE.json`` as a label, the file and its WAVs).

    Read on this machine: the receiver may run anywhere and never opens a path
    it is sent. A bad file is a usage error, reported before anything is sent.
    """
    kind, _, arg = bot.partition(":")
    if kind != "survey" or not arg:
        return bot, None
    try:
        content = read_survey(arg)
    except ValidationError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    return f"survey:{Path(arg).name}", content


@click.command()
@click.argument("campaign_id")
@click.option("--watch", is_flag=True, help="Live progress bar until the campaign ends.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--interval", type=float, default=1.0, show_default=True)
@api_option
def status(campaign_id: str, watch: bool, as_json: bool, interval: float, api: str | None) -> None:
    """Progress of a campaign, and why it waits (paused, open circuit, calling window...)."""
    c = client_from(api)
    try:
        if watch and not as_json:
            status_progress(lambda: c.get_campaign(campaign_id), interval)
            return
        st = c.get_campaign(campaign_id)
    except ApiError as exc:
        fail(exc)
    # --json: exactly the API's object, for scripts; otherwise a summary for people
    click.echo(json.dumps(st) if as_json else status_text(st))


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


@click.command("campaigns")
@click.option(
    "--state",
    type=click.Choice(list(SHOWN_STATES)),
    default=None,
    help="Only campaigns in this state.",
)
@click.option("--account", "account_sid", default=None, help="Only this account's campaigns.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="At most this many (newest first).",
)
@click.option("--json", "as_json", is_flag=True, help="The status objects as a JSON list.")
@api_option
def campaigns(
    state: str | None, account_sid: str | None, limit: int, as_json: bool, api: str | None
) -> None:
    """List campaigns, newest first: id, name, state, progress, created."""
    c = client_from(api)
    rows: list[dict[str, Any]] = []
    try:
        for row in c.iter_campaigns(state=state, account=account_sid, page_size=min(limit, 1000)):
            rows.append(row)
            if len(rows) >= limit:
                break
    except ApiError as exc:
        fail(exc)
    if as_json:
        click.echo(json.dumps(rows))
    else:
        campaigns_table(rows)


@account.command("webhook-key")
@click.argument("sid")
@click.option("--rotate", is_flag=True, help="Replace the key; deliveries use the new one at once.")
@api_option
def account_webhook_key(sid: str, rotate: bool, api: str | None) -> None:
    """Print the key that signs SID's webhooks (give it to whoever verifies them)."""
    try:
        out = client_from(api).webhook_key(sid, rotate=rotate)
    except ApiError as exc:
        fail(exc)
    click.echo(out["webhook_key"])


@click.group()
def key() -> None:
    """API keys for other applications (needs an admin key, e.g. DIALER_API_KEY)."""


@key.command("create")
@click.option("--account", "accounts", multiple=True, help="Account sid the key may use (repeat).")
@click.option("--admin", is_flag=True, help="Admin scope: accounts, keys, every campaign.")
@click.option("--label", default="", help="A note shown by `key list`.")
@api_option
def key_create(accounts: tuple[str, ...], admin: bool, label: str, api: str | None) -> None:
    """Create a key; it is printed once, on the last line (Redis keeps only its hash)."""
    if not accounts and not admin:
        raise click.UsageError("give --account SID (repeatable) or --admin")
    try:
        out = client_from(api).create_key(list(accounts), admin=admin, label=label)
    except ApiError as exc:
        fail(exc)
    scope = "admin" if out["admin"] else ",".join(out["accounts"])
    click.echo(f"key {out['id']} ({scope}); store it now, it is not shown again:", err=True)
    click.echo(out["key"])


@key.command("list")
@click.option("--json", "as_json", is_flag=True)
@api_option
def key_list(as_json: bool, api: str | None) -> None:
    """Every key's id, scope and label (never the keys)."""
    try:
        found = client_from(api).list_keys()
    except ApiError as exc:
        fail(exc)
    if as_json:
        click.echo(json.dumps(found))
        return
    for k in found:
        scope = "admin" if k["admin"] else ",".join(k["accounts"])
        click.echo(f"{k['id']}  {scope}  {k['label']}")


@key.command("revoke")
@click.argument("key_id")
@api_option
def key_revoke(key_id: str, api: str | None) -> None:
    """Revoke key KEY_ID; requests with it get 401 from now on."""
    try:
        out = client_from(api).revoke_key(key_id)
    except ApiError as exc:
        fail(exc)
    click.echo(json.dumps(out))


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


@click.command()
@click.argument("campaign_id")
@click.option(
    "--cancel",
    "cancel_first",
    is_flag=True,
    help="Cancel a running campaign first, then purge once its live calls have ended.",
)
@click.option(
    "--wait",
    type=float,
    default=300.0,
    show_default=True,
    metavar="SECONDS",
    help="With --cancel: how long to wait for live calls to end.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@api_option
def purge(campaign_id: str, cancel_first: bool, wait: float, yes: bool, api: str | None) -> None:
    """Delete a campaign and everything recorded about its contacts, now.

    Calls, outcomes, survey answers, recordings' URLs and raw callbacks go;
    the account and its do-not-call list stay. A running campaign is refused
    unless --cancel is given.
    """
    if not yes:
        click.confirm(f"Delete campaign {campaign_id} and all its call data for good?", abort=True)
    c = client_from(api)
    deadline = time.monotonic() + wait
    try:
        if cancel_first:
            c.cancel(campaign_id)
        while True:
            try:
                out = c.delete(campaign_id)
                break
            except ApiError as exc:
                # 409: cancelled, but a live call has not ended yet (or the cancel
                # task has not settled the queue): poll until the deadline.
                if exc.status != 409 or not cancel_first or time.monotonic() > deadline:
                    raise
                time.sleep(1.0)
    except ApiError as exc:
        fail(exc)
    click.echo(json.dumps(out))


def register(cli: click.Group) -> None:
    cli.add_command(account)
    cli.add_command(key)
    cli.add_command(submit)
    cli.add_command(status)
    cli.add_command(campaigns)
    cli.add_command(results)
    for name in ("pause", "resume", "cancel"):
        cli.add_command(_action(name))
    cli.add_command(purge)
