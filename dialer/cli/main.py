"""The ``dialer`` command: process runners, ``up``/``demo``, and REST client commands.

Exit codes (documented in the README):
  0 success · 1 the operation failed (API error, campaign not finished)
  2 bad usage or configuration · 3 the API or a service is unreachable
Client commands talk to the receiver's REST API only; process commands
import just the process they run.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from dialer.core.errors import ConfigError
from dialer.core.settings import Settings, load_settings, require_server_secrets

if TYPE_CHECKING:  # the server modules are imported by the command that runs one
    from dialer.platform.serving import Listen

EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)


def server_settings_or_exit() -> Settings:
    """Settings for a server process: exit 2 naming the variable unless secrets are real."""
    s = settings_or_exit()
    try:
        return require_server_secrets(s)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="exotel-dialer")
def cli() -> None:
    """Outbound voice-AI dialer on Exotel's Connect-to-Voice-AI API."""


@cli.command()
@click.option(
    "--queues",
    default="dial,followup,notify,maintenance",
    show_default=True,
    help="Comma-separated queues this worker consumes (scale roles separately).",
)
@click.option("--concurrency", "-c", default=8, show_default=True, help="Worker threads.")
@click.option(
    "--pool",
    default="threads",
    show_default=True,
    type=click.Choice(["threads", "prefork", "solo"]),
)
@click.option(
    "--prefetch-multiplier",
    type=click.IntRange(1, 64),
    default=None,
    help="Messages reserved per pool slot (default: the app's, 1).",
)
@click.option(
    "--task-events",
    is_flag=True,
    help="Send task events from the start (monitoring; Flower turns them on by itself).",
)
@click.option("--hostname", "-n", default=None, help="Celery node name (default: worker@host).")
@click.option("--loglevel", default=None, help="DEBUG, INFO, WARNING, ERROR.")
def worker(
    queues: str,
    concurrency: int,
    pool: str,
    prefetch_multiplier: int | None,
    task_events: bool,
    hostname: str | None,
    loglevel: str | None,
) -> None:
    """Run a Celery worker (dial, follow-ups, notify, maintenance)."""
    s = server_settings_or_exit()
    from workers.app import app

    argv = [
        "worker",
        "-Q",
        queues,
        "-c",
        str(concurrency),
        "-P",
        pool,
        "--loglevel",
        loglevel or s.DIALER_LOG_LEVEL,
        "--without-mingle",
        "--without-gossip",
    ]
    if task_events:
        argv.append("--task-events")
    if prefetch_multiplier is not None:
        argv += ["--prefetch-multiplier", str(prefetch_multiplier)]
    if hostname:
        argv += ["-n", hostname]
    app.worker_main(argv)


@cli.command()
@click.option("--loglevel", default=None)
def beat(loglevel: str | None) -> None:
    """Run the periodic ticker (admit due retries, reconcile expired leases). Run one."""
    s = server_settings_or_exit()
    s.DIALER_DATA_DIR.mkdir(parents=True, exist_ok=True)
    from workers.app import app

    app.start(
        [
            "beat",
            "--loglevel",
            loglevel or s.DIALER_LOG_LEVEL,
            "-s",
            str(s.DIALER_DATA_DIR / "celerybeat-schedule"),
        ]
    )


def _server(port_setting: str) -> Callable[[Any], Any]:
    """A server command's options: where to listen, and ``--processes N`` (public)
    with what the parent tells each child (hidden)."""

    def add(f: Any) -> Any:
        f = click.option("--reuse-port", is_flag=True, hidden=True)(f)
        f = click.option("--metrics-port", type=int, default=None, hidden=True)(f)
        f = click.option(
            "--processes",
            type=click.IntRange(1, 256),
            default=1,
            show_default=True,
            help="Processes sharing the port (SO_REUSEPORT), e.g. one per core; "
            "child i serves /metrics on the metrics port + i.",
        )(f)
        f = click.option("--port", type=int, default=None, help=f"Port (default ${port_setting}).")(
            f
        )
        return click.option("--host", default=None, help="Bind address (default $DIALER_HOST).")(f)

    return add


def _listen(
    command: str, s: Settings, flags: dict[str, Any], ports: tuple[int, int], group_stop_s: float
) -> Listen:
    """Where this server process listens: the flags over ``ports`` (public, metrics).

    With ``--processes N`` > 1 this process becomes the group's parent and never
    returns; its children are given ``group_stop_s`` to drain.
    """
    from dialer.platform.logs import setup_logging
    from dialer.platform.serving import Listen

    setup_logging(s.DIALER_LOG_LEVEL, s)
    host = flags["host"] or s.DIALER_HOST
    port = ports[0] if flags["port"] is None else flags["port"]
    if flags["processes"] > 1:
        _serve_group(command, host, port, ports[1], flags["processes"], group_stop_s)
    metrics_port = ports[1] if flags["metrics_port"] is None else flags["metrics_port"]
    return Listen(host, port, s.DIALER_METRICS_HOST, metrics_port, flags["reuse_port"])


