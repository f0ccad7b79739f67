"""What verifying the peer's certificate found: flags, result, and the alert they call for.

:class:`VerificationStatus` is modelled on GnuTLS's ``gnutls_certificate_status_t``:
every reason a chain failed is reported at once, as a bit set. Each flag has the
value of the ``GNUTLS_CERT_*`` flag of the same name, so ``int(status)`` reads as
a GnuTLS status; :attr:`~VerificationStatus.CHAIN_TOO_LONG` is triotls's own.
``verify.py`` computes the status; this module only names it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal, TypeAlias

from cryptography import x509

from .enums import AlertDescription

__all__ = [
    "OCSPMode",
    "VerificationResult",
    "VerificationStatus",
    "VerifyCallback",
    "VerifyMode",
    "alert_for",
]


class VerificationStatus(enum.IntFlag):
    """Why the peer's certificate chain did not verify, every reason at once.

    0 means the chain verified. :attr:`INVALID` is set whenever any other flag
    is, so ``if status:`` and ``status & VerificationStatus.INVALID`` agree.
    The values are GnuTLS's, so ``int(status)`` can be compared with what
    ``gnutls_certificate_verify_peers2`` reports. The revocation flags come
    from the caller's CRLs (``TrustStore(crls=...)``) and the OCSP response
    the server stapled (``ClientConfig.ocsp``); see ``engine/revocation.py``.
    """

    INVALID = 1 << 1
    """The chain did not verify; set together with every other flag."""
    REVOKED = 1 << 5
    """A certificate was revoked by its issuer: a CRL supplied by the caller
    lists it, or the stapled OCSP response says so."""
    SIGNER_NOT_FOUND = 1 << 6
    """No issuer that signed a certificate was found among the supplied
    intermediates and the trust anchors. An unknown CA, a missing intermediate,
    a self-signed certificate, or a signature no candidate issuer's key verifies."""
    SIGNER_NOT_CA = 1 << 7
    """A certificate was issued by one that is not a CA (basicConstraints)."""
    INSECURE_ALGORITHM = 1 << 8
    """A signature algorithm (SHA-1, ...) or key (RSA below 2048 bits, a curve
    other than P-256/P-384/P-521) outside the accepted set."""
    NOT_ACTIVATED = 1 << 9
    """A certificate is not valid yet (notBefore is after the clock's time)."""
    EXPIRED = 1 << 10
    """A certificate has expired (notAfter is before the clock's time)."""
    SIGNATURE_FAILURE = 1 << 11
    """A signature did not verify with the key of the certificate named as issuer."""
    REVOCATION_DATA_SUPERSEDED = 1 << 12
    """Revocation data is out of date: a CRL past its nextUpdate, or a stapled
    OCSP response past its nextUpdate (or too old, without one)."""
    UNEXPECTED_OWNER = 1 << 14
    """The end-entity certificate does not name the host or address connected to
    (RFC 6125), or names nobody (no subjectAltName)."""
    REVOCATION_DATA_ISSUED_IN_FUTURE = 1 << 15
    """Revocation data is dated in the future (a CRL's or OCSP response's
    thisUpdate is after the clock's time, beyond a few minutes of skew)."""
    SIGNER_CONSTRAINTS_FAILURE = 1 << 16
    """An issuer's constraints are violated (pathLenConstraint, keyUsage without
    keyCertSign, or nameConstraints)."""
    PURPOSE_MISMATCH = 1 << 18
    """A certificate may not be used for this purpose. Its extendedKeyUsage lacks
    serverAuth (or clientAuth), an end-entity keyUsage lacks digitalSignature
    or asserts keyCertSign, or a CA certificate is presented as the end entity."""
    MISSING_OCSP_STATUS = 1 << 19
    """An OCSP status was required but none came: the configuration requires
    one (``ocsp="require"``), or the leaf has the must-staple TLS feature
    (RFC 7633) and the client asked for one."""
    INVALID_OCSP_STATUS = 1 << 20
    """The stapled OCSP response is unusable: not successful, about another
    certificate, signed by a key the issuer did not authorize, a bad
    signature, expired or not yet valid, or certStatus unknown."""
    UNKNOWN_CRIT_EXTENSIONS = 1 << 21
    """A certificate has a critical extension the verifier does not process."""
    CHAIN_TOO_LONG = 1 << 30
    """The only path to a trust anchor holds more intermediates than
    ``max_chain_depth`` allows (triotls's own; GnuTLS has no such flag)."""

    @property
    def flags(self) -> tuple[VerificationStatus, ...]:
        """The single flags set, in the order of their values."""
        # Iterating a combined flag needs Python 3.11; the class works on 3.10.
        return tuple(flag for flag in VerificationStatus if flag & self)

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the flags set, such as ``("INVALID", "EXPIRED")``."""
        return tuple(_NAMES[flag] for flag in self.flags)

    def describe(self) -> str:
        """The flags in plain words, such as ``"expired, name mismatch"``.

        ``INVALID`` is left out when another flag says more; a clean status is
        ``"verified"``.
        """
        flags = self.flags
        if len(flags) > 1:
            flags = tuple(flag for flag in flags if flag != VerificationStatus.INVALID)
        if not flags:
            return "verified"
        return ", ".join(_WORDS[flag] for flag in flags)


VerifyMode: TypeAlias = Literal["required", "report"]
"""Whether a chain that did not verify stops the handshake.

``"required"`` aborts it with the alert :func:`alert_for` picks; ``"report"``
completes it and leaves the decision to the caller, who reads
``verification`` afterwards."""


OCSPMode: TypeAlias = Literal["off", "request", "require"]
"""Whether a client asks the server to staple an OCSP response, and insists.

