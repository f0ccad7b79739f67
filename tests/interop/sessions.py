"""Multi-connection conversations for the resumption, psk_ke and 0-RTT interop tests.

Resumption needs two (or more) connections in a row, so these helpers run
whole connections rather than one (``driver.py`` runs one):

* :func:`serve_connections` runs our engine's server in a thread, one
  connection per configuration it is given (so a later connection can hold
  other ticket keys than the first: a refusal), while a client callable
  talks to the port. It records, per connection, what was negotiated, the
  early data and application data received, and the bytes our server sent.
* :func:`run_tool` runs a peer tool (``openssl s_client``, ``gnutls-cli``)
  to completion under a timeout, killing it whatever happens;
  :func:`s_client_argv` and :func:`gnutls_cli_argv` hold their common flags,
  and :class:`SClientSessions`/:class:`GnuTLSCliResume` are the clients that
  store a ticket and come back with it.
* :func:`run_session_client` runs our engine's client over a socket for one
  connection, offering a session (and early data), and keeps the tickets it
  got and the bytes the server sent.

Every subprocess runs under a timeout and is killed in ``finally``; every
socket operation has a deadline.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from tests.interop.driver import open_listener
from tests.interop.peers import CLIENT_HOST, gnutls_priority, require_binary
from tests.support.certs import PKIFiles
from triotls.config import ClientConfig, ServerConfig
from triotls.engine import ClientConnection, HandshakeKind, Negotiated, ServerConnection, events
from triotls.engine.enums import PskKeyExchangeMode
from triotls.engine.state import EarlyDataStatus
from triotls.engine.tickets import ClientSession
from triotls.errors import TLSError

__all__ = [
    "TIMEOUT",
    "ClientSaw",
    "GnuTLSCliResume",
    "SClientSessions",
    "Served",
    "gnutls_cli_argv",
    "output_text",
    "run_session_client",
    "run_tool",
    "s_client_argv",
    "serve_connections",
]

TIMEOUT: Final = 10.0
"""Seconds one connection (or one peer tool run) may take."""

_READ_SIZE: Final = 65536


# --------------------------------------------------------------------------- #
# Our server: one engine connection per configuration, in a thread.


@dataclass(kw_only=True)
class Served:
    """What our server saw, one entry per connection.

    Attributes:
        negotiated: ``conn.negotiated`` (None: no handshake completed).
        early: early data received.
        received: application data received (and echoed).
        sent: the bytes our server wrote before its close_notify.
        errors: what went wrong (an OSError from an accept that timed out
            ends the serving); after a TLSError our alert was sent.
    """

    negotiated: list[Negotiated | None] = field(default_factory=list)
    early: list[bytes] = field(default_factory=list)
    received: list[bytes] = field(default_factory=list)
    sent: list[bytes] = field(default_factory=list)
    errors: list[TLSError | OSError] = field(default_factory=list)

    def kinds(self) -> list[HandshakeKind | None]:
        """The handshake kind of each connection."""
        return [n.handshake_kind if n is not None else None for n in self.negotiated]

    def early_statuses(self) -> list[EarlyDataStatus | None]:
        """What became of each connection's early data."""
        return [n.early_data if n is not None else None for n in self.negotiated]

    def modes(self) -> list[PskKeyExchangeMode | None]:
        """The psk_key_exchange_mode of each connection (None: not resumed)."""
        return [n.psk_key_exchange_mode if n is not None else None for n in self.negotiated]


def serve_connections(
    configs: Sequence[ServerConfig],
    client: Callable[[int], None],
    *,
    close_after: int | None = None,
) -> Served:
    """Serve ``len(configs)`` connections in order while ``client(port)`` talks to us.

    Each connection echoes application data until the peer closes (or, with
    ``close_after``, until that many bytes were echoed), then sends
    close_notify.

    Args:
        configs: our server's configuration for each connection, in order.
        client: talks to ``127.0.0.1:port``; it runs in the calling thread.
        close_after: close first once this many bytes were echoed.

    Returns:
        What our server saw.

    Raises:
        AssertionError: our server did not finish within TIMEOUT of the client.
    """
    served = Served()

    def serve_all(listener: socket.socket) -> None:
        for config in configs:
            try:
                _serve_connection(listener, config, close_after, served)
            except OSError as exc:  # accept timed out: the client never came
                served.errors.append(exc)
                return

    with open_listener(CLIENT_HOST) as listener:
        thread = threading.Thread(target=serve_all, args=(listener,), daemon=True)
        thread.start()
        try:
            client(listener.getsockname()[1])
        finally:
            thread.join(TIMEOUT)
        assert not thread.is_alive(), "our server did not finish"
    return served


