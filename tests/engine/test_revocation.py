"""Revocation: CRLs in the trust store, stapled OCSP responses and must-staple.

The matrix below lists bad chains with their revocation data (built here with
``cryptography``'s CRL and OCSP builders), each with the exact flags, the alert
the server must receive and a fragment of the client's error. Each runs twice,
with our own client and server: refused during the handshake (the default
mode), and reported (``verify_mode="report"``) with the handshake completing.
The good list holds chains whose revocation data is in order: they verify.

Then the wire: status_request in the ClientHello, the staple in the leaf's
CertificateEntry only when asked for, the codecs' errors; and client
certificates revoked by the server's ``client_trust`` CRLs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from tests.support.chains import (
    DAY,
    HOST,
    NOW,
    Chain,
    Issued,
    ec_key,
    intermediate,
    leaf,
    root,
)
from tests.support.engine_pairs import (
    FixedClock,
    alert_seen_by,
    handshake,
    rewrite_outgoing_handshake,
    server_flight,
)
from tests.support.revocation import (
    REVOKED,
    UNKNOWN,
    crl,
    must_staple,
    ocsp_response,
    responder,
)
from triotls import VerificationStatus
from triotls.config import CertifiedKey, ClientConfig, ServerConfig, TrustStore
from triotls.engine import ClientConnection, ServerConnection
from triotls.engine.enums import AlertDescription, ExtensionType, HandshakeType
from triotls.engine.extensions import (
    decode_certificate_status,
    decode_status_request,
    encode_certificate_status,
    encode_status_request,
)
from triotls.engine.messages import Certificate, CertificateEntry, ClientHello, frame
from triotls.engine.status import VerificationResult, alert_for
from triotls.engine.verify import verification_error
from triotls.errors import (
    CertificateVerificationError,
    DecodeError,
    IllegalParameter,
    InternalError,
    UnsupportedExtension,
)

S = VerificationStatus
REVOKED_ALERT: Final = AlertDescription.CERTIFICATE_REVOKED
STATUS_ALERT: Final = AlertDescription.BAD_CERTIFICATE_STATUS_RESPONSE


@dataclass(frozen=True)
class Setup:
    """A chain, the CRLs the client trusts along with its root, and the server's staple."""

    chain: Chain
    crls: tuple[x509.CertificateRevocationList, ...] = ()
    staple: bytes | None = None

    @property
    def trust(self) -> TrustStore:
        return TrustStore(self.chain.anchors, crls=self.crls)

    @property
    def certified(self) -> CertifiedKey:
        # The server refuses to be configured with a response about another
        # certificate, so a staple is set behind its back through a function.
        staple = self.staple
        return CertifiedKey(
            self.chain.certificates,
            self.chain.key,
            ocsp_response=None if staple is None else (lambda: staple),
        )


@dataclass(frozen=True)
class Pki:
    """Root, intermediate and leaf, with the issued objects kept for signing."""

    anchor: Issued
    middle: Issued
    end: Issued

    @property
    def chain(self) -> Chain:
        return Chain.of(self.end, self.middle, anchors=[self.anchor])


def _pki(**leaf_changes: Any) -> Pki:
    anchor = root()
    middle = intermediate(anchor)
    return Pki(anchor=anchor, middle=middle, end=leaf(middle, **leaf_changes))


# --- the setups ------------------------------------------------------------------------------


def _revoked_by_crl() -> Setup:
    p = _pki()
    return Setup(p.chain, crls=(crl(p.middle, [p.end.cert]),))


def _intermediate_revoked_by_root_crl() -> Setup:
    p = _pki()
    return Setup(p.chain, crls=(crl(p.anchor, [p.middle.cert]), crl(p.middle)))


def _revoked_by_ocsp() -> Setup:
    p = _pki()
    return Setup(p.chain, staple=ocsp_response(p.end.cert, p.middle, status=REVOKED))


def _ocsp_for_another_certificate() -> Setup:
    p = _pki()
    other = leaf(p.middle)
    return Setup(p.chain, staple=ocsp_response(other.cert, p.middle))


