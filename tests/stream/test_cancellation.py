"""Cancellation at every checkpoint: the stream is resumable, or (only after an
interrupted transport write) broken for good. Never a hang, never another error.

Technique: the operation under test runs in the test's own task, inside a
cancel scope. A trio instrument counts that task's steps (each resumption
after a checkpoint) and cancels the scope on step ``k``; ``k = 0`` cancels
before the call. The cancellation then lands at the next checkpoint, whatever
it is: a lock, a transport read or write, the fast path of a method. ``k``
grows until a run completes without being cancelled, so every checkpoint of
the operation is hit once. The peer runs in a background task and must cope
with its partner being cancelled and resumed. The transport of the side under
test records whether a ``send_all`` was cancelled (a write interrupted): only
then may the stream break.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from typing import Final, final

import pytest
import trio
import trio.testing
from typing_extensions import override

from triotls.config import ClientConfig, ServerConfig
from triotls.engine.enums import HandshakeType
from triotls.engine.messages import NewSessionTicket, frame
from triotls.stream import TLSStream

from .helpers import (
    TRANSPORTS,
    RecordingStream,
    TransportMaker,
    assert_broken,
    assert_data_flows,
    handshake_both,
    receive_exactly,
)

#: No single operation here takes more steps; reaching it means a loop.
MAX_STEPS: Final = 500
#: Bound of each attempt (they take milliseconds).
ATTEMPT_TIMEOUT: Final = 10.0


class Outcome(enum.Enum):
    COMPLETED = "completed without being cancelled"
    RESUMED = "cancelled, then resumed and completed"
    BROKEN = "cancelled during a transport write; broken for good"


@final
class CancelAtStep(trio.abc.Instrument):
    """Cancel ``scope`` when ``task`` is about to take its ``k``-th step."""

    def __init__(self, task: trio.lowlevel.Task, k: int, scope: trio.CancelScope) -> None:
        self._task = task
        self._k = k
        self._scope = scope
        self.steps = 0
        self.fired = False

    @override
    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self._task:
            self.steps += 1
            if self.steps == self._k:
                self._scope.cancel()
                self.fired = True


async def run_cancelled_at(k: int, operation: Callable[[], Awaitable[object]]) -> bool:
    """Run ``operation`` in this task, cancelled at its ``k``-th step.

    Returns whether the cancellation interrupted it (False: it completed).
    """
    with trio.CancelScope() as scope:
        instrument = CancelAtStep(trio.lowlevel.current_task(), k, scope)
        trio.lowlevel.add_instrument(instrument)
        try:
            if k == 0:
                scope.cancel()
            await operation()
        finally:
            trio.lowlevel.remove_instrument(instrument)
    return scope.cancelled_caught


async def for_every_checkpoint(attempt: Callable[[int], Awaitable[Outcome]]) -> list[Outcome]:
    """Call ``attempt(k)`` for k = 0, 1, ... until one completes uncancelled."""
    outcomes: list[Outcome] = []
    for k in range(MAX_STEPS):
        with trio.fail_after(ATTEMPT_TIMEOUT):
            outcome = await attempt(k)
        outcomes.append(outcome)
        if outcome is Outcome.COMPLETED:
            return outcomes
    raise AssertionError(f"still cancelled after {MAX_STEPS} steps: a loop?")


class Pair:
    """A client and a server over recording transports, one of them under test."""

    def __init__(
        self,
        make_transports: TransportMaker,
        client_config: ClientConfig,
        server_config: ServerConfig,
        side: str,
    ) -> None:
        client_inner, server_inner = make_transports()
        self.client_transport = RecordingStream(client_inner)
        self.server_transport = RecordingStream(server_inner)
        self.client = TLSStream(self.client_transport, client_config, server_hostname="localhost")
        self.server = TLSStream(self.server_transport, server_config, server_side=True)
        if side == "client":
            self.tested, self.peer = self.client, self.server
            self.tested_transport = self.client_transport
        else:
            self.tested, self.peer = self.server, self.client
            self.tested_transport = self.server_transport

    async def aclose(self) -> None:
        # Forcefully: over lockstep nobody reads the close_notify, and a
        # polite aclose would wait out its bound.
        await trio.aclose_forcefully(self.client)
        await trio.aclose_forcefully(self.server)


async def peer_task(
    operation: Callable[[], Awaitable[object]],
    failures: list[BaseException],
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the peer's side; record (not raise) a broken stream."""
    task_status.started()
    try:
        await operation()
    except trio.BrokenResourceError as exc:
        failures.append(exc)


