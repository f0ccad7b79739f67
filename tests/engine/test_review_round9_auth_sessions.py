"""Review round 9: client certificates on the server side, and the client's session cache.

RFC 8446 §4.3.2 (CertificateRequest), §4.4.2 / §4.4.2.4 (the client's
Certificate), §4.4.3 (its CertificateVerify), §4.6.1 (tickets), §4.6.2
(post-handshake authentication); docs/verification.rst ("Client
certificates", "Tickets and resumption") and docs/resumption.rst (the cache).
"""

from __future__ import annotations

import datetime
import functools
from typing import Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.engine_pairs import (
    SERVER_NAME,
    alert_seen_by,
    client_ca,
    client_certified,
    client_trust,
    handshake,
    pki,
    pump,
    rewrite_outgoing_handshake,
)
from triotls.config import CertifiedKey, ClientConfig, ServerConfig
from triotls.engine import ClientConnection, ServerConnection
from triotls.engine.enums import AlertDescription, HandshakeType, SignatureScheme
from triotls.engine.events import (
    ApplicationData,
    ClientCertificateReceived,
    NewSessionTicketReceived,
)
from triotls.engine.messages import CertificateVerify, frame
from triotls.engine.state import HandshakeKind
from triotls.engine.status import VerificationStatus
from triotls.engine.tickets import ClientSession, SessionCache, TicketKeys
from triotls.errors import (
    CertificateRequired,
    CertificateVerificationError,
    IllegalParameter,
    UnexpectedMessage,
)

# --- a client PKI of our own, with the CA key at hand (for CRLs) -----------------


def _ca_key() -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(client_ca().private_key_pem.bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)  # trustme's default CA key
    return key


def _ca_cert() -> x509.Certificate:
    return x509.load_pem_x509_certificate(client_ca().cert_pem.bytes())


def _crl_revoking(cert: x509.Certificate) -> x509.CertificateRevocationList:
    now = datetime.datetime.now(datetime.timezone.utc)
    ca = _ca_cert()
    revoked = (
        x509.RevokedCertificateBuilder()
        .serial_number(cert.serial_number)
        .revocation_date(now - datetime.timedelta(minutes=10))
        .build()
    )
    return (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(now - datetime.timedelta(minutes=10))
        .next_update(now + datetime.timedelta(days=1))
        .add_revoked_certificate(revoked)
        .add_extension(x509.CRLNumber(2), critical=False)
        .sign(_ca_key(), hashes.SHA256())
    )