def _ocsp_naming_another_issuer() -> Setup:
    p = _pki()
    return Setup(p.chain, staple=ocsp_response(p.end.cert, p.middle, about_issuer=p.anchor.cert))


def _expired_ocsp() -> Setup:
    p = _pki()
    staple = ocsp_response(p.end.cert, p.middle, this_update=NOW - 5 * DAY, next_update=NOW - DAY)
    return Setup(p.chain, staple=staple)


def _old_ocsp_without_next_update() -> Setup:
    p = _pki()
    staple = ocsp_response(p.end.cert, p.middle, this_update=NOW - 11 * DAY, next_update=None)
    return Setup(p.chain, staple=staple)


def _ocsp_from_the_future() -> Setup:
    p = _pki()
    staple = ocsp_response(p.end.cert, p.middle, this_update=NOW + DAY, next_update=NOW + 3 * DAY)
    return Setup(p.chain, staple=staple)


def _ocsp_signed_by_wrong_key() -> Setup:
    p = _pki()
    return Setup(p.chain, staple=ocsp_response(p.end.cert, p.middle, signing_key=ec_key()))


def _ocsp_signed_by_an_unrelated_responder() -> Setup:
    p = _pki()
    stranger = root("Stranger CA")
    staple = ocsp_response(p.end.cert, p.middle, signed_by=stranger)
    return Setup(p.chain, staple=staple)


def _ocsp_delegated_without_ocsp_signing() -> Setup:
    p = _pki()
    staple = ocsp_response(p.end.cert, p.middle, signed_by=responder(p.middle, eku=False))
    return Setup(p.chain, staple=staple)


def _ocsp_delegated_by_another_ca() -> Setup:
    p = _pki()
    staple = ocsp_response(p.end.cert, p.middle, signed_by=responder(p.anchor))
    return Setup(p.chain, staple=staple)


def _ocsp_unknown() -> Setup:
    p = _pki()
    return Setup(p.chain, staple=ocsp_response(p.end.cert, p.middle, status=UNKNOWN))


def _ocsp_try_later() -> Setup:
    p = _pki()
    staple = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.TRY_LATER)
    return Setup(p.chain, staple=staple.public_bytes(serialization.Encoding.DER))


def _ocsp_garbage() -> Setup:
    return Setup(_pki().chain, staple=b"\x30\x03\x0a\x01\x00junk")


def _must_staple_without_staple() -> Setup:
    return Setup(_pki(extra=[must_staple()]).chain)


def _no_staple() -> Setup:
    return Setup(_pki().chain)


def _stale_crl() -> Setup:
    p = _pki()
    return Setup(p.chain, crls=(crl(p.middle, last_update=NOW - 9 * DAY, next_update=NOW - DAY),))


def _crl_from_the_future() -> Setup:
    p = _pki()
    return Setup(p.chain, crls=(crl(p.middle, last_update=NOW + DAY, next_update=NOW + 8 * DAY),))


def _crl_with_a_bad_signature() -> Setup:
    p = _pki()
    return Setup(p.chain, crls=(crl(p.middle, [p.end.cert], signer=ec_key(), aki=False),))


def _delta_crl() -> Setup:
    p = _pki()
    delta = (x509.DeltaCRLIndicator(1), True)
    return Setup(p.chain, crls=(crl(p.middle, extensions=[delta]),))


def _expired_and_revoked_by_crl() -> Setup:
    p = _pki(not_after=NOW - DAY)
    return Setup(p.chain, crls=(crl(p.middle, [p.end.cert]),))


def _expired_and_revoked_by_ocsp_and_stale_crl() -> Setup:
    p = _pki(not_after=NOW - DAY)
    return Setup(
        p.chain,
        crls=(crl(p.middle, last_update=NOW - 9 * DAY, next_update=NOW - DAY),),
        staple=ocsp_response(p.end.cert, p.middle, status=REVOKED),
    )


