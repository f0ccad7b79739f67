"""Shared pieces of the client-certificate interop tests.

:func:`make_client_pki` writes a client CA and a client certificate with a
recognisable common name, so a test can find that certificate in a peer's
log. :class:`EngineSocket` steps one of our engine connections over a
blocking socket and keeps every event, which the post-handshake tests need
(``driver.py`` keeps only the event names): they act between the handshake
and the close, and check what ``CertificateRequested`` and
``ClientCertificateReceived`` carried. Every socket operation runs under one
deadline per connection, so a silent peer fails the test instead of
hanging it. :func:`received_certificate_subjects` reads which certificates
an openssl tool received from its ``-trace`` log.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Generic, Literal, TypeVar

import trustme

from tests.interop.driver import open_listener
from tests.interop.peers import CLIENT_HOST, GnuTLSClient, OpenSSLClient, PeerReport
from tests.support.certs import PKIFiles
from triotls.config import CertifiedKey, ClientConfig, ServerConfig, TrustStore
from triotls.engine import ClientConnection, ServerConnection, events
from triotls.errors import TLSError

__all__ = [
    "ClientPKI",
    "EngineSocket",
    "PeerClientKind",
    "make_client_pki",
    "open_engine_client",
    "open_engine_server",
    "received_certificate_subjects",
    "serve_peer_client",
]

PeerClientKind = Literal["openssl", "gnutls"]

_E = TypeVar("_E", bound=events.Event)
_C = TypeVar("_C", ClientConnection, ServerConnection)
_T = TypeVar("_T")
_READ_SIZE: Final = 65536


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientPKI:
    """A client CA and one client certificate it issued, on disk and loaded.

    Attributes:
        ca: the CA certificate (what a server trusts), PEM.
        chain: the client chain, leaf first, PEM.
        key: the leaf's private key, PEM.
        certified: ``chain`` and ``key`` for our ClientConfig.
        trust: ``ca`` for our ServerConfig.client_trust.
        common_name: the leaf's CN, unique per PKI.
    """

    ca: Path
    chain: Path
    key: Path
    certified: CertifiedKey
    trust: TrustStore
    common_name: str


def make_client_pki(directory: Path, label: str) -> ClientPKI:
    """Write a fresh client CA and leaf (EKU clientAuth) under ``directory``.

    Args:
        directory: where the PEM files go (file names start with ``label``).
        label: names the CA and goes into the leaf's common name.
    """
    ca = trustme.CA(organization_name=f"triotls interop {label} CA")
    common_name = f"triotls {label} client {secrets.token_hex(4)}"
    leaf = ca.issue_cert("client@example", common_name=common_name)
    chain_pem = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    key_pem = leaf.private_key_pem.bytes()
    paths = {name: directory / f"{label}-{name}.pem" for name in ("ca", "chain", "key")}
    paths["ca"].write_bytes(ca.cert_pem.bytes())
    paths["chain"].write_bytes(chain_pem)
    paths["key"].write_bytes(key_pem)
    return ClientPKI(
        ca=paths["ca"],
        chain=paths["chain"],
        key=paths["key"],
        certified=CertifiedKey.from_pem(chain_pem, key_pem),
        trust=TrustStore.from_pem(ca.cert_pem.bytes()),
        common_name=common_name,
    )


class EngineSocket(Generic[_C]):
    """One engine connection stepped over one blocking socket.

    Attributes:
        conn: the engine connection.
        events: every event the engine returned, in order.
        received: application data received so far.
        peer_closed: the peer sent close_notify, or the TCP connection ended.
    """

    def __init__(self, conn: _C, sock: socket.socket, deadline: float) -> None:
        self.conn: _C = conn
        self.events: list[events.Event] = []
        self.received = bytearray()
        self.peer_closed = False
        self._sock = sock
        self._deadline = deadline

    def flush(self) -> None:
        """Write what the engine queued."""
        data = self.conn.data_to_send()
        if data:
            self._sock.settimeout(self._remaining())
            self._sock.sendall(data)

    def pump(self) -> bool:
        """Read once, feed the engine, flush its answer; False once the peer closed.

        Raises:
            TLSError: the engine failed; its alert was sent (best effort).
        """
        if self.peer_closed:
            return False
        self._sock.settimeout(self._remaining())
        try:
            chunk = self._sock.recv(_READ_SIZE)
        except ConnectionResetError:
            chunk = b""
        try:
            new = self.conn.receive_data(chunk)
        except TLSError:
            self._send_alert()
            raise
        for event in new:
            self.events.append(event)
            if isinstance(event, events.ApplicationData):
                self.received += event.data
            elif isinstance(event, events.CloseNotify):
                self.peer_closed = True
        self.flush()
        if not chunk:
            self.peer_closed = True
        return not self.peer_closed

    def wait_for(self, done: Callable[[], bool], what: str) -> None:
        """Pump until ``done()``; raise AssertionError if the peer closes first."""
        self.flush()
        while not done():
            # What the peer sent before closing counts, even in the same read.
            if not self.pump() and not done():
                raise AssertionError(f"the peer closed before {what}; events: {self.events}")

    def handshake(self) -> None:
        """Start (client side) and complete the handshake."""
        if isinstance(self.conn, ClientConnection):
            self.conn.start_handshake()
        self.wait_for(lambda: self.conn.handshake_complete, "the handshake completed")

    def send(self, data: bytes) -> None:
        """Send application data."""
        self.conn.send_application_data(data)
        self.flush()

    def echo(self, *, until: int | None = None) -> None:
        """Echo what arrives until ``until`` bytes were echoed, or the peer closed."""
        echoed = 0
        while True:
            pending = bytes(self.received[echoed:])
            if pending:
                self.send(pending)
                echoed += len(pending)
            if until is not None and echoed >= until:
                return
            if not self.pump():
                return

    def close(self, *, wait_peer_close: bool = True) -> None:
        """Send close_notify; then (optionally) read until the peer's."""
        self.conn.close()
        try:
            self.flush()
        except OSError:
            return  # the peer left right after its own close_notify
        while wait_peer_close and self.pump():
            pass

    def first(self, kind: type[_E]) -> _E | None:
        """The first event of type ``kind`` seen so far, if any."""
        for event in self.events:
            if isinstance(event, kind):
                return event
        return None

    def _send_alert(self) -> None:
        with contextlib.suppress(OSError, TLSError):  # best effort: the peer may be gone
            self.flush()

    def _remaining(self) -> float:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"the interop deadline passed; events: {self.events}")
        return remaining