# --- the handshake ------------------------------------------------------------


@pytest.mark.parametrize("side", ["client", "server"])
@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
async def test_handshake_cancelled_at_each_checkpoint_resumes_or_breaks_cleanly(
    side: str, transport: str, client_config: ClientConfig, server_config: ServerConfig
) -> None:
    async def attempt(k: int) -> Outcome:
        pair = Pair(TRANSPORTS[transport], client_config, server_config, side)
        peer_failures: list[BaseException] = []
        async with trio.open_nursery() as nursery:
            await nursery.start(peer_task, pair.peer.do_handshake, peer_failures)
            cancelled = await run_cancelled_at(k, pair.tested.do_handshake)
            if cancelled and pair.tested_transport.write_interrupted:
                await assert_broken(pair.tested)
                nursery.cancel_scope.cancel()
                outcome = Outcome.BROKEN
            else:
                if cancelled:
                    # Resume under the same deadline; it must complete.
                    await pair.tested.do_handshake()
                    outcome = Outcome.RESUMED
                else:
                    outcome = Outcome.COMPLETED
                assert pair.tested.negotiated is not None
                assert pair.tested.handshake_seconds is not None
        if outcome is not Outcome.BROKEN:
            assert peer_failures == []
            await assert_data_flows(pair.tested, pair.peer)
        await pair.aclose()
        return outcome

    outcomes = await for_every_checkpoint(attempt)
    # Several checkpoints were hit: waits for the peer (resumable) and
    # transport writes (the flights: broken) among them.
    assert len(outcomes) > 5
    assert {Outcome.RESUMED, Outcome.BROKEN} <= set(outcomes)


