"""Review round 6: certificate verification (verify.py, revocation.py).

The first tests each showed a bug and failed before its fix (F1-F9: purpose
of issuers' extendedKeyUsage without a host name, an off-path Ed25519
certificate switching validators, RSA-PSS without parameters raising,
policyConstraints accepted unprocessed, a trailing dot escaping a name
constraint, a pinned Ed25519 leaf refused, an older CRL's hold outliving a
newer CRL, weak or odd delegated OCSP responders, "*.com" matching on
cryptography's path). The other tests pin verified behaviour that the
existing suites do not cover.

Everything is built with ``cryptography`` around ``tests.support.chains.NOW``.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Final

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.chains import (
    DAY,
    HOST,
    NOW,
    Issued,
    SigningKey,
    ec_key,
    intermediate,
    issue,
    key_usage,
    leaf,
    root,
)
from tests.support.engine_pairs import FixedClock, handshake, server_flight
from tests.support.revocation import ocsp_response
from triotls import VerificationResult, VerificationStatus
from triotls.config import CertifiedKey, ClientConfig, ServerConfig, TrustStore
from triotls.engine import ClientConnection, ServerConnection
from triotls.engine.enums import AlertDescription
from triotls.engine.verify import Purpose, check_chain, classify_chain, verify_chain
from triotls.errors import CertificateVerificationError

S = VerificationStatus
SERVER_AUTH: Final = (ExtendedKeyUsageOID.SERVER_AUTH,)
CLIENT_AUTH: Final = (ExtendedKeyUsageOID.CLIENT_AUTH,)
UNKNOWN_CRITICAL: Final = (
    x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00"),
    True,
)


def _check(
    chain: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    *,
    name: str | None = HOST,
    purpose: Purpose = "server",
    crls: Sequence[x509.CertificateRevocationList] = (),
    staple: bytes | None = None,
) -> VerificationResult:
    return check_chain(
        chain,
        TrustStore(anchors, crls=crls),
        purpose=purpose,
        server_name=name,
        now=NOW.timestamp(),
        ocsp_response=staple,
        ocsp_requested=staple is not None,
    )


def _ed() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


# --- DER surgery -------------------------------------------------------------------------


def _der(tag: int, contents: bytes) -> bytes:
    size = len(contents)
    if size < 0x80:
        return bytes([tag, size]) + contents
    encoded = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(encoded)]) + encoded + contents


def _children(der: bytes) -> list[bytes]:
    """The encoded elements of the one SEQUENCE ``der``."""

    def header(position: int) -> tuple[int, int]:
        length = der[position + 1]
        start = position + 2
        if length & 0x80:
            count = length & 0x7F
            length = int.from_bytes(der[start : start + count], "big")
            start += count
        return start, start + length

    start, end = header(0)
    out: list[bytes] = []
    position = start
    while position < end:
        _, element_end = header(position)
        out.append(der[position:element_end])
        position = element_end
    return out


# AlgorithmIdentifier rsassa-pss with its (mandatory, RFC 4055 §3.1) parameters left out.
_PSS_WITHOUT_PARAMETERS: Final = bytes.fromhex("300b06092a864886f70d01010a")


def _with_signature_algorithm(cert: x509.Certificate, algorithm: bytes) -> x509.Certificate:
    """``cert`` claiming signature ``algorithm`` (inside and outside the TBS), signature kept."""
    tbs, _algorithm, signature = _children(cert.public_bytes(serialization.Encoding.DER))
    fields = _children(tbs)
    fields[2] = algorithm  # TBSCertificate.signature, after version and serial
    new_tbs = _der(0x30, b"".join(fields))
    return x509.load_der_x509_certificate(_der(0x30, new_tbs + algorithm + signature))


# --- F1: check_hostname=False checks issuers' EKU for clientAuth -------------------------------


def _restricted_intermediate(eku: Sequence[x509.ObjectIdentifier]) -> tuple[Issued, Issued, Issued]:
    anchor = root()
    middle = intermediate(anchor, eku=eku)
    return anchor, middle, leaf(middle)


def test_server_auth_intermediate_verifies_with_a_name() -> None:
    # Pins the reference behaviour F1 departs from.
    anchor, middle, end = _restricted_intermediate(SERVER_AUTH)
    assert _check([end.cert, middle.cert], [anchor.cert]).status == S(0)


def test_server_auth_intermediate_verifies_without_a_name() -> None:
    anchor, middle, end = _restricted_intermediate(SERVER_AUTH)
    result = _check([end.cert, middle.cert], [anchor.cert], name=None)
    assert result.status == S(0), result.reasons


def test_client_auth_only_intermediate_is_refused_for_a_server_without_a_name() -> None:
    anchor, middle, end = _restricted_intermediate(CLIENT_AUTH)
    result = _check([end.cert, middle.cert], [anchor.cert], name=None)
    assert result.status & S.PURPOSE_MISMATCH, result.status


def test_check_hostname_false_accepts_a_server_auth_only_intermediate() -> None:
    anchor, middle, end = _restricted_intermediate(SERVER_AUTH)
    clock = FixedClock(NOW)
    client = ClientConnection(
        ClientConfig(trust=TrustStore([anchor.cert]), clock=clock, check_hostname=False),
        server_hostname=HOST,
    )
    server = ServerConnection(
        ServerConfig(certificates=(CertifiedKey([end.cert, middle.cert], end.key),), clock=clock)
    )
    handshake(client, server)
    assert client.negotiated is not None
    assert client.negotiated.verified_chain == (end.cert, middle.cert, anchor.cert)


# --- F2: an unused EdDSA certificate switches the validator -------------------------------


def _junk_ed25519() -> x509.Certificate:
    return issue("Junk", key=_ed(), issuer=None, ca=True, usage=key_usage(cert_sign=True)).cert


def test_ca_without_key_usage_is_refused_by_the_web_pki_profile() -> None:
    anchor = root()
    middle = intermediate(anchor, usage=None)
    end = leaf(middle)
    result = _check([end.cert, middle.cert], [anchor.cert])
    assert result.status == S.INVALID | S.SIGNER_CONSTRAINTS_FAILURE


def test_an_unused_ed25519_certificate_does_not_change_the_verdict() -> None:
    anchor = root()
    middle = intermediate(anchor, usage=None)
    end = leaf(middle)
    result = _check([end.cert, middle.cert, _junk_ed25519()], [anchor.cert])
    assert result.status & S.SIGNER_CONSTRAINTS_FAILURE, result.status


# --- F3: RSA-PSS without parameters raises ValueError -------------------------------------


def _pss_without_parameters() -> tuple[Issued, x509.Certificate]:
    anchor = root()
    end = leaf(anchor)
    return anchor, _with_signature_algorithm(end.cert, _PSS_WITHOUT_PARAMETERS)


@pytest.mark.parametrize("trusted", [True, False], ids=["known-issuer", "unknown-issuer"])
def test_pss_signature_without_parameters_is_a_status_not_an_exception(trusted: bool) -> None:
    anchor, bad = _pss_without_parameters()
    anchors = [anchor.cert] if trusted else [root("Other Root").cert]
    result = _check([bad], anchors)
    assert result.status & S.INVALID
    with pytest.raises(CertificateVerificationError):
        verify_chain(
            [bad], TrustStore(anchors), purpose="server", server_name=HOST, now=NOW.timestamp()
        )


def test_server_sending_a_pss_certificate_without_parameters_gets_bad_certificate() -> None:
    anchor = root()
    end = leaf(anchor)
    bad = _with_signature_algorithm(end.cert, _PSS_WITHOUT_PARAMETERS)
    clock = FixedClock(NOW)
    client = ClientConnection(
        ClientConfig(trust=TrustStore([anchor.cert]), clock=clock), server_hostname=HOST
    )
    server = ServerConnection(
        ServerConfig(certificates=(CertifiedKey([bad], end.key),), clock=clock)
    )
    flight = server_flight(client, server)
    with pytest.raises(CertificateVerificationError) as info:
        client.receive_data(flight)
    assert info.value.sent_alert == AlertDescription.BAD_CERTIFICATE


# --- F4: policyConstraints accepted critical but not processed (EdDSA path) ----------------


def _policy_constrained(signing: str) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    make: SigningKey = _ed() if signing == "ed25519" else ec_key()
    anchor = root(key=make)
    constraint = (
        x509.PolicyConstraints(require_explicit_policy=0, inhibit_policy_mapping=None),
        True,
    )
    middle_key: SigningKey = _ed() if signing == "ed25519" else ec_key()
    middle = intermediate(anchor, key=middle_key, extra=[constraint])
    end = leaf(middle)
    return [end.cert, middle.cert], [anchor.cert]


@pytest.mark.parametrize(
    "signing",
    [
        "ecdsa",
        pytest.param(
            "ed25519",
        ),
    ],
)
def test_require_explicit_policy_without_policies_is_refused(signing: str) -> None:
    chain, anchors = _policy_constrained(signing)
    assert _check(chain, anchors).status & S.INVALID


# --- F5: a trailing dot escapes excluded subtrees (EdDSA path) ------------------------------


@pytest.mark.parametrize(
    "signing",
    [
        "ecdsa",
        pytest.param(
            "ed25519",
        ),
    ],
)
@pytest.mark.parametrize("purpose", ["client", "server"])
def test_trailing_dot_does_not_escape_an_excluded_subtree(signing: str, purpose: Purpose) -> None:
    anchor = root(key=_ed() if signing == "ed25519" else ec_key())
    constraints = x509.NameConstraints(
        permitted_subtrees=None, excluded_subtrees=[x509.DNSName("example.com")]
    )
    middle = intermediate(
        anchor, key=_ed() if signing == "ed25519" else ec_key(), name_constraints=constraints
    )
    end = leaf(
        middle,
        san=[x509.DNSName("www.example.com.")],
        eku=CLIENT_AUTH if purpose == "client" else SERVER_AUTH,
    )
    result = _check([end.cert, middle.cert], [anchor.cert], name=None, purpose=purpose)
    assert result.status & S.INVALID, "an excluded name was accepted"


# --- F6: a pinned self-signed Ed25519 leaf ------------------------------------------------


@pytest.mark.parametrize(
    "signing",
    [
        "ecdsa",
        pytest.param(
            "ed25519",
        ),
    ],
)
def test_self_signed_leaf_trusted_directly_verifies(signing: str) -> None:
    pinned = issue(
        HOST,
        key=_ed() if signing == "ed25519" else ec_key(),
        issuer=None,
        ca=False,
        usage=key_usage(digital_signature=True),
        eku=SERVER_AUTH,
        san=[x509.DNSName(HOST)],
    )
    result = _check([pinned.cert], [pinned.cert])
    assert result.status == S(0), result.reasons
    assert result.verified_chain is not None


# --- F9: '*.com' matches on cryptography's path ---------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "host"),
    [
        ("*.example.com", "example.com"),  # the wildcard needs a label
        ("*.example.com", "a.b.example.com"),  # ... and covers exactly one
        ("f*.example.com", "foo.example.com"),  # no partial-label wildcard
        ("a.*.example.com", "a.b.example.com"),  # only the left-most label
        ("127.0.0.1", "127.0.0.1"),  # an IP literal never matches a dNSName
    ],
)
def test_wildcard_edge_cases_on_cryptographys_path(pattern: str, host: str) -> None:
    anchor = root()
    end = leaf(anchor, san=[x509.DNSName(pattern)])
    assert _check([end.cert], [anchor.cert], name=host).status == S.INVALID | S.UNEXPECTED_OWNER


def test_wildcard_over_a_top_level_domain_does_not_match_on_cryptographys_path() -> None:
    anchor = root()
    end = leaf(anchor, san=[x509.DNSName("*.com")])
    store = TrustStore([anchor.cert])
    classified, _ = classify_chain(
        [end.cert], store, purpose="server", server_name="example.com", now=NOW.timestamp()
    )
    assert classified & S.UNEXPECTED_OWNER  # our checks refuse it...
    result = _check([end.cert], [anchor.cert], name="example.com")
    assert result.status & S.UNEXPECTED_OWNER  # ...and so must the verdict


# --- F7: a newer CRL does not lift a certificateHold ---------------------------------------


def _crl(
    issuer: Issued,
    number: int,
    *,
    last_update: datetime.datetime,
    next_update: datetime.datetime,
    held: x509.Certificate | None = None,
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(last_update)
        .next_update(next_update)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), False
        )
        .add_extension(x509.CRLNumber(number), False)
    )
    if held is not None:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(held.serial_number)
            .revocation_date(last_update - DAY)
            .add_extension(x509.CRLReason(x509.ReasonFlags.certificate_hold), False)
            .build()
        )
    key = issuer.key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return builder.sign(key, hashes.SHA256())


def test_held_certificate_on_the_only_crl_is_revoked() -> None:
    anchor = root()
    middle = intermediate(anchor)
    end = leaf(middle)
    older = _crl(middle, 1, last_update=NOW - 3 * DAY, next_update=NOW + 4 * DAY, held=end.cert)
    result = _check([end.cert, middle.cert], [anchor.cert], crls=[older])
    assert result.status == S.INVALID | S.REVOKED


def test_newer_crl_that_drops_a_hold_releases_the_certificate() -> None:
    anchor = root()
    middle = intermediate(anchor)
    end = leaf(middle)
    older = _crl(middle, 1, last_update=NOW - 3 * DAY, next_update=NOW + 4 * DAY, held=end.cert)
    newer = _crl(middle, 2, last_update=NOW - DAY, next_update=NOW + 6 * DAY)
    result = _check([end.cert, middle.cert], [anchor.cert], crls=[older, newer])
    assert result.status == S(0), result.reasons


# --- F8: a delegated OCSP responder's certificate is not held to the policy ---------------


def _responder_of(
    issuer: Issued, key: SigningKey, extra: Sequence[tuple[x509.ExtensionType, bool]] = ()
) -> Issued:
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Weak Responder")]))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + 30 * DAY)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), False)
    )
    for ext, critical in extra:
        builder = builder.add_extension(ext, critical)
    signer = issuer.key
    assert isinstance(signer, ec.EllipticCurvePrivateKey)
    return Issued(cert=builder.sign(signer, hashes.SHA256()), key=key)


def test_delegated_responder_with_a_good_key_is_accepted() -> None:
    anchor = root()
    middle = intermediate(anchor)
    end = leaf(middle)
    delegate = _responder_of(middle, ec_key())
    staple = ocsp_response(end.cert, middle, signed_by=delegate)
    assert _check([end.cert, middle.cert], [anchor.cert], staple=staple).status == S(0)


@pytest.mark.parametrize("weakness", ["rsa-1024", "unknown-critical-extension"])
def test_delegated_responder_outside_the_policy_is_refused(weakness: str) -> None:
    anchor = root()
    middle = intermediate(anchor)
    end = leaf(middle)
    if weakness == "rsa-1024":
        delegate = _responder_of(middle, rsa.generate_private_key(65537, 1024))
    else:
        delegate = _responder_of(middle, ec_key(), extra=[UNKNOWN_CRITICAL])
    staple = ocsp_response(end.cert, middle, signed_by=delegate)
    result = _check([end.cert, middle.cert], [anchor.cert], staple=staple)
    assert result.status & S.INVALID_OCSP_STATUS, result.status
