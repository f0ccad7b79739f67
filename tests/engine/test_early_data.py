"""0-RTT early data between our own client and server (RFC 8446 §4.2.10, §4.5, §8).

Each test makes a full handshake with a server that allows early data, to get
tickets, then connects again offering one of them with early data. What the
client sent is read from its records on the wire (plaintext ClientHello,
change_cipher_spec, opaque application_data records), not from its state;
what the server sent in its encrypted messages is seen by hooking the
server's handshake queue (:func:`rewrite_outgoing_handshake`).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import pytest

from tests.support.engine_pairs import (
    DeterministicRandom,
    FixedClock,
    make_pair,
    pki,
    pump,
    rewrite_outgoing_handshake,
    split_records,
)
from triotls.config import MAX_EARLY_DATA_SIZE, ServerConfig
from triotls.engine import ClientConnection, Connection, ServerConnection
from triotls.engine.enums import (
    AlertDescription,
    CipherSuite,
    ContentType,
    ExtensionType,
    HandshakeType,
    NamedGroup,
)
from triotls.engine.events import (
    ApplicationData,
    EarlyDataReceived,
    Event,
    HandshakeComplete,
    NewSessionTicketReceived,
)
from triotls.engine.extensions import decode_u32, encode_alpn
from triotls.engine.messages import ClientHello, EncryptedExtensions, NewSessionTicket, frame
from triotls.engine.server import EARLY_DATA_AGE_WINDOW
from triotls.engine.state import EarlyDataStatus, HandshakeKind
from triotls.engine.tickets import ClientSession, ReplayCache, TicketKeys
from triotls.errors import (
    AlertReceived,
    BadRecordMac,
    DecodeError,
    IllegalParameter,
    RecordOverflow,
    UnexpectedMessage,
    UnsupportedExtension,
)

BASE: Final = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
EARLY: Final = b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n"
LIMIT: Final = 1000
SHA256_SUITE: Final = CipherSuite.TLS_AES_128_GCM_SHA256
CHACHA_SUITE: Final = CipherSuite.TLS_CHACHA20_POLY1305_SHA256
# More than enough round trips for a handshake with a HelloRetryRequest.
_MAX_ROUNDS: Final = 8


def _at(seconds: float) -> FixedClock:
    return FixedClock(BASE + datetime.timedelta(seconds=seconds))


@dataclass(kw_only=True)
class _Run:
    """One connection between our client and server, and what crossed the wire."""

    client: ClientConnection
    server: ServerConnection
    client_events: list[Event] = field(default_factory=list)
    server_events: list[Event] = field(default_factory=list)
    client_flights: list[bytes] = field(default_factory=list)
    server_messages: list[bytes] = field(default_factory=list)

    @property
    def sessions(self) -> list[ClientSession]:
        return [
            e.session
            for e in self.client_events
            if isinstance(e, NewSessionTicketReceived) and e.session is not None
        ]

    @property
    def early_received(self) -> bytes:
        return b"".join(e.data for e in self.server_events if isinstance(e, EarlyDataReceived))

    @property
    def client_hellos(self) -> list[ClientHello]:
        return _client_hellos(b"".join(self.client_flights))

    def statuses(self) -> tuple[EarlyDataStatus, EarlyDataStatus]:
        client, server = self.client.negotiated, self.server.negotiated
        assert client is not None and server is not None
        return client.early_data, server.early_data

    def kinds(self) -> tuple[HandshakeKind, HandshakeKind]:
        client, server = self.client.negotiated, self.server.negotiated
        assert client is not None and server is not None
        return client.handshake_kind, server.handshake_kind

    def sent_by_server(self, msg_type: HandshakeType) -> list[bytes]:
        """Bodies of the handshake messages of ``msg_type`` the server queued."""
        return [raw[4:] for raw in self.server_messages if raw[0] == msg_type]


ACCEPTED: Final = (EarlyDataStatus.ACCEPTED, EarlyDataStatus.ACCEPTED)
REJECTED: Final = (EarlyDataStatus.REJECTED, EarlyDataStatus.REJECTED)
NOT_OFFERED: Final = (EarlyDataStatus.NOT_OFFERED, EarlyDataStatus.NOT_OFFERED)
RESUMED: Final = (HandshakeKind.RESUMED, HandshakeKind.RESUMED)
FULL: Final = (HandshakeKind.FULL, HandshakeKind.FULL)


def _client_hellos(wire: bytes) -> list[ClientHello]:
    # ClientHellos travel in plaintext handshake records; each fits one here.
    return [
        ClientHello.decode(rec[9:])
        for rec in split_records(wire)
        if rec[0] == ContentType.HANDSHAKE and rec[5] == HandshakeType.CLIENT_HELLO
    ]


def _record_outgoing(conn: Connection) -> list[bytes]:
    """Every framed handshake message ``conn`` queues from now on, unchanged."""
    seen: list[bytes] = []

    def keep(raw: bytes) -> bytes:
        seen.append(raw)
        return raw

    rewrite_outgoing_handshake(conn, keep)
    return seen


def _run(client: ClientConnection, server: ServerConnection, early_data: bytes = b"") -> _Run:
    """Start the client (with ``early_data``) and pump until both sides complete."""
    run = _Run(client=client, server=server, server_messages=_record_outgoing(server))
    client.start_handshake(early_data=early_data)
    for _ in range(_MAX_ROUNDS):
        wire = client.data_to_send()
        if wire:
            run.client_flights.append(wire)
            run.server_events += server.receive_data(wire)
        reply = server.data_to_send()
        if reply:
            run.client_events += client.receive_data(reply)
        if client.handshake_complete and server.handshake_complete:
            wire = client.data_to_send()
            if wire:
                run.client_flights.append(wire)
                run.server_events += server.receive_data(wire)
            return run
    raise AssertionError(
        f"the handshake did not complete (client in {client.state_name}, "
        f"server in {server.state_name})"
    )


def _server_kw(**changes: object) -> dict[str, object]:
    return {"max_early_data_size": LIMIT, "clock": _at(0), **changes}


def _first(
    client_kw: Mapping[str, Any] | None = None, server_kw: Mapping[str, Any] | None = None
) -> _Run:
    """A full handshake with a 0-RTT-enabled server; its tickets are in ``.sessions``."""
    client, server = make_pair(
        client_kw={"clock": _at(0), **(client_kw or {})},
        server_kw=_server_kw(**(server_kw or {})),
    )
    run = _run(client, server)
    assert run.kinds() == FULL
    assert run.sessions, "the server sent no tickets"
    return run


def _again(
    first: _Run,
    session: ClientSession | None,
    early_data: bytes = EARLY,
    *,
    client_kw: Mapping[str, Any] | None = None,
    server_kw: Mapping[str, Any] | None = None,
) -> _Run:
    """A new connection with ``first``'s configurations, changed by the kw, sending 0-RTT."""
    client, server = _connections(first, session, client_kw=client_kw, server_kw=server_kw)
    return _run(client, server, early_data)


