"""Benchmarks: triotls against trio.SSLStream (stdlib ssl), in one invocation.

Theory of operation. Every row measures each implementation several times,
interleaved run by run (A B A B ..., the order flipped every other round), so
that drift of the machine hits both alike. Each run starts a fresh
``trio.run``; a short untimed warm-up run per implementation comes first.

Both implementations get the same trustme ECDSA P-256 chain for
``localhost``, TLS 1.3 only, TLS_AES_128_GCM_SHA256 and x25519, and their
clients verify the chain and the host name. triotls also runs with its
default key exchange, X25519MLKEM768, in the handshake rows. What each side
actually negotiated is checked on the wire before any timing (the ServerHello
is parsed from the captured bytes) and printed.

In-process rows run both ends in one trio run over :class:`MemoryPipe`, a
lean in-memory transport with a socket-like bounded buffer, so the kernel is
out of the figure. TCP rows talk to a server of the same kind in a child
process (``run.py _serve``) over loopback. Idle memory runs in a fresh child
process per implementation (``run.py _idle``).

Run ``python bench/run.py --help`` for the options; ``nox -s bench -- ARGS``
does the same in a venv of its own.
"""

from __future__ import annotations

import os
from pathlib import Path

# Before the ssl module loads OpenSSL's configuration (at import): pin the
# TLS 1.3 suite of trio.SSLStream, which the ssl API cannot (see the file).
os.environ["OPENSSL_CONF"] = str(Path(__file__).with_name("openssl.cnf"))

import argparse
import dataclasses
import fnmatch
import gc
import json
import math
import platform
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import cryptography
import trio
import trustme
from typing_extensions import override

import triotls
from triotls import (
    CertifiedKey,
    CipherSuite,
    ClientConfig,
    NamedGroup,
    ServerConfig,
    TLSStream,
    TrustStore,
)

SERVER_NAME: Final = "localhost"
#: Application data per send_all in the bulk rows.
BULK_CHUNK: Final = 65_536
#: Size of each ping-pong message.
PING_SIZE: Final = 100
#: Bytes a MemoryPipe buffers before send_all waits, like a socket buffer.
PIPE_LIMIT: Final = 262_144
#: What the handshake rows' server sends before it closes.
FIRST_BYTE: Final = b"x"

GROUP_NAMES: Final = {0x001D: "x25519", 0x0017: "secp256r1", 0x11EC: "X25519MLKEM768"}
SUITE_NAMES: Final = {
    0x1301: "TLS_AES_128_GCM_SHA256",
    0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256",
}

Direction = Literal["higher", "lower"]


# --- the in-memory transport ---------------------------------------------------


class _Buffer:
    """One direction of a MemoryPipe: the chunks written and not yet read.

    One ParkingLot serves both ends: a reader waits only while the buffer
    is empty and a writer only while it is over the limit, never both.
    """

    __slots__ = ("chunks", "eof", "lot", "reader_gone", "size")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.eof = False
        self.reader_gone = False
        self.lot = trio.lowlevel.ParkingLot()


class MemoryPipe(trio.abc.Stream):
    """One end of an in-memory byte stream with a bounded buffer.

    Leaner than ``trio.testing.memory_stream_pair`` (no pump, no conflict
    detectors) and, unlike it, ``send_all`` waits while more than
    ``PIPE_LIMIT`` bytes are unread, as a socket does. Each call is one trio
    checkpoint, as with ``trio.SocketStream``. Written chunks are kept as
    they are (copied once if mutable) and joined only when a read spans
    several, so the pipe copies about as much as a socket pair would.
    """

    def __init__(self, outgoing: _Buffer, incoming: _Buffer) -> None:
        self._out = outgoing
        self._in = incoming
        self._closed = False

    @classmethod
    def pair(cls) -> tuple[MemoryPipe, MemoryPipe]:
        """Two connected ends."""
        a_to_b, b_to_a = _Buffer(), _Buffer()
        return cls(a_to_b, b_to_a), cls(b_to_a, a_to_b)

    @override
    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        out = self._out
        if self._closed:
            raise trio.ClosedResourceError("this end was closed")
        if out.reader_gone:
            raise trio.BrokenResourceError("the other end was closed")
        if not data:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        chunk = data if isinstance(data, bytes) else bytes(data)
        out.chunks.append(chunk)
        out.size += len(chunk)
        if out.lot:  # a ParkingLot is true while tasks wait in it
            out.lot.unpark_all()
        if out.size <= PIPE_LIMIT:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        while out.size > PIPE_LIMIT and not out.reader_gone:
            await out.lot.park()

    @override
    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    @override
    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._closed:
            raise trio.ClosedResourceError("this end was closed")
        incoming = self._in
        parked = False
        while not incoming.size and not incoming.eof:
            await incoming.lot.park()
            parked = True
        data = _take(incoming, 65_536 if max_bytes is None else max_bytes)
        if incoming.lot:
            incoming.lot.unpark_all()
        if not parked:
            await trio.lowlevel.cancel_shielded_checkpoint()
        return data

    @override
    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._out.eof = True
            self._out.lot.unpark_all()
            self._in.reader_gone = True
            self._in.lot.unpark_all()
        await trio.lowlevel.checkpoint()


