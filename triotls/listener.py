"""TLS over TCP for trio: listeners, servers and client helpers.

Shaped like trio's ``open_ssl_over_tcp_stream`` / ``serve_ssl_over_tcp`` so a
trio program switches by changing one import. Each accepted connection's
handshake runs in that connection's own task under the handshake deadline;
a silent or slow client never delays ``accept`` or any other client.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import final

import trio
from typing_extensions import override

from .config import ClientConfig, ServerConfig
from .errors import InternalError, TLSError
from .stream import TLSStream

__all__ = [
    "TLSListener",
    "open_tls_over_tcp_listeners",
    "open_tls_over_tcp_stream",
    "serve_tls_over_tcp",
]

log = logging.getLogger("triotls")


@final
class TLSListener(trio.abc.Listener[TLSStream]):
    """Wraps a listener of transport streams; ``accept`` returns TLSStreams.

    ``accept`` does not handshake: the handshake runs when the returned
    stream is first used (or on ``do_handshake``), in the caller's task, so
    that one slow client cannot hold up the accept loop.

    Args:
        transport_listener: the listener whose streams carry TLS.
        config: the server configuration.
    """

    def __init__(
        self, transport_listener: trio.abc.Listener[trio.abc.Stream], config: ServerConfig
    ) -> None:
        _check_server_config(config)
        self.transport_listener = transport_listener
        self.config = config

    @override
    async def accept(self) -> TLSStream:
        """Accept the next connection, wrapped (not yet handshaken)."""
        transport = await self.transport_listener.accept()
        return TLSStream(transport, self.config, server_side=True)

    @override
    async def aclose(self) -> None:
        """Close the transport listener."""
        await self.transport_listener.aclose()


async def open_tls_over_tcp_stream(
    host: str | bytes,
    port: int,
    config: ClientConfig,
    *,
    server_hostname: str | None = None,
    happy_eyeballs_delay: float | None = 0.25,
) -> TLSStream:
    """Connect over TCP and wrap the connection in a client TLSStream.

    Args:
        host: the host to connect to; also the SNI and certificate name
            unless ``server_hostname`` is given.
        port: the TCP port.
        config: the client configuration.
        server_hostname: the name to send and verify, if not ``host``.
        happy_eyeballs_delay: as for :func:`trio.open_tcp_stream`.

    Like trio's ``open_ssl_over_tcp_stream``, the handshake happens on first
    use; call ``await stream.do_handshake()`` to do it eagerly. With
    ``config.session_cache``, a ticket from an earlier connection to the same
    host, port and ALPN list is offered, and new tickets are kept.
    """
    tcp = await trio.open_tcp_stream(host, port, happy_eyeballs_delay=happy_eyeballs_delay)
    try:
        if server_hostname is None:
            server_hostname = host.decode() if isinstance(host, bytes) else host
        host_text = host.decode() if isinstance(host, bytes) else host
        return TLSStream(
            tcp, config, server_hostname=server_hostname, session_key=f"{host_text}:{port}"
        )
    except BaseException:
        # A name TLSStream refuses (say): the connection must not leak.
        await trio.aclose_forcefully(tcp)
        raise


async def open_tls_over_tcp_listeners(
    port: int,
    config: ServerConfig,
    *,
    host: str | bytes | None = None,
    backlog: int | None = None,
) -> list[TLSListener]:
    """Open TCP listeners on ``port`` and wrap each in a :class:`TLSListener`."""
    _check_server_config(config)  # before anything binds
    tcp_listeners = await trio.open_tcp_listeners(port, host=host, backlog=backlog)
    return [TLSListener(listener, config) for listener in tcp_listeners]


def _check_server_config(config: object) -> None:
    if not isinstance(config, ServerConfig):
        raise TypeError(
            f"a listener needs a ServerConfig, not {type(config).__name__}: every accepted "
            "connection would fail"
        )


def _peer_name(stream: TLSStream) -> str:
    """The peer's address for logs, when the transport is a socket."""
    transport = stream.transport_stream
    if isinstance(transport, trio.SocketStream):
        try:
            host, port, *_ = transport.socket.getpeername()
        except (OSError, ValueError):
            return "a peer that already left"
        return f"{host}:{port}"
    return "the peer"


async def serve_tls_over_tcp(
    handler: Callable[[TLSStream], Awaitable[object]],
    port: int,
    config: ServerConfig,
    *,
    host: str | bytes | None = None,
    backlog: int | None = None,
    handler_nursery: trio.Nursery | None = None,
    task_status: trio.TaskStatus[list[TLSListener]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve TLS over TCP forever, calling ``handler`` for each connection.

    Each connection completes its handshake in its own task, under
    ``config.handshake_timeout``, before ``handler`` sees it. A handshake that
    fails or times out is logged (logger ``"triotls"``) and closed; it never
    reaches the nursery. ``task_status.started`` receives the listeners.
    """
    listeners = await open_tls_over_tcp_listeners(port, config, host=host, backlog=backlog)

    async def handshake_then_handle(stream: TLSStream) -> None:
        try:
            await stream.do_handshake()
        except InternalError:
            # Our side failed (a raising certificate_resolver or staple
            # callback, a broken key log): an operator must see it.
            log.exception("TLS handshake failed on the server's side (peer %s)", _peer_name(stream))
            await trio.aclose_forcefully(stream)
            return
        except (TLSError, trio.BrokenResourceError) as exc:
            log.info("TLS handshake failed: %s (peer %s)", exc, _peer_name(stream))
            await trio.aclose_forcefully(stream)
            return
        await handler(stream)

    await trio.serve_listeners(
        handshake_then_handle,
        listeners,
        handler_nursery=handler_nursery,
        task_status=task_status,
    )
