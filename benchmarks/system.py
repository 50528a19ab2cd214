"""System cost: CPU per placed call of every process, ours vs the naive design, one run.

A campaign of 600 one-second calls at limit 40 (``--quick``: 40 calls of
0.5 s at limit 8) through the whole system on this machine: the sandbox
(Exotel's stand-in) answers at once, the callee talks for the call's length
into an AgentStream websocket served by the streamer's echo bot, and sends
the three status callbacks (ringing, answered, terminal) of every call.

* **ours**: ``dialer up``'s processes (``benchmarks.slots.dialer_system``):
  sandbox, receiver, streamer, 2 workers (threads x8), beat.
* **naive**: the countdown-retry Celery design (``benchmarks.naive``, 2
  workers, threads x8), its callback endpoint as a process of its own
  (``benchmarks.naive_receiver``: a terminal callback DECRs the counter),
  and the same streamer process with the echo bot: its calls are made
  streamable (state answered, attempt 1) before the run, so it streams the
  same audio through the same code.

CPU is read from /proc for each process and its descendants (a prefork pool,
``--processes N``) over the campaign, from before it is submitted until
every terminal callback is in and the broker queues are empty. Counted as
the system: every process above and Redis (state and broker, one server for
both). Not counted: the sandbox and this process (the load side, Exotel's
part); the sandbox's CPU is reported beside. Utilisation is the mean of
active calls / L over the steady part (from the L-th dial, when the slots
are first full, to the last); refill latency pairs the k-th terminal
callback with the (L+k)-th dial (``benchmarks.common.analyse``), both on the
sandbox's clock.

Profile: after the measured campaign (so the sampler does not skew it), a
second campaign on the same processes runs with py-spy sampling the
receiver and one worker; their top frames go in the notes.
"""

from __future__ import annotations

import concurrent.futures
import os
import sys
import time
from typing import Any

import redis

from benchmarks import naive
from benchmarks.common import (
    CpuMeter,
    Ctx,
    Proc,
    Result,
    Row,
    bench_env,
    contacts,
    dialer_cmd,
    ratio,
    wait_http,
)
from benchmarks.ingest import register
from benchmarks.slots import (
    SANDBOX_ARGS,
    add_sandbox_account,
    behaviours,
    dialer_system,
    pids_of,
    refill_stages,
    sandbox_argv,
    start_naive_workers,
    summarise,
)
from benchmarks.streamer import campaign_calls, profile, stream_urls, top_frames
from dialer.platform.embedded import free_port
from dialer.platform.queue import QUEUES
from dialer.sandbox.control import SandboxControl
from dialer.services import queries

TODAY_MS = 77.6  # issue #17: ours per placed call on this machine before the work
UNACKED = "unacked"  # kombu's Redis transport: delivered, not yet acknowledged
# the process names of each system, by role (the rows), and the load side
ROLES = {
    "callback receiver": ("receiver", "naive-receiver"),
    "streamer (echo bot)": ("streamer",),
    "Celery workers": ("worker", "naive-worker"),
    "beat": ("beat",),
    "Redis (state + broker)": ("redis",),
}
LOAD_SIDE = ("sandbox",)
# the frames the inclusive profile lists: our code, and publishing through kombu
OURS = r"\((dialer/(?!cli/)|workers/|streamer/)|^Producer\.publish |^EventDispatcher\.publish "


def role_of(process: str) -> str | None:
    for role, prefixes in ROLES.items():
        if any(process.rstrip("0123456789") == p for p in prefixes):
            return role
    return None


def drained(r: redis.Redis, queues: tuple[str, ...]) -> bool:
    """No task waiting in a broker queue and none delivered but unacknowledged."""
    with r.pipeline(transaction=False) as pipe:
        for q in queues:
            pipe.llen(q)
        pipe.hlen(UNACKED)
        return not any(pipe.execute())


