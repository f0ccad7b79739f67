"""serve_tls_over_tcp, TLSListener and open_tls_over_tcp_stream on loopback.

A silent or slow client must never delay accept or other clients: each
handshake runs in its connection's own task under the handshake deadline,
and failures are logged and closed, never raised into the nursery.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import socket
from typing import Final

import pytest
import trio

from triotls import CertificateVerificationError, TLSListener
from triotls.config import ClientConfig, ServerConfig
from triotls.listener import (
    open_tls_over_tcp_listeners,
    open_tls_over_tcp_stream,
    serve_tls_over_tcp,
)
from triotls.stream import TLSStream

from .helpers import handshake_both, receive_exactly

HOST: Final = "127.0.0.1"
SILENT_CLIENTS: Final = 200
#: The server's handshake deadline in the tests that wait it out.
SHORT_TIMEOUT: Final = 2.0
#: How long a real client may take while silent ones hang around.
PROMPT: Final = 5.0


async def _echo_once(stream: TLSStream) -> None:
    data = await stream.receive_some()
    await stream.send_all(data)
    await stream.aclose()


async def _serve(nursery: trio.Nursery, config: ServerConfig) -> int:
    """Start an echo server on 127.0.0.1 and return its port."""
    listeners: list[TLSListener] = await nursery.start(
        functools.partial(serve_tls_over_tcp, host=HOST), _echo_once, 0, config
    )
    return _port(listeners[0])


def _port(listener: TLSListener) -> int:
    transport = listener.transport_listener
    assert isinstance(transport, trio.SocketListener)
    port: int = transport.socket.getsockname()[1]
    return port


async def _echo_exchange(port: int, client_config: ClientConfig, message: bytes) -> TLSStream:
    stream = await open_tls_over_tcp_stream(HOST, port, client_config, server_hostname="localhost")
    await stream.send_all(message)
    assert await receive_exactly(stream, len(message)) == message
    assert await stream.receive_some() == b""  # the server closed cleanly
    await stream.aclose()
    return stream


async def _connect_silently(port: int) -> socket.socket:
    """A plain TCP connection that will never send a byte."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.connect_ex((HOST, port))
    await trio.lowlevel.wait_writable(sock)
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
    return sock


def _is_open(sock: socket.socket) -> bool:
    """True while the server has neither closed nor written to ``sock``."""
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    return False


async def _wait_closed_by_server(sock: socket.socket) -> None:
    await trio.lowlevel.wait_readable(sock)
    with contextlib.suppress(ConnectionResetError):  # closed too, just less politely
        assert sock.recv(1) == b"", "the server wrote to a silent client"


def _failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "triotls" and r.getMessage().startswith("TLS handshake failed")
    ]


async def test_silent_clients_do_not_delay_a_real_client_and_are_dropped_at_the_deadline(
    client_config: ClientConfig, server_config: ServerConfig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="triotls")
    config = dataclasses.replace(server_config, handshake_timeout=SHORT_TIMEOUT)
    silent: list[tuple[socket.socket, float]] = []
    try:
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, config)
            for _ in range(SILENT_CLIENTS):
                silent.append((await _connect_silently(port), trio.current_time()))
            first_connected = silent[0][1]

            with trio.fail_after(PROMPT):
                await _echo_exchange(port, client_config, b"served at once")
            elapsed = trio.current_time() - first_connected
            assert elapsed < SHORT_TIMEOUT * 0.75, (
                f"connecting and serving took {elapsed:.2f}s; too slow a machine for this test"
            )
            # The real client was served while every silent one was still connected.
            assert all(_is_open(sock) for sock, _ in silent)

            # Then each silent connection is dropped when its own deadline passes.
            with trio.fail_after(SHORT_TIMEOUT + PROMPT):
                for sock, connected_at in silent:
                    await _wait_closed_by_server(sock)
                    assert trio.current_time() - connected_at >= SHORT_TIMEOUT - 0.05
            with trio.fail_after(PROMPT):
                while len(_failures(caplog)) < SILENT_CLIENTS:
                    await trio.sleep(0.01)
            # Still serving, and nothing was raised into the nursery.
            with trio.fail_after(PROMPT):
                await _echo_exchange(port, client_config, b"still serving")
            nursery.cancel_scope.cancel()
    finally:
        for sock, _ in silent:
            sock.close()
    failures = _failures(caplog)
    assert len(failures) == SILENT_CLIENTS
    assert all(f"within {SHORT_TIMEOUT} seconds" in message for message in failures)


