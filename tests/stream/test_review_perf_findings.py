"""Review of the performance rewrites (commits ce399b4, 707f0dd): the trio layer.

Checkpoints of the public methods, the stream's _FifoLock, and the receive
buffer kept as a list of record payloads (_take).
"""

from __future__ import annotations

import dataclasses
import random

import trio
import trio.testing
import trustme
from hypothesis import given, settings
from hypothesis import strategies as st
from trio.testing import assert_checkpoints
from typing_extensions import override

from triotls.config import CertifiedKey, ClientConfig, ServerConfig, TrustStore
from triotls.stream import _FifoLock, _take

from .helpers import handshake_both, receive_exactly, tls_pair

# --- checkpoints of the public methods ------------------------------------------------


async def test_unwrap_after_both_close_notifies_checkpoints(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server = tls_pair(trio.testing.memory_stream_pair(), client_config, server_config)
    await handshake_both(client, server)
    await client.send_eof()
    assert await server.receive_some() == b""
    await server.send_eof()
    assert await client.receive_some() == b""
    with assert_checkpoints():
        await client.unwrap()


async def test_do_handshake_checkpoints_while_a_writer_holds_the_send_lock(
    ca: trustme.CA, client_config: ClientConfig, server_config: ServerConfig
) -> None:
    leaf = ca.issue_cert("client@example")
    chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    client_cfg = dataclasses.replace(
        client_config,
        post_handshake_auth=True,
        certificate=CertifiedKey.from_pem(chain, leaf.private_key_pem.bytes()),
    )
    server_cfg = dataclasses.replace(
        server_config, client_trust=TrustStore.from_pem(ca.cert_pem.bytes())
    )
    client_transport, server_transport = trio.testing.memory_stream_pair()
    gated = _GatedSend(client_transport)
    client, server = tls_pair((gated, server_transport), client_cfg, server_cfg)
    await handshake_both(client, server)
    gated.gate = trio.Event()
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send_all, b"x")  # holds the send lock, stuck
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(client.receive_some)  # will queue the certificate answer
            await server.request_client_certificate()
            await trio.testing.wait_all_tasks_blocked()
            assert client.engine.has_data_to_send
            try:
                with assert_checkpoints():
                    await client.do_handshake()
            finally:
                gated.gate.set()
                nursery.cancel_scope.cancel()
    finally:
        gated.gate.set()