def _revoked_twice_and_must_staple_with_expired_staple() -> Setup:
    p = _pki(extra=[must_staple()])
    staple = ocsp_response(
        p.end.cert, p.middle, status=REVOKED, this_update=NOW - 5 * DAY, next_update=NOW - DAY
    )
    return Setup(p.chain, crls=(crl(p.middle, [p.end.cert]),), staple=staple)


# --- the matrix ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A bad setup and everything the client and server must see for it."""

    id: str
    build: Callable[[], Setup]
    status: VerificationStatus
    alert: AlertDescription
    fragment: str
    client: dict[str, Any] = field(default_factory=dict)
    server_name: str = HOST


BAD: Final = [
    Case(
        "revoked-by-crl",
        _revoked_by_crl,
        S.INVALID | S.REVOKED,
        REVOKED_ALERT,
        "the certificate for 'CN=localhost' is revoked: the CRL of 'CN=Test Intermediate' "
        "lists serial",
    ),
    Case(
        "intermediate-revoked-by-root-crl",
        _intermediate_revoked_by_root_crl,
        S.INVALID | S.REVOKED,
        REVOKED_ALERT,
        "the certificate for 'CN=Test Intermediate' is revoked: the CRL of 'CN=Test Root'",
    ),
    Case(
        "revoked-by-stapled-ocsp",
        _revoked_by_ocsp,
        S.INVALID | S.REVOKED,
        REVOKED_ALERT,
        "the certificate for 'CN=localhost' is revoked: the stapled OCSP response says so",
    ),
    Case(
        "ocsp-for-another-certificate",
        _ocsp_for_another_certificate,
        S.INVALID | S.INVALID_OCSP_STATUS,
        STATUS_ALERT,
        "the stapled OCSP response is not about the certificate for 'CN=localhost'",
    ),
    Case(
        "ocsp-naming-another-issuer",
        _ocsp_naming_another_issuer,
        S.INVALID | S.INVALID_OCSP_STATUS,
        STATUS_ALERT,
        "of another issuer or certificate",
    ),
    Case(
        "expired-ocsp-response",
        _expired_ocsp,
        S.INVALID | S.INVALID_OCSP_STATUS | S.REVOCATION_DATA_SUPERSEDED,
        STATUS_ALERT,
        "the stapled OCSP response has expired (nextUpdate 2025-05-31 12:00:00+00:00)",
    ),
    Case(
        "old-ocsp-response-without-next-update",
        _old_ocsp_without_next_update,
        S.INVALID | S.INVALID_OCSP_STATUS | S.REVOCATION_DATA_SUPERSEDED,
        STATUS_ALERT,
        "is more than 10 days ago",
    ),
    Case(
        "ocsp-response-from-the-future",
        _ocsp_from_the_future,
        S.INVALID | S.INVALID_OCSP_STATUS | S.REVOCATION_DATA_ISSUED_IN_FUTURE,
        STATUS_ALERT,
        "the stapled OCSP response is dated in the future",
    ),
    Case(
        "ocsp-signed-by-wrong-key",
        _ocsp_signed_by_wrong_key,
        S.INVALID | S.INVALID_OCSP_STATUS,
        STATUS_ALERT,
        "the signature on the stapled OCSP response does not verify with the key of "
        "'CN=Test Intermediate'",
    ),
    Case(
        "ocsp-signed-by-unrelated-responder",
        _ocsp_signed_by_an_unrelated_responder,
        S.INVALID | S.INVALID_OCSP_STATUS,
        STATUS_ALERT,
        "signed by 'CN=Stranger CA', which 'CN=Test Intermediate' did not issue",
    ),
    Case(
        "ocsp-delegate-without-ocsp-signing",
        _ocsp_delegated_without_ocsp_signing,
        S.INVALID | S.INVALID_OCSP_STATUS,
        STATUS_ALERT,
        "extendedKeyUsage lacks id-kp-OCSPSigning",
    ),
    Case(
        "ocsp-delegate-of-another-ca",
        _ocsp_delegated_by_another_ca,
        S.INVALID | S.INVALID_OCSP_STATUS,
        STATUS_ALERT,
        "which 'CN=Test Intermediate' did not issue (RFC 6960 §4.2.2.2)",
    ),
    Case(
        "ocsp-status-unknown",
        _ocsp_unknown,
        S.INVALID | S.INVALID_OCSP_STATUS,
        STATUS_ALERT,
        "the responder does not know the certificate for 'CN=localhost'",
    ),
    Case(
        "ocsp-try-later",
        _ocsp_try_later,
        S.INVALID | S.INVALID_OCSP_STATUS,
        STATUS_ALERT,
        "the stapled OCSP response has status try_later, not successful",
    ),
    Case(
        "ocsp-garbage",
        _ocsp_garbage,
        S.INVALID | S.INVALID_OCSP_STATUS,
        STATUS_ALERT,
        "the stapled OCSP response does not parse",
    ),
    Case(
        "must-staple-without-staple",
        _must_staple_without_staple,
        S.INVALID | S.MISSING_OCSP_STATUS,
        STATUS_ALERT,
        "requires an OCSP response (TLS feature status_request, 'must-staple', RFC 7633), "
        "and the server stapled none",
    ),
    Case(
        "required-staple-missing",
        _no_staple,
        S.INVALID | S.MISSING_OCSP_STATUS,
        STATUS_ALERT,
        "the server stapled no OCSP response, and the configuration requires one",
        client={"ocsp": "require"},
    ),
    Case(
        "stale-crl",
        _stale_crl,
        S.INVALID | S.REVOCATION_DATA_SUPERSEDED,
        AlertDescription.CERTIFICATE_UNKNOWN,
        "the CRL of 'CN=Test Intermediate' is out of date (nextUpdate",
    ),
    Case(
        "crl-from-the-future",
        _crl_from_the_future,
        S.INVALID | S.REVOCATION_DATA_ISSUED_IN_FUTURE,
        AlertDescription.CERTIFICATE_UNKNOWN,
        "the CRL of 'CN=Test Intermediate' is dated in the future",
    ),
    Case(
        "crl-with-a-bad-signature",
        _crl_with_a_bad_signature,
        S.INVALID,
        AlertDescription.BAD_CERTIFICATE,
        "the CRL of 'CN=Test Intermediate' was not used: its signature does not verify",
    ),
    Case(
        "delta-crl",
        _delta_crl,
        S.INVALID,
        AlertDescription.BAD_CERTIFICATE,
        "it is a delta CRL, and triotls uses complete CRLs only",
    ),
    # Several faults at once: every flag, and the alert of the highest priority.
    Case(
        "expired-and-revoked-by-crl",
        _expired_and_revoked_by_crl,
        S.INVALID | S.REVOKED | S.EXPIRED,
        REVOKED_ALERT,
        "did not verify (revoked, expired)",
    ),
    Case(
        "expired-revoked-by-ocsp-stale-crl-and-wrong-host",
        _expired_and_revoked_by_ocsp_and_stale_crl,
        S.INVALID | S.REVOKED | S.EXPIRED | S.REVOCATION_DATA_SUPERSEDED | S.UNEXPECTED_OWNER,
        REVOKED_ALERT,
        "did not verify (revoked, expired, revocation data out of date, name mismatch)",
        server_name="example.org",
    ),
    Case(
        "revoked-by-crl-and-expired-staple-on-must-staple-leaf",
        _revoked_twice_and_must_staple_with_expired_staple,
        S.INVALID | S.REVOKED | S.REVOCATION_DATA_SUPERSEDED | S.INVALID_OCSP_STATUS,
        REVOKED_ALERT,
        "did not verify (revoked, revocation data out of date, OCSP status invalid)",
    ),
]


