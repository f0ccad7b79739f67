"""Session tickets, resumption PSKs and the client's session cache (RFC 8446 §4.6.1, §4.2.11).

Tickets are stateless: the server seals what it needs to resume (the PSK,
suite, ALPN, SNI, when and for how long) under a :class:`TicketKeys` key with
AES-256-GCM, so any server holding the same keys resumes the session. A
ticket is ``key_id (8) || nonce (12) || sealed state``; the key id lets a
server with rotated keys find the right one without trial decryption.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol, final

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import DecodeError
from .codec import Reader, Writer

__all__ = [
    "ClientSession",
    "ReplayCache",
    "ReplayGuard",
    "SessionCache",
    "SessionState",
    "TicketKeys",
]

_KEY_ID_LEN: Final = 8
_NONCE_LEN: Final = 12
# 2: the client's certificate chain was added (client authentication).
# 3: max_early_data_size was added (0-RTT).
_STATE_VERSION: Final = 3
# created_at (a double), lifetime and ticket_age_add (uint32 each), together.
_TIMES: Final = struct.Struct(">dII")


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionState:
    """What a ticket carries back to the server (sealed; the client cannot read it).

    Attributes:
        cipher_suite: the suite of the original connection (its hash binds the PSK).
        psk: the resumption PSK derived for this ticket.
        created_at: server wall-clock time the ticket was issued (seconds).
        lifetime: seconds the ticket may be used for.
        ticket_age_add: the obfuscation value sent with the ticket.
        alpn_protocol: ALPN of the original connection (must match on resumption).
        server_name: SNI of the original connection (must match on resumption).
        client_chain: the certificate chain (DER, leaf first) the client
            authenticated with in the original connection; empty when it
            did not authenticate, or its chain did not verify cleanly. A
            server that requests client certificates verifies it again before
            resuming (see :doc:`/verification`).
        max_early_data_size: the 0-RTT bytes the ticket allowed when it was
            issued (0: none); the limit enforced when it brings early data.
    """

    cipher_suite: int
    psk: bytes = field(repr=False)
    created_at: float
    lifetime: int
    ticket_age_add: int
    alpn_protocol: str | None
    server_name: str | None
    client_chain: tuple[bytes, ...] = field(default=(), repr=False)
    max_early_data_size: int = 0

    def encode(self) -> bytes:
        """Serialize for sealing."""
        w = Writer()
        w.u8(_STATE_VERSION)
        w.u16(self.cipher_suite)
        w.vec8(self.psk)
        w.write(_TIMES.pack(self.created_at, self.lifetime, self.ticket_age_add))
        w.vec8((self.alpn_protocol or "").encode())
        w.vec16((self.server_name or "").encode())
        with w.prefixed24():
            for der in self.client_chain:
                w.vec24(der)
        w.u32(self.max_early_data_size)
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> SessionState:
        """Parse what :meth:`encode` wrote (only ever our own, authenticated bytes)."""
        r = Reader(data, "session state")
        if r.u8("version") != _STATE_VERSION:
            raise DecodeError("session state of an unknown version")
        suite = r.u16("cipher_suite")
        psk = r.vec8("psk", min_len=32)
        created_at, lifetime, age_add = _TIMES.unpack(
            r.read(_TIMES.size, "created_at, lifetime and ticket_age_add")
        )
        alpn = r.vec8("alpn").decode()
        name = r.vec16("server_name").decode()
        chain_r = r.sub24("client_chain")
        chain: list[bytes] = []
        while not chain_r.is_at_end():
            chain.append(chain_r.vec24("client certificate", min_len=1))
        max_early = r.u32("max_early_data_size")
        r.expect_end()
        return cls(
            cipher_suite=suite,
            psk=psk,
            created_at=float(created_at),
            lifetime=lifetime,
            ticket_age_add=age_add,
            alpn_protocol=alpn or None,
            server_name=name or None,
            client_chain=tuple(chain),
            max_early_data_size=max_early,
        )


@final
class TicketKeys:
    """The keys a server seals session tickets with.

    The first key seals new tickets; every key opens them, so after
    :meth:`rotate` the tickets issued under recent keys still resume. Give
    every server of a fleet the same keys (the ``keys`` argument, loaded
    from your own secret storage) and they resume each other's sessions.

    Args:
        keys: 32-byte keys, the current one first; a fresh random key if
            omitted.
        keep: how many keys to keep (the current one included).
    """

    __slots__ = ("_keep", "_keys", "_loaded")

    def __init__(self, keys: Sequence[bytes] | None = None, *, keep: int = 3) -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        chosen = list(keys) if keys is not None else [os.urandom(32)]
        if not chosen or any(len(k) != 32 for k in chosen):
            raise ValueError("ticket keys must be one or more 32-byte keys")
        self._keep = keep
        self._keys: list[tuple[bytes, AESGCM]] = [(_key_id(k), AESGCM(k)) for k in chosen[:keep]]
        self._loaded = keys is not None

    @property
    def loaded(self) -> bool:
        """Whether any key came from the caller: tickets under it may predate this process."""
        return self._loaded

    @property
    def key_ids(self) -> tuple[bytes, ...]:
        """Identifiers of the keys held, current first (not secret)."""
        return tuple(key_id for key_id, _ in self._keys)

    def rotate(self, new_key: bytes | None = None) -> None:
        """Make ``new_key`` (or a fresh random key) current; drop the oldest past ``keep``."""
        key = new_key if new_key is not None else os.urandom(32)
        if len(key) != 32:
            raise ValueError("a ticket key is 32 bytes")
        self._loaded = self._loaded or new_key is not None
        self._keys.insert(0, (_key_id(key), AESGCM(key)))
        del self._keys[self._keep :]

    def seal(self, state: SessionState, nonce: bytes) -> bytes:
        """A ticket for ``state``, sealed under the current key with ``nonce`` (12 bytes)."""
        key_id, aead = self._keys[0]
        return key_id + nonce + aead.encrypt(nonce, state.encode(), key_id)

    def open(self, ticket: bytes) -> SessionState | None:
        """The state in ``ticket``, or None if no key of ours sealed it (or it was altered)."""
        if len(ticket) < _KEY_ID_LEN + _NONCE_LEN + 16:
            return None
        key_id = ticket[:_KEY_ID_LEN]
        nonce = ticket[_KEY_ID_LEN : _KEY_ID_LEN + _NONCE_LEN]
        for candidate_id, aead in self._keys:
            if candidate_id == key_id:
                try:
                    plaintext = aead.decrypt(nonce, ticket[_KEY_ID_LEN + _NONCE_LEN :], key_id)
                except InvalidTag:
                    return None
                try:
                    return SessionState.decode(plaintext)
                except DecodeError:
                    return None
        return None


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"triotls ticket key id\x00" + key).digest()[:_KEY_ID_LEN]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientSession:
    """A ticket the client can offer to resume a session.

    Attributes:
        ticket: the opaque ticket.
        psk: the resumption PSK that goes with it.
        cipher_suite: the suite of the original connection.
        ticket_age_add: the server's age obfuscation value.
        lifetime: seconds the server allows the ticket for.
        received_at: client wall-clock time the ticket arrived.
        alpn_protocol: ALPN of the original connection.
        server_name: the name the original connection verified.
        peer_certificates: the chain the server sent then (kept for reporting).
        verified_chain: the path validated then, or None if it was not verified.
        verified_under: what that validation depended on in the client's
            configuration (trust store, name check, OCSP and chain policy): the
            session is offered only by a client configured the same way, since
            resuming checks nothing again.
        max_early_data_size: 0-RTT bytes the server would accept (0: none).
    """

    ticket: bytes = field(repr=False)
    psk: bytes = field(repr=False)
    cipher_suite: int
    ticket_age_add: int = field(repr=False)
    lifetime: int
    received_at: float
    alpn_protocol: str | None
    server_name: str | None
    peer_certificates: tuple[x509.Certificate, ...] = field(default=(), repr=False)
    verified_chain: tuple[x509.Certificate, ...] | None = field(default=None, repr=False)
    verified_under: tuple[object, ...] = field(default=(), repr=False, compare=False)
    max_early_data_size: int = 0

    def is_usable_at(self, now: float) -> bool:
        """Whether the ticket has not expired at ``now``."""
        return self.received_at <= now < self.received_at + self.lifetime

    def obfuscated_age(self, now: float) -> int:
        """obfuscated_ticket_age for an offer at ``now`` (RFC 8446 §4.2.11.1)."""
        age_ms = max(0, int((now - self.received_at) * 1000))
        return (age_ms + self.ticket_age_add) % 2**32


@final
class SessionCache:
    """A bounded cache of client sessions, keyed by server (and ALPN).

    Sessions are single use by default (RFC 8446 appendix C.4: a ticket
    reused across connections lets an observer link them), and expired ones
    are never offered.

    Args:
        max_entries: keys kept; the least recently stored go first.
        per_key: tickets kept per key (servers usually send two).
        single_use: remove a ticket when it is offered.
    """

    __slots__ = ("_entries", "max_entries", "per_key", "single_use")

    def __init__(
        self, max_entries: int = 256, *, per_key: int = 4, single_use: bool = True
    ) -> None:
        if max_entries < 1 or per_key < 1:
            raise ValueError("max_entries and per_key must be at least 1")
        self.max_entries = max_entries
        self.per_key = per_key
        self.single_use = single_use
        self._entries: OrderedDict[Hashable, list[ClientSession]] = OrderedDict()

    def __len__(self) -> int:
        return sum(len(v) for v in self._entries.values())

    def store(self, key: Hashable, session: ClientSession) -> None:
        """Keep ``session`` for connections to ``key``."""
        sessions = self._entries.pop(key, [])
        sessions.append(session)
        del sessions[: -self.per_key]
        self._entries[key] = sessions
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def take(
        self,
        key: Hashable,
        now: float,
        usable: Callable[[ClientSession], bool] | None = None,
    ) -> ClientSession | None:
        """The newest unexpired session for ``key`` that ``usable`` accepts (removed if single use).

        Sessions ``usable`` refuses (made under another configuration that
        shares this cache, say) stay for the connections that can use them.
        """
        sessions = self._entries.get(key)
        if not sessions:
            return None
        sessions[:] = [s for s in sessions if s.is_usable_at(now)]
        if not sessions:
            del self._entries[key]
            return None
        for index in range(len(sessions) - 1, -1, -1):
            session = sessions[index]
            if usable is None or usable(session):
                break
        else:
            return None
        if self.single_use:
            del sessions[index]
            if not sessions:
                del self._entries[key]
        return session


class ReplayGuard(Protocol):
    """Remembers which 0-RTT offers a server has already accepted (RFC 8446 §8).

    A server accepts early data only when :meth:`first_use` says the offer
    is new. Servers that share :class:`TicketKeys` must share one guard
    too (an implementation over a shared store), or a ClientHello captured
    on its way to one server can be replayed to another.
    """

    def first_use(self, key: bytes, now: float, keep_for: float) -> bool:
        """Record ``key`` for ``keep_for`` seconds from ``now``; whether it was new.

        Return False as well when the key cannot be recorded (a full
        store): refusing 0-RTT is always safe, forgetting an entry is not.
        """
        ...


@final
class ReplayCache:
    """An in-process strike register for 0-RTT offers (RFC 8446 §8.1, §8.2).

    The server keys it by the ticket, so a ticket brings early data at most
    once, and keeps each entry only as long as the ticket-age freshness
    check could still pass for a copy of the same ClientHello; after that
    the freshness check refuses the copy by itself. When ``max_entries``
    live entries are held, new offers are refused 0-RTT (they still resume
    with a full round trip) rather than evicting a live entry, which would
    reopen a replay window.

    A register that starts empty cannot know what it saw before it started:
    given ``started_at``, it refuses every offer until an entry from before
    then would have expired (RFC 8446 §8.2: a freshly started server SHOULD
    reject 0-RTT while its recording window overlaps its start). That
    matters when the ticket keys outlive the process; ServerConfig passes it
    when its ``ticket_keys`` were loaded (:attr:`TicketKeys.loaded`).

    Args:
        max_entries: the most offers remembered at once.
        started_at: when the register started (the server's clock), or None
            when no ticket it will see can predate it.
    """

    __slots__ = ("_entries", "max_entries", "started_at")

    def __init__(self, max_entries: int = 65_536, *, started_at: float | None = None) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.started_at = started_at
        # key -> expiry, in insertion order; expiries only grow when the
        # clock does, and a clock stepping back only keeps entries longer.
        self._entries: OrderedDict[bytes, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def first_use(self, key: bytes, now: float, keep_for: float) -> bool:
        """Record ``key``; False if it is already recorded, there is no room, or it is too early."""
        if self.started_at is not None and now < self.started_at + keep_for:
            return False  # what was recorded before the start is unknown
        entries = self._entries
        while entries:
            oldest, expiry = next(iter(entries.items()))
            if expiry > now:
                break
            del entries[oldest]
        known = entries.get(key)
        if known is not None:
            if known > now:
                return False
            del entries[key]  # expired behind a live entry: re-add at the end
        if len(entries) >= self.max_entries:
            return False
        entries[key] = now + keep_for
        return True
