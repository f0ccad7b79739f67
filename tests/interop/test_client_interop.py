"""The triotls client against real servers: Python ssl, openssl s_server, gnutls-serv.

Each test starts one server, runs our engine's client over a socket (see
``driver.run_client``): handshake, send, read the echo, close_notify both
ways. Then it checks that both ends agree on what was negotiated. On a
failure the server's command line, output and protocol trace are printed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Final, Literal

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from tests.interop.driver import EngineResult, run_client
from tests.interop.peers import (
    CLIENT_HOST,
    GnuTLSServer,
    HandshakeMessageSeen,
    OpenSSLServer,
    PeerReport,
)
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
from triotls.engine import HandshakeKind
from triotls.engine.enums import CipherSuite, HandshakeType, NamedGroup

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


# --- client authentication, read back from both ends of the wire -------------------------

_Aead = Callable[[bytes], AESGCM | ChaCha20Poly1305]
_SUITE_CRYPTO: Final[dict[CipherSuite, tuple[hashes.HashAlgorithm, int, _Aead]]] = {
    CipherSuite.TLS_AES_128_GCM_SHA256: (hashes.SHA256(), 16, AESGCM),
    CipherSuite.TLS_AES_256_GCM_SHA384: (hashes.SHA384(), 32, AESGCM),
    CipherSuite.TLS_CHACHA20_POLY1305_SHA256: (hashes.SHA256(), 32, ChaCha20Poly1305),
}
# RFC 8446 §4.4.2: an empty certificate_request_context, an empty certificate_list.
EMPTY_CERTIFICATE: Final = b"\x00" + b"\x00\x00\x00"


def _expand_label(algorithm: hashes.HashAlgorithm, secret: bytes, label: bytes, n: int) -> bytes:
    """HKDF-Expand-Label with an empty context (RFC 8446 §7.1)."""
    full = b"tls13 " + label
    info = n.to_bytes(2, "big") + bytes([len(full)]) + full + b"\x00"
    return HKDFExpand(algorithm, n, info).derive(secret)


def handshake_flight(
    stream: bytes, suite: CipherSuite, secret: bytes
) -> list[tuple[HandshakeType, bytes]]:
    """The encrypted handshake messages of ``stream``, up to Finished: (type, body).

    Decrypts with the handshake traffic ``secret`` (RFC 8446 §5.2, §7.3) using
    ``cryptography`` alone, so it shows what went over the wire whatever the
    engine believes it sent. Plaintext records (hellos, change_cipher_spec)
    are skipped.
    """
    algorithm, key_length, aead = _SUITE_CRYPTO[suite]
    cipher = aead(_expand_label(algorithm, secret, b"key", key_length))
    iv = int.from_bytes(_expand_label(algorithm, secret, b"iv", 12), "big")
    messages: list[tuple[HandshakeType, bytes]] = []
    pending = b""
    sequence = offset = 0
    while offset + 5 <= len(stream):
        header = stream[offset : offset + 5]
        end = offset + 5 + int.from_bytes(header[3:], "big")
        record, offset = stream[offset + 5 : end], end
        if header[0] != 23:
            continue
        inner = cipher.decrypt((iv ^ sequence).to_bytes(12, "big"), record, header)
        sequence += 1
        inner = inner.rstrip(b"\x00")
        assert inner[-1] == 22, f"record {sequence} of the flight holds content type {inner[-1]}"
        pending += inner[:-1]
        while len(pending) >= 4 and len(pending) >= 4 + int.from_bytes(pending[1:4], "big"):
            size = int.from_bytes(pending[1:4], "big")
            msg_type = HandshakeType(pending[0])
            messages.append((msg_type, pending[4 : 4 + size]))
            pending = pending[4 + size :]
            if msg_type == HandshakeType.FINISHED:
                return messages
    raise AssertionError(f"no Finished in the flight; got {[t.name for t, _ in messages]}")


def converse_recording_handshake(
    server: Literal["openssl", "gnutls"],
    pki: TestPKI,
    pki_files: PKIFiles,
    tmp_path: Path,
    *,
    request_client_cert: bool,
) -> tuple[EngineResult, dict[str, bytes], list[HandshakeMessageSeen]]:
    """Like :func:`converse`, also returning our key log and the server's handshake log."""
    secrets: dict[str, bytes] = {}

    def key_log(label: str, _client_random: bytes, secret: bytes) -> None:
        secrets[label] = secret

    config = dataclasses.replace(client_config(pki), key_log=key_log)
    with make_server(server, pki_files, tmp_path, request_client_cert=request_client_cert) as peer:
        result = run_client(CLIENT_HOST, peer.port, config, "localhost", PAYLOAD, True, TIMEOUT)
        report = peer.finish()
        assert_exchange(result, report, payload=PAYLOAD)
        assert isinstance(peer, (OpenSSLServer, GnuTLSServer))
        return result, secrets, peer.handshake_messages()


