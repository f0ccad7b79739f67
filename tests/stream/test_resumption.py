"""Resumption through the trio layer: the session cache; tickets in one-way protocols.

``open_tls_over_tcp_stream`` keys the cache by ``"host:port"`` and the ALPN
list; a TLSStream offers a cached ticket by itself and keeps the tickets it
receives. A refused or missing ticket is only ever a full handshake.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Final

import trio
import trio.testing

from triotls import HandshakeKind, SessionCache, TicketKeys, TLSListener
from triotls.config import ClientConfig, ServerConfig
from triotls.listener import open_tls_over_tcp_stream, serve_tls_over_tcp
from triotls.stream import TLSStream

from .helpers import handshake_both, receive_exactly, tls_pair

HOST: Final = "127.0.0.1"
#: Bounds a loopback conversation; a hang fails instead of blocking the run.
BOUND: Final = 10.0


async def _echo_once(stream: TLSStream) -> None:
    async with stream:
        data = await stream.receive_some()
        if data:
            await stream.send_all(data)


async def _serve(nursery: trio.Nursery, config: ServerConfig) -> TLSListener:
    """Start an echo server on 127.0.0.1; its listener tells the port."""
    listeners: list[TLSListener] = await nursery.start(
        functools.partial(serve_tls_over_tcp, host=HOST), _echo_once, 0, config
    )
    return listeners[0]


def _port(listener: TLSListener) -> int:
    transport = listener.transport_listener
    assert isinstance(transport, trio.SocketListener)
    port: int = transport.socket.getsockname()[1]
    return port


async def _connect(port: int, config: ClientConfig) -> TLSStream:
    """Connect, echo a message, close; return the (closed) stream to inspect."""
    stream = await open_tls_over_tcp_stream(HOST, port, config)
    async with stream:
        await stream.send_all(b"ping")
        assert await receive_exactly(stream, 4) == b"ping"
    return stream


def _server(server_config: ServerConfig, **changes: Any) -> ServerConfig:
    # Fresh ticket keys: no test resumes a session another test made.
    return dataclasses.replace(server_config, ticket_keys=TicketKeys(), **changes)


def _client(client_config: ClientConfig, **changes: Any) -> ClientConfig:
    """``client_config`` with a session cache of its own."""
    return dataclasses.replace(client_config, session_cache=SessionCache(), **changes)


async def test_second_connection_resumes_from_the_cache(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    config = _client(client_config)
    with trio.fail_after(BOUND):
        async with trio.open_nursery() as nursery:
            port = _port(await _serve(nursery, _server(server_config)))
            first = await _connect(port, config)
            second = await _connect(port, config)
            nursery.cancel_scope.cancel()
    assert first.handshake_kind is HandshakeKind.FULL
    assert not first.session_resumed
    assert second.handshake_kind is HandshakeKind.RESUMED
    assert second.session_resumed


async def test_client_without_a_cache_never_resumes(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    with trio.fail_after(BOUND):
        async with trio.open_nursery() as nursery:
            port = _port(await _serve(nursery, _server(server_config)))
            kinds = [(await _connect(port, client_config)).handshake_kind for _ in range(2)]
            nursery.cancel_scope.cancel()
    assert kinds == [HandshakeKind.FULL, HandshakeKind.FULL]


async def test_connection_after_the_tickets_are_used_up_is_a_full_handshake(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    config = _client(client_config)
    with trio.fail_after(BOUND):
        async with trio.open_nursery() as nursery:
            listener = await _serve(nursery, _server(server_config, ticket_count=2))
            port = _port(listener)
            kinds = [(await _connect(port, config)).handshake_kind]
            # From now on the server issues no more tickets (same ticket keys).
            listener.config = dataclasses.replace(listener.config, ticket_count=0)
            for _ in range(3):
                kinds.append((await _connect(port, config)).handshake_kind)
            nursery.cancel_scope.cancel()
    assert kinds == [
        HandshakeKind.FULL,
        HandshakeKind.RESUMED,
        HandshakeKind.RESUMED,
        HandshakeKind.FULL,
    ]
    assert config.session_cache is not None and len(config.session_cache) == 0


async def test_cached_tickets_are_single_use(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    config = _client(client_config)
    assert config.session_cache is not None
    with trio.fail_after(BOUND):
        async with trio.open_nursery() as nursery:
            port = _port(await _serve(nursery, _server(server_config, ticket_count=2)))
            await _connect(port, config)
            assert len(config.session_cache) == 2
            await _connect(port, config)  # uses one, brings two
            nursery.cancel_scope.cancel()
    assert len(config.session_cache) == 3


async def test_another_port_of_the_same_host_is_not_resumed(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    # Both servers hold the same ticket keys and could resume; the cache is
    # keyed by host and port, so the client does not offer.
    config = _client(client_config)
    shared = _server(server_config)
    with trio.fail_after(BOUND):
        async with trio.open_nursery() as nursery:
            port_a = _port(await _serve(nursery, shared))
            port_b = _port(await _serve(nursery, shared))
            kinds = [
                (await _connect(port, config)).handshake_kind for port in (port_a, port_b, port_a)
            ]
            nursery.cancel_scope.cancel()
    assert kinds == [HandshakeKind.FULL, HandshakeKind.FULL, HandshakeKind.RESUMED]


async def test_another_alpn_list_is_not_resumed(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    h2 = _client(client_config, alpn_protocols=("h2",))
    http11 = dataclasses.replace(h2, alpn_protocols=("http/1.1",))  # the same cache
    with trio.fail_after(BOUND):
        async with trio.open_nursery() as nursery:
            server = _server(server_config, alpn_protocols=("h2", "http/1.1"))
            port = _port(await _serve(nursery, server))
            streams = [await _connect(port, config) for config in (h2, http11, h2)]
            nursery.cancel_scope.cancel()
    assert [s.handshake_kind for s in streams] == [
        HandshakeKind.FULL,
        HandshakeKind.FULL,
        HandshakeKind.RESUMED,
    ]
    assert [s.alpn_protocol for s in streams] == ["h2", "http/1.1", "h2"]


async def test_refused_ticket_falls_back_to_a_full_handshake(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    config = _client(client_config)
    with trio.fail_after(BOUND):
        async with trio.open_nursery() as nursery:
            listener = await _serve(nursery, _server(server_config))
            port = _port(listener)
            first = await _connect(port, config)
            # The operator replaced the ticket keys: every cached ticket is refused.
            listener.config = dataclasses.replace(listener.config, ticket_keys=TicketKeys())
            second = await _connect(port, config)
            third = await _connect(port, config)
            nursery.cancel_scope.cancel()
    assert first.handshake_kind is HandshakeKind.FULL
    assert second.handshake_kind is HandshakeKind.FULL
    assert not second.session_resumed
    assert third.handshake_kind is HandshakeKind.RESUMED


async def test_tls_stream_offers_cached_sessions_keyed_by_server_hostname(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    # Without open_tls_over_tcp_stream, the key defaults to server_hostname.
    config = _client(client_config)
    server = _server(server_config)
    kinds = []
    with trio.fail_after(BOUND):
        for _ in range(2):
            client, server_stream = tls_pair(trio.testing.memory_stream_pair(), config, server)
            await handshake_both(client, server_stream)
            kinds.append((client.handshake_kind, server_stream.handshake_kind))
    assert kinds == [
        (HandshakeKind.FULL, HandshakeKind.FULL),
        (HandshakeKind.RESUMED, HandshakeKind.RESUMED),
    ]


async def _one_way(
    client_config: ClientConfig, server_config: ServerConfig
) -> tuple[bytes, HandshakeKind | None]:
    """The client only sends, the server only receives (python-trio/trio#819).

    Returns what the server received and the client's handshake kind.
    """
    client, server = tls_pair(trio.testing.lockstep_stream_pair(), client_config, server_config)
    message = b"x" * 50_000
    received = bytearray()

    async def send_only() -> None:
        await client.send_all(message)
        await client.send_eof()

    async def receive_only() -> None:
        while chunk := await server.receive_some():
            received.extend(chunk)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send_only)
        nursery.start_soon(receive_only)
    return bytes(received), client.handshake_kind


async def test_one_way_protocol_with_tickets_does_not_deadlock(
    client_config: ClientConfig,
    server_config: ServerConfig,
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The server's tickets travel with its first flight, which the client
    # reads anyway: nothing is left for a client that never reads again.
    server = _server(server_config, ticket_count=4)
    with trio.fail_after(BOUND):
        received, _ = await _one_way(_client(client_config), server)
    assert received == b"x" * 50_000


async def test_one_way_protocol_resumes_too(
    client_config: ClientConfig,
    server_config: ServerConfig,
    autojump_clock: trio.testing.MockClock,
) -> None:
    config = _client(client_config)
    server = _server(server_config)
    with trio.fail_after(BOUND):
        _, first = await _one_way(config, server)
        assert config.session_cache is not None and len(config.session_cache) == 2
        received, second = await _one_way(config, server)
    assert (first, second) == (HandshakeKind.FULL, HandshakeKind.RESUMED)
    assert received == b"x" * 50_000
