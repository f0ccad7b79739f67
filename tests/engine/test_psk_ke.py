"""psk_ke: resumption without a key exchange, only when asked for by name (RFC 8446 §4.2.9).

Both configs default to ``psk_key_exchange_modes=("psk_dhe_ke",)``; psk_ke
happens only when both name it. What crossed the wire is read from the
plaintext hellos with ``tests.interop.wire`` (independent of the engine):
a ServerHello's ``group`` is its key_share group, None when it has none.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import pytest

import triotls.engine.client as client_module
from tests.interop.wire import ServerHelloInfo, client_hellos, server_hellos
from tests.support.engine_pairs import (
    SERVER_NAME,
    last_alert,
    make_pair,
    pump,
    replace_extension,
    rewrite_server_hello,
    split_records,
)
from triotls.config import ClientConfig, PskMode, ServerConfig
from triotls.engine import ClientConnection, ServerConnection
from triotls.engine.client import _ClientHandshake
from triotls.engine.enums import (
    AlertDescription,
    ContentType,
    ExtensionType,
    HandshakeType,
    NamedGroup,
    PskKeyExchangeMode,
)
from triotls.engine.events import (
    ApplicationData,
    EarlyDataReceived,
    Event,
    NewSessionTicketReceived,
)
from triotls.engine.messages import ClientHello
from triotls.engine.state import EarlyDataStatus, HandshakeKind
from triotls.engine.tickets import ClientSession, TicketKeys
from triotls.errors import HandshakeFailure, IllegalParameter, MissingExtension

DHE: Final[tuple[PskMode, ...]] = ("psk_dhe_ke",)
KE: Final[tuple[PskMode, ...]] = ("psk_ke",)
KE_FIRST: Final[tuple[PskMode, ...]] = ("psk_ke", "psk_dhe_ke")
DHE_FIRST: Final[tuple[PskMode, ...]] = ("psk_dhe_ke", "psk_ke")
RESUMED: Final = (HandshakeKind.RESUMED, HandshakeKind.RESUMED)
FULL: Final = (HandshakeKind.FULL, HandshakeKind.FULL)
_MAX_ROUNDS: Final = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class _Run:
    """One connection between our client and server, and what crossed the wire."""

    client: ClientConnection
    server: ServerConnection
    client_events: list[Event]
    server_events: list[Event]
    client_wire: bytes
    server_wire: bytes

    @property
    def sessions(self) -> list[ClientSession]:
        return [
            e.session
            for e in self.client_events
            if isinstance(e, NewSessionTicketReceived) and e.session is not None
        ]

    def kinds(self) -> tuple[HandshakeKind, HandshakeKind]:
        client, server = self.client.negotiated, self.server.negotiated
        assert client is not None and server is not None
        return client.handshake_kind, server.handshake_kind

    def modes(self) -> tuple[PskKeyExchangeMode | None, PskKeyExchangeMode | None]:
        client, server = self.client.negotiated, self.server.negotiated
        assert client is not None and server is not None
        return client.psk_key_exchange_mode, server.psk_key_exchange_mode

    def groups(self) -> tuple[NamedGroup | None, NamedGroup | None]:
        client, server = self.client.negotiated, self.server.negotiated
        assert client is not None and server is not None
        return client.group, server.group

    def server_hellos(self) -> list[ServerHelloInfo]:
        return server_hellos(self.server_wire)

    def offered_modes(self) -> list[bytes]:
        """The raw psk_key_exchange_modes of each ClientHello sent."""
        # Each of our ClientHellos is alone in its plaintext record.
        hellos = [
            ClientHello.decode(rec[9:])
            for rec in split_records(self.client_wire)
            if rec[0] == ContentType.HANDSHAKE and rec[5] == HandshakeType.CLIENT_HELLO
        ]
        return [h.extensions[ExtensionType.PSK_KEY_EXCHANGE_MODES] for h in hellos]


def _run(client: ClientConnection, server: ServerConnection, early_data: bytes = b"") -> _Run:
    """Start the client and pump both ways until both sides complete, recording the wire."""
    client.start_handshake(early_data=early_data)
    client_events: list[Event] = []
    server_events: list[Event] = []
    client_wire = bytearray()
    server_wire = bytearray()
    for _ in range(_MAX_ROUNDS):
        wire = client.data_to_send()
        client_wire += wire
        if wire:
            server_events += server.receive_data(wire)
        reply = server.data_to_send()
        server_wire += reply
        if reply:
            client_events += client.receive_data(reply)
        if client.handshake_complete and server.handshake_complete:
            server_events += pump(client, server)
            return _Run(
                client=client,
                server=server,
                client_events=client_events,
                server_events=server_events,
                client_wire=bytes(client_wire),
                server_wire=bytes(server_wire),
            )
    raise AssertionError("the handshake did not complete")


def _first(
    client_kw: Mapping[str, Any] | None = None, server_kw: Mapping[str, Any] | None = None
) -> _Run:
    """A full handshake that brings tickets, both sides allowing both modes by default."""
    client, server = make_pair(
        client_kw={"psk_key_exchange_modes": KE_FIRST, **(client_kw or {})},
        server_kw={"psk_key_exchange_modes": KE_FIRST, **(server_kw or {})},
    )
    run = _run(client, server)
    assert run.kinds() == FULL
    assert run.sessions, "the server sent no tickets"
    return run


def _again(
    first: _Run,
    *,
    client_modes: tuple[PskMode, ...],
    server_modes: tuple[PskMode, ...],
    client_kw: Mapping[str, Any] | None = None,
    server_kw: Mapping[str, Any] | None = None,
    early_data: bytes = b"",
) -> _Run:
    """A second connection offering ``first``'s first ticket, with these modes."""
    client_config = dataclasses.replace(
        first.client.config, psk_key_exchange_modes=client_modes, **(client_kw or {})
    )
    server_config = dataclasses.replace(
        first.server.config, psk_key_exchange_modes=server_modes, **(server_kw or {})
    )
    client = ClientConnection(client_config, server_hostname=SERVER_NAME, session=first.sessions[0])
    return _run(client, ServerConnection(server_config), early_data)