def costs(meter: CpuMeter, placed: int) -> dict[str, Any]:
    """CPU ms per placed call: each process, each role, the system (all but the load side)."""
    per = max(1, placed)
    by_process = {k: round(1000 * v / per, 2) for k, v in meter.result.items()}
    by_role: dict[str, float] = {}
    for k, v in by_process.items():
        role = role_of(k)
        if role is not None:
            by_role[role] = round(by_role.get(role, 0.0) + v, 2)
    system = sum(v for k, v in by_process.items() if k not in LOAD_SIDE)
    return {
        "cpu_ms_per_call": round(system, 1),
        "cpu_ms_by_process": by_process,
        "cpu_ms_by_role": by_role,
        "load_side_ms": round(sum(by_process.get(k, 0.0) for k in LOAD_SIDE), 1),
        "cpu_share": meter.shares(),
    }


def evidence(rep: dict[str, Any]) -> dict[str, Any]:
    """What the sandbox saw of a run: callbacks by event, streams, audio frames each way."""
    return {
        "callbacks_sent": dict(rep["callbacks_sent"]),
        "streams": rep["streams"],
        "frames_to_bot": rep["frames_out"],
        "frames_from_bot": rep["frames_in"],
    }


def wait_until(what: str, done: Any, timeout_s: float, alive: Any = None) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if alive is not None:
            alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not done in {timeout_s:.0f}s")
        time.sleep(0.2)


# --- ours --------------------------------------------------------------------------------
def campaign(api: Any, r: redis.Redis, numbers: list[str], timeout_s: float) -> str:
    out = api.create_campaign("sandbox", [{"to": x} for x in numbers], bot="echo", max_attempts=1)
    cid = str(out["id"])

    def finished() -> bool:
        return int((queries.status(r, cid) or {}).get("finished", 0)) >= len(numbers)

    wait_until("ours: campaign", finished, timeout_s)
    wait_until("ours: broker queues", lambda: drained(r, QUEUES), 30)
    return cid


def run_ours(
    ctx: Ctx,
    limit: int,
    n: int,
    talk_s: float,
    *,
    worker_args: list[str] | None = None,
    profile_s: float = 0.0,
    name: str = "ours",
) -> dict[str, Any]:
    r = ctx.fresh_redis()
    numbers = contacts(n)
    timeout = 60 + 6 * n * talk_s / limit
    with dialer_system(
        ctx,
        f"system-{name}",
        limit=limit,
        sandbox_args=SANDBOX_ARGS,
        worker_args=worker_args,
    ) as sup:
        api, sandbox_url = add_sandbox_account(sup, limit=limit, calls_per_minute=100_000)
        control = SandboxControl(sandbox_url, timeout_s=30)
        control.set_numbers(behaviours(numbers, talk_s, talk_s, 1))
        pids = pids_of(sup)
        meter = CpuMeter({**pids, "redis": ctx.redis_pid or 0}, trees=pids).start()
        t0 = time.monotonic()
        cid = campaign(api, r, numbers, timeout)
        wall = time.monotonic() - t0
        meter.stop()
        rep = control.wait_for(lambda rp: len(rp["terminal_times"]) >= n, timeout_s=30)
        stages = refill_stages(r, cid, n, limit, rep)
        frames: dict[str, Any] = {}
        if profile_s:
            frames = profiled_campaign(ctx, api, r, control, pids, n, talk_s, profile_s, timeout)
    return {
        **summarise(name, limit, n, rep, wall, steady=True),
        **costs(meter, len(rep["dial_times"])),
        **evidence(rep),
        "stages_ms": stages,
        "profile_top_self": frames,
    }


