"""Session resumption between our own client and server (RFC 8446 §2.2, §4.2.11, §4.6.1).

Each test makes a full handshake to get tickets, then connects again with one
of them. Whatever makes a ticket unusable (foreign or rotated-out keys, age,
another name, ALPN or hash) must end in a *full* handshake, not an error;
only a binder that does not verify is fatal. What the client offered is read
from the plaintext ClientHello records, not from the client's own state.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import pytest

import triotls.engine.client as client_module
import triotls.engine.connection as connection_module
import triotls.engine.server as server_module
from tests.interop.wire import server_hellos
from tests.support.engine_pairs import (
    SERVER_NAME,
    FixedClock,
    handshake,
    last_alert,
    make_pair,
    pki,
    pump,
    replace_extension,
    rewrite_server_hello,
    split_records,
    unknown_ca_trust,
)
from triotls.config import TrustStore
from triotls.engine import ClientConnection, ServerConnection
from triotls.engine.client import _ClientHandshake
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
    Event,
    HandshakeComplete,
    NewSessionTicketReceived,
)
from triotls.engine.extensions import decode_pre_shared_key_ch
from triotls.engine.messages import ClientHello
from triotls.engine.state import HandshakeKind
from triotls.engine.tickets import ClientSession, TicketKeys
from triotls.errors import AlertReceived, DecryptError, IllegalParameter

BASE: Final = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
SHA256_SUITE: Final = CipherSuite.TLS_AES_128_GCM_SHA256
SHA384_SUITE: Final = CipherSuite.TLS_AES_256_GCM_SHA384
# More than enough round trips for a handshake with a HelloRetryRequest.
_MAX_ROUNDS: Final = 8


def _at(seconds: float) -> FixedClock:
    return FixedClock(BASE + datetime.timedelta(seconds=seconds))


@dataclass(frozen=True, slots=True, kw_only=True)
class _Run:
    """One connection between our client and server, and what crossed the wire."""

    client: ClientConnection
    server: ServerConnection
    client_events: list[Event]
    server_events: list[Event]
    client_hellos: list[ClientHello]
    server_wire: bytes

    @property
    def sessions(self) -> list[ClientSession]:
        return [
            e.session
            for e in self.client_events
            if isinstance(e, NewSessionTicketReceived) and e.session is not None
        ]

    @property
    def offered_psk(self) -> list[bool]:
        """For each ClientHello: did it carry a pre_shared_key?"""
        return [ExtensionType.PRE_SHARED_KEY in ch.extensions for ch in self.client_hellos]

    def kinds(self) -> tuple[HandshakeKind, HandshakeKind]:
        client, server = self.client.negotiated, self.server.negotiated
        assert client is not None and server is not None
        return client.handshake_kind, server.handshake_kind


def _client_hellos(wire: bytes) -> list[ClientHello]:
    # Only the ClientHellos travel in plaintext handshake records; each fits one.
    return [
        ClientHello.decode(rec[9:])
        for rec in split_records(wire)
        if rec[0] == ContentType.HANDSHAKE and rec[5] == HandshakeType.CLIENT_HELLO
    ]


def _run(client: ClientConnection, server: ServerConnection) -> _Run:
    """Like ``handshake``, recording the ClientHellos and everything the server sent."""
    client.start_handshake()
    client_events: list[Event] = []
    server_events: list[Event] = []
    hellos: list[ClientHello] = []
    server_wire = bytearray()
    for _ in range(_MAX_ROUNDS):
        wire = client.data_to_send()
        hellos += _client_hellos(wire)
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
                client_hellos=hellos,
                server_wire=bytes(server_wire),
            )
    raise AssertionError("the handshake did not complete")


def _first(
    client_kw: Mapping[str, Any] | None = None, server_kw: Mapping[str, Any] | None = None
) -> _Run:
    """A full handshake between a fresh pair; its tickets are in ``.sessions``."""
    client, server = make_pair(client_kw=client_kw, server_kw=server_kw)
    run = _run(client, server)
    assert run.client.negotiated is not None and not run.client.negotiated.resumed
    return run


def _again(
    first: _Run,
    session: ClientSession | None,
    *,
    client_kw: Mapping[str, Any] | None = None,
    server_kw: Mapping[str, Any] | None = None,
    server_hostname: str = SERVER_NAME,
) -> _Run:
    """A new connection with ``first``'s configurations, changed by the kw, offering ``session``."""
    client_config = dataclasses.replace(first.client.config, **(client_kw or {}))
    server_config = dataclasses.replace(first.server.config, **(server_kw or {}))
    return _run(
        ClientConnection(client_config, server_hostname=server_hostname, session=session),
        ServerConnection(server_config),
    )


