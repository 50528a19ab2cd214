"""The Redis edge: key names, Lua scripts and the reads and writes of call state.

Imports only ``dialer.core``. Every key name is built in ``dialer.store.keys``.
"""
