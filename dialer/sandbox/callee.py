"""Who picks up: a pure rule from a dialled number to a callee's behaviour.

The rule is deterministic on the last digit of the E.164 number so a demo
contact list produces a known mix of outcomes, and a test can pick a number
for the outcome it needs without touching the control API:

=====  ====================================================
digit  behaviour
=====  ====================================================
0-5    answer, talk until the bot hangs up or ``talk_max_s``
6      busy
7      no-answer
8      failed
9      answer, then hang up early (``hangup_after_s``)
=====  ====================================================

Who answers (people and answering machines, for machine detection): a number
ending ``555VD`` with an answering digit D (0-5) speaks with voice V, below;
any other answered number only breathes line hiss. Voices are generated
(``dialer.sandbox.voices``), the same number always sounding the same.

=====  ==============================================================
V      voice
=====  ==============================================================
0      person: "Hello?", then waits
1      person: "Hello?" ... "Hello?"
2      person: "Hello, Asha speaking."
3      person: one long sentence (1.6-2.6 s)
4      person: "Hello?" over loud background noise
5      machine: voicemail greeting of 3-9 s, then a beep (400-2,000 Hz)
6      machine: long voicemail greeting (8-12 s), then a beep
7      machine: a one-word greeting ("Hello."), then a beep
8      machine: an IVR menu (6-14 s), no beep
9      machine: voicemail greeting over mains hum, then a beep
=====  ==============================================================

Per-number overrides (``PUT /_sandbox/numbers``) replace fields of the rule's
result. This module keeps no state and does no I/O; the overrides are passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dialer.sandbox.config import CalleeBehaviour, SandboxConfig

OUTCOME_BY_DIGIT = {
    "0": "answer",
    "1": "answer",
    "2": "answer",
    "3": "answer",
    "4": "answer",
    "5": "answer",
    "6": "busy",
    "7": "no-answer",
    "8": "failed",
    "9": "hangup-early",
}

# Terminal call status Exotel reports for each outcome; an answered call that the
# callee ends is still "completed" (Exotel does not say who hung up).
TERMINAL_STATUS = {
    "answer": "completed",
    "hangup-early": "completed",
    "busy": "busy",
    "no-answer": "no-answer",
    "failed": "failed",
}


VOICE_BY_DIGIT = {
    "0": "human:hello",
    "1": "human:hello-twice",
    "2": "human:named",
    "3": "human:long-sentence",
    "4": "human:hello+noise",
    "5": "machine:voicemail",
    "6": "machine:voicemail-long",
    "7": "machine:one-word",
    "8": "machine:ivr",
    "9": "machine:voicemail+hum",
}


def voice_for(number: str) -> str:
    """The ``555VD`` rule: which voice answers at ``number`` ("line": hiss only)."""
    digits = number.strip()
    if len(digits) >= 5 and digits[-5:-2] == "555" and digits[-2] in VOICE_BY_DIGIT:
        return VOICE_BY_DIGIT[digits[-2]]
    return "line"


def outcome_for(number: str) -> str:
    """The rule alone: last digit of the number -> outcome (non-digits answer)."""
    return OUTCOME_BY_DIGIT.get(number.strip()[-1:] if number else "", "answer")


def behaviour_for(
    number: str,
    config: SandboxConfig,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> CalleeBehaviour:
    """The behaviour of the callee at ``number``: the digit rule, then any override."""
    base = config.default_behaviour()
    outcome = outcome_for(number)
    fields: dict[str, Any] = {"outcome": outcome}
    if outcome == "hangup-early":
        fields["hangup_after_s"] = config.early_hangup_s
    voice = voice_for(number)
    if voice != "line":
        fields["voice"] = voice
        if voice.startswith("machine:"):
            fields["dtmf"] = ()  # a recording presses no keys
    behaviour = base.with_fields(fields)
    override = (overrides or {}).get(number)
    if override:
        behaviour = behaviour.with_fields(override)
        if behaviour.voice.startswith("machine:") and "dtmf" not in override:
            behaviour = behaviour.with_fields({"dtmf": ()})
        if behaviour.outcome == "hangup-early" and behaviour.hangup_after_s is None:
            behaviour = behaviour.with_fields({"hangup_after_s": config.early_hangup_s})
    return behaviour


def talk_limit_s(behaviour: CalleeBehaviour, time_limit_s: int | None = None) -> float:
    """How long after answer the callee (or Exotel's TimeLimit) ends the call."""
    limit = behaviour.talk_max_s
    if behaviour.outcome == "hangup-early" and behaviour.hangup_after_s is not None:
        limit = min(limit, behaviour.hangup_after_s)
    if time_limit_s is not None:
        limit = min(limit, float(time_limit_s))
    return limit


def terminal_status(behaviour: CalleeBehaviour) -> str:
    return TERMINAL_STATUS[behaviour.outcome]
