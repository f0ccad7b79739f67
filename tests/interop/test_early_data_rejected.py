"""A server that cannot accept 0-RTT drops the client's early data and goes on.

RFC 8446 §4.2.10: the server skips the early data records it cannot decrypt
(up to a limit) and completes a full handshake; the client then resends.
The session ticket comes from a real ``openssl s_server`` with early data
enabled, and ``openssl s_client -early_data`` offers it to our server, which
cannot open that ticket (and has early data off, the default
``max_early_data_size=0``). Early data our server accepts, from its own
tickets, is tested in ``test_early_data_interop.py``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from tests.support.certs import PKIFiles, TestPKI
from triotls.config import CertifiedKey, ServerConfig
from triotls.engine import HandshakeKind, Negotiated, ServerConnection, events

from .driver import open_listener
from .peers import free_port, require_binary

pytestmark = pytest.mark.interop

_TIMEOUT = 10.0


def _openssl_session_with_early_data(openssl: str, files: PKIFiles, session: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [openssl, "s_server", "-accept", str(port), "-cert", str(files.chain), "-key",
         str(files.key), "-tls1_3", "-early_data", "-naccept", "1", "-quiet"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            probe = subprocess.run(
                ["ss", "-ltn", f"sport = :{port}"], capture_output=True, text=True, check=False
            ) if shutil.which("ss") else None  # fmt: skip
            if probe is None or f":{port}" in probe.stdout:
                break
            threading.Event().wait(0.05)
        subprocess.run(
            [openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
             "-CAfile", str(files.ca), "-sess_out", str(session), "-ign_eof"],
            input=b"Q\n", capture_output=True, timeout=_TIMEOUT, check=False,
        )  # fmt: skip
    finally:
        server.kill()
        server.wait(_TIMEOUT)


def _serve_until_close(
    listener: socket.socket, config: ServerConfig, out: dict[str, object]
) -> None:
    """Run our engine on one connection until the peer's close_notify."""
    listener.settimeout(_TIMEOUT)
    sock, _ = listener.accept()
    sock.settimeout(_TIMEOUT)
    conn = ServerConnection(config)
    received = b""
    with sock:
        while not conn.peer_closed:
            data = sock.recv(65536)
            for event in conn.receive_data(data):
                if isinstance(event, events.ApplicationData):
                    received += event.data
            sock.sendall(conn.data_to_send())
        conn.close()
        sock.sendall(conn.data_to_send())
    out["negotiated"] = conn.negotiated
    out["received"] = received


def test_server_drops_rejected_early_data_and_completes_a_full_handshake(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    openssl = require_binary("openssl")
    session = tmp_path / "session.pem"
    _openssl_session_with_early_data(openssl, pki_files, session)
    assert session.exists() and b"Max Early Data" in subprocess.run(
        [openssl, "sess_id", "-in", str(session), "-text", "-noout"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    early = tmp_path / "early.txt"
    early.write_bytes(b"early data the server cannot read\n")
    config = ServerConfig(certificates=(CertifiedKey.from_pem(pki.chain_pem, pki.key_pem),))
    result: dict[str, object] = {}
    with open_listener() as listener:
        port = listener.getsockname()[1]
        thread = threading.Thread(
            target=_serve_until_close, args=(listener, config, result), daemon=True
        )
        thread.start()
        client = subprocess.run(
            [openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
             "-CAfile", str(pki_files.ca), "-sess_in", str(session), "-early_data", str(early)],
            input=b"after the handshake\n", capture_output=True, timeout=_TIMEOUT, check=False,
        )  # fmt: skip
        thread.join(_TIMEOUT)
    output = client.stdout.decode(errors="replace")
    assert "Early data was rejected" in output, output
    negotiated = result.get("negotiated")
    assert isinstance(negotiated, Negotiated), "our server did not finish"
    assert negotiated.handshake_kind is HandshakeKind.FULL
    assert result["received"] == b"after the handshake\n"
