"""The handshake deadline ends with the handshake.

Bytes that an interrupted call left queued in the engine (our Finished, a
KeyUpdate answer) are sent by the next call; once the handshake completed,
that flush must not run under the long-expired handshake deadline.
"""

from __future__ import annotations

import dataclasses

import trio
import trio.testing

from triotls.config import ClientConfig, ServerConfig
from triotls.stream import TLSStream


async def test_queued_bytes_after_the_handshake_deadline_do_not_time_out(
    client_config: ClientConfig, server_config: ServerConfig, autojump_clock: trio.testing.MockClock
) -> None:
    client_transport, server_transport = trio.testing.memory_stream_pair()
    client = TLSStream(
        client_transport,
        dataclasses.replace(client_config, handshake_timeout=1.0),
        server_hostname="localhost",
    )
    server = TLSStream(
        server_transport,
        dataclasses.replace(server_config, handshake_timeout=1.0),
        server_side=True,
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.do_handshake)
        nursery.start_soon(server.do_handshake)
    await trio.sleep(5)  # far past both handshake deadlines
    client.engine.key_update(request_peer=False)  # queued, as an interrupted call would leave it
    assert client.engine.has_data_to_send
    await client.send_all(b"after the deadline")
    assert await server.receive_some() == b"after the deadline"
