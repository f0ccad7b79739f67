"""Session tickets: what a ticket seals, the server's ticket keys, the client's cache.

The handshake-level behaviour (offering, accepting and refusing tickets) is
in ``test_resumption.py``; this file tests the building blocks on their own.
"""

from __future__ import annotations

import dataclasses

import pytest

from triotls.engine.enums import CipherSuite
from triotls.engine.tickets import ClientSession, SessionCache, SessionState, TicketKeys
from triotls.errors import DecodeError

KEY_A = bytes(range(32))
KEY_B = bytes(range(32, 64))
KEY_C = bytes(range(64, 96))
NONCE = bytes(12)
T0 = 1_700_000_000.0


def _state(**changes: object) -> SessionState:
    state = SessionState(
        cipher_suite=CipherSuite.TLS_AES_256_GCM_SHA384,
        psk=b"\x11" * 48,
        created_at=T0 + 0.25,
        lifetime=7200,
        ticket_age_add=0xFEDCBA98,
        alpn_protocol="h2",
        server_name="example.com",
    )
    return dataclasses.replace(state, **changes)  # type: ignore[arg-type]


def _session(ticket: bytes = b"ticket", **changes: object) -> ClientSession:
    session = ClientSession(
        ticket=ticket,
        psk=b"\x22" * 32,
        cipher_suite=CipherSuite.TLS_AES_128_GCM_SHA256,
        ticket_age_add=0,
        lifetime=100,
        received_at=T0,
        alpn_protocol=None,
        server_name="example.com",
    )
    return dataclasses.replace(session, **changes)  # type: ignore[arg-type]


# --- SessionState ---------------------------------------------------------------


def test_session_state_round_trips() -> None:
    state = _state()
    assert SessionState.decode(state.encode()) == state


def test_session_state_without_alpn_or_server_name_round_trips() -> None:
    state = _state(alpn_protocol=None, server_name=None)
    assert SessionState.decode(state.encode()) == state


def test_session_state_keeps_the_psk_out_of_its_repr() -> None:
    assert "11111111" not in repr(_state())


def test_session_state_of_an_unknown_version_is_decode_error() -> None:
    encoded = bytearray(_state().encode())
    encoded[0] = 0xFF
    with pytest.raises(DecodeError, match="unknown version"):
        SessionState.decode(bytes(encoded))


def test_session_state_with_trailing_bytes_is_decode_error() -> None:
    with pytest.raises(DecodeError):
        SessionState.decode(_state().encode() + b"\x00")


# --- TicketKeys -----------------------------------------------------------------


def test_ticket_keys_open_what_they_sealed() -> None:
    keys = TicketKeys([KEY_A])
    assert keys.open(keys.seal(_state(), NONCE)) == _state()


def test_ticket_starts_with_the_current_key_id_and_the_nonce() -> None:
    keys = TicketKeys([KEY_A])
    nonce = b"\x5a" * 12
    ticket = keys.seal(_state(), nonce)
    assert ticket[:8] == keys.key_ids[0]
    assert ticket[8:20] == nonce


def test_ticket_hides_the_psk_and_the_server_name() -> None:
    ticket = TicketKeys([KEY_A]).seal(_state(), NONCE)
    assert b"\x11" * 48 not in ticket
    assert b"example.com" not in ticket


@pytest.mark.parametrize("position", [0, 8, 20, -1], ids=["key id", "nonce", "body", "tag"])
def test_tampered_ticket_does_not_open(position: int) -> None:
    keys = TicketKeys([KEY_A])
    ticket = bytearray(keys.seal(_state(), NONCE))
    ticket[position] ^= 0x01
    assert keys.open(bytes(ticket)) is None


@pytest.mark.parametrize("size", [0, 1, 35])
def test_ticket_too_short_to_hold_a_tag_does_not_open(size: int) -> None:
    keys = TicketKeys([KEY_A])
    assert keys.open(keys.seal(_state(), NONCE)[:size]) is None


def test_ticket_from_foreign_keys_does_not_open() -> None:
    ticket = TicketKeys([KEY_A]).seal(_state(), NONCE)
    assert TicketKeys([KEY_B]).open(ticket) is None


def test_ticket_under_a_known_key_id_but_another_key_does_not_open() -> None:
    # Same key id, different key: the AEAD, not the id, decides.
    forged = TicketKeys([KEY_B]).seal(_state(), NONCE)
    keys = TicketKeys([KEY_A])
    assert keys.open(keys.key_ids[0] + forged[8:]) is None