def _take(buffer: _Buffer, max_bytes: int) -> bytes:
    """Remove and return up to ``max_bytes`` from the front of ``buffer``."""
    chunks = buffer.chunks
    if not chunks:
        return b""
    first = chunks[0]
    if len(first) >= max_bytes:
        if len(first) == max_bytes:
            del chunks[0]
            buffer.size -= max_bytes
            return first
        chunks[0] = first[max_bytes:]
        buffer.size -= max_bytes
        return first[:max_bytes]
    taken: list[bytes] = []
    room = max_bytes
    while chunks and len(chunks[0]) <= room:
        chunk = chunks.pop(0)
        taken.append(chunk)
        room -= len(chunk)
    if chunks and room:
        first = chunks[0]
        taken.append(first[:room])
        chunks[0] = first[room:]
        room = 0
    buffer.size -= max_bytes - room
    return taken[0] if len(taken) == 1 else b"".join(taken)


class _Capture(trio.abc.Stream):
    """Records what a transport received (to read the peer's ServerHello)."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.received = bytearray()

    @override
    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    @override
    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    @override
    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self.inner.receive_some(max_bytes)
        self.received += data
        return data

    @override
    async def aclose(self) -> None:
        await self.inner.aclose()


# --- the implementations ---------------------------------------------------------


@dataclass(frozen=True)
class PKI:
    """The trustme CA and the server chain, as PEM files in ``directory``."""

    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def chain(self) -> Path:
        return self.directory / "chain.pem"

    @property
    def key(self) -> Path:
        return self.directory / "key.pem"

    @classmethod
    def create(cls, directory: Path) -> PKI:
        ca = trustme.CA(key_type=trustme.KeyType.ECDSA)
        leaf = ca.issue_cert(SERVER_NAME, "127.0.0.1", key_type=trustme.KeyType.ECDSA)
        pki = cls(directory)
        pki.ca.write_bytes(ca.cert_pem.bytes())
        pki.chain.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        pki.key.write_bytes(leaf.private_key_pem.bytes())
        return pki


class Impl:
    """One TLS implementation, configured for the benchmark."""

    key: str
    label: str

    def client(self, transport: trio.abc.Stream) -> trio.abc.Stream:
        raise NotImplementedError

    def server(self, transport: trio.abc.Stream) -> trio.abc.Stream:
        raise NotImplementedError

    def resuming_client(self) -> Callable[[trio.abc.Stream], trio.abc.Stream] | None:
        """A factory of clients that resume one session after another, if supported."""
        return None

    def resumption_server(self, transport: trio.abc.Stream) -> trio.abc.Stream:
        """A server that sends one ticket per connection."""
        raise NotImplementedError

    def describe(self, client: trio.abc.Stream) -> dict[str, object]:
        """What ``client`` negotiated, as far as the API tells."""
        raise NotImplementedError

    def resumed(self, client: trio.abc.Stream) -> bool:
        raise NotImplementedError


def _has_field(cls: type, name: str) -> bool:
    return name in getattr(cls, "__dataclass_fields__", {})


class TriotlsImpl(Impl):
    """triotls, pinned to AES-128-GCM and x25519, or with its default groups."""

    def __init__(self, pki: PKI, *, post_quantum: bool) -> None:
        self.key = "triotls-mlkem" if post_quantum else "triotls"
        self.label = "triotls X25519MLKEM768" if post_quantum else "triotls"
        suites = (CipherSuite.TLS_AES_128_GCM_SHA256,)
        trust = TrustStore.from_pem(pki.ca.read_bytes())
        certified = CertifiedKey.from_pem(pki.chain.read_bytes(), pki.key.read_bytes())
        if post_quantum:
            self.client_config = ClientConfig(trust=trust, cipher_suites=suites)
            self.server_config = ServerConfig(certificates=(certified,), cipher_suites=suites)
        else:
            x25519 = (NamedGroup.X25519,)
            self.client_config = ClientConfig(
                trust=trust, cipher_suites=suites, groups=x25519, key_share_groups=x25519
            )
            self.server_config = ServerConfig(
                certificates=(certified,), cipher_suites=suites, groups=x25519
            )
        # Full handshakes send no tickets, resumed ones one (as for SSLStream).
        self.resumption_server_config: ServerConfig | None = None
        if _has_field(ClientConfig, "session_cache") and _has_field(ServerConfig, "ticket_count"):
            self.resumption_server_config = dataclasses.replace(self.server_config, ticket_count=1)
            self.server_config = dataclasses.replace(self.server_config, ticket_count=0)

    @override
    def client(self, transport: trio.abc.Stream) -> trio.abc.Stream:
        return TLSStream(transport, self.client_config, server_hostname=SERVER_NAME)

    @override
    def server(self, transport: trio.abc.Stream) -> trio.abc.Stream:
        return TLSStream(transport, self.server_config, server_side=True)

    @override
    def resuming_client(self) -> Callable[[trio.abc.Stream], trio.abc.Stream] | None:
        if self.resumption_server_config is None:
            return None
        # One cache for all connections: each resumes with a ticket from the
        # connection before (tickets are single use, one is sent each time).
        config = dataclasses.replace(self.client_config, session_cache=triotls.SessionCache())

        def make(transport: trio.abc.Stream) -> trio.abc.Stream:
            return TLSStream(transport, config, server_hostname=SERVER_NAME)

        return make

    @override
    def resumption_server(self, transport: trio.abc.Stream) -> trio.abc.Stream:
        assert self.resumption_server_config is not None  # resuming_client checked
        return TLSStream(transport, self.resumption_server_config, server_side=True)

    @override
    def describe(self, client: trio.abc.Stream) -> dict[str, object]:
        assert isinstance(client, TLSStream)  # made by self.client
        return {
            "version": client.version,
            "cipher": client.cipher_suite.name if client.cipher_suite else None,
            "group": client.group.name if client.group else None,
        }

    @override
    def resumed(self, client: trio.abc.Stream) -> bool:
        assert isinstance(client, TLSStream)  # made by self.client
        return client.session_resumed


class SSLImpl(Impl):
    """trio.SSLStream over the stdlib ssl module (OpenSSL)."""

    key = "ssl"
    label = "trio.SSLStream"

    def __init__(self, pki: PKI) -> None:
        self.client_context = self._client_context(pki)
        # Full handshakes send no tickets, resumed ones one (as for triotls):
        # a ticket is work (and memory) that the full handshake rows leave out.
        self.server_context = self._server_context(pki, tickets=0)
        self.resumption_server_context = self._server_context(pki, tickets=1)
        self._session: ssl.SSLSession | None = None

    @staticmethod
    def _client_context(pki: PKI) -> ssl.SSLContext:
        # create_default_context: CERT_REQUIRED and check_hostname=True.
        context = ssl.create_default_context(cafile=str(pki.ca))
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        context.maximum_version = ssl.TLSVersion.TLSv1_3
        _check_tls13_suites(context)
        return context

    @staticmethod
    def _server_context(pki: PKI, *, tickets: int) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        context.maximum_version = ssl.TLSVersion.TLSv1_3
        context.load_cert_chain(str(pki.chain), str(pki.key))
        # With OpenSSL 3 this is SSL_CTX_set1_groups: TLS 1.3 groups too.
        context.set_ecdh_curve("X25519")
        context.num_tickets = tickets
        _check_tls13_suites(context)
        return context

    @override
    def client(self, transport: trio.abc.Stream) -> trio.abc.Stream:
        return trio.SSLStream(transport, self.client_context, server_hostname=SERVER_NAME)

    @override
    def server(self, transport: trio.abc.Stream) -> trio.abc.Stream:
        return trio.SSLStream(transport, self.server_context, server_side=True)

    @override
    def resumption_server(self, transport: trio.abc.Stream) -> trio.abc.Stream:
        return trio.SSLStream(transport, self.resumption_server_context, server_side=True)

    @override
    def resuming_client(self) -> Callable[[trio.abc.Stream], trio.abc.Stream] | None:
        def make(transport: trio.abc.Stream) -> trio.abc.Stream:
            stream = trio.SSLStream(transport, self.client_context, server_hostname=SERVER_NAME)
            if self._session is not None:
                stream.session = self._session
            return stream

        return make

    def keep_session(self, client: trio.abc.Stream) -> None:
        """Remember the newest ticket (TLS 1.3 tickets arrive after the handshake)."""
        assert isinstance(client, trio.SSLStream)  # made by resuming_client
        self._session = client.session

    @override
    def describe(self, client: trio.abc.Stream) -> dict[str, object]:
        assert isinstance(client, trio.SSLStream)  # made by self.client
        cipher = client.cipher()
        return {"version": client.version(), "cipher": cipher[0] if cipher else None}

    @override
    def resumed(self, client: trio.abc.Stream) -> bool:
        assert isinstance(client, trio.SSLStream)  # made by self.client
        return bool(client.session_reused)


def _check_tls13_suites(context: ssl.SSLContext) -> None:
    suites = [c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.3"]
    if suites != ["TLS_AES_128_GCM_SHA256"]:
        raise RuntimeError(
            f"OpenSSL offers TLS 1.3 suites {suites}, not only TLS_AES_128_GCM_SHA256: "
            "bench/openssl.cnf was not loaded (was ssl imported before run.py set OPENSSL_CONF?)"
        )


#: The transport writes of triotls's TLS 1.3 handshakes in these rows, in
#: bytes (x25519, AES-128-GCM, this PKI): the client's first flight, the
#: server's, the client's Finished. A resumed server flight carries its
#: ticket.
FULL_FLIGHTS: Final = (204, 861, 64)
RESUMED_FLIGHTS: Final = (358, 360, 64)


class FlightStream(trio.abc.Stream):
    """No TLS: the transport operations of a TLS 1.3 handshake, without cryptography.

    ``do_handshake`` writes and reads flights of the sizes a handshake
    writes, in the same order and from the same side (the client's first,
    the server's, the client's Finished; the server's handshake completes
    when it has read the Finished); then data passes through unchanged, and
    ``aclose`` makes one transport write first, as close_notify. What a run of
    it costs is the benchmark's own skeleton plus trio's scheduling of
    those flights: the time no TLS implementation can save in that row.
    """

    def __init__(
        self, transport: trio.abc.Stream, *, server_side: bool, flights: tuple[int, int, int]
    ) -> None:
        self.transport = transport
        self._server_side = server_side
        self._flights = flights
        self._done = False
        self._pending = b""

    async def do_handshake(self) -> None:
        if self._done:
            await trio.lowlevel.checkpoint()
            return
        self._done = True
        first, second, finished = self._flights
        if self._server_side:
            await self._receive_exactly(first)
            await self.transport.send_all(bytes(second))
            await self._receive_exactly(finished)
        else:
            await self.transport.send_all(bytes(first))
            await self._receive_exactly(second)
            await self.transport.send_all(bytes(finished))

    async def _receive_exactly(self, size: int) -> None:
        data = self._pending
        while len(data) < size:
            more = await self.transport.receive_some()
            if not more:
                raise RuntimeError("the transport ended during the handshake")
            data += more
        self._pending = data[size:]

    @override
    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.do_handshake()
        await self.transport.send_all(data)

    @override
    async def wait_send_all_might_not_block(self) -> None:
        await self.transport.wait_send_all_might_not_block()

    @override
    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        await self.do_handshake()
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        return await self.transport.receive_some(max_bytes)

    @override
    async def aclose(self) -> None:
        try:
            if self._done:
                # In place of close_notify: a transport write (of nothing, which
                # a pass-through reader cannot mistake for data).
                with trio.move_on_after(1):
                    await self.transport.send_all(b"")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await self.transport.aclose()


class NoTLSImpl(Impl):
    """The ceiling of the in-process rows: flights of a handshake's sizes, no TLS."""

    key = "no-tls"
    label = "no TLS: the flights alone"

    @override
    def client(self, transport: trio.abc.Stream) -> trio.abc.Stream:
        return FlightStream(transport, server_side=False, flights=FULL_FLIGHTS)

    @override
    def server(self, transport: trio.abc.Stream) -> trio.abc.Stream:
        return FlightStream(transport, server_side=True, flights=FULL_FLIGHTS)

    @override
    def resuming_client(self) -> Callable[[trio.abc.Stream], trio.abc.Stream] | None:
        def make(transport: trio.abc.Stream) -> trio.abc.Stream:
            return FlightStream(transport, server_side=False, flights=RESUMED_FLIGHTS)

        return make

    @override
    def resumption_server(self, transport: trio.abc.Stream) -> trio.abc.Stream:
        return FlightStream(transport, server_side=True, flights=RESUMED_FLIGHTS)

    @override
    def describe(self, client: trio.abc.Stream) -> dict[str, object]:
        return {"version": None}

    @override
    def resumed(self, client: trio.abc.Stream) -> bool:
        return True


