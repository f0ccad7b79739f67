"""Self-checks of the interop harness: real peers talking to each other.

These tests need no triotls code. They prove that each launcher starts its
peer, echoes, closes both ways, cleans up, and that what we parse out of each
peer's output (cipher suite, group, ALPN, signature scheme, hello retry,
close_notify) agrees with what the other peer says.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

import pytest

from tests.interop import peers
from tests.interop.peers import (
    GnuTLSClient,
    GnuTLSServer,
    OpenSSLClient,
    OpenSSLServer,
    PeerReport,
    PyOpenSSLClient,
    PyOpenSSLServer,
    PythonSSLClient,
    PythonSSLServer,
    gnutls_priority,
)
from tests.interop.scenarios import Peer, ServerPeer
from tests.interop.wire import HELLO_RETRY_REQUEST_RANDOM, client_hellos, server_hellos
from tests.support.certs import KEY_KINDS, PKIFiles, TestPKI

pytestmark = pytest.mark.interop

# Bytes a naive peer would mangle: command letters (s_server/s_client "Q"),
# CRLF (gnutls-serv rewrites it without --crlf) and high bytes. No NUL and a
# final newline: gnutls-serv --echo is line-oriented (see peers.py).
PAYLOAD: Final = b"Q\r\nhello, peer\n" + bytes(range(1, 256)) + b"K\n" * 8

# Code points, written out from RFC 8446 §B.3 (not taken from triotls).
X25519: Final = 0x001D
SECP256R1: Final = 0x0017
SECP384R1: Final = 0x0018
X25519MLKEM768: Final = 0x11EC
AES_128_GCM: Final = 0x1301
AES_256_GCM: Final = 0x1302
CHACHA20: Final = 0x1303
CLOSE_NOTIFY: Final = (1, 0)

# The scheme a server with this key signs with when the client offers the
# usual lists: PSS with the rsae OID for RSA keys in TLS 1.3 (RFC 8446 §4.2.3).
SCHEME_FOR_KIND: Final = {
    "ecdsa-p256": 0x0403,
    "rsa-2048": 0x0804,
    "ed25519": 0x0807,
    "ecdsa-p384": 0x0503,
}


@contextlib.contextmanager
def _echo(
    server: ServerPeer, client: Callable[[int], Peer]
) -> Iterator[tuple[PeerReport, PeerReport]]:
    """Start ``server``, then ``client(port)``; yield their reports (client's first).

    Check the reports inside the ``with``: a failure then prints both peers' output.
    """
    with server, client(server.port) as talking:
        yield talking.finish(), server.finish()


def assert_clean(report: PeerReport, *, received: bytes | None) -> None:
    """The peer completed the handshake, got ``received`` and saw no error."""
    assert report.handshake_ok, f"{report.peer}: handshake failed: {report.error}"
    assert report.error is None, f"{report.peer}: {report.error}"
    assert not [a for a in report.alerts_sent if a != CLOSE_NOTIFY], report.alerts_sent
    assert not [a for a in report.alerts_received if a != CLOSE_NOTIFY], report.alerts_received
    if received is not None and report.received is not None:
        assert report.received == received
    if report.version is not None:
        assert report.version == "TLSv1.3"


@pytest.mark.parametrize("pki", KEY_KINDS, indirect=True)
def test_python_client_echoes_through_openssl_server(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    with _echo(
        OpenSSLServer(pki_files, workdir=tmp_path, alpn=["h2", "http/1.1"]),
        lambda port: PythonSSLClient(pki_files, port, data=PAYLOAD, alpn=["h2", "http/1.1"]),
    ) as (mine, theirs):
        assert_clean(mine, received=PAYLOAD)
        assert_clean(theirs, received=PAYLOAD)
        assert theirs.returncode == 0
        assert (mine.alpn, theirs.alpn) == ("h2", "h2")
        assert mine.cipher_suite == theirs.cipher_suite == AES_256_GCM
        assert mine.group == theirs.group == X25519
        assert theirs.signature_scheme == SCHEME_FOR_KIND[pki.kind]
        assert theirs.received_close_notify and theirs.sent_close_notify
        assert mine.received_close_notify and mine.sent_close_notify
        assert theirs.hello_retry is False and mine.hello_retry is False


@pytest.mark.parametrize("pki", KEY_KINDS, indirect=True)
def test_python_client_echoes_through_gnutls_server(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    with _echo(
        GnuTLSServer(pki_files, workdir=tmp_path, alpn=["h2", "http/1.1"]),
        lambda port: PythonSSLClient(pki_files, port, data=PAYLOAD, alpn=["h2", "http/1.1"]),
    ) as (mine, theirs):
        assert_clean(mine, received=PAYLOAD)
        assert_clean(theirs, received=None)
        assert (mine.alpn, theirs.alpn) == ("h2", "h2")
        assert theirs.cipher_suite is not None
        assert mine.cipher_suite == theirs.cipher_suite
        assert mine.group == theirs.group == X25519
        assert theirs.signature_scheme == SCHEME_FOR_KIND[pki.kind]
        assert theirs.received_close_notify and theirs.sent_close_notify
        assert mine.received_close_notify


@pytest.mark.parametrize("pki", KEY_KINDS, indirect=True)
def test_openssl_client_echoes_through_python_server(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    with _echo(
        PythonSSLServer(pki_files, alpn=["http/1.1", "h2"]),
        lambda port: OpenSSLClient(
            pki_files.ca,
            port,
            workdir=tmp_path,
            data=PAYLOAD,
            alpn=["h2", "http/1.1"],
            close="client",
        ),
    ) as (theirs, mine):
        assert_clean(theirs, received=PAYLOAD)
        assert_clean(mine, received=PAYLOAD)
        assert theirs.returncode == 0
        # OpenSSL servers pick by their own preference order.
        assert (theirs.alpn, mine.alpn) == ("http/1.1", "http/1.1")
        assert theirs.cipher_suite == mine.cipher_suite == AES_256_GCM
        assert theirs.group == mine.group == X25519
        assert theirs.signature_scheme == SCHEME_FOR_KIND[pki.kind]
        assert theirs.sent_close_notify and mine.received_close_notify


@pytest.mark.parametrize("pki", KEY_KINDS, indirect=True)
def test_gnutls_client_echoes_through_python_server(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    with _echo(
        PythonSSLServer(pki_files, alpn=["h2", "http/1.1"]),
        lambda port: GnuTLSClient(
            pki_files.ca, port, workdir=tmp_path, data=PAYLOAD, alpn=["h2", "http/1.1"]
        ),
    ) as (theirs, mine):
        assert_clean(theirs, received=PAYLOAD)
        assert_clean(mine, received=PAYLOAD)
        assert theirs.returncode == 0
        assert (theirs.alpn, mine.alpn) == ("h2", "h2")
        assert theirs.cipher_suite == mine.cipher_suite
        assert theirs.group == mine.group
        assert theirs.signature_scheme == SCHEME_FOR_KIND[pki.kind]
        assert theirs.sent_close_notify and theirs.received_close_notify
        assert mine.received_close_notify and mine.sent_close_notify


def test_gnutls_server_sees_openssl_client_close_notify(
    pki_files: PKIFiles, tmp_path: Path
) -> None:
    with _echo(
        GnuTLSServer(pki_files, workdir=tmp_path),
        lambda port: OpenSSLClient(
            pki_files.ca, port, workdir=tmp_path, data=PAYLOAD, close="client"
        ),
    ) as (theirs, report):
        assert_clean(theirs, received=PAYLOAD)
        assert theirs.sent_close_notify
        assert report.received_close_notify


def test_openssl_client_answers_server_initiated_close(pki_files: PKIFiles, tmp_path: Path) -> None:
    with _echo(
        PythonSSLServer(pki_files, close_after=len(PAYLOAD)),
        lambda port: OpenSSLClient(
            pki_files.ca, port, workdir=tmp_path, data=PAYLOAD, close="server"
        ),
    ) as (theirs, mine):
        assert_clean(theirs, received=PAYLOAD)
        assert_clean(mine, received=PAYLOAD)
        assert theirs.returncode == 0
        assert theirs.received_close_notify and theirs.sent_close_notify
        assert mine.received_close_notify and mine.sent_close_notify
        assert theirs.alerts_received.index(CLOSE_NOTIFY) == 0


def test_openssl_server_answers_close_notify_after_client_left(
    pki_files: PKIFiles, tmp_path: Path
) -> None:
    with _echo(
        OpenSSLServer(pki_files, workdir=tmp_path),
        lambda port: OpenSSLClient(
            pki_files.ca, port, workdir=tmp_path, data=PAYLOAD, close="client"
        ),
    ) as (theirs, mine):
        assert_clean(theirs, received=PAYLOAD)
        assert_clean(mine, received=PAYLOAD)
        assert theirs.sent_close_notify and mine.received_close_notify
        assert mine.sent_close_notify


def test_openssl_client_gets_hello_retry_from_python_server(
    pki_files: PKIFiles, tmp_path: Path
) -> None:
    # s_client sends a key share for its first group only (X25519); the server
    # accepts only P-384, which the client lists: RFC 8446 §4.1.4 retry.
    with _echo(
        PythonSSLServer(pki_files, ecdh_curve="secp384r1"),
        lambda port: OpenSSLClient(
            pki_files.ca,
            port,
            workdir=tmp_path,
            data=PAYLOAD,
            groups=["X25519", "P-384"],
            close="client",
        ),
    ) as (theirs, mine):
        assert_clean(theirs, received=PAYLOAD)
        assert_clean(mine, received=PAYLOAD)
        assert theirs.hello_retry is True and mine.hello_retry is True
        assert theirs.group == mine.group == SECP384R1


def test_gnutls_client_gets_hello_retry_from_openssl_server(
    pki_files: PKIFiles, tmp_path: Path
) -> None:
    with _echo(
        OpenSSLServer(pki_files, workdir=tmp_path, groups=["P-384"]),
        lambda port: GnuTLSClient(
            pki_files.ca,
            port,
            workdir=tmp_path,
            data=PAYLOAD,
            priority=gnutls_priority(groups=["X25519", "SECP384R1"]),
            single_key_share=True,
        ),
    ) as (theirs, mine):
        assert_clean(theirs, received=PAYLOAD)
        assert_clean(mine, received=PAYLOAD)
        assert theirs.hello_retry is True and mine.hello_retry is True
        assert theirs.group == mine.group == SECP384R1


@pytest.mark.parametrize(
    ("openssl_name", "gnutls_name", "code"),
    [
        ("TLS_AES_128_GCM_SHA256", "AES-128-GCM", AES_128_GCM),
        ("TLS_AES_256_GCM_SHA384", "AES-256-GCM", AES_256_GCM),
        ("TLS_CHACHA20_POLY1305_SHA256", "CHACHA20-POLY1305", CHACHA20),
    ],
)
def test_cipher_suite_restriction_is_reported_by_both_tools(
    openssl_name: str, gnutls_name: str, code: int, pki_files: PKIFiles, tmp_path: Path
) -> None:
    with _echo(
        OpenSSLServer(pki_files, workdir=tmp_path, ciphersuites=[openssl_name]),
        lambda port: GnuTLSClient(
            pki_files.ca,
            port,
            workdir=tmp_path,
            data=PAYLOAD,
            priority=gnutls_priority(ciphers=[gnutls_name]),
        ),
    ) as (theirs, mine):
        assert_clean(theirs, received=PAYLOAD)
        assert theirs.cipher_suite == mine.cipher_suite == code


@pytest.mark.parametrize(
    ("openssl_name", "gnutls_name", "code"),
    [
        ("X25519", "X25519", X25519),
        ("P-256", "SECP256R1", SECP256R1),
        ("P-384", "SECP384R1", SECP384R1),
    ],
)
def test_group_restriction_is_reported_by_both_tools(
    openssl_name: str, gnutls_name: str, code: int, pki_files: PKIFiles, tmp_path: Path
) -> None:
    with _echo(
        GnuTLSServer(pki_files, workdir=tmp_path, priority=gnutls_priority(groups=[gnutls_name])),
        lambda port: OpenSSLClient(
            pki_files.ca,
            port,
            workdir=tmp_path,
            data=PAYLOAD,
            groups=[openssl_name],
            close="client",
        ),
    ) as (theirs, mine):
        assert_clean(theirs, received=PAYLOAD)
        assert mine.handshake_ok
        assert theirs.group == mine.group == code
        assert theirs.hello_retry is False


def test_pyopenssl_peers_negotiate_x25519mlkem768(pki_files: PKIFiles) -> None:
    with _echo(
        PyOpenSSLServer(pki_files, alpn=["h2"]),
        lambda port: PyOpenSSLClient(pki_files, port, data=PAYLOAD, alpn=["h2"]),
    ) as (theirs, mine):
        assert_clean(theirs, received=PAYLOAD)
        assert_clean(mine, received=PAYLOAD)
        assert theirs.group == mine.group == X25519MLKEM768
        assert (theirs.alpn, mine.alpn) == ("h2", "h2")
        assert theirs.received_close_notify and mine.received_close_notify


def test_pyopenssl_client_falls_back_to_x25519_with_openssl_3_0(
    pki_files: PKIFiles, tmp_path: Path
) -> None:
    with _echo(
        OpenSSLServer(pki_files, workdir=tmp_path),
        lambda port: PyOpenSSLClient(pki_files, port, data=PAYLOAD),
    ) as (theirs, mine):
        assert_clean(theirs, received=PAYLOAD)
        assert theirs.group == mine.group == X25519
        assert mine.hello_retry is False


def test_wire_parser_sees_hello_retry_between_python_peers(pki_files: PKIFiles) -> None:
    # In memory: capture both directions exactly, without any peer binary.
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(str(pki_files.chain), str(pki_files.key))
    server_ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    server_ctx.set_ecdh_curve("secp384r1")
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(cafile=str(pki_files.ca))
    client_ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname="localhost")
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    from_client = bytearray()
    from_server = bytearray()
    for _ in range(10):
        for obj in (client, server):
            with contextlib.suppress(ssl.SSLWantReadError):
                obj.do_handshake()
        sent = c_out.read()
        from_client += sent
        s_in.write(sent)
        sent = s_out.read()
        from_server += sent
        c_in.write(sent)
    assert client.version() == "TLSv1.3"

    first, second = client_hellos(bytes(from_client))
    assert first.key_share_groups == (X25519,)
    assert SECP384R1 in first.supported_groups
    assert second.key_share_groups == (SECP384R1,)
    assert first.server_name == "localhost"
    assert 0x0304 in first.supported_versions

    hrr, hello = server_hellos(bytes(from_server))
    assert hrr.is_hello_retry_request and hrr.group == SECP384R1
    assert not hello.is_hello_retry_request and hello.group == SECP384R1
    assert hello.selected_version == 0x0304
    assert from_server[11:43] == HELLO_RETRY_REQUEST_RANDOM


def test_missing_peer_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        peers.require_binary("triotls-no-such-peer")


def test_missing_peer_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(peers, "_missing_peers", [])  # keep the run's summary truthful
    with pytest.raises(pytest.skip.Exception, match="triotls-no-such-peer"):
        peers.require_binary("triotls-no-such-peer")
