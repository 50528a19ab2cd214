"""The stored names of campaign and circuit states: the one place they are spelt.

Python compares with these enums; the Lua scripts get the same names as
constants that ``dialer.store.scripts`` generates from them (``lua_constants``),
so a name is never retyped in Lua. Call states are ``dialer.core.calls.State``.
"""

from __future__ import annotations

from enum import StrEnum


class CampaignState(StrEnum):
    """``dl:{A}:campaign:<cid>`` field ``state``."""

    RUNNING = "running"
    PAUSED = "paused"  # no new admissions; calls already placed go on
    CANCELLED = "cancelled"  # no new admissions, ever; waiting calls are settled
    PURGING = "purging"  # being deleted (dialer.store.retention): reads as unknown
    #: never stored: a running campaign whose every contact is final (``status``)
    DONE = "done"


#: what a client sees and filters by (``purging`` reads as unknown: never shown)
SHOWN_STATES = tuple(s.value for s in CampaignState if s is not CampaignState.PURGING)


class CircuitState(StrEnum):
    """``dl:{A}:account`` field ``circuit``: open after Exotel refused the credentials."""

    CLOSED = "closed"
    OPEN = "open"  # no dials and no admissions until an operator resumes the account


def lua_constants() -> str:
    """``local CAMPAIGN_RUNNING = 'running'`` ... for every state, prepended to each script."""
    lines = [
        f"local {prefix}_{member.name} = '{member.value}'"
        for prefix, enum in (("CAMPAIGN", CampaignState), ("CIRCUIT", CircuitState))
        for member in enum
    ]
    return "\n".join(lines) + "\n"