# --- configuration --------------------------------------------------------------


def test_both_configs_default_to_psk_dhe_ke_only() -> None:
    client, server = make_pair()
    assert client.config.psk_key_exchange_modes == ("psk_dhe_ke",)
    assert server.config.psk_key_exchange_modes == ("psk_dhe_ke",)


@pytest.mark.parametrize(
    "modes",
    [(), ("psk_ke", "psk_ke"), ("psk_ke", "dhe"), ("PSK_KE",)],
    ids=["empty", "repeated", "unknown", "wrong-case"],
)
@pytest.mark.parametrize("config", [ClientConfig, ServerConfig])
def test_config_refuses_a_bad_mode_list(modes: tuple[str, ...], config: type[object]) -> None:
    kwargs: dict[str, Any] = {"psk_key_exchange_modes": modes}
    if config is ServerConfig:
        kwargs["certificates"] = make_pair()[1].config.certificates
    with pytest.raises(ValueError, match="psk_key_exchange_modes must list"):
        config(**kwargs)


def test_config_refuses_a_bare_string_for_the_modes() -> None:
    with pytest.raises(ValueError, match="not a string"):
        ClientConfig(psk_key_exchange_modes="psk_ke")  # type: ignore[arg-type]  # the mistake


def test_config_keeps_the_order_of_the_modes_as_a_tuple() -> None:
    config = ClientConfig(psk_key_exchange_modes=["psk_ke", "psk_dhe_ke"])  # type: ignore[arg-type]  # a list is accepted
    assert config.psk_key_exchange_modes == ("psk_ke", "psk_dhe_ke")


# --- what the client offers ---------------------------------------------------------


@pytest.mark.parametrize(
    ("modes", "wire"),
    [
        (DHE, b"\x01\x01"),
        (KE, b"\x01\x00"),
        (KE_FIRST, b"\x02\x00\x01"),
        (DHE_FIRST, b"\x02\x01\x00"),
    ],
)
def test_client_offers_its_modes_in_its_order(modes: tuple[PskMode, ...], wire: bytes) -> None:
    first = _first()
    run = _again(first, client_modes=modes, server_modes=DHE)
    assert run.offered_modes() == [wire]


def test_client_offering_psk_ke_only_still_sends_key_shares() -> None:
    first = _first()
    run = _again(first, client_modes=KE, server_modes=KE)
    (hello,) = client_hellos(run.client_wire)
    assert hello.key_share_groups
    assert hello.supported_groups


# --- resuming with psk_ke ----------------------------------------------------------------


def test_default_server_gives_a_psk_ke_only_client_a_full_handshake() -> None:
    first = _first()
    run = _again(first, client_modes=KE, server_modes=DHE)
    assert run.kinds() == FULL
    assert run.modes() == (None, None)
    # The full handshake authenticated with the certificate and exchanged keys.
    (hello,) = run.server_hellos()
    assert hello.group is not None
    assert run.client.negotiated is not None
    assert run.client.negotiated.signature_scheme is not None
    # Nor does a default server issue tickets such a client could only use with psk_ke.
    assert run.sessions == []


