"""AgentStream codec: golden frames, both spellings, round trips, malformed input."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from dialer.core.errors import ProtocolError
from streamer import protocol as p

FIXTURES = Path(__file__).parent.parent / "fixtures" / "agentstream"
PCM640 = bytes(range(256)) * 2 + bytes(128)


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


INBOUND = {
    "connected.json": p.Connected(),
    "start.json": p.Start(
        stream_sid="MZ0001",
        call_sid="CA0001",
        account_sid="AC0001",
        from_="+919876543210",
        to="+918012345678",
        custom_parameters={"campaign": "c42", "attempt": "1"},
        sample_rate=8000,
        encoding="audio/x-raw",
    ),
    "start_camel.json": p.Start(
        stream_sid="MZ0002",
        call_sid="CA0002",
        account_sid="AC0002",
        from_="+919876543210",
        to="+918012345678",
        custom_parameters={"k": "v"},
        sample_rate=16000,
        encoding="raw",
    ),
    "start_toplevel.json": p.Start(
        stream_sid="MZ0003", call_sid="CA0003", account_sid="AC0003", from_="+1", to="+2"
    ),
    "media.json": p.Media(sequence=3, chunk=2, timestamp=200, payload=PCM640),
    "media_numbers.json": p.Media(sequence=4, chunk=3, timestamp=300, payload=b"\x01\x00\xff\xff"),
    "dtmf.json": p.Dtmf("5", 100),
    "dtmf_camel.json": p.Dtmf("#", 250),
    "mark.json": p.Mark("t3"),
    "stop.json": p.Stop("callended", "CA0001"),
    "stop_camel.json": p.Stop("stopped", "CA0002"),
}

OUTBOUND = {
    "out_media.json": (p.OutMedia(PCM640), "stream_sid"),
    "out_media_camel.json": (p.OutMedia(PCM640), "streamSid"),
    "out_mark.json": (p.OutMark("t3"), "stream_sid"),
    "out_clear.json": (p.Clear(), "stream_sid"),
}


@pytest.mark.parametrize("name", sorted(INBOUND))
def test_golden_inbound_decodes(name: str) -> None:
    assert p.decode(fixture(name)) == INBOUND[name]


@pytest.mark.parametrize("name", sorted(INBOUND))
@pytest.mark.parametrize("spelling", p.SPELLINGS)
def test_inbound_round_trip(name: str, spelling: p.Spelling) -> None:
    msg = INBOUND[name]
    text = p.encode(msg, "MZX", spelling=spelling)
    expected = msg
    if isinstance(msg, p.Start):  # the frame's own sid is what encode writes
        expected = p.Start(**{**msg.__dict__, "stream_sid": "MZX"})
    assert p.decode(text) == expected
    if not isinstance(msg, p.Connected):
        assert p.sniff_spelling(text) == spelling


@pytest.mark.parametrize("name", sorted(OUTBOUND))
def test_golden_outbound_exact_json(name: str) -> None:
    msg, spelling = OUTBOUND[name]
    text = p.encode(msg, "MZ0001", spelling=spelling)  # type: ignore[arg-type]
    assert json.loads(text) == json.loads(fixture(name))
    assert p.decode_outbound(fixture(name)) == msg
    assert p.decode_outbound(text) == msg


def test_encode_is_compact_and_event_first() -> None:
    assert p.encode(p.Clear(), "MZ1") == '{"event":"clear","stream_sid":"MZ1"}'
    assert p.encode(p.OutMark("a"), "MZ1", spelling="streamSid") == (
        '{"event":"mark","mark":{"name":"a"},"streamSid":"MZ1"}'
    )


def test_start_without_media_format_leaves_rate_to_url() -> None:
    start = p.decode(fixture("start_toplevel.json"))
    assert isinstance(start, p.Start)
    assert start.sample_rate is None and start.encoding is None


def test_bytes_text_and_unknown_spelling() -> None:
    assert p.sniff_spelling('{"event":"connected"}') is None
    assert p.sniff_spelling(b'{"streamSid":"x"}') == "streamSid"
    with pytest.raises(ValueError):
        p.encode(p.Clear(), "x", spelling="sid")  # type: ignore[arg-type]


B64 = base64.b64encode(b"\x00\x00").decode()
MALFORMED = [
    "not json",
    "[1, 2]",
    '"just a string"',
    "{}",
    '{"event": 5}',
    '{"event": "bogus"}',
    '{"event": "media", "stream_sid": "MZ"}',
    '{"event": "media", "media": {"payload": 5}}',
    '{"event": "media", "media": {"payload": "@@@notbase64"}}',
    '{"event": "media", "media": {"payload": "AAA"}}',
    '{"event": "media", "media": {"chunk": "two", "payload": "' + B64 + '"}}',
    '{"event": "media", "sequence_number": true, "media": {"payload": "' + B64 + '"}}',
    '{"event": "media", "media": "payload"}',
    '{"event": "dtmf", "dtmf": {}}',
    '{"event": "dtmf", "dtmf": {"digit": ["5"]}}',
    '{"event": "mark", "mark": {}}',
    '{"event": "mark"}',
    '{"event": "start", "start": {"call_sid": "CA"}}',
    '{"event": "start", "stream_sid": "MZ", "start": {"media_format": {"sample_rate": "8k"}}}',
    '{"event": "start", "stream_sid": "MZ", "start": []}',
    '{"event": "stop", "stop": "now"}',
]


@pytest.mark.parametrize("raw", MALFORMED)
def test_malformed_inbound_raises_with_raw(raw: str) -> None:
    with pytest.raises(ProtocolError) as info:
        p.decode(raw)
    assert info.value.raw == raw


def test_binary_frame_is_refused_and_kept() -> None:
    with pytest.raises(ProtocolError) as info:
        p.decode(b"\x00\x01binary")
    assert info.value.raw == b"\x00\x01binary"


@pytest.mark.parametrize(
    "raw",
    ['{"event": "dtmf", "dtmf": {"digit": "1"}}', '{"event": "media", "media": {}}', "nope"],
)
def test_malformed_outbound_raises_with_raw(raw: str) -> None:
    with pytest.raises(ProtocolError) as info:
        p.decode_outbound(raw)
    assert info.value.raw == raw


def test_raw_is_bounded() -> None:
    raw = "x" * 10_000
    with pytest.raises(ProtocolError) as info:
        p.decode(raw)
    assert len(info.value.raw) == 2048


@pytest.mark.parametrize("spelling", p.SPELLINGS)
@pytest.mark.parametrize("sid", ["MZ0001", 'MZ"quoted\\', "MZ\u00e9"])
def test_media_frames_are_exactly_what_encode_writes(spelling: p.Spelling, sid: str) -> None:
    frames = p.MediaFrames(sid, spelling=spelling)
    expected = p.encode(p.OutMedia(PCM640), sid, spelling=spelling)
    assert frames.encode(PCM640).decode() == expected
    assert frames.encode(memoryview(PCM640)).decode() == expected
    assert frames.wrap(base64.b64encode(PCM640).decode()).decode() == expected


def test_decoded_media_keeps_its_base64_text_outside_equality() -> None:
    frame = p.decode(fixture("media.json"))
    assert isinstance(frame, p.Media)
    assert frame.b64 == json.loads(fixture("media.json"))["media"]["payload"]
    assert base64.b64decode(frame.b64) == frame.payload
    assert frame == p.Media(frame.sequence, frame.chunk, frame.timestamp, frame.payload)
    # Re-encoding a received frame reuses its text (the relay's respelling path).
    assert json.loads(p.encode(frame, "MZ1"))["media"]["payload"] == frame.b64


@pytest.mark.parametrize("payload", ["QQ=", "QQ==QQ==", "=QQ==", "QQ\u00e9=", "Q Q=="])
def test_payload_base64_is_strict(payload: str) -> None:
    raw = json.dumps({"event": "media", "media": {"payload": payload}})
    with pytest.raises(ProtocolError):
        p.decode(raw)
