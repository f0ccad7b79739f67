"""VerificationStatus: every reason a chain failed, the alert it calls for, and the modes.

The matrix below is a list of bad chains, each built here (trustme plus
``cryptography``), with the exact flags, the alert the server must receive,
and a fragment of the client's error message. Each bad chain runs three ways:

* refused during the handshake (``verify_mode="required"``, the default):
  the client raises CertificateVerificationError with that status, and the
  server reads the alert;
* reported (``verify_mode="report"``): the handshake completes and
  ``negotiated.verification`` carries the same status;
* classified by our checks alone (``classify_chain``), which must find the
  same flags, while on every chain of the good list they must find nothing
  and the validator must accept it: the classification agrees with the
  verdict.

The modes (report, callback accepting, refusing or raising) and the status
type itself are tested after the matrix.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.support.chains import (
    DAY,
    HOST,
    IP,
    NOW,
    Chain,
    intermediate,
    issue,
    key_usage,
    leaf,
    resigned_with_sha1,
    root,
)
from tests.support.engine_pairs import FixedClock, alert_seen_by, handshake, pump, server_flight
from triotls import VerificationResult, VerificationStatus
from triotls.config import ClientConfig, ServerConfig
from triotls.engine import ClientConnection, ServerConnection
from triotls.engine.enums import AlertDescription
from triotls.engine.events import ApplicationData, Event, NewSessionTicketReceived
from triotls.engine.status import alert_for
from triotls.engine.tickets import ClientSession
from triotls.engine.verify import check_chain, classify_chain
from triotls.errors import AccessDenied, CertificateVerificationError

S = VerificationStatus
BAD: Final = AlertDescription.BAD_CERTIFICATE
EXPIRED: Final = AlertDescription.CERTIFICATE_EXPIRED
UNKNOWN_CA: Final = AlertDescription.UNKNOWN_CA
UNKNOWN_OID: Final = x509.ObjectIdentifier("1.3.6.1.4.1.55555.1")
UNKNOWN_CRITICAL: Final = (x509.UnrecognizedExtension(UNKNOWN_OID, b"\x05\x00"), True)
CLIENT_AUTH_ONLY: Final = (ExtendedKeyUsageOID.CLIENT_AUTH,)


# --- building the chains ------------------------------------------------------------------


def _trustme(
    *,
    child_ca: bool = False,
    send_intermediate: bool = True,
    trusted: bool = True,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> Chain:
    """A trustme chain for localhost/127.0.0.1 (its CA is valid 2000 to 3000)."""
    ca = trustme.CA()
    issuer = ca.create_child_ca() if child_ca else ca
    issued = issuer.issue_cert(HOST, IP, not_before=not_before, not_after=not_after)
    certificates = tuple(x509.load_pem_x509_certificate(b.bytes()) for b in issued.cert_chain_pems)
    key = serialization.load_pem_private_key(issued.private_key_pem.bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)  # trustme's default key type
    anchor = ca if trusted else trustme.CA()
    return Chain(
        certificates=certificates if send_intermediate else certificates[:1],
        key=key,
        anchors=(x509.load_pem_x509_certificate(anchor.cert_pem.bytes()),),
    )


def _simple(**leaf_changes: Any) -> Chain:
    """Root, intermediate, leaf (ECDSA P-256), with ``leaf_changes`` applied to the leaf."""
    anchor = root()
    middle = intermediate(anchor)
    return Chain.of(leaf(middle, **leaf_changes), middle, anchors=[anchor])


def _with_intermediate(**middle_changes: Any) -> Chain:
    anchor = root()
    middle = intermediate(anchor, **middle_changes)
    return Chain.of(leaf(middle), middle, anchors=[anchor])


def _rsa(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _ed() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def _self_signed() -> Chain:
    end = issue(
        HOST,
        key=ec.generate_private_key(ec.SECP256R1()),
        issuer=None,
        ca=False,
        usage=key_usage(digital_signature=True),
        eku=(ExtendedKeyUsageOID.SERVER_AUTH,),
        san=[x509.DNSName(HOST)],
    )
    return Chain.of(end, anchors=[root()])


def _constrained(
    *,
    permitted: list[x509.GeneralName] | None = None,
    excluded: list[x509.GeneralName] | None = None,
    san: list[x509.GeneralName] | None = None,
) -> Chain:
    anchor = root()
    constraints = x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=excluded)
    middle = intermediate(anchor, name_constraints=constraints)
    end = leaf(middle) if san is None else leaf(middle, san=san)
    return Chain.of(end, middle, anchors=[anchor])


def _path_length_exceeded() -> Chain:
    anchor = root(path_length=0)
    middle = intermediate(anchor)
    return Chain.of(leaf(middle), middle, anchors=[anchor])


def _two_intermediates() -> Chain:
    anchor = root()
    upper = intermediate(anchor, "Upper")
    lower = intermediate(upper, "Lower")
    return Chain.of(leaf(lower), lower, upper, anchors=[anchor])


def _sha1_signed() -> Chain:
    anchor = root()
    middle = intermediate(anchor)
    return Chain.of(resigned_with_sha1(leaf(middle), middle), middle, anchors=[anchor])


def _sha1_signed_by_rsa() -> Chain:
    anchor = root()
    middle = intermediate(anchor, key=_rsa(2048))
    return Chain.of(resigned_with_sha1(leaf(middle), middle), middle, anchors=[anchor])


def _weak_everything() -> Chain:
    """An RSA-1024 leaf for client authentication only, signed with SHA-1."""
    anchor = root()
    middle = intermediate(anchor, key=_rsa(2048))
    end = leaf(middle, key=_rsa(1024), eku=CLIENT_AUTH_ONLY)
    return Chain.of(resigned_with_sha1(end, middle), middle, anchors=[anchor])


def _tampered() -> Chain:
    chain = _simple()
    der = chain.certificates[0].public_bytes(serialization.Encoding.DER)
    flipped = x509.load_der_x509_certificate(der[:-1] + bytes([der[-1] ^ 0x01]))
    return dataclasses.replace(chain, certificates=(flipped, *chain.certificates[1:]))


def _bad_intermediate_expired() -> Chain:
    """An intermediate that is not a CA and has expired."""
    anchor = root()
    middle = intermediate(anchor, ca=False, not_after=NOW - DAY / 2)
    return Chain.of(leaf(middle), middle, anchors=[anchor])


def _expired_root() -> Chain:
    anchor = root(not_after=NOW - DAY / 2)
    middle = intermediate(anchor)
    return Chain.of(leaf(middle), middle, anchors=[anchor])


def _ed25519(**leaf_changes: Any) -> Chain:
    anchor = root(key=_ed())
    middle = intermediate(anchor, key=_ed())
    return Chain.of(leaf(middle, key=_ed(), **leaf_changes), middle, anchors=[anchor])


def _ed25519_intermediate_not_ca() -> Chain:
    anchor = root(key=_ed())
    middle = intermediate(anchor, key=_ed(), ca=False)
    return Chain.of(leaf(middle, key=_ed()), middle, anchors=[anchor])


def _ed25519_unknown_ca() -> Chain:
    chain = _ed25519()
    return dataclasses.replace(chain, anchors=(root("Another Root", key=_ed()).cert,))


# --- the matrix ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A bad chain and everything the client and server must see for it."""

    id: str
    build: Callable[[], Chain]
    status: VerificationStatus
    alert: AlertDescription
    fragment: str
    server_name: str = HOST
    when: datetime.datetime = NOW
    max_chain_depth: int = 8


