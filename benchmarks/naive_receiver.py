"""The naive baseline's status-callback endpoint as a process of its own.

``python -m benchmarks.naive_receiver PORT`` (``NAIVE_BROKER_URL``: its Redis)
serves ``benchmarks.slots.make_sink``: every callback is parsed, a terminal
one DECRs the naive counter. The system benchmark runs it apart from the
benchmark's own process so that its CPU is metered like our receiver's.
"""

from __future__ import annotations

import sys

from aiohttp import web

from benchmarks import naive
from benchmarks.slots import make_sink


def main() -> None:
    app, _state = make_sink(naive.BROKER)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
