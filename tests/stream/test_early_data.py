"""0-RTT through the trio layer: do_handshake(early_data=...) and receive_early_data().

A client with a cached session that allows early data sends it with the
ClientHello; the server reads it with ``receive_early_data()`` before the
handshake completes and may answer at once (0.5-RTT). Refused or never
offered, the data does not arrive and the client is told so
(``early_data_status``); nothing resends it behind the caller's back.
Early data never comes out of ``receive_some``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Final

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from triotls import (
    EarlyDataStatus,
    HandshakeKind,
    HandshakeTimeout,
    SessionCache,
    TicketKeys,
    TLSListener,
    UsageError,
)
from triotls.config import ClientConfig, ServerConfig
from triotls.listener import open_tls_over_tcp_stream, serve_tls_over_tcp
from triotls.stream import TLSStream

from .helpers import handshake_both, receive_exactly, tls_pair

REQUEST: Final = b"GET /resource HTTP/1.1\r\n\r\n"
#: Bounds each conversation; a hang fails the test instead of blocking the run.
BOUND: Final = 10.0


@pytest.fixture
def early_server(server_config: ServerConfig) -> ServerConfig:
    """A server that accepts up to 4 KiB of early data, with its own ticket keys."""
    return dataclasses.replace(
        server_config,
        max_early_data_size=4096,
        ticket_keys=TicketKeys(),
        early_data_replay_guard=None,
    )


@pytest.fixture
def cached_client(client_config: ClientConfig) -> ClientConfig:
    return dataclasses.replace(client_config, session_cache=SessionCache())


def _memory_pair(client: ClientConfig, server: ServerConfig) -> tuple[TLSStream, TLSStream]:
    return tls_pair(trio.testing.memory_stream_pair(), client, server)


async def _first_visit(client_config: ClientConfig, server_config: ServerConfig) -> None:
    """A full handshake whose tickets land in the client's cache."""
    client, server = _memory_pair(client_config, server_config)
    await handshake_both(client, server)
    assert client.handshake_kind is HandshakeKind.FULL
    # The tickets came with the server's first flight, before its Finished.
    assert client_config.session_cache is not None
    assert len(client_config.session_cache) == server_config.ticket_count


async def test_accepted_early_data_reaches_the_server_before_the_handshake_completes(
    cached_client: ClientConfig, early_server: ServerConfig
) -> None:
    await _first_visit(cached_client, early_server)
    client, server = _memory_pair(cached_client, early_server)
    seen: dict[str, object] = {}

    async def serve() -> None:
        seen["early"] = await server.receive_early_data()
        seen["negotiated_then"] = server.negotiated
        # 0.5-RTT: the answer leaves before the client's Finished arrives.
        await server.send_all(b"answer to " + REQUEST)
        seen["more_early"] = await server.receive_early_data()
        seen["then"] = await receive_exactly(server, 5)

    with trio.fail_after(BOUND):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve)
            await client.do_handshake(early_data=REQUEST)
            assert await receive_exactly(client, len(b"answer to " + REQUEST)) == (
                b"answer to " + REQUEST
            )
            await client.send_all(b"after")

    assert seen["early"] == REQUEST
    assert seen["negotiated_then"] is None, "early data came after the handshake completed"
    assert seen["more_early"] == b""
    assert seen["then"] == b"after"  # receive_some: only the 1-RTT data
    for stream in (client, server):
        assert stream.early_data_status is EarlyDataStatus.ACCEPTED
        assert stream.handshake_kind is HandshakeKind.RESUMED


async def test_without_a_session_the_data_is_not_sent_and_the_client_is_told(
    cached_client: ClientConfig, early_server: ServerConfig
) -> None:
    client, server = _memory_pair(cached_client, early_server)
    seen: dict[str, bytes] = {}

    async def serve() -> None:
        # No early data comes: b"" once the ClientHello shows there is none,
        # without waiting for the end of the handshake.
        seen["early"] = await server.receive_early_data()
        seen["data"] = await receive_exactly(server, len(REQUEST))

    with trio.fail_after(BOUND):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve)
            await client.do_handshake(early_data=REQUEST)
            assert client.early_data_status is EarlyDataStatus.NOT_OFFERED
            await client.send_all(REQUEST)  # what the caller does when it did not go
    assert seen == {"early": b"", "data": REQUEST}
    assert server.early_data_status is EarlyDataStatus.NOT_OFFERED
    assert client.handshake_kind is HandshakeKind.FULL


async def test_refused_early_data_never_reaches_the_application_and_is_not_resent(
    cached_client: ClientConfig, early_server: ServerConfig
) -> None:
    await _first_visit(cached_client, early_server)
    # Same ticket keys, 0-RTT now off: the ticket resumes, its early data is refused.
    refusing = dataclasses.replace(early_server, max_early_data_size=0)
    client, server = _memory_pair(cached_client, refusing)
    seen: dict[str, bytes] = {}

    async def serve() -> None:
        seen["early"] = await server.receive_early_data()
        seen["data"] = await receive_exactly(server, len(b"only this"))
        await server.send_all(b"done")

    with trio.fail_after(BOUND):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve)
            await client.do_handshake(early_data=REQUEST)
            assert client.early_data_status is EarlyDataStatus.REJECTED
            await client.send_all(b"only this")
            assert await receive_exactly(client, 4) == b"done"
    # The refused request did not arrive, neither early nor resent.
    assert seen == {"early": b"", "data": b"only this"}
    assert server.early_data_status is EarlyDataStatus.REJECTED
    assert client.handshake_kind is HandshakeKind.RESUMED


