"""Regression tests for the review of 0-RTT, psk_ke and revocation (commits 6cd300e..08a0958).

Each test shows one bug the review found; the module docstring of the test
file the behaviour belongs to says how the rest is covered.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Final

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.support.chains import NOW, Chain, Issued, leaf, root
from tests.support.engine_pairs import (
    FixedClock,
    alert_seen_by,
    handshake,
    make_pair,
    rewrite_outgoing_handshake,
    split_records,
)
from tests.support.revocation import must_staple
from triotls import VerificationStatus
from triotls.config import ClientConfig, ServerConfig
from triotls.engine import ClientConnection, ServerConnection
from triotls.engine.enums import (
    AlertDescription,
    ContentType,
    ExtensionType,
    HandshakeType,
    NamedGroup,
)
from triotls.engine.events import EarlyDataReceived, Event, NewSessionTicketReceived
from triotls.engine.messages import EncryptedExtensions, frame
from triotls.engine.tickets import ClientSession
from triotls.engine.verify import check_chain
from triotls.errors import CertificateVerificationError, InternalError, UnsupportedExtension

BASE: Final = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
EARLY: Final = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"


def _at(seconds: float) -> FixedClock:
    return FixedClock(BASE + datetime.timedelta(seconds=seconds))


def _first_connection(
    **server_kw: object,
) -> tuple[ClientConnection, ServerConnection, list[ClientSession]]:
    """A full handshake at time 0 with a 0-RTT server; the tickets it issued."""
    client, server = make_pair(
        client_kw={"clock": _at(0)},
        server_kw={"max_early_data_size": 1000, "clock": _at(0), **server_kw},
    )
    client_events, _ = handshake(client, server)
    sessions = [
        e.session
        for e in client_events
        if isinstance(e, NewSessionTicketReceived) and e.session is not None
    ]
    assert sessions
    return client, server, sessions


def _client(
    first: ClientConnection, session: ClientSession, at: float, **kw: object
) -> ClientConnection:
    config = dataclasses.replace(first.config, clock=_at(at), **kw)  # type: ignore[arg-type]
    return ClientConnection(config, server_hostname="localhost", session=session)


def _server(first: ServerConnection, at: float, **kw: object) -> ServerConnection:
    config = dataclasses.replace(first.config, clock=_at(at), **kw)  # type: ignore[arg-type]
    return ServerConnection(config)


def _early(events: list[Event]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, EarlyDataReceived))


# --- 0-RTT anti-replay (RFC 8446 §8) -----------------------------------------------


def test_client_hello_replayed_at_the_end_of_the_guard_window_delivers_no_early_data_twice() -> (
    None
):
    # The client thinks the ticket is exactly EARLY_DATA_AGE_WINDOW (10 s)
    # older than the server does. The guard keeps the offer for 2 * 10 s, and
    # a copy 20 s later is exactly 10 s off: the age check and the guard must
    # not both let it through at that instant.
    client0, server0, sessions = _first_connection()
    client = _client(client0, sessions[0], at=11)
    client.start_handshake(early_data=EARLY)
    wire = client.data_to_send()
    original = _server(server0, at=1).receive_data(wire)
    replay = _server(server0, at=21).receive_data(wire)  # shares the ReplayCache
    delivered = [batch for batch in (_early(original), _early(replay)) if batch]
    assert len(delivered) <= 1, "the same 0-RTT data was delivered twice"


# --- 0-RTT limits -------------------------------------------------------------------


def test_ticket_allowing_more_early_data_than_the_server_now_does_brings_none() -> None:
    # The ticket says 1000 bytes; the server has since lowered its limit to 10.
    client0, server0, sessions = _first_connection()
    client = _client(client0, sessions[0], at=1)
    client.start_handshake(early_data=EARLY)
    assert client.early_data_offered  # the client goes by the ticket
    server = _server(server0, at=1, max_early_data_size=10)
    events = server.receive_data(client.data_to_send())
    assert _early(events) == b"", "more early data than max_early_data_size was accepted"
    assert not server.can_send_application_data


# --- the client's alerts while its early key is being replaced -----------------------


def test_client_alert_after_hello_retry_and_resumed_server_hello_is_encrypted() -> None:
    # After a HelloRetryRequest the client writes its second ClientHello in
    # plaintext (early key dropped). A resumed ServerHello then gives it the
    # handshake key; an alert about EncryptedExtensions must use it (RFC 8446
    # §6: alerts follow the current write state), not go out in the clear.
    client0, server0, sessions = _first_connection()
    client = _client(client0, sessions[0], at=1, key_share_groups=(NamedGroup.X25519,))
    server = _server(server0, at=1, groups=(NamedGroup.SECP256R1,))

    def claim_early_data(raw: bytes) -> bytes:
        # A server claiming acceptance of early data after a retry.
        if raw[0] != HandshakeType.ENCRYPTED_EXTENSIONS:
            return raw
        exts = dict(EncryptedExtensions.decode(raw[4:]).extensions)
        exts[ExtensionType.EARLY_DATA] = b""
        body = EncryptedExtensions(extensions=exts).encode()
        return frame(HandshakeType.ENCRYPTED_EXTENSIONS, body)

    rewrite_outgoing_handshake(server, claim_early_data)
    client.start_handshake(early_data=EARLY)
    assert client.early_data_offered
    server.receive_data(client.data_to_send())  # HelloRetryRequest back
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())  # second ClientHello
    try:
        client.receive_data(server.data_to_send())
    except UnsupportedExtension:
        pass
    else:
        raise AssertionError("the client took early_data it did not offer")
    wire = client.data_to_send()
    assert [rec[0] for rec in split_records(wire)] == [ContentType.APPLICATION_DATA]
    assert alert_seen_by(server, wire) == AlertDescription.UNSUPPORTED_EXTENSION
    assert client.negotiated is None


# --- revocation: hostile certificates must give a status, not an exception -----------


def _with_duplicate_extension(issued: Issued) -> Issued:
    """``issued`` with two extensions of one OID (its signature no longer verifies)."""
    der = issued.cert.public_bytes(serialization.Encoding.DER)
    assert der.count(_OID_B) == 1
    return Issued(cert=x509.load_der_x509_certificate(der.replace(_OID_B, _OID_A)), key=issued.key)


_OID_A_NAME: Final = x509.ObjectIdentifier("1.3.6.1.4.1.99999.1")
_OID_B_NAME: Final = x509.ObjectIdentifier("1.3.6.1.4.1.99999.2")
# The encoded OIDs' last arcs: 99999 is 0x86 0x8d 0x1f in base 128.
_OID_A: Final = b"\x86\x8d\x1f\x01"
_OID_B: Final = b"\x86\x8d\x1f\x02"


def test_leaf_with_duplicate_extensions_is_invalid_when_ocsp_was_requested() -> None:
    anchor = root()
    marked = leaf(
        anchor,
        extra=[
            (x509.UnrecognizedExtension(_OID_A_NAME, b"\x05\x00"), False),
            (x509.UnrecognizedExtension(_OID_B_NAME, b"\x05\x00"), False),
        ],
    )
    chain = Chain.of(_with_duplicate_extension(marked), anchors=[anchor])
    # Clients request OCSP stapling by default, so this is the default path.
    result = check_chain(
        chain.certificates,
        chain.trust,
        purpose="server",
        server_name="localhost",
        now=NOW.timestamp(),
        ocsp_requested=True,
    )
    assert result.status & VerificationStatus.INVALID
    assert result.verified_chain is None


def test_must_staple_leaf_with_an_unparsable_subject_is_invalid_not_an_exception() -> None:
    anchor = root()
    marked = leaf(anchor, extra=[must_staple()])
    der = marked.cert.public_bytes(serialization.Encoding.DER)
    # The subject's CN, a UTF8String "localhost", made invalid UTF-8.
    at = der.index(b"\x0c\x09localhost")
    broken = der[: at + 2] + b"\xff" + der[at + 3 :]
    cert = x509.load_der_x509_certificate(broken)
    chain = Chain.of(Issued(cert=cert, key=marked.key), anchors=[anchor])
    result = check_chain(
        chain.certificates,
        chain.trust,
        purpose="server",
        server_name="localhost",
        now=NOW.timestamp(),
        ocsp_requested=True,
    )
    assert result.status & VerificationStatus.INVALID
    assert result.status & VerificationStatus.MISSING_OCSP_STATUS


def test_server_certificate_with_duplicate_extensions_is_refused_without_internal_error() -> None:
    # The default client requests OCSP, so the must-staple check reads the
    # unverified leaf's extensions; the handshake must fail with a
    # certificate alert, not internal_error.
    anchor = root()
    marked = leaf(
        anchor,
        extra=[
            (x509.UnrecognizedExtension(_OID_A_NAME, b"\x05\x00"), False),
            (x509.UnrecognizedExtension(_OID_B_NAME, b"\x05\x00"), False),
        ],
    )
    chain = Chain.of(_with_duplicate_extension(marked), anchors=[anchor])
    client = ClientConnection(
        ClientConfig(trust=chain.trust, clock=FixedClock(NOW)), server_hostname="localhost"
    )
    server = ServerConnection(ServerConfig(certificates=(chain.certified,), clock=FixedClock(NOW)))
    with pytest.raises(CertificateVerificationError) as info:
        handshake(client, server)
    assert not isinstance(info.value, InternalError)
    assert info.value.sent_alert != AlertDescription.INTERNAL_ERROR
