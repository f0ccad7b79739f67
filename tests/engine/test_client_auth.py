"""Client certificates (mTLS) on the server side, and loading certificates and keys.

RFC 8446 §4.3.2 (CertificateRequest), §4.4.2 and §4.4.2.4 (the client's
Certificate, certificate_required), §4.4.3 (the client's CertificateVerify),
§4.2.4 (certificate_authorities), §4.6.1 (tickets). The client side already
answers a CertificateRequest; these tests drive our client against our server.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Final

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

import triotls.engine.server as server_module
from tests.support.engine_pairs import (
    SERVER_NAME,
    KeyKind,
    alert_seen_by,
    handshake,
    make_pair,
    pki,
    pump,
    rewrite_outgoing_handshake,
    unknown_ca_trust,
)
from triotls.config import CertifiedKey, ClientConfig, ServerConfig, TrustStore
from triotls.engine import ClientConnection, ServerConnection
from triotls.engine.enums import AlertDescription, ExtensionType, HandshakeType, SignatureScheme
from triotls.engine.events import Event, NewSessionTicketReceived
from triotls.engine.extensions import decode_certificate_authorities, decode_u16_list
from triotls.engine.messages import Certificate, frame
from triotls.engine.state import HandshakeKind
from triotls.engine.status import VerificationResult, VerificationStatus
from triotls.engine.tickets import ClientSession, TicketKeys
from triotls.errors import (
    CertificateRequired,
    CertificateVerificationError,
    DecryptError,
    HandshakeFailure,
    IllegalParameter,
)

PASSWORD: Final = b"correct horse battery staple"


@functools.cache
def _client_ca() -> trustme.CA:
    return trustme.CA(organization_name="triotls client CA")


@functools.cache
def _client_trust() -> TrustStore:
    return TrustStore.from_pem(_client_ca().cert_pem.bytes())


@functools.cache
def _client_leaf() -> trustme.LeafCert:
    # trustme's leaves allow clientAuth and serverAuth.
    return _client_ca().issue_cert("client@example")


@functools.cache
def _client_certified() -> CertifiedKey:
    leaf = _client_leaf()
    chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    return CertifiedKey.from_pem(chain, leaf.private_key_pem.bytes())


def _pair(
    client_auth: str = "required",
    *,
    certificate: CertifiedKey | None = None,
    client_trust: TrustStore | None = None,
    server_kw: Mapping[str, Any] | None = None,
    client_kw: Mapping[str, Any] | None = None,
) -> tuple[ClientConnection, ServerConnection]:
    server_fields: dict[str, Any] = {"client_auth": client_auth}
    if client_auth != "none":
        server_fields["client_trust"] = client_trust or _client_trust()
    return make_pair(
        client_kw={"certificate": certificate, **(client_kw or {})},
        server_kw={**server_fields, **(server_kw or {})},
    )


def _refused_by_server(client: ClientConnection, server: ServerConnection) -> None:
    """Run up to the client's second flight, which must leave the server failing."""
    client.start_handshake()
    pump(client, server)
    pump(server, client)
    assert client.handshake_complete  # the client's side ends with its Finished


# --- required, optional, none ----------------------------------------------------


def test_required_client_certificate_authenticates_the_client() -> None:
    client, server = _pair("required", certificate=_client_certified())
    handshake(client, server)
    negotiated = server.negotiated
    assert negotiated is not None
    leaf = _client_certified().chain[0]
    assert negotiated.peer_certificates[0] == leaf
    assert negotiated.verification is not None and negotiated.verification.is_valid
    assert negotiated.verification.server_name is None  # no name check for clients
    assert negotiated.verified_chain is not None
    assert negotiated.verified_chain[-1] == _client_trust().certificates[0]


def test_optional_client_certificate_authenticates_a_client_that_sends_one() -> None:
    client, server = _pair("optional", certificate=_client_certified())
    handshake(client, server)
    assert server.negotiated is not None
    assert server.negotiated.peer_certificates[0] == _client_certified().chain[0]
    assert server.negotiated.verification is not None
    assert server.negotiated.verification.is_valid


