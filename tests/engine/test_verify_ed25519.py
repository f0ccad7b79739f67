"""verify_chain with Ed25519/Ed448 chains: the RFC 5280 fallback in verify.py.

cryptography's web-PKI verifier refuses EdDSA issuer keys, so chains with an
Ed25519/Ed448 signature go through our own path validator. These tests build
chains with ``cryptography``'s CertificateBuilder at a fixed moment and check
that good chains pass (returning the whole path) and that every kind of bad
chain is refused with the alert and a message that says what failed.

Shapes:

* ``ed25519-root``: Ed25519 root, Ed25519 leaf (fallback);
* ``ed25519-intermediate``: Ed25519 root, Ed25519 intermediate, Ed25519 leaf
  (fallback);
* ``ecdsa-root``: ECDSA P-256 root, Ed25519 leaf. cryptography accepts an
  EdDSA end-entity key under an ECDSA issuer, so this one stays on its path.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509 import verification as xv
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.engine_pairs import FixedClock, handshake
from triotls.config import CertifiedKey, ClientConfig, ServerConfig, TrustStore
from triotls.engine import ClientConnection, ServerConnection
from triotls.engine.enums import AlertDescription
from triotls.engine.verify import Purpose, VerifiedChain, verify_chain
from triotls.errors import CertificateVerificationError

NOW: Final = datetime.datetime(2025, 6, 1, 12, 0, tzinfo=datetime.timezone.utc)
DAY: Final = datetime.timedelta(days=1)
HOST: Final = "localhost"
IP: Final = "127.0.0.1"
UNKNOWN_CRITICAL_OID: Final = x509.ObjectIdentifier("1.3.6.1.4.1.55555.1")

Shape = Literal["ed25519-root", "ed25519-intermediate", "ecdsa-root"]
EDDSA_SHAPES: Final[list[Shape]] = ["ed25519-root", "ed25519-intermediate"]
ALL_SHAPES: Final[list[Shape]] = [*EDDSA_SHAPES, "ecdsa-root"]

SigningKey = ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey | ec.EllipticCurvePrivateKey
SubjectKey = SigningKey | rsa.RSAPrivateKey

BAD: Final = AlertDescription.BAD_CERTIFICATE
EXPIRED: Final = AlertDescription.CERTIFICATE_EXPIRED
UNKNOWN_CA: Final = AlertDescription.UNKNOWN_CA


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: SubjectKey


def ed() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def issue(
    subject: str,
    *,
    key: SubjectKey,
    issuer: Issued | None = None,
    ca: bool | None,
    path_length: int | None = None,
    key_usage: x509.KeyUsage | None = None,
    eku: Sequence[x509.ObjectIdentifier] | None = None,
    san: Sequence[x509.GeneralName] | None = None,
    not_before: datetime.datetime = NOW - DAY,
    not_after: datetime.datetime = NOW + 30 * DAY,
    name_constraints: x509.NameConstraints | None = None,
    aki: bool = True,
    extra: Sequence[tuple[x509.ExtensionType, bool]] = (),
    hash_alg: hashes.SHA224 | hashes.SHA256 | None = None,
) -> Issued:
    """Build one certificate; ``issuer=None`` makes it self-signed."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    signer_key = key if issuer is None else issuer.key
    assert not isinstance(signer_key, rsa.RSAPrivateKey)  # tests sign with EdDSA/ECDSA only
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name if issuer is None else issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if ca is not None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length), critical=True
        )
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(san)), critical=False)
    if name_constraints is not None:
        builder = builder.add_extension(name_constraints, critical=True)
    if aki:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()),
            critical=False,
        )
    for ext, critical in extra:
        builder = builder.add_extension(ext, critical=critical)
    if hash_alg is None and isinstance(signer_key, ec.EllipticCurvePrivateKey):
        hash_alg = hashes.SHA256()
    return Issued(cert=builder.sign(signer_key, hash_alg), key=key)


