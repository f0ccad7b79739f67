"""Revocation: caller-supplied CRLs and stapled OCSP responses, as status flags.

Theory of operation
-------------------

:func:`check_revocation` looks at a certification path (leaf first, each
certificate followed by its issuer) and returns a :class:`RevocationFinding`
per problem; ``verify.check_chain`` folds them into the
:class:`~triotls.engine.status.VerificationStatus`. It runs on the validated
path when the chain verified, and on the path the classification built by
structure otherwise, so a revoked certificate that has also expired reports
both.

**CRLs** (RFC 5280 §6.3) are the caller's, from
``TrustStore(crls=...)``. For each certificate on the path below the trust
anchor, every CRL whose issuer name is the certificate's issuer (and whose
authorityKeyIdentifier, when both are there, names the issuer's key) is
used, once its issuer checks out: keyUsage (if present) allows cRLSign, the
CRL's signature verifies with the issuer's key, and it has no critical
extension triotls does not implement (delta CRLs, indirect CRLs, reason
partitions). A CRL that fails those checks is not used and sets INVALID with
a reason: the caller supplied it, so a broken one is a configuration error
worth failing for, as OpenSSL does. A CRL whose issuingDistributionPoint
limits it to CA certificates (or end-entity ones) is not consulted for the
others. A certificate for whose issuer no CRL was supplied is not checked
(GnuTLS's behaviour; OpenSSL's ``X509_V_FLAG_CRL_CHECK`` fails it instead).

Then the CRL's dates, at the clock's time: nextUpdate in the past is
REVOCATION_DATA_SUPERSEDED, thisUpdate in the future (beyond
:data:`CLOCK_SKEW`) REVOCATION_DATA_ISSUED_IN_FUTURE, GnuTLS's flags; every
usable CRL is held to its dates. Whether the certificate is on the list is
the newest CRL's to say (RFC 5280 §6.3.3 checks the current complete CRL):
of the usable CRLs of the issuer's key with the same scope
(issuingDistributionPoint), the one with the highest cRLNumber, or the
latest thisUpdate when the numbers are absent or tie. A serial on that list
is REVOKED (certificateHold included), whatever the dates; a hold that a
newer list dropped no longer counts.

**OCSP** (RFC 6960) covers the leaf, from the response the server stapled
(RFC 8446 §4.4.2.1). The response must have status successful, hold a
SingleResponse whose CertID names the leaf's serial and its issuer (name and
key hashes recomputed with the CertID's own hash), and be signed by the
issuer or by a responder the issuer delegated to: a certificate the response
carries, issued and signed by the issuer, with extendedKeyUsage
id-kp-OCSPSigning, valid at the clock's time (RFC 6960 §4.2.2.2), whose key
meets the policy for an end entity on the path (RSA of 2048 bits or more,
P-256/384/521, EdDSA) and which has no critical extension beyond
basicConstraints, keyUsage, extendedKeyUsage, subjectAltName and
id-pkix-ocsp-nocheck (RFC 5280 §4.2). Its
signature must verify with SHA-256/384/512 or EdDSA. A response failing any
of that is INVALID_OCSP_STATUS and its content is ignored. An authentic one
is then checked for freshness: thisUpdate in the future is
INVALID_OCSP_STATUS | REVOCATION_DATA_ISSUED_IN_FUTURE; nextUpdate in the past,
or, without nextUpdate, a thisUpdate older than :data:`OCSP_MAX_AGE`, is
INVALID_OCSP_STATUS | REVOCATION_DATA_SUPERSEDED. Its certStatus revoked is
REVOKED; unknown is INVALID_OCSP_STATUS.

No response at all is MISSING_OCSP_STATUS when the configuration requires
one, or when the client asked for one and the leaf carries the TLS feature
extension with status_request (OCSP must-staple, RFC 7633 §4.2.3.1).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, SignatureAlgorithmOID

from .status import VerificationStatus

__all__ = [
    "CLOCK_SKEW",
    "OCSP_MAX_AGE",
    "RevocationFinding",
    "check_revocation",
    "has_must_staple",
]

_S = VerificationStatus
_X = TypeVar("_X", bound=x509.ExtensionType)

CLOCK_SKEW: Final = datetime.timedelta(minutes=5)
"""How far in the future a CRL's or OCSP response's thisUpdate may lie: a
responder's clock a little ahead of ours is not an error."""

