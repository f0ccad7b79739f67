"""Revocation: a CRL in the trust store, a stapled OCSP response, must-staple.

Run it with ``python docs/examples/revocation.py``. Everything happens in
memory (``trio.testing.memory_stream_pair``); the CA, its CRL and its OCSP
responses are made on the spot with ``cryptography``.
"""

from __future__ import annotations

import datetime

import trio
import trio.testing
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from triotls import (
    AlertReceived,
    CertificateVerificationError,
    CertifiedKey,
    ClientConfig,
    ServerConfig,
    TLSStream,
    TrustStore,
    VerificationResult,
)

NOW = datetime.datetime.now(datetime.timezone.utc)
DAY = datetime.timedelta(days=1)


def make_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed CA that may sign certificates and CRLs."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Example CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + 365 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_server_key(
    ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, *, must_staple: bool = False
) -> CertifiedKey:
    """A certificate for localhost issued by ``ca``, optionally with must-staple."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + 90 * DAY)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
    )
    if must_staple:
        builder = builder.add_extension(
            x509.TLSFeature([x509.TLSFeatureType.status_request]), critical=False
        )
    return CertifiedKey([builder.sign(ca_key, hashes.SHA256())], key)


def make_crl(
    ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, revoked: x509.Certificate
) -> bytes:
    """A PEM CRL of ``ca`` that lists ``revoked``."""
    entry = (
        x509.RevokedCertificateBuilder()
        .serial_number(revoked.serial_number)
        .revocation_date(NOW - DAY)
        .build()
    )
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(NOW - DAY)
        .next_update(NOW + 7 * DAY)
        .add_revoked_certificate(entry)
        .sign(ca_key, hashes.SHA256())
    )
    return crl.public_bytes(serialization.Encoding.PEM)


def make_ocsp_response(
    leaf: x509.Certificate,
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    status: ocsp.OCSPCertStatus,
) -> bytes:
    """A DER OCSP response about ``leaf``, signed by its CA, good for a day."""
    revoked = status == ocsp.OCSPCertStatus.REVOKED
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=leaf,
            issuer=ca,
            algorithm=hashes.SHA1(),
            cert_status=status,
            this_update=NOW - DAY / 24,
            next_update=NOW + DAY,
            revocation_time=NOW - DAY if revoked else None,
            revocation_reason=x509.ReasonFlags.key_compromise if revoked else None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, ca)
    )
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


async def connect(
    client_config: ClientConfig, server_key: CertifiedKey
) -> tuple[VerificationResult | None, str]:
    """Handshake in memory; return what the client verified (or refused) and the server's fate."""
    client_transport, server_transport = trio.testing.memory_stream_pair()
    server = TLSStream(server_transport, ServerConfig(certificates=(server_key,)), server_side=True)
    client = TLSStream(client_transport, client_config, server_hostname="localhost")
    server_fate = "handshake completed"
    result: VerificationResult | None = None

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
            result = client.verification
        except CertificateVerificationError as exc:
            result = exc.result
    return result, server_fate


def describe(result: VerificationResult | None) -> str:
    """The flags, GnuTLS style, or "verified"."""
    assert result is not None  # verification is on in every config here
    return " | ".join(result.status.names) or "verified"


async def main() -> None:
    """Revoked by a CRL, stapled OCSP good and revoked, must-staple without a staple."""
    ca, ca_key = make_ca()
    server_key = make_server_key(ca, ca_key)
    leaf = server_key.chain[0]

    # A CRL goes into the trust store, next to the roots it belongs to.
    trust = TrustStore([ca]).with_crls(make_crl(ca, ca_key, leaf))
    result, fate = await connect(ClientConfig(trust=trust), server_key)
    print(f"crl: {describe(result)}; the server got: {fate}")

    # The server staples its CA's answer; the client asks by default.
    good = make_ocsp_response(leaf, ca, ca_key, ocsp.OCSPCertStatus.GOOD)
    stapled = server_key.with_ocsp_response(good)
    result, fate = await connect(ClientConfig(trust=TrustStore([ca]), ocsp="require"), stapled)
    assert result is not None
    print(f"ocsp good: {describe(result)}, staple received: {result.ocsp_response == good}")

    revoked = make_ocsp_response(leaf, ca, ca_key, ocsp.OCSPCertStatus.REVOKED)
    result, fate = await connect(
        ClientConfig(trust=TrustStore([ca])), server_key.with_ocsp_response(revoked)
    )
    assert result is not None
    print(f"ocsp revoked: {describe(result)}; the server got: {fate}")
    print(f"ocsp revoked: {result.reasons[0]}")

    # A must-staple certificate served without a staple.
    strict = make_server_key(ca, ca_key, must_staple=True)
    result, fate = await connect(ClientConfig(trust=TrustStore([ca])), strict)
    print(f"must-staple: {describe(result)}; the server got: {fate}")


if __name__ == "__main__":
    trio.run(main)