def test_optional_client_certificate_accepts_a_client_without_one() -> None:
    client, server = _pair("optional", certificate=None)
    handshake(client, server)
    assert server.negotiated is not None
    assert server.negotiated.peer_certificates == ()
    assert server.negotiated.verification is None
    assert server.negotiated.verified_chain is None


def test_client_auth_none_sends_no_certificate_request() -> None:
    client, server = _pair("none", certificate=_client_certified())
    seen: list[int] = []

    def record(raw: bytes) -> bytes:
        seen.append(raw[0])
        return raw

    rewrite_outgoing_handshake(client, record)
    handshake(client, server)
    assert HandshakeType.CERTIFICATE not in seen
    assert server.negotiated is not None and server.negotiated.peer_certificates == ()
    assert server.negotiated.verification is None


def test_required_client_certificate_missing_is_certificate_required() -> None:
    client, server = _pair("required", certificate=None)
    _refused_by_server(client, server)
    with pytest.raises(CertificateRequired, match="requires one"):
        server.receive_data(client.data_to_send())
    assert alert_seen_by(client, server.data_to_send()) == AlertDescription.CERTIFICATE_REQUIRED


# --- refused chains and signatures -----------------------------------------------


def test_client_certificate_from_an_unknown_ca_is_unknown_ca() -> None:
    client, server = _pair("required", certificate=pki("ecdsa").certified)
    _refused_by_server(client, server)
    with pytest.raises(CertificateVerificationError, match="issuer unknown") as info:
        server.receive_data(client.data_to_send())
    assert info.value.status & VerificationStatus.SIGNER_NOT_FOUND
    assert alert_seen_by(client, server.data_to_send()) == AlertDescription.UNKNOWN_CA


def test_client_certificate_for_server_auth_only_is_refused() -> None:
    # The Ed25519 engine-test chain's leaf has extendedKeyUsage serverAuth only.
    server_only = pki("ed25519")
    client, server = _pair(
        "required", certificate=server_only.certified, client_trust=server_only.trust
    )
    _refused_by_server(client, server)
    with pytest.raises(CertificateVerificationError, match="wrong purpose") as info:
        server.receive_data(client.data_to_send())
    assert info.value.status & VerificationStatus.PURPOSE_MISMATCH
    assert alert_seen_by(client, server.data_to_send()) == AlertDescription.BAD_CERTIFICATE


def test_bad_client_certificate_verify_signature_is_decrypt_error() -> None:
    client, server = _pair("required", certificate=_client_certified())

    def corrupt_signature(raw: bytes) -> bytes:
        if raw[0] != HandshakeType.CERTIFICATE_VERIFY:
            return raw
        return raw[:-1] + bytes([raw[-1] ^ 0x01])

    rewrite_outgoing_handshake(client, corrupt_signature)
    _refused_by_server(client, server)
    with pytest.raises(DecryptError, match="does not verify"):
        server.receive_data(client.data_to_send())
    assert alert_seen_by(client, server.data_to_send()) == AlertDescription.DECRYPT_ERROR


def test_client_certificate_with_a_request_context_is_illegal_parameter() -> None:
    client, server = _pair("required", certificate=_client_certified())

    def add_context(raw: bytes) -> bytes:
        if raw[0] != HandshakeType.CERTIFICATE:
            return raw
        cert = Certificate.decode(raw[4:])
        changed = Certificate(
            certificate_request_context=b"x", certificate_list=cert.certificate_list
        )
        return frame(HandshakeType.CERTIFICATE, changed.encode())

    rewrite_outgoing_handshake(client, add_context)
    _refused_by_server(client, server)
    with pytest.raises(IllegalParameter, match="certificate_request_context"):
        server.receive_data(client.data_to_send())


# --- report and callback modes ----------------------------------------------------


def test_report_mode_completes_and_reports_an_unverified_client_chain() -> None:
    client, server = _pair(
        "required",
        certificate=pki("ecdsa").certified,
        server_kw={"client_verify_mode": "report"},
    )
    handshake(client, server)
    negotiated = server.negotiated
    assert negotiated is not None and negotiated.verification is not None
    assert negotiated.verification.status & VerificationStatus.SIGNER_NOT_FOUND
    assert negotiated.peer_certificates[0] == pki("ecdsa").leaf
    assert negotiated.verified_chain is None