def make_impls(pki: PKI) -> dict[str, Impl]:
    """Every implementation, by key."""
    impls: list[Impl] = [
        TriotlsImpl(pki, post_quantum=False),
        TriotlsImpl(pki, post_quantum=True),
        SSLImpl(pki),
        NoTLSImpl(),
    ]
    return {impl.key: impl for impl in impls}


# --- checking what was negotiated ------------------------------------------------


def parse_server_hello(wire: bytes) -> dict[str, object]:
    """The suite, group and version in the ServerHello at the start of ``wire``.

    A benchmark-side check only: it reads the first record, which holds the
    ServerHello in both implementations (RFC 8446 §4.1.3 layout).
    """
    content_type, _version, length = struct.unpack_from(">BHH", wire, 0)
    if content_type != 22:
        raise ValueError(f"first record has content type {content_type}, not handshake")
    body = wire[5 : 5 + length]
    if body[0] != 2:
        raise ValueError(f"first handshake message has type {body[0]}, not ServerHello")
    pos = 4 + 2 + 32  # msg header, legacy_version, random
    pos += 1 + body[pos]  # legacy_session_id_echo
    (suite,) = struct.unpack_from(">H", body, pos)
    pos += 2 + 1  # cipher_suite, legacy_compression_method
    (ext_total,) = struct.unpack_from(">H", body, pos)
    pos += 2
    end = pos + ext_total
    result: dict[str, object] = {"wire_cipher": SUITE_NAMES.get(suite, hex(suite))}
    while pos < end:
        ext_type, ext_len = struct.unpack_from(">HH", body, pos)
        data = body[pos + 4 : pos + 4 + ext_len]
        if ext_type == 0x0033:  # key_share
            (group,) = struct.unpack_from(">H", data, 0)
            result["wire_group"] = GROUP_NAMES.get(group, hex(group))
        elif ext_type == 0x002B:  # supported_versions
            (selected,) = struct.unpack_from(">H", data, 0)
            result["wire_version"] = "TLSv1.3" if selected == 0x0304 else hex(selected)
        pos += 4 + ext_len
    return result