# --- after the handshake: receive_some with a KeyUpdate in flight, send_all ----


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
async def test_receive_some_cancelled_while_a_key_update_arrives_resumes_or_breaks(
    transport: str, client_config: ClientConfig, server_config: ServerConfig
) -> None:
    message = b"sent after the KeyUpdate"

    async def attempt(k: int) -> Outcome:
        pair = Pair(TRANSPORTS[transport], client_config, server_config, "client")
        await handshake_both(pair.client, pair.server)
        peer_failures: list[BaseException] = []
        received = bytearray()
        peer_received = bytearray()

        async def update_then_send() -> None:
            # request_peer=True: the client owes a KeyUpdate of its own before
            # its next data (RFC 8446 §4.6.3).
            await pair.peer.key_update()
            await pair.peer.send_all(message)

        async def peer_receive() -> None:
            # Reads what the client sends next: its answer, then b"ping".
            peer_received.extend(await receive_exactly(pair.peer, len(b"ping")))

        async def receive_once() -> None:
            received.extend(await pair.tested.receive_some())

        async with trio.open_nursery() as nursery:
            await nursery.start(peer_task, update_then_send, peer_failures)
            await nursery.start(peer_task, peer_receive, peer_failures)
            cancelled = await run_cancelled_at(k, receive_once)
            if cancelled and pair.tested_transport.write_interrupted:
                await assert_broken(pair.tested)
                nursery.cancel_scope.cancel()
            else:
                received.extend(await receive_exactly(pair.tested, len(message) - len(received)))
                # Our answer went out before anything sealed with our new
                # key, or the peer could not read this.
                await pair.tested.send_all(b"ping")
        if nursery.cancel_scope.cancel_called:
            await pair.aclose()
            return Outcome.BROKEN
        assert peer_failures == []
        assert bytes(received) == message
        assert bytes(peer_received) == b"ping"
        await assert_data_flows(pair.tested, pair.peer)
        await pair.aclose()
        return Outcome.RESUMED if cancelled else Outcome.COMPLETED

    outcomes = await for_every_checkpoint(attempt)
    assert len(outcomes) > 3
    assert Outcome.RESUMED in outcomes


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
async def test_receive_some_cancelled_while_a_session_ticket_arrives_always_resumes(
    transport: str, client_config: ClientConfig, server_config: ServerConfig
) -> None:
    # Our server issues no tickets yet, so the test queues one in its engine
    # (standing in for a server that does). A ticket needs no answer: no
    # checkpoint of the client's receive_some is a write, so none may break.
    message = b"sent after the ticket"
    ticket = NewSessionTicket(
        ticket_lifetime=3600, ticket_age_add=7, ticket_nonce=b"\x00", ticket=b"opaque ticket"
    )

    async def attempt(k: int) -> Outcome:
        pair = Pair(TRANSPORTS[transport], client_config, server_config, "client")
        await handshake_both(pair.client, pair.server)
        received = bytearray()

        async def ticket_then_send() -> None:
            pair.peer.engine.queue_handshake(
                frame(HandshakeType.NEW_SESSION_TICKET, ticket.encode())
            )
            await pair.peer.send_all(message)  # flushes the ticket first

        async def receive_once() -> None:
            received.extend(await pair.tested.receive_some())

        peer_failures: list[BaseException] = []
        async with trio.open_nursery() as nursery:
            await nursery.start(peer_task, ticket_then_send, peer_failures)
            cancelled = await run_cancelled_at(k, receive_once)
            assert not pair.tested_transport.write_interrupted
            received.extend(await receive_exactly(pair.tested, len(message) - len(received)))
        assert peer_failures == []
        assert bytes(received) == message
        await assert_data_flows(pair.tested, pair.peer)
        await pair.aclose()
        return Outcome.RESUMED if cancelled else Outcome.COMPLETED

    outcomes = await for_every_checkpoint(attempt)
    assert len(outcomes) > 3
    assert Outcome.BROKEN not in outcomes


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
async def test_send_all_cancelled_at_each_checkpoint_loses_only_a_suffix_or_breaks(
    transport: str, client_config: ClientConfig, server_config: ServerConfig
) -> None:
    # Two 256 KiB chunks and a bit: the chunk loop and several transport writes.
    payload = bytes(range(256)) * 2100
    marker = b"<end>"

    async def attempt(k: int) -> Outcome:
        pair = Pair(TRANSPORTS[transport], client_config, server_config, "client")
        await handshake_both(pair.client, pair.server)
        received = bytearray()

        async def read_until_eof() -> None:
            while chunk := await pair.peer.receive_some():
                received.extend(chunk)

        peer_failures: list[BaseException] = []
        async with trio.open_nursery() as nursery:
            await nursery.start(peer_task, read_until_eof, peer_failures)
            cancelled = await run_cancelled_at(k, lambda: pair.tested.send_all(payload))
            if cancelled and pair.tested_transport.write_interrupted:
                await assert_broken(pair.tested)
                nursery.cancel_scope.cancel()
            else:
                await pair.tested.send_all(marker)
                await pair.tested.send_eof()
        if nursery.cancel_scope.cancel_called:
            await pair.aclose()
            return Outcome.BROKEN
        assert peer_failures == []
        # A cancelled send_all may have sent a prefix (whole chunks: each is
        # sealed before it is flushed); what arrived is that prefix (the whole
        # payload if not cancelled), then the marker.
        assert received.endswith(marker)
        sent = bytes(received[: -len(marker)])
        assert payload.startswith(sent)
        if not cancelled:
            assert sent == payload
        # Half-closed our way; the other direction still works.
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pair.peer.send_all, b"reply")
            assert await receive_exactly(pair.tested, 5) == b"reply"
        await pair.aclose()
        return Outcome.RESUMED if cancelled else Outcome.COMPLETED

    outcomes = await for_every_checkpoint(attempt)
    assert len(outcomes) > 3
    assert Outcome.RESUMED in outcomes
