"""Record framing and protection (RFC 8446 §5).

Theory of operation: :class:`RecordReader` holds the bytes received but not
yet parsed, at most one partial record (2^14 + 256 + 5 bytes) past the last
complete one the caller has taken; :meth:`RecordReader.next_record` returns
one (content type, plaintext) at a time, decrypting once a key is installed.
:class:`RecordWriter` frames and seals outgoing data, fragmenting at the
negotiated limit. Sequence numbers never wrap: past the AEAD limit the
connection performs a KeyUpdate (``wants_key_update``).
"""

from __future__ import annotations

import struct
from typing import Final, final

from cryptography.exceptions import InvalidTag

from ..errors import BadRecordMac, DecodeError, RecordOverflow, UnexpectedMessage
from .enums import ContentType
from .keyschedule import traffic_key_and_iv
from .suites import AEAD, SuiteInfo

__all__ = ["MAX_PLAINTEXT", "RecordReader", "RecordWriter"]

MAX_PLAINTEXT: Final = 2**14
# RFC 8446 §5.2: TLSCiphertext.length MUST NOT exceed 2^14 + 256.
MAX_CIPHERTEXT: Final = 2**14 + 256
_HEADER: Final = struct.Struct(">BHH")
# RFC 8446 §5.5: AES-GCM may protect at most 2^24.5 full records per key; we
# rekey well before that. ChaCha20-Poly1305's limit is far beyond any run.
KEY_UPDATE_AFTER: Final = 2**24
_SEQ_LIMIT: Final = 2**64 - 1


@final
class _Protection:
    __slots__ = ("aead", "iv", "seq", "tag_len")

    def __init__(self, suite: SuiteInfo, secret: bytes) -> None:
        key, iv = traffic_key_and_iv(suite.hash_name, secret, suite.key_len)
        self.aead: AEAD = suite.aead(key)
        self.iv = int.from_bytes(iv, "big")
        self.seq = 0
        self.tag_len = 16

    def nonce(self) -> bytes:
        # RFC 8446 §5.3: the 64-bit sequence number, left-padded, XOR the IV.
        seq = self.seq
        if seq >= _SEQ_LIMIT:
            raise RecordOverflow("sequence number would wrap; the connection must rekey")
        self.seq = seq + 1
        return (self.iv ^ seq).to_bytes(12, "big")


@final
class RecordReader:
    """Splits received bytes into records and opens the protected ones."""

    __slots__ = (
        "_buf",
        "_pos",
        "_protection",
        "last_was_protected",
        "max_inner_plaintext",
        "skip_budget",
    )

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._protection: _Protection | None = None
        # RFC 8449 §4: the limit we announced, including the content type byte.
        self.max_inner_plaintext = MAX_PLAINTEXT + 1
        self.last_was_protected = False
        # RFC 8446 §4.2.10: a server that rejects 0-RTT drops the client's
        # early data records (which it cannot decrypt) up to this many bytes.
        self.skip_budget = 0

    @property
    def is_protected(self) -> bool:
        """Whether records are decrypted (a read key is installed)."""
        return self._protection is not None

    @property
    def has_pending(self) -> bool:
        """Whether unparsed bytes remain (a partial record)."""
        return self._pos < len(self._buf)

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def set_key(self, suite: SuiteInfo, secret: bytes) -> None:
        """Decrypt from the next record on with this traffic secret."""
        self._protection = _Protection(suite, secret)

    def next_record(self) -> tuple[int, bytes] | None:
        """The next record's (content type, plaintext), or None if incomplete.

        Raises:
            RecordOverflow: a record is longer than allowed.
            BadRecordMac: a protected record failed authentication.
            UnexpectedMessage: a record has a type not allowed here.
            DecodeError: a protected record's inner plaintext has no type.
        """
        while True:
            record = self._next_raw()
            if record is None:
                return None
            content_type, header, body = record
            protection = self._protection
            if protection is None or content_type != ContentType.APPLICATION_DATA:
                if content_type == ContentType.APPLICATION_DATA and self._may_skip(len(body)):
                    continue  # rejected early data before our read key exists
                # Plaintext records; in the protected state only change_cipher_spec
                # and (before the peer's keys) alerts may still be plaintext. The
                # connection decides which of those it accepts.
                if not body and content_type != ContentType.APPLICATION_DATA:
                    raise UnexpectedMessage(f"empty plaintext record of type {content_type}")
                self.last_was_protected = False
                return content_type, body
            if len(body) < protection.tag_len + 1:
                raise BadRecordMac(
                    f"protected record of {len(body)} bytes is too short to hold a tag"
                )
            try:
                inner = protection.aead.decrypt(protection.nonce(), body, header)
            except InvalidTag:
                if self._may_skip(len(body)):
                    protection.seq -= 1  # the dropped record used no sequence number
                    continue
                raise BadRecordMac(
                    "a protected record failed authentication (wrong key or tampered data)"
                ) from None
            self.skip_budget = 0
            return self._inner(inner)

    def _may_skip(self, length: int) -> bool:
        if length > self.skip_budget:
            return False
        self.skip_budget -= length
        return True

    def _next_raw(self) -> tuple[int, bytes, bytes] | None:
        buf = self._buf
        pos = self._pos
        if len(buf) - pos < 5:
            return None
        content_type, _version, length = _HEADER.unpack_from(buf, pos)
        if content_type not in _KNOWN_TYPES:
            raise UnexpectedMessage(f"record of unknown content type {content_type}")
        plaintext = (self._protection is None and not self.skip_budget) or content_type != 23
        limit = MAX_PLAINTEXT if plaintext else MAX_CIPHERTEXT
        if length > limit:
            raise RecordOverflow(f"record of {length} bytes exceeds the limit of {limit}")
        end = pos + 5 + length
        if len(buf) < end:
            return None
        header = bytes(buf[pos : pos + 5])
        body = bytes(buf[pos + 5 : end])
        self._pos = end
        return content_type, header, body

    def _inner(self, inner: bytes) -> tuple[int, bytes]:
        if len(inner) > self.max_inner_plaintext:
            raise RecordOverflow(
                f"decrypted record of {len(inner)} bytes exceeds the limit "
                f"of {self.max_inner_plaintext}"
            )
        # RFC 8446 §5.4: strip zero padding; the last non-zero byte is the type.
        stripped = inner.rstrip(b"\x00")
        if not stripped:
            raise UnexpectedMessage("protected record has no content type (all padding)")
        inner_type = stripped[-1]
        if inner_type not in _KNOWN_TYPES or inner_type == ContentType.CHANGE_CIPHER_SPEC:
            raise UnexpectedMessage(f"protected record of content type {inner_type}")
        self.last_was_protected = True
        return inner_type, stripped[:-1]

    def take_unprocessed(self) -> bytes:
        """Remove and return the bytes not parsed yet (for ``unwrap``)."""
        rest = bytes(self._buf[self._pos :])
        self._buf = bytearray()
        self._pos = 0
        return rest