BAD_CHAINS: Final = [
    Case(
        "expired",
        lambda: _trustme(not_after=NOW - DAY),
        S.INVALID | S.EXPIRED,
        EXPIRED,
        "has expired",
    ),
    Case(
        "not-yet-valid",
        lambda: _trustme(not_before=NOW + DAY),
        S.INVALID | S.NOT_ACTIVATED,
        EXPIRED,
        "is not yet valid",
    ),
    Case(
        "wrong-host",
        _trustme,
        S.INVALID | S.UNEXPECTED_OWNER,
        BAD,
        "does not match 'example.org'",
        server_name="example.org",
    ),
    Case(
        "wrong-ip",
        _trustme,
        S.INVALID | S.UNEXPECTED_OWNER,
        BAD,
        "does not match '127.0.0.2'",
        server_name="127.0.0.2",
    ),
    Case(
        "wildcard-spans-two-labels",
        lambda: _simple(san=[x509.DNSName("*.example.com")]),
        S.INVALID | S.UNEXPECTED_OWNER,
        BAD,
        "does not match 'a.b.example.com'",
        server_name="a.b.example.com",
    ),
    Case(
        "self-signed",
        _self_signed,
        S.INVALID | S.SIGNER_NOT_FOUND,
        UNKNOWN_CA,
        "'CN=localhost' is self-signed and not trusted",
    ),
    Case(
        "unknown-ca",
        lambda: _trustme(trusted=False),
        S.INVALID | S.SIGNER_NOT_FOUND,
        UNKNOWN_CA,
        "is among the supplied intermediates or the trust anchors",
    ),
    Case(
        "intermediate-without-ca-flag",
        lambda: _with_intermediate(ca=False),
        S.INVALID | S.SIGNER_NOT_CA,
        BAD,
        "'CN=Test Intermediate' issued a certificate but is not a CA",
    ),
    Case(
        "missing-intermediate",
        lambda: _trustme(child_ca=True, send_intermediate=False),
        S.INVALID | S.SIGNER_NOT_FOUND,
        UNKNOWN_CA,
        "no issuer of the certificate for",
    ),
    Case(
        "path-length-exceeded",
        _path_length_exceeded,
        S.INVALID | S.SIGNER_CONSTRAINTS_FAILURE,
        BAD,
        "'CN=Test Root' has pathLenConstraint 0 but 1 intermediates follow it",
    ),
    Case(
        "name-constraints-violated",
        lambda: _constrained(permitted=[x509.DNSName("example.com")]),
        S.INVALID | S.SIGNER_CONSTRAINTS_FAILURE,
        BAD,
        "entry localhost of the certificate for 'CN=localhost' violates the nameConstraints",
    ),
    Case(
        "wildcard-reaches-an-excluded-subtree",
        lambda: _constrained(
            excluded=[x509.DNSName("secret.example.com")], san=[x509.DNSName("*.example.com")]
        ),
        S.INVALID | S.SIGNER_CONSTRAINTS_FAILURE,
        BAD,
        "entry *.example.com of the certificate for 'CN=localhost' violates",
        server_name="www.example.com",
    ),
    Case(
        "ip-outside-permitted-network",
        lambda: _constrained(permitted=[x509.IPAddress(ipaddress.ip_network("10.0.0.0/8"))]),
        S.INVALID | S.SIGNER_CONSTRAINTS_FAILURE,
        BAD,
        "entry 127.0.0.1 of the certificate for 'CN=localhost' violates",
        server_name=IP,
    ),
    Case(
        "wrong-eku",
        lambda: _simple(eku=CLIENT_AUTH_ONLY),
        S.INVALID | S.PURPOSE_MISMATCH,
        BAD,
        "does not allow server authentication",
    ),
    Case(
        # DESIGN.md, "Known trap": the relaxed policy that accepts trustme's
        # critical SAN/EKU must still refuse the wrong purpose.
        "wrong-eku-trustme-style",
        lambda: _simple(eku=CLIENT_AUTH_ONLY, critical_san_and_eku=True),
        S.INVALID | S.PURPOSE_MISMATCH,
        BAD,
        "does not allow server authentication",
    ),
    Case(
        "intermediate-wrong-eku",
        lambda: _with_intermediate(eku=CLIENT_AUTH_ONLY),
        S.INVALID | S.PURPOSE_MISMATCH,
        BAD,
        "extendedKeyUsage of the certificate for 'CN=Test Intermediate' does not allow",
    ),
    Case(
        "leaf-key-usage-without-digital-signature",
        lambda: _simple(usage=key_usage()),
        S.INVALID | S.PURPOSE_MISMATCH,
        BAD,
        "does not include digitalSignature",
    ),
    Case(
        "leaf-is-a-ca",
        lambda: _simple(ca=True),
        S.INVALID | S.PURPOSE_MISMATCH,
        BAD,
        "'CN=localhost' is a CA certificate",
    ),
    Case(
        "ca-key-usage-without-key-cert-sign",
        lambda: _with_intermediate(usage=key_usage(digital_signature=True)),
        S.INVALID | S.SIGNER_CONSTRAINTS_FAILURE,
        BAD,
        "does not include keyCertSign",
    ),
    Case(
        "sha1-signed",
        _sha1_signed,
        S.INVALID | S.INSECURE_ALGORITHM,
        BAD,
        "is signed with SHA1 (1.2.840.10045.4.1), which the web PKI does not permit",
    ),
    Case(
        "sha1-signed-by-rsa",
        _sha1_signed_by_rsa,
        S.INVALID | S.INSECURE_ALGORITHM,
        BAD,
        "is signed with SHA1 (1.2.840.113549.1.1.5)",
    ),
    Case(
        "rsa-1024-leaf",
        lambda: _simple(key=_rsa(1024)),
        S.INVALID | S.INSECURE_ALGORITHM,
        BAD,
        "'CN=localhost' has a key the web PKI does not permit (a 1024-bit RSA key",
    ),
    Case(
        "rsa-1024-intermediate",
        lambda: _with_intermediate(key=_rsa(1024)),
        S.INVALID | S.INSECURE_ALGORITHM,
        BAD,
        "'CN=Test Intermediate' has a key the web PKI does not permit",
    ),
    Case(
        "unknown-critical-extension",
        lambda: _simple(extra=[UNKNOWN_CRITICAL]),
        S.INVALID | S.UNKNOWN_CRIT_EXTENSIONS,
        BAD,
        "'CN=localhost' has an unknown critical extension 1.3.6.1.4.1.55555.1",
    ),
    Case(
        "unknown-critical-extension-on-intermediate",
        lambda: _with_intermediate(extra=[UNKNOWN_CRITICAL]),
        S.INVALID | S.UNKNOWN_CRIT_EXTENSIONS,
        BAD,
        "'CN=Test Intermediate' has an unknown critical extension",
    ),
    Case(
        "chain-too-long",
        _two_intermediates,
        S.INVALID | S.CHAIN_TOO_LONG,
        UNKNOWN_CA,
        "holds 2 intermediates, more than the 1 allowed",
        max_chain_depth=1,
    ),
    Case(
        "tampered-signature",
        _tampered,
        S.INVALID | S.SIGNATURE_FAILURE | S.SIGNER_NOT_FOUND,
        UNKNOWN_CA,
        "the signature on the certificate for 'CN=localhost' does not verify with the key of",
    ),
    Case(
        "expired-root",
        _expired_root,
        S.INVALID | S.EXPIRED,
        EXPIRED,
        "'CN=Test Root' has expired",
    ),
    # Several faults at once: every flag, and the alert of the highest priority.
    Case(
        "expired-and-wrong-host",
        lambda: _trustme(not_after=NOW - DAY),
        S.INVALID | S.EXPIRED | S.UNEXPECTED_OWNER,
        EXPIRED,
        "did not verify (expired, name mismatch)",
        server_name="example.org",
    ),
    Case(
        "unknown-ca-not-yet-valid-and-wrong-host",
        lambda: _trustme(trusted=False, not_before=NOW + DAY),
        S.INVALID | S.SIGNER_NOT_FOUND | S.NOT_ACTIVATED | S.UNEXPECTED_OWNER,
        EXPIRED,
        "did not verify (issuer unknown, not yet valid, name mismatch)",
        server_name="example.org",
    ),
    Case(
        "sha1-rsa-1024-and-wrong-eku",
        _weak_everything,
        S.INVALID | S.INSECURE_ALGORITHM | S.PURPOSE_MISMATCH,
        BAD,
        "did not verify (insecure algorithm, wrong purpose)",
    ),
    Case(
        "intermediate-not-ca-and-expired-and-wrong-ip",
        _bad_intermediate_expired,
        S.INVALID | S.SIGNER_NOT_CA | S.EXPIRED | S.UNEXPECTED_OWNER,
        EXPIRED,
        "did not verify (issuer is not a CA, expired, name mismatch)",
        server_name="127.0.0.9",
    ),
    # The same classification for chains our own RFC 5280 validator decides.
    Case(
        "ed25519-expired-and-wrong-host",
        _ed25519,
        S.INVALID | S.EXPIRED | S.UNEXPECTED_OWNER,
        EXPIRED,
        "'CN=localhost' has expired",
        server_name="example.org",
        when=NOW + 31 * DAY,
    ),
    Case(
        "ed25519-intermediate-without-ca-flag",
        _ed25519_intermediate_not_ca,
        S.INVALID | S.SIGNER_NOT_CA,
        BAD,
        "'CN=Test Intermediate' issued a certificate but is not a CA",
    ),
    Case(
        "ed25519-unknown-ca",
        _ed25519_unknown_ca,
        S.INVALID | S.SIGNER_NOT_FOUND,
        UNKNOWN_CA,
        "no issuer of the certificate for 'CN=Test Intermediate'",
    ),
    Case(
        "ed25519-wrong-eku-and-unknown-critical-extension",
        lambda: _ed25519(eku=CLIENT_AUTH_ONLY, extra=[UNKNOWN_CRITICAL]),
        S.INVALID | S.PURPOSE_MISMATCH | S.UNKNOWN_CRIT_EXTENSIONS,
        BAD,
        "did not verify (wrong purpose, unknown critical extension)",
    ),
]