def _connections(
    first: _Run,
    session: ClientSession | None,
    *,
    client_kw: Mapping[str, Any] | None = None,
    server_kw: Mapping[str, Any] | None = None,
) -> tuple[ClientConnection, ServerConnection]:
    client_kw = {"clock": _at(1), **(client_kw or {})}
    server_kw = {"clock": _at(1), **(server_kw or {})}
    client_config = dataclasses.replace(first.client.config, **client_kw)
    server_config = dataclasses.replace(first.server.config, **server_kw)
    return (
        ClientConnection(client_config, server_hostname="localhost", session=session),
        ServerConnection(server_config),
    )


def _client_first_flight(client: ClientConnection, early_data: bytes) -> bytes:
    client.start_handshake(early_data=early_data)
    return client.data_to_send()


# --- accepted -------------------------------------------------------------------


def test_accepted_early_data_arrives_before_handshake_complete() -> None:
    first = _first()
    run = _again(first, first.sessions[0])
    assert run.early_received == EARLY
    kinds = [type(e) for e in run.server_events]
    assert kinds.index(EarlyDataReceived) < kinds.index(HandshakeComplete)


def test_accepted_early_data_is_reported_on_both_sides_of_a_resumed_handshake() -> None:
    first = _first()
    run = _again(first, first.sessions[0])
    assert run.client.early_data_offered
    assert run.statuses() == ACCEPTED
    assert run.kinds() == RESUMED


def test_server_announces_acceptance_in_encrypted_extensions() -> None:
    first = _first()
    run = _again(first, first.sessions[0])
    (body,) = run.sent_by_server(HandshakeType.ENCRYPTED_EXTENSIONS)
    assert EncryptedExtensions.decode(body).extensions.get(ExtensionType.EARLY_DATA) == b""


def test_server_waits_for_end_of_early_data_after_accepting() -> None:
    first = _first()
    client, server = _connections(first, first.sessions[0])
    events = server.receive_data(_client_first_flight(client, EARLY))
    assert events == [EarlyDataReceived(EARLY)]
    assert server.state_name == "ExpectEndOfEarlyData"
    assert not server.handshake_complete


def test_client_sends_end_of_early_data_before_its_finished() -> None:
    first = _first()
    client, server = _connections(first, first.sessions[0])
    sent = _record_outgoing(client)
    server.receive_data(_client_first_flight(client, EARLY))
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    assert [raw[0] for raw in sent][-2:] == [
        HandshakeType.END_OF_EARLY_DATA,
        HandshakeType.FINISHED,
    ]
    assert sent[-2] == frame(HandshakeType.END_OF_EARLY_DATA, b"")
    assert server.handshake_complete


def test_early_data_larger_than_a_record_arrives_whole() -> None:
    first = _first(server_kw={"max_early_data_size": MAX_EARLY_DATA_SIZE})
    data = bytes(range(256)) * 160  # 40 960 bytes: three records
    run = _again(first, first.sessions[0], data)
    assert run.early_received == data
    first_flight = split_records(run.client_flights[0])
    assert sum(rec[0] == ContentType.APPLICATION_DATA for rec in first_flight) == 3
    assert run.statuses() == ACCEPTED


