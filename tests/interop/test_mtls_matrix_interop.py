"""Client certificates in the handshake (mTLS): the rest of the openssl/GnuTLS matrix.

``test_client_auth_interop.py`` has the first cases: our server with
``client_auth="required"`` against ``openssl s_client``/``gnutls-cli`` with
and without a certificate, and our client presenting one to
``openssl s_server -Verify 1`` and ``gnutls-serv --require-client-cert``
(or none to s_server). This module adds:

* our server with ``client_auth="optional"``, with and without a client
  certificate, and with either mode refusing a chain from a CA it does not
  trust with unknown_ca, as the peer sees it (RFC 8446 §4.4.2.4 lets a
  server abort on an unacceptable chain; §6.2 defines the alert);
* our client against ``openssl s_server -verify 1`` (optional) with and
  without a certificate, checking in s_server's trace and verify log that
  our certificate arrived and verified; against ``gnutls-serv
  --verify-client-cert``, which verifies the chain (``--require-client-cert``
  alone does not: it logs "Peer's certificate was NOT verified"), checking
  its summary; against gnutls-serv's default optional request without a
  certificate; and the alerts both servers send when our client sends no
  certificate where one is required (gnutls-serv) or one from a CA they do
  not trust.

The client certificates carry a common name unique to the run, so a test
can find them in a peer's log. Every peer runs under a timeout and is
stopped by its PID (``peers.py``); every socket operation has a deadline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

from tests.interop.client_auth_support import (
    ClientPKI,
    EngineSocket,
    PeerClientKind,
    open_engine_client,
    received_certificate_subjects,
    serve_peer_client,
)
from tests.interop.peers import (
    GnuTLSServer,
    OpenSSLServer,
    PeerReport,
)
from tests.support.certs import PKIFiles, TestPKI
from triotls.config import CertifiedKey, ClientAuth, ClientConfig, ServerConfig, TrustStore
from triotls.engine import ClientConnection, ServerConnection
from triotls.engine.enums import AlertDescription
from triotls.errors import AlertReceived, CertificateVerificationError, TLSError

pytestmark = pytest.mark.interop

TIMEOUT: Final = 5.0
# A line: gnutls-serv --echo answers whole lines only.
MESSAGE: Final = b"mutual TLS matrix\n"
FATAL: Final = 2


# --------------------------------------------------------------------------- #
# Our server asks for a certificate in the handshake.


@dataclass(frozen=True, slots=True, kw_only=True)
class _Served:
    server: EngineSocket[ServerConnection]
    error: TLSError | None
    report: PeerReport


def _server_config(pki: TestPKI, client_pki: ClientPKI, client_auth: ClientAuth) -> ServerConfig:
    return ServerConfig(
        certificates=(CertifiedKey.from_pem(pki.chain_pem, pki.key_pem),),
        client_auth=client_auth,
        client_trust=client_pki.trust,
    )


def _serve_peer_client(
    peer: PeerClientKind,
    config: ServerConfig,
    pki_files: PKIFiles,
    workdir: Path,
    certificate: ClientPKI | None,
) -> _Served:
    """Our server echoes MESSAGE for one s_client/gnutls-cli connection."""

    def converse(
        server: EngineSocket[ServerConnection],
    ) -> tuple[EngineSocket[ServerConnection], TLSError | None]:
        try:
            server.handshake()
            # s_client waits for our close_notify; gnutls-cli sends its
            # own first and leaves without answering if ours comes first.
            server.echo(until=len(MESSAGE) if peer == "openssl" else None)
            server.close()
        except TLSError as exc:
            return server, exc
        return server, None

    (server, error), report = serve_peer_client(
        peer,
        config,
        pki_files,
        workdir,
        converse,
        data=MESSAGE,
        certificate=certificate,
        timeout=TIMEOUT,
    )
    return _Served(server=server, error=error, report=report)


@pytest.mark.parametrize("peer", ["openssl", "gnutls"])
def test_optional_client_auth_verifies_a_peer_client_certificate(
    peer: PeerClientKind, pki: TestPKI, pki_files: PKIFiles, client_pki: ClientPKI, tmp_path: Path
) -> None:
    config = _server_config(pki, client_pki, "optional")
    served = _serve_peer_client(peer, config, pki_files, tmp_path, client_pki)
    assert served.error is None, served.report.log
    assert served.report.received == MESSAGE, served.report.log
    assert served.report.returncode == 0, served.report.log
    negotiated = served.server.conn.negotiated
    assert negotiated is not None
    assert negotiated.peer_certificates[0] == client_pki.certified.chain[0]
    assert negotiated.verification is not None
    assert negotiated.verification.is_valid


@pytest.mark.parametrize("peer", ["openssl", "gnutls"])
def test_optional_client_auth_admits_a_peer_client_without_a_certificate(
    peer: PeerClientKind, pki: TestPKI, pki_files: PKIFiles, client_pki: ClientPKI, tmp_path: Path
) -> None:
    config = _server_config(pki, client_pki, "optional")
    served = _serve_peer_client(peer, config, pki_files, tmp_path, None)
    assert served.error is None, served.report.log
    assert served.report.received == MESSAGE, served.report.log
    assert served.report.returncode == 0, served.report.log
    negotiated = served.server.conn.negotiated
    assert negotiated is not None
    assert negotiated.peer_certificates == ()
    assert negotiated.verification is None


@pytest.mark.parametrize("client_auth", ["required", "optional"])
@pytest.mark.parametrize("peer", ["openssl", "gnutls"])
def test_our_server_refuses_an_untrusted_peer_client_certificate_with_unknown_ca(  # noqa: PLR0917  # fixtures
    peer: PeerClientKind,
    client_auth: ClientAuth,
    pki: TestPKI,
    pki_files: PKIFiles,
    client_pki: ClientPKI,
    rogue_pki: ClientPKI,
    tmp_path: Path,
) -> None:
    config = _server_config(pki, client_pki, client_auth)
    served = _serve_peer_client(peer, config, pki_files, tmp_path, rogue_pki)
    assert isinstance(served.error, CertificateVerificationError), served.report.log
    assert served.error.sent_alert == AlertDescription.UNKNOWN_CA
    assert served.server.conn.negotiated is None
    assert served.report.received == b"", served.report.log
    assert served.report.alerts_received[:1] == ((FATAL, AlertDescription.UNKNOWN_CA),), (
        served.report.log
    )


# --------------------------------------------------------------------------- #
# The peer server asks our client for a certificate in the handshake.


def _client_config(pki: TestPKI, certificate: ClientPKI | None) -> ClientConfig:
    return ClientConfig(
        trust=TrustStore.from_pem(pki.ca_pem),
        certificate=certificate.certified if certificate is not None else None,
    )


def _talk(client: EngineSocket[ClientConnection]) -> None:
    """Handshake, send MESSAGE, read its echo, exchange close_notify."""
    client.handshake()
    client.send(MESSAGE)
    client.wait_for(lambda: bytes(client.received) == MESSAGE, "the echo came back")
    client.close()


def _talk_expecting_alert(client: EngineSocket[ClientConnection]) -> AlertReceived:
    """Handshake (complete on our side), then read the server's refusal."""
    client.handshake()
    with pytest.raises(AlertReceived) as failure:
        client.wait_for(lambda: False, "the server's alert arrived")
    return failure.value


