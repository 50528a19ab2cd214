"""DTMF survey bot and its survey file (format: DESIGN.md, "Survey file").

Flow: greeting, then per question: prompt, wait for an allowed key (each
answer is written at once, so a hang-up mid-survey keeps what was given),
re-prompt on a wrong key or silence up to ``max_reprompts`` times, then
goodbye and hang up. A key pressed while a prompt plays cuts the prompt
short (DTMF barge-in). ``load_survey`` is also what the campaign submit path
calls to refuse a bad survey before any call is placed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dialer.core.errors import ValidationError
from streamer.bots import prompts
from streamer.bots.base import Bot, BotContext
from streamer.bots.prompts import Prompt

DTMF_KEYS = frozenset("0123456789*#")
# The survey document's keys (DESIGN.md, "Survey file"). Anything else is refused:
# a misspelled optional key (``answer_timout_s``) would otherwise silently fall
# back to its default.
SURVEY_KEYS = ("name", "greeting", "questions", "goodbye", "answer_timeout_s", "max_reprompts")
QUESTION_KEYS = ("id", "prompt", "keys")
# Keys the campaign adds when it stores the survey; not part of the document.
STORED_KEYS = ("base_dir", "prompts")
# A mark echo that never comes must not stall the survey forever.
MARK_SLACK_S = 5.0
# Machine detection always decides within its max_s (6 s); this only guards a
# stream whose audio stopped.
DETECTION_WAIT_S = 10.0


@dataclass(frozen=True)
class Question:
    id: str
    prompt: Prompt
    keys: frozenset[str]


@dataclass(frozen=True)
class Survey:
    name: str
    questions: tuple[Question, ...]
    greeting: Prompt | None = None
    goodbye: Prompt | None = None
    answer_timeout_s: float = 8.0
    max_reprompts: int = 1


def _prompt(
    value: Any, where: str, base_dir: Path, wavs: Mapping[str, bytes] | None = None
) -> Prompt:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{where}: prompt must be a non-empty string", field=where)
    if wavs is not None and value.lower().endswith(".wav"):
        # a survey sent as content (dialer.core.surveys): its WAVs came with it, no disk
        if value not in wavs:
            raise ValidationError(
                f"{where}: WAV prompt {value!r} was not sent with the survey", field=where
            )
        prompt = Prompt(wav=wavs[value], name=value)
    else:
        prompt = Prompt.parse(value, base_dir)
    prompts.check(prompt, where)
    return prompt


def _no_unknown_keys(data: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = [k for k in data if k not in allowed]
    if unknown:
        prefix = f"{where}: " if where else ""
        raise ValidationError(
            f"{prefix}unknown key {unknown[0]!r} (allowed: {', '.join(allowed)})",
            field=f"{where}.{unknown[0]}" if where else unknown[0],
        )


def _number(
    data: dict[str, Any], key: str, default: float, lo: float, hi: float, *, whole: bool = False
) -> float:
    value = data.get(key, default)
    kind = int if whole else int | float
    if isinstance(value, bool) or not isinstance(value, kind) or not lo <= value <= hi:
        what = "a whole number" if whole else "a number"
        raise ValidationError(f"{key} must be {what} from {lo:g} to {hi:g}", field=key)
    return float(value)


def parse_survey(
    data: Any, base_dir: Path = Path("."), *, wavs: Mapping[str, bytes] | None = None
) -> Survey:
    """Validate a survey document. With ``wavs`` (a survey sent as content) its .wav
    prompts are those bytes; without, WAV paths resolve against ``base_dir``."""
    if not isinstance(data, dict):
        raise ValidationError("survey must be a JSON object")
    _no_unknown_keys(data, SURVEY_KEYS, "")
    questions = data.get("questions")
    if not isinstance(questions, list) or not questions:
        raise ValidationError("survey needs a non-empty 'questions' list", field="questions")
    seen: set[str] = set()
    parsed = []
    for i, q in enumerate(questions):
        where = f"questions[{i}]"
        if not isinstance(q, dict):
            raise ValidationError(f"{where} must be an object", field=where)
        _no_unknown_keys(q, QUESTION_KEYS, where)
        qid = q.get("id")
        if not isinstance(qid, str) or not qid.strip():
            raise ValidationError(f"{where}: missing question 'id'", field=f"{where}.id")
        if qid in seen:
            raise ValidationError(f"{where}: duplicate question id {qid!r}", field=f"{where}.id")
        seen.add(qid)
        keys = q.get("keys")
        if (
            not isinstance(keys, list)
            or not keys
            or not all(isinstance(k, str) and k in DTMF_KEYS for k in keys)
        ):
            raise ValidationError(
                f"{where} ({qid}): 'keys' must be a non-empty list of DTMF keys 0-9 * #",
                field=f"{where}.keys",
            )
        prompt = _prompt(q.get("prompt"), f"{where}.prompt", base_dir, wavs)
        parsed.append(Question(qid, prompt, frozenset(keys)))
    optional = {
        k: _prompt(data[k], k, base_dir, wavs) for k in ("greeting", "goodbye") if data.get(k)
    }
    name = data.get("name", "survey")
    if not isinstance(name, str):
        raise ValidationError("name must be a string", field="name")
    survey = Survey(
        name=name,
        questions=tuple(parsed),
        greeting=optional.get("greeting"),
        goodbye=optional.get("goodbye"),
        answer_timeout_s=_number(data, "answer_timeout_s", 8.0, 0.5, 120),
        max_reprompts=int(_number(data, "max_reprompts", 1, 0, 10, whole=True)),
    )
    # The engine last: the document's own errors are reported on any machine.
    spoken = [q.prompt for q in survey.questions] + list(optional.values())
    if any(p.text is not None for p in spoken):
        prompts.check_engine("survey")
    return survey


def load_survey(path: str | Path) -> Survey:
    """Read and validate a survey file; ValidationError names what is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValidationError(f"survey file not found: {path}", field="bot") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read survey file {path}: {exc}", field="bot") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"survey file {path} is not valid JSON: {exc}", field="bot") from exc
    return parse_survey(data, path.resolve().parent)


