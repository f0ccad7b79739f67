"""Review round 6 of the trio layer (TLSStream, listener): each test showed a bug.

They failed before the fixes: two deadlocks of a reader queued behind a
blocked writer at the end of the handshake, an answer left queued by
wait_send_all_might_not_block, data before the peer's clean close lost to a
failed write, receive_some returning data after aclose, a TCP connection
leaked when wrapping it failed, and the stored error's traceback growing on
every call.
"""

from __future__ import annotations

import array
import dataclasses
import gc
import weakref

import pytest
import trio
import trio.testing
import trustme
from trio.testing import MockClock

from triotls import EarlyDataStatus, SessionCache, TicketKeys, listener
from triotls.config import CertifiedKey, ClientConfig, ServerConfig, TrustStore
from triotls.stream import TLSStream

from .helpers import handshake_both, tls_pair

_BIG = 300_000


async def _read_all(stream: TLSStream, size: int, into: bytearray) -> None:
    while len(into) < size:
        chunk = await stream.receive_some()
        if not chunk:
            return
        into += chunk


async def test_reader_that_waited_for_the_handshake_lock_does_not_queue_behind_the_writer(
    client_config: ClientConfig, server_config: ServerConfig, autojump_clock: MockClock
) -> None:
    # A full-duplex client: a writer task and a reader task, started on a
    # fresh stream (the handshake happens on first use). The peer is a plain
    # sequential program: it writes its whole reply, then reads.
    client, server = tls_pair(trio.testing.lockstep_stream_pair(), client_config, server_config)
    from_server = bytearray()
    from_client = bytearray()

    async def sequential_server() -> None:
        await server.do_handshake()
        await server.send_all(b"s" * _BIG)
        await _read_all(server, _BIG, from_client)

    with trio.move_on_after(60) as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send_all, b"c" * _BIG)  # drives the handshake
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(_read_all, client, _BIG, from_server)  # waits for it
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(sequential_server)
    assert not scope.cancelled_caught, "deadlock"
    assert from_server == b"s" * _BIG
    assert from_client == b"c" * _BIG


def _post_handshake_auth_configs(
    ca: trustme.CA, client_config: ClientConfig, server_config: ServerConfig
) -> tuple[ClientConfig, ServerConfig]:
    leaf = ca.issue_cert("client@example")
    chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    client = dataclasses.replace(
        client_config,
        post_handshake_auth=True,
        certificate=CertifiedKey.from_pem(chain, leaf.private_key_pem.bytes()),
    )
    server = dataclasses.replace(
        server_config, client_trust=TrustStore.from_pem(ca.cert_pem.bytes())
    )
    return client, server


async def test_answer_queued_while_wait_send_all_might_not_block_holds_the_lock_is_sent(
    ca: trustme.CA,
    client_config: ClientConfig,
    server_config: ServerConfig,
    autojump_clock: MockClock,
) -> None:
    client, server = tls_pair(
        trio.testing.lockstep_stream_pair(),
        *_post_handshake_auth_configs(ca, client_config, server_config),
    )
    await handshake_both(client, server)
    got = bytearray()
    with trio.move_on_after(60) as scope:
        async with trio.open_nursery() as nursery:
            # The client reads in one task and, in another, waits until it
            # could write (a lockstep transport: until the server reads).
            nursery.start_soon(_read_all, client, 4, got)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(client.wait_send_all_might_not_block)
            await trio.testing.wait_all_tasks_blocked()
            # The client's reader answers this while the waiter holds the
            # send lock: the answer must go out when the waiter lets go.
            await server.request_client_certificate()
            result = await server.wait_client_certificate()
            assert result.verification is not None and result.verification.is_valid
            await server.send_all(b"done")
    assert not scope.cancelled_caught, "the client's certificate answer was never sent"
    assert got == b"done"


