"""Connection.coalesce_application_data: one event for a run of data records."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.engine_pairs import (
    DeterministicRandom,
    alert_seen_by,
    handshake,
    make_pair,
    split_records,
)
from triotls.engine.client import ClientConnection
from triotls.engine.connection import MAX_IDLE_RECORDS
from triotls.engine.enums import (
    AlertDescription,
    ContentType,
    HandshakeType,
    KeyUpdateRequest,
    NamedGroup,
)
from triotls.engine.events import ApplicationData, CloseNotify, Event, KeyUpdated
from triotls.engine.messages import KeyUpdate, frame
from triotls.engine.server import ServerConnection
from triotls.errors import AlertReceived, BadRecordMac, RecordOverflow, UnexpectedMessage


def _coalescing_pair(
    client_kw: Mapping[str, object] | None = None,
) -> tuple[ClientConnection, ServerConnection]:
    client, server = make_pair(client_kw=client_kw)
    handshake(client, server)
    client.coalesce_application_data = True
    server.coalesce_application_data = True
    return client, server


def _app_data(events: Sequence[object]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, ApplicationData))


def test_records_of_one_read_become_one_event() -> None:
    client, server = _coalescing_pair()
    messages = [bytes([n]) * size for n, size in enumerate((1, 16_384, 5, 40_000))]
    for message in messages:
        client.send_application_data(message)
    wire = client.data_to_send()
    assert len(split_records(wire)) == 6
    assert server.receive_data(wire) == [ApplicationData(b"".join(messages))]


def test_without_coalescing_each_record_is_an_event() -> None:
    client, server = make_pair()
    handshake(client, server)
    client.send_application_data(bytes(40_000))
    events = server.receive_data(client.data_to_send())
    assert [len(e.data) for e in events if isinstance(e, ApplicationData)] == [16_384, 16_384, 7232]


def test_data_stays_before_a_key_update_and_close_notify() -> None:
    client, server = _coalescing_pair()
    a, b, c, d = (bytes([n]) * 20_000 for n in range(4))
    client.send_application_data(a)
    client.send_application_data(b)
    client.key_update(request_peer=False)
    client.send_application_data(c)
    client.send_application_data(d)
    client.close()
    assert server.receive_data(client.data_to_send()) == [
        ApplicationData(a + b),
        KeyUpdated(update_requested=False),
        ApplicationData(c + d),
        CloseNotify(),
    ]


def test_short_reads_are_opened_record_by_record() -> None:
    client, server = _coalescing_pair()
    client.send_application_data(b"a")
    client.send_application_data(b"b")
    assert server.receive_data(client.data_to_send()) == [
        ApplicationData(b"a"),
        ApplicationData(b"b"),
    ]


def test_records_before_a_tampered_one_are_delivered_then_bad_record_mac() -> None:
    client, server = _coalescing_pair()
    messages = [bytes([n]) * 16_000 for n in range(3)]
    for message in messages:
        client.send_application_data(message)
    first, second, third = split_records(client.data_to_send())
    tampered = third[:-1] + bytes([third[-1] ^ 0x01])
    with pytest.raises(BadRecordMac, match="failed authentication") as caught:
        server.receive_data(first + second + tampered)
    assert caught.value.events == (ApplicationData(messages[0] + messages[1]),)
    assert alert_seen_by(client, server.data_to_send()) == AlertDescription.BAD_RECORD_MAC


def test_a_record_over_the_record_size_limit_is_record_overflow_after_the_data_before_it() -> None:
    client, server = _coalescing_pair(client_kw={"record_size_limit": 64})
    server.send_application_data(bytes(40_000))  # records of 63 bytes
    # Make the server misbehave: forget the limit the client announced.
    server._writer.max_fragment = 2**14
    server.send_application_data(bytes(100))
    with pytest.raises(RecordOverflow, match="exceeds the limit of 64") as caught:
        client.receive_data(server.data_to_send())
    assert caught.value.events == (ApplicationData(bytes(40_000)),)
    assert alert_seen_by(server, client.data_to_send()) == AlertDescription.RECORD_OVERFLOW


def test_data_before_a_plaintext_fatal_alert_is_delivered_first() -> None:
    client, server = _coalescing_pair()
    server.send_application_data(bytes(40_000))
    answer = server.data_to_send()
    fatal = b"\x15\x03\x03\x00\x02\x02\x50"  # internal_error; plaintext is accepted
    with pytest.raises(AlertReceived, match="internal_error") as caught:
        client.receive_data(answer + fatal)
    assert caught.value.events == (ApplicationData(bytes(40_000)),)


def test_a_record_past_the_last_sequence_number_is_record_overflow_after_the_data() -> None:
    client, server = _coalescing_pair()
    last = 2**64 - 1  # RFC 8446 §5.3: sequence numbers do not wrap
    sending = server._writer._protection
    receiving = client._reader._protection
    assert sending is not None and receiving is not None
    sending.seq = receiving.seq = last - 2
    # Sealed by the writer itself (the connection would rekey long before).
    wire = server._writer.seal(ContentType.APPLICATION_DATA, bytes(2 * 16_384))
    header = b"\x17\x03\x03\x00\x12"
    beyond = header + sending.aead.encrypt(
        (sending.iv ^ last).to_bytes(12, "big"), b"x\x17", header
    )
    with pytest.raises(RecordOverflow, match="would wrap") as caught:
        client.receive_data(wire + beyond)
    assert caught.value.events == (ApplicationData(bytes(2 * 16_384)),)


def test_padded_records_are_opened_too() -> None:
    client, server = _coalescing_pair()
    client._writer.padding = 7
    client.send_application_data(b"padded " * 5000)
    client._writer.padding = 0
    client.send_application_data(b"plain")
    assert _app_data(server.receive_data(client.data_to_send())) == b"padded " * 5000 + b"plain"


def test_a_flood_of_empty_records_is_still_refused() -> None:
    client, server = _coalescing_pair()
    client.send_application_data(bytes(40_000))
    for _ in range(MAX_IDLE_RECORDS + 1):
        client.send_application_data(b"")
    with pytest.raises(UnexpectedMessage, match="empty application data records") as caught:
        server.receive_data(client.data_to_send())
    assert caught.value.events == (ApplicationData(bytes(40_000)),)


def test_data_between_empty_records_still_restarts_the_count() -> None:
    client, server = _coalescing_pair()
    for _ in range(3):
        for _ in range(MAX_IDLE_RECORDS):
            client.send_application_data(b"")
        client.send_application_data(b"x" * 20_000)
        client.send_application_data(b"y" * 20_000)
    data = server.receive_data(client.data_to_send())
    assert _app_data(data) == (b"x" * 20_000 + b"y" * 20_000) * 3


def test_data_between_fragments_of_a_handshake_message_is_still_refused() -> None:
    client, server = _coalescing_pair()
    message = frame(
        HandshakeType.KEY_UPDATE,
        KeyUpdate(request_update=KeyUpdateRequest.UPDATE_NOT_REQUESTED).encode(),
    )
    writer = server._writer
    wire = (
        writer.seal(ContentType.HANDSHAKE, message[:2])
        + writer.seal(ContentType.APPLICATION_DATA, bytes(20_000))
        + writer.seal(ContentType.APPLICATION_DATA, bytes(20_000))
        + writer.seal(ContentType.HANDSHAKE, message[2:])
    )
    with pytest.raises(UnexpectedMessage, match="between fragments of a handshake message"):
        client.receive_data(wire)


def test_more_than_one_buffer_of_data_in_one_read_arrives_whole() -> None:
    client, server = _coalescing_pair()
    payload = bytes(range(256)) * 2400  # 614,400 bytes: more than one buffer holds
    client.send_application_data(payload)
    events = server.receive_data(client.data_to_send())
    assert all(isinstance(e, ApplicationData) for e in events)
    assert 1 < len(events) < 38  # fewer than one event per record
    assert _app_data(events) == payload


def test_sequence_numbers_continue_across_coalesced_and_single_records() -> None:
    client, server = _coalescing_pair()
    for size in (30_000, 1, 20_000):
        client.send_application_data(bytes(size))
        wire = client.data_to_send()
        cut = len(wire) // 3
        got = server.receive_data(wire[:cut]) + server.receive_data(wire[cut:])
        assert _app_data(got) == bytes(size)
    server.send_application_data(b"reply")
    assert client.receive_data(server.data_to_send()) == [ApplicationData(b"reply")]


def _merged(events: Sequence[Event]) -> list[Event]:
    """Adjacent ApplicationData events joined: what coalescing may change."""
    out: list[Event] = []
    for event in events:
        if isinstance(event, ApplicationData) and out and isinstance(out[-1], ApplicationData):
            out[-1] = ApplicationData(out[-1].data + event.data)
        else:
            out.append(event)
    return out


def _fresh_pair() -> tuple[ClientConnection, ServerConnection]:
    # Deterministic randomness and an Ed25519 certificate: a fresh pair
    # produces the same flights, so recorded bytes stay valid for it.
    return make_pair(
        client_kw={
            "random": DeterministicRandom(b"coalescing client"),
            "groups": (NamedGroup.X25519,),
            "key_share_groups": (NamedGroup.X25519,),
        },
        server_kw={"random": DeterministicRandom(b"coalescing server")},
        kind="ed25519",
    )


@functools.cache
def _client_bytes() -> bytes:
    """Everything a client sends over one connection: handshake, data, KeyUpdate, close."""
    client, server = _fresh_pair()
    sent = bytearray()
    client.start_handshake()
    while not server.handshake_complete:
        data = client.data_to_send()
        sent += data
        server.receive_data(data)
        if answer := server.data_to_send():
            client.receive_data(answer)
    client.send_application_data(bytes(range(256)) * 100)
    client.send_application_data(b"small")
    client.key_update(request_peer=True)
    client.send_application_data(b"after the update" * 2000)
    client.close()
    sent += client.data_to_send()
    return bytes(sent)


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.floats(0, 1), max_size=20))
def test_coalesced_events_match_the_record_by_record_ones_however_the_stream_is_cut(
    cuts: list[float],
) -> None:
    wire = _client_bytes()
    reference = _fresh_pair()[1].receive_data(wire)
    server = _fresh_pair()[1]
    server.coalesce_application_data = True
    got: list[Event] = []
    start = 0
    for end in [*sorted({int(f * len(wire)) for f in cuts}), len(wire)]:
        if end > start:
            got += server.receive_data(wire[start:end])
            start = end
    assert _merged(got) == _merged(reference)
    assert [type(e) for e in reference].count(ApplicationData) > 3