async def check_negotiation(impl: Impl) -> dict[str, object]:
    """One connection over a capturing pipe; what the API and the wire say."""
    a, b = MemoryPipe.pair()
    capture = _Capture(a)
    client = impl.client(capture)
    server = impl.server(b)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_serve_first_byte, server)
        data = await client.receive_some()
        if data != FIRST_BYTE:
            raise RuntimeError(f"{impl.label}: expected {FIRST_BYTE!r}, got {data!r}")
        info = impl.describe(client)
        await client.aclose()
    info.update(parse_server_hello(bytes(capture.received)))
    return info


# --- workloads (each returns one measurement) --------------------------------------


async def _serve_first_byte(server: trio.abc.Stream) -> None:
    await server.send_all(FIRST_BYTE)
    await server.aclose()


async def _client_connection(client: trio.abc.Stream) -> None:
    data = await client.receive_some()
    if data != FIRST_BYTE:
        raise RuntimeError(f"expected {FIRST_BYTE!r}, got {data!r}")
    await client.aclose()


async def _run_concurrently(
    count: int, concurrency: int, one: Callable[[], Awaitable[None]]
) -> float:
    """Run ``one()`` ``count`` times on ``concurrency`` tasks; return runs per second."""
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await one()

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    return count / (time.perf_counter() - start)


async def handshakes_in_process(impl: Impl, count: int, concurrency: int) -> float:
    """Full handshakes per second, both ends in this trio run."""

    async def one() -> None:
        a, b = MemoryPipe.pair()
        client, server = impl.client(a), impl.server(b)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_serve_first_byte, server)
            await _client_connection(client)

    return await _run_concurrently(count, concurrency, one)


@dataclass
class ResumedResult:
    rate: float
    resumed: int
    total: int


