"""The triotls server against real clients: Python ssl, openssl s_client, gnutls-cli.

Each test opens a listener, starts one peer client against it and runs our
engine's server on the accepted socket (see ``driver.serve_one``): the client
sends, we echo, close_notify goes both ways. Then both ends must agree on
what was negotiated. On a failure the client's command line, output and
protocol trace are printed.

openssl s_client leaves without waiting for the server's close_notify when it
closes first, so with s_client our server closes first (``close_after``) and
s_client answers; every other client closes first and we answer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.driver import EngineResult, open_listener, serve_one
from tests.interop.peers import CloseMode, PeerReport
from tests.interop.scenarios import (
    ALPN,
    ALPN_CASES,
    BULK_PAYLOAD,
    GROUPS,
    PAYLOAD,
    SCHEMES_FOR_KIND,
    SUITES,
    TIMEOUT,
    ClientKind,
    assert_exchange,
    make_client,
    server_config,
)
from tests.support.certs import PKIFiles, TestPKI
from triotls.engine.enums import CipherSuite, NamedGroup

pytestmark = pytest.mark.interop

CLIENTS: list[ClientKind] = ["python-ssl", "openssl", "gnutls"]


def converse(
    client: ClientKind,
    pki: TestPKI,
    pki_files: PKIFiles,
    tmp_path: Path,
    *,
    config_alpn: tuple[str, ...] = ALPN,
    suites: list[CipherSuite] | None = None,
    groups: list[NamedGroup] | None = None,
    client_groups: tuple[NamedGroup, ...] = (),
    data: bytes = PAYLOAD,
    key_update: bool = False,
) -> tuple[EngineResult, PeerReport]:
    """Serve one ``client`` conversation and check it with ``assert_exchange``.

    The check runs while the peer is still being managed, so a failure prints
    the peer's output.
    """
    config = server_config(pki, alpn=config_alpn, cipher_suites=suites, groups=groups)
    # s_client must not close first (it would not wait for our close_notify).
    close: CloseMode = "server" if client == "openssl" else "client"
    close_after = len(data) if client == "openssl" else None
    with open_listener() as listener:
        port: int = listener.getsockname()[1]
        with make_client(
            client, pki_files, port, tmp_path, data=data, groups=client_groups, close=close
        ) as peer:
            result = serve_one(
                listener, config, timeout=TIMEOUT, close_after=close_after, key_update=key_update
            )
            report = peer.finish()
            assert_exchange(result, report, payload=data)
            return result, report


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
@pytest.mark.parametrize("client", CLIENTS)
def test_server_negotiates_cipher_suite(
    client: ClientKind, suite: CipherSuite, pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    result, report = converse(client, pki, pki_files, tmp_path, suites=[suite])
    assert result.negotiated is not None
    assert result.negotiated.cipher_suite == suite
    assert report.cipher_suite == suite


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
@pytest.mark.parametrize("client", CLIENTS)
def test_server_negotiates_group(
    client: ClientKind, group: NamedGroup, pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    result, report = converse(
        client, pki, pki_files, tmp_path, groups=[group], client_groups=(group,)
    )
    assert result.negotiated is not None
    assert result.negotiated.group == group
    assert not result.hello_retry
    assert report.group in (None, group)


@pytest.mark.parametrize("pki", ["ecdsa-p256", "rsa-2048", "ed25519", "ecdsa-p384"], indirect=True)
@pytest.mark.parametrize("client", CLIENTS)
def test_server_authenticates_with_certificate(
    client: ClientKind, pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    # Each client verifies the chain and the name "localhost" against the CA.
    result, report = converse(client, pki, pki_files, tmp_path)
    assert result.negotiated is not None
    assert result.negotiated.signature_scheme in SCHEMES_FOR_KIND[pki.kind]
    if report.signature_scheme is not None:
        assert report.signature_scheme in SCHEMES_FOR_KIND[pki.kind]


@pytest.mark.parametrize("alpn_case", ALPN_CASES)
@pytest.mark.parametrize("client", CLIENTS)
def test_server_negotiates_alpn(
    client: ClientKind,
    alpn_case: tuple[tuple[str, ...], str],
    pki: TestPKI,
    pki_files: PKIFiles,
    tmp_path: Path,
) -> None:
    server_alpn, expected = alpn_case
    result, report = converse(client, pki, pki_files, tmp_path, config_alpn=server_alpn)
    assert result.negotiated is not None
    assert result.negotiated.alpn_protocol == expected
    assert report.alpn == expected


@pytest.mark.parametrize("client", ["openssl", "gnutls", "pyopenssl"])
def test_server_retries_hello_for_missing_key_share(
    client: ClientKind, pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    # The client's only key share is X25519 (pyOpenSSL: X25519MLKEM768 and
    # X25519) while it also lists P-256, the one group we accept: RFC 8446
    # §4.1.4 says ask again with a HelloRetryRequest.
    client_groups = () if client == "pyopenssl" else (NamedGroup.X25519, NamedGroup.SECP256R1)
    result, report = converse(
        client,
        pki,
        pki_files,
        tmp_path,
        groups=[NamedGroup.SECP256R1],
        client_groups=client_groups,
    )
    first, second = result.client_hellos()
    assert NamedGroup.SECP256R1 not in first.key_share_groups
    assert NamedGroup.SECP256R1 in first.supported_groups
    assert second.key_share_groups == (NamedGroup.SECP256R1,)
    hrr, _hello = result.server_hellos()
    assert hrr.is_hello_retry_request and hrr.group == NamedGroup.SECP256R1
    assert result.negotiated is not None
    assert result.negotiated.group == NamedGroup.SECP256R1
    assert report.hello_retry in (None, True)


@pytest.mark.parametrize("client", CLIENTS)
def test_server_default_config_picks_x25519_for_classical_client(
    client: ClientKind, pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    result, _report = converse(client, pki, pki_files, tmp_path)
    assert result.negotiated is not None
    assert result.negotiated.group == NamedGroup.X25519
    assert not result.hello_retry


def test_server_negotiates_x25519mlkem768_with_pyopenssl_client(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    result, report = converse("pyopenssl", pki, pki_files, tmp_path)
    assert result.negotiated is not None
    assert result.negotiated.group == NamedGroup.X25519MLKEM768
    assert report.group == NamedGroup.X25519MLKEM768


@pytest.mark.parametrize("client", CLIENTS)
def test_server_exchanges_bulk_data(
    client: ClientKind, pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    converse(client, pki, pki_files, tmp_path, data=BULK_PAYLOAD)


@pytest.mark.parametrize("client", CLIENTS)
def test_server_key_update_keeps_the_connection_usable(
    client: ClientKind, pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    # We update our keys right after the handshake; the echo that follows is
    # encrypted under the new keys, so the client must have taken them.
    converse(client, pki, pki_files, tmp_path, key_update=True)


def test_server_answers_openssl_client_that_closes_first(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    # s_client sends close_notify and exits at once; our reply may find the
    # socket gone, which must not turn into an error on our side.
    config = server_config(pki)
    with open_listener() as listener:
        port: int = listener.getsockname()[1]
        with make_client(
            "openssl", pki_files, port, tmp_path, data=PAYLOAD, close="client"
        ) as peer:
            result = serve_one(listener, config, timeout=TIMEOUT)
            report = peer.finish()
            assert_exchange(result, report, payload=PAYLOAD, both_close_notify=False)
            assert result.peer_close == "close_notify"
            assert report.sent_close_notify