def _serve_connection(
    listener: socket.socket, config: ServerConfig, close_after: int | None, served: Served
) -> None:
    """Echo on one connection until the peer closes (or ``close_after`` bytes came)."""
    deadline = time.monotonic() + TIMEOUT
    listener.settimeout(TIMEOUT)
    sock, _ = listener.accept()
    conn = ServerConnection(config)
    early = bytearray()
    received = bytearray()
    sent = bytearray()
    with sock:
        try:
            while not conn.peer_closed:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                data = sock.recv(_READ_SIZE)
                if not data:
                    break  # EOF without close_notify: nothing more to echo
                for event in conn.receive_data(data):
                    if isinstance(event, events.EarlyDataReceived):
                        early += event.data
                    elif isinstance(event, events.ApplicationData):
                        received += event.data
                        conn.send_application_data(event.data)
                out = conn.data_to_send()
                sent += out
                sock.sendall(out)
                if close_after is not None and len(received) >= close_after:
                    break  # echoed: close, which s_client -ign_eof waits for
            conn.close()
            sock.sendall(conn.data_to_send())
        except TLSError as exc:
            served.errors.append(exc)
            # The engine queued the fatal alert: let the peer read it.
            with contextlib.suppress(OSError):
                sock.sendall(conn.data_to_send())
        except OSError as exc:
            served.errors.append(exc)
    served.negotiated.append(conn.negotiated)
    served.early.append(bytes(early))
    served.received.append(bytes(received))
    served.sent.append(bytes(sent))


# --------------------------------------------------------------------------- #
# Peer clients that store a ticket and come back with it.


