"""TLSStream errors, close, half-close, unwrap, concurrency, checkpoints, properties."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import pytest
import trio
import trio.testing
from trio.testing import MockClock, assert_checkpoints

import triotls
from triotls import (
    AlertReceived,
    BadRecordMac,
    CertificateVerificationError,
    CipherSuite,
    CloseReason,
    DecodeError,
    HandshakeKind,
    NamedGroup,
    NoApplicationProtocol,
    TLSError,
    TruncationError,
    UnexpectedMessage,
)
from triotls.config import ClientConfig, ServerConfig
from triotls.engine.enums import AlertDescription
from triotls.stream import CLOSE_TIMEOUT, TLSStream

from .helpers import (
    TRANSPORTS,
    RecordingStream,
    assert_broken,
    assert_data_flows,
    handshake_both,
    receive_exactly,
    record_lengths,
    tls_pair,
)

#: Everything here takes milliseconds; this bound turns a hang into a failure.
BOUND: Final = 10.0

transports = pytest.mark.parametrize("transport", sorted(TRANSPORTS))


async def _handshakes(client: TLSStream, server: TLSStream) -> dict[str, BaseException | None]:
    """Run both handshakes; return what each side raised (None: completed)."""
    results: dict[str, BaseException | None] = {}

    async def run(name: str, stream: TLSStream) -> None:
        try:
            await stream.do_handshake()
        except trio.BrokenResourceError as exc:
            results[name] = exc
        else:
            results[name] = None

    with trio.fail_after(BOUND):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run, "client", client)
            nursery.start_soon(run, "server", server)
    return results


async def _connected(
    transport: str, client_config: ClientConfig, server_config: ServerConfig
) -> tuple[TLSStream, TLSStream]:
    client, server = tls_pair(TRANSPORTS[transport](), client_config, server_config)
    with trio.fail_after(BOUND):
        await handshake_both(client, server)
    return client, server


_Config = TypeVar("_Config", ClientConfig, ServerConfig)


def _alpn(config: _Config, *protocols: str) -> _Config:
    return dataclasses.replace(config, alpn_protocols=protocols)


# --- failures reach both sides, as errors both TLS and trio code can catch ------


@transports
async def test_client_with_wrong_ca_raises_certificate_verification_error(
    transport: str, wrong_ca_client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server = tls_pair(TRANSPORTS[transport](), wrong_ca_client_config, server_config)
    results = await _handshakes(client, server)
    error = results["client"]
    assert isinstance(error, CertificateVerificationError)
    assert isinstance(error, trio.BrokenResourceError)
    assert "did not verify" in str(error)
    assert error.reasons
    assert error.sent_alert == AlertDescription.UNKNOWN_CA


@transports
async def test_server_learns_why_the_client_refused_its_certificate(
    transport: str, wrong_ca_client_config: ClientConfig, server_config: ServerConfig
) -> None:
    # The client flushes its fatal alert before raising: over lockstep too
    # (where a write waits for the reader), the server gets it and never hangs.
    client, server = tls_pair(TRANSPORTS[transport](), wrong_ca_client_config, server_config)
    results = await _handshakes(client, server)
    client_error, server_error = results["client"], results["server"]
    assert isinstance(client_error, CertificateVerificationError)
    assert isinstance(server_error, AlertReceived)
    assert isinstance(server_error, trio.BrokenResourceError)
    assert server_error.description == client_error.sent_alert
    assert server_error.description in (
        AlertDescription.UNKNOWN_CA,
        AlertDescription.BAD_CERTIFICATE,
    )
    assert "unknown_ca (48)" in str(server_error)


async def test_hostname_mismatch_is_bad_certificate_on_both_sides(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client_transport, server_transport = trio.testing.memory_stream_pair()
    client = TLSStream(client_transport, client_config, server_hostname="example.org")
    server = TLSStream(server_transport, server_config, server_side=True)
    results = await _handshakes(client, server)
    client_error, server_error = results["client"], results["server"]
    assert isinstance(client_error, CertificateVerificationError)
    assert "subjectAltName" in str(client_error)
    assert client_error.sent_alert == AlertDescription.BAD_CERTIFICATE
    assert isinstance(server_error, AlertReceived)
    assert server_error.description == AlertDescription.BAD_CERTIFICATE


@transports
async def test_alpn_mismatch_is_no_application_protocol_on_the_server_and_alert_on_the_client(
    transport: str, client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server = tls_pair(
        TRANSPORTS[transport](), _alpn(client_config, "http/1.1"), _alpn(server_config, "h2")
    )
    results = await _handshakes(client, server)
    server_error, client_error = results["server"], results["client"]
    assert isinstance(server_error, NoApplicationProtocol)
    assert isinstance(server_error, trio.BrokenResourceError)
    assert server_error.sent_alert == AlertDescription.NO_APPLICATION_PROTOCOL
    assert "http/1.1" in str(server_error)
    assert isinstance(client_error, AlertReceived)
    assert client_error.description == 120


async def test_garbage_from_the_client_gets_a_plaintext_fatal_alert_on_the_wire(
    server_config: ServerConfig,
) -> None:
    raw, server_transport = trio.testing.memory_stream_pair()
    server = TLSStream(server_transport, server_config, server_side=True)
    await raw.send_all(b"GET / HTTP/1.0\r\n\r\n")
    with trio.fail_after(BOUND), pytest.raises(UnexpectedMessage, match="content type") as info:
        await server.do_handshake()
    # alert record, TLS 1.2 legacy version, length 2, level fatal, description
    assert await raw.receive_some() == bytes(
        [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, info.value.sent_alert]
    )
    assert info.value.sent_alert == AlertDescription.UNEXPECTED_MESSAGE


@transports
async def test_tampered_record_is_bad_record_mac_and_the_sender_is_told(
    transport: str, client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client_inner, server_inner = TRANSPORTS[transport]()
    wire = RecordingStream(client_inner)
    client, server = tls_pair((wire, server_inner), client_config, server_config)
    with trio.fail_after(BOUND):
        await handshake_both(client, server)
        wire.corrupt_next_send = True

        async def client_side() -> None:
            await client.send_all(b"tampered on the way")
            with pytest.raises(AlertReceived, match=r"bad_record_mac \(20\)"):
                await client.receive_some()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(client_side)
            with pytest.raises(BadRecordMac, match="failed authentication"):
                await server.receive_some()


async def test_every_later_call_reraises_after_a_failure(
    wrong_ca_client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server = tls_pair(
        trio.testing.memory_stream_pair(), wrong_ca_client_config, server_config
    )
    await _handshakes(client, server)
    # The same error class again, not a generic one...
    with pytest.raises(CertificateVerificationError):
        await client.receive_some()
    with pytest.raises(AlertReceived):
        await server.send_all(b"x")
    # ... from every operation.
    await assert_broken(client)
    await assert_broken(server)


@dataclasses.dataclass(frozen=True)
class Failure:
    """A call that fails with ``expected`` while ``peer`` (if any) runs alongside."""

    call: Callable[[], Awaitable[object]]
    expected: type[TLSError]
    peer: Callable[[], Awaitable[object]] | None = None


Scenario = Callable[[ClientConfig, ClientConfig, ServerConfig], Awaitable[Failure]]


async def _wrong_ca_client_side(
    client_config: ClientConfig, wrong_ca: ClientConfig, server_config: ServerConfig
) -> Failure:
    client, server = tls_pair(trio.testing.memory_stream_pair(), wrong_ca, server_config)
    return Failure(client.do_handshake, CertificateVerificationError, server.do_handshake)


async def _wrong_ca_server_side(
    client_config: ClientConfig, wrong_ca: ClientConfig, server_config: ServerConfig
) -> Failure:
    client, server = tls_pair(trio.testing.memory_stream_pair(), wrong_ca, server_config)
    return Failure(server.do_handshake, AlertReceived, client.do_handshake)


async def _alpn_mismatch_server_side(
    client_config: ClientConfig, wrong_ca: ClientConfig, server_config: ServerConfig
) -> Failure:
    client, server = tls_pair(
        trio.testing.memory_stream_pair(),
        _alpn(client_config, "http/1.1"),
        _alpn(server_config, "h2"),
    )
    return Failure(server.receive_some, NoApplicationProtocol, client.do_handshake)


async def _alpn_mismatch_client_side(
    client_config: ClientConfig, wrong_ca: ClientConfig, server_config: ServerConfig
) -> Failure:
    client, server = tls_pair(
        trio.testing.memory_stream_pair(),
        _alpn(client_config, "http/1.1"),
        _alpn(server_config, "h2"),
    )
    return Failure(lambda: client.send_all(b"x"), AlertReceived, server.do_handshake)


async def _truncated(
    client_config: ClientConfig, wrong_ca: ClientConfig, server_config: ServerConfig
) -> Failure:
    client, server = tls_pair(trio.testing.memory_stream_pair(), client_config, server_config)
    await handshake_both(client, server)
    await client.transport_stream.aclose()
    return Failure(server.receive_some, TruncationError)


async def _malformed_client_hello(
    client_config: ClientConfig, wrong_ca: ClientConfig, server_config: ServerConfig
) -> Failure:
    raw, server_transport = trio.testing.memory_stream_pair()
    server = TLSStream(server_transport, server_config, server_side=True)
    await raw.send_all(b"\x16\x03\x01\x00\x05hello")  # a handshake record of junk
    return Failure(server.receive_some, DecodeError)


async def _tampered_record(
    client_config: ClientConfig, wrong_ca: ClientConfig, server_config: ServerConfig
) -> Failure:
    client_inner, server_inner = trio.testing.memory_stream_pair()
    wire = RecordingStream(client_inner)
    client, server = tls_pair((wire, server_inner), client_config, server_config)
    await handshake_both(client, server)
    wire.corrupt_next_send = True
    await client.send_all(b"tampered")
    return Failure(server.receive_some, BadRecordMac)


async def _ignore_broken(fn: Callable[[], Awaitable[object]]) -> None:
    with contextlib.suppress(trio.BrokenResourceError):
        await fn()


SCENARIOS: Final[dict[str, Scenario]] = {
    "wrong CA, client side": _wrong_ca_client_side,
    "wrong CA, server side": _wrong_ca_server_side,
    "ALPN mismatch, server side": _alpn_mismatch_server_side,
    "ALPN mismatch, client side": _alpn_mismatch_client_side,
    "truncation": _truncated,
    "malformed ClientHello": _malformed_client_hello,
    "tampered record": _tampered_record,
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
async def test_every_tls_failure_is_caught_by_its_own_class(
    scenario: str,
    client_config: ClientConfig,
    wrong_ca_client_config: ClientConfig,
    server_config: ServerConfig,
) -> None:
    failure = await SCENARIOS[scenario](client_config, wrong_ca_client_config, server_config)
    # The class is the public one, from triotls's namespace.
    assert getattr(triotls, failure.expected.__name__) is failure.expected
    caught: BaseException | None = None
    with trio.fail_after(BOUND):
        async with trio.open_nursery() as nursery:
            if failure.peer is not None:
                nursery.start_soon(_ignore_broken, failure.peer)
            try:
                await failure.call()
            except failure.expected as exc:
                caught = exc
    assert caught is not None
    assert isinstance(caught, TLSError)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
async def test_every_tls_failure_is_caught_as_trio_broken_resource_error(
    scenario: str,
    client_config: ClientConfig,
    wrong_ca_client_config: ClientConfig,
    server_config: ServerConfig,
) -> None:
    failure = await SCENARIOS[scenario](client_config, wrong_ca_client_config, server_config)
    caught: BaseException | None = None
    with trio.fail_after(BOUND):
        async with trio.open_nursery() as nursery:
            if failure.peer is not None:
                nursery.start_soon(_ignore_broken, failure.peer)
            try:
                await failure.call()
            except trio.BrokenResourceError as exc:  # code written for any trio stream
                caught = exc
    assert isinstance(caught, failure.expected)


class SlowReader(trio.abc.Stream):
    """A transport whose reads, after the first ``prompt`` ones, wait ``delay`` seconds."""

    def __init__(self, inner: trio.abc.Stream, *, prompt: int, delay: float) -> None:
        self.inner = inner
        self._prompt = prompt
        self._delay = delay

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        if self._prompt:
            self._prompt -= 1
        else:
            await trio.sleep(self._delay)
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_fatal_alert_flush_outlives_the_callers_cancellation(
    wrong_ca_client_config: ClientConfig, server_config: ServerConfig, autojump_clock: MockClock
) -> None:
    # Over lockstep, the client's alert can only leave when the server reads,
    # which it does at t=1. The caller gives up at t=0.5, but the flush is
    # shielded: the client finishes sending the alert, then raises the error.
    client_transport, server_transport = trio.testing.lockstep_stream_pair()
    client = TLSStream(client_transport, wrong_ca_client_config, server_hostname="localhost")
    server = TLSStream(
        SlowReader(server_transport, prompt=1, delay=1.0), server_config, server_side=True
    )
    server_errors: list[BaseException] = []

    async def server_side() -> None:
        try:
            await server.do_handshake()
        except trio.BrokenResourceError as exc:
            server_errors.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server_side)
        with pytest.raises(CertificateVerificationError), trio.move_on_after(0.5):
            await client.do_handshake()
        raised_at = trio.current_time()
    assert raised_at == pytest.approx(1.0)  # when the server read the alert, not at 0.5
    [server_error] = server_errors
    assert isinstance(server_error, AlertReceived)
    assert server_error.description == AlertDescription.UNKNOWN_CA


async def test_fatal_alert_flush_is_bounded_when_the_peer_never_reads(
    wrong_ca_client_config: ClientConfig, server_config: ServerConfig, autojump_clock: MockClock
) -> None:
    client_transport, server_transport = trio.testing.lockstep_stream_pair()
    client = TLSStream(client_transport, wrong_ca_client_config, server_hostname="localhost")
    server = TLSStream(
        SlowReader(server_transport, prompt=1, delay=math.inf), server_config, server_side=True
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.do_handshake)
        with pytest.raises(CertificateVerificationError):
            await client.do_handshake()
        nursery.cancel_scope.cancel()
    assert trio.current_time() == pytest.approx(CLOSE_TIMEOUT)


# --- close, EOF and half-close --------------------------------------------------


@transports
async def test_aclose_sends_close_notify_and_peer_sees_clean_eof(
    transport: str, client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server = await _connected(transport, client_config, server_config)
    reason_before = server.close_reason
    with trio.fail_after(BOUND):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send_all, b"last words")
            assert await receive_exactly(server, 10) == b"last words"
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.aclose)
            assert await server.receive_some() == b""
    assert reason_before is None
    assert server.close_reason is CloseReason.CLOSE_NOTIFY
    assert server.close_reason.value == "close_notify"
    assert await server.receive_some() == b""  # and stays so
    with pytest.raises(trio.ClosedResourceError):
        await client.send_all(b"more")
    with pytest.raises(trio.ClosedResourceError):
        await client.receive_some()
    await server.aclose()


async def test_aclose_is_bounded_when_the_peer_does_not_read(
    client_config: ClientConfig, server_config: ServerConfig, autojump_clock: MockClock
) -> None:
    client, server = await _connected("lockstep", client_config, server_config)
    start = trio.current_time()
    await client.aclose()  # the close_notify write never completes over lockstep
    assert trio.current_time() - start == pytest.approx(CLOSE_TIMEOUT)
    # ... and the transport is closed anyway: writing to it fails.
    with pytest.raises(trio.BrokenResourceError):
        await server.transport_stream.send_all(b"anyone there?")


async def test_aclose_when_cancelled_still_closes_the_transport(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server = await _connected("memory", client_config, server_config)
    await trio.aclose_forcefully(client)
    with pytest.raises(trio.ClosedResourceError):
        await client.send_all(b"x")
    # No close_notify went out: the server sees a truncation.
    with trio.fail_after(BOUND), pytest.raises(TruncationError):
        await server.receive_some()


async def test_aclose_before_the_handshake_sends_nothing(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server = tls_pair(trio.testing.memory_stream_pair(), client_config, server_config)
    await client.aclose()
    with trio.fail_after(BOUND), pytest.raises(TruncationError, match="during the handshake"):
        await server.do_handshake()


async def test_eof_without_close_notify_is_truncation(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server = await _connected("memory", client_config, server_config)
    await client.send_all(b"complete? ")
    await client.transport_stream.aclose()
    assert await server.receive_some() == b"complete? "
    with pytest.raises(TruncationError, match="without sending close_notify") as info:
        await server.receive_some()
    assert isinstance(info.value, trio.BrokenResourceError)
    assert server.close_reason is None
    with pytest.raises(trio.BrokenResourceError):
        await server.receive_some()


async def test_https_compatible_turns_ragged_eof_into_end_of_stream(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    config = dataclasses.replace(server_config, https_compatible=True)
    client, server = await _connected("memory", client_config, config)
    await client.send_all(b"response body")
    await client.transport_stream.aclose()
    assert await server.receive_some() == b"response body"
    assert await server.receive_some() == b""
    assert server.close_reason is CloseReason.RAGGED_EOF
    assert await server.receive_some() == b""


async def test_https_compatible_does_not_excuse_eof_during_the_handshake(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    config = dataclasses.replace(client_config, https_compatible=True)
    client_transport, server_transport = trio.testing.memory_stream_pair()
    client = TLSStream(client_transport, config, server_hostname="localhost")
    await server_transport.send_eof()  # the server end says nothing and hangs up
    with trio.fail_after(BOUND), pytest.raises(TruncationError, match="during the handshake"):
        await client.do_handshake()


@transports
async def test_send_eof_half_closes_and_the_other_direction_still_works(
    transport: str, client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server = await _connected(transport, client_config, server_config)
    with trio.fail_after(BOUND):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send_eof)
            assert await server.receive_some() == b""
        assert server.close_reason is CloseReason.CLOSE_NOTIFY
        with pytest.raises(trio.ClosedResourceError, match="send_eof"):
            await client.send_all(b"after eof")
        await client.send_eof()  # again: a no-op
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.send_all, b"still talking")
            assert await receive_exactly(client, 13) == b"still talking"
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.send_eof)
            assert await client.receive_some() == b""
    assert client.close_reason is CloseReason.CLOSE_NOTIFY
    await client.aclose()
    await server.aclose()


async def test_unwrap_returns_the_transport_and_the_bytes_after_close_notify(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server = await _connected("memory", client_config, server_config)
    client_transport = client.transport_stream
    # The server ends TLS and goes on in plaintext on the same connection.
    await server.send_eof()
    await server.transport_stream.send_all(b"PLAINTEXT")
    with trio.fail_after(BOUND):
        transport, trailing = await client.unwrap()
    assert transport is client_transport
    assert trailing == b"PLAINTEXT"
    with pytest.raises(trio.ClosedResourceError):
        await client.receive_some()
    # Our close_notify reached the server; the transport carries on.
    with trio.fail_after(BOUND):
        server_transport, server_trailing = await server.unwrap()
    assert server_trailing == b""
    await server_transport.send_all(b"more")
    assert await transport.receive_some() == b"more"


async def test_unwrap_without_the_peers_close_notify_is_truncation(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client_transport, server_transport = trio.testing.memory_stream_pair()
    client, server = tls_pair((client_transport, server_transport), client_config, server_config)
    with trio.fail_after(BOUND):
        await handshake_both(client, server)
    await server_transport.send_eof()  # a transport EOF, no close_notify
    with trio.fail_after(BOUND), pytest.raises(TruncationError, match="close_notify"):
        await client.unwrap()


# --- concurrency ------------------------------------------------------------------


async def test_concurrent_send_all_raises_busy_resource_error(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server = await _connected("lockstep", client_config, server_config)
    with trio.fail_after(BOUND):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send_all, b"blocks until read")
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await client.send_all(b"second")
            with pytest.raises(trio.BusyResourceError):
                await client.send_eof()
            with pytest.raises(trio.BusyResourceError):
                await client.key_update()
            with pytest.raises(trio.BusyResourceError):
                await client.wait_send_all_might_not_block()
            assert await receive_exactly(server, 17) == b"blocks until read"
        # The refused calls harmed nothing.
        await assert_data_flows(client, server)


async def test_concurrent_receive_some_raises_busy_resource_error(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server = await _connected("memory", client_config, server_config)
    with trio.fail_after(BOUND):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive_exactly, client, 5)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await client.receive_some()
            await server.send_all(b"hello")
        await assert_data_flows(client, server)


async def test_send_all_and_receive_some_may_both_drive_the_handshake(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server = tls_pair(trio.testing.lockstep_stream_pair(), client_config, server_config)
    got: list[bytes] = []

    async def receive() -> None:
        got.append(await receive_exactly(client, 5))

    with trio.fail_after(BOUND):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)
            nursery.start_soon(client.send_all, b"hello")
            assert await receive_exactly(server, 5) == b"hello"
            await server.send_all(b"world")
    assert got == [b"world"]


@transports
async def test_key_update_received_during_a_concurrent_send_all_is_answered_in_order(
    transport: str, client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client_inner, server_inner = TRANSPORTS[transport]()
    client_wire = RecordingStream(client_inner)
    client, server = tls_pair((client_wire, server_inner), client_config, server_config)
    payload = bytes(range(256)) * 8192  # 2 MiB: many records, many writes
    first_data = trio.Event()
    server_got = bytearray()
    client_got = bytearray()

    async def client_receive() -> None:
        # This receive_some takes the KeyUpdate while the other task is in the
        # middle of its send_all; the answer must precede the next record
        # sealed with the new key, and nothing may break.
        while chunk := await client.receive_some():
            client_got.extend(chunk)

    async def server_receive() -> None:
        while len(server_got) < len(payload):
            chunk = await server.receive_some()
            assert chunk, "the client's data ended early"
            server_got.extend(chunk)
            first_data.set()

    async def server_update() -> None:
        await first_data.wait()
        await server.key_update(request_peer=True)
        await server.send_all(b"sent with new keys")
        await server.send_eof()

    with trio.fail_after(BOUND):
        await handshake_both(client, server)
        handshake_bytes = len(client_wire.sent)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client_receive)
            nursery.start_soon(server_receive)
            nursery.start_soon(server_update)
            await client.send_all(payload)
    assert server_got == payload
    assert client_got == b"sent with new keys"
    # Exactly one record of a KeyUpdate's size (22 bytes: 5-byte message,
    # content type, 16-byte tag) went out among the application data.
    lengths = [length for _, length in record_lengths(client_wire.sent[handshake_bytes:])]
    assert lengths.count(22) == 1
    assert lengths.index(22) > 0  # not before the payload started
    # The server half-closed; the client's direction still works.
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.send_all, b"still fine")
        assert await receive_exactly(server, 10) == b"still fine"


async def test_full_duplex_bulk_transfer_over_a_socket_does_not_deadlock(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    # Both sides send and receive at once, more than the socket buffers hold.
    # A reader that waited for its own side's writer (blocked because the
    # peer is not reading) would deadlock both ends.
    client_socket, server_socket = trio.socket.socketpair()
    client = TLSStream(trio.SocketStream(client_socket), client_config, server_hostname="localhost")
    server = TLSStream(trio.SocketStream(server_socket), server_config, server_side=True)
    size = 2 * 2**20
    received: dict[str, int] = {}

    async def receive_all(name: str, stream: TLSStream) -> None:
        total = 0
        while total < size:
            chunk = await stream.receive_some()
            assert chunk
            total += len(chunk)
        received[name] = total

    with trio.fail_after(BOUND):
        await handshake_both(client, server)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send_all, b"c" * size)
            nursery.start_soon(server.send_all, b"s" * size)
            nursery.start_soon(receive_all, "client", client)
            nursery.start_soon(receive_all, "server", server)
        await client.aclose()
        await server.aclose()
    assert received == {"client": size, "server": size}


async def test_receive_some_returns_data_while_a_send_only_peer_never_reads(
    client_config: ClientConfig, server_config: ServerConfig, autojump_clock: MockClock
) -> None:
    # RFC 8446 §4.6.3: our KeyUpdate answer is due before our next
    # application data, so receiving writes nothing; over lockstep (no
    # buffer) a receive that wrote would wait forever for this peer to read.
    client, server = await _connected("lockstep", client_config, server_config)

    async def send_only() -> None:
        await server.key_update(request_peer=True)
        await server.send_all(b"data")

    got = b""
    with trio.move_on_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_only)
            got = await receive_exactly(client, 4)
    assert got == b"data", "receive_some blocked writing its KeyUpdate answer"
    # The answer goes out with our next data, ahead of it.
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.send_all, b"reply")
        assert await receive_exactly(server, 5) == b"reply"


# --- every async method checkpoints, fast paths included --------------------------


async def test_every_async_method_checkpoints_including_fast_paths(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server = tls_pair(trio.testing.memory_stream_pair(), client_config, server_config)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.do_handshake)
        with assert_checkpoints():
            await client.do_handshake()
    with assert_checkpoints():
        await client.do_handshake()  # already done
    with assert_checkpoints():
        await client.send_all(b"")
    with assert_checkpoints():
        await client.send_all(b"ab")
    with assert_checkpoints():
        assert await server.receive_some(1) == b"a"
    with assert_checkpoints():
        assert await server.receive_some(1) == b"b"  # from the buffer
    with assert_checkpoints():
        await client.wait_send_all_might_not_block()
    with assert_checkpoints():
        await client.key_update()
    with assert_checkpoints():
        await client.send_eof()
    with assert_checkpoints():
        await client.send_eof()  # already sent
    with assert_checkpoints():
        assert await server.receive_some() == b""
    with assert_checkpoints():
        assert await server.receive_some() == b""  # already ended
    with assert_checkpoints():
        await server.send_eof()
    with assert_checkpoints():
        await client.unwrap()
    with assert_checkpoints():
        await server.aclose()
    with assert_checkpoints():
        await server.aclose()  # already closed


# --- what was negotiated ------------------------------------------------------------


async def test_properties_before_the_handshake_are_empty(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, _server = tls_pair(trio.testing.memory_stream_pair(), client_config, server_config)
    assert client.negotiated is None
    assert client.version is None
    assert client.cipher_suite is None
    assert client.group is None
    assert client.alpn_protocol is None
    assert client.server_name is None
    assert client.handshake_kind is None
    assert client.session_resumed is False
    assert client.handshake_seconds is None
    assert client.close_reason is None


async def test_negotiated_properties_with_default_configs(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server = await _connected("memory", client_config, server_config)
    for stream in (client, server):
        assert stream.version == "TLSv1.3"
        # Both sides' first preferences: the client's first key share is taken.
        assert stream.cipher_suite is CipherSuite.TLS_AES_128_GCM_SHA256
        assert stream.group is NamedGroup.X25519MLKEM768
        assert stream.alpn_protocol is None
        assert stream.server_name == "localhost"
        assert stream.handshake_kind is HandshakeKind.FULL
        assert stream.session_resumed is False
        assert stream.handshake_seconds is not None
    assert client.negotiated is not None
    assert client.negotiated.verified_chain is not None
    assert client.negotiated.peer_certificates[0] == server_config.certificates[0].chain[0]


async def test_negotiated_properties_follow_the_configs(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client_config = dataclasses.replace(
        client_config,
        cipher_suites=(CipherSuite.TLS_CHACHA20_POLY1305_SHA256,),
        key_share_groups=(NamedGroup.X25519,),
        alpn_protocols=("h2", "http/1.1"),
    )
    server_config = dataclasses.replace(
        server_config, groups=(NamedGroup.SECP384R1,), alpn_protocols=("http/1.1", "h2")
    )
    client, server = await _connected("memory", client_config, server_config)
    for stream in (client, server):
        assert stream.cipher_suite is CipherSuite.TLS_CHACHA20_POLY1305_SHA256
        # The server wanted another group than the client's key share: HRR.
        assert stream.group is NamedGroup.SECP384R1
        assert stream.handshake_kind is HandshakeKind.FULL_WITH_HELLO_RETRY_REQUEST
        assert stream.alpn_protocol == "http/1.1"  # the server's preference
        assert stream.session_resumed is False


async def test_export_keying_material_agrees_on_both_sides(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server = await _connected("memory", client_config, server_config)
    ours = client.export_keying_material(b"EXPORTER-test", b"context", 32)
    assert ours == server.export_keying_material(b"EXPORTER-test", b"context", 32)
    assert ours != client.export_keying_material(b"EXPORTER-test", b"other", 32)
