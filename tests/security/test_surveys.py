"""Surveys travel as content: the API never opens a path it is sent.

Before, ``survey:PATH`` through the REST API told whether any file on the
receiver's disk existed and was readable (and read it whole). Now a path is
refused with the same 400 whatever it names, unless the operator configured
``DIALER_SURVEY_DIR``, and then only names inside it are read. A survey sent
as content is size-capped, validated, stored in Redis with the campaign and
played by the streamer from there.
"""

from __future__ import annotations

import base64
import io
import json
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from dialer.core import surveys
from dialer.receiver.app import create_app
from dialer.store import keys
from streamer.bots import make_bot
from streamer.bots.prompts import render
from streamer.bots.survey import SurveyBot
from streamer.store import CallStore
from tests.support.receiver import Client
from tests.support.seed import ACCOUNT, setup_account
from tests.support.signing import AUTH, make_settings

CONTACTS = [{"to": "+919876500001"}]


def wav(seconds: float = 0.2, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x10\x00" * int(seconds * rate))
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def document(**extra: Any) -> dict[str, Any]:
    return {
        "name": "csat",
        "greeting": "hello.wav",
        "questions": [{"id": "q1", "prompt": "audio/q1.wav", "keys": ["1", "2"]}],
        **extra,
    }


def content(**prompts: bytes) -> dict[str, Any]:
    sent = prompts or {"hello.wav": wav(), "audio/q1.wav": wav(0.5)}
    return {"document": document(), "prompts": {k: b64(v) for k, v in sent.items()}}


async def submit(client: Client, **payload: Any) -> tuple[int, dict[str, Any]]:
    body = {"account": ACCOUNT, "contacts": CONTACTS, **payload}
    resp = await client.post("/v1/campaigns", json=body, headers=AUTH)
    return resp.status, await resp.json()


# ------------------------------------------------------------------ server paths


async def test_a_server_path_is_refused_alike_whether_the_file_exists_or_not(
    receiver: Client, r: redis.Redis, tmp_path: Path
) -> None:
    setup_account(r)
    real = tmp_path / "real.json"
    real.write_text(json.dumps(document()))
    answers = []
    for name in (str(real), "/etc/passwd", str(tmp_path / "missing.json"), "/proc/self/environ"):
        status, body = await submit(receiver, bot=f"survey:{name}")
        assert status == 400, body
        assert body["detail"][0]["field"] == "bot"
        answers.append(body)
    assert all(a == answers[0] for a in answers), "the answer must not depend on the file"
    assert "send the survey as content" in answers[0]["error"]
    assert not r.keys("dl:*campaign:*"), "nothing was created"


@pytest.fixture
async def with_survey_dir(
    r: redis.Redis,
    redis_url: str,
    tmp_path: Path,
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> tuple[Client, Path]:
    root = tmp_path / "surveys"
    (root / "audio").mkdir(parents=True)
    (root / "csat.json").write_text(json.dumps(document()))
    (root / "hello.wav").write_bytes(wav())
    (root / "audio" / "q1.wav").write_bytes(wav(0.5))
    (tmp_path / "secret.json").write_text(json.dumps(document()))
    (root / "escape.json").symlink_to(tmp_path / "secret.json")
    setup_account(r)
    app = create_app(make_settings(redis_url, DIALER_SURVEY_DIR=str(root)))
    return await aiohttp_client(app), root


async def test_the_operator_directory_serves_names_inside_it_only(
    with_survey_dir: tuple[Client, Path], r: redis.Redis
) -> None:
    client, _root = with_survey_dir
    status, body = await submit(client, bot="survey:csat.json")
    assert status == 201, body
    stored = r.hgetall(keys.survey(ACCOUNT, body["id"]))
    assert base64.b64decode(stored["wav:audio/q1.wav"]) == wav(0.5)
    for name in ("../secret.json", "/etc/passwd", "audio/../../secret.json", "escape.json"):
        status, body = await submit(client, bot=f"survey:{name}")
        assert status == 400, (name, body)
    status, body = await submit(client, bot="survey:missing.json")
    assert status == 422 and "no such file" in body["error"]
    assert str(_root) not in body["error"], "the operator's directory is not revealed"


# ------------------------------------------------------------------ content


async def test_content_is_stored_with_the_campaign_and_played_from_redis(
    receiver: Client, r: redis.Redis, redis_url: str
) -> None:
    setup_account(r)
    status, body = await submit(receiver, bot="survey:csat.json", survey=content())
    assert status == 201, body
    cid = body["id"]
    meta = r.hgetall(keys.campaign(ACCOUNT, cid))
    assert json.loads(meta["bot_config"]) == document()  # no host path anywhere
    assert "base_dir" not in meta["bot_config"]
    ar = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        call = await CallStore(ar).load(keys.call_id(cid, 0))
    finally:
        await ar.aclose()
    assert call is not None
    assert call.bot_config["prompts"] == {"hello.wav": wav(), "audio/q1.wav": wav(0.5)}
    bot = make_bot(call.bot, call.bot_config)
    assert isinstance(bot, SurveyBot)
    pcm = await render(bot.survey.questions[0].prompt, 8000)
    assert len(pcm) == 2 * 4000, "0.5 s of the uploaded WAV at 8 kHz"


@pytest.mark.parametrize(
    ("survey", "field"),
    [
        pytest.param(
            {"document": document(), "prompts": {"hello.wav": b64(wav())}},
            "survey.document.questions[0].prompt",
            id="a_named_wav_not_sent",
        ),
        pytest.param(
            {"document": document(), "prompts": {**content()["prompts"], "extra.wav": b64(wav())}},
            "survey.prompts.extra.wav",
            id="a_wav_the_survey_does_not_use",
        ),
        pytest.param(
            {"document": document(), "prompts": {**content()["prompts"], "hello.wav": "!!"}},
            "survey.prompts.hello.wav",
            id="not_base64",
        ),
        pytest.param(
            {"document": document(), "prompts": {**content()["prompts"], "hello.wav": b64(b"x")}},
            "survey.prompts.hello.wav",
            id="not_a_wav",
        ),
        pytest.param(
            {"document": document(), "prompts": {"../../etc/x.wav": b64(wav())}},
            "survey.prompts",
            id="traversal_name",
        ),
        pytest.param(
            {"document": document(), "prompts": {"/abs/x.wav": b64(wav())}},
            "survey.prompts",
            id="absolute_name",
        ),
        pytest.param(
            {"document": {"questions": []}, "prompts": {}},
            "survey.document.questions",
            id="bad_document",
        ),
        pytest.param(
            {"document": document(), "prompts": {}, "path": "/etc"},
            "survey.path",
            id="unknown_key",
        ),
    ],
)
async def test_bad_content_is_a_422_naming_the_field(
    receiver: Client, r: redis.Redis, survey: dict[str, Any], field: str
) -> None:
    setup_account(r)
    status, body = await submit(receiver, bot="survey:s.json", survey=survey)
    assert status == 422, body
    assert body["detail"][0]["field"] == field, body


BIG = wav(30, rate=16_000)  # 960 KB: under the 1 MiB per-file cap


@pytest.mark.parametrize(
    "prompts",
    [
        pytest.param({"hello.wav": wav(33, 16_000), "audio/q1.wav": wav()}, id="a_file_over_1_MiB"),
        pytest.param(
            {"hello.wav": BIG, "audio/q1.wav": BIG, **{f"x{i}.wav": BIG for i in range(3)}},
            id="over_4_MiB_in_all",
        ),
        pytest.param({f"p{i}.wav": b"" for i in range(surveys.MAX_PROMPTS + 1)}, id="too_many"),
    ],
)
async def test_sizes_are_capped(
    receiver: Client, r: redis.Redis, prompts: dict[str, bytes]
) -> None:
    setup_account(r)
    status, body = await submit(receiver, bot="survey:s.json", survey=content(**prompts))
    assert status == 422, body
    assert body["detail"][0]["field"] == "survey.prompts"
    assert not r.keys("dl:*survey:*")


async def test_survey_content_needs_a_survey_bot(receiver: Client, r: redis.Redis) -> None:
    setup_account(r)
    status, body = await submit(receiver, bot="echo", survey=content())
    assert status == 422 and body["detail"][0]["field"] == "survey"


# ------------------------------------------------------------------ the CLI side


def test_the_cli_reads_the_survey_and_its_wavs_locally(tmp_path: Path) -> None:
    from dialer.cli.commands import _survey_content

    (tmp_path / "audio").mkdir()
    (tmp_path / "csat.json").write_text(json.dumps(document()))
    (tmp_path / "hello.wav").write_bytes(wav())
    (tmp_path / "audio" / "q1.wav").write_bytes(wav(0.5))
    bot, sent = _survey_content(f"survey:{tmp_path / 'csat.json'}")
    assert bot == "survey:csat.json", "a label: the receiver is told no local path"
    assert sent == content()
    (tmp_path / "hello.wav").unlink()
    with pytest.raises(SystemExit) as exited:
        _survey_content(f"survey:{tmp_path / 'csat.json'}")
    assert exited.value.code == 2


async def test_a_purge_deletes_the_stored_survey(receiver: Client, r: redis.Redis) -> None:
    setup_account(r)
    status, body = await submit(receiver, bot="survey:csat.json", survey=content())
    assert status == 201, body
    cid = body["id"]
    assert r.exists(keys.survey(ACCOUNT, cid))
    assert (await receiver.post(f"/v1/campaigns/{cid}/cancel", headers=AUTH)).status == 200
    assert (await receiver.delete(f"/v1/campaigns/{cid}", headers=AUTH)).status == 200
    assert not [k for k in r.scan_iter(match="dl:*", count=1000) if cid in k]


async def test_a_text_prompt_that_looks_like_an_option_is_only_spoken() -> None:
    # espeak-ng was a subprocess given the text without `--`: "--help" or "-w FILE"
    # as a prompt were options. Now the text goes to libespeak-ng's synthesis call
    # (streamer.bots.tts), which has no options to inject; no process is started
    # (tests/support/shellout.py would refuse one).
    from streamer.bots.prompts import speak

    spoken = await speak("-w /tmp/owned.wav --version", 8000)
    assert len(spoken) > 8000, "the words were spoken"
    assert not Path("/tmp/owned.wav").exists()
