"""Events the engine returns from ``receive_data``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .tickets import ClientSession

__all__ = [
    "ApplicationData",
    "CloseNotify",
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
class CloseNotify(Event):
    """The peer sent close_notify: it will send nothing more (RFC 8446 §6.1)."""


@dataclass(frozen=True, slots=True)
class KeyUpdated(Event):
    """The peer updated its sending keys (and we answered if it asked)."""

    update_requested: bool


@dataclass(frozen=True, slots=True)
class NewSessionTicketReceived(Event):
    """The server sent a session ticket; offer ``session`` to resume later.

    (TLSStream stores it in ``config.session_cache`` by itself.)
    """

    lifetime: int
    session: ClientSession | None = field(default=None, compare=False)
