"""DTMF survey bot and its survey file (format: DESIGN.md, "Survey file").

Flow: greeting, then per question: prompt, wait for an allowed key (each
answer is written at once, so a hang-up mid-survey keeps what was given),
re-prompt on a wrong key or silence up to ``max_reprompts`` times, then
goodbye and hang up. A key pressed while a prompt plays cuts the prompt
short (DTMF barge-in); a key pressed once a prompt was heard, before the next
question is asked (the bot rendering it), answers that next question. The
document itself is parsed by the core (``dialer.core.questions``), which the
submit path calls too.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dialer.core import questions
from dialer.core.errors import ValidationError
from dialer.core.questions import STORED_KEYS, Prompt, Question, Survey
from streamer.bots import prompts
from streamer.bots.base import Bot, BotContext

# A mark echo that never comes must not stall the survey forever.
MARK_SLACK_S = 5.0
# Machine detection always decides within its max_s (6 s); this only guards a
# stream whose audio stopped.
DETECTION_WAIT_S = 10.0


def parse_survey(
    data: Any, base_dir: Path = Path("."), *, wavs: Mapping[str, bytes] | None = None
) -> Survey:
    """``dialer.core.questions.parse_survey``, then: text prompts need the speech engine
    here, where they are spoken (checked last: the document's own errors come first)."""
    survey = questions.parse_survey(data, base_dir, wavs=wavs)
    if questions.speaks(survey):
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
        # The question a key answers once the prompt before it was heard, its own
        # question (if any) answered: the callee may press before it is asked.
        self._upcoming: Question | None = None
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
        # The prompt playing as the key came: the script may begin the next one while
        # the answer is written, and that one must not be cut short.
        speaking = self._speaking
        q = self._asking
        if q is None or q.id in self.answers:
            q = self._upcoming
        if q is not None and digit in q.keys and q.id not in self.answers and self.ctx:
            # Recorded here, not in the script task: a hang-up right after the key
            # cancels that task, but the session lets callbacks finish (drain).
            self.answers[q.id] = digit
            await self.ctx.record_answer(q.id, digit)
        self._digits.put_nowait(digit)
        if speaking and self.ctx is not None:
            self.ctx.clear()  # the caller already knows the answer: stop talking

    async def say(
        self, ctx: BotContext, prompt: Prompt | None, then: Question | None = None
    ) -> None:
        """Play a prompt and wait until it has been heard (or cut short); once heard in
        full, keys answer ``then`` (the question asked next)."""
        if prompt is None or self._stopped:
            return
        pcm = await prompts.render(prompt, ctx.sample_rate)
        self._speaking = True
        try:
            ctx.play(pcm)
            played = asyncio.ensure_future(ctx.mark())  # the session's future itself
            # The session resolves the mark as it reads the echo and hands the bot a
            # key read after it a loop turn later; this task resumes later still. A
            # key pressed just after the prompt ended must not meet "still speaking"
            # or be dropped as stale.
            played.add_done_callback(functools.partial(self._heard, then))
            limit = len(pcm) / (2 * ctx.sample_rate) + MARK_SLACK_S
            await asyncio.wait_for(played, timeout=limit)
        except TimeoutError:
            pass
        finally:
            self._speaking = False

    def _heard(self, then: Question | None, played: asyncio.Future[bool]) -> None:
        if played.cancelled() or not played.result():
            return  # cut short or never echoed: this task moves on by itself
        self._speaking = False
        if self._asking is None or self._asking.id in self.answers:
            self._upcoming = then

    async def ask(self, ctx: BotContext, q: Question, then: Question | None) -> None:
        """Until an allowed key (on_dtmf records it) or the re-prompts run out."""
        while not self._digits.empty():  # stale keys from before this question
            self._digits.get_nowait()
        self._asking, self._upcoming = q, None
        try:
            for _ in range(self.survey.max_reprompts + 1):
                if self._stopped:
                    return
                await self.say(ctx, q.prompt, then)
                if q.id in self.answers:
                    return  # already: a key cut its prompt short, or came before it
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
        questions = self.survey.questions
        await self.say(ctx, self.survey.greeting, questions[0])
        for q, then in zip(questions, [*questions[1:], None], strict=True):
            if self._stopped:
                return
            await self.ask(ctx, q, then)
        await self.say(ctx, self.survey.goodbye)
        if not self._stopped:
            ctx.hangup()
