"""Authentic data that arrives just before a fatal alert is not lost."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from triotls import AlertReceived
from triotls.config import ClientConfig, ServerConfig
from triotls.stream import TLSStream

_FATAL_INTERNAL_ERROR = b"\x15\x03\x03\x00\x02\x02\x50"


async def test_receive_some_returns_data_sent_before_a_fatal_alert_then_raises(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client_transport, server_transport = trio.testing.memory_stream_pair()
    client = TLSStream(client_transport, client_config, server_hostname="localhost")
    server = TLSStream(server_transport, server_config, server_side=True)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.do_handshake)
        nursery.start_soon(server.do_handshake)
    # One transport write: the server's last data record, then a fatal alert.
    server.engine.send_application_data(b"last words")
    await server.transport_stream.send_all(server.engine.data_to_send() + _FATAL_INTERNAL_ERROR)
    assert await client.receive_some() == b"last words"
    with pytest.raises(AlertReceived, match="internal_error") as caught:
        await client.receive_some()
    assert isinstance(caught.value, trio.BrokenResourceError)
    with pytest.raises(trio.BrokenResourceError):
        await client.send_all(b"too late")
