"""Review round 6, server side: the ClientHello checks and what the server negotiates.

The first tests each showed a bug this review found (they failed before the
fixes: legacy_version 0x0300 accepted, resumption refused without usable
signature_algorithms, an empty supported_versions answered with
protocol_version, psk_key_exchange_modes checked only late or not at all, a
second ClientHello allowed to change its extensions); the others pin
behaviour the review checked against RFC 8446 that no other test covered.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import struct
from collections.abc import Callable
from typing import Final

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from tests.support.engine_pairs import (
    alert_seen_by,
    handshake,
    last_alert,
    make_pair,
    pump,
    replace_extension,
    rewrite_client_hello,
    rewrite_outgoing_handshake,
    split_records,
)
from triotls.engine import ClientConnection, ServerConnection
from triotls.engine.enums import (
    AlertDescription,
    CipherSuite,
    ContentType,
    ExtensionType,
    HandshakeType,
    NamedGroup,
    SignatureScheme,
)
from triotls.engine.events import NewSessionTicketReceived
from triotls.engine.extensions import (
    KeyShareEntry,
    OfferedPsks,
    PskIdentity,
    decode_key_share_ch,
    decode_pre_shared_key_ch,
    encode_alpn,
    encode_key_share_ch,
    encode_pre_shared_key_ch,
    encode_server_name,
    encode_u16_list,
)
from triotls.engine.messages import ClientHello, EncryptedExtensions, ServerHello, frame
from triotls.engine.tickets import ClientSession, TicketKeys
from triotls.errors import (
    DecodeError,
    IllegalParameter,
    MissingExtension,
    ProtocolVersionError,
    UnexpectedMessage,
)

AES128: Final = CipherSuite.TLS_AES_128_GCM_SHA256

Change = Callable[[ClientHello], ClientHello]


# --- helpers ----------------------------------------------------------------------------


def _hello_wire(
    client_kw: dict[str, object] | None = None, server_kw: dict[str, object] | None = None
) -> tuple[ClientConnection, ServerConnection, bytes]:
    client, server = make_pair(client_kw=client_kw, server_kw=server_kw)
    client.start_handshake()
    return client, server, client.data_to_send()


def _refused(server: ServerConnection, wire: bytes, error: type[Exception], match: str) -> int:
    """Feed ``wire``, expect ``error``, return the plaintext alert the server sent."""
    with pytest.raises(error, match=match):
        server.receive_data(wire)
    return last_alert(server.data_to_send())


def _set_extension(ext_type: int, data: bytes | None) -> Change:
    def change(hello: ClientHello) -> ClientHello:
        return dataclasses.replace(
            hello, extensions=replace_extension(hello.extensions, ext_type, data)
        )

    return change


def _expand_label(secret: bytes, label: bytes, context: bytes) -> bytes:
    full = b"tls13 " + label
    info = struct.pack(">HB", 32, len(full)) + full + bytes([len(context)]) + context
    return HKDFExpand(hashes.SHA256(), 32, info).derive(secret)


def _binder(psk: bytes, truncated_hello: bytes) -> bytes:
    """RFC 8446 §4.2.11.2 for SHA-256, from hmac and cryptography's HKDF only."""
    early = hmac.digest(bytes(32), psk, "sha256")  # HKDF-Extract(0, PSK)
    binder_key = _expand_label(early, b"res binder", hashlib.sha256().digest())
    finished_key = _expand_label(binder_key, b"finished", b"")
    return hmac.digest(finished_key, hashlib.sha256(truncated_hello).digest(), "sha256")