def _good_ocsp() -> Setup:
    p = _pki()
    return Setup(p.chain, staple=ocsp_response(p.end.cert, p.middle))


def _good_delegated_ocsp() -> Setup:
    p = _pki()
    return Setup(p.chain, staple=ocsp_response(p.end.cert, p.middle, signed_by=responder(p.middle)))


def _good_ocsp_sha256_cert_id() -> Setup:
    p = _pki()
    return Setup(p.chain, staple=ocsp_response(p.end.cert, p.middle, cert_id_hash=hashes.SHA256()))


def _must_staple_with_staple() -> Setup:
    p = _pki(extra=[must_staple()])
    return Setup(p.chain, staple=ocsp_response(p.end.cert, p.middle))


def _crls_of_others() -> Setup:
    p = _pki()
    other = _pki()
    return Setup(
        p.chain,
        crls=(
            crl(p.middle, [leaf(p.middle).cert]),  # someone else's serial
            crl(p.anchor),
            crl(other.middle, [p.end.cert]),  # another CA's list
        ),
    )


def _crl_of_ca_certificates_only() -> Setup:
    p = _pki()
    scope = x509.IssuingDistributionPoint(
        full_name=None,
        relative_name=None,
        only_contains_user_certs=False,
        only_contains_ca_certs=True,
        only_some_reasons=None,
        indirect_crl=False,
        only_contains_attribute_certs=False,
    )
    return Setup(p.chain, crls=(crl(p.middle, [p.end.cert], extensions=[(scope, True)]),))


