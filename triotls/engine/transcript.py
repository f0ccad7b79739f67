"""The running handshake transcript hash (RFC 8446 §4.4.1)."""

from __future__ import annotations

import hashlib
from typing import final

from .enums import HandshakeType
from .messages import frame

__all__ = ["Transcript"]


@final
class Transcript:
    """Collects handshake messages until the hash is known, then hashes incrementally.

    The client must add its ClientHello before the server picks the cipher
    suite (and so the hash), so messages are buffered until :meth:`set_hash`.
    """

    __slots__ = ("_digest", "_hash", "_pending")

    def __init__(self) -> None:
        self._pending: list[bytes] = []
        self._hash: hashlib._Hash | None = None
        # The last digest, until the next message: a handshake asks for the
        # same one twice in a row a few times (Finished, then the secrets).
        self._digest: bytes | None = None

    @property
    def hash_name(self) -> str | None:
        """The hash algorithm's name, once chosen."""
        return None if self._hash is None else self._hash.name

    def set_hash(self, hash_name: str) -> None:
        """Fix the hash algorithm and hash what was buffered."""
        if self._hash is not None and self._hash.name == hash_name:
            return
        h = hashlib.new(hash_name)
        for data in self._pending:
            h.update(data)
        self._hash = h
        self._digest = None

    def add(self, raw: bytes) -> None:
        """Add one framed handshake message."""
        self._digest = None
        if self._hash is None:
            self._pending.append(raw)
        else:
            self._hash.update(raw)

    def digest(self) -> bytes:
        """The transcript hash so far."""
        if self._hash is None:
            raise ValueError("transcript hash requested before the hash was chosen")
        if self._digest is None:
            self._digest = self._hash.copy().digest()
        return self._digest

    def digest_with(self, raw: bytes) -> bytes:
        """The hash the transcript would have with ``raw`` appended."""
        if self._hash is None:
            raise ValueError("transcript hash requested before the hash was chosen")
        if not raw:
            return self.digest()
        h = self._hash.copy()
        h.update(raw)
        return h.digest()

    def copy(self) -> Transcript:
        """An independent transcript that continues from this one."""
        if self._hash is None:
            raise ValueError("transcript copied before the hash was chosen")
        other = Transcript()
        other._hash = self._hash.copy()
        return other

    def roll_up_for_hello_retry(self) -> None:
        """Replace ClientHello1 by its message_hash (RFC 8446 §4.4.1)."""
        if self._hash is None:
            raise ValueError("HelloRetryRequest roll-up before the hash was chosen")
        first_hash = self._hash.digest()
        h = hashlib.new(self._hash.name)
        h.update(frame(HandshakeType.MESSAGE_HASH, first_hash))
        self._hash = h
        self._digest = None
