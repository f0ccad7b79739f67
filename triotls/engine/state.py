"""Handshake state base classes and what a completed handshake negotiated."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from cryptography import x509

from .enums import CipherSuite, HandshakeType, NamedGroup, PskKeyExchangeMode, SignatureScheme
from .status import VerificationResult

if TYPE_CHECKING:
    from .connection import Connection
    from .messages import HandshakeMessage

__all__ = ["EarlyDataStatus", "HandshakeKind", "Negotiated", "State"]


class HandshakeKind(enum.Enum):
    """Which kind of handshake established the connection."""

    FULL = "full"
    FULL_WITH_HELLO_RETRY_REQUEST = "full with HelloRetryRequest"
    RESUMED = "resumed"
    RESUMED_WITH_HELLO_RETRY_REQUEST = "resumed with HelloRetryRequest"


class EarlyDataStatus(enum.Enum):
    """What became of 0-RTT early data (RFC 8446 §4.2.10)."""

    NOT_OFFERED = "not offered"
    """The ClientHello offered no early data."""
    ACCEPTED = "accepted"
    """The server accepted the early data: it was delivered as 0-RTT data."""
    REJECTED = "rejected"
    """The server refused the early data and discarded it unread."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Negotiated:
    """The parameters a completed handshake settled on.

    Attributes:
        version: the protocol version (0x0304 for TLS 1.3).
        cipher_suite: the cipher suite.
        group: the key exchange group; None when a resumption made no key
            exchange (``psk_key_exchange_mode`` is ``PSK_KE``).
        signature_scheme: the scheme the server (or, server side, the client)
            signed the handshake with, if any.
        alpn_protocol: the ALPN protocol, or None.
        server_name: server side, the SNI host name the client sent (or None);
            client side, the ``server_hostname`` it connected to, which is
            not sent as SNI when it is an IP address.
        peer_certificates: the chain the peer sent, leaf first (empty if none).
        verified_chain: the validated path to a trusted root, or None when the
            peer was not verified.
        handshake_kind: full or resumed, with or without HelloRetryRequest.
        verification: how the peer's chain verified: its status, reasons and
            chains. None when the peer was not verified: a client with
            ``verify_peer=False``, or a server that did not request a client
            certificate or got none (``client_auth``). Also
            set when the status is not clean: with ``verify_mode="report"``,
            or when a ``verify_callback`` accepted the chain. A resumed
            session reports, on the client, the clean result of the
            handshake that issued its ticket (tickets are kept only from
            those); on a server requesting client certificates, the result
            of verifying the chain the ticket carries again.
        early_data: whether the client offered 0-RTT data and whether the
            server accepted it.
        psk_key_exchange_mode: how a resumed handshake made its keys
            (RFC 8446 §4.2.9): ``PSK_DHE_KE``, with a fresh (EC)DHE key
            exchange, or ``PSK_KE``, from the PSK alone, without forward
            secrecy (only when both sides listed ``"psk_ke"`` in
            ``psk_key_exchange_modes``). None for a full handshake.
    """

    version: int
    cipher_suite: CipherSuite
    group: NamedGroup | None
    signature_scheme: SignatureScheme | None
    alpn_protocol: str | None
    server_name: str | None
    peer_certificates: tuple[x509.Certificate, ...]
    verified_chain: tuple[x509.Certificate, ...] | None
    handshake_kind: HandshakeKind
    verification: VerificationResult | None = None
    early_data: EarlyDataStatus = EarlyDataStatus.NOT_OFFERED
    psk_key_exchange_mode: PskKeyExchangeMode | None = None

    @property
    def resumed(self) -> bool:
        """Whether the session was resumed from a ticket."""
        return self.handshake_kind in (
            HandshakeKind.RESUMED,
            HandshakeKind.RESUMED_WITH_HELLO_RETRY_REQUEST,
        )


class State:
    """One handshake state: which messages it accepts and what follows each.

    ``Connection`` is the only dispatcher: it checks ``msg.msg_type in
    state.expects`` before calling :meth:`handle`, and replaces its state with
    the result.
    """

    expects: ClassVar[frozenset[HandshakeType]] = frozenset()

    def handle(self, msg: HandshakeMessage, conn: Connection) -> State:
        """Process ``msg`` and return the next state."""
        raise NotImplementedError
