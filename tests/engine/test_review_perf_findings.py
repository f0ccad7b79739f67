"""Review of the performance rewrites (commits ce399b4, 2b8b15f): engine side.

Pins down what the rewritten record reader, handshake buffer, transcript,
codec fast paths, ClientHello construction and Certificate cache must keep
doing, including the one thing the review found they no longer did (a
second feed() before next_record()), fixed since.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any, Final, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.engine_pairs import handshake, make_pair, pki, pump, split_records
from triotls.config import CertifiedKey
from triotls.engine import ClientConnection
from triotls.engine.client import _ClientHandshake
from triotls.engine.codec import Reader
from triotls.engine.enums import CipherSuite, ContentType, ExtensionType, HandshakeType, NamedGroup
from triotls.engine.events import NewSessionTicketReceived
from triotls.engine.extensions import decode_alpn
from triotls.engine.handshake_buffer import HandshakeBuffer
from triotls.engine.messages import Certificate, ClientHello, frame
from triotls.engine.record import MAX_PLAINTEXT, RecordReader, RecordWriter
from triotls.engine.server import _certificate_body, _ServerHandshake
from triotls.engine.suites import CIPHER_SUITES, SuiteInfo
from triotls.engine.tickets import ClientSession, TicketKeys
from triotls.engine.transcript import Transcript
from triotls.errors import (
    BadRecordMac,
    DecodeError,
    InternalError,
    RecordOverflow,
    TLSError,
    UnexpectedMessage,
)

EXAMPLES: Final = settings(max_examples=200, deadline=None)
SECRET: Final = bytes(range(32))
AES128: Final[SuiteInfo] = CIPHER_SUITES[CipherSuite.TLS_AES_128_GCM_SHA256]
CHACHA: Final[SuiteInfo] = CIPHER_SUITES[CipherSuite.TLS_CHACHA20_POLY1305_SHA256]


# --- RecordReader: feeding without draining -------------------------------------------


def test_feed_twice_before_next_record_still_yields_every_record() -> None:
    writer = RecordWriter()
    wire = b"".join(writer.seal(ContentType.HANDSHAKE, bytes([n]) * 10) for n in range(3))
    reader = RecordReader()
    reader.feed(wire[:22])  # one whole record and 7 bytes of the second
    reader.feed(wire[22:])  # the rest, before anything was read
    assert _drain(reader) == [(ContentType.HANDSHAKE, bytes([n]) * 10) for n in range(3)]
    assert not reader.has_pending


def test_feed_twice_of_one_partial_record_before_next_record_is_fine() -> None:
    # The case feed() does handle without a drain: the unparsed bytes are one
    # partial record, whatever its header says.
    writer = RecordWriter()
    wire = b"".join(writer.seal(ContentType.HANDSHAKE, bytes([n]) * 10) for n in range(3))
    reader = RecordReader()
    reader.feed(wire[:8])
    reader.feed(wire[8:20])
    reader.feed(wire[20:])
    assert _drain(reader) == [(ContentType.HANDSHAKE, bytes([n]) * 10) for n in range(3)]


# --- RecordReader: any cut of any stream gives the same records ----------------------


def _drain(reader: RecordReader) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    while (record := reader.next_record()) is not None:
        out.append(record)
    return out


def _plaintext_stream(sizes: Sequence[int]) -> tuple[bytes, list[tuple[int, bytes]]]:
    writer = RecordWriter()
    expected = [
        (int(ContentType.HANDSHAKE), bytes([n % 251 + 1]) * size) for n, size in enumerate(sizes)
    ]
    return b"".join(writer.seal(t, data) for t, data in expected), expected


def _protected_stream(
    sizes: Sequence[int], suite: SuiteInfo = AES128, padding: int = 0
) -> tuple[bytes, list[tuple[int, bytes]]]:
    writer = RecordWriter()
    writer.set_key(suite, SECRET)
    writer.padding = padding
    expected = [
        (int(ContentType.APPLICATION_DATA), bytes([n % 251 + 1]) * size)
        for n, size in enumerate(sizes)
    ]
    return b"".join(writer.seal(t, data) for t, data in expected), expected


def _reader(suite: SuiteInfo | None) -> RecordReader:
    reader = RecordReader()
    if suite is not None:
        reader.set_key(suite, SECRET)
    return reader


def _boundaries(wire: bytes) -> set[int]:
    ends = {0}
    pos = 0
    while pos < len(wire):
        pos += 5 + int.from_bytes(wire[pos + 3 : pos + 5], "big")
        ends.add(pos)
    return ends


def _read_in_pieces(
    reader: RecordReader, wire: bytes, cuts: Sequence[int]
) -> list[tuple[int, bytes]]:
    """Feed ``wire`` cut at ``cuts``, draining after each piece, checking has_pending."""
    boundaries = _boundaries(wire)
    out: list[tuple[int, bytes]] = []
    previous = 0
    for cut in [*sorted(cuts), len(wire)]:
        piece = wire[previous:cut]
        previous = cut
        if not piece:
            continue
        reader.feed(piece)
        out += _drain(reader)
        assert reader.has_pending == (cut not in boundaries), cut
    return out


@pytest.mark.parametrize("suite", [None, AES128, CHACHA], ids=["plaintext", "aes128", "chacha"])
def test_every_single_cut_of_a_multi_record_stream_gives_the_same_records(
    suite: SuiteInfo | None,
) -> None:
    # Empty plaintext records are refused; a protected one is just its type byte.
    sizes = (1, 40, 0, 3, 200) if suite is not None else (1, 40, 3, 200, 2)
    wire, expected = _protected_stream(sizes, suite) if suite else _plaintext_stream(sizes)
    for cut in range(len(wire) + 1):
        assert _read_in_pieces(_reader(suite), wire, [cut]) == expected, cut


@pytest.mark.parametrize("suite", [None, AES128], ids=["plaintext", "aes128"])
def test_every_pair_of_cuts_around_record_boundaries_gives_the_same_records(
    suite: SuiteInfo | None,
) -> None:
    sizes = (5, 1, 17, 2)
    wire, expected = _protected_stream(sizes, suite) if suite else _plaintext_stream(sizes)
    for first in range(len(wire) + 1):
        for second in range(first, len(wire) + 1):
            got = _read_in_pieces(_reader(suite), wire, [first, second])
            assert got == expected, (first, second)


@EXAMPLES
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=MAX_PLAINTEXT), min_size=1, max_size=6),
    cut_fractions=st.lists(st.floats(min_value=0, max_value=1), max_size=8),
    padding=st.sampled_from([0, 1, 17]),
    protected=st.booleans(),
)
def test_any_cuts_of_any_records_give_the_same_records(
    sizes: list[int], cut_fractions: list[float], padding: int, protected: bool
) -> None:
    if protected:
        sizes = [min(s, MAX_PLAINTEXT - padding) for s in sizes]
        wire, expected = _protected_stream(sizes, AES128, padding)
    else:
        sizes = [max(s, 1) for s in sizes]
        wire, expected = _plaintext_stream(sizes)
    cuts = [int(f * len(wire)) for f in cut_fractions]
    got = _read_in_pieces(_reader(AES128 if protected else None), wire, cuts)
    assert got == expected


@EXAMPLES
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=600), min_size=2, max_size=6),
    cut_fraction=st.floats(min_value=0, max_value=1),
    stop_after=st.integers(min_value=0, max_value=5),
    trailer=st.binary(max_size=40),
)
def test_take_unprocessed_returns_exactly_what_follows_the_records_read(
    sizes: list[int], cut_fraction: float, stop_after: int, trailer: bytes
) -> None:
    # As Connection does after a close_notify: stop reading mid-feed, hand back the rest.
    wire, expected = _plaintext_stream(sizes)
    stream = wire + trailer
    cut = int(cut_fraction * len(wire))
    reader = RecordReader()
    reader.feed(stream[:cut])
    got = _drain(reader)
    reader.feed(stream[cut:])
    while len(got) < min(stop_after, len(expected)):
        record = reader.next_record()
        assert record is not None
        got.append(record)
    assert got == expected[: len(got)]
    consumed = sum(5 + len(data) for _, data in got)
    assert reader.take_unprocessed() == stream[consumed:]
    assert not reader.has_pending
    assert reader.next_record() is None


def test_reader_keeps_only_the_partial_record_after_a_large_read() -> None:
    wire, expected = _protected_stream([MAX_PLAINTEXT] * 6)
    reader = _reader(AES128)
    cut = len(wire) - 100  # ends inside the last record
    reader.feed(wire[:cut])
    assert _drain(reader) == expected[:-1]
    partial = cut - sorted(_boundaries(wire))[-2]
    # The whole read must not stay referenced, only the partial record.
    assert len(reader._buf) - reader._pos == partial
    assert len(reader._buf) <= MAX_PLAINTEXT + 256 + 5
    assert reader._next is None
    reader.feed(wire[cut:])
    assert _drain(reader) == expected[-1:]


def test_feeding_a_bytearray_copies_it_before_the_caller_reuses_it() -> None:
    wire, expected = _protected_stream([30, 30, 30])
    reader = _reader(AES128)
    got: list[tuple[int, bytes]] = []
    for cut in (10, 60):  # inside the first record, then inside the second
        buffer = bytearray(wire[:cut])
        reader.feed(cast(bytes, buffer))  # feed() documents that it copies these
        buffer[:] = bytes(len(buffer))  # the transport reuses its buffer
        got += _drain(reader)
        wire = wire[cut:]
    reader.feed(wire)
    assert got + _drain(reader) == expected


def test_oversized_header_right_after_a_record_completed_in_feed_is_refused() -> None:
    writer = RecordWriter()
    first = writer.seal(ContentType.HANDSHAKE, bytes(20))
    oversized = b"\x16\x03\x03" + (MAX_PLAINTEXT + 1).to_bytes(2, "big")
    reader = RecordReader()
    reader.feed(first[:10])
    assert reader.next_record() is None
    reader.feed(first[10:] + oversized + bytes(10))
    assert reader.next_record() == (ContentType.HANDSHAKE, bytes(20))
    with pytest.raises(RecordOverflow, match="16385 bytes exceeds the limit of 16384"):
        reader.next_record()


def test_tampered_record_after_a_record_completed_in_feed_is_bad_record_mac() -> None:
    wire, expected = _protected_stream([50, 50, 50])
    tampered = bytearray(wire)
    tampered[-1] ^= 1
    reader = _reader(AES128)
    reader.feed(bytes(tampered[:30]))
    assert _drain(reader) == []
    reader.feed(bytes(tampered[30:]))
    assert reader.next_record() == expected[0]
    assert reader.next_record() == expected[1]
    with pytest.raises(BadRecordMac):
        reader.next_record()


def test_padding_only_record_completed_in_feed_is_unexpected_message() -> None:
    writer = RecordWriter()
    writer.set_key(AES128, SECRET)
    first = writer.seal(ContentType.APPLICATION_DATA, b"x" * 30)
    # An inner plaintext of zeros only, sealed with the next sequence number.
    protection = writer._protection
    assert protection is not None
    header = b"\x17\x03\x03" + (10 + 16).to_bytes(2, "big")
    sealed = header + protection.aead.encrypt(protection.nonce(), bytes(10), header)
    reader = _reader(AES128)
    reader.feed(first[:20])
    assert reader.next_record() is None
    reader.feed(first[20:] + sealed)
    assert reader.next_record() == (ContentType.APPLICATION_DATA, b"x" * 30)
    with pytest.raises(UnexpectedMessage, match="all padding"):
        reader.next_record()


@EXAMPLES
@given(
    pieces=st.lists(st.binary(max_size=300), min_size=1, max_size=6),
    protected=st.booleans(),
)
def test_arbitrary_bytes_in_arbitrary_pieces_raise_only_tls_errors(
    pieces: list[bytes], protected: bool
) -> None:
    reader = _reader(AES128 if protected else None)
    try:
        for piece in pieces:
            reader.feed(piece)
            _drain(reader)
    except InternalError as exc:
        raise AssertionError(f"hostile input caused an internal error: {exc!r}") from exc
    except TLSError:
        pass


# --- HandshakeBuffer parsing in place ----------------------------------------------------


@EXAMPLES
@given(
    bodies=st.lists(st.binary(max_size=300), min_size=1, max_size=5),
    cut_fractions=st.lists(st.floats(min_value=0, max_value=1), max_size=8),
    as_bytearray=st.booleans(),
)
def test_handshake_messages_come_out_whole_and_in_order_whatever_the_records(
    bodies: list[bytes], cut_fractions: list[float], as_bytearray: bool
) -> None:
    raws = [frame(HandshakeType.CERTIFICATE, body) for body in bodies]
    stream = b"".join(raws)
    message_ends = {0}
    total = 0
    for raw in raws:
        total += len(raw)
        message_ends.add(total)
    buf = HandshakeBuffer(300)
    got: list[bytes] = []
    previous = 0
    for cut in [*sorted({int(f * len(stream)) for f in cut_fractions}), len(stream)]:
        if cut == previous:
            continue
        payload = stream[previous:cut]
        previous = cut
        if as_bytearray:
            fed = bytearray(payload)
            buf.feed(cast(bytes, fed))
            fed[:] = bytes(len(fed))  # the caller's buffer is reused
        else:
            buf.feed(payload)
        while (msg := buf.next_message()) is not None:
            assert type(msg.raw) is bytes
            assert msg.raw[4:] == msg.body and msg.raw[0] == msg.msg_type
            got.append(msg.raw)
        assert buf.is_empty == (cut in message_ends)
    assert got == raws


def test_handshake_buffer_refuses_an_oversized_header_split_across_payloads() -> None:
    buf = HandshakeBuffer(1000)
    first = frame(HandshakeType.FINISHED, bytes(32))
    buf.feed(first + b"\x0b\x00")
    assert buf.next_message() is not None
    assert buf.next_message() is None
    buf.feed(b"\x03\xe9")  # 1001 bytes claimed: refused before any body arrives
    with pytest.raises(DecodeError, match="claims 1001 bytes, over the limit of 1000"):
        buf.next_message()


def test_handshake_buffer_check_key_change_counts_only_unconsumed_bytes() -> None:
    buf = HandshakeBuffer(1000)
    buf.feed(frame(HandshakeType.FINISHED, bytes(32)) + b"\x14\x00")
    assert buf.next_message() is not None
    with pytest.raises(UnexpectedMessage, match=r"^2 bytes of a handshake message"):
        buf.check_key_change("the key change")


# --- Transcript: the remembered digest ---------------------------------------------------

_TRANSCRIPT_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.binary(max_size=40)),
        st.tuples(st.just("digest"), st.just(b"")),
        st.tuples(st.just("digest_with"), st.binary(max_size=10)),
        st.tuples(st.just("set_hash"), st.sampled_from([b"sha256", b"sha384"])),
        st.tuples(st.just("roll_up"), st.just(b"")),
        st.tuples(st.just("copy"), st.just(b"")),
    ),
    max_size=25,
)


@EXAMPLES
@given(ops=_TRANSCRIPT_OPS)
def test_transcript_digest_always_matches_a_fresh_hash(ops: list[tuple[str, bytes]]) -> None:
    transcript = Transcript()
    pending: list[bytes] = []  # the model: what was added before a hash was chosen
    model: Any = None  # hashlib object once a hash is chosen
    for op, arg in ops:
        if op == "set_hash":
            name = arg.decode()
            if model is None or model.name != name:
                model = hashlib.new(name)
                for data in pending:
                    model.update(data)
            transcript.set_hash(name)
        elif op == "add":
            raw = frame(HandshakeType.CERTIFICATE, arg)
            if model is None:
                pending.append(raw)
            else:
                model.update(raw)
            transcript.add(raw)
        elif model is None:
            continue
        elif op == "digest":
            assert transcript.digest() == model.copy().digest()
        elif op == "digest_with":
            h = model.copy()
            h.update(arg)
            assert transcript.digest_with(arg) == h.digest()
        elif op == "roll_up":
            first = model.digest()
            model = hashlib.new(model.name)
            model.update(frame(HandshakeType.MESSAGE_HASH, first))
            transcript.roll_up_for_hello_retry()
        else:  # copy: the copy continues alone, the original is left as it was
            original_digest = transcript.digest()
            transcript = transcript.copy()
            assert transcript.digest() == original_digest
            pending = []
        if model is not None:
            assert transcript.digest() == model.copy().digest()


def test_transcript_copy_does_not_share_the_remembered_digest() -> None:
    transcript = Transcript()
    transcript.set_hash("sha256")
    transcript.add(b"\x01\x00\x00\x00")
    before = transcript.digest()
    other = transcript.copy()
    other.add(b"\x02\x00\x00\x00")
    assert transcript.digest() == before
    assert other.digest() != before
    assert transcript.digest_with(b"") == before


# --- codec Reader fast paths -------------------------------------------------------------


def _outcome(fn: Any) -> tuple[str, object]:
    try:
        return "ok", fn()
    except DecodeError as exc:
        return "error", str(exc)


@EXAMPLES
@given(data=st.binary(max_size=12), skip=st.integers(min_value=0, max_value=12))
def test_u16_vec16_is_u16_then_vec16_results_errors_and_position(data: bytes, skip: int) -> None:
    fast, slow = Reader(data, "block"), Reader(data, "block")
    for reader in (fast, slow):
        if skip <= len(data):
            reader.read(skip, "skip")

    def field_by_field() -> tuple[int, bytes]:
        value = slow.u16("extension_type")
        return value, slow.vec16("extension_data")

    assert _outcome(lambda: fast.u16_vec16("extension_type", "extension_data")) == _outcome(
        field_by_field
    )
    assert fast.remaining == slow.remaining


@EXAMPLES
@given(data=st.binary(max_size=8), max_len=st.integers(min_value=0, max_value=8))
def test_inlined_vector_reads_keep_their_bounds_and_messages(data: bytes, max_len: int) -> None:
    # Spelled-out expectations for vec8/vec16/u16 (RFC 8446 §3.4 vectors).
    r8 = Reader(data, "msg")
    if not data:
        assert _outcome(lambda: r8.vec8("v", max_len=max_len)) == (
            "error",
            "msg: v length needs 1 byte but none are left",
        )
    elif data[0] > max_len:
        assert _outcome(lambda: r8.vec8("v", max_len=max_len)) == (
            "error",
            f"msg: v length {data[0]} is outside 0..{max_len}",
        )
    elif data[0] > len(data) - 1:
        assert _outcome(lambda: r8.vec8("v", max_len=max_len)) == (
            "error",
            f"msg: v needs {data[0]} bytes but only {len(data) - 1} are left",
        )
    else:
        assert r8.vec8("v", max_len=max_len) == data[1 : 1 + data[0]]
        assert r8.remaining == len(data) - 1 - data[0]
    r16 = Reader(data, "msg")
    if len(data) < 2:
        assert _outcome(lambda: r16.vec16("w")) == (
            "error",
            f"msg: w length needs 2 bytes but only {len(data)} are left",
        )
        assert _outcome(lambda: Reader(data, "msg").u16("u")) == (
            "error",
            f"msg: u needs 2 bytes but only {len(data)} are left",
        )
    else:
        length = int.from_bytes(data[:2], "big")
        assert Reader(data, "msg").u16("u") == length
        if length > len(data) - 2:
            assert _outcome(lambda: r16.vec16("w")) == (
                "error",
                f"msg: w needs {length} bytes but only {len(data) - 2} are left",
            )
        else:
            assert r16.vec16("w") == data[2 : 2 + length]


# --- ClientHello: cached config extensions and the binder written in place ----------------


_TICKET_KEYS: Final = TicketKeys()


def _session() -> ClientSession:
    client, server = make_pair(server_kw={"ticket_keys": _TICKET_KEYS})
    client_events, _ = handshake(client, server)
    client_events += pump(server, client)
    for event in client_events:
        if isinstance(event, NewSessionTicketReceived) and event.session is not None:
            return event.session
    raise AssertionError("no ticket")


def _sent_client_hello(wire: bytes) -> bytes:
    for record in split_records(wire):
        if record[0] == ContentType.HANDSHAKE:
            return record[5:]
    raise AssertionError("no ClientHello record")


def _hs(conn: ClientConnection) -> _ClientHandshake:
    hs = getattr(conn._state, "_hs", None)
    assert isinstance(hs, _ClientHandshake)
    return hs


def test_the_hello_sent_with_a_psk_is_the_hello_the_client_remembers() -> None:
    session = _session()
    client, server = make_pair(server_kw={"ticket_keys": _TICKET_KEYS})
    client.session = session
    client.start_handshake()
    wire = client.data_to_send()
    sent = _sent_client_hello(wire)
    hs = _hs(client)
    assert hs.client_hello is not None
    assert frame(HandshakeType.CLIENT_HELLO, hs.client_hello.encode()) == sent
    assert hs.framed_hello is None  # consumed, nothing stale kept
    assert ExtensionType.PRE_SHARED_KEY in ClientHello.decode(sent[4:]).extensions
    server.receive_data(wire)
    pump(server, client)
    pump(client, server)
    assert client.negotiated is not None and client.negotiated.resumed


def test_the_second_hello_after_a_retry_is_the_hello_the_client_remembers() -> None:
    session = _session()
    client, server = make_pair(
        client_kw={"key_share_groups": (NamedGroup.X25519,)},
        server_kw={"groups": (NamedGroup.SECP256R1,), "ticket_keys": _TICKET_KEYS},
    )
    client.session = session
    client.start_handshake()
    pump(client, server)  # the server answers with a HelloRetryRequest
    pump(server, client)
    wire = client.data_to_send()
    hs = _hs(client)
    assert hs.hello_retry is not None and hs.client_hello is not None
    second = [r for r in split_records(wire) if r[0] == ContentType.HANDSHAKE][-1][5:]
    assert frame(HandshakeType.CLIENT_HELLO, hs.client_hello.encode()) == second
    assert ExtensionType.PRE_SHARED_KEY in hs.client_hello.extensions
    server.receive_data(wire)
    pump(server, client)
    pump(client, server)
    assert client.negotiated is not None and client.negotiated.resumed


def test_config_extension_cache_is_per_config_and_not_copied_by_replace() -> None:
    client, _server = make_pair(client_kw={"alpn_protocols": ("h2",)})
    client.start_handshake()
    first = ClientHello.decode(_sent_client_hello(client.data_to_send())[4:])
    alpn = ExtensionType.APPLICATION_LAYER_PROTOCOL_NEGOTIATION
    assert decode_alpn(first.extensions[alpn]) == (b"h2",)
    changed = dataclasses.replace(client.config, alpn_protocols=("http/1.1",))
    assert changed._hello_extensions is None
    other = ClientConnection(changed, server_hostname="localhost")
    other.start_handshake()
    second = ClientHello.decode(_sent_client_hello(other.data_to_send())[4:])
    assert decode_alpn(second.extensions[alpn]) == (b"http/1.1",)
    # A hello's own extensions are its own: changing them leaves the cache alone.
    cached = client.config._hello_extensions
    assert cached is not None
    snapshot = dict(cached)
    hs = _hs(client)
    assert hs.client_hello is not None
    assert hs.client_hello.extensions is not cached
    assert dict(cached) == snapshot


def test_two_connections_of_one_config_send_the_same_config_extensions() -> None:
    client, _server = make_pair()
    third = ClientConnection(client.config, server_hostname="localhost")
    client.start_handshake()
    third.start_handshake()
    a = ClientHello.decode(_sent_client_hello(client.data_to_send())[4:]).extensions
    b = ClientHello.decode(_sent_client_hello(third.data_to_send())[4:]).extensions
    assert list(a) == list(b)
    for ext_type in a:
        if ext_type != ExtensionType.KEY_SHARE:
            assert a[ext_type] == b[ext_type], ext_type
    assert a[ExtensionType.KEY_SHARE] != b[ExtensionType.KEY_SHARE]


# --- the server's Certificate message cache --------------------------------------------


def _leaf_staple(body: bytes) -> bytes | None:
    leaf = Certificate.decode(body).certificate_list[0]
    status = leaf.extensions.get(ExtensionType.STATUS_REQUEST)
    if status is None:
        return None
    assert status[0] == 1  # status_type ocsp
    return status[4:]


def test_certificate_cache_follows_a_changing_staple_and_never_staples_unasked() -> None:
    p = pki("ecdsa")
    answers = [b"staple-A", b"staple-B", None, b"staple-A", b"staple-C"]
    calls = iter(answers)
    certified = CertifiedKey(
        p.certified.chain, p.certified.private_key, ocsp_response=lambda: next(calls)
    )
    asked = cast(_ServerHandshake, SimpleNamespace(ocsp_requested=True))
    unasked = cast(_ServerHandshake, SimpleNamespace(ocsp_requested=False))
    for expected in answers:
        assert _leaf_staple(_certificate_body(asked, certified)) == expected
        # A client that did not ask gets the bare chain, whatever was cached.
        assert _leaf_staple(_certificate_body(unasked, certified)) is None
        assert len(certified._certificate_messages) <= 2
    chain = Certificate.decode(_certificate_body(unasked, certified)).certificate_list
    assert [entry.cert_data for entry in chain] == list(certified.chain_der)


def test_certificate_cache_is_not_fooled_by_a_replaced_chain() -> None:
    p = pki("ecdsa")
    certified = CertifiedKey(p.certified.chain, p.certified.private_key)
    unasked = cast(_ServerHandshake, SimpleNamespace(ocsp_requested=False))
    before = _certificate_body(unasked, certified)
    certified.chain_der = (*certified.chain_der, b"\x30\x00")
    after = Certificate.decode(_certificate_body(unasked, certified)).certificate_list
    assert [entry.cert_data for entry in after] == list(certified.chain_der)
    assert before != _certificate_body(unasked, certified)


def test_with_ocsp_response_starts_an_empty_certificate_cache() -> None:
    p = pki("ecdsa")
    certified = CertifiedKey(p.certified.chain, p.certified.private_key)
    asked = cast(_ServerHandshake, SimpleNamespace(ocsp_requested=True))
    _certificate_body(asked, certified)
    assert certified._certificate_messages
    other = certified.with_ocsp_response(lambda: b"fresh")
    assert other._certificate_messages == {}
    assert _leaf_staple(_certificate_body(asked, other)) == b"fresh"


def test_full_handshakes_reuse_the_cached_certificate_and_still_verify() -> None:
    cache = pki("ecdsa").certified._certificate_messages
    bodies = []
    for _ in range(3):
        client, server = make_pair()
        handshake(client, server)
        assert client.negotiated is not None and client.negotiated.verification is not None
        assert client.negotiated.verification.is_valid
        bodies.append(cache[None][1])
    # The same encoded Certificate message, not a fresh one per handshake.
    assert bodies[1] is bodies[0]
    assert bodies[2] is bodies[0]
