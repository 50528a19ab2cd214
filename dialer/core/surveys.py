"""Surveys travel as content: the document and its WAV prompts, never a server-side path.

A campaign's ``survey`` is ``{"document": {...}, "prompts": {"q1.wav": "<base64>"}}``:
the survey JSON exactly as written, plus every WAV file it names, keyed by the
name it uses. The campaign stores both in Redis (``keys.survey``), so any
streamer on any host plays the same prompts, and the API never opens a file
a caller names: a ``survey:PATH`` bot without content is refused (400)
unless the operator set ``DIALER_SURVEY_DIR``, and then only names inside
that directory are read (no absolute paths, no ``..``).

``read_survey`` builds the content from a file on the caller's machine (what
``dialer submit --bot survey:FILE.json`` and the demo send); the server-side
operator directory reads through it too. Sizes are capped per file and in
total. This module does not judge the document itself (questions, keys,
prompts): ``dialer.core.questions.parse_survey`` does, at submit and per call.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import wave
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dialer.core.errors import ValidationError

MAX_WAV_BYTES = 1024 * 1024  # one prompt: ~30 s of 16 kHz mono PCM16
MAX_TOTAL_BYTES = 4 * 1024 * 1024  # all prompts of one survey (the receiver's body cap is 8 MiB)
MAX_PROMPTS = 64
MAX_DOCUMENT_CHARS = 64 * 1024
MAX_NAME_CHARS = 200


class SurveyPathRefused(ValidationError):
    """A survey named by a server-side path the operator did not allow (HTTP 400)."""


class SurveyIn(BaseModel):
    """A survey with its prompts, as the campaign payload carries it."""

    model_config = ConfigDict(extra="forbid")

    document: dict[str, Any] = Field(
        description="the survey JSON (name, greeting, questions, goodbye, ...); "
        "a prompt ending in .wav names an entry of `prompts`",
    )
    prompts: dict[str, str] = Field(
        default_factory=dict,
        description=f"WAV file name (as the document writes it) -> the file, base64; at most "
        f"{MAX_PROMPTS} files, {MAX_WAV_BYTES // 1024} KiB each, "
        f"{MAX_TOTAL_BYTES // 1024} KiB in all",
    )

    @field_validator("document")
    @classmethod
    def _document_size(cls, v: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(v, default=str)) > MAX_DOCUMENT_CHARS:
            raise ValueError(f"survey document larger than {MAX_DOCUMENT_CHARS} characters")
        return v

    @field_validator("prompts")
    @classmethod
    def _prompts(cls, v: dict[str, str]) -> dict[str, str]:
        if len(v) > MAX_PROMPTS:
            raise ValueError(f"at most {MAX_PROMPTS} prompt files")
        total = 0
        for name, data in v.items():
            check_name(name)
            size = decoded_size(data)
            if size > MAX_WAV_BYTES:
                raise ValueError(f"{name}: larger than {MAX_WAV_BYTES // 1024} KiB")
            total += size
        if total > MAX_TOTAL_BYTES:
            raise ValueError(f"prompt files larger than {MAX_TOTAL_BYTES // 1024} KiB in all")
        return v

    def wavs(self) -> dict[str, bytes]:
        """The prompts decoded and checked to be WAV files; ValidationError naming one."""
        out: dict[str, bytes] = {}
        for name, data in self.prompts.items():
            where = f"survey.prompts.{name}"
            try:
                raw = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise ValidationError(f"{where}: not valid base64", field=where) from None
            check_wav(raw, where)
            out[name] = raw
        return out


def decoded_size(data: str) -> int:
    """Bytes that base64 text decodes to (an upper bound for invalid text)."""
    return len(data) * 3 // 4


def check_name(name: str) -> str:
    """A prompt name: relative, no ``..``, ends in .wav (it is a key, never opened as given)."""
    path = PurePosixPath(name)
    if (
        not name
        or len(name) > MAX_NAME_CHARS
        or not name.lower().endswith(".wav")
        or path.is_absolute()
        or ".." in path.parts
        or any(c in name for c in "\\\0")
        or not name.isprintable()
    ):
        raise ValueError(
            f"prompt name {name[:MAX_NAME_CHARS]!r}: a relative file name ending in .wav "
            "(no '..', no absolute path)"
        )
    return name


def check_wav(data: bytes, where: str) -> None:
    """Refuse bytes that are not a readable WAV file (the header is enough)."""
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            w.getparams()
    except Exception as exc:  # untrusted bytes: whatever the parser trips on is the sender's
        raise ValidationError(f"{where}: not a readable WAV file ({exc})", field=where) from None


def wav_names(document: Any) -> list[str]:
    """The .wav prompt names a survey document uses (tolerant: bad shapes give none)."""
    if not isinstance(document, dict):
        return []
    values: list[Any] = [document.get("greeting"), document.get("goodbye")]
    questions = document.get("questions")
    if isinstance(questions, list):
        values += [q.get("prompt") for q in questions if isinstance(q, dict)]
    names = [v for v in values if isinstance(v, str) and v.lower().endswith(".wav")]
    return list(dict.fromkeys(names))


def check_unused(document: dict[str, Any], wavs: Mapping[str, bytes]) -> None:
    """Every prompt sent is used by the document (a typo would otherwise go unnoticed)."""
    unused = sorted(set(wavs) - set(wav_names(document)))
    if unused:
        raise ValidationError(
            f"survey.prompts: {unused[0]!r} is not used by the survey document",
            field=f"survey.prompts.{unused[0]}",
        )


def read_survey(
    path: str | Path, *, root: Path | None = None, label: str | None = None
) -> dict[str, Any]:
    """A survey file and the WAV files it names (relative to it) as ``SurveyIn`` content.

    With ``root`` (the operator's survey directory) the file and every WAV
    must resolve inside it; a name reaching outside is refused like a file
    that does not exist, so the answer says nothing about the rest of the disk.
    Messages name the file as ``label`` (default: the path given).
    """
    path = Path(path)
    shown = label or str(path)
    try:
        target = path.expanduser().resolve()
        if root is not None:
            _inside(target, root)
        text = target.read_text(encoding="utf-8")
    except SurveyPathRefused:
        raise
    except (OSError, UnicodeDecodeError, ValueError, RuntimeError) as exc:
        why = _why(exc)
        raise ValidationError(f"cannot read survey file {shown}: {why}", field="bot") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"survey file {shown} is not valid JSON: {exc}", field="bot"
        ) from None
    prompts: dict[str, str] = {}
    for name in wav_names(document):
        try:
            check_name(name)
        except ValueError as exc:
            raise ValidationError(f"{shown}: {exc}", field="bot") from None
        wav = (target.parent / name).resolve()
        try:
            if root is not None:
                _inside(wav, root)
            data = wav.read_bytes()
        except SurveyPathRefused:
            raise
        except (OSError, ValueError) as exc:
            raise ValidationError(
                f"{shown}: cannot read WAV prompt {name}: {_why(exc)}", field="bot"
            ) from None
        if len(data) > MAX_WAV_BYTES:
            raise ValidationError(
                f"{shown}: WAV prompt {name} is larger than {MAX_WAV_BYTES // 1024} KiB",
                field="bot",
            )
        prompts[name] = base64.b64encode(data).decode("ascii")
    return {"document": document, "prompts": prompts}


def from_survey_dir(name: str, root: Path | None) -> dict[str, Any]:
    """``survey:NAME`` given to the API without content: only inside the operator's directory."""
    if root is None:
        raise SurveyPathRefused(
            "the API does not read survey files on the server: send the survey as content "
            "('survey': {'document': ..., 'prompts': {name: base64 WAV}}); "
            "`dialer submit --bot survey:FILE.json` does this for you",
            field="bot",
        )
    rel = PurePosixPath(name)
    if not name or rel.is_absolute() or ".." in rel.parts or "\0" in name or "\\" in name:
        raise SurveyPathRefused(
            f"survey {name[:MAX_NAME_CHARS]!r}: give a file name inside the operator's "
            "survey directory (no absolute path, no '..')",
            field="bot",
        )
    return read_survey(root / rel, root=root, label=name)


def _inside(path: Path, root: Path) -> None:
    if not path.is_relative_to(root.resolve()):
        raise SurveyPathRefused("survey file not found in the survey directory", field="bot")


def _why(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return type(exc).__name__
