"""Bot specs -> bots.

A campaign names its bot with a spec string: ``echo``, ``survey:FILE.json``,
``relay:ws://...``/``relay:wss://...`` or ``plugin:NAME`` (an entry point in
the ``dialer.bots`` group). ``parse_bot_spec`` validates the string alone and
is cheap enough for the submit path; ``make_bot`` builds the bot for a call.
The relay is not a ``Bot``: it forwards raw frames, so the session runs it
as a mode of its own (``streamer.bots.relay``).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from dialer.core.errors import ValidationError
from streamer.bots.base import INTERNAL_RATE, Bot, BotContext

__all__ = ["INTERNAL_RATE", "Bot", "BotContext", "BotSpec", "make_bot", "parse_bot_spec"]

PLUGIN_GROUP = "dialer.bots"
KINDS = ("echo", "survey", "relay", "plugin")


@dataclass(frozen=True)
class BotSpec:
    kind: str  # one of KINDS
    arg: str = ""  # survey file, relay URL or plugin name


def parse_bot_spec(spec: str) -> BotSpec:
    """``"survey:x.json"`` -> BotSpec("survey", "x.json"); ValidationError if unknown."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValidationError("bot spec is empty", field="bot")
    kind, _, arg = spec.strip().partition(":")
    if kind == "echo" and not arg:
        return BotSpec("echo")
    if kind == "survey" and arg:
        return BotSpec("survey", arg)
    if kind == "relay" and arg.startswith(("ws://", "wss://")) and len(arg) > len("wss://"):
        return BotSpec("relay", arg)
    if kind == "plugin" and arg:
        return BotSpec("plugin", arg)
    raise ValidationError(
        f"unknown bot spec {spec!r}: use echo, survey:FILE.json, relay:ws(s)://URL or plugin:NAME",
        field="bot",
    )


def load_plugin(name: str) -> type[Bot]:
    found = [ep for ep in entry_points(group=PLUGIN_GROUP) if ep.name == name]
    if not found:
        known = sorted(ep.name for ep in entry_points(group=PLUGIN_GROUP))
        raise ValidationError(
            f"no bot plugin {name!r} in entry-point group {PLUGIN_GROUP!r} (installed: {known})",
            field="bot",
        )
    try:
        cls = found[0].load()
    except Exception as exc:  # a broken third-party package must not look like our bug
        raise ValidationError(f"bot plugin {name!r} failed to load: {exc}", field="bot") from exc
    if not (isinstance(cls, type) and issubclass(cls, Bot)):
        raise ValidationError(f"bot plugin {name!r} is not a streamer.bots.Bot", field="bot")
    return cls


def make_bot(spec: str, config: dict[str, Any] | None = None) -> Bot:
    """Build the bot for one call. Relay specs are refused: see streamer.relay."""
    parsed = parse_bot_spec(spec)
    if parsed.kind == "echo":
        from streamer.bots.echo import EchoBot

        return EchoBot(config)
    if parsed.kind == "survey":
        from streamer.bots.survey import SurveyBot

        return SurveyBot(config, parsed.arg)
    if parsed.kind == "plugin":
        return load_plugin(parsed.arg)(config, parsed.arg)
    raise ValidationError("relay bots are run by the session's relay mode", field="bot")