def flights(
    result: EngineResult, secrets: dict[str, bytes]
) -> tuple[list[tuple[HandshakeType, bytes]], list[tuple[HandshakeType, bytes]]]:
    """The server's and our encrypted handshake flights, decrypted from the wire."""
    assert result.negotiated is not None
    suite = result.negotiated.cipher_suite
    server = handshake_flight(
        result.wire_received, suite, secrets["SERVER_HANDSHAKE_TRAFFIC_SECRET"]
    )
    client = handshake_flight(result.wire_sent, suite, secrets["CLIENT_HANDSHAKE_TRAFFIC_SECRET"])
    return server, client


def server_handshake(messages: list[HandshakeMessageSeen]) -> list[tuple[str, str]]:
    """The server's log as (direction, name), without the tickets it sent.

    Without client authentication gnutls-serv sends its tickets before it
    has our Finished (RFC 8446 §4.6.1 allows it), so they are left out.
    """
    seen = [(m.direction, m.name) for m in messages]
    return [entry for entry in seen if entry != ("sent", "new_session_ticket")]


@pytest.mark.parametrize("server", ["openssl", "gnutls"])
def test_client_answers_certificate_request_without_certificate(
    server: Literal["openssl", "gnutls"], pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    # Both servers request a certificate but do not require one: an empty
    # Certificate message must do (RFC 8446 §4.4.2.4), without CertificateVerify.
    result, secrets, logged = converse_recording_handshake(
        server, pki, pki_files, tmp_path, request_client_cert=True
    )
    # The server's own log: it sent a CertificateRequest, received a
    # Certificate of 4 bytes (empty context, empty list) and our Finished.
    assert server_handshake(logged) == [
        ("received", "client_hello"),
        ("sent", "server_hello"),
        ("sent", "encrypted_extensions"),
        ("sent", "certificate_request"),
        ("sent", "certificate"),
        ("sent", "certificate_verify"),
        ("sent", "finished"),
        ("received", "certificate"),
        ("received", "finished"),
    ]
    assert HandshakeMessageSeen("received", "certificate", len(EMPTY_CERTIFICATE)) in logged
    # Our wire, decrypted: the same request came in, the same answer went out.
    server_flight, client_flight = flights(result, secrets)
    assert [t for t, _ in server_flight] == [
        HandshakeType.ENCRYPTED_EXTENSIONS,
        HandshakeType.CERTIFICATE_REQUEST,
        HandshakeType.CERTIFICATE,
        HandshakeType.CERTIFICATE_VERIFY,
        HandshakeType.FINISHED,
    ]
    assert server_flight[1][1][0] == 0, "the handshake's request has an empty context"
    assert [t for t, _ in client_flight] == [HandshakeType.CERTIFICATE, HandshakeType.FINISHED]
    assert client_flight[0][1] == EMPTY_CERTIFICATE
    # And our engine completed a full handshake; CertificateRequested is only
    # for post-handshake requests (RFC 8446 §4.6.2).
    assert result.negotiated is not None
    assert result.negotiated.handshake_kind == HandshakeKind.FULL
    assert "HandshakeComplete" in result.events
    assert "CertificateRequested" not in result.events


@pytest.mark.parametrize("server", ["openssl", "gnutls"])
def test_client_sends_no_certificate_message_unless_requested(
    server: Literal["openssl", "gnutls"], pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    # The control for the test above: without a request the same logs show
    # no CertificateRequest and no client Certificate.
    result, secrets, logged = converse_recording_handshake(
        server, pki, pki_files, tmp_path, request_client_cert=False
    )
    assert server_handshake(logged) == [
        ("received", "client_hello"),
        ("sent", "server_hello"),
        ("sent", "encrypted_extensions"),
        ("sent", "certificate"),
        ("sent", "certificate_verify"),
        ("sent", "finished"),
        ("received", "finished"),
    ]
    server_flight, client_flight = flights(result, secrets)
    assert [t for t, _ in server_flight] == [
        HandshakeType.ENCRYPTED_EXTENSIONS,
        HandshakeType.CERTIFICATE,
        HandshakeType.CERTIFICATE_VERIFY,
        HandshakeType.FINISHED,
    ]
    assert [t for t, _ in client_flight] == [HandshakeType.FINISHED]
