"""A faithful local Exotel: Connect API, call details, callees, AgentStream client, faults.

Public surface: ``create_app``/``run`` (the process), ``SandboxConfig`` and
friends (configuration), ``SandboxControl`` (control API client) and
``start_in_thread`` (tests). See ``app`` for how the parts fit.
"""

from dialer.sandbox.app import create_app, run
from dialer.sandbox.config import AccountConfig, CalleeBehaviour, Faults, SandboxConfig
from dialer.sandbox.control import SandboxControl
from dialer.sandbox.testing import start_in_thread

__all__ = [
    "AccountConfig",
    "CalleeBehaviour",
    "Faults",
    "SandboxConfig",
    "SandboxControl",
    "create_app",
    "run",
    "start_in_thread",
]