@contextmanager
def open_engine_client(
    port: int, config: ClientConfig, *, timeout: float, server_name: str = "localhost"
) -> Iterator[EngineSocket[ClientConnection]]:
    """Connect our client to ``127.0.0.1:port``; the handshake is left to the test."""
    deadline = time.monotonic() + timeout
    with socket.create_connection((CLIENT_HOST, port), timeout=timeout) as sock:
        yield EngineSocket(ClientConnection(config, server_hostname=server_name), sock, deadline)


@contextmanager
def open_engine_server(
    listener: socket.socket, config: ServerConfig, *, timeout: float
) -> Iterator[EngineSocket[ServerConnection]]:
    """Accept one connection on ``listener`` for our server."""
    deadline = time.monotonic() + timeout
    listener.settimeout(timeout)
    sock, _address = listener.accept()
    with sock:
        yield EngineSocket(ServerConnection(config), sock, deadline)


def serve_peer_client(  # the conversation's parts, then its knobs
    kind: PeerClientKind,
    config: ServerConfig,
    pki_files: PKIFiles,
    workdir: Path,
    converse: Callable[[EngineSocket[ServerConnection]], _T],
    *,
    data: bytes,
    certificate: ClientPKI | None = None,
    extra: Sequence[str] = (),
    timeout: float,
) -> tuple[_T, PeerReport]:
    """Let ``converse`` run our server on one ``openssl s_client``/``gnutls-cli`` connection.

    Args:
        kind: which peer client connects.
        config: our server configuration.
        pki_files: ``pki_files.ca`` is what the client trusts.
        workdir: where the client's logs go.
        converse: runs our end of the connection; its result is returned.
        data: what the client sends once connected.
        certificate: the certificate the client presents, if any.
        extra: more arguments for the client's command line.
        timeout: bound for the connection and for the client.

    Returns:
        What ``converse`` returned, and the client's report.
    """
    args = [*_certificate_args(kind, certificate), *extra]
    with open_listener(CLIENT_HOST) as listener:
        port = listener.getsockname()[1]
        client: OpenSSLClient | GnuTLSClient
        if kind == "openssl":
            client = OpenSSLClient(
                pki_files.ca, port, workdir=workdir, data=data, extra_args=args, timeout=timeout
            )
        else:
            client = GnuTLSClient(
                pki_files.ca, port, workdir=workdir, data=data, extra_args=args, timeout=timeout
            )
        with client:
            with open_engine_server(listener, config, timeout=timeout) as server:
                outcome = converse(server)
            # After our socket closed: s_client lingers for the TCP FIN.
            report = client.finish()
    return outcome, report


def _certificate_args(kind: PeerClientKind, certificate: ClientPKI | None) -> list[str]:
    if certificate is None:
        return []
    if kind == "openssl":
        return ["-cert", str(certificate.chain), "-key", str(certificate.key)]
    return ["--x509certfile", str(certificate.chain), "--x509keyfile", str(certificate.key)]


def received_certificate_subjects(trace: str) -> list[str]:
    """Subjects of the certificates an openssl tool received, from its ``-trace`` log."""
    subjects: list[str] = []
    received = False
    for line in trace.splitlines():
        if line.startswith(("Sent", "Received")):
            received = line.startswith("Received")
        elif received and (match := re.match(r"^\s+Subject: (.*)$", line)):
            subjects.append(match.group(1))
    return subjects
