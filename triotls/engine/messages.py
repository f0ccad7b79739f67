"""Handshake messages (RFC 8446 §4): encode and decode, nothing else.

Field names are the RFC's. Offered code points stay plain ints.
"""

from __future__ import annotations

import struct
from collections.abc import ItemsView, Mapping
from dataclasses import dataclass, field
from typing import Final

from ..errors import DecodeError, IllegalParameter
from .codec import Reader, Writer
from .enums import HandshakeType
from .extensions import MessageContext, decode_extensions, encode_extensions

__all__ = [
    "HELLO_RETRY_REQUEST_RANDOM",
    "Certificate",
    "CertificateEntry",
    "CertificateRequest",
    "CertificateVerify",
    "ClientHello",
    "EncryptedExtensions",
    "Finished",
    "HandshakeMessage",
    "KeyUpdate",
    "NewSessionTicket",
    "ServerHello",
    "frame",
]

# RFC 8446 §4.1.3: a HelloRetryRequest is a ServerHello with this random,
# SHA-256("HelloRetryRequest").
HELLO_RETRY_REQUEST_RANDOM: Final = bytes.fromhex(
    "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"
)

_HEADER: Final = struct.Struct(">B3s")


@dataclass(frozen=True, slots=True)
class HandshakeMessage:
    """One framed handshake message: its type, body and exact wire bytes."""

    msg_type: int
    body: bytes
    raw: bytes


def frame(msg_type: int, body: bytes) -> bytes:
    """Prefix ``body`` with its handshake header (type, uint24 length)."""
    return _HEADER.pack(msg_type, len(body).to_bytes(3, "big")) + body


def _ext_items(exts: Mapping[int, bytes]) -> ItemsView[int, bytes]:
    return exts.items()


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientHello:
    """ClientHello (RFC 8446 §4.1.2)."""

    legacy_version: int = 0x0303
    random: bytes
    legacy_session_id: bytes
    cipher_suites: tuple[int, ...]
    legacy_compression_methods: bytes = b"\x00"
    extensions: dict[int, bytes] = field(default_factory=dict)

    @classmethod
    def decode(cls, body: bytes) -> ClientHello:
        """Parse a ClientHello body."""
        r = Reader(body, "ClientHello")
        legacy_version = r.u16("legacy_version")
        random = r.read(32, "random")
        session_id = r.vec8("legacy_session_id", max_len=32)
        suites = r.u16_list("cipher_suites")
        compression = r.vec8("legacy_compression_methods", min_len=1)
        # RFC 8446 §4.1.2: a TLS 1.3 ClientHello always carries extensions
        # (supported_versions at least); a block-less one is a TLS 1.2 hello,
        # and the missing extension is reported by the server state.
        exts = decode_extensions(r, "CH") if not r.is_at_end() else {}
        r.expect_end()
        return cls(
            legacy_version=legacy_version,
            random=random,
            legacy_session_id=session_id,
            cipher_suites=suites,
            legacy_compression_methods=compression,
            extensions=exts,
        )

    def encode(self) -> bytes:
        """The body of this ClientHello."""
        w = Writer()
        w.u16(self.legacy_version)
        w.write(self.random)
        w.vec8(self.legacy_session_id)
        w.u16_list(self.cipher_suites)
        w.vec8(self.legacy_compression_methods)
        encode_extensions(w, _ext_items(self.extensions))
        return w.getvalue()


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerHello:
    """ServerHello, or HelloRetryRequest when ``random`` is the HRR value."""

    legacy_version: int = 0x0303
    random: bytes
    legacy_session_id_echo: bytes
    cipher_suite: int
    legacy_compression_method: int = 0
    extensions: dict[int, bytes] = field(default_factory=dict)

    @property
    def is_hello_retry_request(self) -> bool:
        """Whether this is a HelloRetryRequest (RFC 8446 §4.1.3)."""
        return self.random == HELLO_RETRY_REQUEST_RANDOM

    @classmethod
    def decode(cls, body: bytes) -> ServerHello:
        """Parse a ServerHello (or HelloRetryRequest) body."""
        r = Reader(body, "ServerHello")
        legacy_version = r.u16("legacy_version")
        random = r.read(32, "random")
        session_id = r.vec8("legacy_session_id_echo", max_len=32)
        suite = r.u16("cipher_suite")
        compression = r.u8("legacy_compression_method")
        context: MessageContext = "HRR" if random == HELLO_RETRY_REQUEST_RANDOM else "SH"
        exts = decode_extensions(r, context) if not r.is_at_end() else {}
        r.expect_end()
        return cls(
            legacy_version=legacy_version,
            random=random,
            legacy_session_id_echo=session_id,
            cipher_suite=suite,
            legacy_compression_method=compression,
            extensions=exts,
        )

    def encode(self) -> bytes:
        """The body of this ServerHello."""
        w = Writer()
        w.u16(self.legacy_version)
        w.write(self.random)
        w.vec8(self.legacy_session_id_echo)
        w.u16(self.cipher_suite)
        w.u8(self.legacy_compression_method)
        encode_extensions(w, _ext_items(self.extensions))
        return w.getvalue()


