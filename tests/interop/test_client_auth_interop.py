"""Client certificates (mTLS) against real peers, both directions.

Our server, requiring a client certificate: ``openssl s_client -cert -key``
and ``gnutls-cli --x509certfile --x509keyfile`` authenticate; without a
certificate each is refused with certificate_required (RFC 8446 §4.4.2.4).

Our client, presenting a certificate: ``openssl s_server -Verify 1 -CAfile``
and ``gnutls-serv --require-client-cert --verify-client-cert --x509cafile``
verify and accept it; without
one, s_server refuses it.

The client certificates come from their own CA (trustme, EKU clientAuth),
distinct from the server's. Every subprocess runs under a timeout and is
killed in ``finally``; every socket operation has a deadline.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pytest
import trustme

from tests.support.certs import PKIFiles, TestPKI
from triotls.config import CertifiedKey, ClientConfig, ServerConfig, TrustStore
from triotls.engine import ClientConnection, Negotiated, ServerConnection, events
from triotls.engine.enums import AlertDescription
from triotls.errors import AlertReceived, TLSError

from .driver import open_listener
from .peers import CLIENT_HOST, GnuTLSServer, OpenSSLServer, require_binary

pytestmark = pytest.mark.interop

TIMEOUT: Final = 10.0
# gnutls-serv --echo answers whole lines only.
MESSAGE: Final = b"mutual TLS\n"


@dataclass(frozen=True, slots=True, kw_only=True)
class _ClientPKI:
    """A client CA and one client certificate it issued, on disk."""

    ca: Path
    chain: Path
    key: Path
    certified: CertifiedKey
    trust: TrustStore


@pytest.fixture(scope="module")
def client_pki(tmp_path_factory: pytest.TempPathFactory) -> _ClientPKI:
    ca = trustme.CA(organization_name="triotls interop client CA")
    leaf = ca.issue_cert("client@example")
    directory = tmp_path_factory.mktemp("client-pki")
    paths = {name: directory / f"{name}.pem" for name in ("ca", "chain", "key")}
    chain_pem = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    paths["ca"].write_bytes(ca.cert_pem.bytes())
    paths["chain"].write_bytes(chain_pem)
    paths["key"].write_bytes(leaf.private_key_pem.bytes())
    return _ClientPKI(
        ca=paths["ca"],
        chain=paths["chain"],
        key=paths["key"],
        certified=CertifiedKey.from_pem(chain_pem, leaf.private_key_pem.bytes()),
        trust=TrustStore.from_pem(ca.cert_pem.bytes()),
    )


# --------------------------------------------------------------------------- #
# Our server, requiring a client certificate.


@dataclass(kw_only=True)
class _Served:
    negotiated: Negotiated | None = None
    received: bytes = b""
    errors: list[TLSError | OSError] = field(default_factory=list)


def _serve_one(listener: socket.socket, config: ServerConfig, served: _Served) -> None:
    """Echo MESSAGE on one connection, then close; send our alert if we fail."""
    deadline = time.monotonic() + TIMEOUT
    listener.settimeout(TIMEOUT)
    try:
        sock, _ = listener.accept()
    except OSError as exc:
        served.errors.append(exc)
        return
    conn = ServerConnection(config)
    received = bytearray()
    with sock:
        try:
            while not conn.peer_closed:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                data = sock.recv(65536)
                if not data:
                    break
                for event in conn.receive_data(data):
                    if isinstance(event, events.ApplicationData):
                        received += event.data
                        conn.send_application_data(event.data)
                sock.sendall(conn.data_to_send())
                if len(received) >= len(MESSAGE):
                    break  # echoed: close, which s_client -ign_eof waits for
            conn.close()
            sock.sendall(conn.data_to_send())
        except TLSError as exc:
            served.errors.append(exc)
            # The engine queued the fatal alert: let the peer read it.
            sock.sendall(conn.data_to_send())
        except OSError as exc:
            served.errors.append(exc)
    served.negotiated = conn.negotiated
    served.received = bytes(received)


def _our_server(
    config: ServerConfig, argv: Sequence[str | int]
) -> tuple[_Served, subprocess.CompletedProcess[bytes]]:
    """Serve one connection while the tool in ``argv`` ({port} filled in) talks to it."""
    served = _Served()
    with open_listener(CLIENT_HOST) as listener:
        port = listener.getsockname()[1]
        thread = threading.Thread(target=_serve_one, args=(listener, config, served), daemon=True)
        thread.start()
        command = [str(arg).format(port=port) for arg in argv]
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            stdout, stderr = process.communicate(MESSAGE, timeout=TIMEOUT)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(TIMEOUT)
            thread.join(TIMEOUT)
        assert not thread.is_alive(), "our server did not finish"
    return served, subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _server_config(pki: TestPKI, client_pki: _ClientPKI) -> ServerConfig:
    return ServerConfig(
        certificates=(CertifiedKey.from_pem(pki.chain_pem, pki.key_pem),),
        client_auth="required",
        client_trust=client_pki.trust,
    )


def _s_client(files: PKIFiles, *extra: str | Path) -> list[str | int]:
    # -ign_eof: wait for our close_notify (sent after the echo).
    return [
        require_binary("openssl"), "s_client", "-connect", f"{CLIENT_HOST}:{{port}}",
        "-servername", "localhost", "-verify_hostname", "localhost",
        "-CAfile", str(files.ca), "-verify_return_error", "-tls1_3",
        "-ign_eof", "-nocommands", *map(str, extra),
    ]  # fmt: skip


def _gnutls_cli(files: PKIFiles, *extra: str | Path) -> list[str | int]:
    return [
        require_binary("gnutls-cli"), "--port", "{port}", "--sni-hostname", "localhost",
        "--verify-hostname", "localhost", "--x509cafile", str(files.ca),
        *map(str, extra), CLIENT_HOST,
    ]  # fmt: skip


def _output(result: subprocess.CompletedProcess[bytes]) -> str:
    return result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace")


def test_our_server_authenticates_an_openssl_s_client_certificate(
    pki: TestPKI, pki_files: PKIFiles, client_pki: _ClientPKI
) -> None:
    command = _s_client(pki_files, "-cert", client_pki.chain, "-key", client_pki.key)
    served, result = _our_server(_server_config(pki, client_pki), command)
    assert served.errors == [], _output(result)
    assert result.returncode == 0, _output(result)
    assert served.received == MESSAGE
    assert served.negotiated is not None
    assert served.negotiated.peer_certificates[0] == client_pki.certified.chain[0]
    assert served.negotiated.verification is not None
    assert served.negotiated.verification.is_valid


def test_our_server_refuses_an_openssl_s_client_without_a_certificate(
    pki: TestPKI, pki_files: PKIFiles, client_pki: _ClientPKI
) -> None:
    served, result = _our_server(_server_config(pki, client_pki), _s_client(pki_files))
    assert [type(e).__name__ for e in served.errors] == ["CertificateRequired"]
    assert served.negotiated is None
    assert "certificate required" in _output(result), _output(result)


def test_our_server_authenticates_a_gnutls_cli_certificate(
    pki: TestPKI, pki_files: PKIFiles, client_pki: _ClientPKI
) -> None:
    command = _gnutls_cli(
        pki_files, "--x509certfile", client_pki.chain, "--x509keyfile", client_pki.key
    )
    served, result = _our_server(_server_config(pki, client_pki), command)
    assert served.errors == [], _output(result)
    assert result.returncode == 0, _output(result)
    assert served.received == MESSAGE
    assert served.negotiated is not None
    assert served.negotiated.peer_certificates[0] == client_pki.certified.chain[0]


def test_our_server_refuses_a_gnutls_cli_without_a_certificate(
    pki: TestPKI, pki_files: PKIFiles, client_pki: _ClientPKI
) -> None:
    served, result = _our_server(_server_config(pki, client_pki), _gnutls_cli(pki_files))
    assert [type(e).__name__ for e in served.errors] == ["CertificateRequired"]
    assert result.returncode != 0
    assert "116" in _output(result) or "required" in _output(result).lower(), _output(result)


# --------------------------------------------------------------------------- #
# Our client, presenting a certificate.


def _our_client(port: int, config: ClientConfig) -> tuple[Negotiated, bytes]:
    """Handshake, send MESSAGE, read its echo, exchange close_notify."""
    deadline = time.monotonic() + TIMEOUT
    received = bytearray()
    conn = ClientConnection(config, server_hostname="localhost")
    with socket.create_connection((CLIENT_HOST, port), timeout=TIMEOUT) as sock:

        def step() -> bool:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            for event in conn.receive_data(chunk):
                if isinstance(event, events.ApplicationData):
                    received.extend(event.data)
            sock.sendall(conn.data_to_send())
            return bool(chunk)

        conn.start_handshake()
        sock.sendall(conn.data_to_send())
        while not conn.handshake_complete:
            assert step(), "the server closed the connection during the handshake"
        conn.send_application_data(MESSAGE)
        sock.sendall(conn.data_to_send())
        while len(received) < len(MESSAGE):
            assert step(), f"the server closed after echoing {bytes(received)!r}"
        conn.close()
        sock.sendall(conn.data_to_send())
        while not conn.peer_closed and step():
            pass
    assert conn.negotiated is not None  # the handshake completed above
    return conn.negotiated, bytes(received)


def _client_config(pki: TestPKI, client_pki: _ClientPKI | None) -> ClientConfig:
    return ClientConfig(
        trust=TrustStore.from_pem(pki.ca_pem),
        certificate=client_pki.certified if client_pki is not None else None,
    )


def test_our_client_presents_a_certificate_to_openssl_s_server(
    pki: TestPKI, pki_files: PKIFiles, client_pki: _ClientPKI, tmp_path: Path
) -> None:
    extra = ["-Verify", "1", "-CAfile", str(client_pki.ca), "-verify_return_error"]
    with OpenSSLServer(pki_files, workdir=tmp_path, extra_args=extra) as server:
        _, received = _our_client(server.port, _client_config(pki, client_pki))
        report = server.finish()
    assert received == MESSAGE
    assert report.received == MESSAGE
    assert report.returncode == 0, report.log


def test_openssl_s_server_refuses_our_client_without_a_certificate(
    pki: TestPKI, pki_files: PKIFiles, client_pki: _ClientPKI, tmp_path: Path
) -> None:
    extra = ["-Verify", "1", "-CAfile", str(client_pki.ca), "-verify_return_error"]
    with OpenSSLServer(pki_files, workdir=tmp_path, extra_args=extra) as server:
        with pytest.raises(AlertReceived) as info:
            _our_client(server.port, _client_config(pki, None))
        server.finish()
    assert info.value.description == AlertDescription.CERTIFICATE_REQUIRED


def test_our_client_presents_a_certificate_to_gnutls_serv(
    pki: TestPKI, pki_files: PKIFiles, client_pki: _ClientPKI, tmp_path: Path
) -> None:
    # --verify-client-cert: without it gnutls-serv takes any chain unverified
    # ("Peer's certificate was NOT verified"), which would prove nothing here.
    extra = ["--require-client-cert", "--verify-client-cert", "--x509cafile", str(client_pki.ca)]
    with GnuTLSServer(
        pki_files, workdir=tmp_path, request_client_cert=True, extra_args=extra
    ) as server:
        _, received = _our_client(server.port, _client_config(pki, client_pki))
        server.finish()
    assert received == MESSAGE
