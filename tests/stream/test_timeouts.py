"""Handshake deadlines: fixed at the start, combined with the caller's, never reset.

Every async test runs on trio's MockClock with ``autojump_threshold=0``: when
every task is blocked, the clock jumps to the next deadline, so waiting 40 s
costs nothing and times are exact. (pytest-trio only picks up a clock passed
as a test argument, hence the ``autojump_clock`` parameter everywhere.)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from triotls import HandshakeTimeout, TLSError
from triotls.config import ClientConfig, ServerConfig
from triotls.stream import TLSStream

from .helpers import assert_broken, assert_data_flows, tls_pair


def _with_timeout(config: ClientConfig, seconds: float | None) -> ClientConfig:
    return dataclasses.replace(config, handshake_timeout=seconds)


def _silent_pair(
    client_config: ClientConfig, server_config: ServerConfig
) -> tuple[TLSStream, TLSStream]:
    """A client and a server whose handshakes nobody drives yet."""
    return tls_pair(trio.testing.memory_stream_pair(), client_config, server_config)


async def test_handshake_timeout_is_a_tls_error_too_slow_error_and_broken_resource_error(
    client_config: ClientConfig, server_config: ServerConfig, autojump_clock: MockClock
) -> None:
    client, _server = _silent_pair(_with_timeout(client_config, 5), server_config)
    start = trio.current_time()
    with pytest.raises(HandshakeTimeout, match=r"within 5 seconds.*handshake_timeout") as info:
        await client.do_handshake()
    assert trio.current_time() - start == pytest.approx(5)
    assert isinstance(info.value, TLSError)
    assert isinstance(info.value, trio.TooSlowError)
    assert isinstance(info.value, trio.BrokenResourceError)


async def test_default_handshake_timeout_is_40_seconds(
    client_config: ClientConfig, server_config: ServerConfig, autojump_clock: MockClock
) -> None:
    assert client_config.handshake_timeout == 40.0
    client, _server = _silent_pair(client_config, server_config)
    start = trio.current_time()
    with pytest.raises(HandshakeTimeout):
        await client.do_handshake()
    assert trio.current_time() - start == pytest.approx(40)


async def test_stream_is_broken_after_handshake_timeout(
    client_config: ClientConfig, server_config: ServerConfig, autojump_clock: MockClock
) -> None:
    client, server = _silent_pair(_with_timeout(client_config, 5), server_config)
    with pytest.raises(HandshakeTimeout):
        await client.do_handshake()
    await assert_broken(client)
    await server.aclose()


async def test_server_handshake_times_out_on_a_silent_client(
    client_config: ClientConfig, server_config: ServerConfig, autojump_clock: MockClock
) -> None:
    config = dataclasses.replace(server_config, handshake_timeout=3)
    _client, server = _silent_pair(client_config, config)
    start = trio.current_time()
    with pytest.raises(HandshakeTimeout):
        await server.receive_some()
    assert trio.current_time() - start == pytest.approx(3)
    await assert_broken(server)


@pytest.mark.parametrize("operation", ["send_all", "receive_some"])
async def test_implicit_handshake_in_stream_calls_times_out_too(
    operation: str,
    client_config: ClientConfig,
    server_config: ServerConfig,
    autojump_clock: MockClock,
) -> None:
    client, _server = _silent_pair(_with_timeout(client_config, 5), server_config)
    with pytest.raises(HandshakeTimeout):
        if operation == "send_all":
            await client.send_all(b"data")
        else:
            await client.receive_some()


async def test_every_task_waiting_for_the_handshake_sees_the_timeout(
    client_config: ClientConfig, server_config: ServerConfig, autojump_clock: MockClock
) -> None:
    client, _server = _silent_pair(_with_timeout(client_config, 5), server_config)
    errors: list[BaseException] = []

    async def record(fn: Callable[[], Awaitable[object]]) -> None:
        try:
            await fn()
        except trio.BrokenResourceError as exc:
            errors.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(record, lambda: client.send_all(b"data"))
        nursery.start_soon(record, client.receive_some)
    assert len(errors) == 2
    assert all(isinstance(exc, HandshakeTimeout) for exc in errors)


async def test_resuming_after_a_cancellation_keeps_the_original_deadline(
    client_config: ClientConfig, server_config: ServerConfig, autojump_clock: MockClock
) -> None:
    client, _server = _silent_pair(_with_timeout(client_config, 10), server_config)
    start = trio.current_time()
    with trio.move_on_after(6) as scope:
        await client.do_handshake()
    assert scope.cancelled_caught
    assert client.engine.error is None  # clean: waiting for the server, nothing broken
    with pytest.raises(HandshakeTimeout):
        await client.do_handshake()
    # The deadline is start + 10, not (start + 6) + 10.
    assert trio.current_time() - start == pytest.approx(10)


async def test_resuming_after_the_deadline_passed_times_out_at_once(
    client_config: ClientConfig, server_config: ServerConfig, autojump_clock: MockClock
) -> None:
    client, _server = _silent_pair(_with_timeout(client_config, 10), server_config)
    with trio.move_on_after(3):
        await client.do_handshake()
    await trio.sleep(20)
    resumed_at = trio.current_time()
    with pytest.raises(HandshakeTimeout):
        await client.do_handshake()
    assert trio.current_time() == resumed_at


async def test_callers_earlier_deadline_wins_and_leaves_the_stream_resumable(
    client_config: ClientConfig, server_config: ServerConfig, autojump_clock: MockClock
) -> None:
    client, server = _silent_pair(_with_timeout(client_config, 10), server_config)
    start = trio.current_time()
    with pytest.raises(trio.TooSlowError) as info:
        with trio.fail_after(3):
            await client.do_handshake()
    # The caller's own TooSlowError, not a HandshakeTimeout: nothing is broken.
    assert not isinstance(info.value, HandshakeTimeout)
    assert trio.current_time() - start == pytest.approx(3)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.do_handshake)
        await client.do_handshake()
    assert client.negotiated is not None
    await assert_data_flows(client, server)


async def test_callers_later_deadline_loses_to_the_handshake_timeout(
    client_config: ClientConfig, server_config: ServerConfig, autojump_clock: MockClock
) -> None:
    client, _server = _silent_pair(_with_timeout(client_config, 10), server_config)
    start = trio.current_time()
    with trio.fail_after(100), pytest.raises(HandshakeTimeout):
        await client.do_handshake()
    assert trio.current_time() - start == pytest.approx(10)


async def test_caller_cancellation_is_plain_cancelled(
    client_config: ClientConfig, server_config: ServerConfig, autojump_clock: MockClock
) -> None:
    client, _server = _silent_pair(_with_timeout(client_config, 10), server_config)
    with trio.CancelScope() as scope:
        scope.deadline = trio.current_time() + 2
        await client.do_handshake()
    assert scope.cancelled_caught
    assert client.engine.error is None


async def test_handshake_timeout_none_disables_the_limit(
    client_config: ClientConfig, server_config: ServerConfig, autojump_clock: MockClock
) -> None:
    client, server = _silent_pair(_with_timeout(client_config, None), server_config)
    start = trio.current_time()
    with trio.move_on_after(100_000) as scope:
        await client.do_handshake()
    # Only the caller's deadline ended the wait; the stream is intact.
    assert scope.cancelled_caught
    assert trio.current_time() - start == pytest.approx(100_000)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.do_handshake)
        await client.do_handshake()
    await assert_data_flows(client, server)


async def test_deadline_covers_the_whole_handshake_not_each_read(
    client_config: ClientConfig, server_config: ServerConfig, autojump_clock: MockClock
) -> None:
    # A slow-loris server: its bytes arrive one per second, so every single
    # read is quick, but the handshake as a whole is not.
    client_side, relay_client_side = trio.testing.memory_stream_pair()
    relay_server_side, server_side = trio.testing.memory_stream_pair()
    client = TLSStream(client_side, _with_timeout(client_config, 5), server_hostname="localhost")
    server = TLSStream(server_side, server_config, server_side=True)

    async def relay(
        source: trio.abc.ReceiveStream, sink: trio.abc.SendStream, delay: float
    ) -> None:
        while data := await source.receive_some():
            for i in range(len(data)):
                await trio.sleep(delay)
                await sink.send_all(data[i : i + 1])

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(relay, relay_client_side, relay_server_side, 0)
        nursery.start_soon(relay, relay_server_side, relay_client_side, 1)
        nursery.start_soon(server.do_handshake)
        with pytest.raises(HandshakeTimeout):
            await client.do_handshake()
        nursery.cancel_scope.cancel()
    assert trio.current_time() - start == pytest.approx(5)


async def test_deadline_no_longer_applies_once_the_handshake_completed(
    client_config: ClientConfig, server_config: ServerConfig, autojump_clock: MockClock
) -> None:
    client, server = _silent_pair(_with_timeout(client_config, 5), server_config)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.do_handshake)
        await client.do_handshake()
    assert client.handshake_seconds is not None
    with trio.move_on_after(60) as scope:
        await client.receive_some()  # waits well past the handshake deadline
    assert scope.cancelled_caught
    await assert_data_flows(client, server)


async def test_handshake_seconds_is_measured_on_the_trio_clock(
    client_config: ClientConfig, server_config: ServerConfig, autojump_clock: MockClock
) -> None:
    client, server = _silent_pair(client_config, server_config)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.do_handshake)
        await trio.sleep(7)  # the server starts late
        await server.do_handshake()
    assert client.handshake_seconds == pytest.approx(7)
    assert server.handshake_seconds == pytest.approx(0)


@pytest.mark.parametrize("seconds", [0, 0.0, -1, -0.5, math.nan])
@pytest.mark.parametrize("config_class", [ClientConfig, ServerConfig])
def test_non_positive_handshake_timeout_is_rejected(
    seconds: float,
    config_class: type[ClientConfig] | type[ServerConfig],
    server_config: ServerConfig,
) -> None:
    with pytest.raises(ValueError, match="positive number of seconds or None for no limit") as info:
        if config_class is ClientConfig:
            ClientConfig(handshake_timeout=seconds)
        else:
            ServerConfig(certificates=server_config.certificates, handshake_timeout=seconds)
    # GnuTLS users expect 0 to mean "no limit"; the message says it does not.
    assert "0 does not mean 'no limit'" in str(info.value)