OCSP_MAX_AGE: Final = datetime.timedelta(days=10)
"""The oldest an OCSP response without nextUpdate may be. Ten days is the
longest validity the CA/Browser Forum baseline requirements allow (§4.9.10)."""


@dataclass(frozen=True, slots=True)
class RevocationFinding:
    """One revocation problem: its flags (INVALID not included) and a sentence."""

    flag: VerificationStatus
    message: str


def check_revocation(
    path: Sequence[x509.Certificate],
    *,
    crls: Sequence[x509.CertificateRevocationList],
    ocsp_response: bytes | None,
    ocsp_requested: bool,
    ocsp_required: bool,
    now: float,
) -> list[RevocationFinding]:
    """Check ``path`` against ``crls`` and the leaf's stapled OCSP response.

    Args:
        path: leaf first, each certificate followed by its issuer; it may
            stop short of a trust anchor when the chain did not verify.
        crls: the caller's CRLs (any issuers).
        ocsp_response: the DER OCSPResponse stapled to the leaf, or None.
        ocsp_requested: whether status_request was sent (must-staple applies).
        ocsp_required: whether a missing response is a failure by itself.
        now: the verification time, in seconds since the epoch.

    Returns:
        Every problem found, CRLs first (leaf upwards), then OCSP.
    """
    when = datetime.datetime.fromtimestamp(now, tz=datetime.timezone.utc)
    findings: list[RevocationFinding] = []
    if crls:
        for index in range(len(path) - 1):
            cert, issuer = path[index], path[index + 1]
            issued = [crl for crl in crls if _is_crl_of(crl, cert, issuer)]
            if issued:
                findings += _crl_findings(issued, cert, issuer, when)
    leaf = path[0]
    if ocsp_response is None:
        if ocsp_required:
            findings.append(
                RevocationFinding(
                    _S.MISSING_OCSP_STATUS,
                    "the server stapled no OCSP response, and the configuration requires "
                    "one (ocsp='require')",
                )
            )
        elif ocsp_requested and has_must_staple(leaf):
            findings.append(
                RevocationFinding(
                    _S.MISSING_OCSP_STATUS,
                    f"{_describe(leaf)} requires an OCSP response (TLS feature status_request, "
                    "'must-staple', RFC 7633), and the server stapled none",
                )
            )
    elif len(path) > 1:
        # Without the issuer the response cannot be authenticated; the chain
        # already fails for that (SIGNER_NOT_FOUND).
        findings += _ocsp_findings(ocsp_response, leaf, path[1], when)
    return findings


def has_must_staple(cert: x509.Certificate) -> bool:
    """Whether ``cert`` has the TLS feature extension with status_request (RFC 7633)."""
    try:
        extensions = cert.extensions
    except _EXTENSION_ERRORS:
        return False
    # A loop rather than get_extension_for_class, whose ExtensionNotFound (the
    # usual case, on every verified chain) costs three times as much.
    for extension in extensions:
        if extension.oid == ExtensionOID.TLS_FEATURE:
            feature = extension.value
            return isinstance(feature, x509.TLSFeature) and (
                x509.TLSFeatureType.status_request in feature
            )
    return False


# --- CRLs ------------------------------------------------------------------------------------


def _is_crl_of(
    crl: x509.CertificateRevocationList, cert: x509.Certificate, issuer: x509.Certificate
) -> bool:
    if crl.issuer != cert.issuer:
        return False
    # A CA that rolled its key over keeps its name: the key identifiers tell
    # which key's list this is.
    try:
        crl_extensions: x509.Extensions | None = crl.extensions
    except _EXTENSION_ERRORS:
        return True  # refused with a reason by _unsupported_crl_feature
    aki = _extension(crl_extensions, x509.AuthorityKeyIdentifier)
    ski = _extension(_safe_extensions(issuer), x509.SubjectKeyIdentifier)
    if aki is None or aki.key_identifier is None or ski is None:
        return True
    return aki.key_identifier == ski.digest