def _root_sent_along() -> Chain:
    anchor = root()
    middle = intermediate(anchor)
    return Chain.of(leaf(middle), middle, anchor, anchors=[anchor])


def _under_root(**leaf_changes: Any) -> Chain:
    anchor = root()
    return Chain.of(leaf(anchor, **leaf_changes), anchors=[anchor])


def _path_length_kept() -> Chain:
    anchor = root(path_length=1)
    middle = intermediate(anchor, path_length=0)
    return Chain.of(leaf(middle), middle, anchors=[anchor])


# Chains that verify: our checks must find nothing wrong with any of them.
GOOD_CHAINS: Final[dict[str, Callable[[], Chain]]] = {
    "trustme": _trustme,
    "trustme-with-intermediate": lambda: _trustme(child_ca=True),
    "ecdsa-with-intermediate": _simple,
    "rsa-2048-leaf": lambda: _simple(key=_rsa(2048)),
    "two-intermediates": _two_intermediates,
    "critical-san-and-eku": lambda: _simple(critical_san_and_eku=True),
    "any-extended-key-usage": lambda: _simple(eku=(ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,)),
    "no-key-usage-and-no-eku": lambda: _simple(usage=None, eku=None),
    "wildcard": lambda: _simple(san=[x509.DNSName("*.example.com")]),
    "root-sent-along": _root_sent_along,
    "ed25519-with-intermediate": _ed25519,
    "ed25519-leaf-under-ecdsa-root": lambda: _under_root(key=_ed()),
    "name-constraints-permit": lambda: _constrained(
        permitted=[x509.DNSName(HOST), x509.IPAddress(ipaddress.ip_network("127.0.0.0/8"))],
        excluded=[x509.DNSName("example.com")],
    ),
    "wildcard-within-permitted-subtree": lambda: _constrained(
        permitted=[x509.DNSName("example.com")], san=[x509.DNSName("*.example.com")]
    ),
    "ip-constraint-leaves-dns-names-alone": lambda: _constrained(
        permitted=[x509.IPAddress(ipaddress.ip_network("10.0.0.0/8"))],
        san=[x509.DNSName(HOST)],
    ),
    "email-constraint-leaves-dns-names-alone": lambda: _constrained(
        permitted=[x509.RFC822Name("example.com")]
    ),
    "path-length-kept": _path_length_kept,
}
GOOD_NAMES: Final = {
    "wildcard": "www.example.com",
    "wildcard-within-permitted-subtree": "www.example.com",
}

