"""Read the plaintext hellos out of a captured TLS 1.3 byte stream.

The interop driver records the raw bytes each side sent. This module reads the
unencrypted start of such a stream (ClientHello, HelloRetryRequest,
ServerHello) so a test can check what happened on the wire without trusting
the engine under test: whether the server asked for a retry, which key shares
the client offered, which group the server picked.

It is deliberately small and independent of ``triotls.engine``; it parses only
what the tests need and stops at the first record that is not a plaintext
handshake or ChangeCipherSpec record.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Final

__all__ = [
    "HELLO_RETRY_REQUEST_RANDOM",
    "ClientHelloInfo",
    "ServerHelloInfo",
    "client_hello_from_message",
    "client_hellos",
    "server_hello_from_message",
    "server_hellos",
]

# RFC 8446 §4.1.3: a HelloRetryRequest is a ServerHello whose random is
# SHA-256("HelloRetryRequest").
HELLO_RETRY_REQUEST_RANDOM: Final = hashlib.sha256(b"HelloRetryRequest").digest()

_HANDSHAKE: Final = 22
_CHANGE_CIPHER_SPEC: Final = 20
_CLIENT_HELLO: Final = 1
_SERVER_HELLO: Final = 2
_EXT_SERVER_NAME: Final = 0x0000
_EXT_SUPPORTED_GROUPS: Final = 0x000A
_EXT_ALPN: Final = 0x0010
_EXT_SUPPORTED_VERSIONS: Final = 0x002B
_EXT_KEY_SHARE: Final = 0x0033


class WireFormatError(ValueError):
    """The captured bytes are not the TLS the parser expected."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerHelloInfo:
    """What a ServerHello or HelloRetryRequest selected.

    Attributes:
        is_hello_retry_request: the random was the HRR sentinel.
        cipher_suite: the selected suite code point.
        group: the key_share group (the selected group for an HRR), if present.
        selected_version: the supported_versions value, if present.
    """

    is_hello_retry_request: bool
    cipher_suite: int
    group: int | None
    selected_version: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientHelloInfo:
    """What a ClientHello offered (code points as plain ints)."""

    cipher_suites: tuple[int, ...]
    supported_groups: tuple[int, ...]
    key_share_groups: tuple[int, ...]
    alpn_protocols: tuple[str, ...]
    server_name: str | None
    supported_versions: tuple[int, ...]


def server_hellos(stream: bytes) -> list[ServerHelloInfo]:
    """Return every ServerHello/HelloRetryRequest at the start of ``stream``.

    Args:
        stream: bytes a server sent, from the first byte on.

    Returns:
        The hellos in order: ``[hrr, server_hello]`` after a retry, else one.

    Raises:
        WireFormatError: the plaintext part is malformed.
    """
    return [
        _parse_server_hello(body)
        for msg_type, body in _plaintext_handshake_messages(stream)
        if msg_type == _SERVER_HELLO
    ]


def client_hellos(stream: bytes) -> list[ClientHelloInfo]:
    """Return every ClientHello at the start of ``stream`` (two after an HRR).

    Args:
        stream: bytes a client sent, from the first byte on.

    Raises:
        WireFormatError: the plaintext part is malformed.
    """
    return [
        _parse_client_hello(body)
        for msg_type, body in _plaintext_handshake_messages(stream)
        if msg_type == _CLIENT_HELLO
    ]


def server_hello_from_message(message: bytes) -> ServerHelloInfo:
    """Parse one ServerHello handshake message (4-byte header included).

    Raises:
        WireFormatError: it is not a well-formed ServerHello.
    """
    return _parse_server_hello(_message_body(message, _SERVER_HELLO))


def client_hello_from_message(message: bytes) -> ClientHelloInfo:
    """Parse one ClientHello handshake message (4-byte header included).

    Raises:
        WireFormatError: it is not a well-formed ClientHello.
    """
    return _parse_client_hello(_message_body(message, _CLIENT_HELLO))


def _message_body(message: bytes, expected_type: int) -> bytes:
    r = _Reader(message, "handshake message")
    msg_type = r.u8()
    if msg_type != expected_type:
        raise WireFormatError(f"handshake type {msg_type}, expected {expected_type}")
    body = r.read(r.u24())
    if not r.at_end():
        raise WireFormatError("trailing bytes after the handshake message")
    return body


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self._data = data
        self._pos = 0
        self._what = what

    def read(self, n: int) -> bytes:
        if self._pos + n > len(self._data):
            raise WireFormatError(f"{self._what}: need {n} bytes at offset {self._pos}")
        chunk = self._data[self._pos : self._pos + n]
        self._pos += n
        return chunk

    def u8(self) -> int:
        return self.read(1)[0]

    def u16(self) -> int:
        value: int = struct.unpack("!H", self.read(2))[0]
        return value

    def u24(self) -> int:
        return int.from_bytes(self.read(3), "big")

    def vec8(self) -> bytes:
        return self.read(self.u8())

    def vec16(self) -> bytes:
        return self.read(self.u16())

    def at_end(self) -> bool:
        return self._pos >= len(self._data)

    def remaining(self) -> int:
        return len(self._data) - self._pos