def test_verify_callback_sees_the_client_chain_and_may_accept_it() -> None:
    seen: list[VerificationResult] = []

    def accept(result: VerificationResult) -> bool:
        seen.append(result)
        return True

    client, server = _pair(
        "required",
        certificate=pki("ecdsa").certified,
        server_kw={"client_verify_callback": accept},
    )
    handshake(client, server)
    assert len(seen) == 1 and seen[0].status & VerificationStatus.SIGNER_NOT_FOUND
    assert seen[0].chain[0] == pki("ecdsa").leaf
    assert server.negotiated is not None and server.negotiated.verification == seen[0]


def test_verify_callback_refusing_a_verified_client_chain_is_certificate_unknown() -> None:
    client, server = _pair(
        "required",
        certificate=_client_certified(),
        server_kw={"client_verify_callback": lambda result: False},
    )
    _refused_by_server(client, server)
    with pytest.raises(CertificateVerificationError, match="verify_callback refused"):
        server.receive_data(client.data_to_send())
    assert alert_seen_by(client, server.data_to_send()) == AlertDescription.CERTIFICATE_UNKNOWN


# --- the CertificateRequest --------------------------------------------------------


def _server_config(**changes: Any) -> ServerConfig:
    fields: dict[str, Any] = {
        "certificates": (pki("ecdsa").certified,),
        "client_auth": "required",
        "client_trust": _client_trust(),
        **changes,
    }
    return ServerConfig(**fields)


def test_certificate_request_lists_the_client_trust_roots_and_our_schemes() -> None:
    trust = TrustStore([*_client_trust().certificates, *unknown_ca_trust().certificates])
    config = _server_config(client_trust=trust)
    request = server_module.certificate_request(config)
    assert request.certificate_request_context == b""
    names = decode_certificate_authorities(
        request.extensions[ExtensionType.CERTIFICATE_AUTHORITIES]
    )
    # Each is the DER Name as it sits in its root's own encoding (a SEQUENCE).
    roots = trust.certificates
    assert len(names) == len(roots)
    for name, root in zip(names, roots, strict=True):
        assert name[0] == 0x30 and name in root.tbs_certificate_bytes
    schemes = decode_u16_list(request.extensions[ExtensionType.SIGNATURE_ALGORITHMS], "schemes")
    assert schemes == config.signature_schemes


def test_certificate_request_leaves_out_certificate_authorities_over_the_size_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(server_module, "MAX_CERTIFICATE_AUTHORITIES_SIZE", 16)
    request = server_module.certificate_request(_server_config())
    assert ExtensionType.CERTIFICATE_AUTHORITIES not in request.extensions
    assert ExtensionType.SIGNATURE_ALGORITHMS in request.extensions


def test_client_auth_without_client_trust_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="needs client_trust"):
        ServerConfig(certificates=(pki("ecdsa").certified,), client_auth="required")


def test_unknown_client_auth_value_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="client_auth must be"):
        _server_config(client_auth="sometimes")


def test_client_verify_callback_with_report_mode_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="choose one"):
        _server_config(client_verify_mode="report", client_verify_callback=lambda r: True)


# --- tickets and resumption ----------------------------------------------------------


def _full_handshake_with_tickets(
    client: ClientConnection, server: ServerConnection
) -> list[ClientSession]:
    client_events, _ = handshake(client, server)
    client_events += pump(server, client)  # tickets sent after the client's Finished
    return [
        e.session
        for e in client_events
        if isinstance(e, NewSessionTicketReceived) and e.session is not None
    ]


def _tickets(events: list[Event]) -> int:
    return sum(isinstance(e, NewSessionTicketReceived) for e in events)


def test_tickets_follow_the_client_finished_when_a_certificate_is_requested() -> None:
    client, server = _pair("required", certificate=_client_certified())
    client.start_handshake()
    pump(client, server)
    first_flight = pump(server, client)
    assert _tickets(first_flight) == 0
    pump(client, server)
    assert server.handshake_complete
    assert _tickets(pump(server, client)) == server.config.ticket_count


def test_tickets_come_with_the_first_flight_without_client_auth() -> None:
    client, server = _pair("none")
    client.start_handshake()
    pump(client, server)
    assert _tickets(pump(server, client)) == server.config.ticket_count