_built: dict[str, Chain] = {}


def _chain(key: str, build: Callable[[], Chain]) -> Chain:
    """``build()``, once per test session (key generation dominates the cost)."""
    if key not in _built:
        _built[key] = build()
    return _built[key]


def _client_config(chain: Chain, *, when: datetime.datetime = NOW, **fields: Any) -> ClientConfig:
    return ClientConfig(trust=chain.trust, clock=FixedClock(when), **fields)


def _pair(
    chain: Chain, *, server_name: str = HOST, when: datetime.datetime = NOW, **fields: Any
) -> tuple[ClientConnection, ServerConnection]:
    client = ClientConnection(
        _client_config(chain, when=when, **fields), server_hostname=server_name
    )
    server = ServerConnection(
        ServerConfig(certificates=(chain.certified,), clock=FixedClock(NOW), ticket_count=1)
    )
    return client, server


def _case_pair(case: Case, **fields: Any) -> tuple[ClientConnection, ServerConnection]:
    return _pair(
        _chain(case.id, case.build),
        server_name=case.server_name,
        when=case.when,
        max_chain_depth=case.max_chain_depth,
        **fields,
    )


def _refused(
    client: ClientConnection, server: ServerConnection
) -> tuple[CertificateVerificationError, int]:
    """The client's error on the server's flight, and the alert the server then reads."""
    flight = server_flight(client, server)
    with pytest.raises(CertificateVerificationError) as info:
        client.receive_data(flight)
    return info.value, alert_seen_by(server, client.data_to_send())


