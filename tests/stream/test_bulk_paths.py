"""TLSStream's bulk-transfer fast paths: coalesced reads, lock-free send_all."""

from __future__ import annotations

import trio
import trio.testing
from typing_extensions import override

from triotls.config import ClientConfig, ServerConfig
from triotls.stream import TLSStream, _FifoLock

from .helpers import handshake_both, record_lengths, tls_pair


class _Writes(trio.abc.Stream):
    """A transport wrapper that keeps each write separately."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.writes: list[bytes] = []

    @override
    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))
        await self.inner.send_all(data)

    @override
    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    @override
    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    @override
    async def aclose(self) -> None:
        await self.inner.aclose()


async def _established(
    client_config: ClientConfig, server_config: ServerConfig
) -> tuple[TLSStream, TLSStream, _Writes]:
    a, b = trio.testing.memory_stream_pair()
    writes = _Writes(a)
    client, server = tls_pair((writes, b), client_config, server_config)
    await handshake_both(client, server)
    return client, server, writes


async def test_the_engine_of_a_stream_coalesces_application_data(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server, _writes = await _established(client_config, server_config)
    assert client.engine.coalesce_application_data
    assert server.engine.coalesce_application_data


async def test_receive_some_returns_the_records_of_one_read_as_one_chunk(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server, writes = await _established(client_config, server_config)
    payload = bytes(range(256)) * 160  # 40,960 bytes: three records
    await client.send_all(payload)
    assert [kind for kind, _ in record_lengths(writes.writes[-1])] == [23, 23, 23]
    await trio.testing.wait_all_tasks_blocked()
    got = await server.receive_some()
    assert type(got) is bytes
    assert got == payload


async def test_send_all_writes_bytes_queued_earlier_first_on_their_own(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server, writes = await _established(client_config, server_config)
    client.engine.key_update(request_peer=False)  # queued, as a cancelled call leaves it
    before = len(writes.writes)
    await client.send_all(b"after the update")
    assert len(writes.writes) == before + 2
    await trio.testing.wait_all_tasks_blocked()
    assert await server.receive_some() == b"after the update"


async def test_send_all_with_a_pending_cancellation_sends_nothing_and_stays_usable(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server, writes = await _established(client_config, server_config)
    before = len(writes.writes)
    with trio.CancelScope() as scope:
        scope.cancel()
        await client.send_all(b"never sent")
    assert scope.cancelled_caught
    assert len(writes.writes) == before
    assert not client.engine.has_data_to_send
    await client.send_all(b"sent")
    await trio.testing.wait_all_tasks_blocked()
    assert await server.receive_some() == b"sent"


async def test_send_all_checkpoints_after_the_handshake(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, _server, _writes = await _established(client_config, server_config)
    with trio.testing.assert_checkpoints():
        await client.send_all(b"x" * 70_000)
    with trio.testing.assert_checkpoints():
        await client.send_all(b"y")


async def test_receive_some_with_a_pending_cancellation_reads_nothing(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server, _writes = await _established(client_config, server_config)
    await client.send_all(b"kept for later")
    await trio.testing.wait_all_tasks_blocked()
    with trio.CancelScope() as scope:
        scope.cancel()
        await server.receive_some()
    assert scope.cancelled_caught
    assert await server.receive_some() == b"kept for later"


async def test_fifo_lock_try_acquire_takes_only_a_free_lock() -> None:
    lock = _FifoLock()
    assert lock.try_acquire()
    assert lock.locked()
    assert not lock.try_acquire()
    lock.release()
    assert not lock.locked()
    assert lock.try_acquire()
    lock.release()


async def test_fifo_lock_try_acquire_does_not_jump_the_queue() -> None:
    lock = _FifoLock()
    await lock.acquire()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lock.acquire)
        await trio.testing.wait_all_tasks_blocked()
        lock.release()  # handed to the waiter, which has not run yet
        assert not lock.try_acquire()
    assert lock.locked()
    lock.release()
