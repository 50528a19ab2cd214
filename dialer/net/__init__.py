"""The HTTP edges: the egress-checked transport and the Exotel API client.

Imports only ``dialer.core``.
"""
