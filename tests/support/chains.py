"""Certificate chains for verification tests, good and bad, built at a fixed moment.

Everything is issued with ``cryptography``'s CertificateBuilder around
:data:`NOW`, so a test picks the verification time with a ``FixedClock``.
:func:`issue` makes any certificate; :func:`root`, :func:`intermediate` and
:func:`leaf` fill in what a well-formed CA or server certificate has (CA/Browser
Forum profile: SAN and EKU non-critical, keyUsage and basicConstraints
critical, key identifiers), so a test changes only the fault it is about.

cryptography refuses to *sign* with SHA-1, so :func:`resigned_with_sha1`
builds such a certificate by hand: it swaps the signature AlgorithmIdentifier
in the DER and signs the new TBSCertificate with the issuer's key.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from triotls.config import CertifiedKey, TrustStore

__all__ = [
    "DAY",
    "HOST",
    "IP",
    "NOW",
    "Chain",
    "Issued",
    "ec_key",
    "intermediate",
    "issue",
    "key_usage",
    "leaf",
    "resigned_with_sha1",
    "root",
]

NOW: Final = datetime.datetime(2025, 6, 1, 12, 0, tzinfo=datetime.timezone.utc)
DAY: Final = datetime.timedelta(days=1)
HOST: Final = "localhost"
IP: Final = "127.0.0.1"

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: SigningKey


@dataclass(frozen=True)
class Chain:
    """What a server sends (leaf first) with the leaf's key, and what the client trusts."""

    certificates: tuple[x509.Certificate, ...]
    key: SigningKey
    anchors: tuple[x509.Certificate, ...]

    @classmethod
    def of(cls, *served: Issued, anchors: Sequence[Issued | x509.Certificate]) -> Chain:
        """The chain ``served`` (leaf first), trusting ``anchors``."""
        return cls(
            certificates=tuple(issued.cert for issued in served),
            key=served[0].key,
            anchors=tuple(a.cert if isinstance(a, Issued) else a for a in anchors),
        )

    @property
    def trust(self) -> TrustStore:
        """A trust store holding the anchors."""
        return TrustStore(self.anchors)

    @property
    def certified(self) -> CertifiedKey:
        """The served chain and the leaf's key, for a ServerConfig."""
        return CertifiedKey(self.certificates, self.key)


def ec_key() -> ec.EllipticCurvePrivateKey:
    """A fresh ECDSA P-256 key."""
    return ec.generate_private_key(ec.SECP256R1())