FULL: Final = (HandshakeKind.FULL, HandshakeKind.FULL)
RESUMED: Final = (HandshakeKind.RESUMED, HandshakeKind.RESUMED)


def _offer_refused(run: _Run) -> None:
    """The client offered its ticket and the server went on with a full handshake."""
    assert run.offered_psk[0], "the client did not offer its ticket"
    assert run.kinds() == FULL
    # The server authenticated with its certificate again, and the client checked it.
    assert run.server.negotiated is not None
    assert run.server.negotiated.signature_scheme is not None
    assert run.client.negotiated is not None
    assert run.client.negotiated.verified_chain is not None


# --- resuming -----------------------------------------------------------------


def test_second_connection_resumes_with_a_ticket_of_the_first() -> None:
    first = _first()
    run = _again(first, first.sessions[0])
    assert run.offered_psk == [True]
    assert run.kinds() == RESUMED
    assert run.client.negotiated is not None and run.client.negotiated.resumed
    assert run.server.negotiated is not None and run.server.negotiated.resumed


def test_resumed_server_sends_neither_certificate_nor_signature() -> None:
    first = _first()
    run = _again(first, first.sessions[0])
    # Had a Certificate come, the client (expecting Finished) would have failed.
    assert run.server.negotiated is not None and run.server.negotiated.signature_scheme is None
    assert run.client.negotiated is not None and run.client.negotiated.signature_scheme is None
    chain_size = sum(len(der) for der in pki("ecdsa").certified.chain_der)
    assert len(run.server_wire) + chain_size < len(first.server_wire)


def test_resumed_client_reports_the_chain_verified_in_the_first_handshake() -> None:
    first = _first()
    run = _again(first, first.sessions[0])
    original, resumed = first.client.negotiated, run.client.negotiated
    assert original is not None and resumed is not None
    assert original.verified_chain is not None
    assert resumed.verified_chain == original.verified_chain
    assert resumed.peer_certificates == original.peer_certificates == (pki("ecdsa").leaf,)


def test_resumption_makes_a_fresh_key_exchange() -> None:
    first = _first()
    run = _again(first, first.sessions[0])
    # psk_dhe_ke only (RFC 8446 §4.2.9), and the ServerHello answers with a share.
    modes = run.client_hellos[0].extensions[ExtensionType.PSK_KEY_EXCHANGE_MODES]
    assert modes == b"\x01\x01"
    (hello,) = server_hellos(run.server_wire)
    assert hello.group is not None
    assert run.client.negotiated is not None
    assert run.client.negotiated.group == hello.group


def test_resumed_connection_exchanges_data_both_ways() -> None:
    first = _first()
    run = _again(first, first.sessions[0])
    run.client.send_application_data(b"from the client")
    assert pump(run.client, run.server) == [ApplicationData(b"from the client")]
    run.server.send_application_data(b"from the server")
    assert pump(run.server, run.client) == [ApplicationData(b"from the server")]


def test_resumed_connection_exports_other_keying_material_than_the_original() -> None:
    first = _first()
    run = _again(first, first.sessions[0])
    label, context = b"EXPERIMENTAL triotls", b"ctx"
    original = first.client.export_keying_material(label, context, 32)
    resumed = run.client.export_keying_material(label, context, 32)
    assert resumed == run.server.export_keying_material(label, context, 32)
    assert original == first.server.export_keying_material(label, context, 32)
    assert resumed != original


def test_ticket_from_a_resumed_connection_resumes_again() -> None:
    first = _first()
    second = _again(first, first.sessions[0])
    assert second.sessions, "the resumed connection brought no ticket"
    third = _again(first, second.sessions[0])
    assert third.kinds() == RESUMED
    assert third.client.negotiated is not None
    assert first.client.negotiated is not None
    assert third.client.negotiated.verified_chain == first.client.negotiated.verified_chain