GOOD: Final[dict[str, Callable[[], Setup]]] = {
    "good-ocsp-from-issuer": _good_ocsp,
    "good-ocsp-from-delegated-responder": _good_delegated_ocsp,
    "good-ocsp-sha256-cert-id": _good_ocsp_sha256_cert_id,
    "must-staple-with-staple": _must_staple_with_staple,
    "crls-that-do-not-list-the-chain": _crls_of_others,
    "crl-scoped-to-ca-certificates-does-not-cover-the-leaf": _crl_of_ca_certificates_only,
}

_built: dict[str, Setup] = {}


def _setup(key: str, build: Callable[[], Setup]) -> Setup:
    if key not in _built:
        _built[key] = build()
    return _built[key]


def _pair(
    setup: Setup, *, server_name: str = HOST, **client_fields: Any
) -> tuple[ClientConnection, ServerConnection]:
    config = ClientConfig(trust=setup.trust, clock=FixedClock(NOW), **client_fields)
    client = ClientConnection(config, server_hostname=server_name)
    server = ServerConnection(
        ServerConfig(certificates=(setup.certified,), clock=FixedClock(NOW), ticket_count=0)
    )
    return client, server


@pytest.mark.parametrize("case", BAD, ids=[case.id for case in BAD])
def test_bad_revocation_is_refused_with_every_flag_and_its_alert(case: Case) -> None:
    setup = _setup(case.id, case.build)
    client, server = _pair(setup, server_name=case.server_name, **case.client)
    flight = server_flight(client, server)
    with pytest.raises(CertificateVerificationError) as info:
        client.receive_data(flight)
    error = info.value
    assert error.status == case.status
    assert str(error).startswith(
        f"the peer's certificate did not verify ({case.status.describe()}): "
    )
    assert case.fragment in str(error)
    assert error.sent_alert == case.alert == alert_for(case.status)
    assert alert_seen_by(server, client.data_to_send()) == case.alert
    assert error.result is not None
    assert error.result.verified_chain is None
    assert error.result.ocsp_response == setup.staple


@pytest.mark.parametrize("case", BAD, ids=[case.id for case in BAD])
def test_bad_revocation_is_reported_and_the_handshake_completes(case: Case) -> None:
    setup = _setup(case.id, case.build)
    client, server = _pair(setup, server_name=case.server_name, verify_mode="report", **case.client)
    handshake(client, server)
    assert client.negotiated is not None
    result = client.negotiated.verification
    assert result is not None
    assert result.status == case.status
    assert case.fragment in str(verification_error(result))
    assert result.ocsp_response == setup.staple


@pytest.mark.parametrize("name", sorted(GOOD))
def test_good_revocation_data_verifies(name: str) -> None:
    setup = _setup(name, GOOD[name])
    client, server = _pair(setup, ocsp="require" if setup.staple else "request")
    handshake(client, server)
    assert client.negotiated is not None
    result = client.negotiated.verification
    assert result is not None
    assert result.status == 0, result.reasons
    assert result.ocsp_response == setup.staple


