"""The campaign's answering-machine policy: parsing and checking it (pure, no I/O).

``machine_detection`` is one of:

* ``off`` (default): no detection; the bot starts at once, as before;
* ``hangup``: a machine's call is ended at the decision; its outcome is
  ``machine``, retried like busy/no-answer by the campaign's retry rules;
* ``message`` (CLI: ``message:FILE.wav``): after the greeting's end or its
  beep, the message is played and the call hung up; outcome ``voicemail``
  (``machine`` if the message could not be played, so it is retried);
* ``continue``: the bot is told (``on_answered_by``), nothing else changes.

The message travels as content (``machine_message_wav``, base64 WAV) and is
stored with the campaign, never as a path on the server. Detection itself is
``streamer.amd``; acting on it is ``streamer.machine``.
"""

from __future__ import annotations

import base64
import binascii
import io
import wave
from dataclasses import dataclass

from dialer.core.errors import ValidationError

MODES = ("off", "hangup", "message", "continue")
MAX_MESSAGE_BYTES = 2 * 1024 * 1024  # a WAV of ~60 s at 16 kHz
MAX_MESSAGE_S = 120.0
FIELD = "machine_detection"


@dataclass(frozen=True)
class MachinePolicy:
    mode: str = "off"
    message_name: str = ""  # the WAV's file name, for display only

    @property
    def detects(self) -> bool:
        return self.mode != "off"


def parse_policy(value: str) -> MachinePolicy:
    """``"message:hello.wav"`` -> MachinePolicy("message", "hello.wav"); else ValidationError."""
    text = (value or "off").strip()
    mode, sep, arg = text.partition(":")
    if mode == "message":
        return MachinePolicy("message", arg.strip().rsplit("/", 1)[-1] if sep else "")
    if mode in MODES and not sep:
        return MachinePolicy(mode)
    raise ValidationError(
        f"{FIELD} {value!r}: use off, hangup, continue or message:FILE.wav", field=FIELD
    )


def check_message(b64: str | None, policy: MachinePolicy) -> bytes | None:
    """The message WAV's bytes, checked; None unless the policy plays one."""
    if policy.mode != "message":
        if b64:
            raise ValidationError(
                "machine_message_wav is only for machine_detection 'message'",
                field="machine_message_wav",
            )
        return None
    if not b64:
        raise ValidationError(
            "machine_detection 'message' needs the WAV as machine_message_wav (base64)",
            field="machine_message_wav",
        )
    if len(b64) > MAX_MESSAGE_BYTES * 4 // 3 + 4:
        raise ValidationError(
            f"machine_message_wav is over {MAX_MESSAGE_BYTES // 1024} KB",
            field="machine_message_wav",
        )
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(
            "machine_message_wav is not valid base64", field="machine_message_wav"
        ) from None
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            seconds = w.getnframes() / max(1, w.getframerate())
            if w.getnchannels() < 1 or w.getsampwidth() not in (1, 2, 3, 4):
                raise wave.Error("unsupported sample format")
    except (wave.Error, EOFError) as exc:
        raise ValidationError(
            f"machine_message_wav is not a PCM WAV file: {exc}", field="machine_message_wav"
        ) from None
    if not 0 < seconds <= MAX_MESSAGE_S:
        raise ValidationError(
            f"machine message must last 0-{MAX_MESSAGE_S:.0f} s, this one {seconds:.1f} s",
            field="machine_message_wav",
        )
    return data
