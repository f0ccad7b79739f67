"""Shared pieces of the triotls interop tests: payloads, configs, peers, checks.

``make_server``/``make_client`` start a peer of a given kind with options
expressed in our own enums (mapped here to each tool's spelling), and
``assert_exchange`` checks one finished conversation from both ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Final, Literal, Protocol

import pytest
from typing_extensions import Self

from tests.interop.driver import EngineResult
from tests.interop.peers import (
    CloseMode,
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
from tests.support.certs import PKIFiles, TestPKI
from triotls.config import (
    DEFAULT_CIPHER_SUITES,
    DEFAULT_GROUPS,
    DEFAULT_KEY_SHARE_GROUPS,
    CertifiedKey,
    ClientConfig,
    ServerConfig,
    TrustStore,
)
from triotls.engine.enums import CipherSuite, NamedGroup, SignatureScheme

__all__ = [
    "ALPN",
    "ALPN_CASES",
    "BULK_PAYLOAD",
    "GROUPS",
    "PAYLOAD",
    "SCHEMES_FOR_KIND",
    "SUITES",
    "TIMEOUT",
    "ClientKind",
    "ServerKind",
    "assert_exchange",
    "client_config",
    "make_client",
    "make_server",
    "server_config",
]

TIMEOUT: Final = 5.0
"""Seconds a conversation may take; a localhost handshake takes milliseconds."""

# Command letters for openssl ("Q", "K"), CRLF, high bytes; no NUL and a final
# newline, because gnutls-serv --echo is line-oriented (see peers.py).
PAYLOAD: Final = b"Q\r\nhello from triotls\n" + bytes(range(1, 256)) + b"K\n"
# Several full records each way; newline-terminated for gnutls-serv.
BULK_PAYLOAD: Final = b"".join(b"%07d " % i + b"x" * 91 + b"\n" for i in range(1200))

ALPN: Final = ("h2", "http/1.1")

# The suites and groups every peer here supports.
SUITES: Final = (
    CipherSuite.TLS_AES_128_GCM_SHA256,
    CipherSuite.TLS_AES_256_GCM_SHA384,
    CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
)
GROUPS: Final = (NamedGroup.X25519, NamedGroup.SECP256R1, NamedGroup.SECP384R1)

# "alpn_case": (what the server accepts, what must be negotiated) when the
# client offers ALPN.
ALPN_CASES: Final = [
    pytest.param((ALPN, "h2"), id="both-offer-h2"),
    pytest.param((("http/1.1",), "http/1.1"), id="server-only-http1.1"),
]

# What a server holding each key type signs with in TLS 1.3 (RFC 8446 §4.2.3:
# RSA keys sign with RSA-PSS; a peer may pick any hash it and we allow).
SCHEMES_FOR_KIND: Final[dict[str, frozenset[SignatureScheme]]] = {
    "ecdsa-p256": frozenset({SignatureScheme.ECDSA_SECP256R1_SHA256}),
    "ecdsa-p384": frozenset({SignatureScheme.ECDSA_SECP384R1_SHA384}),
    "ed25519": frozenset({SignatureScheme.ED25519}),
    "rsa-2048": frozenset(
        {
            SignatureScheme.RSA_PSS_RSAE_SHA256,
            SignatureScheme.RSA_PSS_RSAE_SHA384,
            SignatureScheme.RSA_PSS_RSAE_SHA512,
        }
    ),
}

ServerKind = Literal["python-ssl", "openssl", "gnutls", "pyopenssl"]
ClientKind = Literal["python-ssl", "openssl", "gnutls", "pyopenssl"]

_OPENSSL_GROUPS: Final = {
    NamedGroup.X25519: "X25519",
    NamedGroup.SECP256R1: "P-256",
    NamedGroup.SECP384R1: "P-384",
}
_GNUTLS_GROUPS: Final = {
    NamedGroup.X25519: "X25519",
    NamedGroup.SECP256R1: "SECP256R1",
    NamedGroup.SECP384R1: "SECP384R1",
}
_PYTHON_CURVES: Final = {
    NamedGroup.X25519: "X25519",
    NamedGroup.SECP256R1: "prime256v1",
    NamedGroup.SECP384R1: "secp384r1",
}
_GNUTLS_CIPHERS: Final = {
    CipherSuite.TLS_AES_128_GCM_SHA256: "AES-128-GCM",
    CipherSuite.TLS_AES_256_GCM_SHA384: "AES-256-GCM",
    CipherSuite.TLS_CHACHA20_POLY1305_SHA256: "CHACHA20-POLY1305",
}


class Peer(Protocol):
    """What the tests need from any peer launcher."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def finish(self, timeout: float | None = None) -> PeerReport: ...