def _serve_group(
    command: str, host: str, port: int, base_metrics_port: int, n: int, stop_timeout_s: float
) -> None:
    """Run ``n`` children of ``command`` on one port, supervised (dialer.platform.processes)."""
    from dialer.platform.processes import Group, metrics_port, port_available

    if not port_available(host, port):
        click.echo(f"error: {command} port {port} on {host} is already in use", err=True)
        sys.exit(EXIT_USAGE)
    argvs = [
        [
            *(sys.executable, "-m", "dialer.cli.main", command),
            *("--host", host, "--port", str(port), "--reuse-port"),
            *("--metrics-port", str(metrics_port(base_metrics_port, i))),
        ]
        for i in range(n)
    ]
    sys.exit(Group(command, argvs, stop_timeout_s, dict(os.environ)).run())


def _run_receiver(s: Settings, listen: Listen) -> None:
    from dialer.receiver.app import run

    run(s, listen)


def _run_streamer(s: Settings, listen: Listen) -> None:
    from streamer.app import run

    run(s, listen)


@dataclass(frozen=True)
class _Server:
    """A server command: its settings, how long its children drain, what it runs."""

    name: str
    help: str
    port: str  # the settings of its public and metrics ports
    metrics_port: str
    group_stop_s: Callable[[Settings], float]
    run: Callable[[Settings, Listen], None]

    def command(self) -> click.Command:
        @click.command(self.name, help=self.help)
        @_server(self.port)
        def serve(**flags: Any) -> None:
            s = server_settings_or_exit()
            ports = (getattr(s, self.port), getattr(s, self.metrics_port))
            self.run(s, _listen(self.name, s, flags, ports, self.group_stop_s(s)))

        return serve


_SERVERS = (
    _Server(
        "receiver",
        "Run the receiver: Exotel status callbacks and the REST API.",
        "DIALER_PORT",
        "DIALER_METRICS_PORT",
        # Callbacks in flight get their deadline, as in one process, plus a margin.
        lambda s: s.DIALER_CALLBACK_DEADLINE_S + 10,
        _run_receiver,
    ),
    _Server(
        "streamer",
        "Run the AgentStream websocket server Exotel connects to.",
        "STREAMER_PORT",
        "STREAMER_METRICS_PORT",
        # Live calls get STREAMER_DRAIN_S, as in one process, plus the close and a margin.
        lambda s: s.STREAMER_DRAIN_S + 15,
        _run_streamer,
    ),
)
for _server_kind in _SERVERS:
    cli.add_command(_server_kind.command())


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="Port (default $SANDBOX_PORT).")
@click.option(
    "--max-concurrent",
    type=int,
    default=10,
    show_default=True,
    help="Concurrency cap of the sandbox account (429 past it).",
)
@click.option("--calls-per-minute", type=int, default=200, show_default=True)
@click.option("--ring-s", type=float, default=1.0, show_default=True)
@click.option("--talk-max-s", type=float, default=20.0, show_default=True)
@click.option("--think-s", type=float, default=0.3, show_default=True)
@click.option(
    "--callback-format",
    default="rotate",
    show_default=True,
    type=click.Choice(["rotate", "json", "urlencoded", "multipart"]),
)
@click.option("--seed", type=int, default=0, show_default=True)
def sandbox(
    host: str,
    port: int | None,
    max_concurrent: int,
    calls_per_minute: int,
    ring_s: float,
    talk_max_s: float,
    think_s: float,
    callback_format: str,
    seed: int,
) -> None:
    """Run the local Exotel (account "sandbox", key "sandbox-key", token "sandbox-token")."""
    s = settings_or_exit()
    from dialer.platform.logs import setup_logging
    from dialer.sandbox.app import run
    from dialer.sandbox.config import AccountConfig, SandboxConfig

    setup_logging(s.DIALER_LOG_LEVEL, s)
    config = SandboxConfig(
        accounts=[AccountConfig.demo(max_concurrent, calls_per_minute)],
        ring_s=ring_s,
        talk_max_s=talk_max_s,
        think_s=think_s,
        callback_format=callback_format,
        seed=seed,
    )
    run(host, s.SANDBOX_PORT if port is None else port, config)


@cli.command()
@click.option("--port", type=int, default=None, help="Port (default $FLOWER_PORT).")
def flower(port: int | None) -> None:
    """Run Flower, the Celery monitor, on this deployment's broker."""
    s = settings_or_exit()
    from dialer.platform.queue import make_celery

    app = make_celery(s)  # the broker's queues and events; Flower runs no task
    app.start(["flower", f"--port={port or s.FLOWER_PORT}", f"--address={s.DIALER_HOST}"])


def main() -> None:
    from dialer.cli import commands, up

    commands.register(cli)
    up.register(cli)
    cli(prog_name="dialer")


if __name__ == "__main__":
    main()
