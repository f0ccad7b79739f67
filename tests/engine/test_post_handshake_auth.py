"""Post-handshake client authentication (RFC 8446 §4.6.2).

§4.2.6 (the post_handshake_auth extension), §4.3.2 (CertificateRequest and
its certificate_request_context), §4.4 (the "Post-Handshake" row: context
ClientHello ... client Finished + CertificateRequest, base key
client_application_traffic_secret_N), §4.4.2-§4.4.4. Our client against
our server.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
import trustme

from tests.support.engine_pairs import (
    alert_seen_by,
    handshake,
    make_pair,
    pump,
    replace_extension,
    rewrite_client_hello,
    rewrite_outgoing_handshake,
    split_records,
    unknown_ca_trust,
)
from triotls.config import CertifiedKey, TrustStore
from triotls.engine import ClientConnection, ServerConnection
from triotls.engine.enums import AlertDescription, ExtensionType, HandshakeType
from triotls.engine.events import (
    ApplicationData,
    CertificateRequested,
    ClientCertificateReceived,
    Event,
)
from triotls.engine.messages import (
    Certificate,
    CertificateRequest,
    CertificateVerify,
    ClientHello,
    frame,
)
from triotls.engine.server import certificate_request
from triotls.errors import (
    CertificateVerificationError,
    DecodeError,
    DecryptError,
    IllegalParameter,
    UnexpectedMessage,
    UsageError,
)


@functools.cache
def _client_ca() -> trustme.CA:
    return trustme.CA(organization_name="triotls post-handshake client CA")


@functools.cache
def _client_trust() -> TrustStore:
    return TrustStore.from_pem(_client_ca().cert_pem.bytes())


@functools.cache
def _client_certified() -> CertifiedKey:
    leaf = _client_ca().issue_cert("client@example")  # allows clientAuth
    chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    return CertifiedKey.from_pem(chain, leaf.private_key_pem.bytes())


def _pair(
    *,
    offer: bool = True,
    certificate: CertifiedKey | None = None,
    client_trust: TrustStore | None = None,
    **server_kw: Any,
) -> tuple[ClientConnection, ServerConnection]:
    """A client offering post_handshake_auth and a server that did not ask in the handshake."""
    server_kw.setdefault("client_trust", client_trust or _client_trust())
    return make_pair(
        client_kw={"post_handshake_auth": offer, "certificate": certificate},
        server_kw=server_kw,
    )


def _established(
    *, offer: bool = True, certificate: CertifiedKey | None = None, **server_kw: Any
) -> tuple[ClientConnection, ServerConnection]:
    client, server = _pair(offer=offer, certificate=certificate, **server_kw)
    handshake(client, server)
    pump(server, client)  # tickets
    return client, server


def _exchange(client: ClientConnection, server: ServerConnection) -> list[Event]:
    """Request a certificate, let the client answer; return the server's events."""
    server.request_client_certificate()
    pump(server, client)
    return pump(client, server)


def _only(events: list[Event], kind: type[Event]) -> list[Event]:
    return [event for event in events if isinstance(event, kind)]


