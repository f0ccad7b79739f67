"""Revocation data for tests: CRLs and OCSP responses built with ``cryptography``.

Everything is dated around :data:`tests.support.chains.NOW`, like the chains,
so a test picks the verification time with a ``FixedClock``. The builders sign
with whatever key they are given, which is how a test makes a CRL or a
response that does *not* come from the issuer it names.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.support.chains import DAY, NOW, Issued, SigningKey, ec_key, issue, key_usage

__all__ = [
    "GOOD",
    "REVOKED",
    "UNKNOWN",
    "crl",
    "must_staple",
    "ocsp_response",
    "responder",
]

GOOD = ocsp.OCSPCertStatus.GOOD
REVOKED = ocsp.OCSPCertStatus.REVOKED
UNKNOWN = ocsp.OCSPCertStatus.UNKNOWN


def crl(
    issuer: Issued,
    revoked: Sequence[x509.Certificate] = (),
    *,
    last_update: datetime.datetime = NOW - DAY,
    next_update: datetime.datetime | None = NOW + 7 * DAY,
    signer: SigningKey | None = None,
    aki: bool = True,
    extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
) -> x509.CertificateRevocationList:
    """A CRL in ``issuer``'s name listing ``revoked``, signed by ``signer`` (default: issuer)."""
    key = signer if signer is not None else issuer.key
    builder = x509.CertificateRevocationListBuilder().issuer_name(issuer.cert.subject)
    builder = builder.last_update(last_update)
    if next_update is not None:
        builder = builder.next_update(next_update)
    if aki:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    builder = builder.add_extension(x509.CRLNumber(1), critical=False)
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical=critical)
    for cert in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(cert.serial_number)
            .revocation_date(NOW - 2 * DAY)
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
            .build()
        )
    return builder.sign(key, None if _is_eddsa(key) else hashes.SHA256())


def ocsp_response(
    leaf: x509.Certificate,
    issuer: Issued,
    *,
    status: ocsp.OCSPCertStatus = GOOD,
    this_update: datetime.datetime = NOW - DAY / 2,
    next_update: datetime.datetime | None = NOW + 3 * DAY,
    signed_by: Issued | None = None,
    signing_key: SigningKey | None = None,
    about_issuer: x509.Certificate | None = None,
    cert_id_hash: hashes.HashAlgorithm | None = None,
) -> bytes:
    """A DER OCSP response about ``leaf``.

    Args:
        leaf: the certificate the response is about.
        issuer: its issuer.
        status: what the response says.
        this_update: when the status was known.
        next_update: when newer information will be there (None: always).
        signed_by: the responder (default: the issuer); a delegated one is
            included in the response's certificates.
        signing_key: the key that really signs, when not the responder's.
        about_issuer: the issuer certificate the CertID names, when it
            should name another one.
        cert_id_hash: the CertID's hash (default SHA-1, as most CAs use).
    """
    responder_issued = signed_by if signed_by is not None else issuer
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=leaf,
        issuer=about_issuer if about_issuer is not None else issuer.cert,
        algorithm=cert_id_hash if cert_id_hash is not None else hashes.SHA1(),
        cert_status=status,
        this_update=this_update,
        next_update=next_update,
        revocation_time=NOW - 2 * DAY if status == REVOKED else None,
        revocation_reason=x509.ReasonFlags.key_compromise if status == REVOKED else None,
    )
    if signing_key is None:
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, responder_issued.cert)
        key = responder_issued.key
    else:
        # An impostor: a certificate with the responder's name and another
        # key, named by that name (cryptography signs only with the key of
        # the certificate given as the responder).
        impostor = issue(
            responder_issued.cert.subject.rfc4514_string().removeprefix("CN="),
            key=signing_key,
            issuer=None,
            ca=True,
        )
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.NAME, impostor.cert)
        key = signing_key
    if signed_by is not None:
        builder = builder.certificates([signed_by.cert])
    response = builder.sign(key, None if _is_eddsa(key) else hashes.SHA256())
    return response.public_bytes(serialization.Encoding.DER)


def responder(issuer: Issued, *, eku: bool = True) -> Issued:
    """A responder ``issuer`` delegates OCSP signing to (id-kp-OCSPSigning unless ``eku=False``)."""
    return issue(
        "Test OCSP Responder",
        key=ec_key(),
        issuer=issuer,
        ca=False,
        usage=key_usage(digital_signature=True),
        eku=(ExtendedKeyUsageOID.OCSP_SIGNING if eku else ExtendedKeyUsageOID.CLIENT_AUTH,),
    )


def must_staple() -> tuple[x509.ExtensionType, bool]:
    """The TLS feature extension with status_request (RFC 7633), for ``issue(extra=...)``."""
    return (x509.TLSFeature([x509.TLSFeatureType.status_request]), False)


def _is_eddsa(key: SigningKey) -> bool:
    return isinstance(key, ed25519.Ed25519PrivateKey)
