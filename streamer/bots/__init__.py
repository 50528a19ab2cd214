"""Bot specs -> bots.

A campaign names its bot with a spec string: ``echo``, ``survey:FILE.json``,
``relay:ws://...``/``relay:wss://...`` or ``plugin:NAME`` (an entry point in
the ``dialer.bots`` group). The spec is parsed by the core
(``dialer.core.bots``), which the submit path calls without this package;
``make_bot`` builds the bot for a call.
The relay is not a ``Bot``: it forwards raw frames, so the session runs it
as a mode of its own (``streamer.bots.relay``).
"""

from __future__ import annotations

from typing import Any, cast

from dialer.core.bots import PLUGIN_GROUP, BotSpec, parse_bot_spec
from dialer.core.bots import load_plugin as _load_plugin
from dialer.core.errors import ValidationError
from streamer.bots.base import INTERNAL_RATE, Bot, BotContext

__all__ = [
    "INTERNAL_RATE",
    "PLUGIN_GROUP",
    "Bot",
    "BotContext",
    "BotSpec",
    "load_plugin",
    "make_bot",
    "parse_bot_spec",
]


def load_plugin(name: str) -> type[Bot]:
    """The plugin's Bot class (``dialer.core.bots.load_plugin`` checks it subclasses Bot)."""
    return cast("type[Bot]", _load_plugin(name))


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
