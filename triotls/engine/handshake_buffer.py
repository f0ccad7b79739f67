"""Reassembly of handshake messages across records (RFC 8446 §5.1)."""

from __future__ import annotations

from typing import final

from ..errors import DecodeError, UnexpectedMessage
from .messages import HandshakeMessage

__all__ = ["HandshakeBuffer"]


@final
class HandshakeBuffer:
    """Collects handshake record payloads and yields whole messages.

    A message longer than ``max_message_size`` is refused as soon as its
    header arrives, so a peer cannot make us buffer without bound.
    """

    __slots__ = ("_buf", "max_message_size")

    def __init__(self, max_message_size: int) -> None:
        self._buf = bytearray()
        self.max_message_size = max_message_size

    @property
    def is_empty(self) -> bool:
        """Whether no partial message is buffered (needed at key changes)."""
        return not self._buf

    def feed(self, payload: bytes) -> None:
        """Add the payload of one handshake record."""
        self._buf += payload

    def next_message(self) -> HandshakeMessage | None:
        """The next complete message, or None if more bytes are needed."""
        buf = self._buf
        if len(buf) < 4:
            return None
        length = int.from_bytes(buf[1:4], "big")
        if length > self.max_message_size:
            raise DecodeError(
                f"handshake message of type {buf[0]} claims {length} bytes, over the "
                f"limit of {self.max_message_size} (max_handshake_message_size)"
            )
        if len(buf) < 4 + length:
            return None
        raw = bytes(buf[: 4 + length])
        del buf[: 4 + length]
        return HandshakeMessage(raw[0], raw[4:], raw)

    def check_key_change(self, what: str) -> None:
        """RFC 8446 §5.1: a message must not span a key change."""
        if self._buf:
            raise UnexpectedMessage(
                f"{len(self._buf)} bytes of a handshake message were left before {what}, "
                "which must align with a record boundary"
            )