async def resumed_in_process(impl: Impl, count: int) -> ResumedResult | None:
    """Resumed handshakes per second (each connection resumes the last one)."""
    make_client = impl.resuming_client()
    if make_client is None:
        return None
    make_server = impl.resumption_server
    resumed = 0

    async def one() -> None:
        nonlocal resumed
        a, b = MemoryPipe.pair()
        client, server = make_client(a), make_server(b)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_serve_first_byte, server)
            data = await client.receive_some()
            if data != FIRST_BYTE:
                raise RuntimeError(f"expected {FIRST_BYTE!r}, got {data!r}")
            resumed += impl.resumed(client)
            if isinstance(impl, SSLImpl):
                impl.keep_session(client)
            await client.aclose()

    await one()  # a full handshake to get the first ticket, untimed
    resumed = 0
    rate = await _run_concurrently(count, 1, one)
    return ResumedResult(rate=rate, resumed=resumed, total=count)


async def _handshake_pair(client: trio.abc.Stream, server: trio.abc.Stream) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_handshake, server)
        await _handshake(client)


async def _handshake(stream: trio.abc.Stream) -> None:
    if isinstance(stream, TLSStream | trio.SSLStream | FlightStream):
        await stream.do_handshake()
    else:
        raise TypeError(f"not a TLS stream: {stream!r}")


async def bulk_in_process(impl: Impl, total: int) -> float:
    """MB/s of ``total`` bytes client to server in BULK_CHUNK send_all calls."""
    a, b = MemoryPipe.pair()
    client, server = impl.client(a), impl.server(b)
    await _handshake_pair(client, server)
    payload = os.urandom(BULK_CHUNK)
    calls = total // BULK_CHUNK

    async def send() -> None:
        for _ in range(calls):
            await client.send_all(payload)

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(send)
        await _receive_exactly(server, calls * BULK_CHUNK)
    elapsed = time.perf_counter() - start
    await client.aclose()
    await server.aclose()
    return calls * BULK_CHUNK / elapsed / 1e6


async def _receive_exactly(stream: trio.abc.Stream, size: int) -> None:
    got = 0
    while got < size:
        data = await stream.receive_some()
        if not data:
            raise RuntimeError(f"stream ended after {got} of {size} bytes")
        got += len(data)
    if got != size:
        raise RuntimeError(f"received {got} bytes, expected {size}")


async def ping_pong_in_process(impl: Impl, rounds: int) -> float:
    """Round trips per second of PING_SIZE-byte messages echoed by the server."""
    a, b = MemoryPipe.pair()
    client, server = impl.client(a), impl.server(b)
    await _handshake_pair(client, server)
    message = os.urandom(PING_SIZE)

    async def echo() -> None:
        for _ in range(rounds):
            await _receive_exactly(server, PING_SIZE)
            await server.send_all(message)

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(echo)
        for _ in range(rounds):
            await client.send_all(message)
            await _receive_exactly(client, PING_SIZE)
    elapsed = time.perf_counter() - start
    await client.aclose()
    await server.aclose()
    return rounds / elapsed


# --- TCP: a server of the same kind in a child process ------------------------------


