"""Exotel Connect-to-Voice-AI: request parameters (pure), HTTP client, callback parsing."""

from dialer.exotel.params import ConnectParams, validate_connect_form

__all__ = ["ConnectParams", "validate_connect_form"]
