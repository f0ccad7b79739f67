"""Post-handshake client authentication (RFC 8446 §4.6.2) against Python's ``ssl``.

Python's ``ssl`` (OpenSSL underneath) both ways: as a server calling
``verify_client_post_handshake()`` on our client, and as a client with
``post_handshake_auth = True`` answering our server's request. Each peer
runs in a thread over a socket pair; every socket operation has a timeout.
"""

from __future__ import annotations

import functools
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Final

import pytest
import trustme

from triotls.config import CertifiedKey, ClientConfig, ServerConfig, TrustStore
from triotls.engine import ClientConnection, Connection, ServerConnection, events

pytestmark = pytest.mark.interop

TIMEOUT: Final = 10.0


@functools.cache
def _server_ca() -> trustme.CA:
    return trustme.CA(organization_name="triotls pha server CA")


@functools.cache
def _client_ca() -> trustme.CA:
    return trustme.CA(organization_name="triotls pha client CA")


@functools.cache
def _server_leaf() -> trustme.LeafCert:
    return _server_ca().issue_cert("localhost")


@functools.cache
def _client_leaf() -> trustme.LeafCert:
    return _client_ca().issue_cert("client@example")  # allows clientAuth


def _certified(leaf: trustme.LeafCert) -> CertifiedKey:
    chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    return CertifiedKey.from_pem(chain, leaf.private_key_pem.bytes())


def _run_peer(
    target: Callable[[socket.socket], None], sock: socket.socket
) -> tuple[threading.Thread, list[BaseException]]:
    # functools.cache is not safe against two first calls at once: make
    # every CA and certificate here, before the peer thread needs them.
    _server_leaf()
    _client_leaf()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            target(sock)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
        finally:
            sock.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, failures


def _join(thread: threading.Thread, failures: list[BaseException]) -> None:
    thread.join(TIMEOUT)
    assert not thread.is_alive(), "the Python ssl peer did not finish in time"
    if failures:
        raise failures[0]


def _step(conn: Connection, sock: socket.socket) -> list[events.Event]:
    """Flush what ``conn`` queued, then read once and feed it."""
    if data := conn.data_to_send():
        sock.sendall(data)
    return conn.receive_data(sock.recv(2**16) or b"")


def _until(conn: Connection, sock: socket.socket, done: Callable[[], bool]) -> list[events.Event]:
    seen: list[events.Event] = []
    while not done():
        seen += _step(conn, sock)
    if data := conn.data_to_send():
        sock.sendall(data)
    return seen


def test_our_client_answers_python_ssl_server_request() -> None:
    ours, theirs = socket.socketpair()
    ours.settimeout(TIMEOUT)
    theirs.settimeout(TIMEOUT)
    seen_by_python: list[bytes | None] = []

    def python_server(sock: socket.socket) -> None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        _server_leaf().configure_cert(ctx)
        _client_ca().configure_trust(ctx)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.post_handshake_auth = True  # ask after the handshake, not in it
        with ctx.wrap_socket(sock, server_side=True) as tls:
            assert tls.getpeercert(binary_form=True) is None
            tls.verify_client_post_handshake()
            tls.sendall(b"request")  # the CertificateRequest goes out first
            assert tls.recv(64) == b"answered"
            seen_by_python.append(tls.getpeercert(binary_form=True))
            tls.sendall(b"bye")

    thread, failures = _run_peer(python_server, theirs)
    client = ClientConnection(
        ClientConfig(
            trust=TrustStore.from_pem(_server_ca().cert_pem.bytes()),
            certificate=_certified(_client_leaf()),
            post_handshake_auth=True,
            middlebox_compat=False,
        ),
        server_hostname="localhost",
    )
    client.start_handshake()
    seen = _until(client, ours, lambda: client.handshake_complete)
    while not any(isinstance(e, events.ApplicationData) for e in seen):
        seen += _step(client, ours)
    assert events.CertificateRequested(certificate_sent=True) in seen
    client.send_application_data(b"answered")
    got = b"".join(e.data for e in _until_data(client, ours))
    assert got == b"bye"
    ours.close()
    _join(thread, failures)
    assert seen_by_python == [_certified(_client_leaf()).chain_der[0]]


def _until_data(conn: Connection, sock: socket.socket) -> list[events.ApplicationData]:
    while True:
        data = [e for e in _step(conn, sock) if isinstance(e, events.ApplicationData)]
        if data:
            return data


def test_python_ssl_client_answers_our_server_request() -> None:
    ours, theirs = socket.socketpair()
    ours.settimeout(TIMEOUT)
    theirs.settimeout(TIMEOUT)

    def python_client(sock: socket.socket) -> None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        _server_ca().configure_trust(ctx)
        _client_leaf().configure_cert(ctx)
        ctx.post_handshake_auth = True
        with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
            assert tls.recv(64) == b"request sent"  # reading answers the request
            tls.sendall(b"after the answer")
            assert tls.recv(64) == b"bye"

    thread, failures = _run_peer(python_client, theirs)
    server = ServerConnection(
        ServerConfig(
            certificates=(_certified(_server_leaf()),),
            client_trust=TrustStore.from_pem(_client_ca().cert_pem.bytes()),
        )
    )
    _until(server, ours, lambda: server.handshake_complete)
    server.request_client_certificate()
    server.send_application_data(b"request sent")
    seen: list[events.Event] = []
    while not any(isinstance(e, events.ApplicationData) for e in seen):
        seen += _step(server, ours)
    received = [e for e in seen if isinstance(e, events.ClientCertificateReceived)]
    assert len(received) == 1
    assert received[0].verification is not None and received[0].verification.is_valid
    assert received[0].peer_certificates[0] == _certified(_client_leaf()).chain[0]
    server.send_application_data(b"bye")
    ours.sendall(server.data_to_send())
    _join(thread, failures)
    ours.close()
