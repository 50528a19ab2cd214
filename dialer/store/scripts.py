"""The Lua scripts in ``dialer/store/lua/``, by name. Each file's header is its contract.

===============  =============================================================
script           does
===============  =============================================================
admit            move due calls into free slots, within the per-minute budget
commit           a call's transition, if the fields its decision read are unchanged;
                 one that releases a slot refills it in the same run
claim            reconciliation takes an expired slot and one API request
stream_end       an attempt's stream ended: pull its slot's lease in to grace
back_off         429: move the account's ``paused_until`` later, never earlier
stream_claim     a stream token's single use, while its attempt is live
encrypt_token    encrypt an account's plain-text token in place (migration)
reencrypt        store a field re-encrypted under a rotated secret
rotate_webhook_key  a new webhook key for an existing account
===============  =============================================================

Each script starts with generated constants for the campaign and circuit
state names (``dialer.core.states.lua_constants``: ``CAMPAIGN_RUNNING``,
``CIRCUIT_OPEN``, ...), so Lua compares with the names Python owns. Scripts
that admit calls (``admit``, ``commit``) are prefixed with the library
``lua/admission.lua``: its ``admit`` function is the one place a call enters
the active set, whichever script runs it.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from dialer.core.states import lua_constants

#: Scripts that call a library's functions, and which libraries they need.
_LIBRARIES = {"admit": ("admission",), "commit": ("admission",)}


@cache
def script(name: str) -> str:
    """The text of ``dialer/store/lua/<name>.lua``, after the state-name constants
    and the libraries it uses."""
    parts = (*_LIBRARIES.get(name, ()), name)
    return lua_constants() + "".join(_text(part) for part in parts)


def _text(name: str) -> str:
    return resources.files("dialer.store").joinpath(f"lua/{name}.lua").read_text()