def test_every_ticket_of_a_connection_resumes() -> None:
    first = _first(server_kw={"ticket_count": 3})
    assert len(first.sessions) == 3
    for session in first.sessions:
        assert _again(first, session).kinds() == RESUMED


def test_tickets_of_one_connection_are_distinct() -> None:
    first = _first(server_kw={"ticket_count": 3})
    assert len({s.ticket for s in first.sessions}) == 3
    assert len({s.psk for s in first.sessions}) == 3


def test_resumption_keeps_the_negotiated_alpn() -> None:
    first = _first(client_kw={"alpn_protocols": ("h2",)}, server_kw={"alpn_protocols": ("h2",)})
    run = _again(first, first.sessions[0])
    assert run.kinds() == RESUMED
    assert run.client.negotiated is not None and run.client.negotiated.alpn_protocol == "h2"


def test_resumption_with_a_hello_retry_request() -> None:
    retry = {
        "client_kw": {"key_share_groups": (NamedGroup.X25519,)},
        "server_kw": {"groups": (NamedGroup.SECP256R1,)},
    }
    first = _first(**retry)
    assert first.client.negotiated is not None
    assert first.client.negotiated.handshake_kind is HandshakeKind.FULL_WITH_HELLO_RETRY_REQUEST
    run = _again(first, first.sessions[0])
    assert run.offered_psk == [True, True]
    expected = HandshakeKind.RESUMED_WITH_HELLO_RETRY_REQUEST
    assert run.kinds() == (expected, expected)
    assert run.client.negotiated is not None and run.client.negotiated.resumed


def test_client_drops_its_offer_when_the_retry_picks_a_suite_of_another_hash() -> None:
    first = _first(
        client_kw={"cipher_suites": (SHA384_SUITE,)}, server_kw={"cipher_suites": (SHA384_SUITE,)}
    )
    run = _again(
        first,
        first.sessions[0],
        client_kw={
            "cipher_suites": (SHA384_SUITE, SHA256_SUITE),
            "key_share_groups": (NamedGroup.X25519,),
        },
        server_kw={
            "cipher_suites": (SHA256_SUITE, SHA384_SUITE),
            "groups": (NamedGroup.SECP256R1,),
        },
    )
    assert run.offered_psk == [True, False]
    full = HandshakeKind.FULL_WITH_HELLO_RETRY_REQUEST
    assert run.kinds() == (full, full)


# --- tickets the server sends ---------------------------------------------------


def test_server_sends_ticket_count_tickets_with_its_flight() -> None:
    client, server = make_pair(server_kw={"ticket_count": 3})
    client.start_handshake()
    pump(client, server)
    events = pump(server, client)  # before the client's Finished reaches the server
    assert [type(e) for e in events] == [HandshakeComplete] + [NewSessionTicketReceived] * 3


def test_ticket_count_zero_sends_no_tickets() -> None:
    client, server = make_pair(server_kw={"ticket_count": 0})
    client_events, _ = handshake(client, server)
    assert not [e for e in client_events if isinstance(e, NewSessionTicketReceived)]


def test_ticket_lifetime_is_announced_in_the_ticket() -> None:
    first = _first(server_kw={"ticket_lifetime": 300})
    tickets = [e for e in first.client_events if isinstance(e, NewSessionTicketReceived)]
    assert [t.lifetime for t in tickets] == [300, 300]
    assert [s.lifetime for s in first.sessions] == [300, 300]


def test_session_records_the_original_connection() -> None:
    first = _first(
        client_kw={"alpn_protocols": ("h2",), "clock": _at(0)},
        server_kw={"alpn_protocols": ("h2",)},
    )
    session = first.sessions[0]
    assert session.server_name == SERVER_NAME
    assert session.alpn_protocol == "h2"
    assert first.client.negotiated is not None
    assert session.cipher_suite == first.client.negotiated.cipher_suite
    assert session.received_at == _at(0).now()


# --- refusals: a full handshake, not an error -------------------------------------


def test_server_with_foreign_ticket_keys_makes_a_full_handshake() -> None:
    first = _first()
    run = _again(first, first.sessions[0], server_kw={"ticket_keys": TicketKeys()})
    _offer_refused(run)


