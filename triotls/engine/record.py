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
import threading
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
_TAG_LEN: Final = 16  # every TLS 1.3 AEAD (RFC 8446 §5.2)
# Plain ints: comparing with the IntEnum members costs an attribute lookup each.
_APPLICATION_DATA: Final = int(ContentType.APPLICATION_DATA)
_CHANGE_CIPHER_SPEC: Final = int(ContentType.CHANGE_CIPHER_SPEC)
#: Plaintext RecordReader.next_application_data opens in one call, at most:
#: eight full records' inner plaintexts (payload and type byte). Larger
#: results, allocated while a 256 KiB transport read is still alive, kept
#: landing on fresh pages (three times the page faults; bulk-tcp 13% slower,
#: docs/performance.rst), so a longer run of records gives several events.
_SCRATCH_SIZE: Final = 2**17 + 2**8


@final
class _Scratch(threading.local):
    """Where next_application_data opens records: one buffer per thread.

    Opening records into a buffer that is reused saves a copy of every
    payload and an allocation per record; its result is copied out before
    the call returns, so a buffer per thread (not per connection: an idle
    connection keeps none) is enough.
    """

    view: memoryview | None = None


_SCRATCH: Final = _Scratch()


@final
class _Protection:
    __slots__ = ("aead", "iv", "seq")

    def __init__(self, suite: SuiteInfo, secret: bytes) -> None:
        key, iv = traffic_key_and_iv(suite.hash_name, secret, suite.key_len)
        self.aead: AEAD = suite.aead(key)
        self.iv = int.from_bytes(iv, "big")
        self.seq = 0

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
        "_next",
        "_next_pos",
        "_pos",
        "_protection",
        "last_was_protected",
        "max_inner_plaintext",
        "skip_budget",
    )

    def __init__(self) -> None:
        # The bytes last fed (immutable: records are opened from memoryviews
        # of them, without a copy) and how far they have been parsed.
        self._buf = b""
        self._pos = 0
        # Fed bytes to parse from _next_pos once _buf is used up: see feed().
        self._next: bytes | None = None
        self._next_pos = 0
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
        return self._pos < len(self._buf) or self._next is not None

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        if type(data) is not bytes:
            data = bytes(data)  # the caller may reuse a mutable buffer
        buf = self._buf
        pos = self._pos
        left = len(buf) - pos
        if not left and self._next is None:
            # The usual case: everything before was parsed; keep the bytes as
            # they are.
            self._buf = data
            self._pos = 0
            return
        # A partial record is left. Its header passed next_record's length
        # checks, so it says how many bytes complete it: copy only that
        # record, and parse the rest of ``data`` where it is (a transport
        # read rarely ends on a record boundary; copying the whole read cost
        # 7 µs per 256 KiB).
        if left >= 5 and self._next is None:
            need = 5 + int.from_bytes(buf[pos + 3 : pos + 5], "big") - left
            # need <= 0: a whole record is still unparsed (fed twice without
            # next_record in between); then the general path below applies.
            if 0 < need < len(data):
                self._buf = buf[pos:] + data[:need]
                self._pos = 0
                self._next = data
                self._next_pos = need
                return
        self._buf = self._unparsed() + data
        self._pos = 0
        self._next = None

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
        # One pass per record, without helper calls or copies of the body:
        # this loop runs for every record of a bulk transfer.
        while True:
            buf = self._buf
            pos = self._pos
            start = pos + 5
            if len(buf) < start:
                if self._next is not None and pos == len(buf):
                    # The record completed in feed() is done: go on in the
                    # fed bytes.
                    self._buf = self._next
                    self._pos = self._next_pos
                    self._next = None
                    continue
                self._keep_unparsed_only()
                return None
            content_type, _version, length = _HEADER.unpack_from(buf, pos)
            if content_type not in _KNOWN_TYPES:
                raise UnexpectedMessage(f"record of unknown content type {content_type}")
            protection = self._protection
            if content_type != _APPLICATION_DATA or (protection is None and not self.skip_budget):
                limit = MAX_PLAINTEXT
            else:
                limit = MAX_CIPHERTEXT
            if length > limit:
                raise RecordOverflow(f"record of {length} bytes exceeds the limit of {limit}")
            end = start + length
            if len(buf) < end:
                self._keep_unparsed_only()
                return None
            self._pos = end
            if protection is None or content_type != _APPLICATION_DATA:
                if content_type == _APPLICATION_DATA and self._may_skip(length):
                    continue  # rejected early data before our read key exists
                # Plaintext records; in the protected state only change_cipher_spec
                # and (before the peer's keys) alerts may still be plaintext. The
                # connection decides which of those it accepts.
                if not length and content_type != _APPLICATION_DATA:
                    raise UnexpectedMessage(f"empty plaintext record of type {content_type}")
                self.last_was_protected = False
                return content_type, buf[start:end]
            if length < _TAG_LEN + 1:
                raise BadRecordMac(f"protected record of {length} bytes is too short to hold a tag")
            # RFC 8446 §5.3: the 64-bit sequence number, left-padded, XOR the IV.
            seq = protection.seq
            if seq >= _SEQ_LIMIT:
                raise RecordOverflow("sequence number would wrap; the connection must rekey")
            protection.seq = seq + 1
            try:
                inner = protection.aead.decrypt(
                    (protection.iv ^ seq).to_bytes(12, "big"),
                    memoryview(buf)[start:end],
                    buf[pos:start],
                )
            except InvalidTag:
                if self._may_skip(length):
                    protection.seq = seq  # the dropped record used no sequence number
                    continue
                raise BadRecordMac(
                    "a protected record failed authentication (wrong key or tampered data)"
                ) from None
            self.skip_budget = 0
            if len(inner) > self.max_inner_plaintext:
                raise RecordOverflow(
                    f"decrypted record of {len(inner)} bytes exceeds the limit "
                    f"of {self.max_inner_plaintext}"
                )
            # RFC 8446 §5.4: strip zero padding; the last non-zero byte is the
            # type. The body holds at least one byte past the tag (checked above).
            inner_type = inner[-1]
            if inner_type:
                payload = inner[:-1]
            else:
                stripped = inner.rstrip(b"\x00")
                if not stripped:
                    raise UnexpectedMessage("protected record has no content type (all padding)")
                inner_type = stripped[-1]
                payload = stripped[:-1]
            if inner_type not in _KNOWN_TYPES or inner_type == _CHANGE_CIPHER_SPEC:
                raise UnexpectedMessage(f"protected record of content type {inner_type}")
            self.last_was_protected = True
            return inner_type, payload

    def next_application_data(self) -> bytes | None:
        """The payloads of the next protected application data records, joined.

        Opens the complete records that follow, while each is an ordinary
        protected application data record (authenticated, not empty, not
        padded, within ``max_inner_plaintext``), straight into one buffer.
        It stops before the first record that is anything else, leaving it
        (and its sequence number) for :meth:`next_record`, which raises its
        errors or returns it; so records that would fail, control records
        and whatever follows them are never opened here.

        Returns:
            the joined payloads, or None if the next record is not such a
            record, is incomplete or is the only complete one (next_record
            opens a lone record without the buffer); nothing is consumed then.
        """
        protection = self._protection
        if protection is None or self.skip_budget:
            return None
        buf = self._buf
        pos = self._pos
        if self._next is not None:
            if pos < len(buf):
                return None  # the record completed in feed(): next_record's
            # Go on in the fed bytes.
            self._buf = buf = self._next
            self._pos = pos = self._next_pos
            self._next = None
        # Unless two complete records are here, next_record opens the one
        # there may be as it is, for less (a small message, small reads).
        if len(buf) < pos + 5:
            return None
        second = pos + 5 + int.from_bytes(buf[pos + 3 : pos + 5], "big")
        if len(buf) < second + 5 or len(buf) < second + 5 + int.from_bytes(
            buf[second + 3 : second + 5], "big"
        ):
            return None
        out = _SCRATCH.view
        if out is None:
            out = _SCRATCH.view = memoryview(bytearray(_SCRATCH_SIZE))
        room = len(out)
        filled = 0
        max_inner = self.max_inner_plaintext
        decrypt_into = protection.aead.decrypt_into
        iv = protection.iv
        view = memoryview(buf)
        # One pass per record; every check of next_record's protected path
        # is here too, and a record that fails one is left for next_record.
        while True:
            start = pos + 5
            if len(buf) < start:
                break
            content_type, _version, length = _HEADER.unpack_from(buf, pos)
            if content_type != _APPLICATION_DATA or not _TAG_LEN < length <= MAX_CIPHERTEXT:
                break
            end = start + length
            size = length - _TAG_LEN  # the inner plaintext
            if len(buf) < end or size > room - filled or size > max_inner:
                break
            seq = protection.seq
            if seq >= _SEQ_LIMIT:
                break
            try:
                decrypt_into(
                    (iv ^ seq).to_bytes(12, "big"),
                    view[start:end],
                    buf[pos:start],
                    out[filled : filled + size],
                )
            except InvalidTag:
                break
            # RFC 8446 §5.4: the type byte comes last; padding or another
            # type (or an empty record, for the idle count) is next_record's.
            if size == 1 or out[filled + size - 1] != _APPLICATION_DATA:
                break
            protection.seq = seq + 1
            self._pos = pos = end
            filled += size - 1  # the next payload overwrites the type byte
        if not filled:
            return None
        self.last_was_protected = True
        return bytes(out[:filled])

    def _keep_unparsed_only(self) -> None:
        # While waiting for more bytes, hold at most a partial record, not
        # the whole transport read it came in (up to 256 KiB a connection).
        if self._pos:
            self._buf = self._buf[self._pos :]
            self._pos = 0

    def _may_skip(self, length: int) -> bool:
        if length > self.skip_budget:
            return False
        self.skip_budget -= length
        return True

    def take_unprocessed(self) -> bytes:
        """Remove and return the bytes not parsed yet (for ``unwrap``)."""
        rest = self._unparsed()
        self._buf = b""
        self._pos = 0
        self._next = None
        return rest

    def _unparsed(self) -> bytes:
        rest = self._buf[self._pos :]
        if self._next is not None:
            rest += self._next[self._next_pos :]
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
        # RFC 8446 §5.4: content, type byte and padding together fit 2^14 + 1,
        # and RFC 8449 §4: within the peer's record_size_limit too, which
        # max_fragment + 1 is. Padding gives way to at least a byte of content.
        room = min(step, MAX_PLAINTEXT)
        padding = min(self.padding, room - 1)
        trailer = bytes([content_type]) + bytes(padding)
        step = room - padding
        # Copies and reallocations cost more than the cipher here (DESIGN.md,
        # "Performance notes"): each fragment is copied once into its inner
        # plaintext and each record once into the result, whose size is known
        # when it is joined (growing a bytearray record by record cost 50 µs
        # per 64 KiB, against 15 µs this way).
        if len(data) <= step:
            inner = data + trailer
            header = _HEADER.pack(_APPLICATION_DATA, 0x0303, len(inner) + 16)
            return header + protection.aead.encrypt(protection.nonce(), inner, header)
        parts: list[bytes] = []
        with memoryview(data) as view:
            for start in range(0, len(data), step):
                inner = b"".join((view[start : start + step], trailer))
                header = _HEADER.pack(_APPLICATION_DATA, 0x0303, len(inner) + 16)
                parts.append(header)
                parts.append(protection.aead.encrypt(protection.nonce(), inner, header))
        return b"".join(parts)


def decode_alert(body: bytes) -> tuple[int, int]:
    """An alert record's (level, description)."""
    if len(body) != 2:
        raise DecodeError(f"alert record of {len(body)} bytes, expected 2")
    return body[0], body[1]
