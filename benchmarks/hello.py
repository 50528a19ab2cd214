"""Baseline servers in one process: an aiohttp hello-world and a bare websocket echo.

``python -m benchmarks.hello PORT``. ``POST /exotel/status/{call_id}`` answers
``{"ok": true}`` without reading anything (the receiver's baseline);
``GET /ws`` echoes every AgentStream media frame back as it came (the
streamer's baseline, and the customer bot the relay benchmark talks to).
"""

from __future__ import annotations

import sys

from aiohttp import WSMsgType, web


async def hello(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=4 * 1024 * 1024)
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == WSMsgType.TEXT and msg.data.startswith('{"event":"media"'):
            await ws.send_str(msg.data)
    return ws


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/exotel/status/{call_id}", hello)
    app.router.add_get("/ws", echo)
    app.router.add_get("/healthz", healthz)
    return app


if __name__ == "__main__":
    web.run_app(create_app(), host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