def _plaintext_handshake_messages(stream: bytes) -> list[tuple[int, bytes]]:
    handshake = bytearray()
    records = _Reader(stream, "record layer")
    while records.remaining() >= 5:
        content_type = records.u8()
        records.u16()  # legacy_record_version
        length = records.u16()
        if records.remaining() < length:
            break  # a capture that ends inside a record
        fragment = records.read(length)
        if content_type == _CHANGE_CIPHER_SPEC:
            continue
        if content_type != _HANDSHAKE:
            break  # encrypted records (or an alert) follow the hellos
        handshake += fragment
    messages: list[tuple[int, bytes]] = []
    reader = _Reader(bytes(handshake), "handshake")
    while not reader.at_end():
        msg_type = reader.u8()
        messages.append((msg_type, reader.read(reader.u24())))
    return messages


def _extensions(reader: _Reader) -> dict[int, bytes]:
    exts: dict[int, bytes] = {}
    block = _Reader(reader.vec16(), "extensions")
    while not block.at_end():
        ext_type = block.u16()
        exts[ext_type] = block.vec16()
    return exts


def _parse_server_hello(body: bytes) -> ServerHelloInfo:
    r = _Reader(body, "ServerHello")
    r.u16()  # legacy_version
    random = r.read(32)
    r.vec8()  # legacy_session_id_echo
    cipher_suite = r.u16()
    r.u8()  # legacy_compression_method
    exts = _extensions(r) if not r.at_end() else {}
    is_hrr = random == HELLO_RETRY_REQUEST_RANDOM
    group = None
    if _EXT_KEY_SHARE in exts:
        # HRR: KeyShareHelloRetryRequest is just the group; ServerHello:
        # KeyShareEntry (group, key_exchange).
        group = _Reader(exts[_EXT_KEY_SHARE], "key_share").u16()
    version = None
    if _EXT_SUPPORTED_VERSIONS in exts:
        version = _Reader(exts[_EXT_SUPPORTED_VERSIONS], "supported_versions").u16()
    return ServerHelloInfo(
        is_hello_retry_request=is_hrr,
        cipher_suite=cipher_suite,
        group=group,
        selected_version=version,
    )


def _parse_client_hello(body: bytes) -> ClientHelloInfo:
    r = _Reader(body, "ClientHello")
    r.u16()  # legacy_version
    r.read(32)  # random
    r.vec8()  # legacy_session_id
    suites = _u16_list(r.vec16(), "cipher_suites")
    r.vec8()  # legacy_compression_methods
    exts = _extensions(r)

    groups: tuple[int, ...] = ()
    if _EXT_SUPPORTED_GROUPS in exts:
        groups = _u16_list(_Reader(exts[_EXT_SUPPORTED_GROUPS], "groups").vec16(), "groups")

    shares: list[int] = []
    if _EXT_KEY_SHARE in exts:
        entries = _Reader(_Reader(exts[_EXT_KEY_SHARE], "key_share").vec16(), "key_share")
        while not entries.at_end():
            shares.append(entries.u16())
            entries.vec16()

    alpn: list[str] = []
    if _EXT_ALPN in exts:
        names = _Reader(_Reader(exts[_EXT_ALPN], "alpn").vec16(), "alpn")
        while not names.at_end():
            alpn.append(names.vec8().decode("ascii", "replace"))

    server_name = None
    if _EXT_SERVER_NAME in exts:
        names = _Reader(_Reader(exts[_EXT_SERVER_NAME], "server_name").vec16(), "server_name")
        while not names.at_end():
            name_type = names.u8()
            name = names.vec16()
            if name_type == 0:
                server_name = name.decode("ascii", "replace")

    versions: tuple[int, ...] = ()
    if _EXT_SUPPORTED_VERSIONS in exts:
        raw = _Reader(exts[_EXT_SUPPORTED_VERSIONS], "supported_versions").vec8()
        versions = _u16_list(raw, "supported_versions")

    return ClientHelloInfo(
        cipher_suites=suites,
        supported_groups=groups,
        key_share_groups=tuple(shares),
        alpn_protocols=tuple(alpn),
        server_name=server_name,
        supported_versions=versions,
    )


def _u16_list(data: bytes, what: str) -> tuple[int, ...]:
    if len(data) % 2:
        raise WireFormatError(f"{what}: odd length {len(data)}")
    return tuple(v for (v,) in struct.iter_unpack("!H", data))