def _crl_findings(
    crls: Sequence[x509.CertificateRevocationList],
    cert: x509.Certificate,
    issuer: x509.Certificate,
    when: datetime.datetime,
) -> list[RevocationFinding]:
    """The findings of ``issuer``'s CRLs about ``cert``.

    Each authentic CRL covering ``cert`` is held to its dates, but only the
    newest of each scope says whether ``cert`` is on the list (RFC 5280
    §6.3.3 checks the current complete CRL): a certificateHold that a newer
    list dropped no longer counts.
    """
    findings: list[RevocationFinding] = []
    usable: list[x509.CertificateRevocationList] = []
    for crl in crls:
        refusal = _crl_refusal(crl, issuer)
        if refusal is not None:
            findings.append(refusal)
        elif _crl_covers(crl, cert):
            findings += _crl_date_findings(crl, issuer, when)
            usable.append(crl)
    for crl in _newest_per_scope(usable):
        revoked = _revoked_finding(crl, cert, issuer)
        if revoked is not None:
            findings.append(revoked)
    return findings


def _crl_refusal(
    crl: x509.CertificateRevocationList, issuer: x509.Certificate
) -> RevocationFinding | None:
    """Why ``crl`` cannot be used (issuer's keyUsage, signature, features), or None."""
    crl_name = f"the CRL of {_name(issuer)}"
    usage = _extension(_safe_extensions(issuer), x509.KeyUsage)
    if usage is not None and not usage.crl_sign:
        return RevocationFinding(
            _S.INVALID,
            f"{crl_name} cannot be used: the issuer's keyUsage does not include cRLSign",
        )
    try:
        key = issuer.public_key()
        signed = isinstance(
            key,
            rsa.RSAPublicKey
            | ec.EllipticCurvePublicKey
            | ed25519.Ed25519PublicKey
            | ed448.Ed448PublicKey,
        ) and crl.is_signature_valid(key)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        signed = False
    if not signed:
        return RevocationFinding(
            _S.INVALID,
            f"{crl_name} was not used: its signature does not verify with the issuer's key",
        )
    unsupported = _unsupported_crl_feature(crl)
    if unsupported is not None:
        return RevocationFinding(_S.INVALID, f"{crl_name} was not used: {unsupported}")
    return None


def _crl_date_findings(
    crl: x509.CertificateRevocationList, issuer: x509.Certificate, when: datetime.datetime
) -> list[RevocationFinding]:
    crl_name = f"the CRL of {_name(issuer)}"
    findings: list[RevocationFinding] = []
    if crl.last_update_utc > when + CLOCK_SKEW:
        findings.append(
            RevocationFinding(
                _S.REVOCATION_DATA_ISSUED_IN_FUTURE,
                f"{crl_name} is dated in the future (thisUpdate {crl.last_update_utc})",
            )
        )
    next_update = crl.next_update_utc
    if next_update is not None and next_update < when:
        findings.append(
            RevocationFinding(
                _S.REVOCATION_DATA_SUPERSEDED,
                f"{crl_name} is out of date (nextUpdate {next_update}); supply a current one",
            )
        )
    return findings


def _revoked_finding(
    crl: x509.CertificateRevocationList, cert: x509.Certificate, issuer: x509.Certificate
) -> RevocationFinding | None:
    revoked = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    if revoked is None:
        return None
    reason = _revocation_reason(revoked)
    if reason == x509.ReasonFlags.remove_from_crl:
        return None
    detail = f", reason {reason.name}" if reason is not None else ""
    return RevocationFinding(
        _S.REVOKED,
        f"{_describe(cert)} is revoked: the CRL of {_name(issuer)} lists serial "
        f"{cert.serial_number:#x} (revoked {revoked.revocation_date_utc}{detail})",
    )


def _newest_per_scope(
    crls: Sequence[x509.CertificateRevocationList],
) -> list[x509.CertificateRevocationList]:
    """The newest of ``crls`` for each scope (issuingDistributionPoint, or none).

    Newest is the highest cRLNumber (RFC 5280 §5.2.3: it increases with each
    CRL of a scope), or the latest thisUpdate when a CRL has no number or the
    numbers tie; CRLs that tie on both are all kept.
    """
    newest: dict[x509.IssuingDistributionPoint | None, list[x509.CertificateRevocationList]]
    newest = {}
    for crl in crls:
        kept = newest.setdefault(_extension(crl.extensions, x509.IssuingDistributionPoint), [])
        order = _crl_order(crl, kept[0]) if kept else 1
        if order > 0:
            kept[:] = [crl]
        elif order == 0:
            kept.append(crl)
    return [crl for kept in newest.values() for crl in kept]


