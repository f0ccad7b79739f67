"""The sans-IO TLS 1.3 engine: bytes in, bytes and events out. Never imports trio."""

from __future__ import annotations

from . import events as events
from .client import ClientConnection as ClientConnection
from .connection import Connection as Connection
from .server import ServerConnection as ServerConnection
from .state import EarlyDataStatus as EarlyDataStatus
from .state import HandshakeKind as HandshakeKind
from .state import Negotiated as Negotiated
