"""One key per trust boundary, each derived from the master secret (pure).

``DIALER_SECRET`` itself signs nothing. HKDF-SHA256 derives a separate key for
each purpose, labelled so that no two purposes can share one:

=============  ==============================================================
purpose        used for
=============  ==============================================================
``callback``   the ``sig`` of every status-callback URL (Exotel -> receiver)
``stream``     the ``token`` of every stream URL (Exotel -> streamer)
``vault``      Fernet key that encrypts Exotel API tokens and webhook keys at
               rest in Redis
``session``    the dashboard's session cookies and their CSRF tokens
               (``dialer.receiver.ui.sessions``)
=============  ==============================================================

Customer webhooks are *not* signed with a derived key: each account has its
own random, rotatable webhook key (stored encrypted with ``vault``), the only
key a customer ever sees. Holding it proves nothing to the receiver or the
streamer, whose keys come from the master secret through other labels.

Rotation: ``DIALER_SECRET_PREVIOUS`` (the old master secret) is accepted for
*verification and decryption only*, so callbacks and streams of calls placed
before the switch still work and stored tokens are re-encrypted on read.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PURPOSES = ("callback", "stream", "vault", "session")


def derive(master: bytes, purpose: str) -> bytes:
    """32 bytes for ``purpose``; the label makes keys of different purposes unrelated."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown key purpose {purpose!r}")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"dialer/{purpose}".encode())
    return hkdf.derive(master)


@dataclass(frozen=True)
class Keyring:
    """The derived keys of the current master secret (and of the previous one)."""

    callback: bytes = field(repr=False)
    stream: bytes = field(repr=False)
    vault_key: bytes = field(repr=False)
    previous: tuple[Keyring, ...] = field(default=(), repr=False)
    session: bytes = field(default=b"", repr=False)

    @classmethod
    def from_secret(cls, master: bytes, previous: bytes | None = None) -> Keyring:
        old = (cls.from_secret(previous),) if previous and previous != master else ()
        return cls(
            derive(master, "callback"),
            derive(master, "stream"),
            derive(master, "vault"),
            old,
            derive(master, "session"),
        )

    def callback_keys(self) -> list[bytes]:
        """Current first: a signature made with any of these is ours."""
        return [self.callback, *(k.callback for k in self.previous)]

    def stream_keys(self) -> list[bytes]:
        return [self.stream, *(k.stream for k in self.previous)]

    def session_keys(self) -> list[bytes]:
        return [self.session, *(k.session for k in self.previous)]

    def _fernet(self) -> MultiFernet:
        keys = [self.vault_key, *(k.vault_key for k in self.previous)]
        return MultiFernet([Fernet(base64.urlsafe_b64encode(k)) for k in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet().encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        """Raise ``InvalidToken`` when no known key made it (wrong or rotated-away secret)."""
        return self._fernet().decrypt(ciphertext.encode()).decode()

    def needs_rotation(self, ciphertext: str) -> bool:
        """True when a previous key, not the current one, encrypted this."""
        try:
            Fernet(base64.urlsafe_b64encode(self.vault_key)).decrypt(ciphertext.encode())
        except InvalidToken:
            return True
        return False


__all__ = ["PURPOSES", "InvalidToken", "Keyring", "derive"]