def _s_server(pki_files: PKIFiles, workdir: Path, verify: str, client_ca: Path) -> OpenSSLServer:
    extra = [verify, "1", "-CAfile", str(client_ca), "-verify_return_error"]
    return OpenSSLServer(pki_files, workdir=workdir, extra_args=extra, timeout=TIMEOUT)


def test_openssl_s_server_optional_request_verifies_our_certificate(
    pki: TestPKI, pki_files: PKIFiles, client_pki: ClientPKI, tmp_path: Path
) -> None:
    config = _client_config(pki, client_pki)
    with _s_server(pki_files, tmp_path, "-verify", client_pki.ca) as server:
        with open_engine_client(server.port, config, timeout=TIMEOUT) as client:
            _talk(client)
        report = server.finish()
        stderr = server.process.stderr_text()
    assert report.received == MESSAGE, report.log
    assert report.returncode == 0, report.log
    subjects = received_certificate_subjects((tmp_path / "s_server.trace").read_text())
    assert len(subjects) == 1, subjects
    assert f"CN = {client_pki.common_name}" in subjects[0]
    # s_server's verify callback: our leaf (depth 0) verified against -CAfile.
    verified = rf"depth=0 .*CN = {re.escape(client_pki.common_name)}\nverify return:1"
    assert re.search(verified, stderr), stderr


