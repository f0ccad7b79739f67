"""The triotls client against real servers: Python ssl, openssl s_server, gnutls-serv.

Each test starts one server, runs our engine's client over a socket (see
``driver.run_client``): handshake, send, read the echo, close_notify both
ways. Then it checks that both ends agree on what was negotiated. On a
failure the server's command line, output and protocol trace are printed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.driver import EngineResult, run_client
from tests.interop.peers import CLIENT_HOST, PeerReport
from tests.interop.scenarios import (
    ALPN,
    ALPN_CASES,
    BULK_PAYLOAD,
    GROUPS,
    PAYLOAD,
    SCHEMES_FOR_KIND,
    SUITES,
    TIMEOUT,
    ServerKind,
    assert_exchange,
    client_config,
    make_server,
)
from tests.support.certs import PKIFiles, TestPKI
from triotls.config import ClientConfig
from triotls.engine.enums import CipherSuite, NamedGroup

pytestmark = pytest.mark.interop

SERVERS: list[ServerKind] = ["python-ssl", "openssl", "gnutls"]


def converse(
    server: ServerKind,
    config: ClientConfig,
    pki_files: PKIFiles,
    tmp_path: Path,
    *,
    data: bytes = PAYLOAD,
    key_update: bool = False,
    server_alpn: tuple[str, ...] = ALPN,
    server_group: NamedGroup | None = None,
    request_client_cert: bool = False,
) -> tuple[EngineResult, PeerReport]:
    """Run our client against one ``server`` and check it with ``assert_exchange``.

    The check runs while the peer is still being managed, so a failure prints
    the peer's output.
    """
    with make_server(
        server,
        pki_files,
        tmp_path,
        alpn=server_alpn,
        group=server_group,
        request_client_cert=request_client_cert,
    ) as peer:
        result = run_client(
            CLIENT_HOST, peer.port, config, "localhost", data, True, TIMEOUT, key_update=key_update
        )
        report = peer.finish()
        assert_exchange(result, report, payload=data)
        return result, report


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
@pytest.mark.parametrize("server", SERVERS)
def test_client_negotiates_cipher_suite(
    server: ServerKind, suite: CipherSuite, pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    config = client_config(pki, cipher_suites=[suite])
    result, _report = converse(server, config, pki_files, tmp_path)
    assert result.negotiated is not None
    assert result.negotiated.cipher_suite == suite


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
@pytest.mark.parametrize("server", SERVERS)
def test_client_negotiates_group(
    server: ServerKind, group: NamedGroup, pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    config = client_config(pki, groups=[group])
    result, _report = converse(server, config, pki_files, tmp_path)
    assert result.negotiated is not None
    assert result.negotiated.group == group
    assert not result.hello_retry


@pytest.mark.parametrize("pki", ["ecdsa-p256", "rsa-2048", "ed25519", "ecdsa-p384"], indirect=True)
@pytest.mark.parametrize("server", SERVERS)
def test_client_verifies_server_certificate(
    server: ServerKind, pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    config = client_config(pki)
    result, report = converse(server, config, pki_files, tmp_path)
    negotiated = result.negotiated
    assert negotiated is not None
    assert negotiated.peer_certificates[0] == pki.leaf
    assert negotiated.signature_scheme in SCHEMES_FOR_KIND[pki.kind]
    if report.signature_scheme is not None:
        assert report.signature_scheme in SCHEMES_FOR_KIND[pki.kind]


@pytest.mark.parametrize("alpn_case", ALPN_CASES)
@pytest.mark.parametrize("server", SERVERS)
def test_client_negotiates_alpn(
    server: ServerKind,
    alpn_case: tuple[tuple[str, ...], str],
    pki: TestPKI,
    pki_files: PKIFiles,
    tmp_path: Path,
) -> None:
    server_alpn, expected = alpn_case
    config = client_config(pki, alpn=ALPN)
    result, report = converse(server, config, pki_files, tmp_path, server_alpn=server_alpn)
    assert result.negotiated is not None
    assert result.negotiated.alpn_protocol == expected
    assert report.alpn == expected


@pytest.mark.parametrize("server", SERVERS)
def test_client_retries_hello_for_server_only_group(
    server: ServerKind, pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    # We offer X25519, P-256 and P-384 but a key share for X25519 only; the
    # server accepts P-384 only, so it must ask again (RFC 8446 §4.1.4).
    config = client_config(
        pki, groups=[NamedGroup.X25519, NamedGroup.SECP256R1, NamedGroup.SECP384R1]
    )
    result, report = converse(
        server, config, pki_files, tmp_path, server_group=NamedGroup.SECP384R1
    )
    first, second = result.client_hellos()
    assert first.key_share_groups == (NamedGroup.X25519,)
    assert second.key_share_groups == (NamedGroup.SECP384R1,)
    hrr, _hello = result.server_hellos()
    assert hrr.is_hello_retry_request and hrr.group == NamedGroup.SECP384R1
    assert result.negotiated is not None
    assert result.negotiated.group == NamedGroup.SECP384R1
    assert report.hello_retry in (None, True)


@pytest.mark.parametrize("server", SERVERS)
def test_client_default_config_uses_classical_share_with_classical_server(
    server: ServerKind, pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    # OpenSSL 3.0, GnuTLS 3.7 and Python's ssl know no ML-KEM; our default
    # key shares (X25519MLKEM768, X25519) must still avoid a retry.
    config = client_config(pki)
    result, _report = converse(server, config, pki_files, tmp_path)
    assert result.negotiated is not None
    assert result.negotiated.group == NamedGroup.X25519
    assert not result.hello_retry


def test_client_negotiates_x25519mlkem768_with_pyopenssl_server(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    config = client_config(pki)
    result, report = converse("pyopenssl", config, pki_files, tmp_path)
    assert result.negotiated is not None
    assert result.negotiated.group == NamedGroup.X25519MLKEM768
    assert report.group == NamedGroup.X25519MLKEM768


@pytest.mark.parametrize("server", SERVERS)
def test_client_exchanges_bulk_data(
    server: ServerKind, pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    config = client_config(pki)
    converse(server, config, pki_files, tmp_path, data=BULK_PAYLOAD)


@pytest.mark.parametrize("server", SERVERS)
def test_client_key_update_is_answered(
    server: ServerKind, pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    config = client_config(pki)
    result, _report = converse(server, config, pki_files, tmp_path, key_update=True)
    # update_requested obliges the peer to update its own keys (RFC 8446 §4.6.3).
    assert result.key_updates_received >= 1, result.events


@pytest.mark.parametrize("server", ["openssl", "gnutls"])
def test_client_answers_certificate_request_without_certificate(
    server: ServerKind, pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    # Both servers request a certificate but do not require one: an empty
    # Certificate message must do (RFC 8446 §4.4.2.4).
    config = client_config(pki)
    converse(server, config, pki_files, tmp_path, request_client_cert=True)
