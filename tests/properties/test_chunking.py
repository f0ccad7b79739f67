"""Chunking invariance: how the transport cuts a byte stream never changes the events.

One whole connection per scenario (a plain handshake, and one through a
HelloRetryRequest) is recorded once: handshake, application data both ways,
KeyUpdates with answers, close_notify both ways. Both sides draw randomness
from :class:`DeterministicRandom`, the groups are x25519 and P-256 (no ML-KEM,
whose encapsulation draws its own randomness) and the certificate is Ed25519
(a deterministic signature), so a fresh connection with the same seeds
produces the same flights again and the recorded peer bytes stay valid for
it. Each direction is then replayed into a fresh connection cut at arbitrary
offsets.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.engine_pairs import DeterministicRandom, handshake, make_pair
from triotls.engine import ClientConnection, Connection, HandshakeKind, ServerConnection
from triotls.engine.enums import NamedGroup
from triotls.engine.events import (
    ApplicationData,
    CloseNotify,
    Event,
    HandshakeComplete,
    KeyUpdated,
    NewSessionTicketReceived,
)

EXAMPLES = settings(max_examples=60, deadline=None)
SCENARIOS = ["full", "hello-retry"]


def _fresh_pair(scenario: str) -> tuple[ClientConnection, ServerConnection]:
    # "hello-retry": the client shares x25519 only, the server wants P-256.
    server_groups = (NamedGroup.SECP256R1,) if scenario == "hello-retry" else (NamedGroup.X25519,)
    return make_pair(
        client_kw={
            "random": DeterministicRandom(b"chunking client"),
            "groups": (NamedGroup.X25519, NamedGroup.SECP256R1),
            "key_share_groups": (NamedGroup.X25519,),
        },
        server_kw={"random": DeterministicRandom(b"chunking server"), "groups": server_groups},
        kind="ed25519",
    )


@functools.cache
def _transcript(scenario: str) -> tuple[bytes, bytes]:
    """(bytes the client sent, bytes the server sent) over one whole connection."""
    client, server = _fresh_pair(scenario)
    to_server = bytearray()
    to_client = bytearray()

    def client_to_server() -> None:
        data = client.data_to_send()
        to_server.extend(data)
        if data:
            server.receive_data(data)

    def server_to_client() -> None:
        data = server.data_to_send()
        to_client.extend(data)
        if data:
            client.receive_data(data)

    client.start_handshake()
    while not server.handshake_complete:
        client_to_server()
        server_to_client()
    assert client.handshake_complete and server.handshake_complete
    server.send_application_data(b"welcome")
    client.send_application_data(b"x" * 20_000)
    client.key_update(request_peer=True)
    client.send_application_data(b"after my update")
    client_to_server()
    server.send_application_data(bytes(range(256)) * 40)
    server.key_update(request_peer=True)
    server.send_application_data(b"after the server's update")
    server.close()
    server_to_client()
    client.send_application_data(b"last words")
    client.close()
    client_to_server()
    return bytes(to_server), bytes(to_client)


def _feed(conn: Connection, wire: bytes, cuts: list[int]) -> list[Event]:
    events: list[Event] = []
    start = 0
    for end in [*sorted(set(cuts)), len(wire)]:
        if end > start:
            events += conn.receive_data(wire[start:end])
            start = end
    return events


def _fresh_client(scenario: str) -> ClientConnection:
    client, _server = _fresh_pair(scenario)
    client.start_handshake()
    return client


def _fresh_server(scenario: str) -> ServerConnection:
    return _fresh_pair(scenario)[1]


def _reference(make: Callable[[str], Connection], scenario: str, wire: bytes) -> list[Event]:
    return make(scenario).receive_data(wire)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_recorded_streams_replay_to_the_expected_events(scenario: str) -> None:
    to_server, to_client = _transcript(scenario)
    assert _reference(_fresh_client, scenario, to_client) == [
        HandshakeComplete(),
        # The server's two tickets (ServerConfig.ticket_count) come with its flight.
        NewSessionTicketReceived(lifetime=7200),
        NewSessionTicketReceived(lifetime=7200),
        ApplicationData(b"welcome"),
        KeyUpdated(update_requested=False),
        ApplicationData(bytes(range(256)) * 40),
        KeyUpdated(update_requested=True),
        ApplicationData(b"after the server's update"),
        CloseNotify(),
    ]
    events = _reference(_fresh_server, scenario, to_server)
    assert [type(e) for e in events] == [
        HandshakeComplete,
        ApplicationData,
        ApplicationData,
        KeyUpdated,
        ApplicationData,
        KeyUpdated,
        ApplicationData,
        CloseNotify,
    ]
    assert b"".join(e.data for e in events if isinstance(e, ApplicationData)) == (
        b"x" * 20_000 + b"after my update" + b"last words"
    )


# Cut points are fractions of the stream, so one strategy serves every scenario.
fractions = st.lists(st.floats(0, 1), max_size=40)


def _cuts(wire: bytes, where: list[float]) -> list[int]:
    return [int(f * len(wire)) for f in where]


@pytest.mark.parametrize("scenario", SCENARIOS)
@EXAMPLES
@given(where=fractions)
def test_client_events_do_not_depend_on_how_the_stream_is_cut(
    scenario: str, where: list[float]
) -> None:
    wire = _transcript(scenario)[1]
    expected = _reference(_fresh_client, scenario, wire)
    assert _feed(_fresh_client(scenario), wire, _cuts(wire, where)) == expected


@pytest.mark.parametrize("scenario", SCENARIOS)
@EXAMPLES
@given(where=fractions)
def test_server_events_do_not_depend_on_how_the_stream_is_cut(
    scenario: str, where: list[float]
) -> None:
    wire = _transcript(scenario)[0]
    expected = _reference(_fresh_server, scenario, wire)
    assert _feed(_fresh_server(scenario), wire, _cuts(wire, where)) == expected


@pytest.mark.parametrize("scenario", SCENARIOS)
@EXAMPLES
@given(size=st.integers(1, 600))
def test_client_events_are_the_same_for_any_fixed_chunk_size(scenario: str, size: int) -> None:
    wire = _transcript(scenario)[1]
    cuts = list(range(size, len(wire), size))
    assert _feed(_fresh_client(scenario), wire, cuts) == _reference(_fresh_client, scenario, wire)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_byte_at_a_time_delivery_gives_the_same_events_both_ways(scenario: str) -> None:
    to_server, to_client = _transcript(scenario)
    assert _feed(_fresh_client(scenario), to_client, list(range(len(to_client)))) == (
        _reference(_fresh_client, scenario, to_client)
    )
    assert _feed(_fresh_server(scenario), to_server, list(range(len(to_server)))) == (
        _reference(_fresh_server, scenario, to_server)
    )


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_replayed_handshake_is_reproducible_with_the_same_seeds(scenario: str) -> None:
    # The premise of this module: fresh pairs with the same seeds agree byte for byte.
    first = _fresh_pair(scenario)
    second = _fresh_pair(scenario)
    handshake(*first)
    handshake(*second)
    label = b"EXPORTER-replay"
    assert first[0].export_keying_material(label, b"", 16) == (
        second[0].export_keying_material(label, b"", 16)
    )


def test_hello_retry_scenario_really_retries() -> None:
    client, server = _fresh_pair("hello-retry")
    handshake(client, server)
    assert client.negotiated is not None
    assert client.negotiated.handshake_kind == HandshakeKind.FULL_WITH_HELLO_RETRY_REQUEST
