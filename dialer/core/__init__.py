"""The pure core: domain rules with no I/O (state machines, codecs, policies, settings schema).

Imports nothing of the project outside ``dialer.core`` (checked by import-linter).
"""
