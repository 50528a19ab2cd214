"""The session's side of machine detection (streamer.machine) and the survey's wait, no socket."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest

from dialer.sandbox.voices import make_clip, render
from streamer.bots.survey import SurveyBot
from streamer.machine import MachineWatch
from streamer.store import CallInfo
from tests.support.audio import wav, write_wav
from tests.support.bots import FakeCtx
from tests.support.polling import until


class FakeStore:
    def __init__(self, message: bytes | None = None) -> None:
        self.verdicts: list[dict[str, Any]] = []
        self.message = message

    async def record_detection(self, call: CallInfo, verdict: dict[str, Any]) -> None:
        self.verdicts.append(dict(verdict))

    async def machine_message(self, call: CallInfo) -> bytes | None:
        return self.message


def call(mode: str) -> CallInfo:
    return CallInfo("c1234-0", "acct", "c1234", 1, machine_detection=mode)


def audio(label: str, kind: str, seed: int = 5) -> bytes:
    clip = make_clip(random.Random(seed), label, kind, "clean")
    return render(clip, 8000).astype("<i2").tobytes()


async def play_through(watch: MachineWatch, pcm: bytes, ctx: FakeCtx) -> None:
    for pos in range(0, len(pcm), 1600):
        watch.feed(pcm[pos : pos + 1600])
        await asyncio.sleep(0)  # let spawned tasks run, as the session's loop would
        if ctx.hung_up:
            return


async def test_hangup_records_the_verdict_then_hangs_up_on_a_machine() -> None:
    ctx, store, told = FakeCtx(), FakeStore(), []
    watch = MachineWatch(ctx, call("hangup"), store, 8000, told.append)  # type: ignore[arg-type]
    await play_through(watch, audio("machine", "voicemail"), ctx)
    await until(lambda: ctx.hung_up)
    assert told == ["machine"]
    (verdict,) = store.verdicts
    assert verdict["answered_by"] == "machine" and verdict["outcome"] == "machine"
    assert verdict["detection_ms"] > 0


async def test_a_person_is_told_and_never_hung_up_on() -> None:
    ctx, store, told = FakeCtx(), FakeStore(), []
    watch = MachineWatch(ctx, call("hangup"), store, 8000, told.append)  # type: ignore[arg-type]
    await play_through(watch, audio("human", "hello"), ctx)
    await until(lambda: bool(told))
    assert told == ["human"] and not ctx.hung_up
    assert "outcome" not in store.verdicts[0]


async def test_message_plays_once_after_the_beep_then_voicemail() -> None:
    msg = wav(0.4)
    ctx, store, told = FakeCtx(), FakeStore(msg), []
    watch = MachineWatch(ctx, call("message"), store, 8000, told.append)  # type: ignore[arg-type]
    await play_through(watch, audio("machine", "voicemail", seed=8), ctx)
    await until(lambda: ctx.hung_up)
    assert len(ctx.played) == 1  # exactly one message, whatever raced
    assert [v.get("outcome") for v in store.verdicts] == ["machine", "voicemail"]
    assert watch.detector.beep_end_s is not None


async def test_continue_only_tells() -> None:
    ctx, store, told = FakeCtx(), FakeStore(), []
    watch = MachineWatch(ctx, call("continue"), store, 8000, told.append)  # type: ignore[arg-type]
    await play_through(watch, audio("machine", "voicemail"), ctx)
    await until(lambda: bool(store.verdicts))
    assert told == ["machine"] and not ctx.hung_up and ctx.played == []
    assert "outcome" not in store.verdicts[0]


def survey_bot(tmp_path: Path) -> SurveyBot:
    write_wav(tmp_path / "q.wav", 0.1)
    doc = {"questions": [{"id": "q1", "prompt": "q.wav", "keys": ["1"]}], "answer_timeout_s": 0.5}
    (tmp_path / "s.json").write_text(json.dumps(doc))
    return SurveyBot({}, str(tmp_path / "s.json"))


@pytest.mark.parametrize(("mode", "said", "speaks"), [
    ("hangup", "human", True),
    ("hangup", "machine", False),
    ("message", "machine", False),
    ("continue", "machine", True),
    ("hangup", "unknown", True),
])  # fmt: skip
async def test_the_survey_waits_for_the_decision(
    tmp_path: Path, mode: str, said: str, speaks: bool
) -> None:
    bot, ctx = survey_bot(tmp_path), FakeCtx()
    ctx.machine_detection = mode  # type: ignore[attr-defined]
    await bot.on_start(ctx)  # type: ignore[arg-type]
    # One loop turn (not a wait for time): the script's first step, which renders
    # the WAV greeting without awaiting and plays it unless it waits for the decision.
    await asyncio.sleep(0)
    assert not ctx.tasks[0].done() and ctx.played == []  # parked: nothing before the decision
    await bot.on_answered_by(said)
    if speaks:
        await until(lambda: bool(ctx.played))
    else:
        await until(lambda: ctx.tasks[0].done())  # the script gave up on the machine
        assert ctx.played == []
    for task in ctx.tasks:
        task.cancel()


async def test_a_late_beep_stops_the_survey_it_had_started(tmp_path: Path) -> None:
    bot, ctx = survey_bot(tmp_path), FakeCtx(auto_marks=False)
    ctx.machine_detection = "hangup"  # type: ignore[attr-defined]
    await bot.on_start(ctx)  # type: ignore[arg-type]
    await bot.on_answered_by("human")
    await until(lambda: bool(ctx.played))
    await bot.on_answered_by("machine")  # "Hello." and then the beep
    await until(lambda: all(t.done() for t in ctx.tasks))
    assert "clear" in ctx.events
    assert len(ctx.played) == 1 and not ctx.hung_up  # no more prompts; the session acts


async def test_a_one_word_greeting_then_a_beep_is_revised_to_machine() -> None:
    from dialer.sandbox.voices import Clip, Segment

    clip = Clip(
        "machine", "one-word", "clean", 4.0,
        (Segment("speech", 0.3, 0.5, seed=2), Segment("beep", 1.6, 0.4, freq_hz=900.0)),
        noise_dbfs=-70.0,
    )  # fmt: skip
    ctx, store, told = FakeCtx(), FakeStore(), []
    watch = MachineWatch(ctx, call("hangup"), store, 8000, told.append)  # type: ignore[arg-type]
    await play_through(watch, render(clip, 8000).astype("<i2").tobytes(), ctx)
    await until(lambda: ctx.hung_up)
    assert told == ["human", "machine"]
    assert [v["answered_by"] for v in store.verdicts] == ["human", "machine"]
    assert store.verdicts[-1]["outcome"] == "machine"