def test_default_ticket_keys_are_random() -> None:
    ticket = TicketKeys().seal(_state(), NONCE)
    assert TicketKeys().open(ticket) is None


def test_rotation_seals_with_the_new_key_and_still_opens_the_old_tickets() -> None:
    keys = TicketKeys([KEY_A])
    old_ticket = keys.seal(_state(), NONCE)
    keys.rotate(KEY_B)
    new_ticket = keys.seal(_state(), NONCE)
    assert new_ticket[:8] == keys.key_ids[0] != old_ticket[:8]
    assert keys.open(old_ticket) == _state()
    assert keys.open(new_ticket) == _state()


def test_rotation_drops_keys_beyond_keep() -> None:
    keys = TicketKeys([KEY_A], keep=2)
    ticket = keys.seal(_state(), NONCE)
    keys.rotate(KEY_B)
    assert keys.open(ticket) == _state()
    keys.rotate(KEY_C)
    assert len(keys.key_ids) == 2
    assert keys.open(ticket) is None


def test_rotation_without_a_key_makes_a_random_one() -> None:
    keys = TicketKeys([KEY_A])
    keys.rotate()
    assert keys.key_ids[0] != TicketKeys([KEY_A]).key_ids[0]
    assert len(keys.key_ids) == 2


def test_keys_given_beyond_keep_are_not_kept() -> None:
    keys = TicketKeys([KEY_A, KEY_B, KEY_C], keep=2)
    assert keys.key_ids == TicketKeys([KEY_A, KEY_B]).key_ids
    assert keys.open(TicketKeys([KEY_C]).seal(_state(), NONCE)) is None


def test_servers_built_from_the_same_key_bytes_open_each_others_tickets() -> None:
    # A fleet: each server loads the same keys from the operator's storage.
    server_1 = TicketKeys([KEY_A])
    server_2 = TicketKeys([KEY_A])
    assert server_2.open(server_1.seal(_state(), NONCE)) == _state()
    assert server_1.open(server_2.seal(_state(), NONCE)) == _state()


def test_fleet_rotation_new_key_first_still_opens_tickets_under_the_previous_key() -> None:
    before = TicketKeys([KEY_A])
    after = TicketKeys([KEY_B, KEY_A])  # a server that already rotated
    assert after.open(before.seal(_state(), NONCE)) == _state()
    assert before.open(after.seal(_state(), NONCE)) is None


def test_key_ids_are_not_the_keys() -> None:
    (key_id,) = TicketKeys([KEY_A]).key_ids
    assert len(key_id) == 8
    assert key_id not in KEY_A


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_ticket_key_of_the_wrong_size_is_value_error(size: int) -> None:
    with pytest.raises(ValueError, match="32-byte"):
        TicketKeys([bytes(size)])


def test_ticket_keys_with_a_wrong_size_among_good_ones_is_value_error() -> None:
    with pytest.raises(ValueError, match="32-byte"):
        TicketKeys([KEY_A, bytes(31)])


def test_empty_ticket_key_list_is_value_error() -> None:
    with pytest.raises(ValueError, match="one or more"):
        TicketKeys([])


def test_rotating_in_a_key_of_the_wrong_size_is_value_error() -> None:
    keys = TicketKeys([KEY_A])
    with pytest.raises(ValueError, match="32 bytes"):
        keys.rotate(bytes(16))
    assert keys.key_ids == TicketKeys([KEY_A]).key_ids


def test_keep_below_one_is_value_error() -> None:
    with pytest.raises(ValueError, match="keep"):
        TicketKeys([KEY_A], keep=0)


# --- ClientSession ----------------------------------------------------------------


def test_session_is_usable_until_its_lifetime_ends() -> None:
    session = _session(lifetime=100)
    assert session.is_usable_at(T0)
    assert session.is_usable_at(T0 + 99.9)
    assert not session.is_usable_at(T0 + 100)


def test_session_from_the_future_is_not_usable() -> None:
    # The wall clock went backwards since the ticket arrived.
    assert not _session().is_usable_at(T0 - 1)


def test_obfuscated_age_is_milliseconds_plus_age_add() -> None:
    session = _session(ticket_age_add=1000)
    assert session.obfuscated_age(T0 + 2.5) == 3500


def test_obfuscated_age_wraps_modulo_2_to_the_32() -> None:
    session = _session(ticket_age_add=0xFFFF_FC18)  # 2**32 - 1000
    assert session.obfuscated_age(T0 + 2.5) == 1500