class ServerPeer(Peer, Protocol):
    """A peer server; ``port`` is known once it was entered."""

    port: int


def client_config(
    pki: TestPKI,
    *,
    alpn: Sequence[str] = ALPN,
    cipher_suites: Sequence[CipherSuite] | None = None,
    groups: Sequence[NamedGroup] | None = None,
    key_share_groups: Sequence[NamedGroup] | None = None,
) -> ClientConfig:
    """Our client, trusting ``pki``'s CA; unset options keep triotls defaults.

    With ``groups`` but no ``key_share_groups``, the key share is for the
    first group.
    """
    if key_share_groups is None:
        key_share_groups = groups[:1] if groups is not None else DEFAULT_KEY_SHARE_GROUPS
    return ClientConfig(
        trust=TrustStore.from_pem(pki.ca_pem),
        alpn_protocols=tuple(alpn),
        cipher_suites=tuple(cipher_suites or DEFAULT_CIPHER_SUITES),
        groups=tuple(groups or DEFAULT_GROUPS),
        key_share_groups=tuple(key_share_groups),
    )


def server_config(
    pki: TestPKI,
    *,
    alpn: Sequence[str] = ALPN,
    cipher_suites: Sequence[CipherSuite] | None = None,
    groups: Sequence[NamedGroup] | None = None,
) -> ServerConfig:
    """Our server with ``pki``'s chain; unset options keep triotls defaults."""
    return ServerConfig(
        certificates=(CertifiedKey.from_pem(pki.chain_pem, pki.key_pem),),
        alpn_protocols=tuple(alpn),
        cipher_suites=tuple(cipher_suites or DEFAULT_CIPHER_SUITES),
        groups=tuple(groups or DEFAULT_GROUPS),
    )


def make_server(
    kind: ServerKind,
    files: PKIFiles,
    workdir: Path,
    *,
    alpn: Sequence[str] = ALPN,
    group: NamedGroup | None = None,
    request_client_cert: bool = False,
) -> ServerPeer:
    """A peer server of ``kind``, accepting only ``group`` if given."""
    if kind == "openssl":
        return OpenSSLServer(
            files,
            workdir=workdir,
            alpn=alpn,
            groups=[_OPENSSL_GROUPS[group]] if group is not None else [],
            request_client_cert=request_client_cert,
            timeout=TIMEOUT,
        )
    if kind == "gnutls":
        return GnuTLSServer(
            files,
            workdir=workdir,
            alpn=alpn,
            priority=gnutls_priority(groups=[_GNUTLS_GROUPS[group]] if group else []),
            request_client_cert=request_client_cert,
            timeout=TIMEOUT,
        )
    if request_client_cert:
        raise ValueError(f"{kind} servers here do not request client certificates")
    if kind == "python-ssl":
        return PythonSSLServer(
            files,
            alpn=alpn,
            ecdh_curve=_PYTHON_CURVES[group] if group is not None else None,
            timeout=TIMEOUT,
        )
    if group is not None:
        raise ValueError("the pyOpenSSL server cannot restrict its groups")
    return PyOpenSSLServer(files, alpn=alpn, timeout=TIMEOUT)