@dataclass
class ServerProcess:
    """A ``run.py _serve`` child and its ports."""

    process: subprocess.Popen[str]
    handshake_port: int
    bulk_port: int

    def stop(self) -> None:
        assert self.process.stdin is not None  # opened with stdin=PIPE
        self.process.stdin.close()  # the child exits when stdin ends
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(impl_key: str, pki: PKI) -> ServerProcess:
    process = subprocess.Popen(
        [sys.executable, __file__, "_serve", impl_key, str(pki.directory)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None  # opened with stdout=PIPE
    line = process.stdout.readline().split()
    if len(line) != 3 or line[0] != "PORTS":
        process.kill()
        raise RuntimeError(f"server child for {impl_key} did not start: {line!r}")
    return ServerProcess(process, int(line[1]), int(line[2]))


async def check_tcp_negotiation(impl: Impl, port: int) -> dict[str, object]:
    """One connection to the child server; what the client's API says."""
    client = impl.client(await trio.open_tcp_stream("127.0.0.1", port))
    data = await client.receive_some()
    if data != FIRST_BYTE:
        raise RuntimeError(f"{impl.label}: expected {FIRST_BYTE!r}, got {data!r}")
    info = impl.describe(client)
    await client.aclose()
    return info


async def handshakes_tcp(impl: Impl, port: int, count: int, concurrency: int) -> float:
    """Full handshakes per second against the child server over loopback."""

    async def one() -> None:
        tcp = await trio.open_tcp_stream("127.0.0.1", port)
        await _client_connection(impl.client(tcp))

    return await _run_concurrently(count, concurrency, one)


async def bulk_tcp(impl: Impl, port: int, total: int) -> float:
    """MB/s of ``total`` bytes the child server sends in BULK_CHUNK send_all calls."""
    tcp = await trio.open_tcp_stream("127.0.0.1", port)
    client = impl.client(tcp)
    await _handshake(client)
    start = time.perf_counter()
    await client.send_all(struct.pack(">Q", total))
    await _receive_exactly(client, total)
    elapsed = time.perf_counter() - start
    await client.aclose()
    return total / elapsed / 1e6


def serve_main(impl_key: str, directory: str) -> None:
    """The ``_serve`` child: accept on two loopback ports until stdin closes."""
    impl = make_impls(PKI(Path(directory)))[impl_key]
    if isinstance(impl, TriotlsImpl):
        # Whatever the client offers, x25519 or X25519MLKEM768: the client's
        # configuration decides, and the client checks what it got.
        impl.server_config = dataclasses.replace(
            impl.server_config, groups=(NamedGroup.X25519MLKEM768, NamedGroup.X25519)
        )
    failures = 0

    async def guarded(
        handler: Callable[[trio.abc.Stream], Awaitable[None]], tcp: trio.SocketStream
    ) -> None:
        nonlocal failures
        stream = impl.server(tcp)
        try:
            await handler(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, triotls.TLSError):
            failures += 1
            await trio.aclose_forcefully(stream)

    async def first_byte(stream: trio.abc.Stream) -> None:
        await _serve_first_byte(stream)

    async def bulk(stream: trio.abc.Stream) -> None:
        request = bytearray()
        while len(request) < 8:
            chunk = await stream.receive_some(8 - len(request))
            if not chunk:
                raise trio.BrokenResourceError("client left before its request")
            request += chunk
        (total,) = struct.unpack(">Q", request)
        payload = os.urandom(BULK_CHUNK)
        for _ in range(total // BULK_CHUNK):
            await stream.send_all(payload)
        await stream.aclose()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            ports = []
            for handler in (first_byte, bulk):
                listeners = await nursery.start(
                    trio.serve_tcp,
                    lambda tcp, handler=handler: guarded(handler, tcp),
                    0,
                )
                ports.append(listeners[0].socket.getsockname()[1])
            print("PORTS", *ports, flush=True)
            await trio.to_thread.run_sync(sys.stdin.read)
            nursery.cancel_scope.cancel()
        if failures:
            print(f"server child {impl_key}: {failures} connections failed", file=sys.stderr)

    trio.run(main)


# --- idle memory: a fresh child per implementation -------------------------------------


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def idle_main(impl_key: str, directory: str, count: int) -> None:
    """The ``_idle`` child: open ``count`` pairs, print the RSS delta per pair as JSON."""
    impl = make_impls(PKI(Path(directory)))[impl_key]
    kept: list[tuple[trio.abc.Stream, trio.abc.Stream]] = []

    async def open_pair() -> tuple[trio.abc.Stream, trio.abc.Stream]:
        a, b = MemoryPipe.pair()
        client, server = impl.client(a), impl.server(b)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.send_all, FIRST_BYTE)
            data = await client.receive_some()
        if data != FIRST_BYTE:
            raise RuntimeError(f"expected {FIRST_BYTE!r}, got {data!r}")
        return client, server

    async def main() -> dict[str, float]:
        for _ in range(20):  # warm up: imports, caches, allocator arenas
            client, server = await open_pair()
            await client.aclose()
            await server.aclose()
        gc.collect()
        before = _rss()
        for _ in range(count):
            kept.append(await open_pair())
        gc.collect()
        after = _rss()
        return {"rss_before": before, "rss_after": after, "per_pair": (after - before) / count}

    print(json.dumps(trio.run(main)))


def idle_memory(impl: Impl, pki: PKI, count: int) -> float:
    """KiB of RSS per idle established connection pair, measured in a fresh child."""
    out = subprocess.run(
        [sys.executable, __file__, "_idle", impl.key, str(pki.directory), str(count)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if out.returncode:
        raise RuntimeError(f"the idle-memory child for {impl.key} failed:\n{out.stderr}")
    per_pair: float = json.loads(out.stdout)["per_pair"]
    return per_pair / 1024


# --- rows, counts and the report ----------------------------------------------------


@dataclass(frozen=True)
class Counts:
    handshakes: int
    tcp_handshakes: int
    resumed: int
    bulk_bytes: int
    ping_rounds: int
    idle_pairs: int
    repeat: int


#: About four minutes on the 2-core machine of docs/performance.rst.
FULL: Final = Counts(
    handshakes=1000,
    tcp_handshakes=500,
    resumed=1000,
    bulk_bytes=256 * 2**20,
    ping_rounds=20_000,
    idle_pairs=1000,
    repeat=7,
)
QUICK: Final = Counts(
    handshakes=30,
    tcp_handshakes=30,
    resumed=30,
    bulk_bytes=8 * 2**20,
    ping_rounds=500,
    idle_pairs=100,
    repeat=3,
)


@dataclass(frozen=True)
class Row:
    """A workload run for several implementations, interleaved."""

    name: str
    unit: str
    better: Direction
    target: float
    impls: tuple[str, ...]
    run: Callable[[Impl, Counts, Context], float]
    #: Untimed warm-up run before the timed ones (skipped for child processes).
    warm_up: bool = True


@dataclass
class Context:
    pki: PKI
    impls: dict[str, Impl]
    servers: dict[str, ServerProcess] = field(default_factory=dict)
    resumed_fraction: dict[str, list[float]] = field(default_factory=dict)
    #: What each client negotiated with its child server, checked once.
    tcp_negotiated: dict[str, dict[str, object]] = field(default_factory=dict)

    def server(self, impl: Impl) -> ServerProcess:
        if impl.key not in self.servers:
            key = "triotls" if isinstance(impl, TriotlsImpl) else impl.key
            if key not in self.servers:
                self.servers[key] = start_server(key, self.pki)
            self.servers[impl.key] = self.servers[key]
            port = self.servers[key].handshake_port
            info = trio.run(check_tcp_negotiation, impl, port)
            print(f"negotiated over TCP by {impl.label}: {info}", flush=True)
            self.tcp_negotiated[impl.key] = info
        return self.servers[impl.key]

    def close(self) -> None:
        for server in {id(s): s for s in self.servers.values()}.values():
            server.stop()


ALL3: Final = ("triotls", "triotls-mlkem", "ssl")
BOTH: Final = ("triotls", "ssl")
#: In-process rows also run the no-TLS ceiling (FlightStream).
ALL3_CEILING: Final = (*ALL3, "no-tls")
BOTH_CEILING: Final = (*BOTH, "no-tls")
IMPLS: Final = ALL3_CEILING


def _handshake_row(concurrency: int, impls: tuple[str, ...]) -> Row:
    return Row(
        name=f"handshake-{concurrency}",
        unit="conn/s",
        better="higher",
        target=1.5,
        impls=impls,
        run=lambda impl, c, ctx: trio.run(handshakes_in_process, impl, c.handshakes, concurrency),
    )


def _tcp_handshake_row(concurrency: int, impls: tuple[str, ...]) -> Row:
    return Row(
        name=f"handshake-tcp-{concurrency}",
        unit="conn/s",
        better="higher",
        target=1.5,
        impls=impls,
        run=lambda impl, c, ctx: trio.run(
            handshakes_tcp, impl, ctx.server(impl).handshake_port, c.tcp_handshakes, concurrency
        ),
    )


def _resumed(impl: Impl, counts: Counts, ctx: Context) -> float:
    result = trio.run(resumed_in_process, impl, counts.resumed)
    if result is None:
        return float("nan")
    ctx.resumed_fraction.setdefault(impl.key, []).append(result.resumed / result.total)
    return result.rate


ROWS: Final = (
    _handshake_row(1, ALL3_CEILING),
    _handshake_row(8, BOTH),
    _handshake_row(64, ALL3),
    Row(
        name="resumed-1",
        unit="conn/s",
        better="higher",
        target=2.0,
        impls=BOTH_CEILING,
        run=_resumed,
    ),
    _tcp_handshake_row(1, ALL3),
    _tcp_handshake_row(8, BOTH),
    _tcp_handshake_row(64, BOTH),
    Row(
        name="bulk",
        unit="MB/s",
        better="higher",
        target=2.0,
        impls=BOTH_CEILING,
        run=lambda impl, c, ctx: trio.run(bulk_in_process, impl, c.bulk_bytes),
    ),
    Row(
        name="bulk-tcp",
        unit="MB/s",
        better="higher",
        target=1.5,
        impls=BOTH,
        run=lambda impl, c, ctx: trio.run(bulk_tcp, impl, ctx.server(impl).bulk_port, c.bulk_bytes),
    ),
    Row(
        name="ping-pong",
        unit="rt/s",
        better="higher",
        target=1.0,
        impls=BOTH_CEILING,
        run=lambda impl, c, ctx: trio.run(ping_pong_in_process, impl, c.ping_rounds),
    ),
    Row(
        name="idle-memory",
        unit="KiB/pair",
        better="lower",
        target=0.5,
        impls=ALL3,
        run=lambda impl, c, ctx: idle_memory(impl, ctx.pki, c.idle_pairs),
        warm_up=False,
    ),
)


def _scaled(counts: Counts, factor: float) -> Counts:
    """Counts for an untimed warm-up: a tenth of each, at least one."""
    return dataclasses.replace(
        counts,
        handshakes=max(1, int(counts.handshakes * factor)),
        tcp_handshakes=max(1, int(counts.tcp_handshakes * factor)),
        resumed=max(1, int(counts.resumed * factor)),
        bulk_bytes=max(BULK_CHUNK, int(counts.bulk_bytes * factor) // BULK_CHUNK * BULK_CHUNK),
        ping_rounds=max(1, int(counts.ping_rounds * factor)),
    )


@dataclass
class Summary:
    median: float
    low: float
    high: float
    runs: list[float]

    @classmethod
    def of(cls, runs: list[float]) -> Summary | None:
        values = [v for v in runs if not math.isnan(v)]  # NaN: not implemented
        if not values:
            return None
        return cls(statistics.median(values), min(values), max(values), runs)


def measure_row(
    row: Row, counts: Counts, ctx: Context, selected: Sequence[str]
) -> dict[str, list[float]]:
    """Run ``row`` for each selected implementation, interleaved run by run."""
    keys = [k for k in row.impls if k in selected]
    if row.warm_up:
        warm = _scaled(counts, 0.1)
        for key in keys:
            row.run(ctx.impls[key], warm, ctx)
    ctx.resumed_fraction.clear()
    results: dict[str, list[float]] = {k: [] for k in keys}
    for round_no in range(counts.repeat):
        order = keys if round_no % 2 == 0 else list(reversed(keys))
        for key in order:
            gc.collect()
            results[key].append(row.run(ctx.impls[key], counts, ctx))
    return results


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _cell(summary: Summary | None, note: str = "n/a (not implemented)") -> str:
    if summary is None:
        return note
    return f"{_fmt(summary.median)} ({_fmt(summary.low)}-{_fmt(summary.high)})"


def report_lines(
    row: Row, results: dict[str, list[float]], ctx: Context
) -> list[dict[str, object]]:
    """One table line per triotls variant, each against trio.SSLStream."""
    reference = Summary.of(results.get("ssl", []))
    lines: list[dict[str, object]] = []
    for key, runs in results.items():
        if key == "ssl":
            continue
        ours = Summary.of(runs)
        ratio = None
        if ours is not None and reference is not None and reference.median:
            ratio = ours.median / reference.median
        # Each round ran both implementations back to back: the median of the
        # per-round ratios is less sensitive to a machine that drifts.
        pairs = [a / b for a, b in zip(runs, results.get("ssl", []), strict=False) if b]
        paired = statistics.median(pairs) if ours is not None and pairs else None
        met = None
        ceiling = key == NoTLSImpl.key
        if ratio is not None and not ceiling:
            met = ratio >= row.target if row.better == "higher" else ratio <= row.target
        name = row.name if key == "triotls" else f"{row.name} ({ctx.impls[key].label})"
        line: dict[str, object] = {
            "row": name,
            "unit": row.unit,
            "triotls_variant": key,
            "triotls": dataclasses.asdict(ours) if ours else None,
            "sslstream": dataclasses.asdict(reference) if reference else None,
            "ratio": ratio,
            "paired_ratio": paired,
            "target": "ceiling"
            if ceiling
            else f"{'>=' if row.better == 'higher' else '<='} {row.target}x",
            "met": met,
        }
        if key in ctx.resumed_fraction or "ssl" in ctx.resumed_fraction:
            line["resumed_fraction"] = {
                k: statistics.median(v) for k, v in ctx.resumed_fraction.items()
            }
        lines.append(line)
    if not lines and reference is not None:
        lines.append(
            {
                "row": row.name,
                "unit": row.unit,
                "triotls": None,
                "sslstream": dataclasses.asdict(reference),
                "ratio": None,
                "target": f"{row.target}x",
                "met": None,
            }
        )
    return lines


def print_table(lines: list[dict[str, object]]) -> None:
    header = (
        "row",
        "unit",
        "triotls median (min-max)",
        "SSLStream median (min-max)",
        "ratio",
        "paired",
        "target",
        "met?",
    )
    table = [header]
    for line in lines:
        ours = line["triotls"]
        ref = line["sslstream"]
        ratio = line["ratio"]
        met = line["met"]
        table.append(
            (
                str(line["row"]),
                str(line["unit"]),
                _cell(Summary(**ours) if isinstance(ours, dict) else None),
                _cell(Summary(**ref) if isinstance(ref, dict) else None, "-"),
                f"{ratio:.2f}x" if isinstance(ratio, float) else "-",
                f"{paired:.2f}x" if isinstance(paired := line.get("paired_ratio"), float) else "-",
                str(line["target"]),
                {True: "yes", False: "NO", None: "-"}[met if isinstance(met, bool) else None],
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for i, r in enumerate(table):
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    for line in lines:
        if "resumed_fraction" in line:
            fractions = line["resumed_fraction"]
            assert isinstance(fractions, dict)  # built in report_lines
            shown = ", ".join(f"{k}: {v:.0%}" for k, v in fractions.items())
            print(f"{line['row']}: fraction of connections resumed: {shown}")


def machine() -> dict[str, object]:
    cpu = "unknown"
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                cpu = text.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "trio": trio.__version__,
        "cryptography": cryptography.__version__,
        "openssl": ssl.OPENSSL_VERSION,
        "triotls": triotls.__version__,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark triotls against trio.SSLStream (run from the repository root)."
    )
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write results as JSON")
    parser.add_argument(
        "--only",
        metavar="ROW",
        action="append",
        help="run only rows matching this name or glob (repeatable); see --list",
    )
    parser.add_argument("--repeat", type=int, metavar="N", help="timed runs per implementation")
    parser.add_argument(
        "--impls",
        default=",".join(IMPLS),
        help="comma-separated implementations to run (for profiling one alone)",
    )
    parser.add_argument("--list", action="store_true", help="list the rows and exit")
    args = parser.parse_args(argv)

    if args.list:
        for row in ROWS:
            sign = ">=" if row.better == "higher" else "<="
            impls = ", ".join(row.impls)
            print(f"{row.name:18} {row.unit:9} target {sign} {row.target}x  ({impls})")
        return 0
    counts = QUICK if args.quick else FULL
    if args.repeat is not None:
        if args.repeat < 1:
            parser.error("--repeat must be at least 1")
        counts = dataclasses.replace(counts, repeat=args.repeat)
    rows = [
        row
        for row in ROWS
        if not args.only or any(fnmatch.fnmatchcase(row.name, pat) for pat in args.only)
    ]
    if not rows:
        parser.error(f"no row matches {args.only}; see --list")
    selected = [k.strip() for k in args.impls.split(",") if k.strip()]
    unknown = set(selected) - set(IMPLS)
    if unknown:
        parser.error(f"unknown implementations {sorted(unknown)}; choose from {IMPLS}")

    info = machine()
    print(", ".join(f"{k} {v}" for k, v in info.items()))
    print(f"counts: {dataclasses.asdict(counts)}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="triotls-bench-") as tmp:
        pki = PKI.create(Path(tmp))
        ctx = Context(pki, make_impls(pki))
        negotiated = {
            k: trio.run(check_negotiation, ctx.impls[k]) for k in selected if k != NoTLSImpl.key
        }
        for key, values in negotiated.items():
            print(f"negotiated by {ctx.impls[key].label}: {values}")
        lines: list[dict[str, object]] = []
        try:
            for row in rows:
                row_start = time.perf_counter()
                results = measure_row(row, counts, ctx, selected)
                new = report_lines(row, results, ctx)
                lines += new
                print(f"[{row.name}: {time.perf_counter() - row_start:.1f} s]", flush=True)
        finally:
            ctx.close()
    print()
    print_table(lines)
    elapsed = time.perf_counter() - started
    print(f"\ntotal {elapsed:.0f} s")
    if args.json:
        document = {
            "machine": info,
            "counts": dataclasses.asdict(counts),
            "negotiated": negotiated,
            "negotiated_tcp": ctx.tcp_negotiated,
            "rows": lines,
            "seconds": elapsed,
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_serve":
        serve_main(sys.argv[2], sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "_idle":
        idle_main(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(main())
