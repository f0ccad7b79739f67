"""A blocking driver for the triotls engine over a plain socket.

The interop tests need our engine on one end of a real TCP connection, without
the trio layer (which has tests of its own): ``run_client`` connects,
handshakes, sends, reads the echo and exchanges close_notify; ``serve_one``
accepts one connection and echoes until the peer closes.

Every socket operation runs under one overall deadline per call (the
socket's timeout is set to what is left before each operation), so a silent
or broken peer makes a test fail with :class:`DriverError`, never hang.

Both record what crossed the wire (the first bytes each way) so tests can
check the plaintext hellos independently of the engine (see ``wire.py``).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Final, Literal

from tests.interop.wire import ClientHelloInfo, ServerHelloInfo, client_hellos, server_hellos
from triotls.config import ClientConfig, ServerConfig
from triotls.engine import ClientConnection, Negotiated, ServerConnection, events
from triotls.errors import LocalAlert, TLSError

__all__ = [
    "ClientResult",
    "DriverError",
    "EngineResult",
    "PeerClose",
    "ServerResult",
    "open_listener",
    "run_client",
    "serve_one",
]

PeerClose = Literal["close_notify", "eof", "reset"]
"""How the peer ended its side: close_notify alert, bare TCP EOF, or RST."""

_Step = Callable[[], None]

_CAPTURE_LIMIT: Final = 2**20
_READ_SIZE: Final = 65536


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineResult:
    """What our engine saw on one connection.

    Attributes:
        role: "client" or "server".
        negotiated: ``conn.negotiated`` after the handshake.
        sent: application data we sent.
        received: application data we received.
        events: names of the engine events, in order.
        peer_close: how the peer closed (None: we stopped before it did).
        sent_close_notify: our close_notify reached the socket.
        close_error: the error writing our close_notify hit, if any (a peer
            that leaves right after its own close_notify can cause one).
        key_updates_received: KeyUpdated events.
        wire_sent: the first bytes we wrote (up to 1 MiB).
        wire_received: the first bytes we read (up to 1 MiB).
    """

    role: Literal["client", "server"]
    negotiated: Negotiated | None
    sent: bytes
    received: bytes
    events: tuple[str, ...]
    peer_close: PeerClose | None
    sent_close_notify: bool
    close_error: str | None
    key_updates_received: int
    wire_sent: bytes = field(repr=False)
    wire_received: bytes = field(repr=False)

    def server_hellos(self) -> list[ServerHelloInfo]:
        """HelloRetryRequest/ServerHello messages, as parsed from the wire."""
        return server_hellos(self.wire_received if self.role == "client" else self.wire_sent)

    def client_hellos(self) -> list[ClientHelloInfo]:
        """ClientHello messages (two after a HelloRetryRequest), from the wire."""
        return client_hellos(self.wire_sent if self.role == "client" else self.wire_received)

    @property
    def hello_retry(self) -> bool:
        """A HelloRetryRequest went over the wire."""
        return any(h.is_hello_retry_request for h in self.server_hellos())


ClientResult = EngineResult
ServerResult = EngineResult


class DriverError(Exception):
    """The conversation failed; says at which stage and keeps what was seen.

    Attributes:
        stage: "connect", "accept", "handshake", "send", "echo", "close".
        result: what the engine saw up to the failure.
    """

    def __init__(self, stage: str, cause: BaseException, result: EngineResult) -> None:
        self.stage = stage
        self.result = result
        detail = f"{type(cause).__name__}: {cause}"
        if isinstance(cause, LocalAlert):
            detail += f" [we sent alert {cause.sent_alert.name.lower()}]"
        super().__init__(
            f"triotls {result.role} failed during {stage}: {detail}\n"
            f"  events so far: {list(result.events)}\n"
            f"  wire: sent {len(result.wire_sent)} bytes, received {len(result.wire_received)}"
            f" bytes; peer close: {result.peer_close}"
        )


@contextmanager
def open_listener(host: str = "127.0.0.1") -> Iterator[socket.socket]:
    """A TCP listening socket on a free port of ``host``; closed on exit."""
    listener = socket.create_server((host, 0))
    try:
        yield listener
    finally:
        listener.close()


def run_client(  # noqa: PLR0917  # the agreed signature; send/expect_echo/timeout positional
    host: str,
    port: int,
    config: ClientConfig,
    server_hostname: str | None,
    send: bytes,
    expect_echo: bool,
    timeout: float,
    *,
    key_update: bool = False,
    wait_peer_close: bool = True,
) -> ClientResult:
    """Connect, handshake, send ``send``, read the echo, exchange close_notify.

    Args:
        host: server address.
        port: server port.
        config: our client configuration.
        server_hostname: SNI and the name to verify.
        send: application data to send after the handshake.
        expect_echo: read until as many bytes as were sent came back.
        timeout: deadline for the whole conversation, in seconds.
        key_update: send a KeyUpdate (requesting the peer's) before the data.
        wait_peer_close: after our close_notify, read until the peer's
            close_notify (or EOF).

    Returns:
        What our engine saw.

    Raises:
        DriverError: any failure (engine error, timeout, socket error), with
            the stage it happened in and the partial result.
    """
    deadline = time.monotonic() + timeout
    session = _Session("client", deadline)
    try:
        session.sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise DriverError("connect", exc, session.result()) from exc
    with session.sock:
        conn = ClientConnection(config, server_hostname=server_hostname)
        session.conn = conn
        session.run("handshake", conn.start_handshake)
        session.run("handshake", session.complete_handshake)
        if key_update:
            session.run("send", lambda: conn.key_update(request_peer=True))
        session.run("send", lambda: session.send(send))
        if expect_echo:
            session.run("echo", lambda: session.read_until(len(send)))
        session.close(wait_peer_close=wait_peer_close)
    return session.result()


def serve_one(
    listener: socket.socket,
    config: ServerConfig,
    *,
    timeout: float,
    close_after: int | None = None,
    key_update: bool = False,
) -> ServerResult:
    """Accept one connection, handshake, echo, exchange close_notify.

    By default the server echoes until the peer's close_notify (or EOF) and
    then sends its own. With ``close_after`` it sends close_notify first, once
    that many bytes were echoed, and then waits for the peer's.

    Args:
        listener: a listening socket (see :func:`open_listener`).
        config: our server configuration.
        timeout: deadline for the whole conversation, accept included.
        close_after: close first after echoing this many bytes.
        key_update: send a KeyUpdate (requesting the peer's) after the handshake.

    Returns:
        What our engine saw.

    Raises:
        DriverError: any failure, with its stage and the partial result.
    """
    deadline = time.monotonic() + timeout
    session = _Session("server", deadline)
    try:
        listener.settimeout(timeout)
        session.sock, _address = listener.accept()
    except OSError as exc:
        raise DriverError("accept", exc, session.result()) from exc
    with session.sock:
        conn = ServerConnection(config)
        session.conn = conn
        session.run("handshake", conn.start_handshake)
        session.run("handshake", session.complete_handshake)
        if key_update:
            session.run("send", lambda: conn.key_update(request_peer=True))
            session.run("send", session.flush)
        session.run("echo", lambda: session.echo(close_after))
        session.close(wait_peer_close=session.peer_close is None)
    return session.result()


class _Session:
    """One engine connection stepped over one blocking socket."""

    def __init__(self, role: Literal["client", "server"], deadline: float) -> None:
        self.role: Literal["client", "server"] = role
        self.deadline = deadline
        self.sock: socket.socket | None = None
        self.conn: ClientConnection | ServerConnection | None = None
        self.sent = bytearray()
        self.received = bytearray()
        self.events: list[str] = []
        self.peer_close: PeerClose | None = None
        self.sent_close_notify = False
        self.close_error: str | None = None
        self.key_updates = 0
        self.wire_sent = bytearray()
        self.wire_received = bytearray()

    def result(self) -> EngineResult:
        return EngineResult(
            role=self.role,
            negotiated=self.conn.negotiated if self.conn is not None else None,
            sent=bytes(self.sent),
            received=bytes(self.received),
            events=tuple(self.events),
            peer_close=self.peer_close,
            sent_close_notify=self.sent_close_notify,
            close_error=self.close_error,
            key_updates_received=self.key_updates,
            wire_sent=bytes(self.wire_sent),
            wire_received=bytes(self.wire_received),
        )

    def run(self, stage: str, step: _Step) -> None:
        """Run ``step``; flush what the engine queued; wrap any failure."""
        try:
            step()
            self.flush()
        except (TLSError, OSError, _PeerGone) as exc:
            self._flush_alert()
            raise DriverError(stage, exc, self.result()) from exc

    # --- steps -------------------------------------------------------------

    def complete_handshake(self) -> None:
        while not self._conn.handshake_complete:
            self.flush()
            if not self.pump():
                raise _PeerGone(f"the peer closed the connection ({self.peer_close}) mid-handshake")

    def send(self, data: bytes) -> None:
        self._conn.send_application_data(data)
        self.sent += data

    def read_until(self, size: int) -> None:
        while len(self.received) < size:
            if not self.pump():
                raise _PeerGone(
                    f"the peer closed ({self.peer_close}) after echoing "
                    f"{len(self.received)} of {size} bytes"
                )

    def echo(self, close_after: int | None) -> None:
        echoed = 0
        while True:
            # Data may already be here: it can arrive with the client's Finished.
            pending = bytes(self.received[echoed:])
            if pending:
                self.send(pending)
                self.flush()
                echoed += len(pending)
            if close_after is not None and echoed >= close_after:
                return
            if not self.pump():
                return

    def close(self, *, wait_peer_close: bool) -> None:
        """Send close_notify, then (optionally) wait for the peer's."""
        try:
            self._conn.close()
            self.flush()
            self.sent_close_notify = True
        except OSError as exc:  # the peer may already be gone after its own close_notify
            self.close_error = f"{type(exc).__name__}: {exc}"
        if wait_peer_close and self.peer_close is None:
            self.run("close", self._drain)

    def _drain(self) -> None:
        while self.pump():
            pass

    # --- I/O ---------------------------------------------------------------

    def flush(self) -> None:
        data = self._conn.data_to_send()
        if data:
            sock = self._sock
            sock.settimeout(self._remaining())
            sock.sendall(data)
            self._capture(self.wire_sent, data)

    def pump(self) -> bool:
        """Read once and feed the engine; False once the peer has closed."""
        if self.peer_close is not None:
            return False
        sock = self._sock
        sock.settimeout(self._remaining())
        try:
            chunk = sock.recv(_READ_SIZE)
        except ConnectionResetError:
            self.peer_close = "reset"
            return False
        self._capture(self.wire_received, chunk)
        for event in self._conn.receive_data(chunk):
            self._handle(event)
        self.flush()
        if not chunk and self.peer_close is None:
            self.peer_close = "eof"
        return self.peer_close is None

    def _handle(self, event: events.Event) -> None:
        self.events.append(type(event).__name__)
        if isinstance(event, events.ApplicationData):
            self.received += event.data
        elif isinstance(event, events.CloseNotify):
            self.peer_close = "close_notify"
        elif isinstance(event, events.KeyUpdated):
            self.key_updates += 1

    def _flush_alert(self) -> None:
        # After an engine error the alert is queued; deliver it best effort.
        if self.conn is None or self.sock is None:
            return
        try:
            data = self.conn.data_to_send()
            if data:
                self.sock.settimeout(0.5)
                self.sock.sendall(data)
                self._capture(self.wire_sent, data)
        except (OSError, TLSError):
            pass

    def _remaining(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the interop deadline passed")
        return remaining

    @staticmethod
    def _capture(buffer: bytearray, data: bytes) -> None:
        room = _CAPTURE_LIMIT - len(buffer)
        if room > 0:
            buffer += data[:room]

    @property
    def _conn(self) -> ClientConnection | ServerConnection:
        assert self.conn is not None  # set right after the socket connects
        return self.conn

    @property
    def _sock(self) -> socket.socket:
        assert self.sock is not None  # set before any step runs
        return self.sock


class _PeerGone(Exception):
    """The peer closed the connection before the conversation was over."""