def key_usage(*, digital_signature: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    """A keyUsage with only the given bits (cert_sign also sets cRLSign)."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


_CA_USAGE: Final = key_usage(cert_sign=True)
_LEAF_USAGE: Final = key_usage(digital_signature=True)
_DEFAULT_SAN: Final[tuple[x509.GeneralName, ...]] = (
    x509.DNSName(HOST),
    x509.IPAddress(ipaddress.ip_address(IP)),
)


def issue(
    subject: str,
    *,
    key: SigningKey,
    issuer: Issued | None,
    ca: bool | None,
    path_length: int | None = None,
    usage: x509.KeyUsage | None = None,
    eku: Sequence[x509.ObjectIdentifier] | None = None,
    san: Sequence[x509.GeneralName] | None = None,
    not_before: datetime.datetime = NOW - DAY,
    not_after: datetime.datetime = NOW + 30 * DAY,
    name_constraints: x509.NameConstraints | None = None,
    extra: Sequence[tuple[x509.ExtensionType, bool]] = (),
    critical_san_and_eku: bool = False,
    aki: bool = True,
    critical_key_ids: bool = False,
    hash_alg: hashes.SHA256 | hashes.SHA384 | None = None,
) -> Issued:
    """Build one certificate; ``issuer=None`` makes it self-signed.

    ``critical_san_and_eku`` marks subjectAltName and extendedKeyUsage
    critical, as trustme does; ``critical_key_ids`` marks the key identifiers
    critical, which the web PKI profile forbids.
    """
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    signer = key if issuer is None else issuer.key
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name if issuer is None else issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=critical_key_ids
        )
    )
    if aki:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
            critical=critical_key_ids,
        )
    if ca is not None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length), critical=True
        )
    if usage is not None:
        builder = builder.add_extension(usage, critical=True)
    if eku is not None:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(list(eku)), critical=critical_san_and_eku
        )
    if san is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(list(san)), critical=critical_san_and_eku
        )
    if name_constraints is not None:
        builder = builder.add_extension(name_constraints, critical=True)
    for ext, critical in extra:
        builder = builder.add_extension(ext, critical=critical)
    if isinstance(signer, ed25519.Ed25519PrivateKey):
        return Issued(cert=builder.sign(signer, None), key=key)
    return Issued(cert=builder.sign(signer, hash_alg or hashes.SHA256()), key=key)


def root(subject: str = "Test Root", **changes: Any) -> Issued:
    """A self-signed CA; ``changes`` override :func:`issue`'s arguments."""
    changes.setdefault("key", ec_key())
    changes.setdefault("ca", True)
    changes.setdefault("usage", _CA_USAGE)
    return issue(subject, issuer=None, **changes)


def intermediate(issuer: Issued, subject: str = "Test Intermediate", **changes: Any) -> Issued:
    """A CA issued by ``issuer``."""
    changes.setdefault("key", ec_key())
    changes.setdefault("ca", True)
    changes.setdefault("usage", _CA_USAGE)
    return issue(subject, issuer=issuer, **changes)


def leaf(issuer: Issued, **changes: Any) -> Issued:
    """A server certificate for localhost and 127.0.0.1, issued by ``issuer``."""
    changes.setdefault("key", ec_key())
    changes.setdefault("ca", False)
    changes.setdefault("usage", _LEAF_USAGE)
    changes.setdefault("eku", (ExtendedKeyUsageOID.SERVER_AUTH,))
    changes.setdefault("san", _DEFAULT_SAN)
    return issue(HOST, issuer=issuer, **changes)


def resigned_with_sha1(issued: Issued, issuer: Issued) -> Issued:
    """``issued`` with its signature replaced by one over SHA-1 from ``issuer``'s key."""
    der = issued.cert.public_bytes(serialization.Encoding.DER)
    tbs, _algorithm, _signature = _children(der)
    tbs_fields = _children(tbs)
    signer = issuer.key
    if isinstance(signer, rsa.RSAPrivateKey):
        algorithm = _SHA1_WITH_RSA
        tbs_fields[2] = algorithm  # TBSCertificate.signature, after version and serial
        new_tbs = _der(0x30, b"".join(tbs_fields))
        signature = signer.sign(new_tbs, padding.PKCS1v15(), hashes.SHA1())
    elif isinstance(signer, ec.EllipticCurvePrivateKey):
        algorithm = _ECDSA_WITH_SHA1
        tbs_fields[2] = algorithm
        new_tbs = _der(0x30, b"".join(tbs_fields))
        signature = signer.sign(new_tbs, ec.ECDSA(hashes.SHA1()))
    else:
        raise TypeError("SHA-1 signatures need an RSA or ECDSA issuer")
    body = new_tbs + algorithm + _der(0x03, b"\x00" + signature)
    return Issued(cert=x509.load_der_x509_certificate(_der(0x30, body)), key=issued.key)


# AlgorithmIdentifiers: sha1WithRSAEncryption (with NULL parameters) and
# ecdsa-with-SHA1 (RFC 3279 §2.2.1, §2.2.3).
_SHA1_WITH_RSA: Final = bytes.fromhex("300d06092a864886f70d0101050500")
_ECDSA_WITH_SHA1: Final = bytes.fromhex("300906072a8648ce3d0401")


def _children(der: bytes) -> list[bytes]:
    """The encoded elements of the SEQUENCE ``der`` (which must be exactly one)."""
    start, end = _header(der, 0)
    assert end == len(der), "trailing bytes after the SEQUENCE"  # our own encodings
    out: list[bytes] = []
    position = start
    while position < end:
        _, element_end = _header(der, position)
        out.append(der[position:element_end])
        position = element_end
    return out


def _header(der: bytes, position: int) -> tuple[int, int]:
    """(start of contents, end of element) of the DER element at ``position``."""
    length = der[position + 1]
    start = position + 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(der[start : start + count], "big")
        start += count
    return start, start + length


def _der(tag: int, contents: bytes) -> bytes:
    size = len(contents)
    if size < 0x80:
        return bytes([tag, size]) + contents
    encoded = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(encoded)]) + encoded + contents
