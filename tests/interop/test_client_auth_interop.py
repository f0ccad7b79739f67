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

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Final

import pytest

from tests.support.certs import PKIFiles, TestPKI
from triotls.config import CertifiedKey, ClientConfig, ServerConfig, TrustStore
from triotls.engine import Negotiated
from triotls.engine.enums import AlertDescription
from triotls.errors import AlertReceived

from .client_auth_support import ClientPKI
from .peers import GnuTLSServer, OpenSSLServer
from .sessions import (
    Served,
    gnutls_cli_argv,
    output_text,
    run_session_client,
    run_tool,
    s_client_argv,
    serve_connections,
)

pytestmark = pytest.mark.interop

# gnutls-serv --echo answers whole lines only.
MESSAGE: Final = b"mutual TLS\n"


# --------------------------------------------------------------------------- #
# Our server, requiring a client certificate.


def _our_server(
    config: ServerConfig, argv: Callable[[int], list[str]]
) -> tuple[Served, subprocess.CompletedProcess[bytes]]:
    """Serve one connection while the tool ``argv(port)`` talks to it."""
    results: list[subprocess.CompletedProcess[bytes]] = []

    def client(port: int) -> None:
        results.append(run_tool(argv(port), MESSAGE))

    served = serve_connections([config], client, close_after=len(MESSAGE))
    return served, results[0]


def _server_config(pki: TestPKI, client_pki: ClientPKI) -> ServerConfig:
    return ServerConfig(
        certificates=(CertifiedKey.from_pem(pki.chain_pem, pki.key_pem),),
        client_auth="required",
        client_trust=client_pki.trust,
    )


def _s_client(files: PKIFiles, *extra: str | Path) -> Callable[[int], list[str]]:
    return lambda port: s_client_argv(files, port, *map(str, extra))


def _gnutls_cli(files: PKIFiles, *extra: str | Path) -> Callable[[int], list[str]]:
    return lambda port: gnutls_cli_argv(files, port, *map(str, extra))


def test_our_server_authenticates_an_openssl_s_client_certificate(
    pki: TestPKI, pki_files: PKIFiles, client_pki: ClientPKI
) -> None:
    command = _s_client(pki_files, "-cert", client_pki.chain, "-key", client_pki.key)
    served, result = _our_server(_server_config(pki, client_pki), command)
    assert served.errors == [], output_text(result)
    assert result.returncode == 0, output_text(result)
    assert served.received == [MESSAGE]
    (negotiated,) = served.negotiated
    assert negotiated is not None
    assert negotiated.peer_certificates[0] == client_pki.certified.chain[0]
    assert negotiated.verification is not None
    assert negotiated.verification.is_valid


def test_our_server_refuses_an_openssl_s_client_without_a_certificate(
    pki: TestPKI, pki_files: PKIFiles, client_pki: ClientPKI
) -> None:
    served, result = _our_server(_server_config(pki, client_pki), _s_client(pki_files))
    assert [type(e).__name__ for e in served.errors] == ["CertificateRequired"]
    assert served.negotiated == [None]
    assert "certificate required" in output_text(result), output_text(result)


def test_our_server_authenticates_a_gnutls_cli_certificate(
    pki: TestPKI, pki_files: PKIFiles, client_pki: ClientPKI
) -> None:
    command = _gnutls_cli(
        pki_files, "--x509certfile", client_pki.chain, "--x509keyfile", client_pki.key
    )
    served, result = _our_server(_server_config(pki, client_pki), command)
    assert served.errors == [], output_text(result)
    assert result.returncode == 0, output_text(result)
    assert served.received == [MESSAGE]
    (negotiated,) = served.negotiated
    assert negotiated is not None
    assert negotiated.peer_certificates[0] == client_pki.certified.chain[0]


def test_our_server_refuses_a_gnutls_cli_without_a_certificate(
    pki: TestPKI, pki_files: PKIFiles, client_pki: ClientPKI
) -> None:
    served, result = _our_server(_server_config(pki, client_pki), _gnutls_cli(pki_files))
    assert [type(e).__name__ for e in served.errors] == ["CertificateRequired"]
    assert result.returncode != 0
    # certificate_required(116), RFC 8446 §6.2, as gnutls-cli reports it.
    assert "Received alert [116]" in output_text(result), output_text(result)


# --------------------------------------------------------------------------- #
# Our client, presenting a certificate.


def _our_client(port: int, config: ClientConfig) -> tuple[Negotiated, bytes]:
    """Handshake, send MESSAGE, read its echo, exchange close_notify."""
    saw = run_session_client(port, config, message=MESSAGE)
    return saw.negotiated, saw.received


def _client_config(pki: TestPKI, client_pki: ClientPKI | None) -> ClientConfig:
    return ClientConfig(
        trust=TrustStore.from_pem(pki.ca_pem),
        certificate=client_pki.certified if client_pki is not None else None,
    )


def test_our_client_presents_a_certificate_to_openssl_s_server(
    pki: TestPKI, pki_files: PKIFiles, client_pki: ClientPKI, tmp_path: Path
) -> None:
    extra = ["-Verify", "1", "-CAfile", str(client_pki.ca), "-verify_return_error"]
    with OpenSSLServer(pki_files, workdir=tmp_path, extra_args=extra) as server:
        _, received = _our_client(server.port, _client_config(pki, client_pki))
        report = server.finish()
    assert received == MESSAGE
    assert report.received == MESSAGE
    assert report.returncode == 0, report.log


def test_openssl_s_server_refuses_our_client_without_a_certificate(
    pki: TestPKI, pki_files: PKIFiles, client_pki: ClientPKI, tmp_path: Path
) -> None:
    extra = ["-Verify", "1", "-CAfile", str(client_pki.ca), "-verify_return_error"]
    with OpenSSLServer(pki_files, workdir=tmp_path, extra_args=extra) as server:
        with pytest.raises(AlertReceived) as info:
            _our_client(server.port, _client_config(pki, None))
        server.finish()
    assert info.value.description == AlertDescription.CERTIFICATE_REQUIRED


def test_our_client_presents_a_certificate_to_gnutls_serv(
    pki: TestPKI, pki_files: PKIFiles, client_pki: ClientPKI, tmp_path: Path
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
