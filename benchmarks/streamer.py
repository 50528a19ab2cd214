"""Streamer: concurrent 8 kHz echo streams with ``--processes 2``, pacing jitter, CPU; relay.

A client plays Exotel for N calls at once: connect (signed stream URL),
``connected``, ``start``, then 100 ms PCM16 media frames paced on a monotonic
clock. It runs in ``CLIENT_PROCESSES`` processes, each with its share of the
streams (one client loop took 0.5-0.8 of a core at 1,000 streams, so its own
lag was the jitter tail; spread out, the tail measures the server). The
processes agree on the steady window through shared memory (the monotonic
clock is the same in every process). The streamer (``dialer streamer --processes 2``: two
processes on one port) runs the echo bot, which plays the audio back through
the real-time pacer in chunks of 3,200 B (200 ms). Measured per stream:
inter-arrival jitter of the bot's media frames (|gap - duration of the
previous chunk|) and the first audio latency (start sent -> first media).
The largest N tried (1,000, 750, 500, 300, 200) whose jitter p99 stays within
the budget (20 ms) with no stream failed or silent is the result.

CPU per stream (% of a core) = the streamer processes' CPU seconds over the
window / stream-seconds of echoed audio the clients received in it. When the
streamer keeps up that is streams x seconds; on a shared machine where it is
starved it does not credit streams it failed to serve. Baseline: a bare
aiohttp websocket echo (``benchmarks.hello``, one process, echoing every
frame) with the same client, at the same N, in the same run. The client
shares the cores; its event-loop lag (the worst of its processes' p99s) is
reported beside the jitter.

Profile: with py-spy installed (a dev dependency) one streamer process is
sampled for a window at the sustained N and its top frames go in the notes,
next to the profile taken before issue #17's work (``BEFORE``).

Relay: M streams sending 3,200 B frames every 200 ms to a ``relay:`` bot
(the same bare echo as the customer's bot) vs straight to the echo; the
round trip of each frame (matched by its chunk number) gives the latency the
relay adds.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import itertools
import json
import multiprocessing
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from benchmarks.common import (
    KEYS,
    CpuMeter,
    Ctx,
    Proc,
    Result,
    Row,
    bench_env,
    contacts,
    dialer_cmd,
    pct,
    proc_stats,
    r2,
    ratio,
    wait_http,
)
from benchmarks.ingest import register
from dialer.core import campaign, tokens
from dialer.platform.embedded import free_port
from dialer.services import ingest
from dialer.store import keys

RATE = 8000
PROCESSES = 2
LEVELS = (1000, 750, 500, 300, 200)
JITTER_BUDGET_MS = 20.0
CLIENT_PROCESSES = 2
# py-spy on the streamer at 200 streams, one process, before issue #17's work
# (commit 37443f8): share of samples by frame, self time.
BEFORE = (
    "before (one process, 200 streams, py-spy self time): json encode 13.5 % "
    "(iterencode, dumps), base64 b64decode(validate=True) 10.7 % (a regex over every "
    "payload), b64encode 7.0 %, protocol._obj/_int/_load 9.9 %, json decode 7.3 %, "
    "prometheus labels() 4.0 %, aiohttp receive 5.8 %, socket read/write 5.2 %; "
    "decode() 32.6 % and encode() 21.5 % inclusive; a sender task + wait_for timer per stream. "
    "Same machine, same client, one process, 150 echo streams, before vs after (two runs "
    "each): 0.29-0.30 % vs 0.18-0.20 % of a core per stream"
)


def pcm_b64(nbytes: int) -> str:
    pcm = bytes((i * 37) % 7 for i in range(nbytes))  # quiet, not silent
    return base64.b64encode(pcm).decode()


def media_frame(sid: str, seq: int, chunk: int, payload: str, frame_ms: int) -> str:
    return (
        f'{{"event":"media","sequence_number":{seq},"stream_sid":"{sid}","media":'
        f'{{"chunk":"{chunk}","timestamp":"{chunk * frame_ms}","payload":"{payload}"}}}}'
    )


def start_frame(sid: str, call_id: str) -> str:
    return json.dumps(
        {
            "event": "start",
            "sequence_number": 1,
            "stream_sid": sid,
            "start": {
                "stream_sid": sid,
                "call_sid": call_id,
                "account_sid": "sandbox",
                "from": "+919876500000",
                "to": "08047112345",
                "custom_parameters": {},
                "media_format": {
                    "encoding": "audio/x-raw",
                    "sample_rate": str(RATE),
                    "bit_rate": "16",
                },
            },
        }
    )


class Window:
    """When every stream of a run is in, shared by the client processes.

    ``up`` counts connected streams over all processes; the one that brings
    it to ``total`` writes the clock time to ``at`` (0.0 until then).
    """

    def __init__(self, total: int) -> None:
        mp = multiprocessing.get_context("spawn")
        self.total = total
        self.up = mp.Value("i", 0)
        self.at = mp.Value("d", 0.0)

    def connected(self) -> None:
        with self.up.get_lock():
            self.up.value += 1
            if self.up.value >= self.total and not self.at.value:
                self.at.value = time.monotonic()

    def opened(self) -> float:
        return float(self.at.value)


class Stats:
    def __init__(
        self, n: int, seconds: float, meter: CpuMeter | None, window: Window | None = None
    ) -> None:
        self.jitter_ms: list[float] = []
        self.first_audio_ms: list[float] = []
        self.rtt_ms: list[float] = []
        self.failed = 0
        self.silent = 0
        self.frames_in = 0
        self.n, self.seconds, self.meter, self.window = n, seconds, meter, window
        self.audio_s = 0.0  # echoed audio received inside the steady window
        self.up = 0
        self.all_up = asyncio.Event()
        self.steady_from = self.steady_to = 0.0

    def connected(self) -> None:
        """A stream is in (its first echo arrived); once every one is, the steady
        window starts: the ramp (handshakes, a backlog of them on a loaded
        machine) is excluded from jitter and CPU."""
        if self.window is not None:  # the processes' window: ``watch`` opens it here
            self.window.connected()
            return
        self.up += 1
        if self.up >= self.n and not self.all_up.is_set():
            self.open(time.monotonic())

    def open(self, now: float) -> None:
        self.steady_from, self.steady_to = now + 0.5, now + self.seconds
        if self.meter is not None:
            self.meter.start()
        self.all_up.set()

    async def watch(self) -> None:
        """In a client process: open the window once the shared one has opened."""
        assert self.window is not None
        while not (at := self.window.opened()):
            await asyncio.sleep(0.005)
        self.open(at)

    def force_open(self) -> None:
        now = time.monotonic()
        if self.window is None:
            self.open(now)
            return
        with self.window.up.get_lock():  # every process's ``watch`` opens it
            if not self.window.at.value:
                self.window.at.value = now

    FIELDS = ("jitter_ms", "first_audio_ms", "rtt_ms", "failed", "silent", "frames_in", "audio_s")

    def export(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.FIELDS}

    def merge(self, part: dict[str, Any]) -> None:
        for f in self.FIELDS:
            setattr(self, f, getattr(self, f) + part[f])


async def play(
    session: aiohttp.ClientSession,
    url: str,
    call_id: str,
    frame_ms: int,
    stats: Stats,
    gate: asyncio.Semaphore,
    *,
    rtt: bool = False,
) -> None:
    sid = "MZ" + call_id.replace("-", "")
    nbytes = RATE * 2 * frame_ms // 1000
    payload = pcm_b64(nbytes)
    async with gate:  # a ramp: at most `gate` handshakes in flight, like calls being answered
        try:
            ws = await session.ws_connect(url, max_msg_size=4 * 1024 * 1024, timeout=30)
        except (aiohttp.ClientError, TimeoutError, OSError):
            stats.failed += 1
            stats.connected()
            return
    arrivals: list[tuple[float, int]] = []
    sent_at: dict[int, float] = {}
    counted = False

    def up() -> None:
        """This stream is in: its first echo came back (or it failed)."""
        nonlocal counted
        if not counted:
            counted = True
            stats.connected()

    async def reader() -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            now = time.monotonic()
            frame = orjson.loads(msg.data)  # the client shares the cores: keep it cheap
            if frame.get("event") != "media":
                continue
            media = frame["media"]
            p = media["payload"]
            size = len(p) * 3 // 4 - p[-2:].count("=")
            arrivals.append((now, size))
            up()
            if rtt and str(media.get("chunk", "")).isdigit() and int(media["chunk"]) >= 2:
                t = sent_at.get(int(media["chunk"]))
                if t is not None and stats.steady_from <= t <= stats.steady_to:
                    stats.rtt_ms.append((now - t) * 1000)

    task = asyncio.create_task(reader())
    t0 = time.monotonic()
    try:
        await ws.send_str('{"event":"connected"}')
        await ws.send_str(start_frame(sid, call_id))
        t0 = next_at = time.monotonic()
        i = 0
        while not stats.all_up.is_set() or time.monotonic() < stats.steady_to:
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sent_at[i] = time.monotonic()
            await ws.send_str(media_frame(sid, i + 2, i, payload, frame_ms))
            next_at += frame_ms / 1000
            i += 1
        await asyncio.sleep(0.5)  # let the last chunks play out
        await ws.send_str(
            json.dumps(
                {
                    "event": "stop",
                    "stream_sid": sid,
                    "stop": {"call_sid": call_id, "reason": "callended"},
                }
            )
        )
    except (aiohttp.ClientError, ConnectionError):
        stats.failed += 1
    finally:
        up()
        await ws.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    stats.frames_in += len(arrivals)
    if not arrivals:
        stats.silent += 1
        return
    stats.first_audio_ms.append((arrivals[0][0] - t0) * 1000)
    for (t_prev, n_prev), (t, _n) in itertools.pairwise(arrivals[1:]):
        if stats.steady_from <= t_prev and t <= stats.steady_to:
            stats.jitter_ms.append(abs((t - t_prev) - n_prev / (RATE * 2)) * 1000)
    stats.audio_s += sum(
        n / (RATE * 2) for t, n in arrivals if stats.steady_from <= t <= stats.steady_to
    )


async def loop_lag(stats: Stats, out: list[float]) -> None:
    try:
        await asyncio.wait_for(stats.all_up.wait(), 120)
    except TimeoutError:  # some stream never got in: measure from now on anyway
        stats.force_open()
        await stats.all_up.wait()
    while time.monotonic() < stats.steady_to:
        t = time.monotonic()
        await asyncio.sleep(0.01)
        if t >= stats.steady_from:
            out.append((time.monotonic() - t - 0.01) * 1000)
    if stats.meter is not None:
        stats.meter.stop()


async def drive(
    urls: list[tuple[str, str]],
    seconds: float,
    frame_ms: int,
    *,
    rtt: bool = False,
    meter: CpuMeter | None = None,
    window: Window | None = None,
) -> tuple[Stats, list[float]]:
    """Run len(urls) streams; measure over `seconds` once all of them are connected
    (all of this process's, or with ``window`` all of every client process's)."""
    stats = Stats(len(urls), seconds, meter, window)
    lag: list[float] = []
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as session:
        watch = asyncio.create_task(stats.watch()) if window is not None else None
        monitor = asyncio.create_task(loop_lag(stats, lag))
        gate = asyncio.Semaphore(20)
        await asyncio.gather(
            *(play(session, u, c, frame_ms, stats, gate, rtt=rtt) for u, c in urls)
        )
        await monitor
        if watch is not None:
            watch.cancel()
    return stats, lag


def _client(
    urls: list[tuple[str, str]], seconds: float, frame_ms: int, window: Window, out: Any
) -> None:
    """One client process (spawned): its streams, then its figures to ``out``."""
    stats, lag = asyncio.run(drive(urls, seconds, frame_ms, window=window))
    out.put((stats.export(), pct(lag, 99)))


def drive_spread(
    urls: list[tuple[str, str]],
    seconds: float,
    frame_ms: int,
    meter: CpuMeter | None = None,
    opened: threading.Event | None = None,
) -> tuple[Stats, list[float]]:
    """``drive`` over ``CLIENT_PROCESSES`` processes, the streams dealt round-robin.

    ``meter`` gets the client processes as ``client0``..; it runs over the
    shared window, which sets ``opened`` when it opens (every stream in). The
    lag returned is each process's p99.
    """
    mp = multiprocessing.get_context("spawn")
    window, out = Window(len(urls)), mp.Queue()
    procs = [
        mp.Process(
            target=_client,
            args=(urls[i::CLIENT_PROCESSES], seconds, frame_ms, window, out),
            daemon=True,
        )
        for i in range(CLIENT_PROCESSES)
    ]
    for i, proc in enumerate(procs):
        proc.start()
        if meter is not None:
            meter.pids[f"client{i}"] = proc.pid or 0
    stats = Stats(len(urls), seconds, meter)
    try:
        deadline = time.monotonic() + 180
        while not (at := window.opened()):
            if time.monotonic() > deadline or not any(p.is_alive() for p in procs):
                raise RuntimeError("the client processes never got every stream in")
            time.sleep(0.005)
        stats.open(at)
        if opened is not None:
            opened.set()
        time.sleep(max(0.0, stats.steady_to - time.monotonic()))
        if meter is not None:
            meter.stop()
        lags: list[float] = []
        for _ in procs:
            part, lag99 = out.get(timeout=seconds + 120)
            stats.merge(part)
            if lag99 is not None:
                lags.append(lag99)
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    return stats, lags


def summary(stats: Stats, lag: list[float], n: int) -> dict[str, Any]:
    return {
        "streams": n,
        "failed": stats.failed,
        "silent": stats.silent,
        "frames_in": stats.frames_in,
        "jitter_p50_ms": r2(pct(stats.jitter_ms, 50)),
        "jitter_p99_ms": r2(pct(stats.jitter_ms, 99)),
        "first_audio_p50_ms": r2(pct(stats.first_audio_ms, 50), 1),
        "first_audio_p99_ms": r2(pct(stats.first_audio_ms, 99), 1),
        "client_loop_lag_p99_ms": r2(pct(lag, 99)),
    }


def metered_summary(
    stats: Stats, lag: list[float], n: int, meter: CpuMeter, servers: list[str]
) -> dict[str, Any]:
    """``summary`` plus CPU shares and the CPU per stream of ``servers`` (% of a core).

    Per stream-second of audio the clients got back in the window (see the
    module docstring), and per nominal stream (streams x window) beside it.
    """
    cpu = sum(meter.result.get(s, 0.0) for s in servers)
    window = max(stats.steady_to - stats.steady_from, 1e-9)
    served = stats.audio_s
    return {
        **summary(stats, lag, n),
        "cpu_share": meter.shares(),
        "server_cpu_s": round(cpu, 2),
        "served_stream_s": round(served, 1),
        "served_share": round(served / (n * window), 3),
        "cpu_per_stream_pct": round(100 * cpu / served, 3) if served else None,
        "cpu_per_nominal_stream_pct": round(100 * cpu / (n * max(meter.wall, 1e-9)), 3),
    }


def within_budget(s: dict[str, Any]) -> bool:
    return (
        not s["failed"]
        and not s["silent"]
        and s["jitter_p99_ms"] is not None
        and s["jitter_p99_ms"] <= JITTER_BUDGET_MS
    )


def children_of(parent: int) -> list[int]:
    """Live child pids of ``parent`` (the processes of ``--processes N``), from /proc."""
    return sorted(p for p, f in proc_stats().items() if int(f[1]) == parent and f[0] != "Z")


def wait_children(parent: int, n: int, timeout_s: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while len(kids := children_of(parent)) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"--processes {n}: only {len(kids)} children came up")
        time.sleep(0.1)
    return kids


def py_spy() -> str | None:
    found = Path(sys.executable).parent / "py-spy"
    return str(found) if found.exists() else shutil.which("py-spy")


def frame_name(frame: str) -> str:
    """``fn (/long/path/site-packages/pkg/mod.py:12)`` -> ``fn (pkg/mod.py)``."""
    m = re.match(r"(.*) \((.*?)(?::\d+)?\)$", frame)
    if not m:
        return frame
    path = re.sub(r".*/(site-packages|python3\.\d+)/", "", m.group(2))
    path = re.sub(r".*?/((streamer|dialer|workers|benchmarks)/)", r"\1", path)
    return f"{m.group(1)} ({path})"


def top_frames(raw: str, k: int = 10, *, inclusive: str | None = None) -> list[tuple[str, float]]:
    """py-spy's raw (collapsed) output -> the ``k`` frames with most self time, as shares.

    ``inclusive``: a regular expression over frame names; then the share of
    samples with a matching frame anywhere on the stack (time spent in it and
    below), for the matching frames only.
    """
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        total += int(count)
        if inclusive is None:
            counts[frame_name(stack.rsplit(";", 1)[-1])] += int(count)
            continue
        names = {frame_name(f) for f in stack.split(";")}
        for name in names:
            if re.search(inclusive, name):
                counts[name] += int(count)
    return [(f, round(c / total, 3)) for f, c in counts.most_common(k)] if total else []


def profile(
    pid: int, seconds: float, out: Path, *, inclusive: str | None = None
) -> list[tuple[str, float]] | str:
    """Sample ``pid`` with py-spy for ``seconds``; its top frames (``top_frames``), or why
    there are none."""
    exe = py_spy()
    if exe is None:
        return "py-spy not installed"
    cmd = [exe, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "100"]
    cmd += ["-f", "raw", "-o", str(out), "--nonblocking"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"py-spy failed: {exc}"
    if done.returncode != 0 or not out.exists():
        return f"py-spy failed: {done.stderr.strip()[-200:]}"  # e.g. no ptrace permission
    return top_frames(out.read_text(), inclusive=inclusive)


def stream_urls(port: int, call_ids: list[str]) -> list[tuple[str, str]]:
    exp = int(time.time()) + 3600
    return [
        (
            f"ws://127.0.0.1:{port}/stream/{c}?token="
            f"{tokens.stream_token(KEYS.stream, c, 1, exp)}&sample-rate={RATE}",
            c,
        )
        for c in call_ids
    ]


def campaign_calls(r: Any, n: int, bot: str) -> list[str]:
    spec = campaign.CampaignIn.model_validate(
        {"account": "sandbox", "bot": bot, "contacts": [{"to": x} for x in contacts(n)]}
    )
    cid = ingest.create_campaign(r, spec, default_region="IN")["id"]
    ids = [keys.call_id(cid, i) for i in range(n)]
    # A stream is let in only for a live attempt (streamer.store.claim_stream):
    # play the dial as far as "answered", attempt 1, without a worker.
    with r.pipeline(transaction=False) as pipe:
        for call_id in ids:
            pipe.hset(keys.call("sandbox", call_id), mapping={"state": "answered", "attempt": "1"})
        pipe.execute()
    return ids


def settle(port: int, timeout_s: float = 30.0) -> None:
    """Wait until the streamer has closed every stream of the previous run."""
    import requests

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json()["streams"] == 0:
                break
        except (requests.RequestException, ValueError, KeyError):
            pass
        time.sleep(0.2)
    time.sleep(1.0)


def relay_added(rel: dict[str, Any], q: str) -> float | None:
    """Latency the relay adds at percentile ``q`` ("p50", "p99"): relayed minus direct."""
    relayed, direct = rel[f"relay_{q}_ms"], rel[f"direct_{q}_ms"]
    return None if relayed is None or direct is None else round(relayed - direct, 2)


def run(ctx: Ctx) -> Result:
    res = Result("streamer")
    r = ctx.fresh_redis()
    register(r)
    levels = [40] if ctx.quick else list(LEVELS)
    seconds = 3.0 if ctx.quick else 8.0
    relay_n, relay_s = (10, 2.0) if ctx.quick else (50, 6.0)
    hport, sport = free_port(), free_port()
    hello = Proc(
        "hello",
        [sys.executable, "-m", "benchmarks.hello", str(hport)],
        bench_env(),
        ctx.tmp / "streamer",
    )
    streamer = Proc(
        "streamer",
        dialer_cmd(
            "streamer", "--host", "127.0.0.1", "--port", str(sport), "--processes", str(PROCESSES)
        ),
        # metrics port 0: each process gets a free one (no clash with anything running)
        bench_env(REDIS_URL=ctx.redis_url, STREAMER_PORT=str(sport), STREAMER_METRICS_PORT="0"),
        ctx.tmp / "streamer",
    )
    runs: list[dict[str, Any]] = []
    frames: list[tuple[str, float]] | str = "not profiled"
    try:
        wait_http(f"http://127.0.0.1:{hport}/healthz", proc=hello)
        wait_http(f"http://127.0.0.1:{sport}/healthz", proc=streamer)
        kids = wait_children(streamer.pid, PROCESSES)
        names = [f"streamer{i}" for i in range(len(kids))]
        echo_calls = campaign_calls(r, max(levels), "echo")
        relay_calls = campaign_calls(r, relay_n, f"relay:ws://127.0.0.1:{hport}/ws")
        asyncio.run(drive(fresh_urls(r, sport, echo_calls[:5]), 1.0, 100))  # warm up
        sustained = None
        for n in levels:
            settle(sport)
            meter = CpuMeter(dict(zip(names, kids, strict=True)))
            stats, lag = drive_spread(fresh_urls(r, sport, echo_calls[:n]), seconds, 100, meter)
            s = metered_summary(stats, lag, n, meter, names)
            ctx.log(f"  streamer ours {n}: {s}")
            runs.append({"system": f"ours (--processes {PROCESSES})", **s})
            if within_budget(s):
                sustained = s
                break
        settle(sport)
        top = sustained or runs[-1]
        n = top["streams"]
        if not ctx.quick:  # the profile: one streamer process under the same load
            settle(sport)
            out = ctx.tmp / "streamer" / "py-spy.raw"
            urls = fresh_urls(r, sport, echo_calls[:n])

            async def profiled() -> list[tuple[str, float]] | str:
                opened = threading.Event()
                load = asyncio.create_task(
                    asyncio.to_thread(drive_spread, urls, seconds + 1, 100, None, opened)
                )
                await asyncio.to_thread(opened.wait, 180)  # past the ramp: the steady state
                got = await asyncio.to_thread(profile, kids[0], seconds, out)
                await load
                return got

            frames = asyncio.run(profiled())
            ctx.log(f"  streamer profile: {frames}")
            settle(sport)
        meter = CpuMeter({"echo": hello.pid})
        bstats, blag = drive_spread(
            [(f"ws://127.0.0.1:{hport}/ws", c) for c in echo_calls[:n]], seconds, 100, meter
        )
        base = metered_summary(bstats, blag, n, meter, ["echo"])
        ctx.log(f"  streamer bare echo {n}: {base}")
        runs.append({"system": "bare echo", **base})
        # relay added latency
        direct, _ = asyncio.run(
            drive([(f"ws://127.0.0.1:{hport}/ws", c) for c in relay_calls], relay_s, 200, rtt=True)
        )
        relayed, _ = asyncio.run(drive(fresh_urls(r, sport, relay_calls), relay_s, 200, rtt=True))
        rel = {
            "streams": relay_n,
            "direct_p50_ms": r2(pct(direct.rtt_ms, 50)),
            "direct_p99_ms": r2(pct(direct.rtt_ms, 99)),
            "relay_p50_ms": r2(pct(relayed.rtt_ms, 50)),
            "relay_p99_ms": r2(pct(relayed.rtt_ms, 99)),
            "samples": len(relayed.rtt_ms),
            "relay_failed": relayed.failed,
        }
        ctx.log(f"  relay: {rel}")
        if not streamer.alive():
            raise RuntimeError(f"streamer died: {streamer.tail()}")
    finally:
        streamer.stop()
        hello.stop()
    return report(res, runs, sustained, top, base, rel, frames)


def bottleneck(runs: list[dict[str, Any]]) -> str:
    """Why a target was missed, from the runs (and what the profile in the notes shows)."""
    ours = [x for x in runs if x["system"] != "bare echo"]
    by_n = ", ".join(
        f"{x['streams']}: {x['cpu_per_stream_pct']} % CPU, jitter p99 {x['jitter_p99_ms']} ms, "
        f"client lag p99 {x['client_loop_lag_p99_ms']} ms, shares {x['cpu_share']}"
        for x in ours
    )
    return (
        f"by streams: {by_n}. CPU per stream falls as streams are added (the pacing "
        "task's wake-ups and the loops' fixed work are shared by more streams). The "
        f"client runs in {CLIENT_PROCESSES} processes; the shares say whether a "
        "streamer process was near a core or the 2 CPUs were shared with other work "
        "(then the client's lag p99 is tens of ms and the jitter tail is the machine's). "
        "Top frames (notes; benchmarks/profiles.md): the kernel's send/recv per frame "
        "and aiohttp's per-frame receive (a task wake-up per inbound frame), which the "
        "bare echo pays as well, then orjson (uvloop: no gain past the noise). What "
        "would fix the rest: frames read in the protocol callback (no task wake-up "
        "per frame), and a host of its own for the client"
    )


def fresh_urls(r: Any, port: int, call_ids: list[str]) -> list[tuple[str, str]]:
    """Stream URLs for a pass over ``call_ids``: a stream token opens one stream per
    attempt (streamer.store.claim_stream), so the last pass's claims are deleted."""
    with r.pipeline(transaction=False) as pipe:
        for call_id in call_ids:
            pipe.delete(keys.stream_claim("sandbox", call_id, 1))
        pipe.execute()
    return stream_urls(port, call_ids)


