"""The triotls error hierarchy, rooted at :class:`TLSError`.

This module never imports trio: the trio layer adds ``trio.BrokenResourceError``
to these classes on the way out of a stream (see ``stream.py``).

* :class:`LocalAlert` subclasses are errors *we* detected; each names the alert
  that was sent to the peer (``alert``).
* :class:`AlertReceived` is a fatal alert the *peer* sent us.
* :class:`CertificateVerificationError` carries why the peer's chain failed:
  its ``VerificationStatus`` flags and the reasons.
"""

from __future__ import annotations

from typing import ClassVar

from .engine.enums import AlertDescription
from .engine.status import VerificationResult, VerificationStatus

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
    "DecodeError",
    "DecryptError",
    "HandshakeFailure",
    "IllegalParameter",
    "InappropriateFallback",
    "InsufficientSecurity",
    "InternalError",
    "LocalAlert",
    "MissingExtension",
    "NoApplicationProtocol",
    "ProtocolVersionError",
    "RecordOverflow",
    "TLSError",
    "TruncationError",
    "UnexpectedMessage",
    "UnknownCA",
    "UnknownPskIdentity",
    "UnrecognizedName",
    "UnsupportedCertificate",
    "UnsupportedExtension",
    "UsageError",
]


class TLSError(Exception):
    """Base class of every error triotls raises.

    Attributes:
        events: when raised by ``receive_data``, the events that the same
            call produced before the failure (for example application data
            that arrived just before a fatal alert), so nothing authentic is
            lost. Empty otherwise.
    """

    events: tuple[object, ...] = ()


class UsageError(TLSError, RuntimeError):
    """The API was called in a way the connection's state does not allow.

    For example sending application data before the handshake completed, or
    after ``close()``. No alert is sent; the connection is not harmed.
    """


class TruncationError(TLSError):
    """The transport ended without a close_notify alert from the peer.

    Data received up to that point is authentic, but an attacker (or a careless
    peer) may have cut the stream short. Protocols that frame their own data
    (HTTP/1.1 with Content-Length) may allow this; see ``https_compatible``.
    """


class AlertReceived(TLSError):
    """The peer sent a fatal alert; the connection is over.

    Attributes:
        description: the alert description code (an ``AlertDescription`` when
            known, else the plain integer the peer sent).
    """

    def __init__(self, description: int) -> None:
        self.description: int = description
        try:
            name = AlertDescription(description).name.lower()
        except ValueError:
            name = f"unknown alert {description}"
        super().__init__(f"the peer sent a fatal alert: {name} ({description})")


class LocalAlert(TLSError):
    """An error we detected; the connection sent the peer the alert ``alert``."""

    alert: ClassVar[AlertDescription] = AlertDescription.INTERNAL_ERROR

    @property
    def sent_alert(self) -> AlertDescription:
        """The alert description sent to the peer for this error."""
        return self.alert


class UnexpectedMessage(LocalAlert):
    """A message arrived that is not allowed at this point of the protocol."""

    alert = AlertDescription.UNEXPECTED_MESSAGE


class BadRecordMac(LocalAlert):
    """A record failed authentication (AEAD tag mismatch)."""

    alert = AlertDescription.BAD_RECORD_MAC


class RecordOverflow(LocalAlert):
    """A record was longer than the protocol or the negotiated limit allows."""

    alert = AlertDescription.RECORD_OVERFLOW


class HandshakeFailure(LocalAlert):
    """No acceptable set of security parameters could be negotiated."""

    alert = AlertDescription.HANDSHAKE_FAILURE


class BadCertificate(LocalAlert):
    """A certificate was corrupt or its signature did not verify."""

    alert = AlertDescription.BAD_CERTIFICATE


class UnsupportedCertificate(LocalAlert):
    """A certificate was of a type we cannot use."""

    alert = AlertDescription.UNSUPPORTED_CERTIFICATE


class CertificateRevoked(LocalAlert):
    """A certificate was revoked by its signer."""

    alert = AlertDescription.CERTIFICATE_REVOKED


