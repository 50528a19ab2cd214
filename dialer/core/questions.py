"""The survey document (format: DESIGN.md, "Survey file"), parsed and checked.

Pure enough for the submit path: the document's keys, questions and DTMF keys,
and each prompt (text, or a WAV whose header must read) are checked here with
the standard library, so a receiver validates a survey without the audio stack.
This module does not decode, resample or speak a prompt, nor check that text
can be spoken on this machine: ``streamer.bots.prompts`` and
``streamer.bots.survey`` do, where calls are played.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dialer.core.errors import ValidationError

# Longest prompt text accepted: a survey question is a sentence or two.
MAX_TEXT_CHARS = 2000
DTMF_KEYS = frozenset("0123456789*#")
# The survey document's keys (DESIGN.md, "Survey file"). Anything else is refused:
# a misspelled optional key (``answer_timout_s``) would otherwise silently fall
# back to its default.
SURVEY_KEYS = ("name", "greeting", "questions", "goodbye", "answer_timeout_s", "max_reprompts")
QUESTION_KEYS = ("id", "prompt", "keys")
# Keys the campaign adds when it stores the survey; not part of the document.
STORED_KEYS = ("base_dir", "prompts")


@dataclass(frozen=True)
class Prompt:
    """``text`` (spoken by ``streamer.bots.tts``), ``wav`` (a WAV file's bytes, as
    surveys carry them: ``dialer.core.surveys``) or ``path`` (a WAV file on this host)."""

    text: str | None = None
    path: Path | None = None
    wav: bytes | None = field(default=None, repr=False)
    name: str = ""  # the WAV's name in the survey document (messages, cache key)

    @classmethod
    def parse(cls, value: str, base_dir: Path) -> Prompt:
        if value.lower().endswith(".wav"):
            path = Path(value)
            return cls(path=path if path.is_absolute() else base_dir / path)
        return cls(text=value)


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
    check_prompt(prompt, where)
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
    return survey


def check_prompt(prompt: Prompt, where: str) -> None:
    """Refuse a prompt that cannot be played on this machine (ValidationError)."""
    if prompt.wav is not None:
        try:  # the header is enough to know we can play it; decoding waits for a call
            with wave.open(io.BytesIO(prompt.wav), "rb") as w:
                w.getparams()
        except Exception as exc:  # uploaded bytes: any parse failure is the sender's
            raise ValidationError(
                f"{where}: unreadable WAV {prompt.name}: {exc}", field=where
            ) from None
    elif prompt.path is not None:
        if not prompt.path.is_file():
            raise ValidationError(f"{where}: WAV file not found: {prompt.path}", field=where)
        try:  # the header is enough to know we can play it; decoding waits for a call
            with wave.open(str(prompt.path), "rb") as w:
                w.getparams()
        except (OSError, EOFError, wave.Error) as exc:
            raise ValidationError(
                f"{where}: unreadable WAV {prompt.path}: {exc}", field=where
            ) from exc
    elif not (prompt.text or "").strip():
        raise ValidationError(f"{where}: empty prompt", field=where)
    elif len(prompt.text or "") > MAX_TEXT_CHARS:
        raise ValidationError(
            f"{where}: text prompt longer than {MAX_TEXT_CHARS} characters", field=where
        )


def speaks(survey: Survey) -> bool:
    """True if a prompt is text: playing it needs the speech engine."""
    spoken = [q.prompt for q in survey.questions] + [survey.greeting, survey.goodbye]
    return any(p is not None and p.text is not None for p in spoken)