def test_full_handshake_after_a_refusal_brings_tickets_that_resume() -> None:
    first = _first()
    other_keys = {"ticket_keys": TicketKeys()}
    refused = _again(first, first.sessions[0], server_kw=other_keys)
    assert refused.kinds() == FULL
    assert _again(first, refused.sessions[0], server_kw=other_keys).kinds() == RESUMED


def test_server_holding_the_same_ticket_keys_resumes() -> None:
    # A fleet: two servers that loaded the same key bytes.
    key = bytes(range(32))
    first = _first(server_kw={"ticket_keys": TicketKeys([key])})
    run = _again(first, first.sessions[0], server_kw={"ticket_keys": TicketKeys([key])})
    assert run.kinds() == RESUMED


def test_ticket_under_a_rotated_but_kept_key_resumes() -> None:
    keys = TicketKeys(keep=2)
    first = _first(server_kw={"ticket_keys": keys})
    keys.rotate()
    assert _again(first, first.sessions[0]).kinds() == RESUMED


def test_ticket_under_a_key_rotated_out_makes_a_full_handshake() -> None:
    keys = TicketKeys(keep=2)
    first = _first(server_kw={"ticket_keys": keys})
    keys.rotate()
    keys.rotate()
    _offer_refused(_again(first, first.sessions[0]))


def _timed_first(lifetime: int) -> _Run:
    return _first(
        client_kw={"clock": _at(0)}, server_kw={"clock": _at(0), "ticket_lifetime": lifetime}
    )


def test_ticket_just_before_its_lifetime_ends_resumes() -> None:
    first = _timed_first(lifetime=60)
    run = _again(
        first, first.sessions[0], client_kw={"clock": _at(59)}, server_kw={"clock": _at(59)}
    )
    assert run.kinds() == RESUMED


def test_server_refuses_an_expired_ticket() -> None:
    first = _timed_first(lifetime=60)
    # The client believes the ticket lasts longer, so it still offers it.
    session = dataclasses.replace(first.sessions[0], lifetime=7200)
    run = _again(first, session, client_kw={"clock": _at(61)}, server_kw={"clock": _at(61)})
    _offer_refused(run)


def test_client_does_not_offer_an_expired_session() -> None:
    first = _timed_first(lifetime=60)
    run = _again(first, first.sessions[0], client_kw={"clock": _at(60)})
    assert run.offered_psk == [False]
    assert run.kinds() == FULL


def test_server_refuses_a_ticket_whose_reported_age_is_far_from_its_own() -> None:
    first = _timed_first(lifetime=7200)
    # The client thinks the ticket is an hour old; the server knows it is 10 s.
    session = dataclasses.replace(first.sessions[0], received_at=_at(-3590).now())
    run = _again(first, session, client_kw={"clock": _at(10)}, server_kw={"clock": _at(10)})
    _offer_refused(run)


def test_ticket_age_a_few_seconds_off_still_resumes() -> None:
    first = _timed_first(lifetime=7200)
    session = dataclasses.replace(first.sessions[0], received_at=_at(-5).now())
    run = _again(first, session, client_kw={"clock": _at(10)}, server_kw={"clock": _at(10)})
    assert run.kinds() == RESUMED


def test_server_refuses_a_ticket_issued_for_another_server_name() -> None:
    first = _first()
    # The client connects to the IP address (no SNI); the ticket says "localhost".
    session = dataclasses.replace(first.sessions[0], server_name="127.0.0.1")
    run = _again(first, session, server_hostname="127.0.0.1")
    _offer_refused(run)


def test_client_does_not_offer_a_session_for_another_server_name() -> None:
    # RFC 8446 §4.6.1: the PSK stands for a certificate checked for the
    # original name only; some servers (OpenSSL) would accept it anyway.
    first = _first()
    run = _again(first, first.sessions[0], server_hostname="127.0.0.1")
    assert run.offered_psk == [False]
    assert run.kinds() == FULL


def test_verifying_client_does_not_offer_a_session_from_an_unverified_connection() -> None:
    # A cache shared with a verify_peer=False config must not let a verifying
    # client skip the certificate check.
    first = _first(client_kw={"verify_peer": False})
    assert first.sessions and first.sessions[0].verified_chain is None
    run = _again(first, first.sessions[0], client_kw={"verify_peer": True})
    assert run.offered_psk == [False]
    assert run.kinds() == FULL
    assert run.client.negotiated is not None
    assert run.client.negotiated.verified_chain is not None