def test_early_data_of_exactly_the_ticket_limit_is_accepted() -> None:
    first = _first()
    data = b"x" * LIMIT
    run = _again(first, first.sessions[0], data)
    assert run.early_received == data
    assert run.statuses() == ACCEPTED


def test_early_data_records_are_not_held_to_the_server_record_size_limit() -> None:
    # RFC 8449 §4: a record obeys the limit set in the handshake that made its
    # key; the client sealed its 0-RTT data before it could see this limit.
    first = _first()
    data = b"x" * LIMIT
    run = _again(first, first.sessions[0], data, server_kw={"record_size_limit": 256})
    assert max(len(rec) - 5 for rec in split_records(run.client_flights[0])[1:]) > 256
    assert run.early_received == data
    assert run.statuses() == ACCEPTED


def test_server_record_size_limit_applies_again_after_end_of_early_data() -> None:
    first = _first()
    run = _again(first, first.sessions[0], server_kw={"record_size_limit": 256})
    assert run.statuses() == ACCEPTED
    # Make the client forget the limit it was told, to send an oversized record.
    run.client._writer.max_fragment = 2**14
    run.client.send_application_data(b"y" * 1000)
    with pytest.raises(RecordOverflow, match="exceeds the limit of 256"):
        run.server.receive_data(run.client.data_to_send())


@pytest.mark.parametrize("server_limit", [LIMIT, 0], ids=["accepted", "rejected"])
def test_first_flight_fed_one_byte_at_a_time_gives_the_same_events(server_limit: int) -> None:
    first = _first()
    whole_client, whole_server = _connections(
        first, first.sessions[0], server_kw={"max_early_data_size": server_limit}
    )
    flight = _client_first_flight(whole_client, EARLY)
    expected = whole_server.receive_data(flight)
    # A guard of its own: to the first server's guard, this is a replay.
    _, split_server = _connections(
        first,
        first.sessions[0],
        server_kw={"max_early_data_size": server_limit, "early_data_replay_guard": ReplayCache()},
    )
    events: list[Event] = []
    for index in range(len(flight)):
        events += split_server.receive_data(flight[index : index + 1])
    assert events == expected
    assert (EarlyDataReceived(EARLY) in events) == bool(server_limit)
    assert split_server.state_name == whole_server.state_name


def test_server_can_send_half_rtt_data_that_reaches_the_client() -> None:
    first = _first()
    client, server = _connections(first, first.sessions[0])
    server.receive_data(_client_first_flight(client, EARLY))
    assert server.can_send_application_data
    server.send_application_data(b"0.5-RTT reply")
    events = client.receive_data(server.data_to_send())
    assert ApplicationData(b"0.5-RTT reply") in events
    assert events.index(HandshakeComplete()) < events.index(ApplicationData(b"0.5-RTT reply"))
    server.receive_data(client.data_to_send())
    assert server.handshake_complete


def test_server_without_accepted_early_data_cannot_send_before_the_client_finished() -> None:
    first = _first()
    client, server = _connections(first, first.sessions[0], server_kw={"max_early_data_size": 0})
    server.receive_data(_client_first_flight(client, EARLY))
    assert not server.can_send_application_data


@pytest.mark.parametrize("middlebox_compat", [True, False])
def test_client_first_flight_is_hello_ccs_then_encrypted_early_data(
    *, middlebox_compat: bool
) -> None:
    first = _first(client_kw={"middlebox_compat": middlebox_compat})
    run = _again(first, first.sessions[0])
    recs = split_records(run.client_flights[0])
    expected = [ContentType.HANDSHAKE]
    if middlebox_compat:
        # RFC 8446 appendix D.4: with early data the CCS follows the ClientHello.
        expected.append(ContentType.CHANGE_CIPHER_SPEC)
    expected.append(ContentType.APPLICATION_DATA)
    assert [rec[0] for rec in recs] == expected
    (hello,) = _client_hellos(run.client_flights[0])
    exts = list(hello.extensions)
    assert hello.extensions[ExtensionType.EARLY_DATA] == b""
    assert exts[-1] == ExtensionType.PRE_SHARED_KEY
    # The record is sealed: its body is the data, the content type and a 16-byte tag.
    assert len(recs[-1]) - 5 == len(EARLY) + 1 + 16
    assert EARLY not in recs[-1]
    assert run.statuses() == ACCEPTED
    assert run.early_received == EARLY


def test_client_sends_a_single_ccs_when_its_early_data_is_accepted() -> None:
    first = _first()
    run = _again(first, first.sessions[0])
    wire = b"".join(run.client_flights)
    ccs = [rec for rec in split_records(wire) if rec[0] == ContentType.CHANGE_CIPHER_SPEC]
    assert len(ccs) == 1


# --- rejected or not offered ---------------------------------------------------


def test_server_with_early_data_off_rejects_it_and_never_delivers_it() -> None:
    first = _first()
    run = _again(first, first.sessions[0], server_kw={"max_early_data_size": 0})
    assert run.client.early_data_offered
    assert run.statuses() == REJECTED
    assert run.kinds() == RESUMED
    assert not [e for e in run.server_events if isinstance(e, EarlyDataReceived)]
    assert not [e for e in run.server_events if isinstance(e, ApplicationData)]
    (body,) = run.sent_by_server(HandshakeType.ENCRYPTED_EXTENSIONS)
    assert ExtensionType.EARLY_DATA not in EncryptedExtensions.decode(body).extensions