def test_server_allowing_psk_ke_resumes_without_a_key_share() -> None:
    first = _first()
    run = _again(first, client_modes=KE, server_modes=KE)
    assert run.kinds() == RESUMED
    (hello,) = run.server_hellos()
    assert not hello.is_hello_retry_request
    assert hello.group is None  # no key_share on the wire
    assert run.modes() == (PskKeyExchangeMode.PSK_KE, PskKeyExchangeMode.PSK_KE)
    assert run.groups() == (None, None)


def test_psk_ke_resumption_carries_data_both_ways() -> None:
    first = _first()
    run = _again(first, client_modes=KE, server_modes=KE)
    assert run.modes() == (PskKeyExchangeMode.PSK_KE, PskKeyExchangeMode.PSK_KE)
    run.client.send_application_data(b"from the client")
    assert pump(run.client, run.server) == [ApplicationData(b"from the client")]
    run.server.send_application_data(b"from the server")
    assert pump(run.server, run.client) == [ApplicationData(b"from the server")]


def test_psk_ke_resumption_brings_tickets_that_resume_again() -> None:
    first = _first()
    second = _again(first, client_modes=KE, server_modes=KE)
    assert second.sessions
    third = _again(second, client_modes=KE, server_modes=KE)
    assert third.kinds() == RESUMED
    assert third.modes() == (PskKeyExchangeMode.PSK_KE, PskKeyExchangeMode.PSK_KE)


def test_psk_ke_resumptions_of_two_tickets_have_different_keys() -> None:
    # No key exchange, but each ticket's PSK and each hello's randoms differ.
    first = _first()
    a = _again(first, client_modes=KE, server_modes=KE)
    b = _again(a, client_modes=KE, server_modes=KE)  # the ticket a brought, not first's
    assert a.client.session is not None and b.client.session is not None
    assert a.client.session.psk != b.client.session.psk
    for run in (a, b):
        assert run.modes() == (PskKeyExchangeMode.PSK_KE, PskKeyExchangeMode.PSK_KE)
    label = b"EXPERIMENTAL triotls"
    assert a.client.export_keying_material(label, b"", 32) == a.server.export_keying_material(
        label, b"", 32
    )
    assert a.client.export_keying_material(label, b"", 32) != b.client.export_keying_material(
        label, b"", 32
    )


@pytest.mark.parametrize(
    ("server_modes", "expected"),
    [(KE_FIRST, PskKeyExchangeMode.PSK_KE), (DHE_FIRST, PskKeyExchangeMode.PSK_DHE_KE)],
)
def test_server_order_picks_the_mode_when_the_client_offers_both(
    server_modes: tuple[PskMode, ...], expected: PskKeyExchangeMode
) -> None:
    first = _first()
    run = _again(first, client_modes=DHE_FIRST, server_modes=server_modes)
    assert run.kinds() == RESUMED
    assert run.modes() == (expected, expected)
    (hello,) = run.server_hellos()
    assert (hello.group is None) == (expected is PskKeyExchangeMode.PSK_KE)


def test_server_allowing_psk_ke_resumes_a_default_client_with_psk_dhe_ke() -> None:
    first = _first()
    run = _again(first, client_modes=DHE, server_modes=KE_FIRST)
    assert run.kinds() == RESUMED
    assert run.modes() == (PskKeyExchangeMode.PSK_DHE_KE, PskKeyExchangeMode.PSK_DHE_KE)
    (hello,) = run.server_hellos()
    assert hello.group is not None
    assert run.client.negotiated is not None and run.client.negotiated.group == hello.group


def test_server_allowing_psk_ke_only_issues_tickets_to_a_client_offering_it() -> None:
    client, server = make_pair(
        client_kw={"psk_key_exchange_modes": DHE_FIRST},
        server_kw={"psk_key_exchange_modes": KE},
    )
    assert _run(client, server).sessions


def test_server_allowing_psk_ke_only_issues_no_tickets_to_a_default_client() -> None:
    client, server = make_pair(server_kw={"psk_key_exchange_modes": KE})
    run = _run(client, server)
    assert run.kinds() == FULL
    assert run.sessions == []


def test_full_handshake_reports_no_psk_mode() -> None:
    run = _first()
    assert run.modes() == (None, None)
    assert run.client.negotiated is not None and run.client.negotiated.group is not None


# --- the client's checks -------------------------------------------------------------