def _rewrite(msg_type: int, change: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    """A rewrite_outgoing_handshake hook that changes only messages of ``msg_type``."""

    def rewrite(raw: bytes) -> bytes:
        if raw[0] != msg_type:
            return raw
        return frame(msg_type, change(raw[4:]))

    return rewrite


# --- the offer ---------------------------------------------------------------------


def _client_hello(client: ClientConnection) -> ClientHello:
    client.start_handshake()
    record = split_records(client.data_to_send())[0]
    return ClientHello.decode(record[5 + 4 :])


def test_client_hello_offers_empty_post_handshake_auth_when_configured() -> None:
    client, _server = _pair(offer=True)
    assert _client_hello(client).extensions[ExtensionType.POST_HANDSHAKE_AUTH] == b""


def test_client_hello_does_not_offer_post_handshake_auth_by_default() -> None:
    client, _server = _pair(offer=False)
    assert ExtensionType.POST_HANDSHAKE_AUTH not in _client_hello(client).extensions


def test_non_empty_post_handshake_auth_extension_is_decode_error() -> None:
    client, server = _pair()
    client.start_handshake()
    hello = rewrite_client_hello(
        client.data_to_send(),
        lambda ch: replace(
            ch,
            extensions=replace_extension(ch.extensions, ExtensionType.POST_HANDSHAKE_AUTH, b"x"),
        ),
    )
    with pytest.raises(DecodeError, match="post_handshake_auth"):
        server.receive_data(hello)


# --- request and answer -------------------------------------------------------------


def test_request_with_certificate_authenticates_the_client() -> None:
    client, server = _established(certificate=_client_certified())
    server.request_client_certificate()
    client_events = pump(server, client)
    assert client_events == [CertificateRequested(certificate_sent=True)]
    received = _only(pump(client, server), ClientCertificateReceived)
    assert len(received) == 1
    event = received[0]
    assert isinstance(event, ClientCertificateReceived)
    assert event.peer_certificates[0] == _client_certified().chain[0]
    assert event.verification is not None and event.verification.is_valid
    assert server.negotiated is not None and server.negotiated.peer_certificates == ()


def test_request_without_certificate_reports_no_chain() -> None:
    client, server = _established(certificate=None)
    server.request_client_certificate()
    assert pump(server, client) == [CertificateRequested(certificate_sent=False)]
    assert pump(client, server) == [
        ClientCertificateReceived(peer_certificates=(), verification=None)
    ]


def test_request_carries_fresh_context_and_certificate_authorities() -> None:
    client, server = _established(certificate=_client_certified())
    requests: list[bytes] = []

    def capture(body: bytes) -> bytes:
        requests.append(body)
        return body

    rewrite_outgoing_handshake(server, _rewrite(HandshakeType.CERTIFICATE_REQUEST, capture))
    _exchange(client, server)
    _exchange(client, server)
    first, second = (CertificateRequest.decode(body) for body in requests)
    assert first.certificate_request_context
    assert first.certificate_request_context != second.certificate_request_context
    assert ExtensionType.SIGNATURE_ALGORITHMS in first.extensions
    assert ExtensionType.CERTIFICATE_AUTHORITIES in first.extensions


def test_two_requests_in_sequence_both_authenticate() -> None:
    client, server = _established(certificate=_client_certified())
    for _ in range(2):
        received = _only(_exchange(client, server), ClientCertificateReceived)
        assert len(received) == 1


def test_answer_after_client_key_update_uses_current_secret() -> None:
    client, server = _established(certificate=_client_certified())
    server.request_client_certificate()
    client.key_update(request_peer=False)  # the answer goes under secret N+1
    pump(server, client)
    assert len(_only(pump(client, server), ClientCertificateReceived)) == 1


def test_application_data_interleaves_with_the_exchange() -> None:
    client, server = _established(certificate=_client_certified())
    client.send_application_data(b"client before")
    server.request_client_certificate()
    server.send_application_data(b"server after request")
    client_events = pump(server, client)
    assert client_events == [
        CertificateRequested(certificate_sent=True),
        ApplicationData(b"server after request"),
    ]
    client.send_application_data(b"client after answer")
    server_events = pump(client, server)
    assert [type(event) for event in server_events] == [
        ApplicationData,
        ClientCertificateReceived,
        ApplicationData,
    ]
    assert server_events[0] == ApplicationData(b"client before")
    assert server_events[2] == ApplicationData(b"client after answer")
    server.send_application_data(b"server after answer")
    assert pump(server, client) == [ApplicationData(b"server after answer")]


def test_application_data_arrives_while_the_request_is_outstanding() -> None:
    client, server = _established(certificate=_client_certified())
    server.request_client_certificate()
    client.send_application_data(b"not yet seen the request")
    assert pump(client, server) == [ApplicationData(b"not yet seen the request")]
    pump(server, client)
    assert len(_only(pump(client, server), ClientCertificateReceived)) == 1


# --- usage errors ------------------------------------------------------------------


def test_request_when_client_did_not_offer_is_usage_error() -> None:
    client, server = _established(offer=False)
    with pytest.raises(UsageError, match="did not offer post_handshake_auth"):
        server.request_client_certificate()
    server.send_application_data(b"still usable")
    assert pump(server, client) == [ApplicationData(b"still usable")]


def test_request_before_the_handshake_is_usage_error() -> None:
    _client, server = _pair()
    with pytest.raises(UsageError, match="after the handshake"):
        server.request_client_certificate()


def test_second_request_while_one_is_outstanding_is_usage_error() -> None:
    _client, server = _established()
    server.request_client_certificate()
    with pytest.raises(UsageError, match="still unanswered"):
        server.request_client_certificate()


def test_request_without_client_trust_is_usage_error() -> None:
    client, server = make_pair(client_kw={"post_handshake_auth": True})
    handshake(client, server)
    with pytest.raises(UsageError, match="client_trust"):
        server.request_client_certificate()


def test_request_after_close_is_usage_error() -> None:
    _client, server = _established()
    server.close()
    with pytest.raises(UsageError, match="close"):
        server.request_client_certificate()


# --- protocol errors ---------------------------------------------------------------


def test_certificate_request_without_offer_is_unexpected_message() -> None:
    client, server = _established(offer=False)
    # Our server refuses to send it (see above), so queue one by hand.
    request = certificate_request(server.config, b"\x01" * 32)
    server.queue_handshake(frame(HandshakeType.CERTIFICATE_REQUEST, request.encode()))
    with pytest.raises(UnexpectedMessage, match="did not offer post_handshake_auth"):
        pump(server, client)
    assert alert_seen_by(server, client.data_to_send()) == AlertDescription.UNEXPECTED_MESSAGE


def test_certificate_not_echoing_context_is_illegal_parameter() -> None:
    client, server = _established(certificate=_client_certified())

    def other_context(body: bytes) -> bytes:
        cert = Certificate.decode(body)
        return replace(cert, certificate_request_context=b"\x00" * 32).encode()

    rewrite_outgoing_handshake(client, _rewrite(HandshakeType.CERTIFICATE, other_context))
    server.request_client_certificate()
    pump(server, client)
    with pytest.raises(IllegalParameter, match="does not echo"):
        pump(client, server)
    assert alert_seen_by(client, server.data_to_send()) == AlertDescription.ILLEGAL_PARAMETER


def test_bad_certificate_verify_is_decrypt_error() -> None:
    client, server = _established(certificate=_client_certified())

    def corrupt(body: bytes) -> bytes:
        cv = CertificateVerify.decode(body)
        signature = bytes([cv.signature[0], cv.signature[1], cv.signature[2] ^ 1])
        return replace(cv, signature=signature + cv.signature[3:]).encode()

    rewrite_outgoing_handshake(client, _rewrite(HandshakeType.CERTIFICATE_VERIFY, corrupt))
    server.request_client_certificate()
    pump(server, client)
    with pytest.raises(DecryptError):
        pump(client, server)
    assert alert_seen_by(client, server.data_to_send()) == AlertDescription.DECRYPT_ERROR


def test_finished_mismatch_is_decrypt_error() -> None:
    client, server = _established(certificate=_client_certified())

    def corrupt(body: bytes) -> bytes:
        return bytes([body[0] ^ 1]) + body[1:]

    rewrite_outgoing_handshake(client, _rewrite(HandshakeType.FINISHED, corrupt))
    server.request_client_certificate()
    pump(server, client)
    with pytest.raises(DecryptError, match="post-handshake Finished"):
        pump(client, server)
    assert alert_seen_by(client, server.data_to_send()) == AlertDescription.DECRYPT_ERROR


def test_finished_mismatch_without_certificate_is_decrypt_error() -> None:
    client, server = _established(certificate=None)
    rewrite_outgoing_handshake(
        client, _rewrite(HandshakeType.FINISHED, lambda body: bytes(len(body)))
    )
    server.request_client_certificate()
    pump(server, client)
    with pytest.raises(DecryptError, match="post-handshake Finished"):
        pump(client, server)


def test_untrusted_chain_is_refused_by_client_verify_mode() -> None:
    client, server = _established(certificate=_client_certified(), client_trust=unknown_ca_trust())
    server.request_client_certificate()
    pump(server, client)
    with pytest.raises(CertificateVerificationError):
        pump(client, server)