class _GatedSend(trio.abc.Stream):
    """A transport whose writes wait for ``gate`` (when set to an Event)."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.gate: trio.Event | None = None

    @override
    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self.gate is not None:
            await self.gate.wait()
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


async def test_public_methods_checkpoint_in_their_other_fast_paths(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server = tls_pair(trio.testing.memory_stream_pair(), client_config, server_config)
    await handshake_both(client, server)
    await client.send_all(b"abc")
    with assert_checkpoints():
        assert await server.receive_some(1) == b"a"  # reads the transport
    with assert_checkpoints():
        assert await server.receive_some() == b"bc"  # from the buffer alone
    with assert_checkpoints():
        await server.send_all(b"")
    with assert_checkpoints():
        assert await server.receive_early_data() == b""
    with assert_checkpoints():
        await server.do_handshake()
    # Cancel points too: a pending cancellation is raised before anything happens.
    await client.send_all(b"kept")
    with trio.CancelScope() as scope:
        scope.cancel()
        await server.receive_some()
    assert scope.cancelled_caught
    assert await receive_exactly(server, 4) == b"kept"
    with trio.CancelScope() as scope:
        scope.cancel()
        await server.send_all(b"never sent")
    assert scope.cancelled_caught
    await server.send_all(b"sent")
    assert await receive_exactly(client, 4) == b"sent"


# --- _FifoLock ---------------------------------------------------------------------------


async def test_fifo_lock_many_waiters_with_cancellations_keep_order_and_exclusion() -> None:
    rng = random.Random(1234)
    lock = _FifoLock()
    acquired: list[int] = []
    holding = 0
    cancelled: set[int] = set()
    scopes: dict[int, trio.CancelScope] = {}

    async def worker(n: int, fast: bool) -> None:
        nonlocal holding
        with trio.CancelScope() as scope:
            scopes[n] = scope
            await lock.acquire(fast=fast)
            try:
                holding += 1
                assert holding == 1, "two tasks hold the lock"
                acquired.append(n)
                await trio.sleep(0)
                await trio.sleep(0)
            finally:
                holding -= 1
                lock.release()
        if scope.cancelled_caught:
            cancelled.add(n)

    await lock.acquire()
    async with trio.open_nursery() as nursery:
        for n in range(60):
            nursery.start_soon(worker, n, rng.random() < 0.5)
            await trio.testing.wait_all_tasks_blocked()
        to_cancel = set(rng.sample(range(60), 20))
        for n in to_cancel:
            scopes[n].cancel()
        await trio.testing.wait_all_tasks_blocked()
        lock.release()
    assert acquired == sorted(acquired), "the lock was not handed over in arrival order"
    # Cancelled while waiting: those never get the lock, every other waiter does.
    assert cancelled == to_cancel
    assert set(acquired) == set(range(60)) - to_cancel
    assert not lock.locked()
    assert not lock._waiters


async def test_fifo_lock_handed_over_then_cancelled_still_owns_the_lock() -> None:
    lock = _FifoLock()
    got_it = trio.Event()
    await lock.acquire()

    async def waiter(scope: trio.CancelScope) -> None:
        with scope:
            await lock.acquire()
            got_it.set()
            lock.release()

    scope = trio.CancelScope()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter, scope)
        await trio.testing.wait_all_tasks_blocked()
        lock.release()  # handed to the waiter, which has not run yet
        scope.cancel()  # too late: it already owns the lock
        assert lock.locked()
    assert got_it.is_set()
    assert not lock.locked()


async def test_fifo_lock_newcomer_does_not_barge_ahead_of_a_handed_over_waiter() -> None:
    lock = _FifoLock()
    order: list[str] = []
    await lock.acquire()

    async def take(name: str) -> None:
        await lock.acquire(fast=True)
        order.append(name)
        lock.release()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(take, "first")
        await trio.testing.wait_all_tasks_blocked()
        lock.release()  # handed to "first", which has not run yet
        await take("newcomer")  # runs now, before "first" was scheduled
    assert order == ["first", "newcomer"]


async def test_fifo_lock_contended_fast_acquire_is_a_full_checkpoint() -> None:
    lock = _FifoLock()
    await lock.acquire()

    async def release_soon() -> None:
        await trio.testing.wait_all_tasks_blocked()
        lock.release()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(release_soon)
        with assert_checkpoints():
            await lock.acquire(fast=True)
    assert lock.locked()
    lock.release()
    assert not lock.locked()


# --- the receive buffer: _take ----------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    chunks=st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=8),
    as_bytearray=st.lists(st.booleans(), min_size=8, max_size=8),
    sizes=st.lists(st.integers(min_value=1, max_value=100), min_size=1, max_size=30),
)
def test_take_returns_the_stream_in_order_in_pieces_of_at_most_max_bytes(
    chunks: list[bytes], as_bytearray: list[bool], sizes: list[int]
) -> None:
    expected = b"".join(chunks)
    buffer: list[bytes | bytearray] = [
        bytearray(c) if ba else c for c, ba in zip(chunks, as_bytearray, strict=False)
    ]
    got = b""
    for size in sizes:
        if not buffer:
            break
        before = sum(map(len, buffer))
        piece = _take(buffer, size)
        assert type(piece) is bytes
        assert 0 < len(piece) <= size
        assert len(piece) == min(size, before)
        assert all(buffer), "an empty chunk would read as end of stream"
        got += piece
    got += b"".join(bytes(c) for c in buffer)
    assert got == expected


def test_take_does_not_alias_a_chunk_it_keeps_cutting() -> None:
    buffer: list[bytes | bytearray] = [b"abcdef"]
    first = _take(buffer, 2)
    second = _take(buffer, 2)
    third = _take(buffer, 10)
    assert (first, second, third) == (b"ab", b"cd", b"ef")
    assert buffer == []


async def test_receive_some_with_any_max_bytes_returns_every_byte_once_in_order(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server = tls_pair(trio.testing.memory_stream_pair(), client_config, server_config)
    await handshake_both(client, server)
    rng = random.Random(99)
    payload = bytes(rng.randrange(256) for _ in range(200_000))
    sent = 0
    for size in (1, 5, 16_384, 16_385, 70_000, 100):  # several records per transport read
        await client.send_all(payload[sent : sent + size])
        sent += size
    await client.send_all(payload[sent:])
    got = bytearray()
    while len(got) < len(payload):
        max_bytes = rng.choice([None, 1, 7, 16_383, 16_384, 16_385, 40_000, 300_000])
        chunk = await server.receive_some(max_bytes)
        assert type(chunk) is bytes and chunk
        assert max_bytes is None or len(chunk) <= max_bytes
        got += chunk
    assert bytes(got) == payload
