"""Review round 9: the engine's public contract (docs/engine.rst) under misuse.

Most tests here were findings and failed before their fixes: a latched
error replaying an earlier call's events, start_handshake ignoring a latched
error or close() and letting a failure escape unwrapped, handshake output
after close_notify, take_unprocessed before close_notify corrupting the
reader, a memoryview killing the connection, a callback's UsageError leaving
a half-made handshake unlatched. The others pin documented behaviour
nothing else covered.
"""

from __future__ import annotations

import contextlib

import pytest

from tests.support.engine_pairs import (
    client_auth_only_pki,
    handshake,
    make_pair,
    pump,
    records,
)
from triotls.engine import ClientConnection
from triotls.engine.enums import ContentType
from triotls.engine.events import ApplicationData, CloseNotify, Event
from triotls.errors import AlertReceived, TLSError, UsageError

_FATAL_INTERNAL_ERROR = b"\x15\x03\x03\x00\x02\x02\x50"


def _data(events: list[Event] | tuple[object, ...]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, ApplicationData))


# --- TLSError.events is per call ------------------------------------------------------


def test_latched_error_does_not_carry_the_first_calls_events_again() -> None:
    client, server = make_pair()
    handshake(client, server)
    server.send_application_data(b"the answer")
    with pytest.raises(AlertReceived) as first:
        client.receive_data(server.data_to_send() + _FATAL_INTERNAL_ERROR)
    assert _data(first.value.events) == b"the answer"
    # errors.py: events are "the events that the same call produced before the
    # failure ... Empty otherwise". A driver that delivers exc.events on each
    # failure would hand "the answer" to the application twice more.
    with pytest.raises(AlertReceived) as again:
        client.receive_data(b"\x17")
    assert again.value.events == ()
    with pytest.raises(AlertReceived) as on_send:
        client.send_application_data(b"x")
    assert on_send.value.events == ()


# --- start_handshake is outside the error boundary --------------------------------------


def test_start_handshake_after_a_failure_raises_the_latched_error() -> None:
    client, _server = make_pair()
    with pytest.raises(TLSError) as first:
        client.receive_data(b"\x16\x03\x03\x00\x04\x02\x00\x00\x00")  # a ServerHello-ish record
    alert = client.data_to_send()
    assert [t for t, _ in records(alert)] == [ContentType.ALERT]
    with pytest.raises(TLSError) as again:
        client.start_handshake()
    assert again.value is first.value
    assert client.data_to_send() == b""  # nothing after the one alert


def test_start_handshake_after_close_sends_nothing_more() -> None:
    client, _server = make_pair()
    client.close()
    close_notify = client.data_to_send()
    assert [t for t, _ in records(close_notify)] == [ContentType.ALERT]
    # docs/engine.rst, close(): "Nothing can be sent afterwards".
    with pytest.raises(UsageError):
        client.start_handshake()
    assert client.data_to_send() == b""


class _FailingRandom:
    def random_bytes(self, n: int) -> bytes:
        raise OSError("the entropy source failed")


def test_failure_in_start_handshake_is_a_latched_tls_error() -> None:
    client, _server = make_pair(client_kw={"random": _FailingRandom()})
    # docs/engine.rst: "The engine raises only TLSError subclasses ... a bug of
    # ours surfaces as InternalError"; receive_data does exactly that for the
    # same failure on the server side.
    with pytest.raises(TLSError) as caught:
        client.start_handshake()
    assert client.error is caught.value


# --- close() during the handshake -------------------------------------------------------


def test_client_close_during_the_handshake_sends_nothing_after_close_notify() -> None:
    client, server = make_pair(client_kw={"middlebox_compat": False})
    client.start_handshake()
    pump(client, server)
    client.close()
    assert len(records(client.data_to_send())) == 1  # the close_notify
    client.receive_data(server.data_to_send())
    # docs/engine.rst, close(): "Nothing can be sent afterwards."
    assert client.data_to_send() == b""


def test_server_close_before_the_client_hello_sends_nothing_after_close_notify() -> None:
    client, server = make_pair()
    server.close()
    assert len(records(server.data_to_send())) == 1  # the close_notify
    client.start_handshake()
    pump(client, server)
    assert server.data_to_send() == b""


def test_server_close_before_the_clients_finished_sends_no_tickets() -> None:
    client_pki = client_auth_only_pki(critical=False)
    client, server = make_pair(
        client_kw={"certificate": client_pki.certified},
        server_kw={"client_auth": "required", "client_trust": client_pki.trust},
    )
    client.start_handshake()
    pump(client, server)
    pump(server, client)
    server.close()
    assert len(records(server.data_to_send())) == 1  # the close_notify
    pump(client, server)
    assert server.data_to_send() == b""