def profiled_campaign(
    ctx: Ctx,
    api: Any,
    r: redis.Redis,
    control: SandboxControl,
    pids: dict[str, int],
    n: int,
    talk_s: float,
    seconds: float,
    timeout: float,
) -> dict[str, Any]:
    """A second campaign of new numbers with py-spy on the receiver and the first worker."""
    numbers = contacts(n, start=n)
    control.set_numbers(behaviours(numbers, talk_s, talk_s, 2))
    targets = {"receiver": pids["receiver"], "worker": min(v for k, v in pids.items()
                                                           if k.startswith("worker"))}  # fmt: skip
    out_dir = ctx.tmp / "system-profile"
    out_dir.mkdir(parents=True, exist_ok=True)
    with concurrent.futures.ThreadPoolExecutor(len(targets) + 1) as pool:
        load = pool.submit(campaign, api, r, numbers, timeout)
        time.sleep(1.0)  # past the ramp: the slots are full
        spies = {k: pool.submit(profile, pid, seconds, out_dir / f"{k}.raw")
                 for k, pid in targets.items()}  # fmt: skip
        load.result()
        frames: dict[str, Any] = {k: f.result() for k, f in spies.items()}
    for k in targets:  # the same samples, by where our code and the broker client spend
        raw = out_dir / f"{k}.raw"
        if raw.exists():
            frames[f"{k}, inclusive"] = top_frames(raw.read_text(), 12, inclusive=OURS)
    return frames


# --- the naive baseline ------------------------------------------------------------------
def run_naive(ctx: Ctx, limit: int, n: int, talk_s: float, workers: int = 2) -> dict[str, Any]:
    r = ctx.fresh_redis()
    register(r)  # the streamer's echo bot reads the calls' campaign, as for ours
    numbers = contacts(n)
    call_ids = campaign_calls(r, n, "echo")  # streamable: state answered, attempt 1
    logs = ctx.tmp / "system-naive"
    sp, stp, rp = free_port(), free_port(), free_port()
    procs: list[Proc] = []

    def alive() -> None:
        for p in procs:
            if not p.alive():
                raise RuntimeError(f"{p.name} died: {p.tail()}")

    try:
        sandbox = Proc("sandbox", sandbox_argv(sp, limit), bench_env(SANDBOX_PORT=str(sp)), logs)
        streamer = Proc(
            "streamer",
            dialer_cmd("streamer", "--host", "127.0.0.1", "--port", str(stp)),
            bench_env(REDIS_URL=ctx.redis_url, STREAMER_PORT=str(stp), STREAMER_METRICS_PORT="0"),
            logs,
        )
        receiver = Proc(
            "naive-receiver",
            [sys.executable, "-m", "benchmarks.naive_receiver", str(rp)],
            bench_env(NAIVE_BROKER_URL=ctx.redis_url),
            logs,
        )
        procs += [sandbox, streamer, receiver]
        sandbox_url = f"http://127.0.0.1:{sp}"
        wait_http(f"{sandbox_url}/_sandbox/healthz", proc=sandbox)
        wait_http(f"http://127.0.0.1:{stp}/readyz", proc=streamer)
        wait_http(f"http://127.0.0.1:{rp}/healthz", proc=receiver)
        control = SandboxControl(sandbox_url, timeout_s=30)
        control.set_numbers(behaviours(numbers, talk_s, talk_s, 1))
        procs += start_naive_workers(ctx, logs, workers)
        named = {p.name: p.pid for p in procs}
        meter = CpuMeter({**named, "redis": ctx.redis_pid or 0}, trees=named).start()
        t0 = time.monotonic()
        for i, (num, (url, _call_id)) in enumerate(
            zip(numbers, stream_urls(stp, call_ids), strict=True)
        ):
            spec = {
                "number": num,
                "limit": limit,
                "api_url": sandbox_url,
                "callback_url": f"http://127.0.0.1:{rp}/cb/{i}",
                "custom": f"naive-{i}",
                "stream_url": url,
            }
            naive.call.apply_async((spec,), queue=naive.QUEUE)
        timeout = 90 + 8 * n * talk_s / limit

        def terminals_in() -> bool:
            return int(control.report()["callbacks_sent"].get("terminal", 0)) >= n

        wait_until("naive: terminal callbacks", terminals_in, timeout, alive)
        wait_until("naive: broker queue", lambda: drained(r, (naive.QUEUE,)), 30, alive)
        wall = time.monotonic() - t0
        meter.stop()
        rep = control.report()
        attempts = int(r.get(naive.ATTEMPTS) or 0)
    finally:
        for p in reversed(procs):
            p.stop()
    return {
        **summarise("naive", limit, n, rep, wall, steady=True),
        **costs(meter, len(rep["dial_times"])),
        **evidence(rep),
        "task_runs": attempts,
    }


