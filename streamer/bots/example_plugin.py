"""Example third-party bot: beeps, then hangs up after any key press.

How to write a plugin bot
-------------------------
1. Subclass ``streamer.bots.Bot`` and override the callbacks you need:
   ``on_start(ctx)`` (call ``super().on_start(ctx)`` to keep ``self.ctx``),
   ``on_audio(pcm)``, ``on_dtmf(digit)``, ``on_mark(name)``, ``on_stop(reason)``.
   Audio in and out is PCM16 mono at ``ctx.sample_rate`` (8 kHz); the
   streamer resamples to the call's rate and chunks/paces it for Exotel.
2. Act through ``ctx``: ``play(pcm)``, ``clear()``, ``await mark()``,
   ``hangup()``, ``await record_answer(qid, value)``, ``spawn(coro)``; read
   ``ctx.call_id`` and ``ctx.vars`` (the contact's variables).
3. Return from callbacks quickly; put waiting work in ``ctx.spawn(...)``.
4. Register it in your package's ``pyproject.toml``::

       [project.entry-points."dialer.bots"]
       beep = "streamer.bots.example_plugin:BeepBot"

   and give campaigns the spec ``plugin:beep``. The constructor receives the
   campaign's ``bot_config`` dict and the plugin name.
"""

from __future__ import annotations

import numpy as np

from streamer.bots.base import Bot, BotContext


def beep(rate: int, freq_hz: float = 880.0, seconds: float = 0.4) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * freq_hz * t) * 8000).astype("<i2").tobytes()


class BeepBot(Bot):
    async def on_start(self, ctx: BotContext) -> None:
        await super().on_start(ctx)
        ctx.play(beep(ctx.sample_rate))

    async def on_dtmf(self, digit: str) -> None:
        if self.ctx is not None:
            self.ctx.hangup()