def _resume(
    session: ClientSession, config: ServerConfig, certificate: CertifiedKey | None
) -> tuple[ClientConnection, ServerConnection]:
    client = ClientConnection(
        ClientConfig(trust=pki("ecdsa").trust, certificate=certificate),
        server_hostname=SERVER_NAME,
        session=session,
    )
    return client, ServerConnection(config)


def test_resumption_carries_the_client_identity() -> None:
    config = _server_config(ticket_keys=TicketKeys())
    client = ClientConnection(
        ClientConfig(trust=pki("ecdsa").trust, certificate=_client_certified()),
        server_hostname=SERVER_NAME,
    )
    sessions = _full_handshake_with_tickets(client, ServerConnection(config))
    assert sessions
    client, server = _resume(sessions[0], config, certificate=None)
    handshake(client, server)
    negotiated = server.negotiated
    assert negotiated is not None and negotiated.handshake_kind is HandshakeKind.RESUMED
    assert negotiated.peer_certificates[0] == _client_certified().chain[0]
    assert negotiated.verification is not None and negotiated.verification.is_valid


def test_resumption_does_not_bypass_required_client_auth() -> None:
    keys = TicketKeys()
    optional = _server_config(client_auth="optional", ticket_keys=keys)
    client = ClientConnection(ClientConfig(trust=pki("ecdsa").trust), server_hostname=SERVER_NAME)
    sessions = _full_handshake_with_tickets(client, ServerConnection(optional))
    assert sessions  # tickets for a client that sent no certificate
    client, server = _resume(sessions[0], _server_config(ticket_keys=keys), certificate=None)
    _refused_by_server(client, server)
    # A full handshake, not a resumption: it asked for a certificate.
    with pytest.raises(CertificateRequired):
        server.receive_data(client.data_to_send())


def test_resumption_verifies_the_ticket_client_chain_again() -> None:
    keys = TicketKeys()
    config = _server_config(ticket_keys=keys)
    client = ClientConnection(
        ClientConfig(trust=pki("ecdsa").trust, certificate=_client_certified()),
        server_hostname=SERVER_NAME,
    )
    sessions = _full_handshake_with_tickets(client, ServerConnection(config))
    # The server now trusts another root: the ticket's chain no longer verifies.
    changed = _server_config(ticket_keys=keys, client_trust=unknown_ca_trust())
    client, server = _resume(sessions[0], changed, certificate=None)
    _refused_by_server(client, server)
    with pytest.raises(CertificateRequired):
        server.receive_data(client.data_to_send())


def test_resumption_with_optional_client_auth_keeps_an_unauthenticated_session() -> None:
    config = _server_config(client_auth="optional", ticket_keys=TicketKeys())
    client = ClientConnection(ClientConfig(trust=pki("ecdsa").trust), server_hostname=SERVER_NAME)
    sessions = _full_handshake_with_tickets(client, ServerConnection(config))
    client, server = _resume(sessions[0], config, certificate=None)
    handshake(client, server)
    assert server.negotiated is not None
    assert server.negotiated.handshake_kind is HandshakeKind.RESUMED
    assert server.negotiated.peer_certificates == ()


# --- several server certificates, and the resolver ---------------------------------


def _served_leaf(config_kw: Mapping[str, Any], client_kw: Mapping[str, Any]) -> x509.Certificate:
    client, server = make_pair(
        client_kw={"check_hostname": False, **client_kw}, server_kw=config_kw
    )
    handshake(client, server)
    assert client.negotiated is not None
    return client.negotiated.peer_certificates[0]


def _any_trust(*kinds: KeyKind) -> TrustStore:
    return TrustStore([cert for kind in kinds for cert in pki(kind).trust.certificates])


def test_server_picks_the_certificate_whose_key_fits_the_client_schemes() -> None:
    both = {"certificates": (pki("ecdsa").certified, pki("rsa").certified)}
    trust = _any_trust("ecdsa", "rsa")
    rsa_only = {"trust": trust, "signature_schemes": (SignatureScheme.RSA_PSS_RSAE_SHA256,)}
    ecdsa_only = {"trust": trust, "signature_schemes": (SignatureScheme.ECDSA_SECP256R1_SHA256,)}
    assert _served_leaf(both, rsa_only) == pki("rsa").leaf
    assert _served_leaf(both, ecdsa_only) == pki("ecdsa").leaf