def _check(chain: Chain, server_name: str | None = HOST) -> VerificationResult:
    return check_chain(
        chain.certificates,
        chain.trust,
        purpose="server",
        server_name=server_name,
        now=NOW.timestamp(),
    )


# --- the matrix, three ways ----------------------------------------------------------------


@pytest.mark.parametrize("case", BAD_CHAINS, ids=[case.id for case in BAD_CHAINS])
def test_bad_chain_is_refused_with_every_flag_and_its_alert(case: Case) -> None:
    client, server = _case_pair(case)
    error, seen = _refused(client, server)
    assert error.status == case.status
    assert case.fragment in str(error)
    assert str(error).startswith(
        f"the peer's certificate did not verify ({case.status.describe()})"
    )
    assert error.sent_alert == case.alert
    assert seen == case.alert
    assert error.result is not None
    assert error.result.chain == _chain(case.id, case.build).certificates
    assert error.result.verified_chain is None


@pytest.mark.parametrize("case", BAD_CHAINS, ids=[case.id for case in BAD_CHAINS])
def test_bad_chain_is_reported_and_the_handshake_completes(case: Case) -> None:
    client, server = _case_pair(case, verify_mode="report")
    handshake(client, server)
    negotiated = client.negotiated
    assert negotiated is not None and negotiated.verification is not None
    assert negotiated.verification.status == case.status
    assert negotiated.verification.alert == case.alert
    assert negotiated.verified_chain is None
    assert negotiated.peer_certificates == _chain(case.id, case.build).certificates


@pytest.mark.parametrize("case", BAD_CHAINS, ids=[case.id for case in BAD_CHAINS])
def test_our_checks_alone_find_every_flag_of_a_bad_chain(case: Case) -> None:
    chain = _chain(case.id, case.build)
    status, reasons = classify_chain(
        chain.certificates,
        chain.trust,
        purpose="server",
        server_name=case.server_name,
        now=case.when.timestamp(),
        max_depth=case.max_chain_depth,
    )
    assert status == case.status
    assert reasons


