"""Hostile input: whatever the peer sends, the engine raises only TLSError subclasses.

An ``InternalError`` (or any exception that is not a ``TLSError``) is a bug:
it means some peer-controlled condition was not checked. These tests feed
arbitrary bytes, arbitrary well-framed records, and mutations of real
handshake messages (plaintext ones on the wire, encrypted ones just before
they are sealed), and they check that nothing hangs or grows without bound.
"""

from __future__ import annotations

import contextlib
import functools
import random
import signal
import time
import tracemalloc
from collections.abc import Callable, Iterator
from types import FrameType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.properties.strategies import Mutation, mutation_plans, mutations
from tests.support.engine_pairs import (
    DeterministicRandom,
    KeyKind,
    make_pair,
    pump,
    rewrite_outgoing_handshake,
    split_records,
)
from triotls.engine import ClientConnection, Connection, ServerConnection
from triotls.engine.connection import MAX_IDLE_RECORDS
from triotls.engine.enums import AlertDescription, ContentType, HandshakeType, NamedGroup
from triotls.engine.messages import Certificate, CertificateEntry, frame
from triotls.errors import InternalError, TLSError, UnexpectedMessage

EXAMPLES = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HANDSHAKE_EXAMPLES = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _survives(conn: Connection, *chunks: bytes) -> TLSError | None:
    """Feed ``chunks`` then EOF; return the TLSError raised, failing on any other error."""
    try:
        for chunk in (*chunks, b""):
            conn.receive_data(chunk)
            conn.data_to_send()
    except InternalError as exc:
        raise AssertionError(f"hostile input caused an internal error: {exc!r}") from exc
    except TLSError as exc:
        # Once failed, the connection keeps raising the same error.
        with pytest.raises(TLSError) as again:
            conn.receive_data(b"\x16\x03\x03\x00\x01\x01")
        assert again.value is exc
        return exc
    return None


def _fresh_server() -> ServerConnection:
    return make_pair()[1]


def _started_client(seed: bytes = b"hostile client") -> ClientConnection:
    client, _server = make_pair(client_kw={"random": DeterministicRandom(seed)})
    client.start_handshake()
    client.data_to_send()
    return client


# --- arbitrary bytes and arbitrary records -----------------------------------------------------

content_types = st.sampled_from([20, 21, 22, 23]) | st.integers(0, 255)


@st.composite
def records(draw: st.DrawFn) -> bytes:
    """Well-framed records of any type, often holding handshake messages of any type."""
    out = bytearray()
    for _ in range(draw(st.integers(1, 4))):
        content_type = draw(content_types)
        if content_type == ContentType.HANDSHAKE and draw(st.booleans()):
            msg_type = draw(st.sampled_from(list(HandshakeType)) | st.integers(0, 255))
            body = frame(msg_type, draw(st.binary(max_size=300)))
        else:
            body = draw(st.binary(max_size=300))
        version = draw(st.sampled_from([0x0301, 0x0303]) | st.integers(0, 0xFFFF))
        out += bytes([content_type]) + version.to_bytes(2, "big") + len(body).to_bytes(2, "big")
        out += body
    return bytes(out)


@EXAMPLES
@given(data=st.binary(max_size=2000))
def test_arbitrary_bytes_to_a_fresh_server_raise_only_tls_errors(data: bytes) -> None:
    _survives(_fresh_server(), data)


@EXAMPLES
@given(data=st.binary(max_size=2000))
def test_arbitrary_bytes_to_a_started_client_raise_only_tls_errors(data: bytes) -> None:
    _survives(_started_client(), data)


@EXAMPLES
@given(wire=records())
def test_arbitrary_records_to_a_fresh_server_raise_only_tls_errors(wire: bytes) -> None:
    _survives(_fresh_server(), wire)


@EXAMPLES
@given(wire=records())
def test_arbitrary_records_to_a_started_client_raise_only_tls_errors(wire: bytes) -> None:
    _survives(_started_client(), wire)


# --- mutations of real plaintext handshake bytes -------------------------------------------------


@functools.cache
def _client_hello_wire() -> bytes:
    client, _server = make_pair(client_kw={"random": DeterministicRandom(b"recorded hello")})
    client.start_handshake()
    return client.data_to_send()


@functools.cache
def _server_flight_wire() -> bytes:
    """A server flight answering the ClientHello of ``_started_client()``."""
    client, server = make_pair(client_kw={"random": DeterministicRandom(b"hostile client")})
    client.start_handshake()
    pump(client, server)
    return server.data_to_send()


@HANDSHAKE_EXAMPLES
@given(data=st.data())
def test_mutated_client_hello_raises_only_tls_errors(data: st.DataObject) -> None:
    wire = data.draw(mutations(_client_hello_wire()))
    _survives(_fresh_server(), wire)