def test_a_callback_sees_the_revocation_flags_and_may_accept() -> None:
    setup = _setup("revoked-by-stapled-ocsp", _revoked_by_ocsp)
    seen: list[VerificationStatus] = []

    def accept(result: VerificationResult) -> bool:
        seen.append(result.status)
        return True

    client, server = _pair(setup, verify_callback=accept)
    handshake(client, server)
    assert seen == [S.INVALID | S.REVOKED]
    assert client.negotiated is not None and client.negotiated.verification is not None
    assert client.negotiated.verification.status == S.INVALID | S.REVOKED


# --- what goes over the wire ---------------------------------------------------------------


def _client_hello(client: ClientConnection) -> ClientHello:
    client.start_handshake()
    data = client.data_to_send()
    return ClientHello.decode(data[5 + 4 :])


def test_client_asks_for_ocsp_by_default() -> None:
    client, _server = _pair(_setup("no-staple", _no_staple))
    hello = _client_hello(client)
    assert hello.extensions[ExtensionType.STATUS_REQUEST] == b"\x01\x00\x00\x00\x00"


def test_client_with_ocsp_off_does_not_ask_and_ignores_must_staple() -> None:
    setup = _setup("must-staple-without-staple", _must_staple_without_staple)
    client, _server = _pair(setup, ocsp="off")
    assert ExtensionType.STATUS_REQUEST not in _client_hello(client).extensions
    client, server = _pair(setup, ocsp="off")
    handshake(client, server)
    assert client.negotiated is not None and client.negotiated.verification is not None
    assert client.negotiated.verification.is_valid


def test_server_staples_only_for_a_client_that_asked() -> None:
    setup = _setup("good-ocsp-from-issuer", _good_ocsp)
    client, server = _pair(setup, ocsp="off")
    handshake(client, server)  # an unasked staple would be unsupported_extension
    assert client.negotiated is not None and client.negotiated.verification is not None
    assert client.negotiated.verification.ocsp_response is None


def test_server_staple_function_is_called_per_handshake_and_may_return_none() -> None:
    p = _pki()
    good = ocsp_response(p.end.cert, p.middle)
    answers: list[bytes | None] = [good, None]
    certified = CertifiedKey(p.chain.certificates, p.chain.key, ocsp_response=answers.pop)
    trust = TrustStore(p.chain.anchors)
    seen = []
    for _ in range(2):
        client = ClientConnection(
            ClientConfig(trust=trust, clock=FixedClock(NOW)), server_hostname=HOST
        )
        server = ServerConnection(ServerConfig(certificates=(certified,), clock=FixedClock(NOW)))
        handshake(client, server)
        assert client.negotiated is not None and client.negotiated.verification is not None
        seen.append(client.negotiated.verification.ocsp_response)
    assert seen == [None, good]


def _flight_with_leaf_extensions(
    client: ClientConnection, server: ServerConnection, extensions: dict[int, bytes]
) -> bytes:
    def rewrite(raw: bytes) -> bytes:
        if raw[0] != HandshakeType.CERTIFICATE:
            return raw
        cert = Certificate.decode(raw[4:])
        first, *rest = cert.certificate_list
        entry = CertificateEntry(cert_data=first.cert_data, extensions=extensions)
        return frame(raw[0], Certificate(certificate_list=(entry, *rest)).encode())

    rewrite_outgoing_handshake(server, rewrite)
    return server_flight(client, server)


def test_certificate_status_of_another_type_is_illegal_parameter() -> None:
    client, server = _pair(_setup("no-staple", _no_staple))
    flight = _flight_with_leaf_extensions(
        client, server, {ExtensionType.STATUS_REQUEST: b"\x02\x00\x00\x01\x00"}
    )
    with pytest.raises(IllegalParameter, match=r"status_type 2, and only ocsp\(1\)"):
        client.receive_data(flight)
    assert alert_seen_by(server, client.data_to_send()) == AlertDescription.ILLEGAL_PARAMETER


