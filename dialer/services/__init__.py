"""Use cases: what the processes do, composed from the core, the store and the net edges.

Imported by the processes (receiver, workers, streamer, CLI); imports none of them.
"""