def _rebound(session: ClientSession, change: Change) -> Change:
    """``change``, then the binder recomputed, so the offer still verifies."""

    def rebind(hello: ClientHello) -> ClientHello:
        changed = change(hello)
        exts = dict(changed.extensions)
        psk_data = exts.pop(ExtensionType.PRE_SHARED_KEY)
        exts[ExtensionType.PRE_SHARED_KEY] = psk_data  # still last
        offer = decode_pre_shared_key_ch(psk_data)
        raw = frame(
            HandshakeType.CLIENT_HELLO, dataclasses.replace(changed, extensions=exts).encode()
        )
        binder = _binder(session.psk, raw[: len(raw) - offer.binders_length])
        exts[ExtensionType.PRE_SHARED_KEY] = encode_pre_shared_key_ch(
            OfferedPsks(identities=offer.identities[:1], binders=(binder,))
        )
        return dataclasses.replace(changed, extensions=exts)

    return rebind


def _session(keys: TicketKeys) -> ClientSession:
    client, server = make_pair(
        client_kw={"cipher_suites": (AES128,)}, server_kw={"ticket_keys": keys}
    )
    events, _ = handshake(client, server)
    for event in events:
        if isinstance(event, NewSessionTicketReceived) and event.session is not None:
            return event.session
    raise AssertionError("the first handshake brought no ticket")


def _resuming_hello(keys: TicketKeys) -> tuple[ClientSession, ServerConnection, bytes]:
    """A ticket of ``keys``, a fresh server holding them, and a ClientHello offering it."""
    session = _session(keys)
    client, server = make_pair(
        client_kw={"cipher_suites": (AES128,)}, server_kw={"ticket_keys": keys}
    )
    client.session = session
    client.start_handshake()
    return session, server, client.data_to_send()


def _server_hello(flight: bytes) -> ServerHello:
    first = split_records(flight)[0]
    assert first[0] == ContentType.HANDSHAKE and first[5] == HandshakeType.SERVER_HELLO
    return ServerHello.decode(first[9:])


def _after_hello_retry(
    server_kw: dict[str, object] | None = None,
) -> tuple[ClientConnection, ServerConnection, bytes]:
    client, server = make_pair(
        client_kw={"key_share_groups": (NamedGroup.X25519,), "alpn_protocols": ("h2",)},
        server_kw={"groups": (NamedGroup.SECP256R1,), **(server_kw or {})},
    )
    client.start_handshake()
    pump(client, server)
    pump(server, client)
    return client, server, client.data_to_send()


# =========================================================================================
# Findings
# =========================================================================================


def test_client_hello_with_legacy_version_0x0300_is_protocol_version() -> None:
    _client, server, wire = _hello_wire()
    bad = rewrite_client_hello(
        wire, lambda hello: dataclasses.replace(hello, legacy_version=0x0300)
    )
    alert = _refused(server, bad, ProtocolVersionError, "legacy_version")
    assert alert == AlertDescription.PROTOCOL_VERSION


def test_resumption_without_signature_algorithms_resumes() -> None:
    keys = TicketKeys()
    session, server, wire = _resuming_hello(keys)
    change = _rebound(session, _set_extension(ExtensionType.SIGNATURE_ALGORITHMS, None))
    server.receive_data(rewrite_client_hello(wire, change))
    assert ExtensionType.PRE_SHARED_KEY in _server_hello(server.data_to_send()).extensions


def test_resumption_with_signature_algorithms_our_key_cannot_use_resumes() -> None:
    keys = TicketKeys()
    session, server, wire = _resuming_hello(keys)
    ed25519_only = encode_u16_list([SignatureScheme.ED25519])  # the server's key is ECDSA
    change = _rebound(session, _set_extension(ExtensionType.SIGNATURE_ALGORITHMS, ed25519_only))
    server.receive_data(rewrite_client_hello(wire, change))
    assert ExtensionType.PRE_SHARED_KEY in _server_hello(server.data_to_send()).extensions


def test_client_hello_with_an_empty_supported_versions_body_is_decode_error() -> None:
    _client, server, wire = _hello_wire()
    bad = rewrite_client_hello(wire, _set_extension(ExtensionType.SUPPORTED_VERSIONS, b""))
    alert = _refused(server, bad, DecodeError, "supported_versions")
    assert alert == AlertDescription.DECODE_ERROR