def _crl_order(crl: x509.CertificateRevocationList, other: x509.CertificateRevocationList) -> int:
    """1 if ``crl`` is newer than ``other``, -1 if older, 0 if neither."""
    number = _extension(crl.extensions, x509.CRLNumber)
    other_number = _extension(other.extensions, x509.CRLNumber)
    if (
        number is not None
        and other_number is not None
        and number.crl_number != other_number.crl_number
    ):
        return 1 if number.crl_number > other_number.crl_number else -1
    this_update, other_update = crl.last_update_utc, other.last_update_utc
    return (this_update > other_update) - (this_update < other_update)


def _unsupported_crl_feature(crl: x509.CertificateRevocationList) -> str | None:
    try:
        extensions = crl.extensions
    except _EXTENSION_ERRORS as exc:
        return f"its extensions do not parse ({exc})"
    for ext in extensions:
        if ext.oid == ExtensionOID.DELTA_CRL_INDICATOR:
            return "it is a delta CRL, and triotls uses complete CRLs only"
        if isinstance(ext.value, x509.IssuingDistributionPoint):
            point = ext.value
            if point.indirect_crl or point.only_some_reasons or point.only_contains_attribute_certs:
                return (
                    "its issuingDistributionPoint makes it an indirect CRL, a partition by "
                    "reason, or one for attribute certificates, which triotls does not support"
                )
        elif ext.critical and ext.oid not in _KNOWN_CRL_EXTENSIONS:
            return f"it has an unknown critical extension {ext.oid.dotted_string}"
    return None


def _crl_covers(crl: x509.CertificateRevocationList, cert: x509.Certificate) -> bool:
    point = _extension(crl.extensions, x509.IssuingDistributionPoint)
    if point is None:
        return True
    constraints = _extension(_safe_extensions(cert), x509.BasicConstraints)
    is_ca = constraints is not None and constraints.ca
    # RFC 5280 §6.3.3 (b)(2): a list for end entities says nothing about CAs,
    # and the other way round.
    return not (point.only_contains_user_certs and is_ca) and not (
        point.only_contains_ca_certs and not is_ca
    )


def _revocation_reason(revoked: x509.RevokedCertificate) -> x509.ReasonFlags | None:
    try:
        return revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except (x509.ExtensionNotFound, *_EXTENSION_ERRORS):
        return None


# --- OCSP ------------------------------------------------------------------------------------


def _ocsp_findings(
    der: bytes, leaf: x509.Certificate, issuer: x509.Certificate, when: datetime.datetime
) -> list[RevocationFinding]:
    problem, single = _authentic_single_response(der, leaf, issuer, when)
    if single is None:
        return [RevocationFinding(_S.INVALID_OCSP_STATUS, problem)]
    findings: list[RevocationFinding] = []
    this_update = single.this_update_utc
    next_update = single.next_update_utc
    if this_update > when + CLOCK_SKEW:
        findings.append(
            RevocationFinding(
                _S.INVALID_OCSP_STATUS | _S.REVOCATION_DATA_ISSUED_IN_FUTURE,
                f"the stapled OCSP response is dated in the future (thisUpdate {this_update})",
            )
        )
    if next_update is not None and next_update < when:
        findings.append(
            RevocationFinding(
                _S.INVALID_OCSP_STATUS | _S.REVOCATION_DATA_SUPERSEDED,
                f"the stapled OCSP response has expired (nextUpdate {next_update})",
            )
        )
    elif next_update is None and this_update + OCSP_MAX_AGE < when:
        findings.append(
            RevocationFinding(
                _S.INVALID_OCSP_STATUS | _S.REVOCATION_DATA_SUPERSEDED,
                f"the stapled OCSP response is too old: it has no nextUpdate and its "
                f"thisUpdate {this_update} is more than {OCSP_MAX_AGE.days} days ago",
            )
        )
    status = single.certificate_status
    if status == ocsp.OCSPCertStatus.REVOKED:
        reason = single.revocation_reason
        detail = f", reason {reason.name}" if reason is not None else ""
        findings.append(
            RevocationFinding(
                _S.REVOKED,
                f"{_describe(leaf)} is revoked: the stapled OCSP response says so "
                f"(revoked {single.revocation_time_utc}{detail})",
            )
        )
    elif status == ocsp.OCSPCertStatus.UNKNOWN:
        findings.append(
            RevocationFinding(
                _S.INVALID_OCSP_STATUS,
                f"the stapled OCSP response says the responder does not know {_describe(leaf)}",
            )
        )
    return findings


