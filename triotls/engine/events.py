"""Events the engine returns from ``receive_data``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509

    from .status import VerificationResult
    from .tickets import ClientSession

__all__ = [
    "ApplicationData",
    "CertificateRequested",
    "ClientCertificateReceived",
    "CloseNotify",
    "EarlyDataReceived",
    "Event",
    "HandshakeComplete",
    "KeyUpdated",
    "NewSessionTicketReceived",
]


@dataclass(frozen=True, slots=True)
class Event:
    """Base class of engine events."""


@dataclass(frozen=True, slots=True)
class HandshakeComplete(Event):
    """The handshake finished; ``connection.negotiated`` is now set."""


@dataclass(frozen=True, slots=True)
class ApplicationData(Event):
    """Decrypted application data from the peer."""

    data: bytes


@dataclass(frozen=True, slots=True)
class EarlyDataReceived(Event):
    """Server side: 0-RTT application data the client sent with its ClientHello.

    It arrives before the handshake completes and may be a replay (RFC 8446
    §8: the anti-replay store makes that unlikely, not impossible across a
    fleet without a shared store); act on it only if the request is safe to
    repeat.
    """

    data: bytes


@dataclass(frozen=True, slots=True)
class CloseNotify(Event):
    """The peer sent close_notify: it will send nothing more (RFC 8446 §6.1)."""


@dataclass(frozen=True, slots=True)
class KeyUpdated(Event):
    """The peer updated its sending keys (we answer, if it asked, with our next data)."""

    update_requested: bool


@dataclass(frozen=True, slots=True)
class NewSessionTicketReceived(Event):
    """The server sent a session ticket; offer ``session`` to resume later.

    (TLSStream stores it in ``config.session_cache`` by itself.)
    """

    lifetime: int
    session: ClientSession | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class CertificateRequested(Event):
    """Client side: the server asked for a certificate after the handshake.

    The answer (RFC 8446 §4.6.2: Certificate, CertificateVerify when a
    certificate fits the request, and Finished) is already queued in
    ``data_to_send()``.
    """

    certificate_sent: bool


@dataclass(frozen=True, slots=True)
class ClientCertificateReceived(Event):
    """Server side: the client answered a post-handshake CertificateRequest.

    Its CertificateVerify and Finished have verified. ``peer_certificates``
    is empty and ``verification`` None when the client declined; otherwise
    ``verification`` is how the chain verified against ``client_trust``
    (a chain that ``client_verify_mode`` refuses fails the connection
    instead). What to do with a client that declined is the application's
    decision.
    """

    peer_certificates: tuple[x509.Certificate, ...]
    verification: VerificationResult | None