@pytest.mark.parametrize("name", sorted(GOOD_CHAINS))
def test_good_chain_verifies_and_our_checks_find_nothing(name: str) -> None:
    chain = _chain(name, GOOD_CHAINS[name])
    server_name = GOOD_NAMES.get(name, HOST)
    result = _check(chain, server_name)
    assert result.status == 0, result.reasons
    assert result.verified_chain is not None
    found = classify_chain(
        chain.certificates,
        chain.trust,
        purpose="server",
        server_name=server_name,
        now=NOW.timestamp(),
    )
    assert found == (S(0), ())


def test_validator_message_comes_first_among_the_reasons() -> None:
    client, server = _case_pair(BAD_CHAINS[0])
    error, _seen = _refused(client, server)
    assert error.reasons[0].startswith("validation failed: cert is not valid at validation time")
    assert any("has expired (notAfter" in reason for reason in error.reasons[1:])


def test_a_refusal_our_checks_do_not_model_is_invalid_alone() -> None:
    # The web PKI profile requires an authorityKeyIdentifier on the end
    # entity: the validator's rule, not one of our checks.
    result = _check(_simple(aki=False))
    assert result.status == S.INVALID
    assert len(result.reasons) == 1
    assert "2.5.29.35" in result.reasons[0]
    assert result.alert == BAD


def test_an_issuer_refused_for_a_rule_we_do_not_model_is_signer_not_found() -> None:
    # Critical key identifiers on a CA: cryptography finds no acceptable
    # issuer ("candidates exhausted"), and our checks see nothing wrong.
    result = _check(_with_intermediate(critical_key_ids=True))
    assert result.status == S.INVALID | S.SIGNER_NOT_FOUND
    assert "candidates exhausted" in result.reasons[0]
    assert result.alert == UNKNOWN_CA


@pytest.mark.parametrize("curve", [ec.SECP224R1(), ec.SECP256K1()], ids=lambda c: c.name)
def test_leaf_key_on_a_curve_outside_the_web_pki_is_insecure(curve: ec.EllipticCurve) -> None:
    # A server cannot sign a TLS 1.3 handshake with these keys, so this is
    # checked on the chain alone; cryptography's verifier accepts the leaf.
    result = _check(_simple(key=ec.generate_private_key(curve)))
    assert result.status == S.INVALID | S.INSECURE_ALGORITHM
    assert f"an ECDSA key on {curve.name}" in result.reasons[0]


def test_bare_store_refuses_an_eddsa_chain_as_signer_not_found() -> None:
    chain = _chain("ed25519-with-intermediate", _ed25519)
    result = check_chain(
        chain.certificates,
        x509.verification.Store(list(chain.anchors)),
        purpose="server",
        server_name=HOST,
        now=NOW.timestamp(),
    )
    assert result.status == S.INVALID | S.SIGNER_NOT_FOUND
    assert "bare cryptography Store" in result.reasons[0]


@pytest.mark.parametrize(("depth", "verified"), [(2, True), (1, False)])
def test_max_chain_depth_comes_from_the_config(depth: int, verified: bool) -> None:
    client, server = _pair(
        _chain("two-intermediates", _two_intermediates),
        max_chain_depth=depth,
        verify_mode="report",
    )
    handshake(client, server)
    assert client.negotiated is not None and client.negotiated.verification is not None
    assert client.negotiated.verification.is_valid is verified


# --- modes ---------------------------------------------------------------------------------


def _good() -> Chain:
    return _chain("trustme", _trustme)


def test_required_mode_exposes_the_clean_result_after_the_handshake() -> None:
    chain = _good()
    client, server = _pair(chain)
    handshake(client, server)
    assert client.negotiated is not None
    result = client.negotiated.verification
    assert result is not None and result.is_valid
    assert (result.status, result.reasons, result.server_name) == (S(0), (), HOST)
    assert result.verified_chain == (*chain.certificates, *chain.anchors)
    assert client.negotiated.verified_chain == result.verified_chain


def test_report_mode_lets_data_flow_after_a_bad_chain() -> None:
    client, server = _pair(_good(), server_name="example.org", verify_mode="report")
    handshake(client, server)
    client.send_application_data(b"the caller decided to go on")
    assert pump(client, server) == [ApplicationData(data=b"the caller decided to go on")]
    assert client.negotiated is not None and client.negotiated.verification is not None
    assert client.negotiated.verification.server_name == "example.org"


def test_verification_is_none_when_verify_peer_is_false() -> None:
    client, server = _pair(_good(), server_name="example.org", verify_peer=False)
    handshake(client, server)
    assert client.negotiated is not None
    assert client.negotiated.verification is None