_KNOWN_TYPES: Final = frozenset(
    {
        ContentType.CHANGE_CIPHER_SPEC,
        ContentType.ALERT,
        ContentType.HANDSHAKE,
        ContentType.APPLICATION_DATA,
    }
)


@final
class RecordWriter:
    """Frames and seals outgoing records."""

    __slots__ = ("_protection", "max_fragment", "padding")

    def __init__(self) -> None:
        self._protection: _Protection | None = None
        self.max_fragment = MAX_PLAINTEXT
        self.padding = 0

    @property
    def is_protected(self) -> bool:
        """Whether records are encrypted (a write key is installed)."""
        return self._protection is not None

    @property
    def wants_key_update(self) -> bool:
        """Whether this key has protected enough records that it should be replaced."""
        return self._protection is not None and self._protection.seq >= KEY_UPDATE_AFTER

    def set_key(self, suite: SuiteInfo, secret: bytes) -> None:
        """Encrypt from the next record on with this traffic secret."""
        self._protection = _Protection(suite, secret)

    def clear_key(self) -> None:
        """Write plaintext records again (a client's second ClientHello after 0-RTT)."""
        self._protection = None

    def seal(self, content_type: int, data: bytes, legacy_version: int = 0x0303) -> bytes:
        """Frame (and, with a key, encrypt) ``data`` as one or more records."""
        protection = self._protection
        step = self.max_fragment
        if protection is None:
            out = bytearray()
            for start in range(0, max(len(data), 1), step):
                chunk = data[start : start + step]
                out += _HEADER.pack(content_type, legacy_version, len(chunk))
                out += chunk
            return bytes(out)
        trailer = bytes([content_type]) + bytes(self.padding)
        # RFC 8446 §5.4: content, type byte and padding together fit 2^14 + 1.
        step = max(1, min(step, MAX_PLAINTEXT - self.padding))
        # Copies and reallocations cost more than the cipher here (DESIGN.md,
        # "Performance notes"): each fragment is copied once into its inner
        # plaintext and each record once into the result, whose size is known
        # when it is joined (growing a bytearray record by record cost 50 µs
        # per 64 KiB, against 15 µs this way).
        if len(data) <= step:
            inner = data + trailer
            header = _HEADER.pack(ContentType.APPLICATION_DATA, 0x0303, len(inner) + 16)
            return header + protection.aead.encrypt(protection.nonce(), inner, header)
        parts: list[bytes] = []
        with memoryview(data) as view:
            for start in range(0, len(data), step):
                inner = b"".join((view[start : start + step], trailer))
                header = _HEADER.pack(ContentType.APPLICATION_DATA, 0x0303, len(inner) + 16)
                parts.append(header)
                parts.append(protection.aead.encrypt(protection.nonce(), inner, header))
        return b"".join(parts)


def decode_alert(body: bytes) -> tuple[int, int]:
    """An alert record's (level, description)."""
    if len(body) != 2:
        raise DecodeError(f"alert record of {len(body)} bytes, expected 2")
    return body[0], body[1]
