"""X25519MLKEM768 against a real hybrid post-quantum peer.

The system OpenSSL (3.0) and GnuTLS (3.7) here do not speak X25519MLKEM768.
pyOpenSSL runs on the OpenSSL 4.x inside the ``cryptography`` wheel, which
offers and accepts it by default and reports the negotiated group.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

import pytest
import trustme
from OpenSSL import SSL

from triotls.config import CertifiedKey, ClientConfig, ServerConfig, TrustStore
from triotls.engine import ClientConnection, ServerConnection, events
from triotls.engine.connection import Connection
from triotls.engine.enums import NamedGroup

pytestmark = pytest.mark.interop

_TIMEOUT = 10.0


def _pyopenssl_context(method_side: str, ca: trustme.CA) -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    if method_side == "server":
        leaf = ca.issue_cert("localhost")
        leaf.configure_cert(ctx)
    else:
        ca.configure_trust(ctx)
        ctx.set_verify(SSL.VERIFY_PEER)
    return ctx


def _run_in_thread(target: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def wrapper() -> None:
        try:
            target()
        except BaseException as exc:  # reported to the test thread
            errors.append(exc)

    thread = threading.Thread(target=wrapper, daemon=True)
    thread.start()
    return thread, errors


def _drive(conn: Connection, sock: socket.socket, send: bytes) -> bytes:
    """Run our engine over ``sock``: handshake, send, read the echo, close."""
    received = b""
    out = conn.data_to_send()
    if out:
        sock.sendall(out)
    while len(received) < len(send):
        data = sock.recv(65536)
        got = conn.receive_data(data)
        for event in got:
            if isinstance(event, events.HandshakeComplete):
                conn.send_application_data(send)
            elif isinstance(event, events.ApplicationData):
                received += event.data
        out = conn.data_to_send()
        if out:
            sock.sendall(out)
        if not data:
            break
    conn.close()
    sock.sendall(conn.data_to_send())
    return received


def test_client_negotiates_x25519mlkem768_with_openssl4_server() -> None:
    ca = trustme.CA()
    ctx = _pyopenssl_context("server", ca)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(_TIMEOUT)
    seen: dict[str, str | None] = {}

    def serve() -> None:
        raw, _ = listener.accept()
        # pyOpenSSL cannot use socket timeouts (it would raise WantReadError);
        # the test side closes its socket, which ends any blocked read.
        raw.setblocking(True)
        tls = SSL.Connection(ctx, raw)
        tls.set_accept_state()
        tls.do_handshake()
        seen["group"] = tls.get_group_name()
        tls.sendall(tls.recv(100))
        tls.shutdown()
        raw.close()

    thread, errors = _run_in_thread(serve)
    config = ClientConfig(trust=TrustStore.from_pem(ca.cert_pem.bytes()))
    conn = ClientConnection(config, server_hostname="localhost")
    conn.start_handshake()
    with socket.create_connection(listener.getsockname(), timeout=_TIMEOUT) as sock:
        echoed = _drive(conn, sock, b"post-quantum hello")
    thread.join(_TIMEOUT)
    listener.close()
    assert not errors, errors
    assert echoed == b"post-quantum hello"
    assert conn.negotiated is not None
    assert conn.negotiated.group == NamedGroup.X25519MLKEM768
    assert seen["group"] == "X25519MLKEM768"


def test_server_negotiates_x25519mlkem768_with_openssl4_client() -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost")
    chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    config = ServerConfig(
        certificates=(CertifiedKey.from_pem(chain, leaf.private_key_pem.bytes()),)
    )
    ctx = _pyopenssl_context("client", ca)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(_TIMEOUT)
    seen: dict[str, object] = {}

    def connect() -> None:
        raw = socket.create_connection(listener.getsockname(), timeout=_TIMEOUT)
        raw.setblocking(True)  # see serve() above
        tls = SSL.Connection(ctx, raw)
        tls.set_tlsext_host_name(b"localhost")
        tls.set_connect_state()
        tls.do_handshake()
        seen["group"] = tls.get_group_name()
        tls.sendall(b"hybrid key exchange")
        seen["echo"] = tls.recv(100)
        raw.close()

    thread, errors = _run_in_thread(connect)
    sock, _ = listener.accept()
    sock.settimeout(_TIMEOUT)
    conn = ServerConnection(config)
    with sock:
        received = b""
        while not received:
            data = sock.recv(65536)
            if not data:
                break
            for event in conn.receive_data(data):
                if isinstance(event, events.ApplicationData):
                    received += event.data
                    conn.send_application_data(event.data)
            sock.sendall(conn.data_to_send())
        thread.join(_TIMEOUT)
    listener.close()
    assert not errors, errors
    assert received == b"hybrid key exchange"
    assert seen == {"group": "X25519MLKEM768", "echo": b"hybrid key exchange"}
    assert conn.negotiated is not None
    assert conn.negotiated.group == NamedGroup.X25519MLKEM768