async def test_data_buffered_before_the_peers_clean_close_survives_a_failed_write(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server = tls_pair(trio.testing.memory_stream_pair(), client_config, server_config)
    await handshake_both(client, server)
    # The server says its last words and closes cleanly (close_notify, then
    # the transport), before the client has read any of it.
    await server.send_all(b"goodbye, and here is why")
    await server.aclose()
    assert await client.receive_some(3) == b"goo"  # the rest is buffered
    assert client.close_reason is not None  # close_notify arrived in that read
    # Writing to a peer that left fails: that is the writer's business...
    with pytest.raises(trio.BrokenResourceError):
        await client.send_all(b"a request the server will never read")
    # ...but everything the peer sent before its clean close was authentic
    # and is already decrypted here: it must still be delivered, whole.
    assert await client.receive_some() == b"dbye, and here is why"
    assert await client.receive_some() == b""


_FATAL_INTERNAL_ERROR = b"\x15\x03\x03\x00\x02\x02\x50"


async def test_receive_some_after_aclose_raises_closed_even_with_data_before_an_alert(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server = tls_pair(trio.testing.memory_stream_pair(), client_config, server_config)
    await handshake_both(client, server)
    server.engine.send_application_data(b"last words")
    await server.transport_stream.send_all(server.engine.data_to_send() + _FATAL_INTERNAL_ERROR)
    assert await client.receive_some(4) == b"last"  # the rest waits, then the error
    await client.aclose()
    # trio's Stream contract: after aclose, every other method raises
    # ClosedResourceError.
    with pytest.raises(trio.ClosedResourceError):
        await client.receive_some()


async def test_open_tls_over_tcp_stream_closes_the_connection_when_wrapping_fails(
    client_config: ClientConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tcp_listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = tcp_listener.socket.getsockname()[1]
    opened: list[trio.SocketStream] = []
    real_open = trio.open_tcp_stream

    async def recording_open(*args: object, **kwargs: object) -> trio.SocketStream:
        stream = await real_open(*args, **kwargs)  # type: ignore[arg-type]
        opened.append(stream)
        return stream

    monkeypatch.setattr(trio, "open_tcp_stream", recording_open)
    try:
        # The name is refused (not a DNS name) only after the TCP connect.
        with pytest.raises(ValueError, match="server_hostname"):
            await listener.open_tls_over_tcp_stream(
                "127.0.0.1", port, client_config, server_hostname="not a host name"
            )
        assert len(opened) == 1
        assert opened[0].socket.fileno() == -1, "the TCP connection was left open"
    finally:
        for stream in opened:
            await stream.aclose()
        await tcp_listener.aclose()


async def test_server_reader_finishing_the_handshake_does_not_queue_behind_a_half_rtt_writer(
    client_config: ClientConfig, server_config: ServerConfig, autojump_clock: MockClock
) -> None:
    early_server = dataclasses.replace(
        server_config,
        max_early_data_size=4096,
        ticket_keys=TicketKeys(),
        early_data_replay_guard=None,
    )
    cached_client = dataclasses.replace(client_config, session_cache=SessionCache())
    first_client, first_server = tls_pair(
        trio.testing.memory_stream_pair(), cached_client, early_server
    )
    await handshake_both(first_client, first_server)  # a ticket for the next visit
    client, server = tls_pair(trio.testing.lockstep_stream_pair(), cached_client, early_server)
    from_server = bytearray()
    from_client = bytearray()

    async def sequential_client() -> None:
        await client.do_handshake(early_data=b"GET /")
        assert client.early_data_status is EarlyDataStatus.ACCEPTED
        await client.send_all(b"c" * _BIG)
        await _read_all(client, _BIG, from_server)

    async def full_duplex_server() -> None:
        assert await server.receive_early_data() == b"GET /"
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.send_all, b"s" * _BIG)  # 0.5-RTT answer
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(_read_all, server, _BIG, from_client)  # completes the handshake

    with trio.move_on_after(60) as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sequential_client)
            nursery.start_soon(full_duplex_server)
    assert not scope.cancelled_caught, "deadlock"
    assert from_server == b"s" * _BIG
    assert from_client == b"c" * _BIG


class _Payload(bytearray):
    """A bytearray that can be watched with a weak reference."""


async def test_calls_on_a_broken_stream_do_not_keep_their_frames_and_data_alive(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server = tls_pair(trio.testing.memory_stream_pair(), client_config, server_config)
    await handshake_both(client, server)
    await server.transport_stream.send_all(_FATAL_INTERNAL_ERROR)
    with pytest.raises(trio.BrokenResourceError):
        await client.receive_some()
    depths = []
    for _ in range(3):
        with pytest.raises(trio.BrokenResourceError) as caught:
            await client.send_all(b"x")
        depth, tb = 0, caught.value.__traceback__
        while tb is not None:
            depth, tb = depth + 1, tb.tb_next
        depths.append(depth)
        del caught
    payload = _Payload(b"a large buffer the caller drops after the failed call")
    watch = weakref.ref(payload)
    with pytest.raises(trio.BrokenResourceError) as first:
        await client.send_all(payload)
    del payload
    # The same error object each time (documented: later calls raise the
    # same error), so it carries the latest call's traceback; the next call
    # replaces it, and the earlier call's frames and buffer go.
    with pytest.raises(trio.BrokenResourceError) as again:
        await client.send_all(b"y")
    assert again.value is first.value
    del first, again
    gc.collect()
    # Each failed call must not pile its frames (and their locals, like the
    # caller's buffer) onto the traceback of the error the stream keeps.
    assert depths[0] == depths[1] == depths[2], depths
    assert watch() is None, "an earlier failed call's buffer is kept alive by the stream"


async def test_send_all_of_a_view_with_two_byte_items_sends_each_byte_once(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    # send_all seals large data in 256 KiB steps over a byte view of it; a
    # view of two-byte items (array('H')) arrives whole and once.
    client, server = tls_pair(trio.testing.memory_stream_pair(), client_config, server_config)
    await handshake_both(client, server)
    data = array.array("H", range(2**16)) * 4  # 512 KiB, two sealing steps
    expected = data.tobytes()
    received = bytearray()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_read_all, server, len(expected), received)
        await client.send_all(memoryview(data))
    assert bytes(received) == expected