def test_obfuscated_age_never_counts_negative_time() -> None:
    session = _session(ticket_age_add=77)
    assert session.obfuscated_age(T0 - 5) == 77


def test_client_session_keeps_ticket_and_psk_out_of_its_repr() -> None:
    text = repr(_session(ticket=b"SECRET-TICKET"))
    assert "SECRET-TICKET" not in text
    assert "2222" not in text


# --- SessionCache -----------------------------------------------------------------


def test_cache_hands_out_a_session_once_by_default() -> None:
    cache = SessionCache()
    cache.store("example.com:443", _session())
    assert cache.take("example.com:443", T0) == _session()
    assert cache.take("example.com:443", T0) is None
    assert len(cache) == 0


def test_cache_without_single_use_hands_out_the_same_session_again() -> None:
    cache = SessionCache(single_use=False)
    cache.store("example.com:443", _session())
    assert cache.take("example.com:443", T0) == _session()
    assert cache.take("example.com:443", T0) == _session()
    assert len(cache) == 1


def test_cache_hands_out_the_newest_session_first() -> None:
    cache = SessionCache()
    for name in (b"first", b"second", b"third"):
        cache.store("k", _session(ticket=name))
    taken = [cache.take("k", T0) for _ in range(4)]
    assert [s.ticket if s else None for s in taken] == [b"third", b"second", b"first", None]


def test_cache_keeps_at_most_per_key_sessions_dropping_the_oldest() -> None:
    cache = SessionCache(per_key=2)
    for name in (b"first", b"second", b"third"):
        cache.store("k", _session(ticket=name))
    assert len(cache) == 2
    taken = [cache.take("k", T0) for _ in range(3)]
    assert [s.ticket if s else None for s in taken] == [b"third", b"second", None]


def test_cache_forgets_the_least_recently_stored_key_beyond_max_entries() -> None:
    cache = SessionCache(max_entries=2)
    cache.store("a", _session(ticket=b"a"))
    cache.store("b", _session(ticket=b"b"))
    cache.store("a", _session(ticket=b"a2"))  # "a" is now the most recent
    cache.store("c", _session(ticket=b"c"))
    assert cache.take("b", T0) is None
    assert [cache.take(k, T0) is not None for k in ("a", "c")] == [True, True]


def test_cache_never_returns_an_expired_session() -> None:
    cache = SessionCache(single_use=False)
    cache.store("k", _session(lifetime=100))
    assert cache.take("k", T0 + 100) is None
    assert len(cache) == 0


def test_cache_skips_expired_sessions_for_a_usable_older_one() -> None:
    cache = SessionCache()
    cache.store("k", _session(ticket=b"long", lifetime=1000))
    cache.store("k", _session(ticket=b"short", lifetime=10))
    taken = cache.take("k", T0 + 50)
    assert taken is not None and taken.ticket == b"long"


def test_cache_keys_by_server_and_alpn_list_separately() -> None:
    # TLSStream keys the cache by (session_key, config.alpn_protocols).
    cache = SessionCache()
    cache.store(("example.com:443", ("h2",)), _session(ticket=b"h2", alpn_protocol="h2"))
    assert cache.take(("example.com:443", ("http/1.1",)), T0) is None
    assert cache.take(("example.com:443", ()), T0) is None
    assert cache.take(("example.com:8443", ("h2",)), T0) is None
    taken = cache.take(("example.com:443", ("h2",)), T0)
    assert taken is not None and taken.ticket == b"h2"


@pytest.mark.parametrize(("max_entries", "per_key"), [(0, 4), (256, 0)])
def test_cache_bounds_below_one_are_value_error(max_entries: int, per_key: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SessionCache(max_entries, per_key=per_key)


def test_cache_hands_out_the_newest_session_the_caller_can_use_and_keeps_the_rest() -> None:
    # A cache shared by configurations: a connection takes only a ticket it
    # would offer (ClientConnection.may_offer), and leaves the others.
    cache = SessionCache()
    cache.store("host", _session(b"mine"))
    cache.store("host", _session(b"theirs"))
    taken = cache.take("host", T0, usable=lambda s: s.ticket == b"mine")
    assert taken is not None and taken.ticket == b"mine"
    assert cache.take("host", T0, usable=lambda s: s.ticket == b"mine") is None
    left = cache.take("host", T0)
    assert left is not None and left.ticket == b"theirs"
