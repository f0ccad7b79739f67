"""TLSStream: the TLS engine driven over a trio stream, under cancel scopes.

Theory of operation. The engine is synchronous; this module only moves bytes.
Each step feeds the engine, flushes what it queued, then awaits exactly one
transport operation. Three inner locks keep the transport sane:

* ``_send_lock`` (FIFO) serialises transport writes. Outgoing bytes stay in the
  engine until the lock is held, so a cancellation while waiting for it loses
  nothing; only a cancellation *during* ``transport.send_all`` (a partial
  write) breaks the stream. The holder writes everything queued before it
  lets go, including bytes the receive path queued meanwhile (the rest of a
  handshake flight, say; the engine defers KeyUpdate answers to our next
  application data, so after the handshake the receive path queues only a
  fatal alert), so the receive path never waits for the lock: it writes its
  bytes itself only when the lock is free. Waiting would deadlock a
  full-duplex connection: each side's reader stuck behind its own writer,
  each writer waiting for the other side's reader.
* ``_receive_lock`` serialises transport reads. A cancelled
  ``transport.receive_some`` consumed nothing, so the stream stays usable.
* ``_handshake_lock`` lets one task drive the handshake while the others wait.

All three are ``_FifoLock`` objects: FIFO, without trio's owner
bookkeeping, and free of a scheduler trip when uncontended after the
handshake.

Handshake deadlines are trio deadlines fixed when the handshake starts
(``config.handshake_timeout``); resuming a cancelled handshake keeps the same
deadline. Errors from the engine are re-classed so that they also inherit
``trio.BrokenResourceError``: code written for any trio stream catches them.
Before a fatal error is raised, its alert is flushed to the peer (shielded,
with a short bound), so the peer learns why instead of hanging.
"""

from __future__ import annotations

import contextlib
import enum
import math
import os
import warnings
from collections.abc import Callable, Sequence
from typing import Final, TypeVar, final

import trio
from typing_extensions import override

from .config import ClientConfig, KeyLog, KeyLogFile, ServerConfig
from .engine import events
from .engine.client import ClientConnection
from .engine.connection import Connection
from .engine.enums import CipherSuite, NamedGroup
from .engine.server import ServerConnection
from .engine.state import EarlyDataStatus, HandshakeKind, Negotiated
from .engine.status import VerificationResult
from .errors import TLSError, TruncationError, UsageError

__all__ = ["CloseReason", "HandshakeTimeout", "TLSStream"]

_E = TypeVar("_E", bound=TLSError)

#: How long ``aclose`` and fatal-alert flushes may spend writing to the peer.
CLOSE_TIMEOUT: Final = 2.0
#: Bytes asked of the transport per read: up to 16 full records at a time.
#: Each read costs a trip through the scheduler and the engine; in bulk
#: transfers 256 KiB reads were 10% faster than 64 KiB (docs/performance.rst).
_RECEIVE_SIZE: Final = 262_144
#: Application data that wait_client_certificate() keeps for receive_some
#: before it stops reading and asks the caller to read it.
_MAX_BUFFERED_WHILE_WAITING: Final = 2**20
#: Application data is encrypted and flushed in pieces of this size, so that a
#: huge ``send_all`` never doubles its memory in one go.
_SEND_CHUNK: Final = 262_144


class HandshakeTimeout(TLSError, trio.TooSlowError, trio.BrokenResourceError):
    """The handshake did not finish within ``config.handshake_timeout`` seconds.

    It is also a :class:`trio.TooSlowError` and a
    :class:`trio.BrokenResourceError`; the stream is broken afterwards.
    """


class CloseReason(enum.Enum):
    """How the peer ended its side of the stream."""

    CLOSE_NOTIFY = "close_notify"
    """The peer sent close_notify, so everything it sent has arrived."""
    RAGGED_EOF = "eof without close_notify"
    """The transport ended without close_notify (allowed by https_compatible)."""


_BROKEN_CLASSES: dict[type[TLSError], type[TLSError]] = {}


def _as_broken(exc: _E) -> _E:
    """Re-class ``exc`` so that it is also a ``trio.BrokenResourceError``."""
    cls: type[TLSError] = type(exc)
    if issubclass(cls, trio.BrokenResourceError):
        return exc
    sub = _BROKEN_CLASSES.get(cls)
    if sub is None:
        sub = type(cls.__name__, (cls, trio.BrokenResourceError), {"__module__": cls.__module__})
        sub.__qualname__ = cls.__qualname__
        sub.__doc__ = cls.__doc__
        _BROKEN_CLASSES[cls] = sub
    # Same layout (both are plain Exception subclasses), so the swap is safe;
    # the instance keeps its message, attributes and traceback.
    # (mypy cannot see that ``sub`` is a subclass of type(exc); it is.)
    exc.__class__ = sub  # type: ignore[assignment]
    return exc


