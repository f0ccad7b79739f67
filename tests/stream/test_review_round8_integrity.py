"""Review round 8: byte-exact delivery through TLSStream's bulk fast paths.

The fast paths under test: the receive buffer as a list of chunks (``_take``),
256 KiB transport reads, runs of application-data records opened in one go
into a per-thread scratch buffer (``RecordReader.next_application_data``),
``send_all`` sealing up to 256 KiB at once and chunking larger data, and the
FIFO locks with their fast paths.

Every property checks that what one side receives, joined, is exactly what the
other side sent, joined, for random send sizes (around the record, scratch and
read/seal sizes), random ``receive_some`` sizes, KeyUpdates between sends,
NewSessionTickets mid-stream, half-closes and full duplex, over several
transports: trio's memory streams with a pump that moves random amounts, the
lockstep (unbuffered) pair, and a real socket pair. In-memory runs use an
autojump clock, so a deadlock fails at once instead of hanging.

``TRIOTLS_INTEGRITY_EXAMPLES`` raises the number of examples per property
(default 40) for a longer search.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import random
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Final

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from triotls import SessionCache
from triotls.config import ClientConfig, ServerConfig
from triotls.engine.enums import CipherSuite
from triotls.stream import TLSStream

from .helpers import tls_pair

EXAMPLES: Final = int(os.environ.get("TRIOTLS_INTEGRITY_EXAMPLES", "40"))
PROPERTY: Final = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: Real-time bound for runs over sockets (in-memory runs use an autojump clock).
SOCKET_BOUND: Final = 30.0
#: Virtual-time bound for in-memory runs: reached only when every task is stuck.
MEMORY_BOUND: Final = 1000.0

RECORD: Final = 16_384
SCRATCH: Final = 16_384 * 8
SEAL: Final = 262_144

# --- strategies ----------------------------------------------------------------


def _around(*centres: int, least: int = 1) -> list[int]:
    return sorted({c + d for c in centres for d in (-1, 0, 1) if c + d >= least})


#: Send sizes: the edges of a record, the scratch buffer, the read/seal size,
#: and a few of their multiples, plus anything up to ~600 KiB.
EDGE_SIZES: Final = _around(
    0,
    1,
    RECORD,
    2 * RECORD,
    SCRATCH - 1,
    SCRATCH,
    SCRATCH + RECORD,
    SEAL,
    2 * SEAL,
    600_000,
    least=0,
)
send_sizes = st.one_of(st.sampled_from(EDGE_SIZES), st.integers(0, 40_000), st.integers(0, 614_400))
Op = tuple[str, int]  # ("send", size) or ("key_update", request_peer)
ops = st.one_of(
    send_sizes.map(lambda n: ("send", n)),
    st.booleans().map(lambda flag: ("key_update", int(flag))),
)
op_lists = st.lists(ops, max_size=6)
read_sizes = st.one_of(
    st.none(),
    st.sampled_from(_around(1, 7, 1000, RECORD, SCRATCH, SEAL, 10**9)),
    st.integers(1, 300_000),
)
read_lists = st.lists(read_sizes, min_size=1, max_size=5)
#: What the memory pump moves per call (None: everything pending).
pump_sizes = st.one_of(
    st.none(),
    st.sampled_from(_around(1, 5, 21, 16_406, 16_421, 32_768, SCRATCH, SEAL)),
    st.integers(1, 400_000),
)
pump_lists = st.lists(pump_sizes, min_size=1, max_size=6)
buffer_kinds = st.sampled_from(["bytes", "bytearray", "memoryview"])
SUITES: Final = (
    CipherSuite.TLS_AES_128_GCM_SHA256,
    CipherSuite.TLS_AES_256_GCM_SHA384,
    CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
)


@dataclasses.dataclass(frozen=True)
class Side:
    """What one end does: its sends and KeyUpdates, and its read sizes."""

    ops: tuple[Op, ...]
    reads: tuple[int | None, ...]
    buffer: str

    @property
    def total(self) -> int:
        return sum(n for kind, n in self.ops if kind == "send")


sides = st.builds(
    Side,
    ops=op_lists.map(tuple),
    reads=read_lists.map(tuple),
    buffer=buffer_kinds,
)


def _mean_read(reads: Sequence[int | None]) -> float:
    return sum(SEAL if r is None else min(r, SEAL) for r in reads) / len(reads)


def _affordable(side: Side, peer: Side, pumps: Sequence[int | None] = (None,)) -> bool:
    """Keep each example to a few thousand reads (1-byte reads of 1 MB take long)."""
    data = side.total
    reads = data / _mean_read(peer.reads)
    pump = sum(SEAL if p is None else min(p, SEAL) for p in pumps) / len(pumps)
    return data <= 1_600_000 and reads <= 3_000 and data / pump <= 6_000


# --- transports -------------------------------------------------------------------


def _pumped_one_way(
    pumps: Sequence[int | None],
) -> tuple[trio.testing.MemorySendStream, trio.testing.MemoryReceiveStream]:
    """A memory one-way pair whose pump moves the next size of ``pumps`` per call.

    Each send_all and each receive_some moves one piece, so what the TLS side
    reads comes in random sizes; a reader always pumps before it waits, so
    nothing is stranded.
    """
    send = trio.testing.MemorySendStream()
    recv = trio.testing.MemoryReceiveStream()
    sizes = itertools.cycle(pumps)

    async def pump_one() -> None:  # a hook must be async
        trio.testing.memory_stream_pump(send, recv, max_bytes=next(sizes))

    def pump_all() -> None:
        trio.testing.memory_stream_pump(send, recv)  # what is pending
        trio.testing.memory_stream_pump(send, recv)  # then the EOF

    send.send_all_hook = pump_one
    recv.receive_some_hook = pump_one
    send.close_hook = pump_all
    return send, recv


def pumped_pair(
    pumps: Sequence[int | None],
) -> tuple[trio.StapledStream[trio.abc.SendStream, trio.abc.ReceiveStream], ...]:
    a_send, b_recv = _pumped_one_way(pumps)
    b_send, a_recv = _pumped_one_way(pumps)
    return trio.StapledStream(a_send, a_recv), trio.StapledStream(b_send, b_recv)


async def socket_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    a, b = trio.socket.socketpair()
    return trio.SocketStream(a), trio.SocketStream(b)


# --- configs ----------------------------------------------------------------------

_CONFIGS: dict[tuple[object, ...], tuple[ClientConfig, ServerConfig]] = {}


def configs(
    client_config: ClientConfig,
    server_config: ServerConfig,
    *,
    suite: CipherSuite = SUITES[0],
    record_size_limit: int | None = 2**14 + 1,
    ticket_count: int = 2,
) -> tuple[ClientConfig, ServerConfig]:
    """Variants of the session configs (a fresh session cache each call)."""
    key = (id(client_config), id(server_config), suite, record_size_limit, ticket_count)
    if key not in _CONFIGS:
        _CONFIGS[key] = (
            dataclasses.replace(
                client_config, cipher_suites=(suite,), record_size_limit=record_size_limit
            ),
            dataclasses.replace(
                server_config, record_size_limit=record_size_limit, ticket_count=ticket_count
            ),
        )
    client, server = _CONFIGS[key]
    return dataclasses.replace(client, session_cache=SessionCache()), server


# --- the exchange -----------------------------------------------------------------


def payload(seed: int, size: int) -> bytes:
    """Bytes no shift, repeat or swap of pieces can reproduce."""
    return random.Random(seed).randbytes(size)


def assert_same(got: bytes | bytearray, sent: bytes, what: str) -> None:
    if got == sent:
        return
    first = next(
        (i for i, (a, b) in enumerate(zip(got, sent, strict=False)) if a != b),
        min(len(got), len(sent)),
    )
    pytest.fail(
        f"{what}: received {len(got)} bytes, sent {len(sent)}; first difference at "
        f"offset {first} (got {bytes(got[first : first + 8]).hex()}, "
        f"sent {sent[first : first + 8].hex()})"
    )


def _as(buffer: str, data: bytes) -> bytes | bytearray | memoryview:
    if buffer == "bytearray":
        return bytearray(data)
    if buffer == "memoryview":
        return memoryview(bytearray(data))
    return data


async def _sender(stream: TLSStream, side: Side, data: bytes, may_start: trio.Event) -> None:
    await may_start.wait()
    offset = 0
    for kind, n in side.ops:
        if kind == "key_update":
            await stream.key_update(request_peer=bool(n))
        else:
            buf = _as(side.buffer, data[offset : offset + n])
            await stream.send_all(buf)
            if isinstance(buf, bytearray):
                buf[:] = bytes(len(buf))  # the caller may reuse its buffer at once
            offset += n
    assert offset == len(data)
    await stream.send_eof()


async def _receiver(
    stream: TLSStream, reads: Sequence[int | None], expected: int, got: bytearray, eof: trio.Event
) -> None:
    for max_bytes in itertools.cycle(reads):
        chunk = await stream.receive_some(max_bytes)
        assert type(chunk) is bytes
        if max_bytes is not None:
            assert len(chunk) <= max_bytes
        if not chunk:
            break
        got += chunk
        assert len(got) <= expected, f"received {len(got)} bytes, more than the {expected} sent"
    assert await stream.receive_some(reads[0]) == b""  # EOF stays EOF
    eof.set()


async def exchange(
    client: TLSStream,
    server: TLSStream,
    client_side: Side,
    server_side: Side,
    *,
    order: str,
    seed: int,
    handshake_first: bool,
) -> None:
    """Both ends send their ops then send_eof, and read until b"", byte-exact.

    ``order``: "duplex" (both send at once), "client_first" (the server sends
    only after it received the client's EOF) or "server_first". Each end
    reads all along (a lockstep transport needs a reader for tickets).
    """
    c2s = payload(seed, client_side.total)
    s2c = payload(seed + 1, server_side.total)
    got_by_server, got_by_client = bytearray(), bytearray()
    server_eof, client_eof = trio.Event(), trio.Event()
    go = trio.Event()
    go.set()
    if handshake_first:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.do_handshake)
            nursery.start_soon(server.do_handshake)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            _receiver, server, server_side.reads, len(c2s), got_by_server, server_eof
        )
        nursery.start_soon(
            _receiver, client, client_side.reads, len(s2c), got_by_client, client_eof
        )
        nursery.start_soon(
            _sender, client, client_side, c2s, client_eof if order == "server_first" else go
        )
        nursery.start_soon(
            _sender, server, server_side, s2c, server_eof if order == "client_first" else go
        )
    assert_same(got_by_server, c2s, "client to server")
    assert_same(got_by_client, s2c, "server to client")


def run_in_memory(main: Callable[[], Awaitable[None]]) -> None:
    """Run ``main`` on an autojump clock: a deadlock hits the bound at once."""

    async def bounded() -> None:
        with trio.fail_after(MEMORY_BOUND):
            await main()

    trio.run(bounded, clock=trio.testing.MockClock(autojump_threshold=0))


def run_on_sockets(main: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        with trio.fail_after(SOCKET_BOUND):
            await main()

    trio.run(bounded)


def _memory_transport(name: str, pumps: Sequence[int | None]) -> Iterator[trio.abc.Stream]:
    if name == "pumped":
        yield from pumped_pair(pumps)
    elif name == "memory":
        yield from trio.testing.memory_stream_pair()
    else:
        yield from trio.testing.lockstep_stream_pair()


# --- properties -------------------------------------------------------------------


async def _exchange_and_close(
    pair: tuple[TLSStream, TLSStream],
    sides_: tuple[Side, Side],
    order: str,
    seed: int,
    handshake_first: bool,
) -> None:
    client, server = pair
    await exchange(
        client,
        server,
        sides_[0],
        sides_[1],
        order=order,
        seed=seed,
        handshake_first=handshake_first,
    )
    await client.aclose()
    await server.aclose()


@PROPERTY
@given(
    client_side=sides,
    server_side=sides,
    transport=st.sampled_from(["pumped", "memory", "lockstep"]),
    pumps=pump_lists,
    order=st.sampled_from(["duplex", "client_first", "server_first"]),
    handshake_first=st.booleans(),
    suite=st.sampled_from(SUITES),
    record_size_limit=st.sampled_from([None, 2**14 + 1, 4097, 1000]),
    ticket_count=st.sampled_from([0, 1, 2, 16]),
    seed=st.integers(0, 2**32),
)
def test_in_memory_transfers_are_byte_exact(
    *,
    client_config: ClientConfig,
    server_config: ServerConfig,
    client_side: Side,
    server_side: Side,
    transport: str,
    pumps: list[int | None],
    order: str,
    handshake_first: bool,
    suite: CipherSuite,
    record_size_limit: int | None,
    ticket_count: int,
    seed: int,
) -> None:
    assume(_affordable(client_side, server_side, pumps if transport == "pumped" else (None,)))
    assume(_affordable(server_side, client_side, pumps if transport == "pumped" else (None,)))
    cc, sc = configs(
        client_config,
        server_config,
        suite=suite,
        record_size_limit=record_size_limit,
        ticket_count=ticket_count,
    )

    async def main() -> None:
        a, b = _memory_transport(transport, pumps)
        pair = tls_pair((a, b), cc, sc)
        await _exchange_and_close(pair, (client_side, server_side), order, seed, handshake_first)

    run_in_memory(main)


@PROPERTY
@given(
    client_side=sides,
    server_side=sides,
    order=st.sampled_from(["duplex", "client_first", "server_first"]),
    handshake_first=st.booleans(),
    seed=st.integers(0, 2**32),
)
def test_socket_transfers_are_byte_exact(
    *,
    client_config: ClientConfig,
    server_config: ServerConfig,
    client_side: Side,
    server_side: Side,
    order: str,
    handshake_first: bool,
    seed: int,
) -> None:
    assume(_affordable(client_side, server_side))
    assume(_affordable(server_side, client_side))
    cc, sc = configs(client_config, server_config, ticket_count=3)

    async def main() -> None:
        pair = tls_pair(await socket_pair(), cc, sc)
        await _exchange_and_close(pair, (client_side, server_side), order, seed, handshake_first)

    run_on_sockets(main)


@PROPERTY
@given(
    first=st.tuples(sides, sides),
    second=st.tuples(sides, sides),
    transports=st.tuples(
        st.sampled_from(["pumped", "memory", "lockstep"]),
        st.sampled_from(["pumped", "memory", "lockstep"]),
    ),
    pumps=pump_lists,
    seed=st.integers(0, 2**32),
)
def test_two_connections_in_one_thread_do_not_share_data(
    *,
    client_config: ClientConfig,
    server_config: ServerConfig,
    first: tuple[Side, Side],
    second: tuple[Side, Side],
    transports: tuple[str, str],
    pumps: list[int | None],
    seed: int,
) -> None:
    """Two full-duplex connections at once in one thread (one scratch buffer)."""
    for c, s in (first, second):
        assume(_affordable(c, s, pumps) and _affordable(s, c, pumps))
    cc, sc = configs(client_config, server_config)

    async def one(plan: tuple[Side, Side], transport: str, seed: int) -> None:
        a, b = _memory_transport(transport, pumps)
        client, server = tls_pair((a, b), cc, sc)
        await exchange(client, server, *plan, order="duplex", seed=seed, handshake_first=False)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(one, first, transports[0], seed)
            nursery.start_soon(one, second, transports[1], seed + 2)

    run_in_memory(main)


# --- deterministic checks of the same paths ------------------------------------------


async def test_alternating_coalesced_reads_of_two_connections_stay_apart(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    """Each connection's coalesced run is copied out before the other one's opens."""
    pairs = []
    for _ in range(2):
        client, server = tls_pair(trio.testing.memory_stream_pair(), client_config, server_config)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.do_handshake)
            nursery.start_soon(server.do_handshake)
        pairs.append((client, server))
    sent: list[list[bytes]] = [[], []]
    got: list[list[bytes]] = [[], []]
    for round_ in range(4):
        for i, (client, _server) in enumerate(pairs):
            data = bytes([0x41 + i + 2 * round_]) * (SCRATCH + 3 * RECORD + round_)
            sent[i].append(data)
            await client.send_all(data)
        for i, (_client, server) in enumerate(pairs):
            # One receive_some each: a coalesced run, then partial reads.
            got[i].append(await server.receive_some())
    for i, (_client, server) in enumerate(pairs):
        expected = b"".join(sent[i])
        received = b"".join(got[i])
        while len(received) < len(expected):
            received += await server.receive_some()
        assert_same(received, expected, f"connection {i}")


async def test_one_task_sends_while_another_receives_over_lockstep(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    """Full duplex over an unbuffered transport, KeyUpdates in between: no deadlock."""
    client, server = tls_pair(trio.testing.lockstep_stream_pair(), client_config, server_config)
    up = Side(
        ops=(("send", SEAL + 1), ("key_update", 1), ("send", SCRATCH), ("send", 600_000)),
        reads=(None, 1000, RECORD + 1),
        buffer="memoryview",
    )
    down = Side(
        ops=(("key_update", 1), ("send", 2 * SEAL), ("key_update", 0), ("send", RECORD - 1)),
        reads=(7, SEAL, None),
        buffer="bytes",
    )
    with trio.fail_after(60):
        await exchange(client, server, up, down, order="duplex", seed=8, handshake_first=False)
