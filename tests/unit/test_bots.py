"""Bots driven through a fake controller: pure, no socket, no Redis."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from dialer.core.errors import ValidationError
from streamer.bots import BotSpec, make_bot, parse_bot_spec
from streamer.bots import prompts as prompts_mod
from streamer.bots.echo import EchoBot
from streamer.bots.example_plugin import BeepBot
from streamer.bots.prompts import decode_wav
from streamer.bots.survey import SurveyBot, load_survey
from tests.support.audio import write_wav
from tests.support.bots import FakeCtx, press
from tests.support.polling import until


@pytest.fixture
def survey_file(tmp_path: Path) -> Path:
    # Distinct lengths tell the prompts apart in ctx.events.
    for name, seconds in [("greet", 0.1), ("q1", 0.2), ("q2", 0.3), ("bye", 0.4)]:
        write_wav(tmp_path / f"{name}.wav", seconds)
    doc = {
        "name": "csat",
        "greeting": "greet.wav",
        "questions": [
            {"id": "q1", "prompt": "q1.wav", "keys": ["1", "2"]},
            {"id": "q2", "prompt": str(tmp_path / "q2.wav"), "keys": ["1", "2", "3"]},
        ],
        "goodbye": "bye.wav",
        "answer_timeout_s": 8,
        "max_reprompts": 1,
    }
    path = tmp_path / "survey.json"
    path.write_text(json.dumps(doc))
    return path


GREET, Q1, Q2, BYE = "play:1600", "play:3200", "play:4800", "play:6400"


async def start_survey(path: Path, ctx: FakeCtx, timeout_s: float = 8.0) -> SurveyBot:
    bot = make_bot(f"survey:{path}", None)
    assert isinstance(bot, SurveyBot)
    bot.survey = dataclasses.replace(bot.survey, answer_timeout_s=timeout_s)
    await bot.on_start(ctx)
    return bot


async def test_survey_records_each_answer_as_it_arrives(survey_file: Path) -> None:
    ctx = FakeCtx()
    bot = await start_survey(survey_file, ctx)
    await until(lambda: ctx.events[-1:] == [Q1])
    await press(bot, "2")  # after the prompt was heard: nothing to cut short
    assert ctx.answers == {"q1": "2"}  # written before the next prompt is even queued
    await until(lambda: ctx.events[-1:] == [Q2])
    await press(bot, "3")
    await until(lambda: ctx.hung_up)
    assert ctx.answers == {"q1": "2", "q2": "3"}
    assert ctx.events == [GREET, Q1, "answer:q1=2", Q2, "answer:q2=3", BYE, "hangup"]


async def test_a_key_right_behind_the_greetings_echo_answers_the_first_question(
    survey_file: Path,
) -> None:
    """The session resolves the greeting's mark as it reads the echo and hands over the
    key read after it a loop turn later, before the script has moved on to ask q1 (it
    was dropped as a stale key when the streamer lagged)."""
    ctx = FakeCtx(auto_marks=False)
    bot = await start_survey(survey_file, ctx)
    await until(lambda: ctx.events[-1:] == [GREET])
    ctx.pending[-1].set_result(True)  # the greeting's echo...
    await press(bot, "2")  # ...and the key right behind it
    assert ctx.answers == {"q1": "2"}
    await until(lambda: ctx.events[-1:] == [Q1])  # q1 is still asked...
    ctx.pending[-1].set_result(True)
    await press(bot, "3")  # ...and a key after it answers q2, not yet asked
    await until(lambda: ctx.events[-1:] == [Q2])  # no waiting for a key, no re-prompt
    assert ctx.answers == {"q1": "2", "q2": "3"}
    assert ctx.events == [GREET, "answer:q1=2", Q1, "answer:q2=3", Q2]
    ctx.tasks[0].cancel()


async def test_survey_reprompts_on_an_invalid_key(survey_file: Path) -> None:
    ctx = FakeCtx()
    bot = await start_survey(survey_file, ctx)
    await until(lambda: ctx.events[-1:] == [Q1])
    await press(bot, "9")
    await until(lambda: ctx.events.count(Q1) == 2)
    await press(bot, "1")
    await until(lambda: ctx.events[-1:] == [Q2])
    assert ctx.answers == {"q1": "1"}
    ctx.tasks[0].cancel()


async def test_survey_reprompts_on_silence_then_moves_on(survey_file: Path) -> None:
    ctx = FakeCtx()
    await start_survey(survey_file, ctx, timeout_s=0.05)
    await until(lambda: ctx.hung_up)
    # max_reprompts=1: each question asked twice, nothing recorded, still says goodbye
    assert ctx.events == [GREET, Q1, Q1, Q2, Q2, BYE, "hangup"]
    assert ctx.answers == {}


async def test_hangup_mid_survey_keeps_answers_so_far(survey_file: Path) -> None:
    ctx = FakeCtx()
    bot = await start_survey(survey_file, ctx)
    await until(lambda: ctx.events[-1:] == [Q1])
    await press(bot, "1")
    await until(lambda: ctx.events[-1:] == [Q2])
    ctx.tasks[0].cancel()  # the session cancels the bot's tasks when the caller hangs up
    await bot.on_stop("callended")
    assert ctx.answers == {"q1": "1"}


async def test_key_during_a_prompt_cuts_it_short_and_counts(survey_file: Path) -> None:
    ctx = FakeCtx(auto_marks=False)
    bot = await start_survey(survey_file, ctx)
    await until(lambda: ctx.events[-1:] == [GREET])
    ctx.pending[-1].set_result(True)  # greeting heard
    await until(lambda: ctx.events[-1:] == [Q1])
    await bot.on_dtmf("2")  # while q1 is still playing
    assert ctx.events[-2:] == ["answer:q1=2", "clear"]
    await until(lambda: ctx.events[-1:] == [Q2])
    ctx.tasks[0].cancel()


async def test_answer_timeout_starts_after_the_prompt_is_heard(survey_file: Path) -> None:
    ctx = FakeCtx(auto_marks=False)
    await start_survey(survey_file, ctx, timeout_s=0.05)
    await until(lambda: ctx.events[-1:] == [GREET])
    ctx.pending[-1].set_result(True)
    await until(lambda: ctx.events[-1:] == [Q1])
    # The scenario is time passing while the prompt plays (four answer timeouts): no
    # event can stand in for "the timeout did not start", so this sleep stays.
    await asyncio.sleep(0.2)
    assert ctx.events.count(Q1) == 1
    ctx.pending[-1].set_result(True)
    await until(lambda: ctx.events.count(Q1) == 2)
    ctx.tasks[0].cancel()


async def test_text_prompts_are_spoken_by_the_bundled_engine(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"questions": [{"id": "q", "prompt": "Press one.", "keys": ["1"]}]}))
    ctx = FakeCtx()
    bot = await start_survey(path, ctx)
    await until(lambda: len(ctx.played) == 1)
    assert len(ctx.played[0]) > 8000  # > 0.5 s of speech at 8 kHz
    await bot.on_dtmf("1")
    await until(lambda: ctx.hung_up)
    assert ctx.answers == {"q": "1"}


def bad_survey(tmp_path: Path, doc: Any) -> Path:
    path = tmp_path / "bad.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


Q = {"id": "q1", "prompt": "Hello", "keys": ["1"]}


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ("{not json", "not valid JSON"),
        ([], "JSON object"),
        ({"questions": []}, "questions"),
        ({"questions": [{"prompt": "x", "keys": ["1"]}]}, "missing question 'id'"),
        ({"questions": [{"id": "q", "prompt": "x"}]}, "'keys'"),
        ({"questions": [{"id": "q", "prompt": "x", "keys": ["x"]}]}, "'keys'"),
        ({"questions": [Q, Q]}, "duplicate question id"),
        ({"questions": [{"id": "q", "prompt": "nope.wav", "keys": ["1"]}]}, "WAV file not found"),
        ({"questions": [{"id": "q", "prompt": "", "keys": ["1"]}]}, "non-empty"),
        ({"questions": [Q], "answer_timeout_s": "soon"}, "answer_timeout_s"),
        ({"questions": [Q], "max_reprompts": 99}, "max_reprompts"),
        ({"questions": [Q], "max_reprompts": 1.5}, "max_reprompts must be a whole number"),
        ({"questions": [Q], "answer_timout_s": 5}, "unknown key 'answer_timout_s'"),
        ({"questions": [Q | {"key": ["1"]}]}, r"questions\[0\]: unknown key 'key'"),
        ({"questions": [Q], "name": 7}, "name must be a string"),
        ({"questions": [{"id": "q", "prompt": "x" * 2001, "keys": ["1"]}]}, "longer than"),
    ],
)
@pytest.mark.parametrize("engine", ["present", "missing"])
def test_load_survey_names_the_problem(
    tmp_path: Path, doc: Any, needle: str, engine: str, monkeypatch: Any
) -> None:
    # The document's own error comes first, whether or not text can be spoken here.
    if engine == "missing":
        monkeypatch.setattr(prompts_mod, "engine_problem", lambda: "no engine")
    with pytest.raises(ValidationError, match=needle):
        load_survey(bad_survey(tmp_path, doc))


def test_unreadable_wav_is_refused(tmp_path: Path) -> None:
    (tmp_path / "junk.wav").write_bytes(b"not a wav at all")
    doc = {"questions": [{"id": "q", "prompt": "junk.wav", "keys": ["1"]}]}
    with pytest.raises(ValidationError, match="unreadable WAV"):
        load_survey(bad_survey(tmp_path, doc))


def test_load_survey_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not found"):
        load_survey(tmp_path / "absent.json")


def test_text_prompt_without_an_engine_is_refused(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(prompts_mod, "engine_problem", lambda: "libespeak-ng missing")
    with pytest.raises(ValidationError, match="text prompts cannot be spoken: libespeak-ng"):
        load_survey(bad_survey(tmp_path, {"questions": [Q]}))


def test_wav_only_survey_needs_no_engine(survey_file: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(prompts_mod, "engine_problem", lambda: "libespeak-ng missing")
    assert load_survey(survey_file).questions


def test_survey_from_campaign_config_resolves_wavs_in_base_dir(survey_file: Path) -> None:
    config = json.loads(survey_file.read_text()) | {"base_dir": str(survey_file.parent)}
    bot = make_bot("survey:survey.json", config)
    assert isinstance(bot, SurveyBot)
    assert bot.survey.greeting is not None
    assert bot.survey.greeting.path == survey_file.parent / "greet.wav"


def test_decode_wav_mixes_and_resamples(tmp_path: Path) -> None:
    pcm = decode_wav(write_wav(tmp_path / "s.wav", 0.5, rate=44100, channels=2, width=1), 8000)
    assert abs(len(pcm) - 8000) <= 4  # 0.5 s * 8000 Hz * 2 bytes
    with pytest.raises(ValidationError):
        decode_wav(b"RIFF junk", 8000)


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("echo", BotSpec("echo")),
        ("survey:a/b.json", BotSpec("survey", "a/b.json")),
        ("relay:wss://bot.example/ws", BotSpec("relay", "wss://bot.example/ws")),
        ("plugin:beep", BotSpec("plugin", "beep")),
    ],
)
def test_parse_bot_spec(spec: str, parsed: BotSpec) -> None:
    assert parse_bot_spec(spec) == parsed


@pytest.mark.parametrize(
    "spec", ["", "echo:x", "survey:", "relay:http://x", "relay:ws://", "tts", "plugin:"]
)
def test_unknown_bot_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValidationError, match="bot spec"):
        parse_bot_spec(spec)


def test_make_bot_plugins() -> None:
    assert isinstance(make_bot("plugin:beep", None), BeepBot)
    with pytest.raises(ValidationError, match="no bot plugin"):
        make_bot("plugin:nope", None)
    with pytest.raises(ValidationError, match="relay"):
        make_bot("relay:ws://x/y", None)


async def test_echo_and_beep_bots() -> None:
    ctx = FakeCtx()
    echo = EchoBot()
    await echo.on_start(ctx)
    await echo.on_audio(b"\x01\x02" * 800)
    assert ctx.played == [b"\x01\x02" * 800]
    ctx = FakeCtx()
    beep = BeepBot()
    await beep.on_start(ctx)
    assert len(ctx.played) == 1 and not ctx.hung_up
    await beep.on_dtmf("5")
    assert ctx.hung_up