def test_truncated_certificate_status_is_decode_error() -> None:
    client, server = _pair(_setup("no-staple", _no_staple))
    flight = _flight_with_leaf_extensions(
        client, server, {ExtensionType.STATUS_REQUEST: b"\x01\x00\x00\x05ab"}
    )
    with pytest.raises(DecodeError, match="OCSPResponse"):
        client.receive_data(flight)
    assert alert_seen_by(server, client.data_to_send()) == AlertDescription.DECODE_ERROR


def test_unrequested_staple_is_unsupported_extension() -> None:
    setup = _setup("no-staple", _no_staple)
    client, server = _pair(setup, ocsp="off")
    staple = encode_certificate_status(b"\x30\x00")
    flight = _flight_with_leaf_extensions(client, server, {ExtensionType.STATUS_REQUEST: staple})
    with pytest.raises(UnsupportedExtension, match=r"did not request \(0x0005\)"):
        client.receive_data(flight)
    assert alert_seen_by(server, client.data_to_send()) == AlertDescription.UNSUPPORTED_EXTENSION


def test_sct_on_an_entry_is_unsupported_extension_even_with_ocsp_requested() -> None:
    client, server = _pair(_setup("no-staple", _no_staple))
    flight = _flight_with_leaf_extensions(
        client, server, {ExtensionType.SIGNED_CERTIFICATE_TIMESTAMP: b"\x00\x00"}
    )
    with pytest.raises(UnsupportedExtension, match=r"\(0x0012\)"):
        client.receive_data(flight)


def test_status_request_codecs_round_trip() -> None:
    assert decode_status_request(encode_status_request()) is True
    assert decode_status_request(b"\x02") is False  # another type: ignored (RFC 6066 §8)
    assert decode_certificate_status(encode_certificate_status(b"\x30\x03abc")) == b"\x30\x03abc"
    with pytest.raises(DecodeError, match="request_extensions length needs 2 bytes"):
        decode_status_request(b"\x01\x00\x00\x00")


# --- configuration ---------------------------------------------------------------------------


def test_certified_key_refuses_a_staple_that_is_not_ocsp() -> None:
    p = _pki()
    with pytest.raises(ValueError, match="ocsp_response is not a DER OCSP response"):
        CertifiedKey(p.chain.certificates, p.chain.key, ocsp_response=b"not ocsp")


def test_certified_key_refuses_an_unsuccessful_staple() -> None:
    p = _pki()
    unsuccessful = ocsp.OCSPResponseBuilder.build_unsuccessful(
        ocsp.OCSPResponseStatus.INTERNAL_ERROR
    ).public_bytes(serialization.Encoding.DER)
    with pytest.raises(ValueError, match="status internal_error; only a successful"):
        CertifiedKey(p.chain.certificates, p.chain.key, ocsp_response=unsuccessful)


def test_certified_key_refuses_a_staple_about_another_certificate() -> None:
    p = _pki()
    other = ocsp_response(leaf(p.middle).cert, p.middle)
    with pytest.raises(ValueError, match="not the leaf certificate's"):
        CertifiedKey(p.chain.certificates, p.chain.key, ocsp_response=other)


def test_certified_key_with_ocsp_response_keeps_chain_and_key() -> None:
    p = _pki()
    staple = ocsp_response(p.end.cert, p.middle)
    plain = CertifiedKey(p.chain.certificates, p.chain.key)
    stapled = plain.with_ocsp_response(staple)
    assert (stapled.chain, stapled.private_key) == (plain.chain, plain.private_key)
    assert stapled.current_ocsp_response() == staple
    assert plain.current_ocsp_response() is None


