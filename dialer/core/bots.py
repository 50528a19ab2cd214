"""Bot specs: the string a campaign names its bot with, parsed and checked.

``echo``, ``survey[:LABEL]``, ``relay:ws://...``/``relay:wss://...`` or
``plugin:NAME`` (an entry point in the ``dialer.bots`` group). The submit path
checks a spec here, so it never imports the streamer and its audio stack;
``streamer.bots.make_bot`` builds the bot for a call from the same parse.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points

from dialer.core.errors import ValidationError

PLUGIN_GROUP = "dialer.bots"
KINDS = ("echo", "survey", "relay", "plugin")
# Named, not imported: the core imports nothing of the streamer, yet a plugin
# must subclass the streamer's Bot (streamer.bots.base).
BOT_BASE = "streamer.bots.base.Bot"


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


def load_plugin(name: str) -> type:
    """The plugin's Bot class from its entry point; ValidationError names what is wrong."""
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
    if not (
        isinstance(cls, type)
        and any(f"{c.__module__}.{c.__qualname__}" == BOT_BASE for c in cls.__mro__)
    ):
        raise ValidationError(f"bot plugin {name!r} is not a streamer.bots.Bot", field="bot")
    return cls