def test_rejected_connection_carries_application_data_afterwards() -> None:
    first = _first()
    run = _again(first, first.sessions[0], server_kw={"max_early_data_size": 0})
    run.client.send_application_data(b"resent by the caller")
    assert pump(run.client, run.server) == [ApplicationData(b"resent by the caller")]


def test_server_with_other_ticket_keys_rejects_early_data_with_a_full_handshake() -> None:
    first = _first()
    run = _again(first, first.sessions[0], server_kw={"ticket_keys": TicketKeys()})
    assert run.client.early_data_offered
    assert run.statuses() == REJECTED
    assert run.kinds() == FULL
    assert run.early_received == b""


def test_tickets_of_a_server_with_early_data_off_lack_the_extension() -> None:
    first = _first(server_kw={"max_early_data_size": 0})
    tickets = [
        NewSessionTicket.decode(b) for b in first.sent_by_server(HandshakeType.NEW_SESSION_TICKET)
    ]
    assert len(tickets) == 2
    assert all(ExtensionType.EARLY_DATA not in t.extensions for t in tickets)
    assert [s.max_early_data_size for s in first.sessions] == [0, 0]


def test_tickets_of_a_server_with_early_data_on_carry_its_limit() -> None:
    first = _first()
    tickets = [
        NewSessionTicket.decode(b) for b in first.sent_by_server(HandshakeType.NEW_SESSION_TICKET)
    ]
    assert len(tickets) == 2
    limits = [
        decode_u32(t.extensions[ExtensionType.EARLY_DATA], "max_early_data_size") for t in tickets
    ]
    assert limits == [LIMIT, LIMIT]
    assert [s.max_early_data_size for s in first.sessions] == [LIMIT, LIMIT]


def test_client_does_not_offer_early_data_with_a_ticket_that_allows_none() -> None:
    first = _first(server_kw={"max_early_data_size": 0})
    run = _again(first, first.sessions[0], server_kw={"max_early_data_size": LIMIT})
    assert not run.client.early_data_offered
    assert ExtensionType.EARLY_DATA not in run.client_hellos[0].extensions
    assert ExtensionType.PRE_SHARED_KEY in run.client_hellos[0].extensions
    assert run.statuses() == NOT_OFFERED
    assert run.kinds() == RESUMED
    # Nothing but the ClientHello went first: no CCS, no sealed records.
    assert [rec[0] for rec in split_records(run.client_flights[0])] == [ContentType.HANDSHAKE]


def test_server_rejects_early_data_with_a_ticket_issued_while_it_was_off() -> None:
    first = _first(server_kw={"max_early_data_size": 0})
    # The client is made to believe the ticket allows early data; the ticket says no.
    session = dataclasses.replace(first.sessions[0], max_early_data_size=LIMIT)
    run = _again(first, session, server_kw={"max_early_data_size": LIMIT})
    assert run.client.early_data_offered
    assert run.statuses() == REJECTED
    assert run.kinds() == RESUMED
    assert run.early_received == b""


def test_client_does_not_offer_more_early_data_than_the_ticket_allows() -> None:
    first = _first()
    run = _again(first, first.sessions[0], b"x" * (LIMIT + 1))
    assert not run.client.early_data_offered
    assert ExtensionType.EARLY_DATA not in run.client_hellos[0].extensions
    assert run.statuses() == NOT_OFFERED
    assert run.kinds() == RESUMED
    assert run.early_received == b""


def test_client_does_not_offer_empty_early_data() -> None:
    first = _first()
    run = _again(first, first.sessions[0], b"")
    assert not run.client.early_data_offered
    assert run.statuses() == NOT_OFFERED


def test_client_does_not_offer_early_data_when_the_session_alpn_is_not_offered() -> None:
    first = _first(
        client_kw={"alpn_protocols": ("h2",)}, server_kw={"alpn_protocols": ("h2", "http/1.1")}
    )
    assert first.sessions[0].alpn_protocol == "h2"
    run = _again(first, first.sessions[0], client_kw={"alpn_protocols": ("http/1.1",)})
    assert not run.client.early_data_offered
    assert ExtensionType.EARLY_DATA not in run.client_hellos[0].extensions
    assert run.client.negotiated is not None
    assert run.client.negotiated.early_data is EarlyDataStatus.NOT_OFFERED


def test_client_does_not_offer_early_data_when_it_now_offers_alpn_and_the_session_had_none() -> (
    None
):
    first = _first()
    assert first.sessions[0].alpn_protocol is None
    run = _again(first, first.sessions[0], client_kw={"alpn_protocols": ("h2",)})
    assert not run.client.early_data_offered
    assert ExtensionType.EARLY_DATA not in run.client_hellos[0].extensions


