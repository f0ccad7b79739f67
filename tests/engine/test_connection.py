"""What both sides share: handshake outcomes, records, KeyUpdate, exporters, close, errors."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from tests.support.engine_pairs import (
    SERVER_NAME,
    KeyKind,
    alert_seen_by,
    handshake,
    last_alert,
    make_pair,
    pump,
    records,
    split_records,
)
from triotls.engine.connection import MAX_IDLE_RECORDS
from triotls.engine.enums import (
    AlertDescription,
    CipherSuite,
    ContentType,
    ExtensionType,
    HandshakeType,
    NamedGroup,
    SignatureScheme,
)
from triotls.engine.events import (
    ApplicationData,
    CloseNotify,
    HandshakeComplete,
    KeyUpdated,
    NewSessionTicketReceived,
)
from triotls.engine.extensions import encode_u16_list
from triotls.engine.messages import CertificateRequest, KeyUpdate, NewSessionTicket, frame
from triotls.engine.record import KEY_UPDATE_AFTER
from triotls.engine.state import HandshakeKind
from triotls.errors import (
    AlertReceived,
    BadRecordMac,
    DecodeError,
    IllegalParameter,
    RecordOverflow,
    TruncationError,
    UnexpectedMessage,
    UsageError,
)

ALL_SUITES = list(CipherSuite)
ALL_GROUPS = [
    NamedGroup.X25519MLKEM768,
    NamedGroup.X25519,
    NamedGroup.SECP256R1,
    NamedGroup.SECP384R1,
]


def _app_data(events: Sequence[object]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, ApplicationData))


# --- full handshakes ---------------------------------------------------------


@pytest.mark.parametrize("suite", ALL_SUITES, ids=lambda s: s.name)
@pytest.mark.parametrize("group", ALL_GROUPS, ids=lambda g: g.name)
def test_handshake_negotiates_each_suite_with_each_group(
    suite: CipherSuite, group: NamedGroup
) -> None:
    client, server = make_pair(
        client_kw={"cipher_suites": (suite,), "groups": (group,), "key_share_groups": (group,)}
    )
    client_events, server_events = handshake(client, server)
    # The server's two tickets (ServerConfig.ticket_count) come with its flight.
    assert client_events == [HandshakeComplete()] + [NewSessionTicketReceived(lifetime=7200)] * 2
    assert server_events == [HandshakeComplete()]
    for conn in (client, server):
        assert conn.negotiated is not None
        assert conn.negotiated.version == 0x0304
        assert conn.negotiated.cipher_suite == suite
        assert conn.negotiated.group == group
        assert conn.negotiated.handshake_kind == HandshakeKind.FULL
    client.send_application_data(b"ping")
    assert pump(client, server) == [ApplicationData(b"ping")]
    server.send_application_data(b"pong")
    assert pump(server, client) == [ApplicationData(b"pong")]


@pytest.mark.parametrize(
    ("kind", "scheme"),
    [
        ("ecdsa", SignatureScheme.ECDSA_SECP256R1_SHA256),
        ("rsa", SignatureScheme.RSA_PSS_RSAE_SHA256),
        ("ed25519", SignatureScheme.ED25519),
    ],
)
def test_handshake_signs_with_the_scheme_that_fits_the_certificate_key(
    kind: KeyKind, scheme: SignatureScheme
) -> None:
    client, server = make_pair(kind=kind)
    handshake(client, server)
    assert client.negotiated is not None and server.negotiated is not None
    assert client.negotiated.signature_scheme == scheme
    assert server.negotiated.signature_scheme == scheme
    assert client.negotiated.peer_certificates[0] == server.config.certificates[0].chain[0]
    assert client.negotiated.verified_chain is not None
    assert client.negotiated.verified_chain[0] == client.negotiated.peer_certificates[0]


def test_default_configs_prefer_the_hybrid_post_quantum_group() -> None:
    client, server = make_pair()
    handshake(client, server)
    assert client.negotiated is not None
    assert client.negotiated.group == NamedGroup.X25519MLKEM768


def test_handshake_without_peer_verification_reports_no_verified_chain() -> None:
    client, server = make_pair(client_kw={"verify_peer": False})
    handshake(client, server)
    assert client.negotiated is not None
    assert client.negotiated.verified_chain is None
    assert len(client.negotiated.peer_certificates) == 1


def test_handshake_completes_when_bytes_arrive_one_at_a_time() -> None:
    client, server = make_pair()
    client.start_handshake()
    events: list[object] = []
    for _ in range(4):
        for src, dst in ((client, server), (server, client)):
            for byte in src.data_to_send():
                events += dst.receive_data(bytes([byte]))
    assert client.handshake_complete and server.handshake_complete
    assert events.count(HandshakeComplete()) == 2


def test_handshake_without_middlebox_compat_sends_no_change_cipher_spec() -> None:
    client, server = make_pair(client_kw={"middlebox_compat": False})
    client.start_handshake()
    hello = client.data_to_send()
    server.receive_data(hello)
    flight = server.data_to_send()
    client.receive_data(flight)
    finished = client.data_to_send()
    for wire in (hello, flight, finished):
        assert ContentType.CHANGE_CIPHER_SPEC not in [t for t, _ in records(wire)]
    server.receive_data(finished)
    assert server.handshake_complete


def test_handshake_with_middlebox_compat_sends_change_cipher_spec_both_ways() -> None:
    client, server = make_pair(client_kw={"middlebox_compat": True})
    client.start_handshake()
    server.receive_data(client.data_to_send())
    flight = server.data_to_send()
    client.receive_data(flight)
    finished = client.data_to_send()
    assert records(flight)[1] == (ContentType.CHANGE_CIPHER_SPEC, 1)
    assert records(finished)[0] == (ContentType.CHANGE_CIPHER_SPEC, 1)


# --- application data ----------------------------------------------------------


def test_application_data_is_split_into_records_of_at_most_16_kib() -> None:
    client, server = make_pair(client_kw={"record_size_limit": None})
    handshake(client, server)
    payload = bytes(range(256)) * 200  # 51_200 bytes
    client.send_application_data(payload)
    wire = client.data_to_send()
    lengths = [length for _, length in records(wire)]
    assert len(lengths) == 4
    assert max(lengths) <= 2**14 + 256
    assert _app_data(server.receive_data(wire)) == payload


def test_application_data_records_look_like_application_data_on_the_wire() -> None:
    client, server = make_pair()
    handshake(client, server)
    client.send_application_data(b"secret")
    wire = client.data_to_send()
    assert [t for t, _ in records(wire)] == [ContentType.APPLICATION_DATA]
    assert b"secret" not in wire


def test_send_application_data_before_the_handshake_is_a_usage_error() -> None:
    client, server = make_pair()
    with pytest.raises(UsageError, match="after the handshake"):
        client.send_application_data(b"early")
    client.start_handshake()
    with pytest.raises(UsageError, match="after the handshake"):
        client.send_application_data(b"early")
    with pytest.raises(UsageError, match="after the handshake"):
        server.send_application_data(b"early")


def test_usage_error_does_not_break_the_connection() -> None:
    client, server = make_pair()
    client.start_handshake()
    with pytest.raises(UsageError):
        client.send_application_data(b"early")
    assert client.error is None
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    assert client.handshake_complete


def test_application_data_record_before_the_handshake_is_unexpected_message() -> None:
    _client, server = make_pair()
    with pytest.raises(UnexpectedMessage, match="plaintext application data"):
        server.receive_data(b"\x17\x03\x03\x00\x05hello")
    assert last_alert(server.data_to_send()) == AlertDescription.UNEXPECTED_MESSAGE


def test_empty_application_data_record_produces_no_event() -> None:
    client, server = make_pair()
    handshake(client, server)
    client.send_application_data(b"")
    assert pump(client, server) == []


def test_empty_application_data_records_up_to_the_limit_are_dropped() -> None:
    client, server = make_pair()
    handshake(client, server)
    for _ in range(MAX_IDLE_RECORDS):
        client.send_application_data(b"")
    assert pump(client, server) == []
    assert server.error is None


def test_a_flood_of_empty_application_data_records_is_refused() -> None:
    client, server = make_pair()
    handshake(client, server)
    for _ in range(MAX_IDLE_RECORDS + 1):
        client.send_application_data(b"")
    with pytest.raises(UnexpectedMessage, match="empty application data records"):
        pump(client, server)
    assert alert_seen_by(client, server.data_to_send()) == AlertDescription.UNEXPECTED_MESSAGE


def test_data_between_empty_records_restarts_the_count() -> None:
    client, server = make_pair()
    handshake(client, server)
    for _ in range(3):
        for _ in range(MAX_IDLE_RECORDS):
            client.send_application_data(b"")
        client.send_application_data(b"x")
    assert _app_data(pump(client, server)) == b"xxx"


# --- record_size_limit (RFC 8449) -----------------------------------------------


def test_server_honours_the_clients_record_size_limit_on_the_wire() -> None:
    client, server = make_pair(client_kw={"record_size_limit": 256})
    handshake(client, server)
    server.send_application_data(bytes(5000))
    wire = server.data_to_send()
    lengths = [length for _, length in records(wire)]
    # 255 bytes of content + 1 type byte + 16 bytes of AEAD tag.
    assert max(lengths) == 256 + 16
    assert len(lengths) == -(-5000 // 255)
    assert _app_data(client.receive_data(wire)) == bytes(5000)


def test_client_honours_the_servers_record_size_limit_on_the_wire() -> None:
    client, server = make_pair(server_kw={"record_size_limit": 512})
    handshake(client, server)
    client.send_application_data(bytes(3000))
    wire = client.data_to_send()
    assert max(length for _, length in records(wire)) == 512 + 16
    assert _app_data(server.receive_data(wire)) == bytes(3000)


def test_server_encrypted_flight_already_honours_the_record_size_limit() -> None:
    client, server = make_pair(client_kw={"record_size_limit": 64})
    client.start_handshake()
    server.receive_data(client.data_to_send())
    flight = server.data_to_send()
    protected = [n for t, n in records(flight) if t == ContentType.APPLICATION_DATA]
    assert max(protected) <= 64 + 16
    client.receive_data(flight)
    assert client.handshake_complete


def test_record_over_the_announced_record_size_limit_is_record_overflow() -> None:
    client, server = make_pair(client_kw={"record_size_limit": 64})
    handshake(client, server)
    # Make the server misbehave: forget the limit the client announced.
    server._writer.max_fragment = 2**14
    server.send_application_data(bytes(100))
    with pytest.raises(RecordOverflow, match="exceeds the limit of 64"):
        client.receive_data(server.data_to_send())
    assert alert_seen_by(server, client.data_to_send()) == AlertDescription.RECORD_OVERFLOW


# --- record layer errors -----------------------------------------------------------


def test_tampered_application_data_record_is_bad_record_mac() -> None:
    client, server = make_pair()
    handshake(client, server)
    client.send_application_data(b"attack at dawn")
    wire = bytearray(client.data_to_send())
    wire[10] ^= 0x01
    with pytest.raises(BadRecordMac, match="failed authentication"):
        server.receive_data(bytes(wire))
    assert alert_seen_by(client, server.data_to_send()) == AlertDescription.BAD_RECORD_MAC


def test_replayed_application_data_record_is_bad_record_mac() -> None:
    client, server = make_pair()
    handshake(client, server)
    client.send_application_data(b"pay 100")
    wire = client.data_to_send()
    assert server.receive_data(wire) == [ApplicationData(b"pay 100")]
    with pytest.raises(BadRecordMac):
        server.receive_data(wire)


def test_plaintext_record_longer_than_2_14_is_record_overflow() -> None:
    _client, server = make_pair()
    header = bytes([ContentType.HANDSHAKE, 0x03, 0x03]) + (2**14 + 1).to_bytes(2, "big")
    # Only the header arrives: the length alone is enough to refuse the record.
    with pytest.raises(RecordOverflow, match="exceeds the limit"):
        server.receive_data(header)
    assert last_alert(server.data_to_send()) == AlertDescription.RECORD_OVERFLOW


def test_protected_record_longer_than_2_14_plus_256_is_record_overflow() -> None:
    client, server = make_pair()
    handshake(client, server)
    header = bytes([ContentType.APPLICATION_DATA, 0x03, 0x03]) + (2**14 + 257).to_bytes(2, "big")
    with pytest.raises(RecordOverflow, match="exceeds the limit"):
        server.receive_data(header)
    assert alert_seen_by(client, server.data_to_send()) == AlertDescription.RECORD_OVERFLOW


def test_record_of_unknown_content_type_is_unexpected_message() -> None:
    _client, server = make_pair()
    with pytest.raises(UnexpectedMessage, match="unknown content type 99"):
        server.receive_data(b"\x63\x03\x03\x00\x01\x00")
    assert last_alert(server.data_to_send()) == AlertDescription.UNEXPECTED_MESSAGE


def test_plaintext_handshake_record_after_keys_is_unexpected_message() -> None:
    client, server = make_pair()
    handshake(client, server)
    with pytest.raises(UnexpectedMessage, match="plaintext handshake record"):
        server.receive_data(b"\x16\x03\x03\x00\x05" + frame(HandshakeType.KEY_UPDATE, b"\x00"))
    assert alert_seen_by(client, server.data_to_send()) == AlertDescription.UNEXPECTED_MESSAGE


def test_change_cipher_spec_after_the_handshake_is_unexpected_message() -> None:
    client, server = make_pair()
    handshake(client, server)
    with pytest.raises(UnexpectedMessage, match="change_cipher_spec outside the handshake"):
        server.receive_data(b"\x14\x03\x03\x00\x01\x01")
    assert alert_seen_by(client, server.data_to_send()) == AlertDescription.UNEXPECTED_MESSAGE


def test_change_cipher_spec_with_a_wrong_body_is_unexpected_message() -> None:
    client, server = make_pair()
    client.start_handshake()
    server.receive_data(client.data_to_send())
    with pytest.raises(UnexpectedMessage, match="change_cipher_spec record with body 02"):
        server.receive_data(b"\x14\x03\x03\x00\x01\x02")


def test_other_record_between_handshake_fragments_is_unexpected_message() -> None:
    client, server = make_pair()
    client.start_handshake()
    hello = client.data_to_send()
    first_half = hello[5:50]
    fragment = b"\x16\x03\x01" + len(first_half).to_bytes(2, "big") + first_half
    with pytest.raises(UnexpectedMessage, match="between fragments"):
        server.receive_data(fragment + b"\x15\x03\x03\x00\x02\x01\x00")


def test_handshake_message_over_the_size_limit_is_refused_from_its_header() -> None:
    _client, server = make_pair(server_kw={"max_handshake_message_size": 4096})
    header = frame(HandshakeType.CLIENT_HELLO, b"")[:1] + (4097).to_bytes(3, "big")
    record = b"\x16\x03\x01\x00\x04" + header
    with pytest.raises(DecodeError, match="over the limit of 4096"):
        server.receive_data(record)
    assert last_alert(server.data_to_send()) == AlertDescription.DECODE_ERROR


def test_malformed_alert_record_is_decode_error() -> None:
    _client, server = make_pair()
    with pytest.raises(DecodeError, match="alert record of 3 bytes"):
        server.receive_data(b"\x15\x03\x03\x00\x03\x02\x28\x00")


# --- alerts from the peer -------------------------------------------------------


def test_fatal_alert_from_the_peer_is_alert_received_with_its_description() -> None:
    _client, server = make_pair()
    with pytest.raises(AlertReceived, match="handshake_failure") as info:
        server.receive_data(b"\x15\x03\x03\x00\x02\x02\x28")
    assert info.value.description == AlertDescription.HANDSHAKE_FAILURE
    assert server.data_to_send() == b""  # we do not answer an alert with an alert


def test_unknown_alert_description_is_reported_as_a_plain_integer() -> None:
    _client, server = make_pair()
    with pytest.raises(AlertReceived, match="unknown alert 222") as info:
        server.receive_data(b"\x15\x03\x03\x00\x02\x02\xde")
    assert info.value.description == 222


def test_warning_level_alert_other_than_close_notify_is_still_fatal() -> None:
    client, server = make_pair()
    handshake(client, server)
    with pytest.raises(AlertReceived):
        server.receive_data(b"\x15\x03\x03\x00\x02\x01\x2a")


def test_a_flood_of_user_canceled_alerts_is_refused() -> None:
    _client, server = make_pair()
    with pytest.raises(UnexpectedMessage, match="user_canceled"):
        server.receive_data(b"\x15\x03\x03\x00\x02\x01\x5a" * (MAX_IDLE_RECORDS + 1))


def test_user_canceled_alert_is_ignored() -> None:
    _client, server = make_pair()
    assert server.receive_data(b"\x15\x03\x03\x00\x02\x01\x5a") == []
    assert server.error is None


# --- KeyUpdate ---------------------------------------------------------------------


def test_client_key_update_with_request_is_answered_by_the_server() -> None:
    client, server = make_pair()
    handshake(client, server)
    client.key_update(request_peer=True)
    client.send_application_data(b"after update")
    assert pump(client, server) == [
        KeyUpdated(update_requested=True),
        ApplicationData(b"after update"),
    ]
    server.send_application_data(b"reply")
    assert pump(server, client) == [
        KeyUpdated(update_requested=False),
        ApplicationData(b"reply"),
    ]
    assert client.data_to_send() == b""  # an answer is not answered again


def test_server_key_update_request_is_answered_before_the_clients_next_data() -> None:
    client, server = make_pair()
    handshake(client, server)
    server.key_update(request_peer=True)
    assert pump(server, client) == [KeyUpdated(update_requested=True)]
    # RFC 8446 §4.6.3: the answer is due before our next application data,
    # so receiving alone writes nothing.
    assert client.data_to_send() == b""
    client.send_application_data(b"still talking")
    assert pump(client, server) == [
        KeyUpdated(update_requested=False),
        ApplicationData(b"still talking"),
    ]


def test_key_update_without_request_is_not_answered() -> None:
    client, server = make_pair()
    handshake(client, server)
    client.key_update(request_peer=False)
    assert pump(client, server) == [KeyUpdated(update_requested=False)]
    assert server.data_to_send() == b""
    server.send_application_data(b"old key still fine")
    assert pump(server, client) == [ApplicationData(b"old key still fine")]


def test_key_update_changes_the_bytes_of_identical_records() -> None:
    client, server = make_pair()
    handshake(client, server)
    client.send_application_data(b"same")
    before = client.data_to_send()
    client.key_update(request_peer=False)
    client.data_to_send()
    client.send_application_data(b"same")
    after = client.data_to_send()
    assert before != after
    assert len(before) == len(after)


def test_many_key_updates_in_a_row_keep_both_sides_in_step() -> None:
    client, server = make_pair()
    handshake(client, server)
    for _ in range(5):
        client.key_update(request_peer=True)
    assert pump(client, server) == [KeyUpdated(update_requested=True)] * 5
    # RFC 8446 §4.6.3: one answer before the next data covers every request.
    server.send_application_data(b"ok")
    assert pump(server, client) == [KeyUpdated(update_requested=False), ApplicationData(b"ok")]
    client.send_application_data(b"ok too")
    assert pump(client, server) == [ApplicationData(b"ok too")]


def test_a_flood_of_key_updates_without_data_is_refused() -> None:
    client, server = make_pair()
    handshake(client, server)
    for _ in range(MAX_IDLE_RECORDS + 1):
        client.key_update(request_peer=False)
    with pytest.raises(UnexpectedMessage, match="KeyUpdate"):
        pump(client, server)


def _post_handshake_flood(client_kw: dict[str, object], message: bytes) -> None:
    """The server sends ``message`` MAX_IDLE_RECORDS + 1 times, with no data."""
    client, server = make_pair(client_kw=client_kw)
    handshake(client, server)
    for _ in range(MAX_IDLE_RECORDS + 1):
        server.queue_handshake(message)
    pump(server, client)


def test_a_flood_of_session_tickets_without_data_is_refused() -> None:
    ticket = NewSessionTicket(
        ticket_lifetime=60, ticket_age_add=1, ticket_nonce=b"\x09", ticket=b"t" * 32
    )
    with pytest.raises(UnexpectedMessage, match="NewSessionTickets"):
        _post_handshake_flood({}, frame(HandshakeType.NEW_SESSION_TICKET, ticket.encode()))


def test_a_flood_of_post_handshake_certificate_requests_is_refused() -> None:
    request = CertificateRequest(
        certificate_request_context=b"\x01",
        extensions={
            ExtensionType.SIGNATURE_ALGORITHMS: encode_u16_list(
                [SignatureScheme.ECDSA_SECP256R1_SHA256]
            )
        },
    )
    with pytest.raises(UnexpectedMessage, match="CertificateRequests"):
        _post_handshake_flood(
            {"post_handshake_auth": True},
            frame(HandshakeType.CERTIFICATE_REQUEST, request.encode()),
        )


def test_session_tickets_up_to_the_limit_are_taken() -> None:
    client, server = make_pair()
    client_events, _ = handshake(client, server)
    ticket = NewSessionTicket(
        ticket_lifetime=60, ticket_age_add=1, ticket_nonce=b"\x09", ticket=b"t" * 32
    )
    # The handshake's own tickets (already counted) plus these make the limit.
    already = sum(isinstance(e, NewSessionTicketReceived) for e in client_events)
    assert already == 2
    for _ in range(MAX_IDLE_RECORDS - already):
        server.queue_handshake(frame(HandshakeType.NEW_SESSION_TICKET, ticket.encode()))
    events = pump(server, client)
    assert len(events) == MAX_IDLE_RECORDS - already
    assert client.error is None


def test_writer_updates_its_key_by_itself_before_the_aead_limit() -> None:
    client, server = make_pair()
    handshake(client, server)
    # 2^24 records take minutes to send; jump both ends of the stream there instead.
    sending, receiving = client._writer._protection, server._reader._protection
    assert sending is not None and receiving is not None
    sending.seq = receiving.seq = KEY_UPDATE_AFTER
    client.send_application_data(b"first record under a fresh key")
    assert pump(client, server) == [
        KeyUpdated(update_requested=False),
        ApplicationData(b"first record under a fresh key"),
    ]


def test_key_update_before_the_handshake_is_a_usage_error() -> None:
    client, _server = make_pair()
    client.start_handshake()
    with pytest.raises(UsageError, match="after the handshake"):
        client.key_update()


def test_key_update_with_an_illegal_request_value_is_illegal_parameter() -> None:
    client, server = make_pair()
    handshake(client, server)
    client.queue_handshake(frame(HandshakeType.KEY_UPDATE, b"\x02"))
    with pytest.raises(IllegalParameter, match="request_update 2"):
        pump(client, server)
    assert alert_seen_by(client, server.data_to_send()) == AlertDescription.ILLEGAL_PARAMETER


def test_key_update_followed_by_more_handshake_bytes_in_one_record_is_unexpected_message() -> None:
    client, server = make_pair()
    handshake(client, server)
    # RFC 8446 §5.1: a message preceding a key change must end its record.
    update = frame(HandshakeType.KEY_UPDATE, KeyUpdate(request_update=0).encode())
    client.queue_handshake(update + update[:2])
    with pytest.raises(UnexpectedMessage, match="record boundary"):
        pump(client, server)


# --- exporters (RFC 8446 §7.5) ----------------------------------------------------------


def test_exported_keying_material_is_equal_on_both_sides() -> None:
    client, server = make_pair()
    handshake(client, server)
    ours = client.export_keying_material(b"EXPORTER-triotls-test", b"context", 32)
    theirs = server.export_keying_material(b"EXPORTER-triotls-test", b"context", 32)
    assert ours == theirs
    assert len(ours) == 32


def test_exported_keying_material_differs_per_label() -> None:
    client, server = make_pair()
    handshake(client, server)
    one = client.export_keying_material(b"EXPORTER-one", b"", 32)
    two = client.export_keying_material(b"EXPORTER-two", b"", 32)
    assert one != two
    assert two == server.export_keying_material(b"EXPORTER-two", b"", 32)


def test_exported_keying_material_differs_per_context() -> None:
    client, _server = make_pair()
    handshake(client, _server)
    one = client.export_keying_material(b"EXPORTER-x", b"context one", 32)
    two = client.export_keying_material(b"EXPORTER-x", b"context two", 32)
    assert one != two


def test_exported_keying_material_differs_per_connection() -> None:
    first = make_pair()
    second = make_pair()
    handshake(*first)
    handshake(*second)
    label = b"EXPORTER-x"
    assert first[0].export_keying_material(label, b"", 32) != second[0].export_keying_material(
        label, b"", 32
    )


def test_exported_keying_material_of_another_length_is_not_a_prefix() -> None:
    # RFC 8446 §7.5: the length is part of HkdfLabel, so outputs are unrelated.
    client, server = make_pair()
    handshake(client, server)
    short = client.export_keying_material(b"EXPORTER-x", b"", 16)
    long = client.export_keying_material(b"EXPORTER-x", b"", 32)
    assert long[:16] != short


def test_exporter_before_the_handshake_is_a_usage_error() -> None:
    client, _server = make_pair()
    client.start_handshake()
    with pytest.raises(UsageError, match="after the handshake"):
        client.export_keying_material(b"EXPORTER-x", b"", 32)


def test_exporter_label_longer_than_249_bytes_is_refused() -> None:
    # RFC 8446 §7.1: "tls13 " + label must fit a <7..255> vector.
    client, server = make_pair()
    handshake(client, server)
    assert len(client.export_keying_material(b"x" * 249, b"", 32)) == 32
    with pytest.raises(ValueError, match="at most 249"):
        client.export_keying_material(b"x" * 250, b"", 32)
    assert client.error is None


@pytest.mark.parametrize("length", [0, 255 * 32 + 1])
def test_exporter_length_out_of_range_is_refused(length: int) -> None:
    client, server = make_pair(client_kw={"cipher_suites": (CipherSuite.TLS_AES_128_GCM_SHA256,)})
    handshake(client, server)
    with pytest.raises(ValueError, match=r"export length must be 1\.\.8160"):
        client.export_keying_material(b"EXPORTER-x", b"", length)


# --- close_notify and EOF ---------------------------------------------------------------


def test_client_close_notify_reaches_the_server() -> None:
    client, server = make_pair()
    handshake(client, server)
    client.close()
    assert client.closed
    assert pump(client, server) == [CloseNotify()]
    assert server.peer_closed


def test_server_close_notify_reaches_the_client() -> None:
    client, server = make_pair()
    handshake(client, server)
    server.close()
    assert pump(server, client) == [CloseNotify()]
    assert client.peer_closed


def test_close_notify_is_encrypted_after_the_handshake() -> None:
    client, server = make_pair()
    handshake(client, server)
    client.close()
    wire = client.data_to_send()
    assert records(wire) == [(ContentType.APPLICATION_DATA, 2 + 1 + 16)]


def test_peer_can_still_send_after_receiving_close_notify() -> None:
    client, server = make_pair()
    handshake(client, server)
    client.close()
    pump(client, server)
    server.send_application_data(b"last words")
    server.close()
    assert pump(server, client) == [ApplicationData(b"last words"), CloseNotify()]


def test_sending_after_close_is_a_usage_error() -> None:
    client, server = make_pair()
    handshake(client, server)
    client.close()
    with pytest.raises(UsageError, match="after close"):
        client.send_application_data(b"too late")
    with pytest.raises(UsageError, match="after close"):
        client.key_update()


def test_close_twice_sends_one_close_notify() -> None:
    client, server = make_pair()
    handshake(client, server)
    client.close()
    client.close()
    assert len(records(client.data_to_send())) == 1


def test_key_update_request_after_our_close_is_not_answered() -> None:
    client, server = make_pair()
    handshake(client, server)
    server.close()
    server.data_to_send()
    client.key_update(request_peer=True)
    assert pump(client, server) == [KeyUpdated(update_requested=True)]
    assert server.data_to_send() == b""


def test_eof_after_close_notify_is_clean() -> None:
    client, server = make_pair()
    handshake(client, server)
    server.close()
    pump(server, client)
    assert client.receive_data(b"") == []
    assert client.error is None


def test_bytes_after_close_notify_are_ignored_and_kept_for_unwrap() -> None:
    client, server = make_pair()
    handshake(client, server)
    server.close()
    wire = server.data_to_send()
    assert client.receive_data(wire + b"plain bytes after TLS") == [CloseNotify()]
    assert client.take_unprocessed() == b"plain bytes after TLS"
    assert client.receive_data(b"more") == []


def test_eof_without_close_notify_after_the_handshake_is_truncation() -> None:
    client, server = make_pair()
    handshake(client, server)
    with pytest.raises(TruncationError, match="without sending close_notify"):
        client.receive_data(b"")
    assert client.data_to_send() == b""  # TruncationError is not an alert of ours


def test_eof_during_the_handshake_is_truncation() -> None:
    client, _server = make_pair()
    client.start_handshake()
    client.data_to_send()
    with pytest.raises(TruncationError, match="during the handshake"):
        client.receive_data(b"")


def test_eof_in_the_middle_of_a_record_is_truncation() -> None:
    client, server = make_pair()
    handshake(client, server)
    server.send_application_data(b"cut short")
    wire = server.data_to_send()
    assert client.receive_data(wire[:-3]) == []
    with pytest.raises(TruncationError):
        client.receive_data(b"")


def test_plaintext_close_notify_after_keys_is_unexpected_message() -> None:
    client, server = make_pair()
    handshake(client, server)
    with pytest.raises(UnexpectedMessage, match="plaintext close_notify"):
        server.receive_data(b"\x15\x03\x03\x00\x02\x01\x00")


# --- errors latch -------------------------------------------------------------------------


def test_error_is_raised_again_by_every_later_call() -> None:
    client, server = make_pair()
    handshake(client, server)
    with pytest.raises(UnexpectedMessage) as first:
        server.receive_data(b"\x14\x03\x03\x00\x01\x01")
    assert server.error is first.value
    with pytest.raises(UnexpectedMessage) as again:
        server.receive_data(b"\x17\x03\x03\x00\x00")
    assert again.value is first.value
    with pytest.raises(UnexpectedMessage) as on_send:
        server.send_application_data(b"x")
    assert on_send.value is first.value
    with pytest.raises(UnexpectedMessage) as on_update:
        server.key_update()
    assert on_update.value is first.value
    with pytest.raises(UnexpectedMessage) as on_eof:
        server.receive_data(b"")
    assert on_eof.value is first.value


def test_failed_connection_queues_exactly_one_alert() -> None:
    client, server = make_pair()
    handshake(client, server)
    with pytest.raises(UnexpectedMessage):
        server.receive_data(b"\x14\x03\x03\x00\x01\x01")
    with pytest.raises(UnexpectedMessage):
        server.receive_data(b"\x14\x03\x03\x00\x01\x01")
    server.close()  # no close_notify after a fatal alert
    wire = server.data_to_send()
    assert len(split_records(wire)) == 1
    assert alert_seen_by(client, wire) == AlertDescription.UNEXPECTED_MESSAGE


def test_alert_received_latches_too() -> None:
    client, server = make_pair()
    handshake(client, server)
    with pytest.raises(AlertReceived) as first:
        server.receive_data(b"\x15\x03\x03\x00\x02\x02\x50")
    with pytest.raises(AlertReceived) as again:
        server.send_application_data(b"x")
    assert again.value is first.value


def test_application_data_before_a_fatal_alert_in_one_call_is_not_lost() -> None:
    client, server = make_pair()
    handshake(client, server)
    server.send_application_data(b"the answer")
    answer = server.data_to_send()
    fatal = b"\x15\x03\x03\x00\x02\x02\x50"  # internal_error; plaintext is accepted
    with pytest.raises(AlertReceived, match="internal_error") as caught:
        client.receive_data(answer + fatal)
    assert caught.value.events == (ApplicationData(b"the answer"),)


# --- identity of the connection -------------------------------------------------------------


def test_server_reports_the_sni_name_the_client_sent() -> None:
    client, server = make_pair()
    handshake(client, server)
    assert server.negotiated is not None and client.negotiated is not None
    assert server.negotiated.server_name == SERVER_NAME
    assert client.negotiated.server_name == SERVER_NAME


def test_state_name_is_traffic_after_the_handshake() -> None:
    client, server = make_pair()
    handshake(client, server)
    assert client.state_name == "ClientTraffic"
    assert server.state_name == "ServerTraffic"
