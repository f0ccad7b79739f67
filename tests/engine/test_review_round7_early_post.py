"""Review round 7: 0-RTT (RFC 8446 §4.2.10, §4.5, §8) and post-handshake auth (§4.6.2).

Our client against our server. A test marked ``xfail(strict=True)`` shows a
finding: it fails because of the bug and passes once it is fixed. The
others pin verified behaviour that no earlier test covered.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Final

import pytest

from tests.support.engine_pairs import (
    FixedClock,
    client_ca,
    client_certified,
    make_pair,
    pump,
    rewrite_outgoing_handshake,
)
from triotls.config import ServerConfig, TrustStore
from triotls.engine import ClientConnection, ServerConnection
from triotls.engine.enums import AlertDescription, ContentType, HandshakeType
from triotls.engine.events import (
    ClientCertificateReceived,
    EarlyDataReceived,
    Event,
    NewSessionTicketReceived,
)
from triotls.engine.messages import frame
from triotls.engine.record import RecordWriter
from triotls.engine.state import EarlyDataStatus
from triotls.engine.suites import CIPHER_SUITES
from triotls.engine.tickets import ClientSession, ReplayCache, TicketKeys
from triotls.errors import AlertReceived, BadRecordMac, UnexpectedMessage

BASE: Final = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
EARLY: Final = b"GET /index.html HTTP/1.1\r\n\r\n"
_ROUNDS: Final = 8


def _at(seconds: float) -> FixedClock:
    return FixedClock(BASE + datetime.timedelta(seconds=seconds))


def _drive(
    client: ClientConnection, server: ServerConnection, early_data: bytes = b""
) -> tuple[list[Event], list[Event]]:
    """Start the client (with ``early_data``) and pump until both sides complete."""
    client.start_handshake(early_data=early_data)
    client_events: list[Event] = []
    server_events: list[Event] = []
    for _ in range(_ROUNDS):
        server_events += pump(client, server)
        client_events += pump(server, client)
        if client.handshake_complete and server.handshake_complete:
            server_events += pump(client, server)
            return client_events, server_events
    raise AssertionError(f"stuck: client {client.state_name}, server {server.state_name}")


def _sessions(events: list[Event]) -> list[ClientSession]:
    return [e.session for e in events if isinstance(e, NewSessionTicketReceived) and e.session]


def _early(events: list[Event]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, EarlyDataReceived))


def _first_connection(
    **server_kw: object,
) -> tuple[ClientConnection, ServerConnection, list[ClientSession]]:
    """A full handshake with a 0-RTT server at time 0; its tickets."""
    client, server = make_pair(
        client_kw={"clock": _at(0)},
        server_kw={"max_early_data_size": 1000, "clock": _at(0), **server_kw},
    )
    client_events, _ = _drive(client, server)
    sessions = _sessions(client_events)
    assert sessions
    return client, server, sessions


def _resuming_client(
    first: ClientConnection, session: ClientSession, at: float, **client_kw: Any
) -> ClientConnection:
    config = dataclasses.replace(first.config, clock=_at(at), **client_kw)
    return ClientConnection(config, server_hostname="localhost", session=session)


# --- anti-replay across a restart (RFC 8446 §8.2) -------------------------------------


def test_restarted_server_does_not_accept_a_replay_recorded_before_its_start() -> None:
    # Persistent ticket keys, as docs/resumption.rst advises for restarts and
    # fleets ("loaded from your own secret storage").
    keys = TicketKeys([bytes(range(32))])
    # A server that has been running for a while (its guard has no startup
    # window left), recording what it accepts.
    client0, server0, sessions = _first_connection(
        ticket_keys=keys, early_data_replay_guard=ReplayCache()
    )
    client = _resuming_client(client0, sessions[0], at=1)
    client.start_handshake(early_data=EARLY)
    recorded = client.data_to_send()  # what an on-path attacker records
    before = ServerConnection(dataclasses.replace(server0.config, clock=_at(1)))
    assert _early(before.receive_data(recorded)) == EARLY
    # The process restarts a second later: same configuration, so same ticket
    # keys; its replay guard (made by ServerConfig) starts empty.
    restarted_config = dataclasses.replace(
        server0.config, clock=_at(2), early_data_replay_guard=None
    )
    assert restarted_config.early_data_replay_guard is not None
    assert restarted_config.early_data_replay_guard is not server0.config.early_data_replay_guard
    after = ServerConnection(restarted_config)
    assert _early(after.receive_data(recorded)) == b"", "the replay's 0-RTT data was delivered"
    assert after.negotiated is None or after.negotiated.early_data is not EarlyDataStatus.ACCEPTED


def test_restarted_server_takes_0rtt_again_once_a_replay_would_be_too_old() -> None:
    # The startup window lasts as long as a recorded ClientHello could pass
    # the ticket-age check (2 x 10 s); after it, 0-RTT works again.
    keys = TicketKeys([bytes(range(32))])
    _client0, server0, _sessions = _first_connection(ticket_keys=keys)
    guard = server0.config.early_data_replay_guard
    start = _at(0).now()
    assert isinstance(guard, ReplayCache) and guard.started_at == start
    assert not guard.first_use(b"during the window", start + 19.9, 20.0)
    assert guard.first_use(b"after the window", start + 20.0, 20.0)


def test_server_with_its_own_fresh_ticket_keys_has_no_startup_window() -> None:
    # Tickets under keys made in this process cannot predate it.
    _client0, server0, _sessions = _first_connection()
    guard = server0.config.early_data_replay_guard
    assert isinstance(guard, ReplayCache) and guard.started_at is None


# --- EndOfEarlyData and the early key ----------------------------------------------


def test_end_of_early_data_to_a_server_that_refused_early_data_is_unexpected_message() -> None:
    # RFC 8446 §4.5: a client whose early data was refused must not send
    # EndOfEarlyData; the server, waiting for the client's Finished, refuses it.
    client0, server0, sessions = _first_connection()
    client = _resuming_client(client0, sessions[0], at=1)
    refusing = ServerConnection(
        dataclasses.replace(server0.config, clock=_at(1), max_early_data_size=0)
    )

    def add_end_of_early_data(raw: bytes) -> bytes:
        if raw[0] == HandshakeType.FINISHED:
            return frame(HandshakeType.END_OF_EARLY_DATA, b"") + raw
        return raw

    rewrite_outgoing_handshake(client, add_end_of_early_data)
    client.start_handshake(early_data=EARLY)
    assert client.early_data_offered
    assert _early(pump(client, refusing)) == b""
    pump(refusing, client)
    assert client.negotiated is not None
    assert client.negotiated.early_data is EarlyDataStatus.REJECTED
    with pytest.raises(UnexpectedMessage, match="END_OF_EARLY_DATA"):
        pump(client, refusing)
    with pytest.raises(AlertReceived) as info:
        client.receive_data(refusing.data_to_send())
    assert info.value.description == AlertDescription.UNEXPECTED_MESSAGE


def test_early_data_record_after_end_of_early_data_is_bad_record_mac() -> None:
    # RFC 8446 §4.5: EndOfEarlyData ends the early key; a record sealed under
    # it afterwards must not be delivered (§4.2.10: bad_record_mac).
    secrets: dict[str, bytes] = {}

    def key_log(label: str, _random: bytes, secret: bytes) -> None:
        secrets[label] = secret

    client0, server0, sessions = _first_connection()
    client = _resuming_client(client0, sessions[0], at=1, key_log=key_log)
    server = ServerConnection(dataclasses.replace(server0.config, clock=_at(1)))
    client.start_handshake(early_data=EARLY)
    assert _early(pump(client, server)) == EARLY  # one record, early sequence number 0
    pump(server, client)
    second_flight = client.data_to_send()
    # EndOfEarlyData (early key, sequence 1) comes first, in a record of its own.
    end_len = 5 + int.from_bytes(second_flight[3:5], "big")
    end_record, rest = second_flight[:end_len], second_flight[end_len:]
    writer = RecordWriter()
    writer.set_key(CIPHER_SUITES[sessions[0].cipher_suite], secrets["CLIENT_EARLY_TRAFFIC_SECRET"])
    assert writer._protection is not None
    writer._protection.seq = 2  # the next early record after EndOfEarlyData
    late = writer.seal(ContentType.APPLICATION_DATA, b"late early data")
    events = server.receive_data(end_record)
    assert events == []
    with pytest.raises(BadRecordMac) as info:
        server.receive_data(late + rest)
    assert not any(isinstance(e, EarlyDataReceived) for e in info.value.events)
    assert server.negotiated is None


# --- post-handshake auth on a 0-RTT connection (§4.4, §4.6.2) -----------------------


def test_post_handshake_auth_after_accepted_early_data_authenticates() -> None:
    # Both transcripts include EndOfEarlyData; the answer must verify.
    trust = TrustStore.from_pem(client_ca().cert_pem.bytes())
    client0, server0, sessions = _first_connection(client_trust=trust)
    client = _resuming_client(
        client0,
        sessions[0],
        at=1,
        post_handshake_auth=True,
        certificate=client_certified(),
    )
    server_config: ServerConfig = dataclasses.replace(server0.config, clock=_at(1))
    server = ServerConnection(server_config)
    _client_events, server_events = _drive(client, server, EARLY)
    assert _early(server_events) == EARLY
    assert server.negotiated is not None
    assert server.negotiated.early_data is EarlyDataStatus.ACCEPTED
    server.request_client_certificate()
    pump(server, client)
    answers = [e for e in pump(client, server) if isinstance(e, ClientCertificateReceived)]
    assert len(answers) == 1
    assert answers[0].peer_certificates
    assert answers[0].verification is not None and answers[0].verification.is_valid