@pytest.mark.parametrize("ticket_count", [0, 2])
def test_malformed_psk_key_exchange_modes_is_refused_before_the_server_flight(
    ticket_count: int,
) -> None:
    _client, server, wire = _hello_wire(server_kw={"ticket_count": ticket_count})
    bad = rewrite_client_hello(wire, _set_extension(ExtensionType.PSK_KEY_EXCHANGE_MODES, b"\x00"))
    alert = _refused(server, bad, DecodeError, "ke_modes")
    assert alert == AlertDescription.DECODE_ERROR


@pytest.mark.parametrize(
    "change",
    [
        _set_extension(ExtensionType.SERVER_NAME, encode_server_name("other.example")),
        _set_extension(ExtensionType.APPLICATION_LAYER_PROTOCOL_NEGOTIATION, encode_alpn([b"x"])),
    ],
    ids=["server_name", "alpn"],
)
def test_second_client_hello_changing_an_extension_is_illegal_parameter(change: Change) -> None:
    _client, server, retry = _after_hello_retry({"alpn_protocols": ("h2", "x")})
    alert = _refused(server, rewrite_client_hello(retry, change), IllegalParameter, "second")
    assert alert == AlertDescription.ILLEGAL_PARAMETER


# =========================================================================================
# Behaviour checked and pinned
# =========================================================================================


def test_client_hello_with_legacy_version_0x0301_is_still_accepted() -> None:
    # RFC 8446 §4.2.1: with supported_versions, legacy_version is not used to negotiate.
    _client, server, wire = _hello_wire()
    server.receive_data(
        rewrite_client_hello(wire, lambda hello: dataclasses.replace(hello, legacy_version=0x0301))
    )
    assert server.state_name == "ExpectClientFinished"


def test_unresumed_psk_offer_without_signature_algorithms_is_missing_extension() -> None:
    # RFC 8446 §4.2.3: authenticating with a certificate needs signature_algorithms.
    session, server, wire = _resuming_hello(TicketKeys())
    foreign = ServerConnection(dataclasses.replace(server.config, ticket_keys=TicketKeys()))
    change = _rebound(session, _set_extension(ExtensionType.SIGNATURE_ALGORITHMS, None))
    alert = _refused(
        foreign, rewrite_client_hello(wire, change), MissingExtension, "signature_algorithms"
    )
    assert alert == AlertDescription.MISSING_EXTENSION


def test_client_hello_with_a_33_byte_session_id_is_decode_error() -> None:
    _client, server, wire = _hello_wire()
    bad = rewrite_client_hello(wire, lambda h: dataclasses.replace(h, legacy_session_id=bytes(33)))
    alert = _refused(server, bad, DecodeError, "legacy_session_id")
    assert alert == AlertDescription.DECODE_ERROR


def test_client_hello_with_oid_filters_is_illegal_parameter() -> None:
    # RFC 8446 §4.2: oid_filters belongs in CertificateRequest only.
    _client, server, wire = _hello_wire()
    bad = rewrite_client_hello(wire, _set_extension(ExtensionType.OID_FILTERS, b"\x00\x00"))
    alert = _refused(server, bad, IllegalParameter, "not allowed")
    assert alert == AlertDescription.ILLEGAL_PARAMETER


def test_pre_shared_key_with_more_identities_than_binders_is_illegal_parameter() -> None:
    _client, server, wire = _hello_wire()
    identity = PskIdentity(identity=b"x" * 40, obfuscated_ticket_age=0)
    offer = OfferedPsks(identities=(identity, identity), binders=(bytes(32),))
    bad = rewrite_client_hello(
        wire, _set_extension(ExtensionType.PRE_SHARED_KEY, encode_pre_shared_key_ch(offer))
    )
    alert = _refused(server, bad, IllegalParameter, "2 identities but 1 binders")
    assert alert == AlertDescription.ILLEGAL_PARAMETER