async def test_a_server_that_does_not_read_early_data_keeps_it_apart(
    cached_client: ClientConfig, early_server: ServerConfig
) -> None:
    """receive_some never returns early data; receive_early_data still has it afterwards."""
    await _first_visit(cached_client, early_server)
    client, server = _memory_pair(cached_client, early_server)
    with trio.fail_after(BOUND):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(functools.partial(client.do_handshake, early_data=REQUEST))
            await server.do_handshake()
        await client.send_all(b"1-RTT")
        assert await receive_exactly(server, 5) == b"1-RTT"
        assert await server.receive_early_data() == REQUEST
        assert await server.receive_early_data() == b""


async def test_usage_errors(cached_client: ClientConfig, early_server: ServerConfig) -> None:
    client, server = _memory_pair(cached_client, early_server)
    with pytest.raises(UsageError, match="server side"):
        await client.receive_early_data()
    with pytest.raises(UsageError, match="only a client"):
        await server.do_handshake(early_data=b"x")
    with trio.fail_after(BOUND):
        await handshake_both(client, server)
    with pytest.raises(UsageError, match="starts the handshake"):
        await client.do_handshake(early_data=b"too late")


async def test_early_data_is_keyword_only(cached_client: ClientConfig) -> None:
    client = TLSStream(
        trio.testing.memory_stream_pair()[0], cached_client, server_hostname="localhost"
    )
    with pytest.raises(TypeError, match="positional argument"):
        await client.do_handshake(REQUEST)  # type: ignore[call-arg]


async def test_receive_early_data_is_resumable_after_a_cancellation(
    cached_client: ClientConfig, early_server: ServerConfig, autojump_clock: MockClock
) -> None:
    await _first_visit(cached_client, early_server)
    client, server = _memory_pair(cached_client, early_server)
    with trio.move_on_after(1) as scope:
        await server.receive_early_data()  # nobody has sent anything yet
    assert scope.cancelled_caught
    async with trio.open_nursery() as nursery:
        nursery.start_soon(functools.partial(client.do_handshake, early_data=REQUEST))
        assert await server.receive_early_data() == REQUEST
        await server.do_handshake()
    assert server.early_data_status is EarlyDataStatus.ACCEPTED


async def test_receive_early_data_runs_under_the_handshake_deadline(
    cached_client: ClientConfig, early_server: ServerConfig, autojump_clock: MockClock
) -> None:
    _client, server = _memory_pair(
        cached_client, dataclasses.replace(early_server, handshake_timeout=3)
    )
    start = trio.current_time()
    with pytest.raises(HandshakeTimeout):
        await server.receive_early_data()
    assert trio.current_time() - start == pytest.approx(3)


async def test_over_a_zero_buffer_transport(
    cached_client: ClientConfig, early_server: ServerConfig
) -> None:
    """Lockstep streams block each write until the peer reads: no deadlock."""
    await _first_visit(cached_client, early_server)
    client, server = tls_pair(trio.testing.lockstep_stream_pair(), cached_client, early_server)

    async def serve() -> None:
        assert await server.receive_early_data() == REQUEST
        assert await receive_exactly(server, 3) == b"end"
        await server.send_all(b"reply")

    with trio.fail_after(BOUND):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve)
            await client.do_handshake(early_data=REQUEST)
            await client.send_all(b"end")
            assert await receive_exactly(client, 5) == b"reply"
    assert client.early_data_status is EarlyDataStatus.ACCEPTED


async def test_serve_tls_over_tcp_handlers_find_the_early_data(
    cached_client: ClientConfig, early_server: ServerConfig
) -> None:
    """The handler runs after the handshake; the early data waits for it, complete."""
    got: list[tuple[bytes, EarlyDataStatus | None]] = []

    async def handler(stream: TLSStream) -> None:
        async with stream:
            got.append((await stream.receive_early_data(), stream.early_data_status))
            await stream.send_all(b"ok")

    with trio.fail_after(BOUND):
        async with trio.open_nursery() as nursery:
            listeners: list[TLSListener] = await nursery.start(
                functools.partial(serve_tls_over_tcp, host="127.0.0.1"), handler, 0, early_server
            )
            transport = listeners[0].transport_listener
            assert isinstance(transport, trio.SocketListener)
            port = transport.socket.getsockname()[1]
            for _ in range(2):
                stream = await open_tls_over_tcp_stream(
                    "127.0.0.1", port, cached_client, server_hostname="localhost"
                )
                async with stream:
                    await stream.do_handshake(early_data=REQUEST)
                    assert await receive_exactly(stream, 2) == b"ok"
            nursery.cancel_scope.cancel()
    assert got == [(b"", EarlyDataStatus.NOT_OFFERED), (REQUEST, EarlyDataStatus.ACCEPTED)]