@final
class _FifoLock:
    """One of a stream's inner locks: FIFO like trio.StrictFIFOLock, and lean.

    ``release`` hands the lock straight to the first waiter, so nobody
    barges ahead. Unlike trio's locks it tracks no owner (every holder here
    releases in a ``finally``; trio's owner bookkeeping cost about 1.5 µs a
    round trip) and creates its ParkingLot only when a task has to wait,
    which keeps idle connections smaller.
    """

    __slots__ = ("_held", "_waiters")

    def __init__(self) -> None:
        self._held = False
        self._waiters: trio.lowlevel.ParkingLot | None = None

    def locked(self) -> bool:
        """Whether a task holds the lock."""
        return self._held

    # As trio's own locks: a KeyboardInterrupt cannot land between the
    # checks and the state change (the decorator marks the code, at no cost
    # per call).
    @trio.lowlevel.enable_ki_protection
    async def acquire(self, *, fast: bool = False) -> None:
        """Take the lock; with ``fast``, through the scheduler only if it is held.

        Without ``fast`` this is a full checkpoint, as ``trio.Lock.acquire``.
        A free lock's yield (about 4 µs, more than sealing a 16 KiB record)
        buys nothing: every holder of the send and receive locks awaits a
        transport operation next, which is the checkpoint (handshakes too:
        about +5% full and +8% resumed handshakes a second). A pending
        cancellation is still raised here, before any bytes leave the
        engine.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if not self._held and not self._waiters:
            self._held = True
            if not fast:
                await trio.lowlevel.cancel_shielded_checkpoint()
            return
        if self._waiters is None:
            self._waiters = trio.lowlevel.ParkingLot()
        # Cancellation while parked leaves the queue; otherwise release()
        # wakes us already holding the lock.
        await self._waiters.park()

    @trio.lowlevel.enable_ki_protection
    def try_acquire(self) -> bool:
        """Take the lock if it is free, without a checkpoint; whether it was taken."""
        if self._held or self._waiters:
            return False
        self._held = True
        return True

    @trio.lowlevel.enable_ki_protection
    def release(self) -> None:
        """Let go of the lock, handing it to the longest waiting task if any."""
        waiters = self._waiters
        if waiters:
            waiters.unpark()  # still held: it passes to the first waiter
        else:
            self._held = False

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()


def _take(chunks: list[bytes | bytearray], max_bytes: int) -> bytes:
    """Remove and return up to ``max_bytes`` from the front of ``chunks`` (not empty)."""
    taken: list[bytes | bytearray] = []
    room = max_bytes
    while chunks and room:
        first = chunks[0]
        if len(first) > room:
            taken.append(first[:room])
            if isinstance(first, bytes):
                # The rest becomes a bytearray, whose front is cheap to cut
                # again: reading a record piecewise copies it only once.
                chunks[0] = bytearray(memoryview(first)[room:])
            else:
                del first[:room]
            break
        del chunks[0]
        taken.append(first)
        room -= len(first)
    return bytes(taken[0]) if len(taken) == 1 else b"".join(taken)


def _key_log(configured: KeyLog | None) -> KeyLog | None:
    """The configured key log, plus ``SSLKEYLOGFILE`` like OpenSSL and browsers."""
    path = os.environ.get("SSLKEYLOGFILE")
    if not path:
        return configured
    try:
        file = KeyLogFile(path)
    except OSError as exc:
        # A debugging aid set in the environment must not break connections
        # (OpenSSL ignores a key log file it cannot open, too).
        warnings.warn(f"SSLKEYLOGFILE ignored: {exc}", RuntimeWarning, stacklevel=3)
        return configured

    def from_env(label: str, client_random: bytes, secret: bytes) -> None:
        try:
            file(label, client_random, secret)
        except OSError as exc:
            warnings.warn(f"SSLKEYLOGFILE not written: {exc}", RuntimeWarning, stacklevel=2)

    if configured is None:
        return from_env

    def both(label: str, client_random: bytes, secret: bytes) -> None:
        configured(label, client_random, secret)
        from_env(label, client_random, secret)

    return both


class _ConflictDetector:
    """Raise BusyResourceError when two tasks use one side at once."""

    __slots__ = ("_held", "_msg")

    def __init__(self, msg: str) -> None:
        self._msg = msg
        self._held = False

    def __enter__(self) -> None:
        if self._held:
            raise trio.BusyResourceError(self._msg)
        self._held = True

    def __exit__(self, *exc: object) -> None:
        self._held = False


class _Closed(enum.Enum):
    OPEN = "open"
    BROKEN = "broken"
    CLOSED = "closed"


@final
class TLSStream(trio.abc.HalfCloseableStream):
    """A TLS 1.3 stream over another trio stream.

    Args:
        transport_stream: the stream that carries the TLS records.
        config: a :class:`ClientConfig` (client side) or :class:`ServerConfig`.
        server_hostname: the client's SNI name and the name its certificate
            check uses.
        server_side: True for the server end; ``config`` must then be a
            ServerConfig.
        session_key: where tickets for this server are kept in
            ``config.session_cache`` (with the ALPN list); defaults to
            ``server_hostname``. ``open_tls_over_tcp_stream`` uses
            ``"host:port"``.

    The handshake happens on the first ``send_all``/``receive_some``, or
    explicitly with :meth:`do_handshake`.
    """

    def __init__(
        self,
        transport_stream: trio.abc.Stream,
        config: ClientConfig | ServerConfig,
        *,
        server_hostname: str | None = None,
        server_side: bool = False,
        session_key: str | None = None,
    ) -> None:
        self.transport_stream = transport_stream
        self.config = config
        conn: Connection
        if server_side:
            if not isinstance(config, ServerConfig):
                raise TypeError("server_side=True needs a ServerConfig")
            conn = ServerConnection(config, key_log=_key_log(config.key_log))
        else:
            if not isinstance(config, ClientConfig):
                raise TypeError("a client TLSStream needs a ClientConfig")
            conn = ClientConnection(
                config, server_hostname=server_hostname, key_log=_key_log(config.key_log)
            )
        # One event per transport read instead of one per record: receive_some
        # hands out what it has, not records.
        conn.coalesce_application_data = True
        self._conn = conn
        self._server_side = server_side
        self._session_key: tuple[str | None, tuple[str, ...]] | None = None
        if isinstance(config, ClientConfig) and config.session_cache is not None:
            self._session_key = (session_key or server_hostname, config.alpn_protocols)
        self._send_lock = _FifoLock()
        self._receive_lock = _FifoLock()
        self._handshake_lock = _FifoLock()
        self._outer_send = _ConflictDetector("another task is already sending on this TLSStream")
        self._outer_receive = _ConflictDetector(
            "another task is already receiving on this TLSStream"
        )
        self._state = _Closed.OPEN
        self._error: BaseException | None = None
        self._started = False
        self._deadline: float | None = None
        # Decrypted data not returned yet, one chunk per record: a single
        # record is handed out as it is, several are joined once.
        self._incoming: list[bytes | bytearray] = []
        self._drain_before_error = False
        self._close_reason: CloseReason | None = None
        self._sent_eof = False
        self._handshake_started_at: float | None = None
        self._handshake_seconds: float | None = None
        self._client_certificate_result: events.ClientCertificateReceived | None = None
        # Post-handshake certificate requests sent, and answers received.
        self._certificate_requests = 0
        self._certificate_answers = 0
        # Server: 0-RTT data received, until receive_early_data() takes it
        # (bounded by ServerConfig.max_early_data_size).
        self._early_incoming = bytearray()
        self._early_data = b""  # client: 0-RTT data for the handshake to send

    # --- what was negotiated --------------------------------------------------

    @property
    def negotiated(self) -> Negotiated | None:
        """Everything the handshake settled on, or None before it completes."""
        return self._conn.negotiated

    @property
    def cipher_suite(self) -> CipherSuite | None:
        """The negotiated cipher suite."""
        n = self._conn.negotiated
        return None if n is None else n.cipher_suite

    @property
    def group(self) -> NamedGroup | None:
        """The negotiated key exchange group (None after a psk_ke resumption)."""
        n = self._conn.negotiated
        return None if n is None else n.group

    @property
    def version(self) -> str | None:
        """The protocol version, as ``"TLSv1.3"``."""
        return None if self._conn.negotiated is None else "TLSv1.3"

    @property
    def alpn_protocol(self) -> str | None:
        """The ALPN protocol, or None."""
        n = self._conn.negotiated
        return None if n is None else n.alpn_protocol

    @property
    def server_name(self) -> str | None:
        """The SNI name the client sent (server side) or used (client side)."""
        n = self._conn.negotiated
        return None if n is None else n.server_name

    @property
    def session_resumed(self) -> bool:
        """Whether the handshake resumed an earlier session."""
        n = self._conn.negotiated
        return n is not None and n.resumed

    @property
    def handshake_kind(self) -> HandshakeKind | None:
        """Full or resumed, with or without HelloRetryRequest."""
        n = self._conn.negotiated
        return None if n is None else n.handshake_kind

    @property
    def early_data_status(self) -> EarlyDataStatus | None:
        """Whether 0-RTT data was offered and accepted; None before the handshake completes.

        Client side, anything but ``ACCEPTED`` means the ``early_data``
        given to :meth:`do_handshake` did not reach the server: send it
        again with :meth:`send_all` if it still makes sense (it is never
        resent automatically; see :doc:`/resumption`).
        """
        n = self._conn.negotiated
        return None if n is None else n.early_data

    @property
    def verification(self) -> VerificationResult | None:
        """How the peer's certificate verified (status, reasons and chains).

        None before the handshake completes, and when the peer was not
        verified. With ``verify_mode="report"`` this is where a chain that
        did not verify shows up: check ``verification.status`` before
        trusting the peer.
        """
        n = self._conn.negotiated
        return None if n is None else n.verification

    @property
    def client_certificate_result(self) -> events.ClientCertificateReceived | None:
        """Server side: the client's latest answer to :meth:`request_client_certificate`.

        None until an answer has arrived through ``receive_some``.
        """
        return self._client_certificate_result

    @property
    def handshake_seconds(self) -> float | None:
        """How long the handshake took, in trio clock seconds."""
        return self._handshake_seconds

    @property
    def close_reason(self) -> CloseReason | None:
        """How the peer ended its side, once ``receive_some`` returned ``b""``."""
        return self._close_reason

    @property
    def engine(self) -> Connection:
        """The sans-IO connection underneath (for inspection; do not drive it)."""
        return self._conn

    # --- state checks ---------------------------------------------------------

    def _check_usable(self) -> None:
        if self._state is _Closed.CLOSED:
            raise trio.ClosedResourceError("this TLSStream was closed")
        if self._state is _Closed.BROKEN:
            assert self._error is not None  # set together with BROKEN
            if isinstance(self._error, trio.BrokenResourceError):
                # The same error each time (documented), but with a fresh
                # traceback: raising it as it is would pile every call's
                # frames (and their locals, the callers' buffers) onto it.
                raise self._error.with_traceback(None)
            raise trio.BrokenResourceError("this TLSStream is broken") from self._error

    def _break(self, exc: BaseException) -> None:
        if self._state is _Closed.OPEN:
            self._state = _Closed.BROKEN
            self._error = exc

    def _transport_failed(self, exc: BaseException) -> BaseException:
        """What to raise when the transport raised ``exc``."""
        if self._state is _Closed.CLOSED:
            return trio.ClosedResourceError("this TLSStream was closed")
        broken = trio.BrokenResourceError(f"the transport failed: {exc!r}")
        broken.__cause__ = exc
        self._break(broken)
        return broken

    # --- moving bytes ---------------------------------------------------------

    async def _flush(self) -> None:
        """Write whatever the engine queued; a cancelled write breaks the stream."""
        await self._send_lock.acquire(fast=True)
        await self._flush_locked()

    async def _flush_locked(self) -> None:
        """``_flush`` once the send lock is held; lets go of it."""
        try:
            # Loop: bytes queued while we write (by the receive path) are ours too.
            while data := self._conn.data_to_send():
                try:
                    await self.transport_stream.send_all(data)
                except trio.Cancelled as exc:
                    # Part of a record may be on the wire: nothing can follow it.
                    self._break(
                        trio.BrokenResourceError("a write to the transport was cancelled midway")
                    )
                    if self._error is not None:
                        self._error.__cause__ = exc
                    raise
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                    raise self._transport_failed(exc) from exc
        finally:
            self._send_lock.release()

    async def _flush_unless_sending(self) -> bool:
        """Write what the receive path queued, unless a writer holds the lock.

        That writer sends it before letting go (see ``_flush``); waiting for
        it instead could deadlock (see the module docstring). Returns whether
        it wrote (a transport write is a checkpoint).
        """
        if self._conn.has_data_to_send and not self._send_lock.locked():
            await self._flush()
            return True
        return False

    async def _flush_alert(self) -> None:
        """Best effort: send a queued fatal alert, shielded and bounded."""
        with trio.move_on_after(CLOSE_TIMEOUT, shield=True):
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await self._flush()

    async def _fail(self, exc: TLSError) -> TLSError:
        """Flush the alert for ``exc``, break the stream, and return what to raise."""
        wrapped = _as_broken(exc)
        self._break(wrapped)
        await self._flush_alert()
        return wrapped

    async def _receive_step(self) -> None:
        """Read once from the transport, feed the engine, flush its answers.

        Raises the engine's error (after flushing its alert), if any.
        """
        # The transport read right below is a checkpoint that raises a
        # pending cancellation before it consumes anything, so a free lock is
        # taken without one (a coroutine and a cancellation check less).
        if not self._receive_lock.try_acquire():
            await self._receive_lock.acquire(fast=True)
        try:
            try:
                data = await self.transport_stream.receive_some(_RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                raise self._transport_failed(exc) from exc
            error = self._feed(data)
        finally:
            self._receive_lock.release()
        if error is not None:
            raise await self._fail(error)
        if self._conn.has_data_to_send:  # rarely: most reads queue nothing
            await self._flush_unless_sending()

    def _feed(self, data: bytes | bytearray) -> TLSError | None:
        conn = self._conn
        if (
            not data
            and self.config.https_compatible
            and conn.handshake_complete
            and not conn.peer_closed
        ):
            self._close_reason = CloseReason.RAGGED_EOF
            return None
        try:
            produced = conn.receive_data(bytes(data))
        except TLSError as exc:
            # Keep what arrived before the failure (data before a fatal alert):
            # receive_some returns it before raising.
            self._handle_events(exc.events)
            return exc
        self._handle_events(produced)
        return None

    def _handle_events(self, produced: Sequence[object]) -> None:
        for event in produced:
            if isinstance(event, events.ApplicationData):
                self._incoming.append(event.data)
            elif isinstance(event, events.EarlyDataReceived):
                self._early_incoming += event.data
            elif isinstance(event, events.CloseNotify):
                self._close_reason = CloseReason.CLOSE_NOTIFY
            elif isinstance(event, events.NewSessionTicketReceived):
                self._remember_session(event)
            elif isinstance(event, events.ClientCertificateReceived):
                self._client_certificate_result = event
                self._certificate_answers += 1
            elif (
                isinstance(event, events.HandshakeComplete)
                and self._handshake_started_at is not None
            ):
                # Measured here: a cancelled flush of our last flight must not
                # leave it unset.
                self._handshake_seconds = trio.current_time() - self._handshake_started_at

    def _offer_cached_session(self) -> None:
        conn = self._conn
        config = self.config
        if (
            self._session_key is not None
            and isinstance(conn, ClientConnection)
            and isinstance(config, ClientConfig)
            and config.session_cache is not None
        ):
            conn.session = config.session_cache.take(
                self._session_key, config.clock.now(), usable=conn.may_offer
            )

    def _remember_session(self, event: events.NewSessionTicketReceived) -> None:
        config = self.config
        if (
            self._session_key is not None
            and event.session is not None
            and isinstance(config, ClientConfig)
            and config.session_cache is not None
        ):
            config.session_cache.store(self._session_key, event.session)

    # --- handshake ------------------------------------------------------------

    async def do_handshake(self, *, early_data: bytes = b"") -> None:
        """Complete the TLS handshake if it has not completed yet.

        Args:
            early_data: client side, application data to send as 0-RTT data
                with the ClientHello, when the cached session allows it (its
                server enabled ``max_early_data_size``). It may be replayed
                by an attacker, so send only requests that are safe to
                repeat. Whether the server took it is
                :attr:`early_data_status` afterwards; when it is not
                ``ACCEPTED``, the data was not delivered, and it is up to
                the caller to send it again (RFC 8446 §4.2.10 leaves that
                to the application). Only the call that starts the
                handshake can send early data.

        Raises:
            HandshakeTimeout: ``config.handshake_timeout`` elapsed first.
            CertificateVerificationError: the peer's chain or name did not verify.
            trio.BrokenResourceError: any other failure (every TLS error is one).

        Cancellation while waiting for the peer leaves the stream resumable:
        call this again to continue where it stopped, under the deadline set
        when the handshake first started. Only a cancellation that interrupts
        a write to the transport breaks the stream.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        self._check_usable()
        if early_data:
            if self._server_side:
                raise UsageError("only a client sends early data")
            if self._started:
                raise UsageError(
                    "early data can only be given to the call that starts the handshake"
                )
            self._early_data = bytes(early_data)
        if self._conn.handshake_complete:
            # Bytes queued by an earlier, interrupted call go out now, unless a
            # writer holds the lock (it sends them); either way a checkpoint.
            if not await self._flush_unless_sending():
                await trio.lowlevel.cancel_shielded_checkpoint()
            return
        await self._ensure_handshake()

    async def receive_early_data(self) -> bytes:
        """Server side: the next 0-RTT data the client sent, or ``b""`` when there is no more.

        Runs the handshake as far as needed: it returns as soon as early data
        arrives, before the client's Finished, so that an answer can go out
        at once with :meth:`send_all` (0.5-RTT data, sent before the client
        is authenticated; the handshake completes in the next
        ``receive_some``). ``b""`` means the client sent none, the server
        refused it (``early_data_status``), or all of it was returned.
        Early data can be a replay (see :doc:`/resumption`): act only on
        requests that are safe to repeat. ``receive_some`` never returns
        early data.

        Raises:
            UsageError: on a client stream.
            trio.BusyResourceError: another task is receiving.
            HandshakeTimeout, trio.BrokenResourceError: as :meth:`do_handshake`.
        """
        conn = self._conn
        if not isinstance(conn, ServerConnection):
            raise UsageError("receive_early_data() is for the server side")
        with self._outer_receive:
            await trio.lowlevel.checkpoint_if_cancelled()
            self._check_usable()
            if not self._early_incoming and conn.may_receive_early_data:
                async with self._handshake_lock:
                    self._check_usable()
                    await self._handshake_locked(
                        until=lambda: bool(self._early_incoming) or not conn.may_receive_early_data
                    )
            else:
                await trio.lowlevel.cancel_shielded_checkpoint()
            data = bytes(self._early_incoming)
            self._early_incoming.clear()
            return data

    async def _ensure_handshake(self) -> None:
        if self._conn.handshake_complete:
            # Bytes queued by an earlier, interrupted call (our Finished, a
            # KeyUpdate answer) go out now, outside the handshake deadline:
            # that deadline ended with the handshake.
            await self._flush_unless_sending()
            return
        async with self._handshake_lock:
            self._check_usable()
            await self._handshake_locked()

    async def _handshake_locked(self, until: Callable[[], bool] | None = None) -> None:
        """Drive the handshake until it completes (or ``until()`` holds)."""
        conn = self._conn
        if self._conn.handshake_complete:  # another task finished it while we waited
            # Never wait behind a writer here (the module docstring: a reader
            # queued behind a blocked writer deadlocks a full-duplex peer).
            if not await self._flush_unless_sending():
                await trio.lowlevel.cancel_shielded_checkpoint()
            return
        if not self._started:
            self._started = True
            now = trio.current_time()
            self._handshake_started_at = now
            timeout = self.config.handshake_timeout
            self._deadline = math.inf if timeout is None else now + timeout
            self._offer_cached_session()
            if isinstance(conn, ClientConnection):
                conn.start_handshake(early_data=self._early_data)
                self._early_data = b""
            else:
                conn.start_handshake()
        assert self._deadline is not None  # set when the handshake started
        with trio.CancelScope(deadline=self._deadline) as scope:
            while not conn.handshake_complete and not (until is not None and until()):
                if conn.has_data_to_send:
                    await self._flush()
                await self._receive_step()
                if self._close_reason is not None and not conn.handshake_complete:
                    raise await self._fail(
                        TruncationError("the peer closed the connection during the handshake")
                    )
            # Our last flight (a client's Finished): a writer holding the send
            # lock (0.5-RTT data) sends it before letting go; never wait for it.
            await self._flush_unless_sending()
        if scope.cancelled_caught:
            timeout = self.config.handshake_timeout
            err = HandshakeTimeout(
                f"the TLS handshake did not complete within {timeout} seconds "
                "(config.handshake_timeout)"
            )
            # A write cut short by the deadline already broke the stream with
            # a generic error; the timeout is the better explanation.
            self._state = _Closed.BROKEN if self._state is _Closed.OPEN else self._state
            if self._state is _Closed.BROKEN:
                self._error = err
            raise err

    # --- the Stream interface --------------------------------------------------

    @override
    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Encrypt and send ``data``, handshaking first if needed.

        Raises:
            trio.BusyResourceError: another task is sending.
            trio.ClosedResourceError: the stream was closed, or send_eof was called.
            trio.BrokenResourceError: the stream failed (every TLS error is one).

        A cancellation before the data reached the transport loses nothing;
        one that interrupts a transport write breaks the stream.
        """
        with self._outer_send:
            await trio.lowlevel.checkpoint_if_cancelled()
            self._check_usable()
            if self._sent_eof:
                raise trio.ClosedResourceError("send_eof() was called on this TLSStream")
            conn = self._conn
            # Whether anything was awaited since the cancellation check above.
            awaited = False
            if conn.handshake_complete:
                if conn.has_data_to_send:
                    # Bytes queued by an earlier call (our Finished, a KeyUpdate
                    # answer) go out first, in a write of their own.
                    await self._ensure_handshake()
                    awaited = True
                # Otherwise _ensure_handshake has nothing to do: a coroutine saved.
            elif not conn.can_send_application_data:
                await self._ensure_handshake()
                awaited = True
            # Otherwise a server that accepted 0-RTT data answers before the
            # client's Finished (0.5-RTT); the next receive completes the handshake.
            if isinstance(data, bytes) and 0 < len(data) <= _SEND_CHUNK:
                # Immutable and small enough: sealed as it is, without a copy.
                conn.send_application_data(data)
                if not awaited and self._send_lock.try_acquire():
                    # Nothing awaited since the cancellation check above, so
                    # a free lock needs no second one before bytes leave.
                    await self._flush_locked()
                else:
                    await self._flush()
                return
            # A byte view, whatever the caller's is made of (an array('H')
            # slices by two-byte items), so that the steps below are bytes.
            view = memoryview(data).cast("B")
            if not view.nbytes:
                await self._flush()
                await trio.lowlevel.cancel_shielded_checkpoint()
                return
            for start in range(0, view.nbytes, _SEND_CHUNK):
                conn.send_application_data(bytes(view[start : start + _SEND_CHUNK]))
                await self._flush()

    @override
    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Return decrypted data from the peer, or ``b""`` once it closed.

        Raises:
            trio.BusyResourceError: another task is receiving.
            trio.ClosedResourceError: the stream was closed.
            trio.BrokenResourceError: the stream failed (every TLS error is one).
            TruncationError: (also a BrokenResourceError) the transport ended
                without close_notify and ``https_compatible`` is off.

        KeyUpdate and NewSessionTicket messages are handled here. A
        cancellation while waiting for the peer loses nothing. Data that
        arrived before a fatal error (a peer's alert right after its last
        data) is returned first; the following call raises the error.
        """
        if max_bytes is not None:
            if not isinstance(max_bytes, int):
                raise TypeError("max_bytes must be an integer or None")
            if max_bytes < 1:
                raise ValueError("max_bytes must be >= 1")
        with self._outer_receive:
            await trio.lowlevel.checkpoint_if_cancelled()
            if self._state is _Closed.CLOSED:
                raise trio.ClosedResourceError("this TLSStream was closed")
            # Data that arrived before the stream broke (just before a fatal
            # alert, or before the peer's clean close that a failed write then
            # followed) is delivered first; after a clean close, then b"".
            clean_eof = (
                self._close_reason is CloseReason.CLOSE_NOTIFY and self._conn.handshake_complete
            )
            if not (
                self._state is _Closed.BROKEN
                and (clean_eof or (self._incoming and self._drain_before_error))
            ):
                self._check_usable()
                await self._ensure_handshake()
            # A transport read is a checkpoint: after one, the closing
            # checkpoint below would only cost another trip through the
            # scheduler (about 4 µs a call).
            read_transport = False
            while not self._incoming and self._close_reason is None:
                try:
                    await self._receive_step()
                    read_transport = True
                except trio.BrokenResourceError:
                    if not self._incoming:
                        raise
                    # Authentic data came just before the failure: hand it out;
                    # the next call raises the error (the stream is broken).
                    self._drain_before_error = True
                    break
            incoming = self._incoming
            if not incoming:
                await trio.lowlevel.cancel_shielded_checkpoint()
                return b""
            if max_bytes is None:
                self._incoming = []
                data = bytes(incoming[0]) if len(incoming) == 1 else b"".join(incoming)
            else:
                data = _take(incoming, max_bytes)
            if not read_transport:
                await trio.lowlevel.cancel_shielded_checkpoint()
            return data

    @override
    async def wait_send_all_might_not_block(self) -> None:
        """Wait until ``send_all`` might not block (see trio's Stream docs)."""
        with self._outer_send:
            await trio.lowlevel.checkpoint_if_cancelled()
            self._check_usable()
            await self._send_lock.acquire()
            try:
                await self.transport_stream.wait_send_all_might_not_block()
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                self._send_lock.release()
                raise self._transport_failed(exc) from exc
            except BaseException:
                self._send_lock.release()
                raise
            # Whoever holds the send lock writes what the receive path queued
            # meanwhile before letting go (_flush_unless_sending counts on it).
            await self._flush_locked()

    @override
    async def send_eof(self) -> None:
        """Send close_notify: we will send nothing more, but can still receive.

        TLS 1.3 closes each direction on its own (RFC 8446 §6.1), so this is a
        real half-close; ``receive_some`` keeps working.
        """
        with self._outer_send:
            await trio.lowlevel.checkpoint_if_cancelled()
            self._check_usable()
            if self._sent_eof:
                await trio.lowlevel.cancel_shielded_checkpoint()
                return
            await self._ensure_handshake()
            self._sent_eof = True
            self._conn.close()
            await self._flush()

    async def key_update(self, *, request_peer: bool = True) -> None:
        """Replace our sending keys now, and ask the peer to do the same."""
        with self._outer_send:
            await trio.lowlevel.checkpoint_if_cancelled()
            self._check_usable()
            await self._ensure_handshake()
            self._conn.key_update(request_peer=request_peer)
            await self._flush()

    async def request_client_certificate(self) -> None:
        """Server side: ask the client for a certificate now (RFC 8446 §4.6.2).

        Completes the handshake first if needed, then sends a
        CertificateRequest. The answer arrives while the application
        reads: after a later ``receive_some`` has consumed it,
        :attr:`client_certificate_result` holds it.

        Raises:
            UsageError: this is the client side, the client did not offer
                post_handshake_auth, the config has no ``client_trust``, or
                an earlier request is still unanswered.

        Cancellation before the request is written leaves nothing sent; a
        cancelled write breaks the stream, as for :meth:`send_all`.
        """
        with self._outer_send:
            await trio.lowlevel.checkpoint_if_cancelled()
            self._check_usable()
            conn = self._conn
            if not isinstance(conn, ServerConnection):
                raise UsageError("only the server side can request a client certificate")
            await self._ensure_handshake()
            conn.request_client_certificate()
            self._certificate_requests += 1
            await self._flush()

    async def wait_client_certificate(self) -> events.ClientCertificateReceived:
        """Server side: wait for the answer to :meth:`request_client_certificate`.

        Reads from the client until its answer arrives (GnuTLS's
        ``gnutls_reauth`` returns at the same point) and returns it, as
        :attr:`client_certificate_result` then also holds it; returns at once
        when the latest request is already answered. Application data that
        arrives first is kept for ``receive_some``. A chain the server's
        ``client_verify_mode`` refuses fails the stream instead, as in the
        handshake.

        Raises:
            UsageError: on a client stream, or no certificate was requested;
                also when more than 1 MiB of application data came first
                (read it with ``receive_some`` and call this again).
            trio.BrokenResourceError: the stream failed, or the client closed
                its side without answering.
            trio.BusyResourceError: another task is receiving.
        """
        if not self._server_side:
            raise UsageError("only the server side waits for a client certificate")
        with self._outer_receive:
            await trio.lowlevel.checkpoint_if_cancelled()
            if self._certificate_requests == 0:
                raise UsageError("no client certificate was requested on this stream")
            while self._certificate_answers < self._certificate_requests:
                self._check_usable()
                if self._close_reason is not None:
                    raise trio.BrokenResourceError(
                        "the client closed its side without answering the certificate request"
                    )
                buffered = sum(map(len, self._incoming))
                if buffered > _MAX_BUFFERED_WHILE_WAITING:
                    raise UsageError(
                        f"{buffered} bytes of application data arrived before the client's "
                        "certificate; read them with receive_some() and wait again"
                    )
                try:
                    await self._receive_step()
                except trio.BrokenResourceError:
                    if self._incoming:
                        self._drain_before_error = True  # receive_some hands it out first
                    raise
            result = self._client_certificate_result
            assert result is not None  # set with each answer
            await trio.lowlevel.cancel_shielded_checkpoint()
            return result

    def export_keying_material(self, label: bytes, context: bytes, length: int) -> bytes:
        """TLS-Exporter (RFC 8446 §7.5); the handshake must be complete."""
        return self._conn.export_keying_material(label, context, length)

    @override
    async def aclose(self) -> None:
        """Send close_notify (best effort, bounded) and close the transport.

        Cancelled or not, the transport is closed when this returns.
        """
        if self._state is _Closed.CLOSED:
            await trio.lowlevel.checkpoint()
            return
        was_open = self._state is _Closed.OPEN
        self._state = _Closed.CLOSED
        try:
            if was_open and self._conn.handshake_complete and not self._conn.closed:
                self._conn.close()
                with trio.move_on_after(CLOSE_TIMEOUT):
                    await self._flush()
        except (trio.BrokenResourceError, trio.ClosedResourceError, TLSError):
            pass
        finally:
            await self.transport_stream.aclose()

    async def unwrap(self) -> tuple[trio.abc.Stream, bytes]:
        """Close TLS cleanly and hand back the transport.

        Sends close_notify, waits for the peer's, and returns the transport
        with any bytes that arrived after the peer's close_notify.

        Raises:
            UsageError: application data arrived that was not read yet; read
                it with ``receive_some`` (until ``b""``), then call this again.
                Nothing is lost and the stream stays usable for receiving.
        """
        with self._outer_send, self._outer_receive:
            await trio.lowlevel.checkpoint_if_cancelled()
            self._check_usable()
            await self._ensure_handshake()
            moved = False  # a transport write or read: a checkpoint already
            if not self._sent_eof:
                self._sent_eof = True
                self._conn.close()
                await self._flush()
                moved = True
            while self._close_reason is None and not self._incoming:
                await self._receive_step()
                moved = True
            if not moved:
                await trio.lowlevel.cancel_shielded_checkpoint()
            if self._incoming:
                raise UsageError(
                    f"{sum(map(len, self._incoming))} bytes of application data arrived before the "
                    "peer's close_notify and were not read; read them with receive_some(), "
                    "then call unwrap() again"
                )
            if self._close_reason is not CloseReason.CLOSE_NOTIFY:
                raise await self._fail(
                    TruncationError("the transport ended before the peer's close_notify")
                )
            self._state = _Closed.CLOSED
            rest = self._conn.take_unprocessed()
            return self.transport_stream, rest