def test_early_data_offered_without_a_psk_is_rejected_and_the_handshake_goes_on() -> None:
    # RFC 8446 §4.2.10: early data needs an accepted PSK; the server ignores the offer.
    _client, server, wire = _hello_wire()
    seen: list[bytes] = []

    def record(raw: bytes) -> bytes:
        if raw[0] == HandshakeType.ENCRYPTED_EXTENSIONS:
            seen.append(raw[4:])
        return raw

    rewrite_outgoing_handshake(server, record)
    server.receive_data(rewrite_client_hello(wire, _set_extension(ExtensionType.EARLY_DATA, b"")))
    assert server.state_name == "ExpectClientFinished"
    assert ExtensionType.EARLY_DATA not in EncryptedExtensions.decode(seen[0]).extensions


def test_client_hello_followed_by_more_bytes_in_its_record_is_unexpected_message() -> None:
    # RFC 8446 §5.1: a ClientHello precedes a key change, so it must end its record.
    client, server, wire = _hello_wire()
    record = split_records(wire)[0]
    payload = record[5:] + frame(HandshakeType.FINISHED, bytes(32))[:3]
    bad = record[:3] + len(payload).to_bytes(2, "big") + payload
    with pytest.raises(UnexpectedMessage, match="record boundary"):
        server.receive_data(bad)
    # The client reads the alert under the handshake keys the ServerHello gave it.
    assert alert_seen_by(client, server.data_to_send()) == AlertDescription.UNEXPECTED_MESSAGE


def test_client_finished_followed_by_more_bytes_in_its_record_is_unexpected_message() -> None:
    client, server = make_pair()

    def extend(raw: bytes) -> bytes:
        if raw[0] == HandshakeType.FINISHED:
            return raw + frame(HandshakeType.KEY_UPDATE, b"\x00")[:2]
        return raw

    rewrite_outgoing_handshake(client, extend)
    client.start_handshake()
    pump(client, server)
    pump(server, client)
    with pytest.raises(UnexpectedMessage, match="record boundary"):
        pump(client, server)
    assert not server.handshake_complete


def test_second_client_hello_with_an_extra_key_share_is_illegal_parameter() -> None:
    _client, server, retry = _after_hello_retry()
    (record,) = [rec for rec in split_records(retry) if rec[0] == ContentType.HANDSHAKE]
    hello = ClientHello.decode(record[9:])
    (p256,) = decode_key_share_ch(hello.extensions[ExtensionType.KEY_SHARE])
    x25519 = KeyShareEntry(group=NamedGroup.X25519, key_exchange=bytes(range(1, 33)))
    two = encode_key_share_ch([p256, x25519])
    bad = rewrite_client_hello(retry, _set_extension(ExtensionType.KEY_SHARE, two))
    alert = _refused(server, bad, IllegalParameter, "which the HelloRetryRequest asked for")
    assert alert == AlertDescription.ILLEGAL_PARAMETER


def test_change_cipher_spec_before_the_first_client_hello_is_unexpected_message() -> None:
    # RFC 8446 §5: a dummy CCS is dropped only after the first ClientHello.
    _client, server = make_pair()
    alert = _refused(server, b"\x14\x03\x03\x00\x01\x01", UnexpectedMessage, "change_cipher_spec")
    assert alert == AlertDescription.UNEXPECTED_MESSAGE


def test_resumption_with_a_rebound_unchanged_hello_resumes() -> None:
    # The control for the binder helper above: recomputing it changes nothing.
    keys = TicketKeys()
    session, server, wire = _resuming_hello(keys)
    server.receive_data(rewrite_client_hello(wire, _rebound(session, lambda hello: hello)))
    assert ExtensionType.PRE_SHARED_KEY in _server_hello(server.data_to_send()).extensions
