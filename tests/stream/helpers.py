"""Helpers shared by the trio-layer tests: pairs, transports that record, checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, final

import pytest
import trio
import trio.testing
from typing_extensions import override

from triotls.config import ClientConfig, ServerConfig
from triotls.stream import TLSStream

__all__ = [
    "TRANSPORTS",
    "RecordingStream",
    "TransportMaker",
    "assert_broken",
    "assert_data_flows",
    "handshake_both",
    "receive_exactly",
    "record_lengths",
    "tls_pair",
]

TransportMaker = Callable[[], tuple[trio.abc.Stream, trio.abc.Stream]]

#: The two in-memory transports of trio.testing: buffered, and clogged (every
#: send_all waits until the peer has received all of it).
TRANSPORTS: Final[dict[str, TransportMaker]] = {
    "memory": trio.testing.memory_stream_pair,
    "lockstep": trio.testing.lockstep_stream_pair,
}


@final
class RecordingStream(trio.abc.Stream):
    """A transport wrapper that records what went through it.

    ``write_interrupted`` becomes True when ``trio.Cancelled`` escapes the
    inner ``send_all``: the one case where the TLS stream is allowed to break.
    ``sent`` holds every byte written; setting ``corrupt_next_send`` flips a
    bit in the last byte of the next write (a tampered record).
    """

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.write_interrupted = False
        self.corrupt_next_send = False
        self.sent = bytearray()

    @override
    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self.corrupt_next_send:
            self.corrupt_next_send = False
            tampered = bytearray(data)
            tampered[-1] ^= 0x01
            data = tampered
        self.sent += data
        try:
            await self.inner.send_all(data)
        except trio.Cancelled:
            self.write_interrupted = True
            raise

    @override
    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    @override
    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    @override
    async def aclose(self) -> None:
        await self.inner.aclose()


def record_lengths(wire: bytes | bytearray) -> list[tuple[int, int]]:
    """Split a TLS byte stream into (content type, length) of each record."""
    records = []
    offset = 0
    while offset + 5 <= len(wire):
        length = int.from_bytes(wire[offset + 3 : offset + 5], "big")
        records.append((wire[offset], length))
        offset += 5 + length
    assert offset == len(wire), "the byte stream ends inside a record"
    return records


def tls_pair(
    transports: tuple[trio.abc.Stream, trio.abc.Stream],
    client_config: ClientConfig,
    server_config: ServerConfig,
) -> tuple[TLSStream, TLSStream]:
    """A client TLSStream (for "localhost") and a server TLSStream over ``transports``."""
    client_transport, server_transport = transports
    client = TLSStream(client_transport, client_config, server_hostname="localhost")
    server = TLSStream(server_transport, server_config, server_side=True)
    return client, server


async def handshake_both(client: TLSStream, server: TLSStream) -> None:
    """Run both handshakes to completion, concurrently."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.do_handshake)
        nursery.start_soon(server.do_handshake)


async def receive_exactly(stream: trio.abc.ReceiveStream, size: int) -> bytes:
    """Receive exactly ``size`` bytes; fail on a premature end of stream."""
    got = bytearray()
    while len(got) < size:
        chunk = await stream.receive_some(size - len(got))
        if not chunk:
            pytest.fail(f"stream ended after {len(got)} of {size} bytes")
        got += chunk
    return bytes(got)


async def assert_data_flows(a: trio.abc.Stream, b: trio.abc.Stream) -> None:
    """Send a message each way (concurrently with its receiver: lockstep-safe)."""
    for sender, receiver, payload in ((a, b, b"ping from a"), (b, a, b"pong from b")):
        got: list[bytes] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_receive_into, got, receiver, len(payload))
            await sender.send_all(payload)
        assert got == [payload]


async def _receive_into(got: list[bytes], stream: trio.abc.ReceiveStream, size: int) -> None:
    got.append(await receive_exactly(stream, size))


async def assert_broken(stream: TLSStream) -> None:
    """Every later operation raises trio.BrokenResourceError; aclose still works."""
    with pytest.raises(trio.BrokenResourceError):
        await stream.do_handshake()
    with pytest.raises(trio.BrokenResourceError):
        await stream.send_all(b"data")
    with pytest.raises(trio.BrokenResourceError):
        await stream.receive_some()
    with pytest.raises(trio.BrokenResourceError):
        await stream.key_update()
    with pytest.raises(trio.BrokenResourceError):
        await stream.send_eof()
    with pytest.raises(trio.BrokenResourceError):
        await stream.unwrap()
    with pytest.raises(trio.BrokenResourceError):
        await stream.wait_send_all_might_not_block()
    await stream.aclose()