def _resumption_flight(
    client_modes: tuple[PskMode, ...], server_modes: tuple[PskMode, ...]
) -> tuple[ClientConnection, bytes]:
    """A started client offering a ticket, and the server's (unaltered) first flight."""
    first = _first()
    client_config = dataclasses.replace(first.client.config, psk_key_exchange_modes=client_modes)
    server_config = dataclasses.replace(first.server.config, psk_key_exchange_modes=server_modes)
    client = ClientConnection(client_config, server_hostname=SERVER_NAME, session=first.sessions[0])
    server = ServerConnection(server_config)
    client.start_handshake()
    pump(client, server)
    return client, server.data_to_send()


def test_client_refuses_a_resumption_without_key_share_when_it_did_not_offer_psk_ke() -> None:
    client, flight = _resumption_flight(DHE, DHE)
    tampered = rewrite_server_hello(
        flight,
        lambda sh: dataclasses.replace(
            sh, extensions=replace_extension(sh.extensions, ExtensionType.KEY_SHARE, None)
        ),
    )
    # RFC 8446 §4.2.11: a key_share the psk_key_exchange_modes require is
    # missing: illegal_parameter.
    with pytest.raises(IllegalParameter, match="psk_ke"):
        client.receive_data(tampered)
    assert last_alert(client.data_to_send()) == AlertDescription.ILLEGAL_PARAMETER


def test_client_refuses_a_full_handshake_without_key_share() -> None:
    client, server = make_pair(client_kw={"psk_key_exchange_modes": KE_FIRST})
    client.start_handshake()
    pump(client, server)
    tampered = rewrite_server_hello(
        server.data_to_send(),
        lambda sh: dataclasses.replace(
            sh, extensions=replace_extension(sh.extensions, ExtensionType.KEY_SHARE, None)
        ),
    )
    with pytest.raises(MissingExtension, match="selected no PSK"):
        client.receive_data(tampered)
    assert last_alert(client.data_to_send()) == AlertDescription.MISSING_EXTENSION


def test_client_offering_psk_ke_only_refuses_a_resumption_with_key_share() -> None:
    # RFC 8446 §4.2.9: the server must not select a mode the client did not list.
    client, flight = _resumption_flight(KE, KE)
    (hello,) = server_hellos(flight)
    assert hello.group is None
    share = client.config.key_share_groups[0]
    tampered = rewrite_server_hello(
        flight,
        lambda sh: dataclasses.replace(
            sh,
            extensions=replace_extension(
                sh.extensions, ExtensionType.KEY_SHARE, share.to_bytes(2, "big") + b"\x00\x01\x00"
            ),
        ),
    )
    with pytest.raises(IllegalParameter, match="offered psk_ke only"):
        client.receive_data(tampered)
    assert last_alert(client.data_to_send()) == AlertDescription.ILLEGAL_PARAMETER


# --- HelloRetryRequest and missing key exchange ------------------------------------------

# The client's only share is X25519; the server wants P-256: a full handshake
# (or a psk_dhe_ke resumption) needs a HelloRetryRequest.
MISMATCH_CLIENT: Final[Mapping[str, Any]] = {"key_share_groups": (NamedGroup.X25519,)}
MISMATCH_SERVER: Final[Mapping[str, Any]] = {"groups": (NamedGroup.SECP256R1,)}


def test_psk_ke_resumption_needs_no_retry_when_the_share_does_not_fit() -> None:
    first = _first()
    run = _again(
        first,
        client_modes=KE,
        server_modes=KE,
        client_kw=MISMATCH_CLIENT,
        server_kw=MISMATCH_SERVER,
    )
    assert run.kinds() == RESUMED
    assert [h.is_hello_retry_request for h in run.server_hellos()] == [False]
    assert len(client_hellos(run.client_wire)) == 1


def test_server_preferring_psk_dhe_ke_retries_rather_than_resume_without_key_exchange() -> None:
    first = _first()
    run = _again(
        first,
        client_modes=KE_FIRST,
        server_modes=DHE_FIRST,
        client_kw=MISMATCH_CLIENT,
        server_kw=MISMATCH_SERVER,
    )
    retried = HandshakeKind.RESUMED_WITH_HELLO_RETRY_REQUEST
    assert run.kinds() == (retried, retried)
    assert run.modes() == (PskKeyExchangeMode.PSK_DHE_KE, PskKeyExchangeMode.PSK_DHE_KE)
    assert [h.group for h in run.server_hellos()] == [NamedGroup.SECP256R1] * 2


def test_refused_psk_ke_offer_with_a_share_that_does_not_fit_retries_for_a_full_handshake() -> None:
    first = _first()
    run = _again(
        first,
        client_modes=KE,
        server_modes=KE,
        client_kw=MISMATCH_CLIENT,
        server_kw={**MISMATCH_SERVER, "ticket_keys": TicketKeys()},
    )
    retried = HandshakeKind.FULL_WITH_HELLO_RETRY_REQUEST
    assert run.kinds() == (retried, retried)
    assert run.modes() == (None, None)