@functools.cache
def _client_without_san() -> CertifiedKey:
    """A client leaf with clientAuth and no subjectAltName, issued by the client CA."""
    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    ca = _ca_cert()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(_ca_key().public_key()),
            critical=False,
        )
        .sign(_ca_key(), hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return CertifiedKey.from_pem(
        cert.public_bytes(pem),
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


# --- helpers ------------------------------------------------------------------------


def _server_config(**changes: Any) -> ServerConfig:
    fields: dict[str, Any] = {
        "certificates": (pki("ecdsa").certified,),
        "client_auth": "required",
        "client_trust": client_trust(),
        **changes,
    }
    return ServerConfig(**fields)


def _client(certificate: CertifiedKey | None, **changes: Any) -> ClientConnection:
    return ClientConnection(
        ClientConfig(trust=pki("ecdsa").trust, certificate=certificate, **changes),
        server_hostname=SERVER_NAME,
    )


def _to_client_finished(client: ClientConnection, server: ServerConnection) -> None:
    client.start_handshake()
    pump(client, server)
    pump(server, client)
    assert client.handshake_complete


def _sessions(client: ClientConnection, server: ServerConnection) -> list[ClientSession]:
    client_events, _ = handshake(client, server)
    client_events += pump(server, client)  # deferred tickets follow the client's Finished
    return [
        e.session
        for e in client_events
        if isinstance(e, NewSessionTicketReceived) and e.session is not None
    ]


def _resume(session: ClientSession, config: ServerConfig) -> ServerConnection:
    client = ClientConnection(
        ClientConfig(trust=pki("ecdsa").trust), server_hostname=SERVER_NAME, session=session
    )
    server = ServerConnection(config)
    handshake(client, server)
    return server


# --- (A) the client's Certificate and CertificateVerify -----------------------------


def test_client_certificate_without_subject_alt_name_is_accepted() -> None:
    # docs/verification.rst: "no name is checked: what the certificate names is
    # for the application to judge". A client leaf naming its holder in the
    # subject only (common for user certificates) has nothing wrong with it.
    client = _client(_client_without_san())
    server = ServerConnection(_server_config())
    handshake(client, server)
    negotiated = server.negotiated
    assert negotiated is not None and negotiated.verification is not None
    assert negotiated.verification.is_valid, negotiated.verification.reasons


def test_certificate_without_certificate_verify_is_unexpected_message() -> None:
    # RFC 8446 §4.4.3: a non-empty Certificate must be followed by CertificateVerify.
    client = _client(client_certified())
    server = ServerConnection(_server_config())
    rewrite_outgoing_handshake(
        client, lambda raw: b"" if raw[0] == HandshakeType.CERTIFICATE_VERIFY else raw
    )
    _to_client_finished(client, server)
    with pytest.raises(UnexpectedMessage):
        server.receive_data(client.data_to_send())
    assert alert_seen_by(client, server.data_to_send()) == AlertDescription.UNEXPECTED_MESSAGE
    assert not server.handshake_complete


def test_certificate_verify_with_a_scheme_we_did_not_offer_is_illegal_parameter() -> None:
    # RFC 8446 §4.4.3: the algorithm must be one offered in signature_algorithms
    # of the CertificateRequest. Ours offered ECDSA P-256 and Ed25519 only.
    offered = (SignatureScheme.ECDSA_SECP256R1_SHA256, SignatureScheme.ED25519)
    client = _client(client_certified())
    server = ServerConnection(_server_config(signature_schemes=offered))

    def other_scheme(raw: bytes) -> bytes:
        if raw[0] != HandshakeType.CERTIFICATE_VERIFY:
            return raw
        cv = CertificateVerify.decode(raw[4:])
        changed = CertificateVerify(
            algorithm=SignatureScheme.ECDSA_SECP384R1_SHA384, signature=cv.signature
        )
        return frame(HandshakeType.CERTIFICATE_VERIFY, changed.encode())

    rewrite_outgoing_handshake(client, other_scheme)
    _to_client_finished(client, server)
    with pytest.raises(IllegalParameter, match="not offered"):
        server.receive_data(client.data_to_send())
    assert alert_seen_by(client, server.data_to_send()) == AlertDescription.ILLEGAL_PARAMETER


def test_client_chain_to_an_unrelated_root_with_intermediates_is_unknown_ca() -> None:
    # A chain whose own intermediates look complete, but to a root we do not trust.
    other = trustme.CA()
    middle = other.create_child_ca()
    leaf = middle.issue_cert("mallory@example")
    chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    certified = CertifiedKey.from_pem(chain, leaf.private_key_pem.bytes())
    client = _client(certified)
    server = ServerConnection(_server_config())
    _to_client_finished(client, server)
    with pytest.raises(CertificateVerificationError) as info:
        server.receive_data(client.data_to_send())
    assert info.value.status & VerificationStatus.SIGNER_NOT_FOUND
    assert alert_seen_by(client, server.data_to_send()) == AlertDescription.UNKNOWN_CA


# --- (A) report mode and resumption --------------------------------------------------


def test_report_mode_ticket_resumes_optional_auth_as_unauthenticated() -> None:
    # docs/verification.rst: a ticket carries the client's chain only when it
    # verified cleanly (not when "report" let a failing chain through).
    config = _server_config(
        client_auth="optional", client_verify_mode="report", ticket_keys=TicketKeys()
    )
    client = _client(pki("ecdsa").certified)  # not issued by the client CA
    server = ServerConnection(config)
    sessions = _sessions(client, server)
    assert server.negotiated is not None and server.negotiated.verification is not None
    assert not server.negotiated.verification.is_valid  # reported, not refused
    assert sessions
    resumed = _resume(sessions[0], config)
    negotiated = resumed.negotiated
    assert negotiated is not None and negotiated.handshake_kind is HandshakeKind.RESUMED
    assert negotiated.peer_certificates == ()
    assert negotiated.verification is None
    assert negotiated.verified_chain is None


def test_report_mode_ticket_does_not_resume_required_auth() -> None:
    config = _server_config(client_verify_mode="report", ticket_keys=TicketKeys())
    sessions = _sessions(_client(pki("ecdsa").certified), ServerConnection(config))
    assert sessions
    client = ClientConnection(
        ClientConfig(trust=pki("ecdsa").trust), server_hostname=SERVER_NAME, session=sessions[0]
    )
    server = ServerConnection(config)
    _to_client_finished(client, server)
    with pytest.raises(CertificateRequired):
        server.receive_data(client.data_to_send())


def test_resumption_is_refused_once_a_crl_revokes_the_ticket_client_certificate() -> None:
    # docs/verification.rst: the ticket's chain is verified again "with its
    # current clock, client_trust ...": client_trust's CRLs included.
    keys = TicketKeys()
    sessions = _sessions(
        _client(client_certified()), ServerConnection(_server_config(ticket_keys=keys))
    )
    assert sessions
    revoking = client_trust().with_crls(_crl_revoking(client_certified().chain[0]))
    config = _server_config(ticket_keys=keys, client_trust=revoking)
    client = ClientConnection(
        ClientConfig(trust=pki("ecdsa").trust), server_hostname=SERVER_NAME, session=sessions[0]
    )
    server = ServerConnection(config)
    _to_client_finished(client, server)
    with pytest.raises(CertificateRequired):  # a full handshake, which asks again
        server.receive_data(client.data_to_send())


# --- (A) post-handshake authentication in report mode -------------------------------


def test_post_handshake_report_mode_surfaces_a_failing_chain_and_keeps_the_connection() -> None:
    client = _client(pki("ecdsa").certified, post_handshake_auth=True)  # not the client CA
    server = ServerConnection(_server_config(client_auth="none", client_verify_mode="report"))
    handshake(client, server)
    pump(server, client)
    server.request_client_certificate()
    pump(server, client)
    answers = [e for e in pump(client, server) if isinstance(e, ClientCertificateReceived)]
    assert len(answers) == 1
    verification = answers[0].verification
    assert verification is not None and verification.status & VerificationStatus.SIGNER_NOT_FOUND
    assert answers[0].peer_certificates[0] == pki("ecdsa").leaf
    # The handshake's values do not change, and the connection goes on.
    assert server.negotiated is not None and server.negotiated.peer_certificates == ()
    server.send_application_data(b"still here")
    assert any(isinstance(e, ApplicationData) for e in pump(server, client))


# --- (B) the session cache -----------------------------------------------------------


def _session(name: str, *, received_at: float = 1000.0, lifetime: int = 100) -> ClientSession:
    return ClientSession(
        ticket=name.encode(),
        psk=bytes(32),
        cipher_suite=0x1301,
        ticket_age_add=0,
        lifetime=lifetime,
        received_at=received_at,
        alpn_protocol=None,
        server_name=name,
    )


def test_cache_stays_bounded_under_many_hosts() -> None:
    cache = SessionCache(max_entries=8, per_key=2)
    for host in range(1000):
        for _ in range(3):
            cache.store((f"h{host}", ()), _session(f"h{host}"))
    assert len(cache) <= 16
    assert cache.take(("h999", ()), 1000.0) is not None
    assert cache.take(("h0", ()), 1000.0) is None


def test_expired_sessions_are_dropped_from_the_cache_when_taken() -> None:
    cache = SessionCache()
    cache.store("k", _session("a", received_at=1000.0, lifetime=10))
    assert cache.take("k", 1010.0) is None
    assert len(cache) == 0
