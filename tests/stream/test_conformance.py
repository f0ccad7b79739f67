"""TLSStream against trio's own generic stream checks."""

from __future__ import annotations

import trio
import trio.testing

from triotls.config import ClientConfig, ServerConfig
from triotls.stream import TLSStream


def _pair(
    transports: tuple[trio.abc.Stream, trio.abc.Stream],
    client_config: ClientConfig,
    server_config: ServerConfig,
) -> tuple[TLSStream, TLSStream]:
    client_transport, server_transport = transports
    client = TLSStream(client_transport, client_config, server_hostname="localhost")
    server = TLSStream(server_transport, server_config, server_side=True)
    return client, server


async def test_half_closeable_stream_conformance_over_memory_and_lockstep(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    async def memory_maker() -> tuple[TLSStream, TLSStream]:
        return _pair(trio.testing.memory_stream_pair(), client_config, server_config)

    async def lockstep_maker() -> tuple[TLSStream, TLSStream]:
        client, server = _pair(trio.testing.lockstep_stream_pair(), client_config, server_config)
        # As trio's own SSLStream tests do: over a clogged transport, the checks
        # block one side while expecting the other to make progress, which a
        # handshake (needing both) cannot; so handshake up front.
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.do_handshake)
            nursery.start_soon(server.do_handshake)
        return client, server

    await trio.testing.check_half_closeable_stream(memory_maker, lockstep_maker)


async def test_half_closeable_stream_conformance_over_a_socket_pair(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    # Real kernel buffers: trio's full-duplex check (a megabyte each way, both
    # at once) deadlocks a stream whose reader ever waits behind its writer.
    async def socket_maker() -> tuple[TLSStream, TLSStream]:
        client_socket, server_socket = trio.socket.socketpair()
        return _pair(
            (trio.SocketStream(client_socket), trio.SocketStream(server_socket)),
            client_config,
            server_config,
        )

    with trio.fail_after(30):
        await trio.testing.check_half_closeable_stream(socket_maker, None)