@dataclass(frozen=True, slots=True, kw_only=True)
class EncryptedExtensions:
    """EncryptedExtensions (RFC 8446 §4.3.1)."""

    extensions: dict[int, bytes] = field(default_factory=dict)

    @classmethod
    def decode(cls, body: bytes) -> EncryptedExtensions:
        """Parse an EncryptedExtensions body."""
        r = Reader(body, "EncryptedExtensions")
        exts = decode_extensions(r, "EE")
        r.expect_end()
        return cls(extensions=exts)

    def encode(self) -> bytes:
        """The body of this message."""
        w = Writer()
        encode_extensions(w, _ext_items(self.extensions))
        return w.getvalue()


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateRequest:
    """CertificateRequest (RFC 8446 §4.3.2)."""

    certificate_request_context: bytes = b""
    extensions: dict[int, bytes] = field(default_factory=dict)

    @classmethod
    def decode(cls, body: bytes) -> CertificateRequest:
        """Parse a CertificateRequest body."""
        r = Reader(body, "CertificateRequest")
        context = r.vec8("certificate_request_context")
        exts = decode_extensions(r, "CR", min_len=2)
        r.expect_end()
        return cls(certificate_request_context=context, extensions=exts)

    def encode(self) -> bytes:
        """The body of this message."""
        w = Writer()
        w.vec8(self.certificate_request_context)
        encode_extensions(w, _ext_items(self.extensions))
        return w.getvalue()


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateEntry:
    """One certificate (DER) of a chain and its per-entry extensions."""

    cert_data: bytes
    extensions: dict[int, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Certificate:
    """Certificate (RFC 8446 §4.4.2), X.509 certificate type only."""

    certificate_request_context: bytes = b""
    certificate_list: tuple[CertificateEntry, ...] = ()

    @classmethod
    def decode(cls, body: bytes) -> Certificate:
        """Parse a Certificate body."""
        r = Reader(body, "Certificate")
        context = r.vec8("certificate_request_context")
        entries_r = r.sub24("certificate_list")
        r.expect_end()
        entries: list[CertificateEntry] = []
        while not entries_r.is_at_end():
            cert_data = entries_r.vec24("cert_data", min_len=1)
            exts = decode_extensions(entries_r, "CT")
            entries.append(CertificateEntry(cert_data=cert_data, extensions=exts))
        return cls(certificate_request_context=context, certificate_list=tuple(entries))

    def encode(self) -> bytes:
        """The body of this message."""
        w = Writer()
        w.vec8(self.certificate_request_context)
        with w.prefixed24():
            for entry in self.certificate_list:
                w.vec24(entry.cert_data)
                encode_extensions(w, _ext_items(entry.extensions))
        return w.getvalue()


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateVerify:
    """CertificateVerify (RFC 8446 §4.4.3)."""

    algorithm: int
    signature: bytes

    @classmethod
    def decode(cls, body: bytes) -> CertificateVerify:
        """Parse a CertificateVerify body."""
        r = Reader(body, "CertificateVerify")
        algorithm = r.u16("algorithm")
        signature = r.vec16("signature", min_len=1)
        r.expect_end()
        return cls(algorithm=algorithm, signature=signature)

    def encode(self) -> bytes:
        """The body of this message."""
        w = Writer()
        w.u16(self.algorithm)
        w.vec16(self.signature)
        return w.getvalue()


@dataclass(frozen=True, slots=True, kw_only=True)
class Finished:
    """Finished (RFC 8446 §4.4.4): verify_data is the whole body."""

    verify_data: bytes

    @classmethod
    def decode(cls, body: bytes, hash_len: int) -> Finished:
        """Parse a Finished body of exactly ``hash_len`` bytes."""
        if len(body) != hash_len:
            raise DecodeError(f"Finished is {len(body)} bytes, expected {hash_len}")
        return cls(verify_data=body)

    def encode(self) -> bytes:
        """The body of this message."""
        return self.verify_data


@dataclass(frozen=True, slots=True, kw_only=True)
class NewSessionTicket:
    """NewSessionTicket (RFC 8446 §4.6.1)."""

    ticket_lifetime: int
    ticket_age_add: int
    ticket_nonce: bytes
    ticket: bytes
    extensions: dict[int, bytes] = field(default_factory=dict)

    @classmethod
    def decode(cls, body: bytes) -> NewSessionTicket:
        """Parse a NewSessionTicket body."""
        r = Reader(body, "NewSessionTicket")
        lifetime = r.u32("ticket_lifetime")
        age_add = r.u32("ticket_age_add")
        nonce = r.vec8("ticket_nonce")
        ticket = r.vec16("ticket", min_len=1)
        exts = decode_extensions(r, "NST")
        r.expect_end()
        if lifetime > 604_800:
            # RFC 8446 §4.6.1: servers MUST NOT use any value above 7 days.
            raise IllegalParameter(f"ticket_lifetime {lifetime}s exceeds the 7-day maximum")
        return cls(
            ticket_lifetime=lifetime,
            ticket_age_add=age_add,
            ticket_nonce=nonce,
            ticket=ticket,
            extensions=exts,
        )

    def encode(self) -> bytes:
        """The body of this message."""
        w = Writer()
        w.u32(self.ticket_lifetime)
        w.u32(self.ticket_age_add)
        w.vec8(self.ticket_nonce)
        w.vec16(self.ticket)
        encode_extensions(w, _ext_items(self.extensions))
        return w.getvalue()


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyUpdate:
    """KeyUpdate (RFC 8446 §4.6.3)."""

    request_update: int

    @classmethod
    def decode(cls, body: bytes) -> KeyUpdate:
        """Parse a KeyUpdate body."""
        r = Reader(body, "KeyUpdate")
        request = r.u8("request_update")
        r.expect_end()
        if request not in (0, 1):
            # RFC 8446 §4.6.3: any other value is illegal_parameter.
            raise IllegalParameter(f"KeyUpdate request_update {request} is neither 0 nor 1")
        return cls(request_update=request)

    def encode(self) -> bytes:
        """The body of this message."""
        return bytes([self.request_update])


MESSAGE_NAMES: Final[Mapping[int, str]] = {t.value: t.name for t in HandshakeType}