async def test_failed_handshake_is_logged_and_the_server_keeps_serving(
    client_config: ClientConfig,
    wrong_ca_client_config: ClientConfig,
    server_config: ServerConfig,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="triotls")
    async with trio.open_nursery() as nursery:
        port = await _serve(nursery, server_config)
        with trio.fail_after(PROMPT):
            stream = await open_tls_over_tcp_stream(
                HOST, port, wrong_ca_client_config, server_hostname="localhost"
            )
            with pytest.raises(CertificateVerificationError):
                await stream.do_handshake()
            await stream.aclose()
            while not _failures(caplog):
                await trio.sleep(0.01)
            await _echo_exchange(port, client_config, b"next client is fine")
        nursery.cancel_scope.cancel()
    [failure] = _failures(caplog)
    assert failure.startswith("TLS handshake failed: the peer sent a fatal alert: unknown_ca (48)")
    assert f"(peer {HOST}:" in failure


async def test_client_hanging_up_mid_handshake_is_logged_not_raised(
    client_config: ClientConfig, server_config: ServerConfig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="triotls")
    async with trio.open_nursery() as nursery:
        port = await _serve(nursery, server_config)
        with trio.fail_after(PROMPT):
            tcp = await trio.open_tcp_stream(HOST, port)
            await tcp.send_all(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello
            await tcp.aclose()
            while not _failures(caplog):
                await trio.sleep(0.01)
            await _echo_exchange(port, client_config, b"unaffected")
        nursery.cancel_scope.cancel()
    [failure] = _failures(caplog)
    assert "during the handshake" in failure


async def test_listener_accept_returns_a_stream_without_handshaking(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    [listener] = await open_tls_over_tcp_listeners(0, server_config, host=HOST)
    port = _port(listener)
    silent = await _connect_silently(port)
    try:
        with trio.fail_after(PROMPT):
            # The silent client sends nothing, yet accept returns at once.
            idle = await listener.accept()
        assert isinstance(idle, TLSStream)
        assert idle.negotiated is None
        assert idle.handshake_seconds is None
        assert _is_open(silent)

        with trio.fail_after(PROMPT):
            client = await open_tls_over_tcp_stream(
                HOST, port, client_config, server_hostname="localhost"
            )
            server = await listener.accept()
            await handshake_both(client, server)
            assert server.server_name == "localhost"
            async with trio.open_nursery() as nursery:
                nursery.start_soon(client.send_all, b"over TCP")
                assert await receive_exactly(server, 8) == b"over TCP"
            await client.aclose()
            await server.aclose()
        await idle.aclose()
    finally:
        silent.close()
        await listener.aclose()


async def test_open_tls_over_tcp_stream_verifies_the_host_by_default(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    async with trio.open_nursery() as nursery:
        port = await _serve(nursery, server_config)
        with trio.fail_after(PROMPT):
            # No server_hostname: the host itself (an IP in the certificate) is checked.
            stream = await open_tls_over_tcp_stream(HOST, port, client_config)
            await stream.send_all(b"by address")
            assert await receive_exactly(stream, 10) == b"by address"
            assert stream.negotiated is not None
            assert stream.negotiated.verified_chain is not None
            await stream.aclose()
        nursery.cancel_scope.cancel()