def _authentic_single_response(
    der: bytes, leaf: x509.Certificate, issuer: x509.Certificate, when: datetime.datetime
) -> tuple[str, ocsp.OCSPSingleResponse | None]:
    """The SingleResponse about ``leaf`` from an authorized, verified signer, or why not."""
    try:
        response = ocsp.load_der_ocsp_response(der)
    except ValueError as exc:
        return f"the stapled OCSP response does not parse: {exc}", None
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return (
            f"the stapled OCSP response has status {response.response_status.name.lower()}, "
            "not successful",
            None,
        )
    try:
        single = _single_response_for(response, leaf, issuer)
        if single is None:
            serials = ", ".join(f"{s.serial_number:#x}" for s in response.responses)
            return (
                f"the stapled OCSP response is not about {_describe(leaf)} (serial "
                f"{leaf.serial_number:#x}, issued by {_name(issuer)}): it covers serial "
                f"{serials} of another issuer or certificate",
                None,
            )
        signer = _authorized_signer(response, issuer, when)
        if isinstance(signer, str):
            return signer, None
        failure = _signature_failure(response, signer)
    except (ValueError, UnsupportedAlgorithm) as exc:
        return f"the stapled OCSP response cannot be checked: {exc}", None
    if failure is not None:
        return failure, None
    return "", single


def _single_response_for(
    response: ocsp.OCSPResponse, leaf: x509.Certificate, issuer: x509.Certificate
) -> ocsp.OCSPSingleResponse | None:
    for single in response.responses:
        if single.serial_number != leaf.serial_number:
            continue
        algorithm = single.hash_algorithm
        if not isinstance(algorithm, _CERT_ID_HASHES):
            continue
        # RFC 6960 §4.1.1: the hashes of the issuer's name and key, with the
        # CertID's own algorithm; the request builder computes exactly those.
        expected = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, algorithm).build()
        if (
            single.issuer_name_hash == expected.issuer_name_hash
            and single.issuer_key_hash == expected.issuer_key_hash
        ):
            return single
    return None


def _authorized_signer(
    response: ocsp.OCSPResponse, issuer: x509.Certificate, when: datetime.datetime
) -> x509.Certificate | str:
    """The certificate whose key must have signed ``response``, or why there is none."""
    if _is_responder(response, issuer):
        return issuer
    for candidate in response.certificates:
        if not _is_responder(response, candidate):
            continue
        refusal = _delegation_refusal(candidate, issuer, when)
        if refusal is not None:
            return f"the stapled OCSP response is signed by {_name(candidate)}, {refusal}"
        return candidate
    if response.responder_name is not None:
        responder = repr(response.responder_name.rfc4514_string())
    else:
        key_hash = response.responder_key_hash or b""
        responder = f"the key with SHA-1 hash {key_hash.hex()}"
    return (
        f"the stapled OCSP response is signed by {responder}, which is neither "
        f"{_name(issuer)}, the issuer, nor a responder it delegated to (RFC 6960 §4.2.2.2)"
    )