def test_psk_ke_resumes_with_no_key_exchange_group_in_common() -> None:
    first = _first()
    run = _again(
        first,
        client_modes=KE,
        server_modes=KE,
        client_kw={"groups": (NamedGroup.X25519,), "key_share_groups": (NamedGroup.X25519,)},
        server_kw=MISMATCH_SERVER,
    )
    assert run.kinds() == RESUMED
    assert run.groups() == (None, None)


def test_refused_psk_ke_offer_with_no_group_in_common_is_handshake_failure() -> None:
    first = _first()
    client_config = dataclasses.replace(
        first.client.config,
        psk_key_exchange_modes=KE,
        groups=(NamedGroup.X25519,),
        key_share_groups=(NamedGroup.X25519,),
    )
    server_config = dataclasses.replace(
        first.server.config,
        psk_key_exchange_modes=KE,
        ticket_keys=TicketKeys(),
        groups=(NamedGroup.SECP256R1,),
    )
    client = ClientConnection(client_config, server_hostname=SERVER_NAME, session=first.sessions[0])
    server = ServerConnection(server_config)
    client.start_handshake()
    with pytest.raises(HandshakeFailure, match="no key exchange group in common"):
        pump(client, server)
    assert last_alert(server.data_to_send()) == AlertDescription.HANDSHAKE_FAILURE


_BUILD_CLIENT_HELLO: Final = client_module._build_client_hello


def _without_key_exchange(hs: _ClientHandshake) -> ClientHello:
    """A ClientHello with neither supported_groups nor key_share (RFC 8446 §9.2), binder redone."""
    hello = _BUILD_CLIENT_HELLO(hs)
    exts = replace_extension(hello.extensions, ExtensionType.SUPPORTED_GROUPS, None)
    exts = replace_extension(exts, ExtensionType.KEY_SHARE, None)
    return client_module._offer_psk(hs, dataclasses.replace(hello, extensions=exts))


def test_psk_ke_resumes_a_client_hello_without_groups_or_key_share(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = _first()
    monkeypatch.setattr(client_module, "_build_client_hello", _without_key_exchange)
    run = _again(first, client_modes=KE, server_modes=KE)
    (hello,) = client_hellos(run.client_wire)
    assert hello.supported_groups == () and hello.key_share_groups == ()
    assert run.kinds() == RESUMED
    assert run.modes() == (PskKeyExchangeMode.PSK_KE, PskKeyExchangeMode.PSK_KE)


@pytest.mark.parametrize(
    ("server_modes", "server_kw"),
    [(DHE, {}), (KE, {"ticket_keys": TicketKeys()})],
    ids=["psk_ke-not-allowed", "ticket-refused"],
)
def test_client_hello_without_groups_or_key_share_and_no_psk_ke_resumption_is_missing_extension(
    monkeypatch: pytest.MonkeyPatch, server_modes: tuple[PskMode, ...], server_kw: dict[str, Any]
) -> None:
    first = _first()
    monkeypatch.setattr(client_module, "_build_client_hello", _without_key_exchange)
    client_config = dataclasses.replace(first.client.config, psk_key_exchange_modes=KE_FIRST)
    server_config = dataclasses.replace(
        first.server.config, psk_key_exchange_modes=server_modes, **server_kw
    )
    client = ClientConnection(client_config, server_hostname=SERVER_NAME, session=first.sessions[0])
    server = ServerConnection(server_config)
    client.start_handshake()
    with pytest.raises(MissingExtension, match="neither supported_groups nor key_share"):
        pump(client, server)
    assert last_alert(server.data_to_send()) == AlertDescription.MISSING_EXTENSION


# --- 0-RTT ----------------------------------------------------------------------------


def test_early_data_is_accepted_in_a_psk_ke_resumption() -> None:
    first = _first(server_kw={"max_early_data_size": 1024})
    run = _again(first, client_modes=KE, server_modes=KE, early_data=b"early, no key exchange")
    assert run.kinds() == RESUMED
    assert run.modes() == (PskKeyExchangeMode.PSK_KE, PskKeyExchangeMode.PSK_KE)
    assert run.client.negotiated is not None
    assert run.client.negotiated.early_data is EarlyDataStatus.ACCEPTED
    received = [e for e in run.server_events if isinstance(e, EarlyDataReceived)]
    assert b"".join(e.data for e in received) == b"early, no key exchange"
    (hello,) = run.server_hellos()
    assert hello.group is None
