"""Outbound voice-AI dialer on Exotel's Connect-to-Voice-AI API.

Importing this package opens no connection and reads no environment; the
processes (``dialer.cli``, ``workers.app``, ``dialer.receiver``,
``streamer.app``, ``dialer.sandbox``) do that at their edges.
"""

__version__ = "0.1.0"