# --- the benchmark -----------------------------------------------------------------------
def run(ctx: Ctx) -> Result:
    res = Result("system")
    limit, n, talk_s = (8, 40, 0.5) if ctx.quick else (40, 600, 1.0)
    profile_s = 0.0 if ctx.quick else 8.0
    ctx.log(f"  system L={limit} calls={n} of {talk_s:g} s: ours")
    ours = run_ours(ctx, limit, n, talk_s, profile_s=profile_s)
    ctx.log(f"    {ours}")
    ctx.log(f"  system L={limit} calls={n} of {talk_s:g} s: naive")
    base = run_naive(ctx, limit, n, talk_s)
    ctx.log(f"    {base}")
    return report(res, ours, base, limit, n, talk_s)


def report(
    res: Result, ours: dict[str, Any], base: dict[str, Any], limit: int, n: int, talk_s: float
) -> Result:
    tag = f"L={limit}, {n} calls of {talk_s:g} s"
    o, b = ours["cpu_ms_per_call"], base["cpu_ms_per_call"]
    cap = round(TODAY_MS / 2, 1)
    res.rows.append(
        Row(
            "system cost",
            f"CPU per placed call, whole system ({tag})",
            o,
            b,
            "ms",
            f"≤ {cap} ms (0.5x {TODAY_MS}) and ≤ naive",
            o <= cap and o <= b,
            ratio(o, b, lower_is_better=True),
            note=f"sandbox not counted: ours {ours['load_side_ms']} ms, "
            f"naive {base['load_side_ms']} ms",
        )
    )
    for role in ROLES:
        ro, rb = ours["cpu_ms_by_role"].get(role), base["cpu_ms_by_role"].get(role)
        res.rows.append(
            Row(
                "system cost",
                f"... {role}",
                ro,
                rb,
                "ms",
                ratio=ratio(ro, rb, lower_is_better=True),
            )
        )
    u_o, u_b = ours["utilisation"], base["utilisation"]
    res.rows.append(
        Row(
            "system slots",
            f"utilisation, mean active/L over the steady part ({tag})",
            u_o,
            u_b,
            "",
            "≥ 0.97",
            u_o is not None and u_o >= 0.97,
            ratio(u_o, u_b),
        )
    )
    for q in ("p50", "p99"):
        lo, lb = ours[f"refill_{q}_ms"], base[f"refill_{q}_ms"]
        target = "≤ 100 ms" if q == "p99" else ""
        met = (lo is not None and lo <= 100) if q == "p99" else None
        res.rows.append(
            Row(
                "system slots",
                f"refill latency {q} ({tag})",
                lo,
                lb,
                "ms",
                target,
                met,
                ratio(lo, lb, lower_is_better=True),
            )
        )
    frames = ours.pop("profile_top_self", {}) or {}
    res.details.update({"ours": ours, "naive": base, "profile_top_self": frames})
    res.details["notes"] = notes(ours, base, frames)
    res.bottleneck = (
        "CPU ms per call by process, ours: "
        + ", ".join(f"{k} {v}" for k, v in ours["cpu_ms_by_process"].items())
        + "; naive: "
        + ", ".join(f"{k} {v}" for k, v in base["cpu_ms_by_process"].items())
        + f"; refill p99 ours {ours['refill_p99_ms']} ms (max {ours['refill_max_ms']} ms), "
        "p50/p99 by stage (ms): "
        + "; ".join(f"{k} {v['p50']}/{v['p99']}" for k, v in ours["stages_ms"].items())
        + ". "
        + why(ours, frames, talk_s)
    )
    return res


def share(frames: dict[str, Any], proc: str, frame: str) -> str:
    """``frame``'s inclusive share of ``proc``'s samples, as text ("?" when not profiled)."""
    top = frames.get(f"{proc}, inclusive")
    if not isinstance(top, list):
        return "?"
    return next((f"{s:.0%}" for f, s in top if f.startswith(frame)), "< 5 %")