def test_check_hostname_false_checks_the_chain_without_a_name() -> None:
    client, server = _pair(_good(), server_name="example.org", check_hostname=False)
    handshake(client, server)
    assert client.negotiated is not None and client.negotiated.verification is not None
    assert client.negotiated.verification.is_valid
    assert client.negotiated.verification.server_name is None


class _Recorder:
    """A verify_callback that records what it was given and answers ``answer``."""

    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.seen: list[VerificationResult] = []

    def __call__(self, result: VerificationResult) -> bool:
        self.seen.append(result)
        return self.answer


def test_callback_sees_every_flag_and_may_accept_a_bad_chain() -> None:
    chain = _chain("expired", BAD_CHAINS[0].build)
    callback = _Recorder(answer=True)
    client, server = _pair(chain, server_name="example.org", verify_callback=callback)
    handshake(client, server)
    (seen,) = callback.seen
    assert seen.status == S.INVALID | S.EXPIRED | S.UNEXPECTED_OWNER
    assert seen.chain == chain.certificates
    assert client.negotiated is not None
    assert client.negotiated.verification == seen


def test_callback_is_called_for_a_good_chain_too() -> None:
    callback = _Recorder(answer=True)
    client, server = _pair(_good(), verify_callback=callback)
    handshake(client, server)
    assert [result.status for result in callback.seen] == [S(0)]


def test_callback_refusing_a_good_chain_sends_certificate_unknown() -> None:
    client, server = _pair(_good(), verify_callback=_Recorder(answer=False))
    error, seen = _refused(client, server)
    assert error.status == 0
    assert "the verify_callback refused the peer's certificate, which verified" in str(error)
    assert seen == AlertDescription.CERTIFICATE_UNKNOWN


def test_callback_refusing_a_bad_chain_sends_the_alert_of_its_status() -> None:
    client, server = _pair(
        _good(), server_name="example.org", verify_callback=_Recorder(answer=False)
    )
    error, seen = _refused(client, server)
    assert error.status == S.INVALID | S.UNEXPECTED_OWNER
    assert str(error).startswith(
        "the verify_callback refused the peer's certificate, which did not verify (name mismatch)"
    )
    assert seen == BAD


def test_callback_answer_other_than_true_refuses() -> None:
    def forgot_to_return(result: VerificationResult) -> bool:
        return None  # type: ignore[return-value]  # the mistake under test

    client, server = _pair(_good(), verify_callback=forgot_to_return)
    _error, seen = _refused(client, server)
    assert seen == AlertDescription.CERTIFICATE_UNKNOWN


def test_callback_raising_refuses_with_internal_error_and_keeps_the_cause() -> None:
    def broken(result: VerificationResult) -> bool:
        raise KeyError("pinned fingerprints")

    client, server = _pair(_good(), verify_callback=broken)
    error, seen = _refused(client, server)
    assert "the verify_callback raised KeyError: 'pinned fingerprints'" in str(error)
    assert isinstance(error.__cause__, KeyError)
    assert error.status == 0
    assert seen == AlertDescription.INTERNAL_ERROR


def test_callback_may_choose_the_alert_by_raising_a_local_alert() -> None:
    def not_on_the_list(result: VerificationResult) -> bool:
        raise AccessDenied("this server is not on the allow list")

    client, server = _pair(_good(), verify_callback=not_on_the_list)
    flight = server_flight(client, server)
    with pytest.raises(AccessDenied, match="allow list"):
        client.receive_data(flight)
    assert alert_seen_by(server, client.data_to_send()) == AlertDescription.ACCESS_DENIED


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"verify_mode": "sometimes"}, "verify_mode must be 'required' or 'report'"),
        ({"verify_peer": False, "verify_mode": "report"}, "verify_peer=False turns"),
        ({"verify_peer": False, "verify_callback": _Recorder(True)}, "verify_peer=False turns"),
        ({"verify_mode": "report", "verify_callback": _Recorder(True)}, "choose one"),
        ({"max_chain_depth": -1}, "max_chain_depth must be between 0 and 255"),
    ],
    ids=["unknown-mode", "report-without-verify", "callback-without-verify", "both", "depth"],
)
def test_contradictory_verification_settings_are_refused(
    fields: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ValueError, match=fragment):
        ClientConfig(**fields)


# --- resumption ----------------------------------------------------------------------------


def _sessions(events: list[Event]) -> list[ClientSession | None]:
    return [e.session for e in events if isinstance(e, NewSessionTicketReceived)]


def test_no_session_is_kept_from_a_chain_that_did_not_verify() -> None:
    client, server = _pair(_good(), server_name="example.org", verify_mode="report")
    client_events, _ = handshake(client, server)
    client_events += pump(server, client)
    sessions = _sessions(client_events)
    assert sessions == [None]


