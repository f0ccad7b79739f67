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

    __slots__ = ("_data", "_pos", "max_message_size")

    def __init__(self, max_message_size: int) -> None:
        # What arrived and is not consumed yet starts at ``_pos``. Usually a
        # record holds whole messages and the buffer is empty when it comes:
        # its payload is then parsed where it is, without a copy into a
        # bytearray; a partial message left over grows in a bytearray.
        self._data: bytes | bytearray = b""
        self._pos = 0
        self.max_message_size = max_message_size

    @property
    def is_empty(self) -> bool:
        """Whether no partial message is buffered (needed at key changes)."""
        return self._pos >= len(self._data)

    def feed(self, payload: bytes) -> None:
        """Add the payload of one handshake record."""
        data, pos = self._data, self._pos
        if pos >= len(data):
            self._data = payload if type(payload) is bytes else bytes(payload)
        elif type(data) is bytearray and pos == 0:
            data += payload
        else:
            self._data = bytearray(data[pos:]) + payload
        self._pos = 0

    def next_message(self) -> HandshakeMessage | None:
        """The next complete message, or None if more bytes are needed."""
        data, pos = self._data, self._pos
        if len(data) - pos < 4:
            return None
        length = int.from_bytes(data[pos + 1 : pos + 4], "big")
        if length > self.max_message_size:
            raise DecodeError(
                f"handshake message of type {data[pos]} claims {length} bytes, over the "
                f"limit of {self.max_message_size} (max_handshake_message_size)"
            )
        end = pos + 4 + length
        if len(data) < end:
            return None
        # Slicing all of a bytes object returns it as it is, without a copy.
        raw = data[pos:end] if type(data) is bytes else bytes(data[pos:end])
        if end == len(data):
            self._data, self._pos = b"", 0  # keep no reference to what is consumed
        else:
            self._pos = end
        return HandshakeMessage(raw[0], raw[4:], raw)

    def check_key_change(self, what: str) -> None:
        """RFC 8446 §5.1: a message must not span a key change."""
        if not self.is_empty:
            raise UnexpectedMessage(
                f"{len(self._data) - self._pos} bytes of a handshake message were left before "
                f"{what}, which must align with a record boundary"
            )