def test_early_data_with_the_session_alpn_is_accepted() -> None:
    alpn = {"alpn_protocols": ("h2", "http/1.1")}
    first = _first(client_kw=alpn, server_kw=alpn)
    run = _again(first, first.sessions[0])
    assert run.statuses() == ACCEPTED
    assert run.client.negotiated is not None and run.client.negotiated.alpn_protocol == "h2"


def test_hello_retry_request_drops_early_data_and_the_handshake_completes() -> None:
    first = _first()
    run = _again(
        first,
        first.sessions[0],
        client_kw={"key_share_groups": (NamedGroup.X25519,)},
        server_kw={"groups": (NamedGroup.SECP256R1,)},
    )
    assert run.client.early_data_offered
    assert run.statuses() == REJECTED
    retried = HandshakeKind.RESUMED_WITH_HELLO_RETRY_REQUEST
    assert run.kinds() == (retried, retried)
    assert run.early_received == b""
    first_hello, second_hello = run.client_hellos
    assert ExtensionType.EARLY_DATA in first_hello.extensions
    assert ExtensionType.EARLY_DATA not in second_hello.extensions
    # RFC 8446 §4.1.2: the second ClientHello goes in plaintext, in the second flight.
    second_flight = split_records(run.client_flights[1])
    assert second_flight[0][0] == ContentType.HANDSHAKE
    assert second_flight[0][5] == HandshakeType.CLIENT_HELLO
    assert ContentType.CHANGE_CIPHER_SPEC not in [rec[0] for rec in second_flight]


def test_hello_retry_request_without_middlebox_compat_drops_early_data() -> None:
    first = _first(client_kw={"middlebox_compat": False})
    run = _again(
        first,
        first.sessions[0],
        client_kw={"key_share_groups": (NamedGroup.X25519,)},
        server_kw={"groups": (NamedGroup.SECP256R1,)},
    )
    assert run.statuses() == REJECTED
    assert run.client.negotiated is not None and run.client.negotiated.resumed
    assert _client_hellos(run.client_flights[1])[0].extensions.get(ExtensionType.EARLY_DATA) is None


def test_after_a_hello_retry_request_a_tampered_record_is_bad_record_mac() -> None:
    """The second ClientHello ends the skipping of refused early data (§4.2.10).

    Before it, records that do not open are dropped (the client's 0-RTT data);
    after it, one that does not open under the handshake key is an attack,
    not early data, and must fail as bad_record_mac rather than vanish.
    """
    first = _first()
    client, server = _connections(
        first,
        first.sessions[0],
        client_kw={"key_share_groups": (NamedGroup.X25519,)},
        server_kw={"groups": (NamedGroup.SECP256R1,)},
    )
    server.receive_data(_client_first_flight(client, EARLY))  # -> HelloRetryRequest
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())  # the second ClientHello
    client.receive_data(server.data_to_send())  # the server's flight
    finished = bytearray(client.data_to_send())
    finished[-1] ^= 0x01  # tamper with the tag of the client's last record
    with pytest.raises(BadRecordMac):
        server.receive_data(bytes(finished))


def test_ticket_under_another_suite_than_the_server_picks_rejects_early_data() -> None:
    both = {"cipher_suites": (SHA256_SUITE, CHACHA_SUITE)}
    first = _first(client_kw=both, server_kw={"cipher_suites": (SHA256_SUITE,)})
    assert first.sessions[0].cipher_suite == SHA256_SUITE
    # Same hash: the PSK still resumes, but 0-RTT needs the ticket's own suite.
    run = _again(
        first, first.sessions[0], server_kw={"cipher_suites": (CHACHA_SUITE, SHA256_SUITE)}
    )
    assert run.client.negotiated is not None
    assert run.client.negotiated.cipher_suite == CHACHA_SUITE
    assert run.kinds() == RESUMED
    assert run.statuses() == REJECTED


# --- anti-replay (RFC 8446 §8) ---------------------------------------------------


def _replayable_client(first: _Run) -> ClientConnection:
    """A client whose first flight is byte-for-byte the same every time it is made."""
    config = dataclasses.replace(
        first.client.config, clock=_at(1), random=DeterministicRandom(b"replayed hello")
    )
    return ClientConnection(config, server_hostname="localhost", session=first.sessions[0])


def test_replayed_client_hello_has_its_early_data_rejected() -> None:
    first = _first()
    server_config = dataclasses.replace(first.server.config, clock=_at(1))
    original = _run(_replayable_client(first), ServerConnection(server_config), EARLY)
    assert original.statuses() == ACCEPTED
    replay = _run(_replayable_client(first), ServerConnection(server_config), EARLY)
    assert replay.client_flights[0] == original.client_flights[0]  # the very same bytes
    assert replay.statuses() == REJECTED
    assert replay.kinds() == RESUMED
    assert replay.early_received == b""


def test_replayed_client_hello_is_accepted_by_a_server_with_a_separate_guard() -> None:
    # The control for the test above: only the shared guard refused the copy.
    first = _first()
    server_config = dataclasses.replace(first.server.config, clock=_at(1))
    original = _run(_replayable_client(first), ServerConnection(server_config), EARLY)
    assert original.statuses() == ACCEPTED
    other = dataclasses.replace(server_config, early_data_replay_guard=ReplayCache())
    replay = _run(_replayable_client(first), ServerConnection(other), EARLY)
    assert replay.client_flights[0] == original.client_flights[0]
    assert replay.statuses() == ACCEPTED
    assert replay.early_received == EARLY


