"""What both sides share: record dispatch, alerts, KeyUpdate, close.

Theory of operation. ``receive_data`` feeds the :class:`RecordReader`, then
handles complete records one by one: handshake records go through the
:class:`HandshakeBuffer` to the current :class:`State`; alerts end or close
the connection; application data becomes events. Everything a handler wants
to write is queued in order: handshake messages collect in
``_pending_handshake`` until anything else is written or the write key
changes, then are sealed together onto ``_out``, so a flight takes as few
records as fit. Errors are caught at the public
boundary only: a :class:`LocalAlert` queues its alert (sealed if a key is
installed), the connection latches the error, and every later call raises
it again. A non-TLSError exception is a bug and becomes InternalError.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import ClassVar, Final, TypeVar, final

from ..errors import (
    AlertReceived,
    InternalError,
    LocalAlert,
    TLSError,
    TruncationError,
    UnexpectedMessage,
    UsageError,
)
from .enums import AlertDescription, AlertLevel, ContentType, HandshakeType, KeyUpdateRequest
from .events import (
    ApplicationData,
    CloseNotify,
    EarlyDataReceived,
    Event,
    HandshakeComplete,
    KeyUpdated,
)
from .handshake_buffer import HandshakeBuffer
from .keyschedule import KeySchedule, Secret, next_traffic_secret
from .messages import MESSAGE_NAMES, HandshakeMessage, KeyUpdate, frame
from .record import MAX_PLAINTEXT, RecordReader, RecordWriter, decode_alert
from .state import Negotiated, State
from .suites import SuiteInfo

__all__ = ["Connection"]

_T = TypeVar("_T")

#: The largest ``ServerConfig.max_early_data_size``: early data is buffered
#: until the application reads it, so it must stay small.
MAX_EARLY_DATA_SIZE: Final = 2**16
#: Bytes of 0-RTT records a server that rejects early data will drop: the
#: ciphertext of the most early data our tickets allow plus room for record
#: overhead; more is a fatal error.
EARLY_DATA_SKIP_LIMIT: Final = MAX_EARLY_DATA_SIZE + 2**12

# Plain ints for the per-record dispatch: an IntEnum member lookup costs
# about 0.1 µs each time.
_HANDSHAKE: Final = int(ContentType.HANDSHAKE)
_APPLICATION_DATA: Final = int(ContentType.APPLICATION_DATA)
_ALERT: Final = int(ContentType.ALERT)

#: Reads shorter than this are opened record by record even when coalescing:
#: they hold about two full records at most, and looking for a run of them
#: cost more than it saved (bench/engine.py, reads of 4 and 16 KiB).
_COALESCE_FROM: Final = 2**15

#: Records in a row that carry no application data (empty ones,
#: change_cipher_spec, user_canceled; post-handshake KeyUpdate,
#: NewSessionTicket and CertificateRequest) before the peer is cut off:
#: each costs us work and gives nothing, so a flood of them is refused, as
#: OpenSSL does (its MAX_EMPTY_RECORDS and key update limit are 32 too).
MAX_IDLE_RECORDS: Final = 32

KeyLog = Callable[[str, bytes, bytes], None]
"""Receives (NSS key log label, client random, secret) as secrets are derived."""


class Connection:
    """Base of :class:`ClientConnection` and :class:`ServerConnection`."""

    is_client: ClassVar[bool]

    def __init__(self, max_handshake_message_size: int, key_log: KeyLog | None = None) -> None:
        self._key_log = key_log
        self._reader = RecordReader()
        self._writer = RecordWriter()
        #: Whether one ApplicationData event may carry the data of several
        #: consecutive records (after the handshake, never across another
        #: event). Off by default: then each record is one event, whatever
        #: the transport's read sizes. TLSStream turns it on.
        self.coalesce_application_data = False
        self._handshake = HandshakeBuffer(max_handshake_message_size)
        # Sealed records waiting for data_to_send(), as separate chunks: one
        # join at the end copies each byte once (a bytearray grown record by
        # record and copied out again costs two more copies).
        self._out: list[bytes] = []
        # Handshake messages queued under the current write key but not sealed
        # yet: consecutive messages share records (RFC 8446 §5.1 allows it),
        # so a server flight is one record, not one per message.
        self._pending_handshake = bytearray()
        self._pending_version = 0x0303
        self._events: list[Event] = []
        self._state: State = _Idle()
        self._error: TLSError | None = None
        self._peer_closed = False
        self._closed = False
        self._ccs_allowed = False
        self._negotiated: Negotiated | None = None
        self._suite: SuiteInfo | None = None
        self._schedule: KeySchedule | None = None
        self._read_secret: Secret | None = None
        self._write_secret: Secret | None = None
        self._key_update_pending = False
        # Server: 0-RTT bytes the client may still send (None: not reading
        # early data). Application data may go out before the handshake
        # completes (0.5-RTT, RFC 8446 §4.4.4) only after accepting 0-RTT.
        self._early_data_left: int | None = None
        self._half_rtt = False
        self._idle_records = 0  # see MAX_IDLE_RECORDS
        # Server: our record_size_limit, held back while reading 0-RTT data.
        self._record_limit_after_early_data = MAX_PLAINTEXT + 1

    # --- public API -----------------------------------------------------------

    @property
    def negotiated(self) -> Negotiated | None:
        """What the handshake negotiated, once it is complete."""
        return self._negotiated

    @property
    def handshake_complete(self) -> bool:
        """Whether the handshake has completed."""
        return self._negotiated is not None

    @property
    def state_name(self) -> str:
        """The current state's name (for logs and error messages)."""
        return type(self._state).__name__

    @property
    def peer_closed(self) -> bool:
        """Whether the peer has sent close_notify."""
        return self._peer_closed

    @property
    def closed(self) -> bool:
        """Whether we have sent (queued) close_notify."""
        return self._closed

    @property
    def can_send_application_data(self) -> bool:
        """Whether ``send_application_data`` may be called now.

        True once the handshake completed; on a server that accepted 0-RTT
        data, already after its own Finished (0.5-RTT data, RFC 8446
        §4.4.4), to a client that has not proved its identity yet.
        """
        return (self._negotiated is not None or self._half_rtt) and not self._closed

    @property
    def has_data_to_send(self) -> bool:
        """Whether ``data_to_send()`` would return bytes."""
        return bool(self._out or self._pending_handshake)

    @property
    def error(self) -> TLSError | None:
        """The error that ended this connection, if any."""
        return self._error

    def data_to_send(self) -> bytes:
        """Return and clear the bytes that must be written to the transport."""
        self._seal_pending_handshake()
        if not self._out:
            return b""
        chunks = self._out
        self._out = []
        out = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return out

    def receive_data(self, data: bytes) -> list[Event]:
        """Process bytes read from the transport; ``b""`` means EOF.

        Returns:
            the events those bytes produced, in order.

        Raises:
            TLSError: a subclass saying what went wrong; the matching alert is
                queued in ``data_to_send()`` and the connection is dead. Its
                ``events`` holds what this call produced before the failure.
        """
        try:
            self._guard(self._receive, data)
        except TLSError as exc:
            if self._events:
                exc.events = tuple(self._events)
                self._events = []
            raise
        events = self._events
        self._events = []
        return events

    def send_application_data(self, data: bytes) -> None:
        """Queue application data (see :attr:`can_send_application_data`)."""
        if type(data) is not bytes:
            data = bytes(data)  # a bytearray or memoryview the caller may reuse
        self._guard(self._send_application_data, data)

    def key_update(self, *, request_peer: bool = True) -> None:
        """Replace our sending keys; ask the peer to replace its own too."""
        self._guard(self._key_update, request_peer)

    def close(self) -> None:
        """Queue close_notify; nothing more can be sent afterwards."""
        if self._closed or self._error is not None:
            return
        self._closed = True
        self._send_alert(AlertDescription.CLOSE_NOTIFY, AlertLevel.WARNING)

    def export_keying_material(self, label: bytes, context: bytes, length: int) -> bytes:
        """TLS-Exporter (RFC 8446 §7.5) after the handshake completed."""
        if self._schedule is None or self._negotiated is None:
            raise UsageError("keying material can only be exported after the handshake")
        if not 0 < length <= 255 * self._schedule.hash_len:
            raise ValueError(f"export length must be 1..{255 * self._schedule.hash_len}")
        if len(label) > 249:
            # RFC 8446 §7.1: HkdfLabel.label is "tls13 " + label, <7..255> bytes.
            raise ValueError(f"exporter label is {len(label)} bytes; at most 249 fit")
        return self._schedule.export(label, context, length)

    def take_unprocessed(self) -> bytes:
        """Bytes received but not processed (after the peer's close_notify)."""
        if not self._peer_closed:
            raise UsageError("take_unprocessed() is for after the peer's close_notify")
        return self._reader.take_unprocessed()

    # --- the error boundary ----------------------------------------------------

    def _guard(self, fn: Callable[[_T], None], arg: _T) -> None:
        if self._error is not None:
            # The same error again, without the events of the call that first
            # raised it (TLSError.events: what *this* call produced).
            self._error.events = ()
            raise self._error
        try:
            fn(arg)
        except UsageError:
            raise
        except TLSError as exc:
            self._fail(exc)
            raise
        except Exception as exc:  # any other exception is a bug of ours
            err = InternalError(f"internal error in state {self.state_name}: {exc!r}")
            err.__cause__ = exc
            self._fail(err)
            raise err from exc

    def _fail(self, exc: TLSError) -> None:
        self._error = exc
        if isinstance(exc, LocalAlert) and not self._closed:
            self._send_alert(exc.sent_alert, AlertLevel.FATAL)
        self._closed = True

    # --- receiving -------------------------------------------------------------

    def _receive(self, data: bytes) -> None:
        if not data:
            self._receive_eof()
            return
        if self._peer_closed:
            return  # RFC 8446 §6.1: data after close_notify is ignored
        reader = self._reader
        reader.feed(data)
        # Only handshake records change this within one call.
        coalesce = len(data) >= _COALESCE_FROM and self._may_coalesce()
        while not self._peer_closed:
            if coalesce:
                # What _receive_application_data would accept record by
                # record, opened in one go; anything else (and any record
                # that fails) is left for next_record below, so events and
                # errors come in the same order.
                joined = reader.next_application_data()
                if joined is not None:
                    self._events.append(ApplicationData(joined))
                    self._idle_records = 0
                    continue
            record = reader.next_record()
            if record is None:
                break
            content_type, payload = record
            if content_type == _HANDSHAKE:
                if not reader.last_was_protected:
                    if reader.is_protected:
                        raise UnexpectedMessage("plaintext handshake record after keys were set")
                    # The second ClientHello ends the early data that a
                    # HelloRetryRequest refused (RFC 8446 §4.2.10): from
                    # here on a record that does not open is an attack.
                    reader.skip_budget = 0
                self._receive_handshake(payload)
                coalesce = len(data) >= _COALESCE_FROM and self._may_coalesce()
                continue
            if not self._handshake.is_empty:
                # RFC 8446 §5.1: no other records between the fragments of one message.
                raise UnexpectedMessage(
                    f"record of type {content_type} between fragments of a handshake message"
                )
            if content_type == _APPLICATION_DATA:
                self._receive_application_data(payload)
            elif content_type == _ALERT:
                self._receive_alert(payload, protected=reader.last_was_protected)
            else:
                self._receive_change_cipher_spec(payload)

    def _may_coalesce(self) -> bool:
        # After the handshake, outside 0-RTT data and between handshake
        # messages, where every data record is ApplicationData.
        return (
            self.coalesce_application_data
            and self._negotiated is not None
            and self._early_data_left is None
            and self._handshake.is_empty
        )

    def _receive_handshake(self, payload: bytes) -> None:
        if not payload:
            raise UnexpectedMessage("empty handshake record")
        buf = self._handshake
        buf.feed(payload)
        while (msg := buf.next_message()) is not None:
            self._dispatch(msg)
            if self._error is not None:
                return

    def _dispatch(self, msg: HandshakeMessage) -> None:
        state = self._state
        if msg.msg_type not in state.expects:
            name = MESSAGE_NAMES.get(msg.msg_type, f"unknown type {msg.msg_type}")
            wanted = ", ".join(sorted(MESSAGE_NAMES[t] for t in state.expects)) or "none"
            raise UnexpectedMessage(
                f"received {name} in state {type(state).__name__} (expected: {wanted})"
            )
        self._state = state.handle(msg, self)

    def _receive_application_data(self, payload: bytes) -> None:
        if not self._reader.last_was_protected:
            raise UnexpectedMessage("plaintext application data record")
        if self._early_data_left is not None:
            self._receive_early_data(payload)
            return
        if self._negotiated is None or self._read_secret is None:
            raise UnexpectedMessage("application data before the handshake completed")
        if payload:
            self._events.append(ApplicationData(payload))
            self._idle_records = 0
        else:
            self.count_idle_record("empty application data records")

    def count_idle_record(self, what: str) -> None:
        """Count a record (or post-handshake message) that carried no data.

        More than MAX_IDLE_RECORDS in a row is a flood: UnexpectedMessage.
        """
        self._idle_records += 1
        if self._idle_records > MAX_IDLE_RECORDS:
            raise UnexpectedMessage(
                f"the peer sent more than {MAX_IDLE_RECORDS} records in a row without "
                f"application data (the last ones: {what}); refusing the flood"
            )

    def _receive_early_data(self, payload: bytes) -> None:
        assert self._early_data_left is not None  # only while reading early data
        left = self._early_data_left - len(payload)
        if left < 0:
            # RFC 8446 §4.2.10: more than max_early_data_size is unexpected_message.
            raise UnexpectedMessage(
                "the client sent more 0-RTT data than the ticket's max_early_data_size allows"
            )
        self._early_data_left = left
        if payload:
            self._events.append(EarlyDataReceived(payload))
            self._idle_records = 0
        else:
            self.count_idle_record("empty 0-RTT records")

    def _receive_alert(self, payload: bytes, *, protected: bool) -> None:
        if not payload:
            # RFC 8446 §5.4: an Alert record with zero-length content.
            raise UnexpectedMessage("alert record with no content")
        _level, description = decode_alert(payload)
        if description == AlertDescription.CLOSE_NOTIFY:
            if self._reader.is_protected and not protected:
                raise UnexpectedMessage("plaintext close_notify after keys were set")
            self._peer_closed = True
            self._events.append(CloseNotify())
            return
        if description == AlertDescription.USER_CANCELED:
            self.count_idle_record("user_canceled alerts")
            return  # RFC 8446 §6.1: a close_notify should follow
        # RFC 8446 §6: every other alert is fatal, whatever its level says.
        self._closed = True
        raise AlertReceived(description)

    def _receive_change_cipher_spec(self, payload: bytes) -> None:
        # RFC 8446 §5: a plaintext CCS of exactly 0x01 is dropped between the
        # first ClientHello and the peer's Finished; anything else is fatal.
        if payload != b"\x01":
            raise UnexpectedMessage(f"change_cipher_spec record with body {payload.hex()}")
        if not self._ccs_allowed:
            raise UnexpectedMessage("change_cipher_spec outside the handshake")
        self.count_idle_record("change_cipher_spec records")

    def _receive_eof(self) -> None:
        if self._peer_closed:
            return
        if self._negotiated is None:
            raise TruncationError(
                f"the peer closed the connection during the handshake (state {self.state_name})"
            )
        raise TruncationError(
            "the peer closed the transport without sending close_notify; "
            "the data may have been truncated"
        )

    # --- sending ---------------------------------------------------------------

    def _send_application_data(self, data: bytes) -> None:
        if self._negotiated is None and not self._half_rtt:
            raise UsageError("application data can only be sent after the handshake completed")
        if self._closed:
            raise UsageError("cannot send application data after close()")
        if self._key_update_pending or self._writer.wants_key_update:
            self._key_update(False)
        self._seal_pending_handshake()
        self._out.append(self._writer.seal(ContentType.APPLICATION_DATA, data))

    def _key_update(self, request_peer: bool) -> None:
        if self._negotiated is None:
            raise UsageError("KeyUpdate is only possible after the handshake completed")
        if self._closed:
            raise UsageError("cannot update keys after close()")
        request = (
            KeyUpdateRequest.UPDATE_REQUESTED
            if request_peer
            else KeyUpdateRequest.UPDATE_NOT_REQUESTED
        )
        self.queue_handshake(
            frame(HandshakeType.KEY_UPDATE, KeyUpdate(request_update=request).encode())
        )
        self._rotate_write_key()
        self._key_update_pending = False  # any KeyUpdate of ours answers the peer's

    def _send_alert(self, description: int, level: int) -> None:
        self._seal_pending_handshake()
        self._out.append(self._writer.seal(ContentType.ALERT, bytes([level, description])))

    # --- what handshake states call ---------------------------------------------

    def queue_handshake(self, raw: bytes, *, legacy_version: int = 0x0303) -> None:
        """Queue a framed handshake message under the current write protection."""
        if self._closed:
            return  # close(): nothing is sent after close_notify (or a fatal alert)
        if self._pending_handshake and legacy_version != self._pending_version:
            self._seal_pending_handshake()
        self._pending_handshake += raw
        self._pending_version = legacy_version

    def _seal_pending_handshake(self) -> None:
        """Seal the queued handshake messages into as few records as fit."""
        if self._pending_handshake:
            self._out.append(
                self._writer.seal(
                    ContentType.HANDSHAKE, bytes(self._pending_handshake), self._pending_version
                )
            )
            self._pending_handshake.clear()

    def queue_change_cipher_spec(self) -> None:
        """Queue the middlebox-compatibility CCS (RFC 8446 appendix D.4)."""
        if self._closed:
            return
        self._seal_pending_handshake()
        self._out.append(b"\x14\x03\x03\x00\x01\x01")

    def allow_change_cipher_spec(self, allowed: bool) -> None:
        """Whether a dummy CCS from the peer is dropped (True) or fatal."""
        self._ccs_allowed = allowed

    def set_suite(self, suite: SuiteInfo, schedule: KeySchedule) -> None:
        """Record the negotiated suite and key schedule."""
        self._suite = suite
        self._schedule = schedule

    def install_read_key(self, secret: Secret, what: str) -> None:
        """Decrypt records from now on with ``secret``."""
        assert self._suite is not None  # set_suite runs before any key is installed
        self._handshake.check_key_change(what)
        self._reader.set_key(self._suite, secret)
        self._read_secret = secret

    def install_write_key(self, secret: Secret) -> None:
        """Encrypt records from now on with ``secret``."""
        assert self._suite is not None  # set_suite runs before any key is installed
        self._seal_pending_handshake()  # what was queued goes out under the old key
        self._writer.set_key(self._suite, secret)
        self._write_secret = secret

    def reject_early_data(self) -> None:
        """Drop the 0-RTT records the client may send (RFC 8446 §4.2.10)."""
        self._reader.skip_budget = EARLY_DATA_SKIP_LIMIT

    def accept_early_data(self, limit: int) -> None:
        """Server: deliver up to ``limit`` bytes of 0-RTT data as events.

        The read key must be the client's early traffic key; application
        data may go out from now on (0.5-RTT).
        """
        self._early_data_left = limit
        self._half_rtt = True
        # RFC 8449 §4: records obey the limit of the handshake that made their
        # keys; the client sealed its 0-RTT data before our record_size_limit
        # reached it, so only the protocol's limit applies to it.
        self._record_limit_after_early_data = self._reader.max_inner_plaintext
        self._reader.max_inner_plaintext = MAX_PLAINTEXT + 1

    def end_early_data(self) -> None:
        """Server: the client's EndOfEarlyData arrived; no more early data."""
        self._early_data_left = None
        self._reader.max_inner_plaintext = self._record_limit_after_early_data

    def drop_write_key(self) -> None:
        """Client: write plaintext again (the second ClientHello after 0-RTT)."""
        self._seal_pending_handshake()
        self._writer.clear_key()
        self._write_secret = None

    def seal_early_data(self, data: bytes) -> None:
        """Client: seal 0-RTT application data under the early traffic key."""
        self._seal_pending_handshake()
        self._out.append(self._writer.seal(ContentType.APPLICATION_DATA, data))

    def set_peer_record_limit(self, limit: int) -> None:
        """Honour the peer's record_size_limit (RFC 8449 §4: includes the type byte)."""
        self._writer.max_fragment = min(self._writer.max_fragment, limit - 1)

    def set_own_record_limit(self, limit: int) -> None:
        """Enforce the record_size_limit we announced, once it is agreed."""
        self._reader.max_inner_plaintext = limit

    def complete_handshake(self, negotiated: Negotiated) -> None:
        """Mark the handshake complete and emit HandshakeComplete."""
        self._negotiated = negotiated
        self._ccs_allowed = False
        self._idle_records = 0  # the handshake's own CCS counts no further
        self._events.append(HandshakeComplete())

    def receive_key_update(self, msg: HandshakeMessage) -> None:
        """Handle the peer's KeyUpdate (RFC 8446 §4.6.3)."""
        update = KeyUpdate.decode(msg.body)
        self.count_idle_record("KeyUpdate messages")
        assert self._suite is not None and self._read_secret is not None  # in Traffic
        self._read_secret = next_traffic_secret(self._suite.hash_name, self._read_secret)
        self.install_read_key(self._read_secret, "KeyUpdate")
        requested = update.request_update == KeyUpdateRequest.UPDATE_REQUESTED
        if requested and not self._closed:
            # RFC 8446 §4.6.3: our answer is due "prior to sending [our] next
            # Application Data record", so it waits for that: receiving never
            # has to write (a send-only peer that never reads cannot stall
            # us), and a burst of requests costs one answer.
            self._key_update_pending = True
        self._events.append(KeyUpdated(update_requested=requested))

    def _rotate_write_key(self) -> None:
        assert self._suite is not None and self._write_secret is not None  # in Traffic
        self.install_write_key(next_traffic_secret(self._suite.hash_name, self._write_secret))

    def client_application_secret(self) -> Secret:
        """client_application_traffic_secret_N, the current one (RFC 8446 §4.4)."""
        # The client writes with it and the server reads with it; KeyUpdate
        # moves both ends to N+1.
        secret = self._write_secret if self.is_client else self._read_secret
        assert secret is not None  # called in the Traffic states, where keys are set
        return secret

    def log_secret(self, label: str, client_random: bytes, secret: bytes) -> None:
        """Report a secret to the key log (NSS key log format labels)."""
        if self._key_log is not None:
            try:
                self._key_log(label, client_random, secret)
            except Exception as exc:
                # The caller's callback, failing mid-handshake: the connection
                # cannot go on as if nothing happened (a UsageError included).
                raise InternalError(f"the key_log callback raised {exc!r}") from exc

    def push_event(self, event: Event) -> None:
        """Queue an event for the caller."""
        self._events.append(event)


@final
class _Idle(State):
    """Before start_handshake (client) or before any byte (server)."""


def constant_time_equal(a: bytes, b: bytes) -> bool:
    """Compare MACs without leaking where they differ."""
    return hmac.compare_digest(a, b)