def test_openssl_s_server_optional_request_admits_our_client_without_a_certificate(
    pki: TestPKI, pki_files: PKIFiles, client_pki: ClientPKI, tmp_path: Path
) -> None:
    config = _client_config(pki, None)
    with _s_server(pki_files, tmp_path, "-verify", client_pki.ca) as server:
        with open_engine_client(server.port, config, timeout=TIMEOUT) as client:
            _talk(client)
        report = server.finish()
    assert report.received == MESSAGE, report.log
    assert report.returncode == 0, report.log
    assert received_certificate_subjects((tmp_path / "s_server.trace").read_text()) == []


def test_openssl_s_server_refuses_our_untrusted_certificate_with_unknown_ca(
    pki: TestPKI, pki_files: PKIFiles, client_pki: ClientPKI, rogue_pki: ClientPKI, tmp_path: Path
) -> None:
    config = _client_config(pki, rogue_pki)
    with _s_server(pki_files, tmp_path, "-Verify", client_pki.ca) as server:
        with open_engine_client(server.port, config, timeout=TIMEOUT) as client:
            alert = _talk_expecting_alert(client)
        report = server.finish()
    assert alert.description == AlertDescription.UNKNOWN_CA
    assert (FATAL, AlertDescription.UNKNOWN_CA) in report.alerts_sent, report.log
    assert not report.handshake_ok


def _gnutls_serv(pki_files: PKIFiles, workdir: Path, client_ca: Path, *extra: str) -> GnuTLSServer:
    return GnuTLSServer(
        pki_files,
        workdir=workdir,
        request_client_cert=True,
        extra_args=["--x509cafile", str(client_ca), *extra],
        timeout=TIMEOUT,
    )


def test_gnutls_serv_verifies_our_certificate(
    pki: TestPKI, pki_files: PKIFiles, client_pki: ClientPKI, tmp_path: Path
) -> None:
    config = _client_config(pki, client_pki)
    extra = ("--require-client-cert", "--verify-client-cert")
    with _gnutls_serv(pki_files, tmp_path, client_pki.ca, *extra) as server:
        with open_engine_client(server.port, config, timeout=TIMEOUT) as client:
            _talk(client)
        report = server.finish()
        summary = server.process.stdout_text()
    assert report.handshake_ok, report.log
    assert report.alerts_sent == ((1, 0),), report.log
    # The summary gnutls-serv prints of the client's certificate and its check.
    assert "- Status: The certificate is trusted." in summary, summary
    assert f"Subject: CN={client_pki.common_name}," in summary, summary


def test_gnutls_serv_optional_request_admits_our_client_without_a_certificate(
    pki: TestPKI, pki_files: PKIFiles, client_pki: ClientPKI, tmp_path: Path
) -> None:
    config = _client_config(pki, None)
    with _gnutls_serv(pki_files, tmp_path, client_pki.ca) as server:
        with open_engine_client(server.port, config, timeout=TIMEOUT) as client:
            _talk(client)
        report = server.finish()
    assert report.handshake_ok, report.log
    assert report.alerts_sent == ((1, 0),), report.log


def test_gnutls_serv_refuses_our_client_without_a_certificate(
    pki: TestPKI, pki_files: PKIFiles, client_pki: ClientPKI, tmp_path: Path
) -> None:
    config = _client_config(pki, None)
    with _gnutls_serv(pki_files, tmp_path, client_pki.ca, "--require-client-cert") as server:
        with open_engine_client(server.port, config, timeout=TIMEOUT) as client:
            alert = _talk_expecting_alert(client)
        report = server.finish()
    assert alert.description == AlertDescription.CERTIFICATE_REQUIRED
    assert (FATAL, AlertDescription.CERTIFICATE_REQUIRED) in report.alerts_sent, report.log


def test_gnutls_serv_refuses_our_untrusted_certificate_with_access_denied(
    pki: TestPKI, pki_files: PKIFiles, client_pki: ClientPKI, rogue_pki: ClientPKI, tmp_path: Path
) -> None:
    # GnuTLS maps an untrusted client chain to access_denied, not unknown_ca.
    config = _client_config(pki, rogue_pki)
    extra = ("--require-client-cert", "--verify-client-cert")
    with _gnutls_serv(pki_files, tmp_path, client_pki.ca, *extra) as server:
        with open_engine_client(server.port, config, timeout=TIMEOUT) as client:
            alert = _talk_expecting_alert(client)
        report = server.finish()
    assert alert.description == AlertDescription.ACCESS_DENIED
    assert report.alerts_sent[:1] == ((FATAL, AlertDescription.ACCESS_DENIED),), report.log
