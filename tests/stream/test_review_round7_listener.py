"""Review round 7: TLSListener and serve_tls_over_tcp.

Most tests here proved a bug and failed before its fix (listeners taking a
ClientConfig, a server-side internal error logged as a client's failed
handshake). The others pin verified behaviour.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import Final

import pytest
import trio
import trio.testing

from triotls import TLSListener
from triotls.config import ClientConfig, ServerConfig
from triotls.listener import open_tls_over_tcp_stream, serve_tls_over_tcp
from triotls.stream import TLSStream

from .helpers import receive_exactly

HOST: Final = "127.0.0.1"
PROMPT: Final = 5.0


async def _echo_once(stream: TLSStream) -> None:
    data = await stream.receive_some()
    await stream.send_all(data)
    await stream.aclose()


def _port(listener: TLSListener) -> int:
    transport = listener.transport_listener
    assert isinstance(transport, trio.SocketListener)
    port: int = transport.socket.getsockname()[1]
    return port


class _NoListener(trio.abc.Listener[trio.abc.Stream]):
    async def accept(self) -> trio.abc.Stream:
        raise AssertionError("not used")

    async def aclose(self) -> None:
        pass


def test_tls_listener_refuses_a_client_config() -> None:
    with pytest.raises(TypeError, match="ServerConfig"):
        TLSListener(_NoListener(), ClientConfig())  # type: ignore[arg-type]


async def test_serve_tls_over_tcp_refuses_a_client_config_before_listening() -> None:
    async with trio.open_nursery() as nursery:
        with trio.fail_after(PROMPT), pytest.raises(TypeError, match="ServerConfig"):
            await nursery.start(
                functools.partial(serve_tls_over_tcp, host=HOST),
                _echo_once,
                0,
                ClientConfig(),
            )
        nursery.cancel_scope.cancel()


async def test_server_side_internal_error_is_logged_as_an_error_with_its_traceback(
    client_config: ClientConfig, server_config: ServerConfig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="triotls")

    def broken_resolver(name: str | None, schemes: tuple[int, ...]) -> None:
        raise ZeroDivisionError("the application's resolver is broken")

    config = dataclasses.replace(server_config, certificate_resolver=broken_resolver)
    async with trio.open_nursery() as nursery:
        [listener, *_] = await nursery.start(
            functools.partial(serve_tls_over_tcp, host=HOST), _echo_once, 0, config
        )
        with trio.fail_after(PROMPT):
            stream = await open_tls_over_tcp_stream(
                HOST, _port(listener), client_config, server_hostname="localhost"
            )
            with pytest.raises(trio.BrokenResourceError):
                await stream.do_handshake()
            await stream.aclose()
            while not [r for r in caplog.records if r.name == "triotls"]:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    [record] = [r for r in caplog.records if r.name == "triotls"]
    assert record.levelno >= logging.WARNING
    assert record.exc_info is not None


async def test_a_client_silent_after_its_handshake_holds_only_its_own_handler(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    # The handler waits on the silent client; accept and other clients go on.
    async with trio.open_nursery() as nursery:
        [listener, *_] = await nursery.start(
            functools.partial(serve_tls_over_tcp, host=HOST), _echo_once, 0, server_config
        )
        port = _port(listener)
        with trio.fail_after(PROMPT):
            idle = await open_tls_over_tcp_stream(
                HOST, port, client_config, server_hostname="localhost"
            )
            await idle.do_handshake()
            for n in range(3):
                other = await open_tls_over_tcp_stream(
                    HOST, port, client_config, server_hostname="localhost"
                )
                message = b"served %d" % n
                await other.send_all(message)
                assert await receive_exactly(other, len(message)) == message
                await other.aclose()
            await idle.aclose()
        nursery.cancel_scope.cancel()
