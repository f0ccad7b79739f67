"""Key logging: our NSS key log lines match OpenSSL's for the same connection."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import trustme

from triotls.config import ClientConfig, KeyLogFile, TrustStore
from triotls.engine import ClientConnection, events


def _openssl_echo_server(ca: trustme.CA, keylog: Path) -> tuple[socket.socket, threading.Thread]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ca.issue_cert("localhost").configure_cert(ctx)
    ctx.keylog_filename = str(keylog)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve() -> None:
        conn, _ = listener.accept()
        with ctx.wrap_socket(conn, server_side=True) as tls:
            tls.settimeout(10)
            tls.sendall(tls.recv(100))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


def test_key_log_lines_match_openssl_for_the_same_connection(tmp_path: Path) -> None:
    ca = trustme.CA()
    ours, theirs = tmp_path / "ours.log", tmp_path / "openssl.log"
    listener, thread = _openssl_echo_server(ca, theirs)
    config = ClientConfig(trust=TrustStore.from_pem(ca.cert_pem.bytes()), key_log=KeyLogFile(ours))
    conn = ClientConnection(config, server_hostname="localhost")
    with socket.create_connection(listener.getsockname(), timeout=10) as sock:
        conn.start_handshake()
        sock.sendall(conn.data_to_send())
        echoed = b""
        while not echoed:
            got = conn.receive_data(sock.recv(65536))
            sock.sendall(conn.data_to_send())
            if any(isinstance(e, events.HandshakeComplete) for e in got):
                conn.send_application_data(b"ping")
                sock.sendall(conn.data_to_send())
            echoed += b"".join(e.data for e in got if isinstance(e, events.ApplicationData))
    thread.join(10)
    listener.close()
    assert echoed == b"ping"
    our_lines = set(ours.read_text().splitlines())
    their_lines = set(theirs.read_text().splitlines()) - {""}
    labels = {line.split()[0] for line in our_lines}
    assert labels == {
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
        "EXPORTER_SECRET",
    }
    assert our_lines <= their_lines, our_lines - their_lines