def test_replayed_first_flight_fed_raw_to_a_second_server_delivers_nothing() -> None:
    first = _first()
    client, server = _connections(first, first.sessions[0])
    flight = _client_first_flight(client, EARLY)
    assert server.receive_data(flight) == [EarlyDataReceived(EARLY)]
    second = ServerConnection(server.config)
    assert second.receive_data(flight) == []
    assert second.state_name == "ExpectClientFinished"  # the records were skipped
    assert not second.can_send_application_data


def test_second_ticket_of_the_same_connection_brings_early_data_too() -> None:
    first = _first()
    assert _again(first, first.sessions[0]).statuses() == ACCEPTED
    assert _again(first, first.sessions[1]).statuses() == ACCEPTED


def test_the_same_ticket_brings_early_data_only_once() -> None:
    first = _first()
    assert _again(first, first.sessions[0]).statuses() == ACCEPTED
    again = _again(
        first, first.sessions[0], client_kw={"clock": _at(2)}, server_kw={"clock": _at(2)}
    )
    assert again.statuses() == REJECTED
    assert again.kinds() == RESUMED


def test_client_clock_far_off_rejects_early_data_but_still_resumes() -> None:
    first = _first()
    # The client believes the ticket is 30 s older than the server knows it is.
    run = _again(first, first.sessions[0], client_kw={"clock": _at(31)})
    assert run.client.early_data_offered
    assert run.statuses() == REJECTED
    assert run.kinds() == RESUMED
    assert run.early_received == b""


def test_client_clock_just_inside_the_age_window_is_accepted() -> None:
    first = _first()
    off = EARLY_DATA_AGE_WINDOW - 1
    run = _again(first, first.sessions[0], client_kw={"clock": _at(1 + off)})
    assert run.statuses() == ACCEPTED


def test_full_replay_cache_refuses_early_data() -> None:
    first = _first(server_kw={"early_data_replay_guard": ReplayCache(max_entries=1)})
    assert _again(first, first.sessions[0]).statuses() == ACCEPTED
    refused = _again(first, first.sessions[1])
    assert refused.statuses() == REJECTED
    assert refused.kinds() == RESUMED


def test_full_replay_cache_accepts_again_once_its_entry_expired() -> None:
    first = _first(server_kw={"early_data_replay_guard": ReplayCache(max_entries=1)})
    assert _again(first, first.sessions[0]).statuses() == ACCEPTED
    later = 2 + 2 * EARLY_DATA_AGE_WINDOW
    run = _again(
        first, first.sessions[1], client_kw={"clock": _at(later)}, server_kw={"clock": _at(later)}
    )
    assert run.statuses() == ACCEPTED


def test_offer_refused_for_another_reason_uses_up_no_guard_entry() -> None:
    first = _first(server_kw={"early_data_replay_guard": ReplayCache(max_entries=1)})
    refused = _again(first, first.sessions[0], client_kw={"clock": _at(31)})
    assert refused.statuses() == REJECTED
    assert _again(first, first.sessions[1]).statuses() == ACCEPTED


# --- ReplayCache ---------------------------------------------------------------


def test_replay_cache_says_first_use_once() -> None:
    cache = ReplayCache()
    assert cache.first_use(b"a", 100.0, 20.0)
    assert not cache.first_use(b"a", 101.0, 20.0)
    assert cache.first_use(b"b", 101.0, 20.0)
    assert len(cache) == 2


def test_replay_cache_forgets_a_key_once_it_expired() -> None:
    cache = ReplayCache()
    assert cache.first_use(b"a", 100.0, 20.0)
    assert not cache.first_use(b"a", 119.9, 20.0)
    assert cache.first_use(b"a", 120.0, 20.0)
    assert not cache.first_use(b"a", 139.0, 20.0)


def test_replay_cache_drops_expired_entries_as_time_passes() -> None:
    cache = ReplayCache()
    for key in (b"a", b"b", b"c"):
        assert cache.first_use(key, 100.0, 20.0)
    assert cache.first_use(b"d", 130.0, 20.0)
    assert len(cache) == 1


def test_full_replay_cache_refuses_new_keys_without_evicting_live_ones() -> None:
    cache = ReplayCache(max_entries=2)
    assert cache.first_use(b"a", 100.0, 20.0)
    assert cache.first_use(b"b", 100.0, 20.0)
    assert not cache.first_use(b"c", 101.0, 20.0)
    assert not cache.first_use(b"a", 101.0, 20.0)  # still remembered
    assert len(cache) == 2
    assert cache.first_use(b"c", 120.0, 20.0)  # a and b expired: room again


def test_replay_cache_expired_key_behind_a_live_one_is_new_again() -> None:
    cache = ReplayCache()
    assert cache.first_use(b"long", 100.0, 100.0)
    assert cache.first_use(b"short", 100.0, 5.0)
    # "short" expired but sits behind the live "long": it is still new again.
    assert cache.first_use(b"short", 110.0, 5.0)
    assert not cache.first_use(b"short", 111.0, 5.0)
    assert len(cache) == 2


