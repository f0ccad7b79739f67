"""Review round 6: record layer fast paths, PSK binder, HMAC/HKDF, shared X25519 keys.

The first tests each exposed a bug this review found (HKDF-Expand refusing
its 255th block, an empty protected alert answered with decode_error,
padding left out of the record size limits); they failed before the fixes.
The other tests pin behaviour the review checked by hand:
the coalesced application-data path against the record-by-record one on
mixed, hostile record streams, the per-thread scratch buffer, and the PSK
binder recomputed from RFC 8446 alone.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import struct
from collections.abc import Sequence
from dataclasses import replace
from typing import Final

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.engine_pairs import (
    FixedClock,
    alert_seen_by,
    handshake,
    make_pair,
    pump,
    split_records,
)
from triotls.engine.enums import (
    AlertDescription,
    CipherSuite,
    ContentType,
    ExtensionType,
    HandshakeType,
    NamedGroup,
)
from triotls.engine.events import NewSessionTicketReceived
from triotls.engine.extensions import decode_pre_shared_key_ch
from triotls.engine.keyschedule import hkdf_expand
from triotls.engine.messages import ClientHello, ServerHello, frame
from triotls.engine.record import MAX_PLAINTEXT, RecordReader, RecordWriter
from triotls.engine.suites import CIPHER_SUITES, SuiteInfo, start_key_exchanges
from triotls.engine.tickets import ClientSession, TicketKeys
from triotls.errors import TLSError, UnexpectedMessage

SECRET: Final = bytes(range(32))
AES128: Final[SuiteInfo] = CIPHER_SUITES[CipherSuite.TLS_AES_128_GCM_SHA256]
AES256: Final[SuiteInfo] = CIPHER_SUITES[CipherSuite.TLS_AES_256_GCM_SHA384]
CHACHA: Final[SuiteInfo] = CIPHER_SUITES[CipherSuite.TLS_CHACHA20_POLY1305_SHA256]
_HASHES: Final = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384()}


# =========================================================================================
# Findings (each failed before its bug was fixed)
# =========================================================================================


@pytest.mark.parametrize("hash_name", ["sha256", "sha384"])
def test_hkdf_expand_reaches_255_blocks_as_rfc5869_allows(hash_name: str) -> None:
    # RFC 5869 §2.3: L <= 255 * HashLen; T(255) is the last block.
    size = hashlib.new(hash_name).digest_size
    prk = bytes(range(size))
    for length in (254 * size + 1, 255 * size):
        expected = HKDFExpand(_HASHES[hash_name], length, b"info").derive(prk)
        assert hkdf_expand(hash_name, prk, b"info", length) == expected


def test_export_keying_material_of_the_largest_length_it_accepts() -> None:
    # Connection.export_keying_material checks 0 < length <= 255 * hash_len (RFC 8446
    # §7.5 / RFC 5869 §2.3), then fails with InternalError for the top 32 lengths.
    client, server = make_pair()
    handshake(client, server)
    length = 255 * 32
    ours = client.export_keying_material(b"EXPORTER-review", b"ctx", length)
    assert len(ours) == length
    assert ours == server.export_keying_material(b"EXPORTER-review", b"ctx", length)


def test_protected_alert_record_with_empty_content_is_unexpected_message() -> None:
    # RFC 8446 §5.4: "Implementations MUST NOT send Handshake and Alert records
    # that have a zero-length TLSInnerPlaintext.content; if such a message is
    # received, the receiving implementation MUST terminate the connection with
    # an "unexpected_message" alert." (Handshake and plaintext records do this.)
    client, server = make_pair()
    handshake(client, server)
    wire = server._writer.seal(ContentType.ALERT, b"")
    with pytest.raises(UnexpectedMessage):
        client.receive_data(wire)
    assert alert_seen_by(server, client.data_to_send()) == AlertDescription.UNEXPECTED_MESSAGE


def _inner_plaintext_sizes(writer: RecordWriter, data: bytes) -> list[int]:
    """The TLSInnerPlaintext length of each record ``writer`` seals for ``data``."""
    wire = writer.seal(ContentType.APPLICATION_DATA, data)
    return [len(rec) - 5 - 16 for rec in split_records(wire)]


@pytest.mark.parametrize(
    ("limit", "padding"),
    [(64, 8), (1000, 100), (2**14 + 1, 2**14)],
    ids=["limit-64", "limit-1000", "padding-over-2^14"],
)
def test_padded_records_stay_within_the_peer_limit(limit: int, padding: int) -> None:
    # RFC 8449 §4: the limit "includes the content type and padding added in
    # TLS 1.3 (that is, the complete length of TLSInnerPlaintext)"; RFC 8446
    # §5.4: TLSInnerPlaintext is at most 2^14 + 1 bytes. Connection sets
    # max_fragment = limit - 1 (set_peer_record_limit); padding is the
    # writer's public attribute.
    writer = RecordWriter()
    writer.set_key(AES128, SECRET)
    writer.max_fragment = min(MAX_PLAINTEXT, limit - 1)
    writer.padding = padding
    sizes = _inner_plaintext_sizes(writer, bytes(3 * limit))
    assert max(sizes) <= limit


# =========================================================================================
# RecordReader: next_application_data against next_record
# =========================================================================================


class _Sealer:
    """Builds protected records by hand, with any inner plaintext and sequence number."""

    def __init__(self, suite: SuiteInfo, seq: int) -> None:
        writer = RecordWriter()
        writer.set_key(suite, SECRET)
        protection = writer._protection
        assert protection is not None
        self._aead = protection.aead
        self._iv = protection.iv
        self.seq = seq
        # Another key: the client's 0-RTT records, for a server that refused them.
        other = RecordWriter()
        other.set_key(suite, bytes(reversed(SECRET)))
        self._foreign = other

    def seal(self, inner: bytes, *, tamper: bool = False) -> bytes:
        header = b"\x17\x03\x03" + struct.pack(">H", len(inner) + 16)
        nonce = (self._iv ^ self.seq).to_bytes(12, "big")
        self.seq += 1
        body = bytearray(self._aead.encrypt(nonce, inner, header))
        if tamper:
            body[len(body) // 2] ^= 0x40
        return header + bytes(body)

    def seal_foreign(self, data: bytes) -> bytes:
        """A record under another key (using none of this key's sequence numbers)."""
        return self._foreign.seal(ContentType.APPLICATION_DATA, data)


_DATA: Final = st.tuples(
    # Application data: payload size, padding. Sizes near the limits matter most.
    st.just("data"),
    st.one_of(
        st.integers(0, 3),
        st.integers(60, 70),
        st.integers(990, 1010),
        st.integers(MAX_PLAINTEXT - 20, MAX_PLAINTEXT + 5),
    ),
    st.sampled_from([0, 0, 0, 1, 30]),
)
_OTHER: Final = st.one_of(
    st.tuples(st.just("tamper"), st.integers(1, MAX_PLAINTEXT), st.just(0)),
    st.tuples(st.just("foreign"), st.integers(0, 8_000), st.just(0)),
    st.tuples(st.just("handshake"), st.integers(1, 40), st.just(0)),
    st.tuples(st.just("alert"), st.just(2), st.just(0)),
    st.tuples(st.just("all_padding"), st.integers(1, 30), st.just(0)),
    st.tuples(st.just("protected_ccs"), st.just(1), st.just(0)),
    st.tuples(st.just("unknown_inner"), st.just(3), st.just(0)),
    st.tuples(st.just("plain_alert"), st.just(2), st.just(0)),
    st.tuples(st.just("plain_ccs"), st.just(1), st.just(0)),
    st.tuples(st.just("unknown_outer"), st.just(4), st.just(0)),
    st.tuples(st.just("too_long"), st.integers(1, 4), st.just(0)),
    st.tuples(st.just("short"), st.integers(0, 16), st.just(0)),
)
#: Runs of data records with, now and then, something else between them.
_ITEMS: Final = st.lists(
    st.one_of(st.lists(_DATA, min_size=1, max_size=5), st.lists(_OTHER, max_size=1)),
    min_size=1,
    max_size=4,
).map(lambda groups: [item for group in groups for item in group])


def _stream(suite: SuiteInfo, seq: int, items: Sequence[tuple[str, int, int]]) -> bytes:
    sealer = _Sealer(suite, seq)
    out = bytearray()
    for n, (kind, size, pad) in enumerate(items):
        fill = bytes([n % 250 + 1]) * size
        if kind == "data":
            out += sealer.seal(fill + b"\x17" + bytes(pad))
        elif kind == "foreign":
            out += sealer.seal_foreign(fill)
        elif kind == "tamper":
            out += sealer.seal(fill + b"\x17", tamper=True)
        elif kind == "handshake":
            out += sealer.seal(fill + b"\x16")
        elif kind == "alert":
            out += sealer.seal(b"\x01\x00\x15")  # warning close_notify
        elif kind == "all_padding":
            out += sealer.seal(bytes(size))
        elif kind == "protected_ccs":
            out += sealer.seal(b"\x01\x14")
        elif kind == "unknown_inner":
            out += sealer.seal(fill + b"\x63")
        elif kind == "plain_alert":
            out += b"\x15\x03\x03\x00\x02\x01\x00"
        elif kind == "plain_ccs":
            out += b"\x14\x03\x03\x00\x01\x01"
        elif kind == "unknown_outer":
            out += b"\x63\x03\x03\x00\x04" + fill
        elif kind == "too_long":
            # A header claiming more than 2^14 + 256 bytes, and a few of them.
            out += b"\x17\x03\x03" + struct.pack(">H", 2**14 + 256 + size) + fill
        else:  # short: no room for the tag
            out += b"\x17\x03\x03" + struct.pack(">H", size) + fill
    return bytes(out)


def _read(
    wire: bytes,
    cuts: Sequence[int],
    *,
    suite: SuiteInfo,
    seq: int,
    max_inner: int,
    coalesce: bool,
    skip_budget: int = 0,
) -> tuple[list[tuple[int, bytes]], tuple[type, str] | None, int, int, bytes]:
    """What Connection._receive would see: records (data runs joined), the error, the state."""
    reader = RecordReader()
    reader.set_key(suite, SECRET)
    protection = reader._protection
    assert protection is not None
    protection.seq = seq
    reader.max_inner_plaintext = max_inner
    reader.skip_budget = skip_budget  # a server that refused 0-RTT data
    got: list[tuple[int, bytes]] = []

    def add(content_type: int, payload: bytes) -> None:
        if content_type == 23 and got and got[-1][0] == 23:
            got[-1] = (23, got[-1][1] + payload)
        else:
            got.append((content_type, payload))

    error: tuple[type, str] | None = None
    start = 0
    try:
        for end in [*sorted(set(cuts)), len(wire)]:
            if end <= start:
                continue
            reader.feed(wire[start:end])
            start = end
            while True:
                if coalesce:
                    joined = reader.next_application_data()
                    if joined is not None:
                        assert type(joined) is bytes and joined
                        assert reader.last_was_protected
                        add(23, joined)
                        continue
                record = reader.next_record()
                if record is None:
                    break
                content_type, payload = record
                assert type(payload) is bytes
                add(content_type, payload)
    except TLSError as exc:
        error = (type(exc), str(exc))
    return got, error, protection.seq, reader.skip_budget, reader.take_unprocessed()


@settings(max_examples=250, deadline=None)
@given(
    items=_ITEMS,
    suite=st.sampled_from([AES128, CHACHA, AES256]),
    seq=st.sampled_from([0, 7, 2**64 - 4]),
    max_inner=st.sampled_from([2**14 + 1, 2**14 + 1, 64, 1000]),
    cut_fractions=st.lists(st.floats(0, 1), max_size=5),
    skip_budget=st.sampled_from([0, 0, 20_000]),
)
def test_coalesced_reading_matches_record_by_record_on_hostile_streams(
    *,
    items: list[tuple[str, int, int]],
    suite: SuiteInfo,
    seq: int,
    max_inner: int,
    cut_fractions: list[float],
    skip_budget: int,
) -> None:
    wire = _stream(suite, seq, items)
    cuts = [int(f * len(wire)) for f in cut_fractions]
    kwargs = {"suite": suite, "seq": seq, "max_inner": max_inner, "skip_budget": skip_budget}
    reference = _read(wire, cuts, coalesce=False, **kwargs)  # type: ignore[arg-type]
    coalesced = _read(wire, cuts, coalesce=True, **kwargs)  # type: ignore[arg-type]
    # Same records (data runs joined), same error with the same message, the
    # same sequence number and skip budget afterwards and the same unparsed
    # rest. With a skip budget, "foreign" records (under another key) are the
    # 0-RTT records a server that refused early data cannot open and drops.
    assert coalesced == reference


def test_coalesced_reading_stops_at_every_kind_of_refusal_like_next_record() -> None:
    # Deterministic companion of the property: two good data records, then
    # each refusal in turn; the data comes first, then next_record's error.
    for kind in ("tamper", "all_padding", "protected_ccs", "unknown_inner", "too_long", "short"):
        items = [("data", 20_000 // 2, 0), ("data", 9_000, 0), (kind, 5, 0), ("data", 5, 0)]
        wire = _stream(AES128, 0, items)
        ref = _read(wire, [], suite=AES128, seq=0, max_inner=2**14 + 1, coalesce=False)
        got = _read(wire, [], suite=AES128, seq=0, max_inner=2**14 + 1, coalesce=True)
        assert got == ref, kind
        assert got[1] is not None, kind
        assert got[0] == [(23, bytes([1]) * 10_000 + bytes([2]) * 9_000)], kind


def test_the_first_record_that_opens_ends_the_skipping_of_refused_early_data() -> None:
    # RFC 8446 §4.2.10: a server that refused 0-RTT drops records it cannot
    # open only until one opens; a tampered record after that is bad_record_mac,
    # also when the records before it were opened as one run.
    items = [("foreign", 300, 0), ("data", 10_000, 0), ("data", 9_000, 0), ("foreign", 50, 0)]
    wire = _stream(AES128, 0, items)
    results = [
        _read(wire, [], suite=AES128, seq=0, max_inner=2**14 + 1, coalesce=c, skip_budget=20_000)
        for c in (False, True)
    ]
    assert results[0] == results[1]
    got, error, seq, budget, _rest = results[1]
    assert got == [(23, bytes([2]) * 10_000 + bytes([3]) * 9_000)]
    assert error is not None and "failed authentication" in error[1]
    # The dropped record used no sequence number; the refused one used the third.
    assert (seq, budget) == (3, 0)


def test_one_record_past_the_sequence_limit_is_refused_by_both_paths() -> None:
    # RFC 8446 §5.3: the sequence number must not wrap. Records with sequence
    # numbers 2^64 - 3 and 2^64 - 2 open; the next one is refused.
    items = [("data", 100, 0)] * 3
    wire = _stream(AES128, 2**64 - 3, items)
    for coalesce in (False, True):
        got, error, seq, _budget, _rest = _read(
            wire, [], suite=AES128, seq=2**64 - 3, max_inner=2**14 + 1, coalesce=coalesce
        )
        assert got == [(23, bytes([1]) * 100 + bytes([2]) * 100)]
        assert error is not None and "would wrap" in error[1]
        assert seq == 2**64 - 1


# =========================================================================================
# The per-thread scratch buffer
# =========================================================================================


def _two_records_wire(suite: SuiteInfo, fill: int) -> bytes:
    writer = RecordWriter()
    writer.set_key(suite, SECRET)
    return writer.seal(ContentType.APPLICATION_DATA, bytes([fill]) * 30_000)


def test_results_of_two_readers_in_one_thread_do_not_share_the_scratch_buffer() -> None:
    # Two connections in one thread (as under trio) open records into the same
    # scratch buffer; a result must be a copy, untouched by the next call.
    first, second = RecordReader(), RecordReader()
    first.set_key(AES128, SECRET)
    second.set_key(CHACHA, SECRET)
    first.feed(_two_records_wire(AES128, 0xAA))
    second.feed(_two_records_wire(CHACHA, 0x55))
    a = first.next_application_data()
    assert a == b"\xaa" * 30_000
    b = second.next_application_data()
    assert b == b"\x55" * 30_000
    assert type(a) is bytes and type(b) is bytes
    assert a == b"\xaa" * 30_000  # still, after the second reader reused the buffer


def test_a_failed_record_leaves_nothing_of_its_plaintext_in_a_result() -> None:
    # decrypt_into writes the unauthenticated plaintext before it checks the
    # tag: the failed record's bytes must not reach this call's result nor
    # the next one's.
    sealer = _Sealer(AES128, 0)
    good = sealer.seal(b"g" * 10_000 + b"\x17")
    small = sealer.seal(b"h" * 10 + b"\x17")
    bad = sealer.seal(b"SECRET-LOOKING" * 700 + b"\x17", tamper=True)
    after = sealer.seal(b"i" * 10 + b"\x17")
    reader = RecordReader()
    reader.set_key(AES128, SECRET)
    reader.feed(good + small + bad + after)
    assert reader.next_application_data() == b"g" * 10_000 + b"h" * 10
    assert reader.next_application_data() is None  # the tampered one is next_record's
    protection = reader._protection
    assert protection is not None and protection.seq == 2
    other = RecordReader()
    other.set_key(AES128, SECRET)
    other.feed(_two_records_wire(AES128, 0x01)[:20_000])  # one whole record, one partial
    assert other.next_application_data() is None


# =========================================================================================
# The PSK binder and obfuscated_ticket_age, recomputed from RFC 8446 alone
# =========================================================================================


def _expand_label(hash_name: str, secret: bytes, label: bytes, context: bytes, n: int) -> bytes:
    full = b"tls13 " + label
    info = struct.pack(">HB", n, len(full)) + full + bytes([len(context)]) + context
    return HKDFExpand(_HASHES[hash_name], n, info).derive(secret)


def _rfc_binder(hash_name: str, psk: bytes, transcript: bytes) -> bytes:
    """RFC 8446 §4.2.11.2 and §7.1, with hmac and cryptography's HKDF only."""
    size = hashlib.new(hash_name).digest_size
    early = hmac.digest(bytes(size), psk, hash_name)  # HKDF-Extract(0, PSK)
    empty = hashlib.new(hash_name).digest()
    binder_key = _expand_label(hash_name, early, b"res binder", empty, size)
    finished_key = _expand_label(hash_name, binder_key, b"finished", b"", size)
    return hmac.digest(finished_key, hashlib.new(hash_name, transcript).digest(), hash_name)


def _session(suite: int, keys: TicketKeys) -> ClientSession:
    client, server = make_pair(
        client_kw={"cipher_suites": (suite,)}, server_kw={"ticket_keys": keys}
    )
    events, _ = handshake(client, server)
    events += pump(server, client)
    for event in events:
        if isinstance(event, NewSessionTicketReceived) and event.session is not None:
            return event.session
    raise AssertionError("no ticket")


def _handshake_messages(wire: bytes) -> list[bytes]:
    return [rec[5:] for rec in split_records(wire) if rec[0] == ContentType.HANDSHAKE]


def _check_psk_extension(raw_hello: bytes, psk: bytes, hash_name: str, before: bytes) -> None:
    hello = ClientHello.decode(raw_hello[4:])
    assert list(hello.extensions)[-1] == ExtensionType.PRE_SHARED_KEY  # §4.2.11: last
    offer = decode_pre_shared_key_ch(hello.extensions[ExtensionType.PRE_SHARED_KEY])
    assert len(offer.binders) == 1
    truncated = raw_hello[: len(raw_hello) - offer.binders_length]
    assert offer.binders[0] == _rfc_binder(hash_name, psk, before + truncated)


@pytest.mark.parametrize(
    "suite",
    [CipherSuite.TLS_AES_128_GCM_SHA256, CipherSuite.TLS_AES_256_GCM_SHA384],
    ids=["sha256", "sha384"],
)
def test_binders_of_both_hellos_around_a_retry_are_the_rfc_values(suite: int) -> None:
    keys = TicketKeys()
    session = _session(suite, keys)
    hash_name = CIPHER_SUITES[suite].hash_name
    client, server = make_pair(
        client_kw={"cipher_suites": (suite,), "key_share_groups": (NamedGroup.X25519,)},
        server_kw={"groups": (NamedGroup.SECP256R1,), "ticket_keys": keys},
    )
    client.session = session
    client.start_handshake()
    first_wire = client.data_to_send()
    (ch1,) = _handshake_messages(first_wire)
    _check_psk_extension(ch1, session.psk, hash_name, b"")
    server.receive_data(first_wire)
    retry_wire = server.data_to_send()
    (hrr,) = _handshake_messages(retry_wire)
    assert ServerHello.decode(hrr[4:]).is_hello_retry_request
    client.receive_data(retry_wire)
    second_wire = client.data_to_send()
    (ch2,) = _handshake_messages(second_wire)
    # §4.4.1: ClientHello1 is replaced by message_hash(Hash(ClientHello1)).
    message_hash = frame(HandshakeType.MESSAGE_HASH, hashlib.new(hash_name, ch1).digest())
    _check_psk_extension(ch2, session.psk, hash_name, message_hash + hrr)
    assert ExtensionType.EARLY_DATA not in ClientHello.decode(ch2[4:]).extensions
    server.receive_data(second_wire)
    pump(server, client)
    pump(client, server)
    assert client.negotiated is not None and client.negotiated.resumed


def test_obfuscated_ticket_age_is_the_age_in_ms_plus_age_add_mod_2_32() -> None:
    keys = TicketKeys()
    now = datetime.datetime.now(datetime.timezone.utc)
    session = replace(
        _session(CipherSuite.TLS_AES_128_GCM_SHA256, keys),
        received_at=now.timestamp() - 12.3456,
        ticket_age_add=2**32 - 1000,
    )
    client, _server = make_pair(client_kw={"clock": FixedClock(now)})
    client.session = session
    client.start_handshake()
    (ch,) = _handshake_messages(client.data_to_send())
    hello = ClientHello.decode(ch[4:])
    offer = decode_pre_shared_key_ch(hello.extensions[ExtensionType.PRE_SHARED_KEY])
    # §4.2.11.1: (12345 ms + ticket_age_add) mod 2^32.
    assert offer.identities[0].obfuscated_ticket_age == 12345 - 1000
    _check_psk_extension(ch, session.psk, "sha256", b"")


# =========================================================================================
# start_key_exchanges: the X25519 key shared by X25519MLKEM768 and x25519
# =========================================================================================


class _CountingRandom:
    def __init__(self) -> None:
        self.counter = 0

    def __call__(self, n: int) -> bytes:
        self.counter += 1
        return hashlib.shake_256(self.counter.to_bytes(4, "big")).digest(n)


@pytest.mark.parametrize(
    "groups",
    [
        (NamedGroup.X25519MLKEM768, NamedGroup.X25519),
        (NamedGroup.X25519, NamedGroup.X25519MLKEM768),
        (NamedGroup.X25519MLKEM768, NamedGroup.SECP256R1, NamedGroup.X25519),
    ],
)
def test_shared_x25519_key_appears_in_both_shares_and_either_group_completes(
    groups: tuple[int, ...],
) -> None:
    exchanges = start_key_exchanges(groups, _CountingRandom())
    assert list(exchanges) == list(groups)
    hybrid = exchanges[NamedGroup.X25519MLKEM768].share()
    assert hybrid[-32:] == exchanges[NamedGroup.X25519].share()
    # Each server choice completes a handshake, with the shared key in it.
    for chosen in (NamedGroup.X25519, NamedGroup.X25519MLKEM768):
        client, server = make_pair(
            client_kw={"groups": groups, "key_share_groups": groups},
            server_kw={"groups": (chosen,)},
        )
        handshake(client, server)
        assert client.negotiated is not None
        assert client.negotiated.group == chosen