def _offers(first: _Run, session: ClientSession, **client_kw: Any) -> bool:
    """Whether a client with ``first``'s config, changed by ``client_kw``, offers ``session``."""
    config = dataclasses.replace(first.client.config, **client_kw)
    client = ClientConnection(config, server_hostname=SERVER_NAME, session=session)
    client.start_handshake()
    (hello,) = _client_hellos(client.data_to_send())
    return ExtensionType.PRE_SHARED_KEY in hello.extensions


@pytest.mark.parametrize(
    "stricter",
    [
        {"check_hostname": True},
        {"ocsp": "require"},
        {"max_chain_depth": 2},
        {"trust": "other roots"},
    ],
    ids=["name-check", "ocsp-require", "chain-depth", "other-roots"],
)
def test_client_does_not_offer_a_session_verified_under_other_terms(
    stricter: dict[str, Any],
) -> None:
    # Resuming checks nothing again: a session verified by a config that
    # checked less (not the name, OCSP only if stapled, a deeper chain) or
    # against other roots must not let this config skip its own checks.
    if stricter.get("trust") == "other roots":
        stricter = {"trust": unknown_ca_trust()}
    looser = {"check_hostname": False, "ocsp": "request", "max_chain_depth": 8}
    first = _first(client_kw=looser)
    assert first.sessions
    assert _offers(first, first.sessions[0], **looser)  # the control: same terms
    assert not _offers(first, first.sessions[0], **{**looser, **stricter})


def test_client_resumes_under_an_equal_trust_store_built_again() -> None:
    # The trust store counts by its roots (TrustStore.fingerprint), not as an
    # object: a config rebuilt from the same PEM resumes.
    first = _first()
    assert first.sessions and first.client.config.trust is not None
    rebuilt = TrustStore(first.client.config.trust.certificates)
    assert rebuilt is not first.client.config.trust
    run = _again(first, first.sessions[0], client_kw={"trust": rebuilt})
    assert run.offered_psk == [True]
    assert run.kinds() == RESUMED


def test_server_refuses_a_ticket_issued_for_another_alpn_protocol() -> None:
    first = _first(
        client_kw={"alpn_protocols": ("h2",)}, server_kw={"alpn_protocols": ("h2", "http/1.1")}
    )
    run = _again(first, first.sessions[0], client_kw={"alpn_protocols": ("http/1.1",)})
    _offer_refused(run)
    assert run.client.negotiated is not None
    assert run.client.negotiated.alpn_protocol == "http/1.1"


def test_client_does_not_offer_a_session_whose_suite_it_no_longer_offers() -> None:
    first = _first(
        client_kw={"cipher_suites": (SHA384_SUITE,)}, server_kw={"cipher_suites": (SHA384_SUITE,)}
    )
    run = _again(
        first,
        first.sessions[0],
        client_kw={"cipher_suites": (SHA256_SUITE, CipherSuite.TLS_CHACHA20_POLY1305_SHA256)},
        server_kw={"cipher_suites": (SHA256_SUITE,)},
    )
    assert run.offered_psk == [False]
    assert run.kinds() == FULL


def test_server_refuses_a_ticket_whose_hash_differs_from_the_suite_it_picks() -> None:
    first = _first(
        client_kw={"cipher_suites": (SHA384_SUITE,)}, server_kw={"cipher_suites": (SHA384_SUITE,)}
    )
    run = _again(
        first,
        first.sessions[0],
        client_kw={"cipher_suites": (SHA384_SUITE, SHA256_SUITE)},
        server_kw={"cipher_suites": (SHA256_SUITE, SHA384_SUITE)},
    )
    _offer_refused(run)
    assert run.client.negotiated is not None
    assert run.client.negotiated.cipher_suite == SHA256_SUITE