def test_replay_cache_clock_going_back_keeps_entries() -> None:
    cache = ReplayCache()
    assert cache.first_use(b"a", 100.0, 20.0)
    assert not cache.first_use(b"a", 50.0, 20.0)
    assert cache.first_use(b"b", 50.0, 20.0)
    assert not cache.first_use(b"a", 110.0, 20.0)


def test_replay_cache_needs_room_for_one_entry() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ReplayCache(max_entries=0)


# --- errors -----------------------------------------------------------------------


def test_more_early_data_than_the_ticket_allows_is_unexpected_message() -> None:
    first = _first(server_kw={"max_early_data_size": 10})
    # The client is made to believe the ticket allows more than it does.
    session = dataclasses.replace(first.sessions[0], max_early_data_size=1000)
    client, server = _connections(first, session)
    with pytest.raises(UnexpectedMessage, match="max_early_data_size"):
        server.receive_data(_client_first_flight(client, b"x" * 100))
    with pytest.raises(AlertReceived) as info:
        client.receive_data(server.data_to_send())
    assert info.value.description == AlertDescription.UNEXPECTED_MESSAGE


def test_early_data_limit_is_counted_across_records() -> None:
    first = _first(server_kw={"max_early_data_size": 10})
    client, server = _connections(first, first.sessions[0])
    server.receive_data(_client_first_flight(client, b"x" * 10))
    # A second record of 0-RTT data past the limit, sealed under the early key.
    client.seal_early_data(b"y")
    with pytest.raises(UnexpectedMessage, match="max_early_data_size"):
        server.receive_data(client.data_to_send())


def test_end_of_early_data_with_a_body_is_decode_error() -> None:
    first = _first()
    client, server = _connections(first, first.sessions[0])

    def add_body(raw: bytes) -> bytes:
        if raw[0] == HandshakeType.END_OF_EARLY_DATA:
            return frame(HandshakeType.END_OF_EARLY_DATA, b"\x00")
        return raw

    rewrite_outgoing_handshake(client, add_body)
    server.receive_data(_client_first_flight(client, EARLY))
    client.receive_data(server.data_to_send())
    with pytest.raises(DecodeError, match="EndOfEarlyData"):
        server.receive_data(client.data_to_send())
    with pytest.raises(AlertReceived) as info:
        client.receive_data(server.data_to_send())
    assert info.value.description == AlertDescription.DECODE_ERROR


@pytest.mark.parametrize(
    "trailer",
    [b"\x14\x00", frame(HandshakeType.FINISHED, bytes(32))],
    ids=["partial message", "whole finished"],
)
def test_end_of_early_data_must_end_its_record(trailer: bytes) -> None:
    # RFC 8446 §5.1: handshake messages must not span a key change; what
    # follows EndOfEarlyData belongs under the handshake key, not the early one.
    first = _first()
    client, server = _connections(first, first.sessions[0])

    def append(raw: bytes) -> bytes:
        return raw + trailer if raw[0] == HandshakeType.END_OF_EARLY_DATA else raw

    rewrite_outgoing_handshake(client, append)
    server.receive_data(_client_first_flight(client, EARLY))
    client.receive_data(server.data_to_send())
    with pytest.raises(UnexpectedMessage, match="record boundary"):
        server.receive_data(client.data_to_send())


def test_client_finished_without_end_of_early_data_fails_to_decrypt() -> None:
    first = _first()
    client, server = _connections(first, first.sessions[0])

    def drop_end_of_early_data(raw: bytes) -> bytes:
        if raw[0] == HandshakeType.END_OF_EARLY_DATA:
            return b""
        return raw

    rewrite_outgoing_handshake(client, drop_end_of_early_data)
    server.receive_data(_client_first_flight(client, EARLY))
    client.receive_data(server.data_to_send())
    # The Finished comes under the handshake key; the server still reads the early key.
    with pytest.raises(BadRecordMac):
        server.receive_data(client.data_to_send())
    assert server.negotiated is None


def _server_accepting_anyway(
    server: ServerConnection, change: Callable[[dict[int, bytes]], None]
) -> None:
    """Make ``server``'s EncryptedExtensions say early data was accepted, changed by ``change``."""

    def rewrite(raw: bytes) -> bytes:
        if raw[0] != HandshakeType.ENCRYPTED_EXTENSIONS:
            return raw
        exts = dict(EncryptedExtensions.decode(raw[4:]).extensions)
        exts[ExtensionType.EARLY_DATA] = b""
        change(exts)
        return frame(
            HandshakeType.ENCRYPTED_EXTENSIONS, EncryptedExtensions(extensions=exts).encode()
        )

    rewrite_outgoing_handshake(server, rewrite)