def why(ours: dict[str, Any], frames: dict[str, Any], talk_s: float) -> str:
    """What the profile says would cut the cost and the refill (the misses' 'why')."""
    roles = sorted(ours["cpu_ms_by_role"].items(), key=lambda kv: -kv[1])
    # Calls end at L / talk per second at full slots: the CPU that rate needs, load side too
    rate = ours["L"] / talk_s
    cores = rate * (ours["cpu_ms_per_call"] + ours["load_side_ms"]) / 1000
    cpus = os.cpu_count() or 1
    busy = (
        "so every hop of the refill waits for a core: the utilisation and refill targets "
        "need the CPU per call down first"
        if cores >= 0.8 * cpus
        else "so the cores are not what holds the refill back"
    )
    return (
        f"Full slots mean {rate:g} calls/s; at {ours['cpu_ms_per_call']} ms per call for the "
        f"system and {ours['load_side_ms']} ms for the sandbox that is {cores:.2f} cores of "
        f"the machine's {cpus}, {busy}. What would fix it: by role the costs are "
        + ", ".join(f"{k} {v} ms" for k, v in roles)
        + ". In the receiver, reading the callback body (our flat-form parser, "
        "dialer.core.forms) is "
        + share(frames, "receiver", "read_body")
        + " of its samples and publishing the dial and follow-up tasks through kombu "
        f"{share(frames, 'receiver', 'Producer.publish')} (both in one pipelined broker "
        "round trip). In the "
        f"workers the dial is {share(frames, 'worker', 'dial (dialer/services/dialing.py)')} "
        "of the samples, most of it waiting on Redis and the Connect request, not Python. "
        "The refill misses by the Celery hop between the receiver's admission and the dial "
        "task (the stage 'admitted_to_claimed', its tail above all): the broker queue stays "
        "short (see docs/scaling.md, Celery workers), so the time is the hop itself (the "
        "worker's consumer fetching the message and handing it to a pool thread, on cores "
        "the sandbox and the streams share); sending the Connect request from the receiver "
        "that admitted the call would remove the hop from the refill path. " + waves(ours)
    )


def waves(ours: dict[str, Any]) -> str:
    """Where the slow refills fall: the p99 is a handful of refills, mostly the first waves'."""
    slow, early, limit = ours["refills_over_100ms"], ours["of_them_in_first_waves"], ours["L"]
    n = max(1, ours["calls"] - limit)
    return (
        f"Of the {n} refills, {slow} took over 100 ms ({slow / n:.1%}; the p99 allows "
        f"{n // 100}), {early} of them among the first {2 * limit}: the {limit} calls "
        "dialled together at the start end together, and each of their terminal callbacks "
        "needs its commit, a dial task and a Connect request on the same 2 cores at once; "
        "later waves spread out"
    )


def notes(ours: dict[str, Any], base: dict[str, Any], frames: dict[str, Any]) -> str:
    parts = [
        "whole system = every process but the sandbox (Exotel's stand-in, the load side) and "
        "the benchmark, Redis included; each process with its children (/proc). Callbacks "
        f"sent ours {ours['callbacks_sent']}, naive {base['callbacks_sent']}; streams "
        f"ours {ours['streams']}, naive {base['streams']}; audio frames to/from the echo "
        f"ours {ours['frames_to_bot']}/{ours['frames_from_bot']}, naive "
        f"{base['frames_to_bot']}/{base['frames_from_bot']}; "
        f"the naive design ran its task {base.get('task_runs', 0):,} times for "
        f"{base['calls']} calls"
    ]
    for proc, top in frames.items():
        text = "; ".join(f"{f} {s:.1%}" for f, s in top) if isinstance(top, list) else top
        how = "" if proc.endswith("inclusive") else ", self time"
        parts.append(f"py-spy, ours, {proc}{how} (second campaign): {text}")
    return ". ".join(parts) + "."