def test_ticket_resumes_under_another_suite_of_the_same_hash() -> None:
    # RFC 8446 §4.2.11: what must match is the hash, not the suite.
    both = (SHA256_SUITE, CipherSuite.TLS_CHACHA20_POLY1305_SHA256)
    first = _first(client_kw={"cipher_suites": both}, server_kw={"cipher_suites": both})
    run = _again(
        first,
        first.sessions[0],
        server_kw={"cipher_suites": (CipherSuite.TLS_CHACHA20_POLY1305_SHA256, SHA256_SUITE)},
    )
    assert run.kinds() == RESUMED
    assert run.client.negotiated is not None
    assert run.client.negotiated.cipher_suite == CipherSuite.TLS_CHACHA20_POLY1305_SHA256


_BUILD_CLIENT_HELLO: Final = client_module._build_client_hello


def _only_psk_ke(hs: _ClientHandshake) -> ClientHello:
    """A ClientHello whose psk_key_exchange_modes lists psk_ke (0) only, binder redone."""
    hello = _BUILD_CLIENT_HELLO(hs)
    exts = replace_extension(hello.extensions, ExtensionType.PSK_KEY_EXCHANGE_MODES, b"\x01\x00")
    return client_module._offer_psk(hs, dataclasses.replace(hello, extensions=exts))


def test_offer_allowing_only_psk_ke_gets_a_full_handshake(monkeypatch: pytest.MonkeyPatch) -> None:
    # The server resumes only with a fresh key exchange (psk_dhe_ke).
    first = _first()
    monkeypatch.setattr(client_module, "_build_client_hello", _only_psk_ke)
    run = _again(first, first.sessions[0])
    modes = run.client_hellos[0].extensions[ExtensionType.PSK_KEY_EXCHANGE_MODES]
    assert modes == b"\x01\x00"
    _offer_refused(run)
    # Nor does it issue tickets the client could not use the way it asks.
    assert run.sessions == []


# --- binders ----------------------------------------------------------------------


def test_binder_made_with_the_wrong_psk_is_decrypt_error() -> None:
    first = _first()
    forged = dataclasses.replace(first.sessions[0], psk=bytes(32))
    client = ClientConnection(first.client.config, server_hostname=SERVER_NAME, session=forged)
    server = ServerConnection(first.server.config)
    client.start_handshake()
    with pytest.raises(DecryptError, match="binder"):
        pump(client, server)
    wire = server.data_to_send()
    assert last_alert(wire) == AlertDescription.DECRYPT_ERROR
    with pytest.raises(AlertReceived) as info:
        client.receive_data(wire)
    assert info.value.description == 51  # decrypt_error


def test_binder_altered_on_the_wire_is_decrypt_error() -> None:
    first = _first()
    client = ClientConnection(
        first.client.config, server_hostname=SERVER_NAME, session=first.sessions[0]
    )
    server = ServerConnection(first.server.config)
    client.start_handshake()
    wire = bytearray(client.data_to_send())
    wire[-1] ^= 0x01  # the binder ends the ClientHello, which ends the record
    with pytest.raises(DecryptError, match="binder"):
        server.receive_data(bytes(wire))
    assert last_alert(server.data_to_send()) == AlertDescription.DECRYPT_ERROR


def test_server_compares_binders_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    original = connection_module.constant_time_equal

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return original(a, b)

    first = _first()
    monkeypatch.setattr(server_module, "constant_time_equal", spy)
    run = _again(first, first.sessions[0])
    assert run.kinds() == RESUMED
    offer = decode_pre_shared_key_ch(run.client_hellos[0].extensions[ExtensionType.PRE_SHARED_KEY])
    assert any(offer.binders[0] in pair for pair in compared)


def test_server_hello_selecting_an_identity_never_offered_is_illegal_parameter() -> None:
    first = _first()
    client = ClientConnection(
        first.client.config, server_hostname=SERVER_NAME, session=first.sessions[0]
    )
    server = ServerConnection(first.server.config)
    client.start_handshake()
    pump(client, server)
    flight = rewrite_server_hello(
        server.data_to_send(),
        lambda sh: dataclasses.replace(
            sh,
            extensions=replace_extension(sh.extensions, ExtensionType.PRE_SHARED_KEY, b"\x00\x01"),
        ),
    )
    with pytest.raises(IllegalParameter, match="selected PSK 1"):
        client.receive_data(flight)
    assert last_alert(client.data_to_send()) == AlertDescription.ILLEGAL_PARAMETER