def test_staple_function_returning_a_wrong_type_fails_the_handshake_as_internal_error() -> None:
    p = _pki()
    certified = CertifiedKey(
        p.chain.certificates,
        p.chain.key,
        ocsp_response=lambda: "not bytes",  # type: ignore[arg-type]  # the error under test
    )
    client = ClientConnection(
        ClientConfig(trust=TrustStore(p.chain.anchors), clock=FixedClock(NOW)),
        server_hostname=HOST,
    )
    server = ServerConnection(ServerConfig(certificates=(certified,), clock=FixedClock(NOW)))
    client.start_handshake()
    with pytest.raises(InternalError) as info:
        server.receive_data(client.data_to_send())
    assert isinstance(info.value.__cause__, TypeError)
    assert "returned str, not bytes or None" in str(info.value.__cause__)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"ocsp": "always"}, "ocsp must be 'off', 'request' or 'require', not 'always'"),
        ({"ocsp": "require", "verify_peer": False}, "ocsp='require' needs verify_peer=True"),
    ],
)
def test_client_config_checks_ocsp(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClientConfig(**fields)


# --- client certificates --------------------------------------------------------------------


def test_server_refuses_a_client_certificate_its_client_trust_crl_revokes() -> None:
    server_pki = _pki()
    client_root = root("Client Root")
    client_leaf = leaf(client_root, eku=(x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH,))
    client_trust = TrustStore([client_root.cert], crls=[crl(client_root, [client_leaf.cert])])
    client = ClientConnection(
        ClientConfig(
            trust=TrustStore(server_pki.chain.anchors),
            clock=FixedClock(NOW),
            certificate=CertifiedKey([client_leaf.cert], client_leaf.key),
        ),
        server_hostname=HOST,
    )
    server = ServerConnection(
        ServerConfig(
            certificates=(CertifiedKey(server_pki.chain.certificates, server_pki.chain.key),),
            client_auth="required",
            client_trust=client_trust,
            clock=FixedClock(NOW),
        )
    )
    client.start_handshake()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    with pytest.raises(CertificateVerificationError) as info:
        server.receive_data(client.data_to_send())
    assert info.value.status == S.INVALID | S.REVOKED
    assert "the certificate for 'CN=localhost' is revoked: the CRL of 'CN=Client Root'" in str(
        info.value
    )
    assert alert_seen_by(client, server.data_to_send()) == REVOKED_ALERT


# --- TrustStore.with_crls ----------------------------------------------------------------------


def test_with_crls_loads_objects_pem_der_files_and_directories(tmp_path: Path) -> None:
    p = _pki()
    lists = [crl(p.middle), crl(p.anchor), crl(p.middle, [p.end.cert])]
    pem = lists[1].public_bytes(serialization.Encoding.PEM)
    der = lists[2].public_bytes(serialization.Encoding.DER)
    (tmp_path / "a.pem").write_bytes(pem + pem)
    (tmp_path / "b.der").write_bytes(der)
    store = TrustStore(p.chain.anchors).with_crls(lists[0], pem, der, tmp_path / "b.der")
    assert store.crls == (lists[0], lists[1], lists[2], lists[2])
    assert store.certificates == p.chain.anchors
    from_dir = TrustStore(p.chain.anchors).with_crls(str(tmp_path))
    assert from_dir.crls == (lists[1], lists[1], lists[2])


def test_with_crls_refuses_what_is_not_a_crl() -> None:
    with pytest.raises(ValueError, match=r"the bytes given does not hold a PEM or DER X\.509 CRL"):
        TrustStore([root().cert]).with_crls(b"-----BEGIN X509 CRL-----\nnope\n")


def test_trust_store_refuses_crls_that_are_not_parsed() -> None:
    with pytest.raises(TypeError, match=r"use TrustStore\.with_crls"):
        TrustStore([root().cert], crls=[b"der"])  # type: ignore[list-item]  # the error under test


def test_a_crl_is_checked_at_the_clock_time() -> None:
    # The same CRL is current on the 1st and stale a week later.
    setup = _setup("crls-that-do-not-list-the-chain", _crls_of_others)
    later = NOW + 8 * DAY
    config = ClientConfig(trust=setup.trust, clock=FixedClock(later), verify_mode="report")
    client = ClientConnection(config, server_hostname=HOST)
    server = ServerConnection(ServerConfig(certificates=(setup.certified,), clock=FixedClock(NOW)))
    handshake(client, server)
    assert client.negotiated is not None and client.negotiated.verification is not None
    assert client.negotiated.verification.status == S.INVALID | S.REVOCATION_DATA_SUPERSEDED
