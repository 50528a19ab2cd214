"""The Lua scripts in ``dialer/lua/``, by name. Each file's header is its contract.

===============  =============================================================
script           does
===============  =============================================================
admit            move due calls into free slots, within the per-minute budget
claim            reconciliation takes an expired slot and one API request
stream_end       an attempt's stream ended: pull its slot's lease in to grace
back_off         429: move the account's ``paused_until`` later, never earlier
===============  =============================================================
"""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def script(name: str) -> str:
    """The text of ``dialer/lua/<name>.lua``."""
    return resources.files("dialer").joinpath(f"lua/{name}.lua").read_text()
