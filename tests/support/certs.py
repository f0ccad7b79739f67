"""Certificate factories for tests.

Each factory returns a :class:`TestPKI`: a CA certificate, a server chain (leaf
first) for ``localhost`` and ``127.0.0.1``, and the leaf's PKCS#8 private key,
all PEM. Real peers (``openssl``, ``gnutls-*``) want files, so
:meth:`TestPKI.write` puts them in a directory.

Two kinds come from ``trustme`` (ECDSA P-256 and RSA-2048), two are built here
with ``cryptography`` (Ed25519 and ECDSA P-384), because trustme only issues
ECDSA P-256 and RSA keys. Note that trustme marks subjectAltName and
extendedKeyUsage critical (see DESIGN.md, "Known trap"); the chains built here
mark them non-critical, as the CA/Browser Forum profile expects.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Final, Literal, get_args

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "KEY_KINDS",
    "KeyKind",
    "PKIFiles",
    "TestPKI",
    "make_pki",
]

KeyKind = Literal["ecdsa-p256", "rsa-2048", "ed25519", "ecdsa-p384"]
"""Names of the server key types the factories can build."""

KEY_KINDS: Final[tuple[KeyKind, ...]] = get_args(KeyKind)

SERVER_NAME: Final = "localhost"
SERVER_IP: Final = "127.0.0.1"

_SigningKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
_KeyFactory = Callable[[], _SigningKey]


@dataclass(frozen=True, slots=True, kw_only=True)
class PKIFiles:
    """Paths of a :class:`TestPKI` written to disk."""

    ca: Path
    chain: Path
    key: Path


@dataclass(frozen=True, slots=True, kw_only=True)
class TestPKI:
    """A CA and one server certificate chain it issued, all PEM-encoded.

    Attributes:
        kind: the leaf key type.
        ca_pem: the self-signed root certificate (the trust anchor).
        chain_pem: the server chain, leaf first, without the root.
        key_pem: the leaf's private key, PKCS#8, unencrypted.
    """

    # A class named Test* would otherwise be collected by pytest.
    __test__: ClassVar[bool] = False

    kind: KeyKind
    ca_pem: bytes
    chain_pem: bytes
    key_pem: bytes

    @property
    def leaf(self) -> x509.Certificate:
        """The server's end-entity certificate."""
        return x509.load_pem_x509_certificates(self.chain_pem)[0]

    @property
    def ca(self) -> x509.Certificate:
        """The root certificate."""
        return x509.load_pem_x509_certificate(self.ca_pem)

    def write(self, directory: Path) -> PKIFiles:
        """Write ``ca.pem``, ``chain.pem`` and ``key.pem`` into ``directory``.

        Args:
            directory: an existing directory; files there with these names are
                replaced.

        Returns:
            The paths written.
        """
        files = PKIFiles(
            ca=directory / f"{self.kind}-ca.pem",
            chain=directory / f"{self.kind}-chain.pem",
            key=directory / f"{self.kind}-key.pem",
        )
        files.ca.write_bytes(self.ca_pem)
        files.chain.write_bytes(self.chain_pem)
        files.key.write_bytes(self.key_pem)
        files.key.chmod(0o600)
        return files


def make_pki(kind: KeyKind) -> TestPKI:
    """Build a fresh CA and a server chain for ``localhost``/``127.0.0.1``.

    Args:
        kind: which leaf key to issue.

    Returns:
        The new PKI. Each call generates new keys, so share it across tests.
    """
    if kind == "ecdsa-p256":
        return _trustme_pki(kind, trustme.KeyType.ECDSA)
    if kind == "rsa-2048":
        return _trustme_pki(kind, trustme.KeyType.RSA)
    if kind == "ed25519":
        return _built_pki(kind, ed25519.Ed25519PrivateKey.generate, hash_alg=None)
    if kind == "ecdsa-p384":
        return _built_pki(
            kind, lambda: ec.generate_private_key(ec.SECP384R1()), hash_alg=hashes.SHA384()
        )
    raise ValueError(f"unknown key kind {kind!r}; expected one of {KEY_KINDS}")


def _trustme_pki(kind: KeyKind, key_type: trustme.KeyType) -> TestPKI:
    ca = trustme.CA(key_type=key_type)
    leaf = ca.issue_cert(SERVER_NAME, SERVER_IP, key_type=key_type)
    # trustme writes "TraditionalOpenSSL" keys; the brief for peers is PKCS#8.
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    return TestPKI(
        kind=kind,
        ca_pem=ca.cert_pem.bytes(),
        chain_pem=b"".join(blob.bytes() for blob in leaf.cert_chain_pems),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def _built_pki(
    kind: KeyKind,
    generate: _KeyFactory,
    *,
    hash_alg: hashes.SHA256 | hashes.SHA384 | None,
) -> TestPKI:
    now = datetime.datetime.now(datetime.timezone.utc)
    not_before = now - datetime.timedelta(days=1)
    not_after = now + datetime.timedelta(days=30)

    ca_key = generate()
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "triotls tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"triotls test CA ({kind})"),
        ]
    )
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=False, cert_sign=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hash_alg)
    )

    leaf_key = generate()
    leaf_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True, cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName(SERVER_NAME),
                    x509.IPAddress(ipaddress.ip_address(SERVER_IP)),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hash_alg)
    )

    pem = serialization.Encoding.PEM
    return TestPKI(
        kind=kind,
        ca_pem=ca_cert.public_bytes(pem),
        chain_pem=leaf_cert.public_bytes(pem),
        key_pem=leaf_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


def _key_usage(*, digital_signature: bool, cert_sign: bool) -> x509.KeyUsage:
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