``"off"`` does not ask (and the must-staple TLS feature is not enforced, as
RFC 7633 §4.2.3.1 ties it to the request); ``"request"`` (the default, what
browsers do) asks, checks a response that comes, and requires one only for a
must-staple leaf; ``"require"`` refuses a chain without a valid response
(MISSING_OCSP_STATUS)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VerificationResult:
    """The outcome of verifying the peer's certificate chain.

    Attributes:
        status: every reason the chain failed; 0 when it verified.
        reasons: what went wrong, one sentence each, the verifier's own
            message first; empty when the chain verified.
        chain: the certificates as the peer sent them, leaf first.
        verified_chain: the validated path from the leaf to a trust anchor,
            or None when the chain did not verify.
        server_name: the host name or IP address the leaf was checked
            against, or None when the name was not checked.
        ocsp_response: the DER OCSPResponse the peer stapled to its leaf
            (RFC 8446 §4.4.2.1), valid or not, or None when it sent none.
            Load it with ``cryptography.x509.ocsp.load_der_ocsp_response``.
    """

    status: VerificationStatus
    reasons: tuple[str, ...]
    chain: tuple[x509.Certificate, ...] = field(repr=False)
    verified_chain: tuple[x509.Certificate, ...] | None = field(repr=False)
    server_name: str | None
    ocsp_response: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if bool(self.status) == (self.verified_chain is not None):
            raise ValueError("a verified_chain goes with a clean status, and only with one")
        if self.status and not self.status & VerificationStatus.INVALID:
            raise ValueError("INVALID must be set together with every other flag")

    @property
    def is_valid(self) -> bool:
        """Whether the chain verified (``status`` is 0)."""
        return not self.status

    @property
    def alert(self) -> AlertDescription:
        """The alert a handshake refusing this chain sends (see :func:`alert_for`)."""
        return alert_for(self.status)


VerifyCallback: TypeAlias = Callable[[VerificationResult], bool]
"""Decides, during the handshake, whether to go on with the peer's chain.

Called with the :class:`VerificationResult` whether or not the chain verified;
returning ``True`` accepts the chain, anything else rejects it."""


def alert_for(status: VerificationStatus) -> AlertDescription:
    """The alert to send when refusing a chain with ``status`` (RFC 8446 §6.2).

    The first row that matches wins: REVOKED gives certificate_revoked;
    EXPIRED or NOT_ACTIVATED certificate_expired; SIGNER_NOT_FOUND or
    CHAIN_TOO_LONG unknown_ca; MISSING_OCSP_STATUS or INVALID_OCSP_STATUS
    bad_certificate_status_response; REVOCATION_DATA_SUPERSEDED or
    REVOCATION_DATA_ISSUED_IN_FUTURE certificate_unknown; any other flag (INSECURE_ALGORITHM
    included, as RFC 8446 §4.4.2.4 asks for SHA-1) bad_certificate. A clean
    status that the application refused anyway gives certificate_unknown.
    """
    for flags, alert in _ALERT_PRIORITY:
        if status & flags:
            return alert
    if status:
        return AlertDescription.BAD_CERTIFICATE
    # RFC 8446 §6.2: "some other (unspecified) issue ... rendering it
    # unacceptable": the chain verified, and the application said no.
    return AlertDescription.CERTIFICATE_UNKNOWN


_S = VerificationStatus

_ALERT_PRIORITY: Final[tuple[tuple[VerificationStatus, AlertDescription], ...]] = (
    (_S.REVOKED, AlertDescription.CERTIFICATE_REVOKED),
    (_S.EXPIRED | _S.NOT_ACTIVATED, AlertDescription.CERTIFICATE_EXPIRED),
    (_S.SIGNER_NOT_FOUND | _S.CHAIN_TOO_LONG, AlertDescription.UNKNOWN_CA),
    (
        _S.MISSING_OCSP_STATUS | _S.INVALID_OCSP_STATUS,
        AlertDescription.BAD_CERTIFICATE_STATUS_RESPONSE,
    ),
    # RFC 8446 §6.2, certificate_unknown: "some other (unspecified) issue
    # arose in processing the certificate": the certificate may be fine, but
    # the revocation data to judge it by is not current.
    (
        _S.REVOCATION_DATA_SUPERSEDED | _S.REVOCATION_DATA_ISSUED_IN_FUTURE,
        AlertDescription.CERTIFICATE_UNKNOWN,
    ),
)

_WORDS: Final[dict[VerificationStatus, str]] = {
    _S.INVALID: "invalid",
    _S.REVOKED: "revoked",
    _S.SIGNER_NOT_FOUND: "issuer unknown",
    _S.SIGNER_NOT_CA: "issuer is not a CA",
    _S.INSECURE_ALGORITHM: "insecure algorithm",
    _S.NOT_ACTIVATED: "not yet valid",
    _S.EXPIRED: "expired",
    _S.SIGNATURE_FAILURE: "bad signature",
    _S.REVOCATION_DATA_SUPERSEDED: "revocation data out of date",
    _S.REVOCATION_DATA_ISSUED_IN_FUTURE: "revocation data from the future",
    _S.UNEXPECTED_OWNER: "name mismatch",
    _S.SIGNER_CONSTRAINTS_FAILURE: "issuer constraints violated",
    _S.PURPOSE_MISMATCH: "wrong purpose",
    _S.MISSING_OCSP_STATUS: "OCSP status missing",
    _S.INVALID_OCSP_STATUS: "OCSP status invalid",
    _S.UNKNOWN_CRIT_EXTENSIONS: "unknown critical extension",
    _S.CHAIN_TOO_LONG: "chain too long",
}

# Member names without relying on Flag.name, which is None for combinations
# on Python 3.10.
_NAMES: Final[dict[VerificationStatus, str]] = {flag: name for name, flag in _S.__members__.items()}
