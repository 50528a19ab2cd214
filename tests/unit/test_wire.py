"""``wire.text_frames``: several server-side websocket text frames in one buffer."""

from __future__ import annotations

import struct

import pytest

from streamer.wire import text_frames


def split_frames(buf: bytes) -> list[tuple[int, bytes]]:
    """(first header byte, payload) of each frame: RFC 6455 §5.2, unmasked."""
    out, pos = [], 0
    while pos < len(buf):
        first, second = buf[pos], buf[pos + 1]
        assert not second & 0x80, "a server never masks"
        n, pos = second & 0x7F, pos + 2
        if n == 126:
            (n,), pos = struct.unpack_from("!H", buf, pos), pos + 2
        elif n == 127:
            (n,), pos = struct.unpack_from("!Q", buf, pos), pos + 8
        out.append((first, buf[pos : pos + n]))
        pos += n
    return out


@pytest.mark.parametrize("sizes", [[0], [125], [126, 65535], [65536], [17, 4300, 70_000, 3]])
def test_each_payload_is_one_final_text_frame_in_order(sizes: list[int]) -> None:
    payloads = [bytes([65 + i % 26]) * n for i, n in enumerate(sizes)]
    frames = split_frames(text_frames(payloads))
    assert [p for _, p in frames] == payloads
    assert all(first == 0x81 for first, _ in frames)  # FIN, text, no RSV bits


def test_nothing_due_is_nothing_written() -> None:
    assert text_frames([]) == b""