# --- take_unprocessed --------------------------------------------------------------------


def test_take_unprocessed_before_close_notify_does_not_corrupt_the_stream() -> None:
    client, server = make_pair()
    handshake(client, server)
    server.send_application_data(b"hello")
    wire = server.data_to_send()
    assert client.receive_data(wire[:10]) == []
    # Documented for "after the peer's close_notify". Before it, misuse must
    # leave the connection usable (a UsageError, or nothing taken).
    with contextlib.suppress(UsageError):
        client.take_unprocessed()
    assert client.receive_data(wire[10:]) == [ApplicationData(b"hello")]


def test_take_unprocessed_after_close_notify_returns_what_followed() -> None:
    client, server = make_pair()
    handshake(client, server)
    server.send_application_data(b"last")
    server.close()
    wire = server.data_to_send()
    assert client.receive_data(wire + b"\x01\x02") == [ApplicationData(b"last"), CloseNotify()]
    assert client.take_unprocessed() == b"\x01\x02"


# --- input types -----------------------------------------------------------------------


def test_send_application_data_with_a_memoryview_does_not_kill_the_connection() -> None:
    client, server = make_pair()
    handshake(client, server)
    # Annotated as bytes, but receive_data takes any bytes-like (RecordReader.feed
    # copies it) and a view of one record or more already works here. Accepting
    # it, or refusing it as misuse, must both leave the connection usable.
    with contextlib.suppress(TypeError, UsageError):
        client.send_application_data(memoryview(b"from a view"))  # type: ignore[arg-type]
    assert client.error is None
    client.send_application_data(b"after")
    assert _data(pump(client, server)).endswith(b"after")


def test_receive_data_copes_with_a_reused_mutable_buffer() -> None:
    # An asyncio or socket driver reads into one bytearray again and again.
    client, server = make_pair()
    handshake(client, server)
    server.send_application_data(b"first record")
    server.send_application_data(b"second record")
    wire = server.data_to_send()
    buf = bytearray(len(wire))
    buf[:] = wire
    # RecordReader.feed copies non-bytes input for exactly this reason.
    events = client.receive_data(memoryview(buf)[:30])  # type: ignore[arg-type]
    buf[:] = bytes(len(buf))  # the driver reuses its buffer
    rest = bytearray(wire[30:])
    events += client.receive_data(rest)  # type: ignore[arg-type]
    rest[:] = bytes(len(rest))
    assert _data(events) == b"first recordsecond record"
    assert all(type(e.data) is bytes for e in events if isinstance(e, ApplicationData))


def test_several_megabytes_in_one_call_arrive_in_order_in_full_records() -> None:
    client, server = make_pair()
    handshake(client, server)
    big = bytes(range(256)) * (3 * 4096)  # 3 MiB
    client.send_application_data(big)
    wire = client.data_to_send()
    assert {length for _, length in records(wire)} <= {2**14 + 1 + 16}
    events = server.receive_data(wire)
    assert len(events) == len(big) // 2**14
    assert _data(events) == big


# --- callbacks that call back into the connection ----------------------------------------


def test_usage_error_from_a_callback_mid_handshake_latches() -> None:
    holder: dict[str, ClientConnection] = {}

    def key_log(label: str, client_random: bytes, secret: bytes) -> None:
        holder["client"].export_keying_material(b"debug", b"", 16)  # too early: UsageError

    client, server = make_pair(client_kw={"key_log": key_log})
    holder["client"] = client
    client.start_handshake()
    pump(client, server)
    with pytest.raises(TLSError) as caught:
        client.receive_data(server.data_to_send())
    # Handshake keys are installed but the state is still ExpectServerHello:
    # the connection is harmed, so the error must latch (not be "harmless").
    assert client.error is caught.value


def test_start_handshake_twice_is_a_usage_error_that_does_not_harm() -> None:
    client, server = make_pair()
    client.start_handshake()
    hello = client.data_to_send()
    with pytest.raises(UsageError):
        client.start_handshake()
    assert client.error is None
    assert client.data_to_send() == b""
    server.receive_data(hello)
    client.receive_data(server.data_to_send())
    assert client.handshake_complete


def test_eof_twice_before_the_handshake_raises_the_same_error() -> None:
    _client, server = make_pair()
    with pytest.raises(TLSError) as first:
        server.receive_data(b"")
    with pytest.raises(TLSError) as again:
        server.receive_data(b"")
    assert again.value is first.value
    assert server.data_to_send() == b""  # TruncationError sends no alert