def report(
    res: Result,
    runs: list[dict[str, Any]],
    sustained: dict[str, Any] | None,
    top: dict[str, Any],
    base: dict[str, Any],
    rel: dict[str, Any],
    frames: list[tuple[str, float]] | str,
) -> Result:
    n = top["streams"]
    target_n, target_cpu = 500, 0.12
    tried = ", ".join(str(x["streams"]) for x in runs if x["system"] != "bare echo")
    res.rows.append(
        Row(
            "streamer",
            f"concurrent echo streams within the jitter budget, --processes {PROCESSES} "
            f"(p99 ≤ {JITTER_BUDGET_MS:g} ms, none failed)",
            float(sustained["streams"]) if sustained else None,
            None,
            "streams",
            f"≥ {target_n} streams",
            bool(sustained and sustained["streams"] >= target_n),
            note=f"tried {tried}",
        )
    )
    res.rows.append(
        Row(
            "streamer",
            f"pacing jitter p99 at {n} streams",
            top["jitter_p99_ms"],
            base["jitter_p99_ms"],
            "ms",
            f"≤ {JITTER_BUDGET_MS:g} ms",
            top["jitter_p99_ms"] is not None and top["jitter_p99_ms"] <= JITTER_BUDGET_MS,
            ratio(top["jitter_p99_ms"], base["jitter_p99_ms"], lower_is_better=True),
            note=f"client loop lag p99 {top['client_loop_lag_p99_ms']} ms",
        )
    )
    cpu = top["cpu_per_stream_pct"]
    res.rows.append(
        Row(
            "streamer",
            f"CPU per stream at {n} streams (% of a core, both processes)",
            cpu,
            base["cpu_per_stream_pct"],
            "%",
            f"≤ {target_cpu} %",
            cpu is not None and cpu <= target_cpu,
            ratio(cpu, base["cpu_per_stream_pct"], lower_is_better=True),
            note=f"{top['served_share']:.0%} of the nominal stream-seconds served; "
            f"per nominal stream {top['cpu_per_nominal_stream_pct']} %",
        )
    )
    res.rows.append(
        Row(
            "streamer",
            f"first audio p50 at {n} streams (start → first bot media)",
            top["first_audio_p50_ms"],
            None,
            "ms",
            note="the echo needs 200 ms of caller audio for its first legal chunk",
        )
    )
    added99, added50 = relay_added(rel, "p99"), relay_added(rel, "p50")
    res.rows.append(
        Row(
            "streamer",
            f"relay added latency p99 ({rel['streams']} streams; p50 +{added50} ms)",
            added99,
            None,
            "ms",
            "≤ 5 ms",
            added99 is not None and added99 <= 5,
            note=f"round trip {rel['relay_p99_ms']} ms via relay vs "
            f"{rel['direct_p99_ms']} ms direct",
        )
    )
    after = (
        "; ".join(f"{f} {share:.1%}" for f, share in frames) if isinstance(frames, list) else frames
    )
    res.details.update(
        {
            "runs": runs,
            "relay": rel,
            "profile_top_self": frames,
            "notes": f"client and streamer share the machine's cores; 1,000 streams = "
            f"10k frames/s in and 5k out. Profile {BEFORE}. After (one of the "
            f"{PROCESSES} processes, {n} streams, py-spy self time): {after}.",
        }
    )
    if not sustained or sustained["streams"] < target_n or cpu is None or cpu > target_cpu:
        res.bottleneck = bottleneck(runs)
    return res
