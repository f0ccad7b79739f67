"""The three verification modes: refuse during the handshake, report after it, or decide.

Run it with ``python docs/examples/verification.py``. Everything happens in
memory (``trio.testing.memory_stream_pair``) with throwaway certificates.
"""

from __future__ import annotations

import trio
import trio.testing
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from triotls import (
    AlertReceived,
    CertificateVerificationError,
    CertifiedKey,
    ClientConfig,
    ServerConfig,
    TLSStream,
    TrustStore,
    VerificationResult,
    VerificationStatus,
)
from triotls._throwaway import ThrowawayPKI, make_throwaway_pki


async def connect(
    client_config: ClientConfig, pki: ThrowawayPKI, server_hostname: str
) -> tuple[TLSStream, CertificateVerificationError | None, str]:
    """Handshake with an in-memory server for ``pki``.

    Returns the client stream, the client's verification error if any, and
    how the server's handshake ended.
    """
    client_transport, server_transport = trio.testing.memory_stream_pair()
    server_config = ServerConfig(certificates=(CertifiedKey.from_pem(pki.chain_pem, pki.key_pem),))
    server = TLSStream(server_transport, server_config, server_side=True)
    client = TLSStream(client_transport, client_config, server_hostname=server_hostname)
    client_error: CertificateVerificationError | None = None
    server_fate = "handshake completed"

    async def serve() -> None:
        nonlocal server_fate
        try:
            await server.do_handshake()
        except AlertReceived as exc:
            server_fate = str(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        try:
            await client.do_handshake()
        except CertificateVerificationError as exc:
            client_error = exc
    return client, client_error, server_fate


def names(status: VerificationStatus) -> str:
    """``INVALID | EXPIRED``, the way GnuTLS headers write flags."""
    return " | ".join(status.names) or "0"


async def required_mode(pki: ThrowawayPKI) -> None:
    """The default: a chain that does not verify aborts the handshake with an alert."""
    config = ClientConfig(trust=TrustStore.from_pem(pki.ca_pem))
    # The certificate is for localhost; ask for another name.
    _client, error, server_fate = await connect(config, pki, "example.org")
    assert error is not None
    print(f"required: {type(error).__name__}, status {names(error.status)}")
    print(f"required: {str(error)[:70]}...")
    print(f"required: sent {error.sent_alert.name}; the server got: {server_fate}")


async def report_mode(pki: ThrowawayPKI) -> None:
    """Like gnutls_certificate_verify_peers2 after the handshake: look, then decide."""
    config = ClientConfig(trust=TrustStore.from_pem(pki.ca_pem), verify_mode="report")
    client, _error, server_fate = await connect(config, pki, "example.org")
    result = client.verification
    assert result is not None  # verify_peer is on: a completed handshake has a result
    print(f"report: the server says: {server_fate}")
    print(f"report: status {names(result.status)} ({result.status.describe()})")
    if result.status & VerificationStatus.UNEXPECTED_OWNER:
        print(f"report: {result.reasons[-1]}")
    if not result.is_valid:
        print(f"report: not trusted, closing; the default mode would have sent {result.alert.name}")
        await client.aclose()


async def pinning_callback(pinned: ThrowawayPKI, other: ThrowawayPKI) -> None:
    """Accept a certificate from a CA we do not trust, if its leaf is the pinned one."""
    leaf = x509.load_pem_x509_certificate(pinned.chain_pem)
    expected = leaf.fingerprint(hashes.SHA256())

    def accept_pinned(result: VerificationResult) -> bool:
        # Only the missing trust anchor is forgiven: an expired or
        # wrong-name certificate is still refused.
        forgiven = VerificationStatus.INVALID | VerificationStatus.SIGNER_NOT_FOUND
        is_pinned = result.chain[0].fingerprint(hashes.SHA256()) == expected
        print(f"callback: status {names(result.status)}, pinned leaf: {is_pinned}")
        return result.status & ~forgiven == 0 and is_pinned

    # This client trusts some other CA: neither server's chain leads to it.
    config = ClientConfig(
        trust=TrustStore.from_pem(make_throwaway_pki().ca_pem), verify_callback=accept_pinned
    )
    client, _error, _fate = await connect(config, pinned, "localhost")
    accepted = client.verification
    assert accepted is not None  # the handshake completed
    print(f"callback: accepted; stream.verification keeps {names(accepted.status)}")
    _client, error, _fate = await connect(config, other, "localhost")
    assert error is not None
    print(f"callback: refused the other server, sent {error.sent_alert.name}")


async def main() -> None:
    pki = make_throwaway_pki()
    with trio.fail_after(30):
        await required_mode(pki)
        await report_mode(pki)
        await pinning_callback(pki, make_throwaway_pki())


if __name__ == "__main__":
    trio.run(main)