def test_certificate_resolver_gets_the_sni_name_and_client_schemes() -> None:
    calls: list[tuple[str | None, tuple[int, ...]]] = []

    def resolve(name: str | None, schemes: tuple[int, ...]) -> CertifiedKey | None:
        calls.append((name, schemes))
        return pki("rsa").certified

    leaf = _served_leaf(
        {"certificates": (pki("ecdsa").certified,), "certificate_resolver": resolve},
        {"trust": _any_trust("ecdsa", "rsa")},
    )
    assert leaf == pki("rsa").leaf
    assert calls == [(SERVER_NAME, tuple(ClientConfig().signature_schemes))]


def test_certificate_resolver_returning_none_falls_back_to_certificates() -> None:
    leaf = _served_leaf(
        {"certificates": (pki("ecdsa").certified,), "certificate_resolver": lambda n, s: None},
        {"trust": pki("ecdsa").trust},
    )
    assert leaf == pki("ecdsa").leaf


def test_certificate_resolver_choosing_an_unfit_key_is_handshake_failure() -> None:
    client, server = make_pair(
        client_kw={"signature_schemes": (SignatureScheme.ECDSA_SECP256R1_SHA256,)},
        server_kw={"certificate_resolver": lambda n, s: pki("rsa").certified},
    )
    client.start_handshake()
    with pytest.raises(HandshakeFailure, match="certificate_resolver"):
        pump(client, server)


# --- loading certificates and keys ---------------------------------------------------


def _encrypted_key_pem(password: bytes) -> bytes:
    key = serialization.load_pem_private_key(_client_leaf().private_key_pem.bytes(), None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )


def _chain_pem() -> bytes:
    return b"".join(blob.bytes() for blob in _client_leaf().cert_chain_pems)


def test_from_pem_loads_an_encrypted_key_with_its_password() -> None:
    certified = CertifiedKey.from_pem(_chain_pem(), _encrypted_key_pem(PASSWORD), password=PASSWORD)
    assert certified.chain[0] == _client_certified().chain[0]


def test_from_pem_with_a_wrong_password_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        CertifiedKey.from_pem(_chain_pem(), _encrypted_key_pem(PASSWORD), password=b"wrong")


def test_from_pem_with_a_key_of_another_certificate_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="does not match"):
        CertifiedKey.from_pem(_chain_pem(), pki("ecdsa").key_pem)


def _pkcs12(password: bytes | None, *, with_ca: bool = True) -> bytes:
    certified = _client_certified()
    key = certified.private_key
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password is not None
        else serialization.NoEncryption()
    )
    cas = [_client_trust().certificates[0]] if with_ca else None
    return pkcs12.serialize_key_and_certificates(
        b"client", key, certified.chain[0], cas, encryption
    )


@pytest.mark.parametrize("password", [None, PASSWORD])
def test_from_pkcs12_loads_key_leaf_and_extra_certificates(password: bytes | None) -> None:
    certified = CertifiedKey.from_pkcs12(_pkcs12(password), password)
    assert certified.chain[0] == _client_certified().chain[0]
    assert certified.chain[1:] == _client_trust().certificates


def test_from_pkcs12_with_a_wrong_password_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        CertifiedKey.from_pkcs12(_pkcs12(PASSWORD), b"wrong")


def test_from_pkcs12_without_a_key_is_a_value_error() -> None:
    bundle = pkcs12.serialize_key_and_certificates(
        b"only a cert", None, None, list(_client_certified().chain), serialization.NoEncryption()
    )
    with pytest.raises(ValueError, match="both a private key"):
        CertifiedKey.from_pkcs12(bundle)


def test_from_pkcs12_certified_key_authenticates_a_client() -> None:
    certified = CertifiedKey.from_pkcs12(_pkcs12(None, with_ca=False))
    client, server = _pair("required", certificate=certified)
    handshake(client, server)
    assert server.negotiated is not None
    assert server.negotiated.peer_certificates == certified.chain