def test_resumed_session_reports_the_clean_result_it_was_issued_with() -> None:
    chain = _good()
    client, server = _pair(chain)
    client_events, _ = handshake(client, server)
    client_events += pump(server, client)
    (session,) = _sessions(client_events)
    assert session is not None
    resumed = ClientConnection(_client_config(chain), server_hostname=HOST, session=session)
    handshake(resumed, ServerConnection(server.config))
    negotiated = resumed.negotiated
    assert negotiated is not None and negotiated.resumed
    assert negotiated.verification is not None and negotiated.verification.is_valid
    assert negotiated.verification.chain == chain.certificates


# --- the status type -----------------------------------------------------------------------

# gnutls_certificate_status_t, from gnutls/gnutls.h.
GNUTLS_VALUES: Final = {
    "INVALID": 1 << 1,
    "REVOKED": 1 << 5,
    "SIGNER_NOT_FOUND": 1 << 6,
    "SIGNER_NOT_CA": 1 << 7,
    "INSECURE_ALGORITHM": 1 << 8,
    "NOT_ACTIVATED": 1 << 9,
    "EXPIRED": 1 << 10,
    "SIGNATURE_FAILURE": 1 << 11,
    "REVOCATION_DATA_SUPERSEDED": 1 << 12,
    "UNEXPECTED_OWNER": 1 << 14,
    "REVOCATION_DATA_ISSUED_IN_FUTURE": 1 << 15,
    "SIGNER_CONSTRAINTS_FAILURE": 1 << 16,
    "PURPOSE_MISMATCH": 1 << 18,
    "MISSING_OCSP_STATUS": 1 << 19,
    "INVALID_OCSP_STATUS": 1 << 20,
    "UNKNOWN_CRIT_EXTENSIONS": 1 << 21,
}


@pytest.mark.parametrize("name", sorted(GNUTLS_VALUES))
def test_flag_has_the_value_of_its_gnutls_counterpart(name: str) -> None:
    assert VerificationStatus[name].value == GNUTLS_VALUES[name]


def test_the_one_flag_of_our_own_lies_outside_gnutls_values() -> None:
    assert set(S.__members__) - set(GNUTLS_VALUES) == {"CHAIN_TOO_LONG"}
    assert S.CHAIN_TOO_LONG.value > max(GNUTLS_VALUES.values())


def test_flags_and_names_list_the_single_flags_set() -> None:
    status = S.INVALID | S.EXPIRED | S.UNEXPECTED_OWNER
    assert status.flags == (S.INVALID, S.EXPIRED, S.UNEXPECTED_OWNER)
    assert status.names == ("INVALID", "EXPIRED", "UNEXPECTED_OWNER")
    assert S(0).flags == ()


def test_describe_leaves_out_invalid_unless_alone() -> None:
    assert (S.INVALID | S.EXPIRED | S.UNEXPECTED_OWNER).describe() == "expired, name mismatch"
    assert S.INVALID.describe() == "invalid"
    assert S(0).describe() == "verified"


@pytest.mark.parametrize(
    ("status", "alert"),
    [
        (S.INVALID | S.REVOKED | S.EXPIRED | S.SIGNER_NOT_FOUND, "CERTIFICATE_REVOKED"),
        (S.INVALID | S.EXPIRED | S.SIGNER_NOT_FOUND, "CERTIFICATE_EXPIRED"),
        (S.INVALID | S.NOT_ACTIVATED | S.UNEXPECTED_OWNER, "CERTIFICATE_EXPIRED"),
        (S.INVALID | S.SIGNER_NOT_FOUND | S.INSECURE_ALGORITHM, "UNKNOWN_CA"),
        (S.INVALID | S.CHAIN_TOO_LONG, "UNKNOWN_CA"),
        (S.INVALID | S.MISSING_OCSP_STATUS, "BAD_CERTIFICATE_STATUS_RESPONSE"),
        (S.INVALID | S.INSECURE_ALGORITHM, "BAD_CERTIFICATE"),
        (S.INVALID | S.PURPOSE_MISMATCH | S.SIGNER_NOT_CA, "BAD_CERTIFICATE"),
        (S.INVALID, "BAD_CERTIFICATE"),
        (S(0), "CERTIFICATE_UNKNOWN"),
    ],
)
def test_alert_follows_the_documented_priority(status: VerificationStatus, alert: str) -> None:
    assert alert_for(status) == AlertDescription[alert]


def test_result_refuses_a_verified_chain_with_a_dirty_status() -> None:
    with pytest.raises(ValueError, match="verified_chain goes with a clean status"):
        VerificationResult(
            status=S.INVALID, reasons=(), chain=(), verified_chain=(), server_name=None
        )


def test_result_refuses_a_flag_without_invalid() -> None:
    with pytest.raises(ValueError, match="INVALID must be set"):
        VerificationResult(
            status=S.EXPIRED, reasons=(), chain=(), verified_chain=None, server_name=None
        )