def make_client(
    kind: ClientKind,
    files: PKIFiles,
    port: int,
    workdir: Path,
    *,
    data: bytes,
    alpn: Sequence[str] = ALPN,
    groups: Sequence[NamedGroup] = (),
    close: CloseMode = "client",
) -> Peer:
    """A peer client of ``kind`` offering ``groups`` (key share for the first).

    ``close`` matters for s_client only: "server" makes it wait for our
    close_notify (so serve_one must be told to close first).
    """
    if kind == "openssl":
        return OpenSSLClient(
            files.ca,
            port,
            workdir=workdir,
            data=data,
            alpn=alpn,
            groups=[_OPENSSL_GROUPS[g] for g in groups],
            close=close,
            timeout=TIMEOUT,
        )
    if kind == "gnutls":
        return GnuTLSClient(
            files.ca,
            port,
            workdir=workdir,
            data=data,
            alpn=alpn,
            priority=gnutls_priority(groups=[_GNUTLS_GROUPS[g] for g in groups]),
            single_key_share=bool(groups),
            timeout=TIMEOUT,
        )
    if kind == "python-ssl":
        if len(groups) > 1:
            raise ValueError("Python's ssl can offer one group or the default list only")
        return PythonSSLClient(
            files,
            port,
            data=data,
            alpn=alpn,
            ecdh_curve=_PYTHON_CURVES[groups[0]] if groups else None,
            timeout=TIMEOUT,
        )
    if groups:
        raise ValueError("the pyOpenSSL client cannot restrict its groups")
    return PyOpenSSLClient(files, port, data=data, alpn=alpn, timeout=TIMEOUT)


def assert_exchange(
    result: EngineResult,
    report: PeerReport,
    *,
    payload: bytes,
    both_close_notify: bool = True,
) -> None:
    """Check a finished conversation: data both ways, agreement, clean close.

    Every parameter the peer reports must equal what our engine negotiated;
    parameters the peer does not report (``None``) are skipped.
    """
    negotiated = result.negotiated
    assert negotiated is not None, "our engine did not complete the handshake"
    assert report.handshake_ok, f"{report.peer} did not complete the handshake: {report.error}"
    assert report.error is None, f"{report.peer} reported an error: {report.error}"
    assert negotiated.version == 0x0304
    assert report.version in (None, "TLSv1.3")

    # Application data, echoed.
    assert result.sent == payload
    assert result.received == payload, "the echo differs from what we sent"
    if report.received is not None:
        assert report.received == payload, f"{report.peer} received other bytes than were sent"

    # Agreement on the negotiated parameters.
    if report.cipher_suite is not None:
        assert report.cipher_suite == negotiated.cipher_suite, (
            f"{report.peer} says suite {report.cipher_suite:#06x}, "
            f"we say {negotiated.cipher_suite!r}"
        )
    if report.group is not None:
        assert report.group == negotiated.group, (
            f"{report.peer} says group {report.group:#06x}, we say {negotiated.group!r}"
        )
    if report.alpn is not None:
        assert report.alpn == (negotiated.alpn_protocol or ""), (
            f"{report.peer} says ALPN {report.alpn!r}, we say {negotiated.alpn_protocol!r}"
        )
    if report.signature_scheme is not None and negotiated.signature_scheme is not None:
        assert report.signature_scheme == negotiated.signature_scheme
    if report.hello_retry is not None:
        assert report.hello_retry == result.hello_retry, (
            f"{report.peer} says hello retry {report.hello_retry}, the wire says "
            f"{result.hello_retry}"
        )

    # No alert other than close_notify either way.
    unexpected = [a for a in report.alerts_sent + report.alerts_received if a != (1, 0)]
    assert not unexpected, f"{report.peer} alerts (level, description): {unexpected}"

    # close_notify both ways.
    assert result.sent_close_notify, f"our close_notify was not sent: {result.close_error}"
    if both_close_notify:
        assert result.peer_close == "close_notify", f"peer closed by {result.peer_close}"
        if report.received_close_notify is not None:
            assert report.received_close_notify, f"{report.peer} saw no close_notify from us"
        if report.sent_close_notify is not None:
            assert report.sent_close_notify, f"{report.peer} did not send close_notify"
