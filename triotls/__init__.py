"""triotls: TLS 1.3 for trio, with a sans-IO engine in Python on cryptography.

The engine and configuration names import without trio; the trio layer
(``TLSStream``, listeners, ``HandshakeTimeout``) loads on first use, so that
``import triotls.engine`` stays trio-free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import CertifiedKey as CertifiedKey
from .config import ClientConfig as ClientConfig
from .config import KeyLogFile as KeyLogFile
from .config import PskMode as PskMode
from .config import ReplayCache as ReplayCache
from .config import ReplayGuard as ReplayGuard
from .config import ServerConfig as ServerConfig
from .config import SessionCache as SessionCache
from .config import TicketKeys as TicketKeys
from .config import TrustStore as TrustStore
from .engine.enums import CipherSuite as CipherSuite
from .engine.enums import NamedGroup as NamedGroup
from .engine.enums import PskKeyExchangeMode as PskKeyExchangeMode
from .engine.enums import SignatureScheme as SignatureScheme
from .engine.state import EarlyDataStatus as EarlyDataStatus
from .engine.state import HandshakeKind as HandshakeKind
from .engine.state import Negotiated as Negotiated
from .engine.status import VerificationResult as VerificationResult
from .engine.status import VerificationStatus as VerificationStatus
from .errors import AccessDenied as AccessDenied
from .errors import AlertReceived as AlertReceived
from .errors import BadCertificate as BadCertificate
from .errors import BadRecordMac as BadRecordMac
from .errors import CertificateExpired as CertificateExpired
from .errors import CertificateRequired as CertificateRequired
from .errors import CertificateRevoked as CertificateRevoked
from .errors import CertificateUnknown as CertificateUnknown
from .errors import CertificateVerificationError as CertificateVerificationError
from .errors import DecodeError as DecodeError
from .errors import DecryptError as DecryptError
from .errors import HandshakeFailure as HandshakeFailure
from .errors import IllegalParameter as IllegalParameter
from .errors import InappropriateFallback as InappropriateFallback
from .errors import InsufficientSecurity as InsufficientSecurity
from .errors import InternalError as InternalError
from .errors import LocalAlert as LocalAlert
from .errors import MissingExtension as MissingExtension
from .errors import NoApplicationProtocol as NoApplicationProtocol
from .errors import ProtocolVersionError as ProtocolVersionError
from .errors import RecordOverflow as RecordOverflow
from .errors import TLSError as TLSError
from .errors import TruncationError as TruncationError
from .errors import UnexpectedMessage as UnexpectedMessage
from .errors import UnknownCA as UnknownCA
from .errors import UnknownPskIdentity as UnknownPskIdentity
from .errors import UnrecognizedName as UnrecognizedName
from .errors import UnsupportedCertificate as UnsupportedCertificate
from .errors import UnsupportedExtension as UnsupportedExtension
from .errors import UsageError as UsageError

if TYPE_CHECKING:
    from .listener import TLSListener as TLSListener
    from .listener import open_tls_over_tcp_listeners as open_tls_over_tcp_listeners
    from .listener import open_tls_over_tcp_stream as open_tls_over_tcp_stream
    from .listener import serve_tls_over_tcp as serve_tls_over_tcp
    from .stream import CloseReason as CloseReason
    from .stream import HandshakeTimeout as HandshakeTimeout
    from .stream import TLSStream as TLSStream

__version__ = "0.1.0.dev0"

_LAZY = {
    "TLSStream": "stream",
    "HandshakeTimeout": "stream",
    "CloseReason": "stream",
    "TLSListener": "listener",
    "open_tls_over_tcp_stream": "listener",
    "open_tls_over_tcp_listeners": "listener",
    "serve_tls_over_tcp": "listener",
}

__all__ = [
    "AccessDenied",
    "AlertReceived",
    "BadCertificate",
    "BadRecordMac",
    "CertificateExpired",
    "CertificateRequired",
    "CertificateRevoked",
    "CertificateUnknown",
    "CertificateVerificationError",
    "CertifiedKey",
    "CipherSuite",
    "ClientConfig",
    "CloseReason",
    "DecodeError",
    "DecryptError",
    "EarlyDataStatus",
    "HandshakeFailure",
    "HandshakeKind",
    "HandshakeTimeout",
    "IllegalParameter",
    "InappropriateFallback",
    "InsufficientSecurity",
    "InternalError",
    "KeyLogFile",
    "LocalAlert",
    "MissingExtension",
    "NamedGroup",
    "Negotiated",
    "NoApplicationProtocol",
    "ProtocolVersionError",
    "PskKeyExchangeMode",
    "PskMode",
    "RecordOverflow",
    "ReplayCache",
    "ReplayGuard",
    "ServerConfig",
    "SessionCache",
    "SignatureScheme",
    "TLSError",
    "TLSListener",
    "TLSStream",
    "TicketKeys",
    "TruncationError",
    "TrustStore",
    "UnexpectedMessage",
    "UnknownCA",
    "UnknownPskIdentity",
    "UnrecognizedName",
    "UnsupportedCertificate",
    "UnsupportedExtension",
    "UsageError",
    "VerificationResult",
    "VerificationStatus",
    "open_tls_over_tcp_listeners",
    "open_tls_over_tcp_stream",
    "serve_tls_over_tcp",
]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'triotls' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"triotls.{module}"), name)
    globals()[name] = value
    return value
