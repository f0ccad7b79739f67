"""TLSStream's receive buffer and inner locks (the paths the benchmarks tune)."""

from __future__ import annotations

import trio
import trio.testing

from triotls.config import ClientConfig, ServerConfig
from triotls.stream import TLSStream, _FifoLock

from .helpers import handshake_both, tls_pair


async def _established(
    client_config: ClientConfig, server_config: ServerConfig
) -> tuple[TLSStream, TLSStream]:
    client, server = tls_pair(trio.testing.memory_stream_pair(), client_config, server_config)
    await handshake_both(client, server)
    return client, server


async def test_receive_some_returns_several_records_at_once_in_order(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server = await _established(client_config, server_config)
    messages = [bytes([n]) * size for n, size in enumerate((1, 16_384, 5, 40_000))]
    for message in messages:
        await client.send_all(message)
    await trio.testing.wait_all_tasks_blocked()
    got = await server.receive_some()
    while len(got) < sum(map(len, messages)):
        got += await server.receive_some()
    assert got == b"".join(messages)


async def test_receive_some_with_max_bytes_cuts_records_and_keeps_the_rest(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server = await _established(client_config, server_config)
    payload = bytes(range(256)) * 200  # 51,200 bytes: four records
    await client.send_all(payload)
    await client.send_all(b"tail")
    got = bytearray()
    sizes = [1, 7, 16_383, 2, 30_000, 4_000, 100_000]
    for size in sizes:
        chunk = await server.receive_some(size)
        assert type(chunk) is bytes
        assert 1 <= len(chunk) <= size
        got += chunk
        if len(got) == len(payload) + 4:
            break
    while len(got) < len(payload) + 4:
        got += await server.receive_some(3)
    assert bytes(got) == payload + b"tail"


async def test_fifo_lock_hands_over_in_arrival_order() -> None:
    lock = _FifoLock()
    order: list[int] = []

    async def take(n: int) -> None:
        await lock.acquire(fast=True)
        order.append(n)
        await trio.sleep(0)
        lock.release()

    await lock.acquire()
    async with trio.open_nursery() as nursery:
        for n in range(4):
            nursery.start_soon(take, n)
            await trio.testing.wait_all_tasks_blocked()
        assert lock.locked()
        lock.release()
    assert order == [0, 1, 2, 3]
    assert not lock.locked()


async def test_fifo_lock_waiter_cancelled_leaves_the_queue() -> None:
    lock = _FifoLock()
    await lock.acquire()
    with trio.move_on_after(1) as scope:
        await lock.acquire()
    assert scope.cancelled_caught
    lock.release()
    assert not lock.locked()
    await lock.acquire(fast=True)
    assert lock.locked()


async def test_fifo_lock_acquire_checkpoints_unless_fast() -> None:
    lock = _FifoLock()
    with trio.testing.assert_checkpoints():
        await lock.acquire()
    lock.release()
    other_ran = False

    async def other() -> None:
        nonlocal other_ran
        other_ran = True

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other)
        await lock.acquire(fast=True)
        assert not other_ran  # no trip through the scheduler
        lock.release()
    with trio.CancelScope() as scope:
        scope.cancel()
        await lock.acquire(fast=True)  # a pending cancellation is still raised
    assert scope.cancelled_caught
    assert not lock.locked()