def survey_from_config(config: dict[str, Any], arg: str) -> Survey:
    """The campaign stores the survey document and its WAVs (the streamer's store puts
    them under ``prompts``); campaigns stored before surveys travelled as content
    have ``base_dir`` instead. Without a stored survey, read the file (tests, tools)."""
    if config.get("questions") is not None:
        document = {k: v for k, v in config.items() if k not in STORED_KEYS}
        if "prompts" in config:
            return parse_survey(document, wavs=config["prompts"])
        base = Path(config.get("base_dir") or (Path(arg).parent if arg else "."))
        return parse_survey(document, base)
    if not arg:
        raise ValidationError("survey bot needs a file: survey:FILE.json", field="bot")
    return load_survey(arg)


class SurveyBot(Bot):
    def __init__(self, config: dict[str, Any] | None = None, arg: str = "") -> None:
        super().__init__(config, arg)
        self.survey = survey_from_config(self.config, arg)
        self._digits: asyncio.Queue[str] = asyncio.Queue()
        self._speaking = False
        self._asking: Question | None = None
        self.answers: dict[str, str] = {}
        self._answered_by: asyncio.Future[str] | None = None
        self._script: asyncio.Future[Any] | None = None  # the running script (a task)
        self._stopped = False

    async def on_answered_by(self, answered_by: str) -> None:
        if self._answered_by is None:
            return
        if not self._answered_by.done():
            self._answered_by.set_result(answered_by)
            return
        ctx = self.ctx
        acts = getattr(ctx, "machine_detection", "off") in ("hangup", "message")
        if answered_by == "machine" and ctx is not None and self._script is not None and acts:
            # a late beep: it was a machine after all; the session deals with it.
            # The flag too: a cancel that meets a finishing mark can be swallowed.
            self._stopped = True
            self._script.cancel()
            ctx.clear()

    async def on_start(self, ctx: BotContext) -> None:
        await super().on_start(ctx)
        if getattr(ctx, "machine_detection", "off") != "off":
            self._answered_by = asyncio.get_running_loop().create_future()
        task = ctx.spawn(self.run(ctx))
        self._script = task if isinstance(task, asyncio.Future) else None

    async def wait_for_person(self, ctx: BotContext) -> bool:
        """With machine detection on, greet only once it has decided; False: a machine
        the session deals with (hangs up, or leaves the campaign's message)."""
        if self._answered_by is None:
            return True
        try:
            answered_by = await asyncio.wait_for(self._answered_by, DETECTION_WAIT_S)
        except TimeoutError:
            return True
        return not (answered_by == "machine" and ctx.machine_detection in ("hangup", "message"))

    async def on_dtmf(self, digit: str) -> None:
        q = self._asking
        if q is not None and digit in q.keys and q.id not in self.answers and self.ctx:
            # Recorded here, not in the script task: a hang-up right after the key
            # cancels that task, but the session lets callbacks finish (drain).
            self.answers[q.id] = digit
            await self.ctx.record_answer(q.id, digit)
        self._digits.put_nowait(digit)
        if self._speaking and self.ctx is not None:
            self.ctx.clear()  # the caller already knows the answer: stop talking

    async def say(self, ctx: BotContext, prompt: Prompt | None) -> None:
        """Play a prompt and wait until it has been heard (or cut short)."""
        if prompt is None or self._stopped:
            return
        pcm = await prompts.render(prompt, ctx.sample_rate)
        self._speaking = True
        try:
            ctx.play(pcm)
            played = ctx.mark()
            limit = len(pcm) / (2 * ctx.sample_rate) + MARK_SLACK_S
            await asyncio.wait_for(played, timeout=limit)
        except TimeoutError:
            pass
        finally:
            self._speaking = False

    async def ask(self, ctx: BotContext, q: Question) -> None:
        """Until an allowed key (on_dtmf records it) or the re-prompts run out."""
        while not self._digits.empty():  # stale keys from before this question
            self._digits.get_nowait()
        self._asking = q
        try:
            for _ in range(self.survey.max_reprompts + 1):
                if self._stopped:
                    return
                await self.say(ctx, q.prompt)
                try:
                    await asyncio.wait_for(self._digits.get(), self.survey.answer_timeout_s)
                except TimeoutError:
                    continue  # silence: say the question again
                if q.id in self.answers:
                    return
                # a key not in q.keys: say the question again
        finally:
            self._asking = None

    async def run(self, ctx: BotContext) -> None:
        if not await self.wait_for_person(ctx):
            return
        await self.say(ctx, self.survey.greeting)
        for q in self.survey.questions:
            if self._stopped:
                return
            await self.ask(ctx, q)
        await self.say(ctx, self.survey.goodbye)
        if not self._stopped:
            ctx.hangup()