@HANDSHAKE_EXAMPLES
@given(data=st.data())
def test_mutated_client_hello_body_in_a_valid_record_raises_only_tls_errors(
    data: st.DataObject,
) -> None:
    # Re-frame the mutated message so the record layer passes it to the parser.
    message = split_records(_client_hello_wire())[0][5:]
    body = data.draw(mutations(message[4:]))
    raw = frame(HandshakeType.CLIENT_HELLO, body)
    chunks = [raw[i : i + 2**14] for i in range(0, len(raw), 2**14)] or [b""]
    wire = b"".join(
        b"\x16\x03\x01" + len(chunk).to_bytes(2, "big") + chunk for chunk in chunks if chunk
    )
    _survives(_fresh_server(), wire)


@HANDSHAKE_EXAMPLES
@given(data=st.data())
def test_mutated_server_flight_raises_only_tls_errors(data: st.DataObject) -> None:
    flight = _server_flight_wire()
    plaintext_end = len(split_records(flight)[0])
    # Half the examples aim at the plaintext ServerHello, where mutations parse.
    if data.draw(st.booleans()):
        head = data.draw(mutations(flight[:plaintext_end]))
        wire = head + flight[plaintext_end:]
    else:
        wire = data.draw(mutations(flight))
    _survives(_started_client(), wire)


# --- mutations of encrypted handshake messages ---------------------------------------------

server_messages = st.sampled_from(
    [
        HandshakeType.SERVER_HELLO,
        HandshakeType.ENCRYPTED_EXTENSIONS,
        HandshakeType.CERTIFICATE,
        HandshakeType.CERTIFICATE_VERIFY,
        HandshakeType.FINISHED,
    ]
)


def _mutating(target: int, plan: Mutation, *, body_only: bool) -> Callable[[bytes], bytes]:
    def rewrite(raw: bytes) -> bytes:
        if raw[0] != target:
            return raw
        if body_only:
            return frame(raw[0], plan.apply(raw[4:]))
        return plan.apply(raw)

    return rewrite


@HANDSHAKE_EXAMPLES
@given(plan=mutation_plans(), target=server_messages, body_only=st.booleans())
def test_mutated_server_handshake_message_raises_only_tls_errors(
    plan: Mutation, target: HandshakeType, body_only: bool
) -> None:
    # The mutation happens after the server hashed the message and before it is
    # sealed, so the client decrypts it and has to parse and judge it.
    client, server = make_pair(client_kw={"alpn_protocols": ("h2",)})
    rewrite_outgoing_handshake(server, _mutating(target, plan, body_only=body_only))
    client.start_handshake()
    pump(client, server)
    error = _survives(client, server.data_to_send())
    if error is None:
        # Only a mutation the transcript cannot see may pass (none should).
        assert client.handshake_complete


@HANDSHAKE_EXAMPLES
@given(
    plan=mutation_plans(), verify=st.booleans(), kind=st.sampled_from(["ecdsa", "rsa", "ed25519"])
)
def test_mutated_server_certificate_raises_only_tls_errors(
    plan: Mutation, verify: bool, kind: KeyKind
) -> None:
    # The DER is mutated inside a well-formed Certificate message, so the X.509
    # parser, the chain verifier and the key extraction all see hostile input.
    client, server = make_pair(client_kw={"verify_peer": verify}, kind=kind)

    def rewrite(raw: bytes) -> bytes:
        if raw[0] != HandshakeType.CERTIFICATE:
            return raw
        cert = Certificate.decode(raw[4:])
        leaf = plan.apply(cert.certificate_list[0].cert_data) or b"\x30"
        entries = (CertificateEntry(cert_data=leaf), *cert.certificate_list[1:])
        return frame(raw[0], Certificate(certificate_list=entries).encode())

    rewrite_outgoing_handshake(server, rewrite)
    client.start_handshake()
    pump(client, server)
    _survives(client, server.data_to_send())


@HANDSHAKE_EXAMPLES
@given(plan=mutation_plans(), body_only=st.booleans())
def test_mutated_client_finished_raises_only_tls_errors(plan: Mutation, body_only: bool) -> None:
    client, server = make_pair()
    rewrite_outgoing_handshake(client, _mutating(HandshakeType.FINISHED, plan, body_only=body_only))
    client.start_handshake()
    pump(client, server)
    pump(server, client)
    error = _survives(server, client.data_to_send())
    assert error is not None or not server.handshake_complete


@HANDSHAKE_EXAMPLES
@given(plan=mutation_plans())
def test_mutated_hello_retry_request_raises_only_tls_errors(plan: Mutation) -> None:
    client, server = make_pair(
        client_kw={"key_share_groups": (NamedGroup.X25519,)},
        server_kw={"groups": (NamedGroup.SECP256R1,)},
    )
    client.start_handshake()
    pump(client, server)
    hrr = server.data_to_send()
    _survives(client, plan.apply(hrr))


@HANDSHAKE_EXAMPLES
@given(plan=mutation_plans())
def test_mutated_records_after_the_handshake_raise_only_tls_errors(plan: Mutation) -> None:
    client, server = make_pair()
    client.start_handshake()
    pump(client, server)
    pump(server, client)
    pump(client, server)
    server.send_application_data(b"data " * 10)
    server.key_update(request_peer=True)
    server.close()
    _survives(client, plan.apply(server.data_to_send()))


# --- nothing hangs, nothing grows -----------------------------------------------------


