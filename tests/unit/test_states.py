"""Campaign and circuit state names have one home (dialer.core.states); Lua gets them from it."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from dialer.core.states import CampaignState, CircuitState, lua_constants
from dialer.store.scripts import script

LUA = sorted(
    p.name.removesuffix(".lua")
    for p in resources.files("dialer.store").joinpath("lua").iterdir()
    if p.name.endswith(".lua")
)


def test_every_state_becomes_a_lua_constant() -> None:
    lines = lua_constants().splitlines()
    expected = [f"local CAMPAIGN_{s.name} = '{s.value}'" for s in CampaignState] + [
        f"local CIRCUIT_{s.name} = '{s.value}'" for s in CircuitState
    ]
    assert lines == expected


@pytest.mark.parametrize("name", LUA)
def test_scripts_use_the_constants_not_retyped_names(name: str) -> None:
    text = script(name)
    assert text.startswith(lua_constants())
    body = text.removeprefix(lua_constants())
    code = "\n".join(line.split("--", 1)[0] for line in body.splitlines())
    # 'cancelled' is also a call state (dialer.core.calls.State): only the
    # names that are campaign- or circuit-only must never be spelt in Lua
    names = {"running", "paused", "purging", "open", "closed"}
    spelt = {a or b for a, b in re.findall(r"'([a-z_-]+)'|\"([a-z_-]+)\"", code)}
    assert not spelt & names, f"{name}.lua retypes {sorted(spelt & names)}"
    # and every constant it uses exists
    used = set(re.findall(r"\b(?:CAMPAIGN|CIRCUIT)_[A-Z]+\b", code))
    defined = set(re.findall(r"local ((?:CAMPAIGN|CIRCUIT)_[A-Z]+) =", lua_constants()))
    assert used <= defined


def test_the_api_and_cli_offer_exactly_the_shown_states() -> None:
    # Literal types are spelt out for the OpenAPI document: they must match the enum
    from typing import get_args

    from dialer.core.states import SHOWN_STATES
    from dialer.receiver.models import CampaignsQuery, CampaignStatus

    status = CampaignStatus.model_fields["state"].annotation
    query = CampaignsQuery.model_fields["state"].annotation
    assert set(get_args(status)) == set(SHOWN_STATES)
    assert set(get_args(get_args(query)[0])) == set(SHOWN_STATES)


def test_the_api_shows_exactly_the_circuit_states() -> None:
    from typing import get_args

    from dialer.receiver.models import AccountOut

    circuit = AccountOut.model_fields["circuit"].annotation
    assert set(get_args(circuit)) == {s.value for s in CircuitState}