def run_tool(argv: Sequence[str], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    """Run a peer tool to completion under TIMEOUT; kill it whatever happens."""
    process = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        stdout, stderr = process.communicate(stdin, timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(TIMEOUT)
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def output_text(result: subprocess.CompletedProcess[bytes]) -> str:
    """A finished tool's stdout, then its stderr, as text."""
    return result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace")


def s_client_argv(files: PKIFiles, port: int, *extra: str) -> list[str]:
    """``openssl s_client`` verifying "localhost" against ``files.ca``, TLS 1.3 only."""
    # -ign_eof: wait for our close_notify (sent after the echo) rather than
    # leave at the end of stdin, which may come before the echo.
    return [
        require_binary("openssl"), "s_client", "-connect", f"{CLIENT_HOST}:{port}",
        "-servername", "localhost", "-verify_hostname", "localhost",
        "-CAfile", str(files.ca), "-verify_return_error", "-tls1_3",
        "-ign_eof", "-nocommands", *extra,
    ]  # fmt: skip


def gnutls_cli_argv(files: PKIFiles, port: int, *extra: str) -> list[str]:
    """``gnutls-cli`` verifying "localhost" against ``files.ca``, connecting to 127.0.0.1."""
    return [
        require_binary("gnutls-cli"), CLIENT_HOST, "--port", str(port),
        "--sni-hostname", "localhost", "--verify-hostname", "localhost",
        "--x509cafile", str(files.ca), *extra,
    ]  # fmt: skip


class SClientSessions:
    """``openssl s_client``: ``-sess_out`` once, then ``-sess_in`` for each reconnect.

    Args:
        files: ``files.ca`` verifies the server.
        session: where s_client stores the session (ticket).
        message: what s_client sends on each connection (stdin).
        extra: flags for every run.
        resume_extra: flags for the runs with ``-sess_in`` only.
        reconnects: how many times s_client comes back with the session.

    Attributes:
        outputs: stdout and stderr of each run, in order.
    """

    def __init__(
        self,
        files: PKIFiles,
        session: Path,
        *,
        message: bytes,
        extra: Sequence[str] = (),
        resume_extra: Sequence[str] = (),
        reconnects: int = 1,
    ) -> None:
        self._files = files
        self._message = message
        runs = [["-sess_out", str(session)]]
        runs += [["-sess_in", str(session), *resume_extra]] * reconnects
        self._runs = [[*extra, *flags] for flags in runs]
        self.outputs: list[str] = []

    def __call__(self, port: int) -> None:
        """Connect once per run; every run must exit with status 0."""
        for flags in self._runs:
            result = run_tool(s_client_argv(self._files, port, *flags), self._message)
            self.outputs.append(output_text(result))
            assert result.returncode == 0, self.outputs[-1]


class GnuTLSCliResume:
    """``gnutls-cli --resume``: connects, disconnects, reconnects with the ticket.

    gnutls-cli sends ``message`` (its stdin) on the resumed connection only.

    Attributes:
        output: stdout and stderr of the run.
    """

    def __init__(
        self,
        files: PKIFiles,
        *,
        message: bytes,
        priority: str | None = None,
        extra: Sequence[str] = (),
    ) -> None:
        self._files = files
        self._message = message
        self._priority = priority or gnutls_priority()
        self._extra = list(extra)
        self.output = ""

    def __call__(self, port: int) -> None:
        """Run gnutls-cli to completion; it must exit with status 0."""
        argv = gnutls_cli_argv(
            self._files, port, "--priority", self._priority, "--resume", *self._extra
        )
        result = run_tool(argv, self._message)
        self.output = output_text(result)
        assert result.returncode == 0, self.output


# --------------------------------------------------------------------------- #
# Our client: the engine over a socket, offering the session it got.


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientSaw:
    """What our client saw on one connection.

    Attributes:
        negotiated: what the handshake settled.
        early_data_offered: the early data went out with the ClientHello.
        sessions: the sessions of the tickets the server sent.
        received: application data received.
        server_wire: every byte the server sent.
    """

    negotiated: Negotiated
    early_data_offered: bool
    sessions: list[ClientSession]
    received: bytes
    server_wire: bytes


def run_session_client(
    port: int,
    config: ClientConfig,
    *,
    message: bytes,
    session: ClientSession | None = None,
    early_data: bytes = b"",
    echo: bytes | None = None,
    server_name: str = "localhost",
) -> ClientSaw:
    """Handshake (offering ``session`` and ``early_data``), send, read the echo, close.

    Args:
        port: the server's port on 127.0.0.1.
        config: our client configuration.
        message: application data sent after the handshake.
        session: the session to offer (None: a full handshake).
        early_data: 0-RTT data to offer with the session.
        echo: what must come back before we close (default: ``message``).
        server_name: SNI and the name to verify.

    Raises:
        AssertionError: the server closed before the handshake or the echo
            was complete.
        TLSError: our engine failed (an alert from the server, say).
    """
    expected = message if echo is None else echo
    deadline = time.monotonic() + TIMEOUT
    sessions: list[ClientSession] = []
    received = bytearray()
    server_wire = bytearray()
    conn = ClientConnection(config, server_hostname=server_name, session=session)
    with socket.create_connection((CLIENT_HOST, port), timeout=TIMEOUT) as sock:

        def step() -> bool:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(_READ_SIZE)
            server_wire.extend(chunk)
            for event in conn.receive_data(chunk):
                if isinstance(event, events.NewSessionTicketReceived) and event.session:
                    sessions.append(event.session)
                elif isinstance(event, events.ApplicationData):
                    received.extend(event.data)
            sock.sendall(conn.data_to_send())
            return bool(chunk)

        conn.start_handshake(early_data=early_data)
        sock.sendall(conn.data_to_send())
        while not conn.handshake_complete:
            assert step(), "the server closed the connection during the handshake"
        conn.send_application_data(message)
        sock.sendall(conn.data_to_send())
        while len(received) < len(expected):
            assert step(), f"the server closed after sending {bytes(received)!r}"
        conn.close()
        sock.sendall(conn.data_to_send())
        while not conn.peer_closed and step():
            pass
    assert conn.negotiated is not None  # the handshake completed above
    return ClientSaw(
        negotiated=conn.negotiated,
        early_data_offered=conn.early_data_offered,
        sessions=sessions,
        received=bytes(received),
        server_wire=bytes(server_wire),
    )