class CertificateExpired(LocalAlert):
    """A certificate has expired or is not yet valid."""

    alert = AlertDescription.CERTIFICATE_EXPIRED


class CertificateUnknown(LocalAlert):
    """A certificate was unacceptable for some other reason."""

    alert = AlertDescription.CERTIFICATE_UNKNOWN


class IllegalParameter(LocalAlert):
    """A field was well formed but its value is not allowed here."""

    alert = AlertDescription.ILLEGAL_PARAMETER


class UnknownCA(LocalAlert):
    """The peer's chain does not lead to a trusted certificate authority."""

    alert = AlertDescription.UNKNOWN_CA


class AccessDenied(LocalAlert):
    """The peer was identified but is not allowed in."""

    alert = AlertDescription.ACCESS_DENIED


class DecodeError(LocalAlert):
    """A message could not be parsed: wrong length, field out of range, ..."""

    alert = AlertDescription.DECODE_ERROR


class DecryptError(LocalAlert):
    """A handshake signature or Finished MAC did not verify."""

    alert = AlertDescription.DECRYPT_ERROR


class ProtocolVersionError(LocalAlert):
    """The peer does not speak a protocol version we accept."""

    alert = AlertDescription.PROTOCOL_VERSION


class InsufficientSecurity(LocalAlert):
    """The peer offered only parameters weaker than we accept."""

    alert = AlertDescription.INSUFFICIENT_SECURITY


class InternalError(LocalAlert):
    """A bug in triotls (the original exception is the ``__cause__``)."""

    alert = AlertDescription.INTERNAL_ERROR


class InappropriateFallback(LocalAlert):
    """A downgrade was detected."""

    alert = AlertDescription.INAPPROPRIATE_FALLBACK


class MissingExtension(LocalAlert):
    """A message lacks an extension that the protocol requires."""

    alert = AlertDescription.MISSING_EXTENSION


class UnsupportedExtension(LocalAlert):
    """A message carries an extension that is not allowed in it."""

    alert = AlertDescription.UNSUPPORTED_EXTENSION


class UnrecognizedName(LocalAlert):
    """The server has no certificate for the requested server name."""

    alert = AlertDescription.UNRECOGNIZED_NAME


class UnknownPskIdentity(LocalAlert):
    """No acceptable PSK identity was offered."""

    alert = AlertDescription.UNKNOWN_PSK_IDENTITY


class CertificateRequired(LocalAlert):
    """The server requires a client certificate and none was sent."""

    alert = AlertDescription.CERTIFICATE_REQUIRED


class NoApplicationProtocol(LocalAlert):
    """ALPN found no protocol that both sides support (RFC 7301 §3.2)."""

    alert = AlertDescription.NO_APPLICATION_PROTOCOL


class CertificateVerificationError(LocalAlert):
    """The peer's certificate chain or identity did not verify.

    The message names every flag in plain words, then gives the reasons.

    Attributes:
        status: every reason the chain failed, as a
            :class:`~triotls.engine.status.VerificationStatus`; 0 when the
            chain verified but a ``verify_callback`` refused it (or failed).
        reasons: human-readable reasons, the verifier's own message first.
        result: the whole :class:`~triotls.engine.status.VerificationResult`
            (with the peer's chain), or None when the error did not come
            from verifying one.
    """

    alert = AlertDescription.BAD_CERTIFICATE

    def __init__(
        self,
        message: str,
        *,
        alert: AlertDescription = AlertDescription.BAD_CERTIFICATE,
        reasons: tuple[str, ...] = (),
        status: VerificationStatus = VerificationStatus.INVALID,
        result: VerificationResult | None = None,
    ) -> None:
        super().__init__(message)
        self._alert = alert
        self.reasons = reasons
        self.status = status
        self.result = result

    @property
    def sent_alert(self) -> AlertDescription:
        """The alert description sent to the peer for this error."""
        return self._alert