def _is_responder(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    if response.responder_name is not None:
        return response.responder_name == cert.subject
    # ResponderID byKey: the SHA-1 of the key's BIT STRING, which is how
    # RFC 5280 §4.2.1.2 method (1) computes a subject key identifier.
    try:
        digest = x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
    except (ValueError, UnsupportedAlgorithm):
        return False
    return digest == response.responder_key_hash


def _delegation_refusal(
    responder: x509.Certificate, issuer: x509.Certificate, when: datetime.datetime
) -> str | None:
    if responder.issuer != issuer.subject:
        return f"which {_name(issuer)} did not issue (RFC 6960 §4.2.2.2)"
    try:
        responder.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return f"whose certificate's signature does not verify with the key of {_name(issuer)}"
    eku = _extension(_safe_extensions(responder), x509.ExtendedKeyUsage)
    if eku is None or ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
        return "whose certificate's extendedKeyUsage lacks id-kp-OCSPSigning (RFC 6960 §4.2.2.2)"
    if not responder.not_valid_before_utc <= when <= responder.not_valid_after_utc:
        return "whose certificate is not valid at the clock's time"
    # The responder's key vouches for the leaf as much as the issuer's: the
    # same key policy as for an end entity on the path (EdDSA included).
    from .verify import _key_problems  # verify imports this module

    key_problems = _key_problems(responder, allow_eddsa=True)
    if key_problems:
        return f"which is refused: {key_problems[0].message}"
    for ext in _safe_extensions(responder) or ():
        if ext.critical and ext.oid not in _RESPONDER_CRITICAL:
            # RFC 5280 §4.2: a critical extension not understood must refuse it.
            return f"whose certificate has an unknown critical extension {ext.oid.dotted_string}"
    return None


def _signature_failure(response: ocsp.OCSPResponse, signer: x509.Certificate) -> str | None:
    algorithm = response.signature_algorithm_oid
    key = signer.public_key()
    data, signature = response.tbs_response_bytes, response.signature
    try:
        if isinstance(key, rsa.RSAPublicKey) and algorithm in _RSA_SIGNATURES:
            key.verify(signature, data, padding.PKCS1v15(), _hash_of(response))
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm in _ECDSA_SIGNATURES:
            key.verify(signature, data, ec.ECDSA(_hash_of(response)))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey) and algorithm in (
            SignatureAlgorithmOID.ED25519,
            SignatureAlgorithmOID.ED448,
        ):
            # A key of the other curve simply fails to verify.
            key.verify(signature, data)
        else:
            return (
                f"the stapled OCSP response is signed with {algorithm.dotted_string}, which "
                f"triotls does not accept with the key of {_name(signer)} (SHA-1 and RSA-PSS "
                "are refused)"
            )
    except InvalidSignature:
        return (
            f"the signature on the stapled OCSP response does not verify with the key of "
            f"{_name(signer)}"
        )
    return None


def _hash_of(response: ocsp.OCSPResponse) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512:
    algorithm = response.signature_hash_algorithm
    if not isinstance(algorithm, hashes.SHA256 | hashes.SHA384 | hashes.SHA512):
        # The OID sets above hold SHA-2 signatures only; this is their hash.
        raise ValueError(f"unexpected signature hash {algorithm!r}")
    return algorithm


# --- helpers -----------------------------------------------------------------------------------


def _safe_extensions(cert: x509.Certificate) -> x509.Extensions | None:
    try:
        return cert.extensions
    except _EXTENSION_ERRORS:
        return None


def _extension(exts: x509.Extensions | None, kind: type[_X]) -> _X | None:
    for ext in exts or ():
        if isinstance(ext.value, kind):
            return ext.value
    return None


def _describe(cert: x509.Certificate) -> str:
    return f"the certificate for {_name(cert)}"


def _name(cert: x509.Certificate) -> str:
    # The path may be the unverified one the peer sent: its names may not parse.
    try:
        return repr(cert.subject.rfc4514_string())
    except ValueError:
        return f"serial {cert.serial_number:#x} (whose subject does not parse)"


# What parsing a certificate's or CRL's extensions may raise: peer-supplied
# certificates reach here unverified, and DuplicateExtension is no ValueError.
_EXTENSION_ERRORS: Final = (x509.DuplicateExtension, x509.UnsupportedGeneralNameType, ValueError)
_KNOWN_CRL_EXTENSIONS: Final = frozenset(
    {
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.CRL_NUMBER,
        ExtensionOID.ISSUING_DISTRIBUTION_POINT,
    }
)
# The critical extensions a delegated responder's certificate may carry: the
# ones RFC 5280 lets an end entity mark critical, and id-pkix-ocsp-nocheck
# (RFC 6960 §4.2.2.2.1; non-critical as a rule, and what it asks, not to check
# the responder's revocation, is what triotls does anyway).
_RESPONDER_CRITICAL: Final = frozenset(
    {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.OCSP_NO_CHECK,
    }
)
_CERT_ID_HASHES: Final = (
    hashes.SHA1,
    hashes.SHA224,
    hashes.SHA256,
    hashes.SHA384,
    hashes.SHA512,
)
_RSA_SIGNATURES: Final = frozenset(
    {
        SignatureAlgorithmOID.RSA_WITH_SHA256,
        SignatureAlgorithmOID.RSA_WITH_SHA384,
        SignatureAlgorithmOID.RSA_WITH_SHA512,
    }
)
_ECDSA_SIGNATURES: Final = frozenset(
    {
        SignatureAlgorithmOID.ECDSA_WITH_SHA256,
        SignatureAlgorithmOID.ECDSA_WITH_SHA384,
        SignatureAlgorithmOID.ECDSA_WITH_SHA512,
    }
)
