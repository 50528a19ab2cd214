"""Echo bot: plays back what it hears. A loopback test of the audio path."""

from __future__ import annotations

from streamer.bots.base import Bot


class EchoBot(Bot):
    async def on_audio(self, pcm: bytes) -> None:
        if self.ctx is not None:
            self.ctx.play(pcm)