def usage(*, digital_signature: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
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


CA_USAGE: Final = usage(cert_sign=True)
LEAF_USAGE: Final = usage(digital_signature=True)
SERVER_AUTH: Final = (ExtendedKeyUsageOID.SERVER_AUTH,)
DEFAULT_SAN: Final[tuple[x509.GeneralName, ...]] = (
    x509.DNSName(HOST),
    x509.IPAddress(ipaddress.ip_address(IP)),
)


def root(subject: str = "Test Root", **kw: Any) -> Issued:
    """A self-signed CA; ``kw`` overrides :func:`issue`'s arguments."""
    kw.setdefault("key", ed())
    kw.setdefault("ca", True)
    kw.setdefault("key_usage", CA_USAGE)
    return issue(subject, **kw)


def intermediate(issuer: Issued, subject: str = "Test Intermediate", **kw: Any) -> Issued:
    """A CA issued by ``issuer``."""
    kw.setdefault("key", ed())
    kw.setdefault("ca", True)
    kw.setdefault("key_usage", CA_USAGE)
    return issue(subject, issuer=issuer, **kw)


def leaf(issuer: Issued, **kw: Any) -> Issued:
    """A server certificate for localhost/127.0.0.1 issued by ``issuer``."""
    kw.setdefault("key", ed())
    kw.setdefault("ca", False)
    kw.setdefault("key_usage", LEAF_USAGE)
    kw.setdefault("eku", SERVER_AUTH)
    kw.setdefault("san", DEFAULT_SAN)
    return issue(HOST, issuer=issuer, **kw)


@dataclass(frozen=True)
class Pki:
    """A chain as the peer sends it (leaf first, no root) and the root it leads to."""

    chain: tuple[x509.Certificate, ...]
    root: x509.Certificate

    @property
    def trust(self) -> TrustStore:
        return TrustStore([self.root])

    @property
    def path(self) -> tuple[x509.Certificate, ...]:
        return (*self.chain, self.root)


def build(shape: Shape) -> Pki:
    if shape == "ed25519-root":
        anchor = root()
        return Pki(chain=(leaf(anchor).cert,), root=anchor.cert)
    if shape == "ed25519-intermediate":
        anchor = root()
        middle = intermediate(anchor)
        return Pki(chain=(leaf(middle).cert, middle.cert), root=anchor.cert)
    anchor = root(key=ec.generate_private_key(ec.SECP256R1()))
    return Pki(chain=(leaf(anchor).cert,), root=anchor.cert)


def verify(
    chain: Sequence[x509.Certificate],
    trust: TrustStore | xv.Store,
    *,
    name: str | None = HOST,
    purpose: Purpose = "server",
    when: datetime.datetime = NOW,
    max_depth: int = 8,
) -> VerifiedChain:
    return verify_chain(
        chain,
        trust,
        purpose=purpose,
        server_name=name,
        now=when.timestamp(),
        max_depth=max_depth,
    )


def refused(
    chain: Sequence[x509.Certificate],
    trust: TrustStore | xv.Store,
    alert: AlertDescription,
    fragment: str,
    *,
    name: str | None = HOST,
    purpose: Purpose = "server",
    when: datetime.datetime = NOW,
    max_depth: int = 8,
) -> CertificateVerificationError:
    """Assert that verification fails with ``alert`` and a message matching ``fragment``."""
    with pytest.raises(CertificateVerificationError, match=fragment) as info:
        verify(chain, trust, name=name, purpose=purpose, when=when, max_depth=max_depth)
    assert info.value.sent_alert == alert
    return info.value


def tampered(cert: x509.Certificate) -> x509.Certificate:
    """``cert`` with one bit of its signature (the last bytes of the DER) flipped."""
    der = cert.public_bytes(serialization.Encoding.DER)
    return x509.load_der_x509_certificate(der[:-1] + bytes([der[-1] ^ 0x01]))


# --- good chains ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_good_chain_verifies_dns_name_and_returns_the_path(shape: Shape) -> None:
    pki = build(shape)
    assert verify(pki.chain, pki.trust).chain == pki.path


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_good_chain_verifies_ip_address(shape: Shape) -> None:
    pki = build(shape)
    assert verify(pki.chain, pki.trust, name=IP).chain == pki.path


@pytest.mark.parametrize("shape", ALL_SHAPES)
def test_good_chain_verifies_without_a_name(shape: Shape) -> None:
    pki = build(shape)
    assert verify(pki.chain, pki.trust, name=None).chain == pki.path


def test_ed448_chain_verifies() -> None:
    anchor = root(key=ed448.Ed448PrivateKey.generate())
    end = leaf(anchor, key=ed448.Ed448PrivateKey.generate())
    assert verify([end.cert], TrustStore([anchor.cert])).chain == (end.cert, anchor.cert)


def test_ed25519_root_over_ecdsa_intermediate_verifies() -> None:
    anchor = root()
    middle = intermediate(anchor, key=ec.generate_private_key(ec.SECP384R1()))
    end = leaf(middle, key=ec.generate_private_key(ec.SECP256R1()))
    path = verify([end.cert, middle.cert], TrustStore([anchor.cert])).chain
    assert path == (end.cert, middle.cert, anchor.cert)


def test_client_purpose_accepts_a_client_auth_leaf() -> None:
    anchor = root()
    end = leaf(anchor, eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    result = verify([end.cert], TrustStore([anchor.cert]), name=None, purpose="client")
    assert result.chain == (end.cert, anchor.cert)


def test_chain_that_includes_the_root_ends_at_the_trusted_root() -> None:
    anchor = root()
    end = leaf(anchor)
    assert verify([end.cert, anchor.cert], TrustStore([anchor.cert])).chain == (
        end.cert,
        anchor.cert,
    )


def test_intermediates_in_any_order_verify() -> None:
    anchor = root()
    upper = intermediate(anchor, "Upper")
    lower = intermediate(upper, "Lower")
    end = leaf(lower)
    path = verify([end.cert, upper.cert, lower.cert], TrustStore([anchor.cert])).chain
    assert path == (end.cert, lower.cert, upper.cert, anchor.cert)


def test_path_building_passes_over_a_same_named_root_with_another_key() -> None:
    decoy = root()
    anchor = root()
    end = leaf(anchor, aki=False)  # no AKI: the decoy's name matches, its key does not
    path = verify([end.cert], TrustStore([decoy.cert, anchor.cert])).chain
    assert path == (end.cert, anchor.cert)


def test_path_length_within_the_constraint_verifies() -> None:
    anchor = root(path_length=1)
    middle = intermediate(anchor, path_length=0)
    end = leaf(middle)
    assert verify([end.cert, middle.cert], TrustStore([anchor.cert])).chain[-1] == anchor.cert


def test_issuer_without_key_usage_may_issue() -> None:
    # RFC 5280 §4.2.1.3: keyCertSign is required only when keyUsage is present.
    anchor = root()
    middle = intermediate(anchor, key_usage=None)
    end = leaf(middle)
    assert verify([end.cert, middle.cert], TrustStore([anchor.cert])).chain[1] == middle.cert


def test_ecdsa_root_with_ed25519_leaf_stays_on_cryptographys_verifier() -> None:
    # A bare cryptography Store is enough: the fallback (which needs the
    # anchors themselves) is not involved.
    pki = build("ecdsa-root")
    assert verify(pki.chain, xv.Store([pki.root])).chain == pki.path


# --- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", EDDSA_SHAPES)
def test_wrong_host_is_bad_certificate(shape: Shape) -> None:
    pki = build(shape)
    refused(pki.chain, pki.trust, BAD, "does not match 'example.com'", name="example.com")


@pytest.mark.parametrize("shape", EDDSA_SHAPES)
def test_wrong_ip_address_is_bad_certificate(shape: Shape) -> None:
    pki = build(shape)
    refused(pki.chain, pki.trust, BAD, "does not match '127.0.0.2'", name="127.0.0.2")


def test_wrong_host_on_cryptographys_path_is_bad_certificate() -> None:
    pki = build("ecdsa-root")
    refused(pki.chain, pki.trust, BAD, "did not verify", name="example.com")


def _wildcard_pki(pattern: str) -> tuple[list[x509.Certificate], TrustStore]:
    anchor = root()
    end = leaf(anchor, san=[x509.DNSName(pattern)])
    return [end.cert], TrustStore([anchor.cert])


@pytest.mark.parametrize("host", ["a.example.com", "A.Example.COM"])
def test_wildcard_matches_one_left_most_label(host: str) -> None:
    chain, trust = _wildcard_pki("*.example.com")
    assert verify(chain, trust, name=host).chain[0] == chain[0]


@pytest.mark.parametrize(
    ("pattern", "host"),
    [
        ("*.example.com", "example.com"),  # the wildcard needs a label
        ("*.example.com", "a.b.example.com"),  # ... and covers exactly one
        ("f*.example.com", "foo.example.com"),  # no partial-label wildcards
        ("*oo.example.com", "foo.example.com"),
        ("a.*.example.com", "a.b.example.com"),  # only the left-most label
        ("*.com", "example.com"),  # not a whole top-level domain
        ("*.example.com", "*.example.com"),  # a reference name is never a pattern
    ],
)
def test_wildcard_edge_cases_do_not_match(pattern: str, host: str) -> None:
    chain, trust = _wildcard_pki(pattern)
    refused(chain, trust, BAD, "does not match", name=host)


def test_dns_names_match_case_insensitively() -> None:
    chain, trust = _wildcard_pki("LocalHost")
    assert verify(chain, trust, name="localHOST").chain[0] == chain[0]


def test_common_name_is_not_consulted() -> None:
    anchor = root()
    end = leaf(anchor, san=[x509.DNSName("other.example")])  # CN is still "localhost"
    refused([end.cert], TrustStore([anchor.cert]), BAD, "does not match 'localhost'")


def test_ip_literal_does_not_match_a_dns_entry_spelling_it() -> None:
    anchor = root()
    end = leaf(anchor, san=[x509.DNSName(IP)])
    refused([end.cert], TrustStore([anchor.cert]), BAD, "does not match '127.0.0.1'", name=IP)


def test_leaf_without_subject_alt_name_is_refused() -> None:
    anchor = root()
    end = leaf(anchor, san=None)
    refused([end.cert], TrustStore([anchor.cert]), BAD, "has no subjectAltName", name=None)


# --- validity ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", EDDSA_SHAPES)
def test_expired_leaf_is_certificate_expired(shape: Shape) -> None:
    pki = build(shape)
    refused(pki.chain, pki.trust, EXPIRED, "'CN=localhost' has expired", when=NOW + 31 * DAY)


@pytest.mark.parametrize("shape", EDDSA_SHAPES)
def test_not_yet_valid_leaf_is_certificate_expired(shape: Shape) -> None:
    pki = build(shape)
    refused(pki.chain, pki.trust, EXPIRED, "'CN=localhost' is not yet valid", when=NOW - 2 * DAY)


def test_expired_leaf_on_cryptographys_path_is_certificate_expired() -> None:
    pki = build("ecdsa-root")
    refused(pki.chain, pki.trust, EXPIRED, "did not verify", when=NOW + 31 * DAY)


def test_expired_intermediate_is_certificate_expired() -> None:
    anchor = root()
    middle = intermediate(anchor, not_after=NOW - DAY / 2)
    end = leaf(middle)
    refused(
        [end.cert, middle.cert],
        TrustStore([anchor.cert]),
        EXPIRED,
        "'CN=Test Intermediate' has expired",
    )


def test_expired_root_is_certificate_expired() -> None:
    anchor = root(not_after=NOW - DAY / 2)
    end = leaf(anchor)
    refused([end.cert], TrustStore([anchor.cert]), EXPIRED, "'CN=Test Root' has expired")


# --- path building -------------------------------------------------------------------------


@pytest.mark.parametrize("shape", EDDSA_SHAPES)
def test_unknown_ca_is_unknown_ca(shape: Shape) -> None:
    pki = build(shape)
    stranger = TrustStore([root("Some Other Root").cert])
    refused(pki.chain, stranger, UNKNOWN_CA, "no issuer of .* is among")


def test_unknown_ca_with_the_same_name_is_unknown_ca() -> None:
    pki = build("ed25519-root")
    # Same name "Test Root", another key: the leaf's authorityKeyIdentifier
    # rules it out as a candidate before any signature is tried.
    impostor = TrustStore([root().cert])
    refused(pki.chain, impostor, UNKNOWN_CA, "no issuer of the certificate for 'CN=localhost'")


def test_missing_intermediate_is_unknown_ca() -> None:
    pki = build("ed25519-intermediate")
    refused(
        pki.chain[:1],
        pki.trust,
        UNKNOWN_CA,
        r"no issuer of the certificate for 'CN=localhost' \(issued by 'CN=Test Intermediate'\)",
    )


def test_intermediates_that_issue_each_other_do_not_loop() -> None:
    first_key, second_key = ed(), ed()
    placeholder = Issued(cert=root("B").cert, key=second_key)
    first = intermediate(placeholder, "A", key=first_key)  # "A" issued by "B"
    second = intermediate(Issued(cert=first.cert, key=first_key), "B", key=second_key)
    end = leaf(first)
    chain = [end.cert, first.cert, second.cert]
    refused(chain, TrustStore([root().cert]), UNKNOWN_CA, "no issuer of")


def test_path_longer_than_max_depth_is_refused() -> None:
    anchor = root()
    upper = intermediate(anchor, "Upper")
    lower = intermediate(upper, "Lower")
    end = leaf(lower)
    chain = [end.cert, lower.cert, upper.cert]
    refused(chain, TrustStore([anchor.cert]), UNKNOWN_CA, "more than 1 intermediates", max_depth=1)


def test_bare_cryptography_store_cannot_verify_an_eddsa_chain() -> None:
    pki = build("ed25519-root")
    refused(pki.chain, xv.Store([pki.root]), UNKNOWN_CA, "bare cryptography Store")


# --- signatures and algorithms -------------------------------------------------------------


@pytest.mark.parametrize("shape", EDDSA_SHAPES)
def test_tampered_leaf_signature_is_refused(shape: Shape) -> None:
    pki = build(shape)
    chain = (tampered(pki.chain[0]), *pki.chain[1:])
    refused(chain, pki.trust, UNKNOWN_CA, "signature on the certificate for 'CN=localhost'")


def test_tampered_intermediate_signature_is_refused() -> None:
    pki = build("ed25519-intermediate")
    chain = (pki.chain[0], tampered(pki.chain[1]))
    refused(chain, pki.trust, UNKNOWN_CA, "signature on the certificate for 'CN=Test Inter")


def test_tampered_leaf_signature_on_cryptographys_path_is_refused() -> None:
    pki = build("ecdsa-root")
    refused([tampered(pki.chain[0])], pki.trust, UNKNOWN_CA, "did not verify")


def test_sha224_signature_under_an_ed25519_root_is_refused() -> None:
    anchor = root()
    middle = intermediate(anchor, key=ec.generate_private_key(ec.SECP256R1()))
    end = leaf(middle, hash_alg=hashes.SHA224())  # outside the web-PKI set
    refused([end.cert, middle.cert], TrustStore([anchor.cert]), BAD, "which the web PKI does not")


def test_small_rsa_key_under_an_ed25519_root_is_refused() -> None:
    anchor = root()
    end = leaf(anchor, key=rsa.generate_private_key(public_exponent=65537, key_size=1024))
    refused([end.cert], TrustStore([anchor.cert]), BAD, "has a key the web PKI does not permit")


# --- CA and leaf constraints ---------------------------------------------------------------


def test_intermediate_without_ca_flag_is_refused() -> None:
    anchor = root()
    middle = intermediate(anchor, ca=False)
    end = leaf(middle)
    refused(
        [end.cert, middle.cert],
        TrustStore([anchor.cert]),
        BAD,
        "'CN=Test Intermediate' issued a certificate but is not a CA",
    )


def test_intermediate_without_basic_constraints_is_refused() -> None:
    anchor = root()
    middle = intermediate(anchor, ca=None)
    end = leaf(middle)
    refused([end.cert, middle.cert], TrustStore([anchor.cert]), BAD, "is not a CA")


def test_path_length_exceeded_is_refused() -> None:
    anchor = root(path_length=0)
    middle = intermediate(anchor)
    end = leaf(middle)
    refused(
        [end.cert, middle.cert],
        TrustStore([anchor.cert]),
        BAD,
        "'CN=Test Root' has pathLenConstraint 0 but 1 intermediates follow it",
    )


def test_issuer_key_usage_without_key_cert_sign_is_refused() -> None:
    anchor = root()
    middle = intermediate(anchor, key_usage=usage(digital_signature=True))
    end = leaf(middle)
    refused(
        [end.cert, middle.cert],
        TrustStore([anchor.cert]),
        BAD,
        "keyUsage of the certificate for 'CN=Test Intermediate' does not include keyCertSign",
    )


def test_leaf_with_client_auth_only_is_refused_for_a_server() -> None:
    anchor = root()
    end = leaf(anchor, eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    refused([end.cert], TrustStore([anchor.cert]), BAD, "does not allow server authentication")


def test_intermediate_with_client_auth_only_is_refused_for_a_server() -> None:
    anchor = root()
    middle = intermediate(anchor, eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    end = leaf(middle)
    refused(
        [end.cert, middle.cert],
        TrustStore([anchor.cert]),
        BAD,
        "extendedKeyUsage of the certificate for 'CN=Test Intermediate' does not allow",
    )


def test_leaf_with_any_extended_key_usage_is_accepted() -> None:
    anchor = root()
    end = leaf(anchor, eku=(ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,))
    assert verify([end.cert], TrustStore([anchor.cert])).chain[0] == end.cert


def test_leaf_key_usage_without_digital_signature_is_refused() -> None:
    anchor = root()
    end = leaf(anchor, key_usage=usage())
    refused([end.cert], TrustStore([anchor.cert]), BAD, "does not include digitalSignature")


def test_leaf_that_is_a_ca_is_refused() -> None:
    anchor = root()
    end = leaf(anchor, ca=True)
    refused([end.cert], TrustStore([anchor.cert]), BAD, "'CN=localhost' is a CA certificate")


@pytest.mark.parametrize("where", ["leaf", "intermediate"])
def test_unknown_critical_extension_is_refused(where: str) -> None:
    unknown = (x509.UnrecognizedExtension(UNKNOWN_CRITICAL_OID, b"\x05\x00"), True)
    anchor = root()
    middle = intermediate(anchor, extra=[unknown] if where == "intermediate" else [])
    end = leaf(middle, extra=[unknown] if where == "leaf" else [])
    refused(
        [end.cert, middle.cert],
        TrustStore([anchor.cert]),
        BAD,
        "unknown critical extension 1.3.6.1.4.1.55555.1",
    )


def test_unknown_non_critical_extension_is_accepted() -> None:
    unknown = (x509.UnrecognizedExtension(UNKNOWN_CRITICAL_OID, b"\x05\x00"), False)
    anchor = root()
    end = leaf(anchor, extra=[unknown])
    assert verify([end.cert], TrustStore([anchor.cert])).chain[0] == end.cert


# --- name constraints ----------------------------------------------------------------------


def _constrained(
    constraints: x509.NameConstraints, san: Sequence[x509.GeneralName]
) -> tuple[list[x509.Certificate], TrustStore]:
    anchor = root()
    middle = intermediate(anchor, name_constraints=constraints)
    end = leaf(middle, san=san)
    return [end.cert, middle.cert], TrustStore([anchor.cert])


def _dns(*names: str) -> list[x509.GeneralName]:
    return [x509.DNSName(name) for name in names]


def _nets(*nets: str) -> list[x509.GeneralName]:
    return [x509.IPAddress(ipaddress.ip_network(net)) for net in nets]


def test_name_within_permitted_subtree_verifies() -> None:
    chain, trust = _constrained(
        x509.NameConstraints(permitted_subtrees=_dns("example.com"), excluded_subtrees=None),
        _dns("www.example.com"),
    )
    assert verify(chain, trust, name="www.example.com").chain[0] == chain[0]


def test_name_outside_permitted_subtree_is_refused() -> None:
    chain, trust = _constrained(
        x509.NameConstraints(permitted_subtrees=_dns("example.com"), excluded_subtrees=None),
        _dns("www.example.com", HOST),
    )
    refused(chain, trust, BAD, "entry localhost of .* violates the nameConstraints", name=None)


def test_name_in_excluded_subtree_is_refused() -> None:
    chain, trust = _constrained(
        x509.NameConstraints(permitted_subtrees=None, excluded_subtrees=_dns("example.com")),
        _dns("www.example.com"),
    )
    refused(chain, trust, BAD, "violates the nameConstraints", name="www.example.com")


def test_wildcard_reaching_an_excluded_name_is_refused() -> None:
    chain, trust = _constrained(
        x509.NameConstraints(permitted_subtrees=None, excluded_subtrees=_dns("secret.example.com")),
        _dns("*.example.com"),
    )
    refused(chain, trust, BAD, "violates the nameConstraints", name="www.example.com")


def test_ip_outside_permitted_network_is_refused() -> None:
    chain, trust = _constrained(
        x509.NameConstraints(permitted_subtrees=_nets("10.0.0.0/8"), excluded_subtrees=None),
        [x509.IPAddress(ipaddress.ip_address(IP))],
    )
    refused(chain, trust, BAD, "entry 127.0.0.1 .* violates the nameConstraints", name=IP)


def test_ip_in_excluded_network_is_refused() -> None:
    chain, trust = _constrained(
        x509.NameConstraints(permitted_subtrees=None, excluded_subtrees=_nets("127.0.0.0/8")),
        [x509.IPAddress(ipaddress.ip_address(IP))],
    )
    refused(chain, trust, BAD, "violates the nameConstraints", name=IP)


def test_ip_within_permitted_network_verifies() -> None:
    chain, trust = _constrained(
        x509.NameConstraints(permitted_subtrees=_nets("127.0.0.0/8"), excluded_subtrees=None),
        [x509.IPAddress(ipaddress.ip_address(IP))],
    )
    assert verify(chain, trust, name=IP).chain[0] == chain[0]


def test_name_constraints_on_the_root_bind_the_leaf() -> None:
    constraints = x509.NameConstraints(
        permitted_subtrees=_dns("example.com"), excluded_subtrees=None
    )
    anchor = root(name_constraints=constraints)
    end = leaf(anchor)
    refused([end.cert], TrustStore([anchor.cert]), BAD, "'CN=Test Root'")


def test_name_constraints_of_an_unchecked_kind_fail_closed() -> None:
    directory = x509.DirectoryName(
        x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example")])
    )
    chain, trust = _constrained(
        x509.NameConstraints(permitted_subtrees=[directory], excluded_subtrees=None), DEFAULT_SAN
    )
    refused(chain, trust, BAD, "DirectoryName subtree, which this validator does not check")


# --- end to end ----------------------------------------------------------------------------


def test_handshake_with_an_ed25519_chain_reports_the_verified_path() -> None:
    anchor = root()
    middle = intermediate(anchor)
    end = leaf(middle)
    assert isinstance(end.key, ed25519.Ed25519PrivateKey)
    clock = FixedClock(NOW)
    client = ClientConnection(
        ClientConfig(trust=TrustStore([anchor.cert]), clock=clock), server_hostname=HOST
    )
    server = ServerConnection(
        ServerConfig(certificates=(CertifiedKey([end.cert, middle.cert], end.key),), clock=clock)
    )
    handshake(client, server)
    assert client.negotiated is not None
    assert client.negotiated.verified_chain == (end.cert, middle.cert, anchor.cert)
