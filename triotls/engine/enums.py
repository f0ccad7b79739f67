"""Wire code points of TLS 1.3 (RFC 8446 appendix B) and friends.

Peer-supplied values stay plain ``int`` until they are matched against our own
supported set (RFC 8701 GREASE values must pass through untouched).
"""

from __future__ import annotations

from enum import IntEnum


class ContentType(IntEnum):
    """TLS record content types (RFC 8446 §5.1)."""

    INVALID = 0
    CHANGE_CIPHER_SPEC = 20
    ALERT = 21
    HANDSHAKE = 22
    APPLICATION_DATA = 23


class HandshakeType(IntEnum):
    """Handshake message types (RFC 8446 §4, B.3)."""

    CLIENT_HELLO = 1
    SERVER_HELLO = 2
    NEW_SESSION_TICKET = 4
    END_OF_EARLY_DATA = 5
    ENCRYPTED_EXTENSIONS = 8
    CERTIFICATE = 11
    CERTIFICATE_REQUEST = 13
    CERTIFICATE_VERIFY = 15
    FINISHED = 20
    KEY_UPDATE = 24
    MESSAGE_HASH = 254


class AlertLevel(IntEnum):
    """Alert levels (RFC 8446 §6)."""

    WARNING = 1
    FATAL = 2


class AlertDescription(IntEnum):
    """Alert descriptions (RFC 8446 §6)."""

    CLOSE_NOTIFY = 0
    UNEXPECTED_MESSAGE = 10
    BAD_RECORD_MAC = 20
    RECORD_OVERFLOW = 22
    HANDSHAKE_FAILURE = 40
    BAD_CERTIFICATE = 42
    UNSUPPORTED_CERTIFICATE = 43
    CERTIFICATE_REVOKED = 44
    CERTIFICATE_EXPIRED = 45
    CERTIFICATE_UNKNOWN = 46
    ILLEGAL_PARAMETER = 47
    UNKNOWN_CA = 48
    ACCESS_DENIED = 49
    DECODE_ERROR = 50
    DECRYPT_ERROR = 51
    PROTOCOL_VERSION = 70
    INSUFFICIENT_SECURITY = 71
    INTERNAL_ERROR = 80
    INAPPROPRIATE_FALLBACK = 86
    USER_CANCELED = 90
    MISSING_EXTENSION = 109
    UNSUPPORTED_EXTENSION = 110
    UNRECOGNIZED_NAME = 112
    BAD_CERTIFICATE_STATUS_RESPONSE = 113
    UNKNOWN_PSK_IDENTITY = 115
    CERTIFICATE_REQUIRED = 116
    NO_APPLICATION_PROTOCOL = 120


class ExtensionType(IntEnum):
    """Extension code points used by triotls (RFC 8446 §4.2 and others)."""

    SERVER_NAME = 0x0000
    MAX_FRAGMENT_LENGTH = 0x0001
    STATUS_REQUEST = 0x0005
    SUPPORTED_GROUPS = 0x000A
    EC_POINT_FORMATS = 0x000B
    SIGNATURE_ALGORITHMS = 0x000D
    USE_SRTP = 0x000E
    HEARTBEAT = 0x000F
    APPLICATION_LAYER_PROTOCOL_NEGOTIATION = 0x0010
    SIGNED_CERTIFICATE_TIMESTAMP = 0x0012
    CLIENT_CERTIFICATE_TYPE = 0x0013
    SERVER_CERTIFICATE_TYPE = 0x0014
    PADDING = 0x0015
    ENCRYPT_THEN_MAC = 0x0016
    EXTENDED_MASTER_SECRET = 0x0017
    RECORD_SIZE_LIMIT = 0x001C
    SESSION_TICKET = 0x0023
    PRE_SHARED_KEY = 0x0029
    EARLY_DATA = 0x002A
    SUPPORTED_VERSIONS = 0x002B
    COOKIE = 0x002C
    PSK_KEY_EXCHANGE_MODES = 0x002D
    CERTIFICATE_AUTHORITIES = 0x002F
    OID_FILTERS = 0x0030
    POST_HANDSHAKE_AUTH = 0x0031
    SIGNATURE_ALGORITHMS_CERT = 0x0032
    KEY_SHARE = 0x0033
    RENEGOTIATION_INFO = 0xFF01


class CipherSuite(IntEnum):
    """TLS 1.3 cipher suites (RFC 8446 §B.4)."""

    TLS_AES_128_GCM_SHA256 = 0x1301
    TLS_AES_256_GCM_SHA384 = 0x1302
    TLS_CHACHA20_POLY1305_SHA256 = 0x1303


class NamedGroup(IntEnum):
    """Key exchange groups (RFC 8446 §4.2.7, draft-ietf-tls-ecdhe-mlkem)."""

    SECP256R1 = 0x0017
    SECP384R1 = 0x0018
    SECP521R1 = 0x0019
    X25519 = 0x001D
    X448 = 0x001E
    X25519MLKEM768 = 0x11EC


class SignatureScheme(IntEnum):
    """Signature schemes (RFC 8446 §4.2.3)."""

    RSA_PKCS1_SHA256 = 0x0401
    RSA_PKCS1_SHA384 = 0x0501
    RSA_PKCS1_SHA512 = 0x0601
    ECDSA_SECP256R1_SHA256 = 0x0403
    ECDSA_SECP384R1_SHA384 = 0x0503
    ECDSA_SECP521R1_SHA512 = 0x0603
    RSA_PSS_RSAE_SHA256 = 0x0804
    RSA_PSS_RSAE_SHA384 = 0x0805
    RSA_PSS_RSAE_SHA512 = 0x0806
    ED25519 = 0x0807
    ED448 = 0x0808
    RSA_PSS_PSS_SHA256 = 0x0809
    RSA_PSS_PSS_SHA384 = 0x080A
    RSA_PSS_PSS_SHA512 = 0x080B
    RSA_PKCS1_SHA1 = 0x0201
    ECDSA_SHA1 = 0x0203


class PskKeyExchangeMode(IntEnum):
    """PSK key exchange modes (RFC 8446 §4.2.9)."""

    PSK_KE = 0
    PSK_DHE_KE = 1


class KeyUpdateRequest(IntEnum):
    """KeyUpdate request field (RFC 8446 §4.6.3)."""

    UPDATE_NOT_REQUESTED = 0
    UPDATE_REQUESTED = 1


class ProtocolVersion(IntEnum):
    """Protocol versions as they appear on the wire."""

    TLS10 = 0x0301
    TLS11 = 0x0302
    TLS12 = 0x0303
    TLS13 = 0x0304
