"""Echo bot: plays back what it hears. A loopback test of the audio path."""

from __future__ import annotations

from streamer.bots.base import Bot


class EchoBot(Bot):
    def hear(self, pcm: bytes) -> None:  # the fast path (bots/base.py)
        if self.ctx is not None:
            self.ctx.play(pcm)

    async def on_audio(self, pcm: bytes) -> None:
        self.hear(pcm)