def test_client_refuses_acceptance_of_early_data_under_another_alpn() -> None:
    alpn = {"alpn_protocols": ("h2", "http/1.1")}
    first = _first(client_kw=alpn, server_kw=alpn)
    assert first.sessions[0].alpn_protocol == "h2"
    client, server = _connections(first, first.sessions[0])

    def other_alpn(exts: dict[int, bytes]) -> None:
        exts[ExtensionType.APPLICATION_LAYER_PROTOCOL_NEGOTIATION] = encode_alpn([b"http/1.1"])

    _server_accepting_anyway(server, other_alpn)
    server.receive_data(_client_first_flight(client, EARLY))
    with pytest.raises(IllegalParameter, match="ALPN"):
        client.receive_data(server.data_to_send())
    with pytest.raises(AlertReceived) as info:
        server.receive_data(client.data_to_send())
    assert info.value.description == AlertDescription.ILLEGAL_PARAMETER


def test_client_refuses_acceptance_of_early_data_under_another_suite() -> None:
    both = {"cipher_suites": (SHA256_SUITE, CHACHA_SUITE)}
    first = _first(client_kw=both, server_kw={"cipher_suites": (SHA256_SUITE,)})
    client, server = _connections(
        first, first.sessions[0], server_kw={"cipher_suites": (CHACHA_SUITE, SHA256_SUITE)}
    )
    _server_accepting_anyway(server, lambda exts: None)
    server.receive_data(_client_first_flight(client, EARLY))
    with pytest.raises(IllegalParameter, match="cipher suite"):
        client.receive_data(server.data_to_send())


def test_client_refuses_acceptance_of_early_data_it_did_not_send() -> None:
    first = _first()
    client, server = _connections(first, first.sessions[0])
    _server_accepting_anyway(server, lambda exts: None)
    client.start_handshake()  # no early data: no early_data extension either
    pump(client, server)
    # RFC 8446 §4.2: an answer to an extension not offered is unsupported_extension.
    with pytest.raises(UnsupportedExtension, match="did not offer"):
        client.receive_data(server.data_to_send())


def test_client_refuses_acceptance_of_early_data_with_a_full_handshake() -> None:
    first = _first()
    client, server = _connections(first, first.sessions[0], server_kw={"ticket_keys": TicketKeys()})
    _server_accepting_anyway(server, lambda exts: None)
    server.receive_data(_client_first_flight(client, EARLY))
    with pytest.raises(IllegalParameter, match="without accepting the PSK"):
        client.receive_data(server.data_to_send())


# --- tickets and keys ---------------------------------------------------------------


def test_ticket_issued_during_a_zero_rtt_connection_resumes_with_zero_rtt() -> None:
    first = _first()
    second = _again(first, first.sessions[0])
    assert second.statuses() == ACCEPTED
    assert second.sessions, "the 0-RTT connection brought no ticket"
    third = _again(
        first, second.sessions[0], client_kw={"clock": _at(2)}, server_kw={"clock": _at(2)}
    )
    assert third.kinds() == RESUMED
    assert third.statuses() == ACCEPTED
    assert third.early_received == EARLY


def test_key_log_has_the_same_client_early_traffic_secret_on_both_sides() -> None:
    first = _first()
    logs: dict[str, list[tuple[str, bytes, bytes]]] = {"client": [], "server": []}

    def logger(side: str) -> Callable[[str, bytes, bytes], None]:
        return lambda label, random, secret: logs[side].append((label, random, secret))

    run = _again(
        first,
        first.sessions[0],
        client_kw={"key_log": logger("client")},
        server_kw={"key_log": logger("server")},
    )
    assert run.statuses() == ACCEPTED
    client_early = [e for e in logs["client"] if e[0] == "CLIENT_EARLY_TRAFFIC_SECRET"]
    server_early = [e for e in logs["server"] if e[0] == "CLIENT_EARLY_TRAFFIC_SECRET"]
    assert len(client_early) == 1
    assert client_early == server_early
    assert client_early[0][1] == run.client_hellos[0].random
    assert len(client_early[0][2]) == hashlib.sha256().digest_size


# --- configuration --------------------------------------------------------------------


def _server_config(**kw: Any) -> ServerConfig:
    return ServerConfig(certificates=(pki().certified,), **kw)


@pytest.mark.parametrize("size", [-1, MAX_EARLY_DATA_SIZE + 1])
def test_server_config_refuses_an_out_of_range_max_early_data_size(size: int) -> None:
    with pytest.raises(ValueError, match="max_early_data_size"):
        _server_config(max_early_data_size=size)


def test_server_config_makes_a_replay_guard_only_when_early_data_is_on() -> None:
    assert _server_config().max_early_data_size == 0
    assert _server_config().early_data_replay_guard is None
    enabled = _server_config(max_early_data_size=MAX_EARLY_DATA_SIZE)
    assert isinstance(enabled.early_data_replay_guard, ReplayCache)
    # One guard per configuration, not one shared by every server of the process.
    other = _server_config(max_early_data_size=1)
    assert other.early_data_replay_guard is not enabled.early_data_replay_guard


def test_server_config_keeps_a_given_replay_guard() -> None:
    guard = ReplayCache(max_entries=5)
    enabled = _server_config(max_early_data_size=1, early_data_replay_guard=guard)
    assert enabled.early_data_replay_guard is guard