class _Timeout(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Fail (instead of hanging the suite) if the block runs longer than ``seconds``."""

    def expire(_signum: int, _frame: FrameType | None) -> None:
        raise _Timeout(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


_MIB = 2**20


def _garbage(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def _feed_in_chunks(conn: Connection, wire: bytes, size: int) -> tuple[TLSError, int]:
    """Feed ``wire`` in ``size`` chunks until an error; return it and the bytes fed so far."""
    fed = 0
    with pytest.raises(TLSError) as info:
        for start in range(0, len(wire), size):
            fed += size
            conn.receive_data(wire[start : start + size])
    assert not isinstance(info.value, InternalError)
    return info.value, fed


@pytest.mark.parametrize("make", [_fresh_server, _started_client], ids=["server", "client"])
def test_one_mib_of_garbage_in_one_call_ends_with_an_error_promptly(
    make: Callable[[], Connection],
) -> None:
    conn = make()
    started = time.monotonic()
    with _time_limit(10), pytest.raises(TLSError) as info:
        conn.receive_data(_garbage(_MIB, seed=1))
    assert not isinstance(info.value, InternalError)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("make", [_fresh_server, _started_client], ids=["server", "client"])
def test_one_mib_of_garbage_in_chunks_fails_within_the_first_record(
    make: Callable[[], Connection],
) -> None:
    with _time_limit(10):
        _error, fed = _feed_in_chunks(make(), _garbage(_MIB, seed=2), 4096)
    assert fed <= 2**14 + 2 * 4096


def test_endless_handshake_message_is_cut_off_at_the_size_limit() -> None:
    # A ClientHello that claims the largest size allowed, then never ends well:
    # 4 MiB of handshake records must not be buffered beyond the limit.
    server = _fresh_server()
    limit = server.config.max_handshake_message_size
    header = bytes([HandshakeType.CLIENT_HELLO]) + limit.to_bytes(3, "big")
    payload = header + _garbage(4 * _MIB, seed=3)
    wire = b"".join(
        b"\x16\x03\x01" + len(chunk).to_bytes(2, "big") + chunk
        for chunk in (payload[i : i + 2**14] for i in range(0, len(payload), 2**14))
    )
    tracemalloc.start()
    try:
        with _time_limit(10):
            _error, fed = _feed_in_chunks(server, wire, 2**16)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The message is judged once complete, long before the stream ends.
    assert fed <= limit + 2 * 2**16
    assert peak < 8 * limit


_CCS_RECORD = b"\x14\x03\x03\x00\x01\x01"


# Chunk sizes that are not multiples of the 6-byte record: records straddle chunks.
@pytest.mark.parametrize("chunk", [1, 5, 4096])
def test_a_flood_of_change_cipher_spec_records_is_refused_early(chunk: int) -> None:
    # RFC 8446 §5 lets the peer send dummy CCS records during the handshake;
    # one is normal, a megabyte of them is a flood: refused at record
    # MAX_IDLE_RECORDS + 1, long before the end, and nothing after it is read.
    client = _started_client()
    flood = _CCS_RECORD * (_MIB // len(_CCS_RECORD))
    with _time_limit(5):
        error, fed = _feed_in_chunks(client, flood, chunk)
    assert isinstance(error, UnexpectedMessage)
    assert "change_cipher_spec" in str(error)
    assert "refusing the flood" in str(error)
    assert error.sent_alert == AlertDescription.UNEXPECTED_MESSAGE
    assert error.events == ()
    # Refused by the chunk that completes record MAX_IDLE_RECORDS + 1: not
    # before (the limit's records are allowed), not a chunk later.
    refused_at = (MAX_IDLE_RECORDS + 1) * len(_CCS_RECORD)
    assert refused_at <= fed < refused_at + chunk
    assert fed < len(flood) // 100
    # One plaintext unexpected_message alert (no keys yet), nothing else.
    alert = bytes([ContentType.ALERT, 3, 3, 0, 2, 2, AlertDescription.UNEXPECTED_MESSAGE])
    assert client.data_to_send() == alert
    # The rest of the megabyte is not processed: the same error, no new output.
    with _time_limit(5):
        for start in range(fed, len(flood), 2**16):
            with pytest.raises(TLSError) as again:
                client.receive_data(flood[start : start + 2**16])
            assert again.value is error
    assert client.error is error
    assert client.data_to_send() == b""


def test_as_many_change_cipher_spec_records_as_the_limit_allows_are_dropped() -> None:
    client = _started_client()
    assert client.receive_data(_CCS_RECORD * MAX_IDLE_RECORDS) == []
    assert client.error is None
    assert client.data_to_send() == b""


def test_bytes_after_a_failure_are_not_processed() -> None:
    server = _fresh_server()
    with pytest.raises(TLSError) as first:
        server.receive_data(b"\x63" * 10)
    with _time_limit(5):
        for _ in range(1000):
            with pytest.raises(TLSError) as again:
                server.receive_data(_garbage(4096, seed=4))
            # The first error, raised again: the new bytes were not parsed.
            assert again.value is first.value
