"""Certificate chain and peer identity verification: a verdict, then every reason.

Theory of operation
-------------------

:func:`check_chain` answers two questions, in this order.

1. **The verdict**: does the chain verify? A validator decides, and its
   answer is final. RSA and ECDSA chains go to ``cryptography.x509.verification``
   (web PKI profile), plus the two end-entity checks it leaves out: the leaf's
   key (it checks only issuers' keys) and keyUsage digitalSignature (RFC 8446
   §4.4.2.2). The extension policy is relaxed for the end entity only where
   common test CAs (trustme) mark subjectAltName and extendedKeyUsage
   critical; extendedKeyUsage is then checked here, so a wrong-purpose chain
   is still refused. Chains with Ed25519/Ed448 signatures go to this module's
   own RFC 5280 validator (the EdDSA fallback, below).

2. **The classification**: when the verdict is no, why? cryptography reports
   one message, so :func:`classify_chain` runs this module's own checks over
   the chain, independently of the validator, and collects every problem as a
   :class:`~triotls.engine.status.VerificationStatus` flag and a sentence. It
   builds a path by structure only (issuer names, key identifiers and
   signatures, breadth first, so the shortest), then checks each certificate
   on it: validity at the clock's time, critical extensions, key algorithm and
   size, signature algorithm, the leaf's names (RFC 6125, IP addresses in
   subjectAltName), purpose (basicConstraints, keyUsage, extendedKeyUsage),
   and each issuer's CA flag, pathLenConstraint, keyUsage, extendedKeyUsage
   and nameConstraints. A path that never reaches a trust anchor is
   SIGNER_NOT_FOUND (with SIGNATURE_FAILURE when a same-named candidate's key
   did not verify the signature); one that only reaches it through more than
   ``max_depth`` intermediates is CHAIN_TOO_LONG. If the checks find nothing
   the validator refused, the status is INVALID alone, or INVALID |
   SIGNER_NOT_FOUND when cryptography found no acceptable issuer ("candidates
   exhausted"), and the validator's message is the reason.

The classification must agree with the verdict: a chain the validator accepts
has status 0 (the checks do not even run), and the checks must never flag one
it accepts. Both profiles share the same check functions: the EdDSA
validator refuses on the first problem they find, so for EdDSA chains the two
agree by construction; for cryptography's profile the checks are a subset of
its rules (``tests/engine/test_verification_status.py`` checks agreement on a
matrix of good and bad chains).

:func:`enforce_verification` then applies the configured mode: ``"required"``
refuses a chain with a non-zero status, ``"report"`` lets the handshake
complete, and a ``verify_callback`` decides either way.

The EdDSA fallback
------------------

cryptography's web-PKI policy refuses Ed25519 and Ed448 *issuer* keys (and so
every Ed25519/Ed448 certificate signature), although RFC 8446 §9.1 lists
ed25519 among the signature schemes a TLS 1.3 client should support, and
OpenSSL and GnuTLS accept such chains. It does accept an EdDSA key on the
end-entity under an RSA or ECDSA issuer, so those chains stay on its path.

The verdict therefore looks at the certificates up front. When any supplied
certificate carries an Ed25519/Ed448 signature (or an intermediate carries
such a key), it validates the chain with :func:`_verify_eddsa_chain`, a
compact RFC 5280 §6 validator; every other chain goes to cryptography,
unchanged. The fallback:

1. checks the leaf on its own: parseable v3 certificate, permitted key,
   validity at ``now``, not a CA, no unknown critical extension, keyUsage
   (if present) has digitalSignature and not keyCertSign, extendedKeyUsage
   allows the purpose, subjectAltName present and matching ``server_name``
   (RFC 6125 §6.4);
2. builds a path depth first from the leaf through the supplied
   intermediates to a trust anchor. A candidate issuer has the subject named
   as the child's issuer and, when both are present, the subject key
   identifier the child's authority key identifier names. Anchors are tried
   before intermediates, a certificate is used at most once per path, at most
   ``max_depth`` intermediates are used and at most
   ``_MAX_CANDIDATE_CHECKS`` candidates are tried in all;
3. accepts a candidate only if the child's signature algorithm is in the
   web-PKI set plus EdDSA, the issuer's key is permitted, the signature
   verifies (``verify_directly_issued_by``), and the issuer passes the CA
   checks: valid at ``now`` (anchors too), basicConstraints cA, its
   pathLenConstraint, keyCertSign when keyUsage is present, extendedKeyUsage
   (if present) allows the purpose, no unknown critical extension, and its
   nameConstraints (dNSName and iPAddress subtrees; any other kind is refused,
   fail closed) hold for the subjectAltName entries below it.

A refused candidate is remembered and the search backtracks. If no path
survives, the first refusal is the verdict's message; if no candidate was
ever found, the chain does not reach a trust anchor.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509 import verification as xv
from cryptography.x509.oid import (
    ExtendedKeyUsageOID,
    ExtensionOID,
    PublicKeyAlgorithmOID,
    SignatureAlgorithmOID,
)

from ..errors import CertificateVerificationError, LocalAlert
from .enums import AlertDescription
from .revocation import RevocationFinding, check_revocation
from .status import VerificationResult, VerificationStatus, VerifyCallback, VerifyMode

__all__ = [
    "Purpose",
    "TrustAnchors",
    "VerifiedChain",
    "check_chain",
    "classify_chain",
    "enforce_verification",
    "ip_literal",
    "load_certificate",
    "verification_error",
    "verify_chain",
]

Purpose = Literal["server", "client"]
_S = VerificationStatus
_E = TypeVar("_E", bound=x509.ExtensionType)
# What an x509.IPAddress holds: an address in a subjectAltName, a network in
# nameConstraints.
_IPValue = (
    ipaddress.IPv4Address | ipaddress.IPv6Address | ipaddress.IPv4Network | ipaddress.IPv6Network
)


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedChain:
    """Proof that a chain was verified: the path found, leaf first."""

    chain: tuple[x509.Certificate, ...]


class TrustAnchors(Protocol):
    """The trust store :func:`verify_chain` needs; ``triotls.config.TrustStore`` is one.

    The EdDSA fallback and the classification need the anchor certificates
    themselves, which a bare ``cryptography`` ``Store`` does not expose.
    """

    @property
    def certificates(self) -> tuple[x509.Certificate, ...]:
        """The trusted root certificates."""
        ...

    @property
    def store(self) -> xv.Store:
        """The same certificates as a ``cryptography`` store."""
        ...

    @property
    def crls(self) -> tuple[x509.CertificateRevocationList, ...]:
        """Certificate revocation lists to check the chain against (may be empty)."""
        ...


def check_chain(
    chain: Sequence[x509.Certificate],
    store: TrustAnchors | xv.Store,
    *,
    purpose: Purpose,
    server_name: str | None,
    now: float,
    max_depth: int = 8,
    ocsp_response: bytes | None = None,
    ocsp_requested: bool = False,
    ocsp_required: bool = False,
) -> VerificationResult:
    """Verify ``chain`` (leaf first) against ``store`` and say every reason it failed.

    Chains with an Ed25519/Ed448 signature need the anchors themselves: pass
    a :class:`TrustAnchors` (such as ``config.trust_store``). Given a bare
    ``cryptography`` ``Store``, such a chain is refused (SIGNER_NOT_FOUND),
    and the status of other failing chains is less precise.

    Revocation is checked too (see :mod:`triotls.engine.revocation`), on the
    validated path, or on the structural one when the chain failed: against
    the store's CRLs, and against ``ocsp_response`` for the leaf.

    Args:
        chain: the peer's certificates, leaf first (at least one).
        store: the trust anchors.
        purpose: which extendedKeyUsage the leaf (and its issuers) must allow.
        server_name: the DNS name or IP literal the leaf must name, or None to
            skip the name check.
        now: the verification time, in seconds since the epoch.
        max_depth: the most intermediates a path may hold.
        ocsp_response: the DER OCSP response stapled to the leaf, or None.
        ocsp_requested: whether one was asked for (the must-staple TLS
            feature, RFC 7633, then makes a missing one MISSING_OCSP_STATUS).
        ocsp_required: whether a missing response is MISSING_OCSP_STATUS
            whatever the leaf says.

    Returns:
        The result: status 0 and the validated path, or every flag with the
        reasons (the validator's message first, revocation problems last).
    """
    peer_chain = tuple(chain)
    when = _utc(now)
    crls = () if isinstance(store, xv.Store) else store.crls

    def revocation(path: tuple[x509.Certificate, ...]) -> list[RevocationFinding]:
        if not crls and ocsp_response is None and not ocsp_requested and not ocsp_required:
            return []
        return check_revocation(
            path,
            crls=crls,
            ocsp_response=ocsp_response,
            ocsp_requested=ocsp_requested,
            ocsp_required=ocsp_required,
            now=now,
        )

    try:
        path = _verdict(
            peer_chain,
            store,
            purpose=purpose,
            server_name=server_name,
            when=when,
            max_depth=max_depth,
        )
    except _Refused as refused:
        verdict = str(refused)
    else:
        revoked = revocation(path)
        if not revoked:
            return VerificationResult(
                status=_S(0),
                reasons=(),
                chain=peer_chain,
                verified_chain=path,
                server_name=server_name,
                ocsp_response=ocsp_response,
            )
        status = _S.INVALID
        for finding in revoked:
            status |= finding.flag
        return VerificationResult(
            status=status,
            reasons=tuple(dict.fromkeys(finding.message for finding in revoked)),
            chain=peer_chain,
            verified_chain=None,
            server_name=server_name,
            ocsp_response=ocsp_response,
        )
    status, reasons = classify_chain(
        peer_chain,
        store,
        purpose=purpose,
        server_name=server_name,
        now=now,
        max_depth=max_depth,
    )
    if not status:
        # Our checks found nothing the validator refused: its verdict stands.
        # "candidates exhausted" is cryptography's way of saying that no
        # issuer it would accept was found.
        status = _S.INVALID
        if "candidates exhausted" in verdict:
            status |= _S.SIGNER_NOT_FOUND
    revoked = revocation(
        _structural_path(peer_chain, store, purpose=purpose, server_name=server_name, when=when)
    )
    for finding in revoked:
        status |= finding.flag
    return VerificationResult(
        status=status,
        reasons=tuple(
            dict.fromkeys((verdict, *reasons, *(finding.message for finding in revoked)))
        ),
        chain=peer_chain,
        verified_chain=None,
        server_name=server_name,
        ocsp_response=ocsp_response,
    )


def verify_chain(
    chain: Sequence[x509.Certificate],
    store: TrustAnchors | xv.Store,
    *,
    purpose: Purpose,
    server_name: str | None,
    now: float,
    max_depth: int = 8,
) -> VerifiedChain:
    """Verify ``chain`` (leaf first) against ``store``, or raise.

    The arguments are :func:`check_chain`'s.

    Returns:
        The validated path, leaf first, ending with the trust anchor.

    Raises:
        CertificateVerificationError: with the status, the reasons, and the
            alert :func:`~triotls.engine.status.alert_for` picks.
    """
    result = check_chain(
        chain, store, purpose=purpose, server_name=server_name, now=now, max_depth=max_depth
    )
    if result.verified_chain is None:
        raise verification_error(result)
    return VerifiedChain(chain=result.verified_chain)


def classify_chain(
    chain: Sequence[x509.Certificate],
    store: TrustAnchors | xv.Store,
    *,
    purpose: Purpose,
    server_name: str | None,
    now: float,
    max_depth: int = 8,
) -> tuple[VerificationStatus, tuple[str, ...]]:
    """This module's own checks over ``chain``, without asking a validator.

    :func:`check_chain` runs them when the validator refused the chain. On a
    chain the validator accepts they must find nothing; the tests hold them
    to that.

    Args:
        chain: the peer's certificates, leaf first (at least one).
        store: the trust anchors; with a bare ``cryptography`` ``Store`` the
            path cannot be followed to an anchor, so issuer problems are not
            reported.
        purpose: which extendedKeyUsage the leaf (and its issuers) must allow.
        server_name: the name the leaf must match, or None.
        now: the verification time, in seconds since the epoch.
        max_depth: the most intermediates a path may hold.

    Returns:
        The union of the flags found (with INVALID when there is any) and one
        reason per problem, leaf first.
    """
    unparsed = [p for index, cert in enumerate(chain) if (p := _parse_problem(cert, index))]
    if unparsed:
        # cryptography parses names and dates lazily; checks on such a
        # certificate would only repeat that it does not parse.
        return _S.INVALID, tuple(problem.message for problem in unparsed)
    eddsa = _uses_eddsa(chain, store, purpose=purpose, when=_utc(now))
    anchors = None if isinstance(store, xv.Store) else store.certificates
    problems = _Classification(
        profile=_RFC5280 if eddsa else _WEBPKI,
        anchors=anchors,
        purpose=purpose,
        server_name=server_name,
        when=_utc(now),
        max_depth=max_depth,
    ).run(tuple(chain))
    if eddsa and anchors is None:
        problems.append(_Problem(_S.SIGNER_NOT_FOUND, _BARE_STORE))
    status = _S(0)
    for problem in problems:
        status |= problem.flag
    if status:
        status |= _S.INVALID
    return status, tuple(dict.fromkeys(problem.message for problem in problems))


def _structural_path(
    chain: tuple[x509.Certificate, ...],
    store: TrustAnchors | xv.Store,
    *,
    purpose: Purpose,
    server_name: str | None,
    when: datetime.datetime,
) -> tuple[x509.Certificate, ...]:
    """The path the classification follows: revocation is checked along it."""
    if any(_parse_problem(cert, index) for index, cert in enumerate(chain)):
        return chain[:1]
    anchors = None if isinstance(store, xv.Store) else store.certificates
    classification = _Classification(
        profile=_RFC5280 if _uses_eddsa(chain, store, purpose=purpose, when=when) else _WEBPKI,
        anchors=anchors,
        purpose=purpose,
        server_name=server_name,
        when=when,
        max_depth=len(chain) + 1,
    )
    path, _reached, _problems = classification._structural_path(chain[0], chain[1:])
    return path


def enforce_verification(
    result: VerificationResult, *, mode: VerifyMode, callback: VerifyCallback | None
) -> None:
    """Refuse ``result``'s chain if the configured mode says so.

    With a ``callback``, it decides (``mode`` is not consulted): returning
    ``True`` accepts the chain, anything else refuses it with the alert the
    status calls for (certificate_unknown when the chain verified). A
    :class:`~triotls.errors.LocalAlert` the callback raises propagates as it
    is, so a callback may choose the alert; any other exception refuses the
    chain with internal_error (the failure is ours, not the peer's: RFC 8446
    §6.2), keeping the exception as ``__cause__``. Without a callback,
    ``"required"`` refuses any non-zero status and ``"report"`` refuses
    nothing.

    Raises:
        CertificateVerificationError: the chain is refused.
    """
    if callback is None:
        if mode == "required" and result.status:
            raise verification_error(result)
        return
    try:
        accepted = callback(result)
    except LocalAlert:
        raise
    except Exception as exc:
        message = f"the verify_callback raised {type(exc).__name__}: {exc}"
        raise CertificateVerificationError(
            f"{message}; the peer's certificate was refused",
            alert=AlertDescription.INTERNAL_ERROR,
            reasons=(message, *result.reasons),
            status=result.status,
            result=result,
        ) from exc
    if accepted is not True:
        raise verification_error(result, refused_by="the verify_callback")


def verification_error(
    result: VerificationResult, *, refused_by: str | None = None
) -> CertificateVerificationError:
    """The error that refuses ``result``'s chain, with the alert its status calls for.

    Args:
        result: what verification found.
        refused_by: who refused the chain, when not the verifier (such as
            ``"the verify_callback"``).
    """
    if not result.status:
        message = (
            f"{refused_by or 'the application'} refused the peer's certificate, which verified"
        )
    else:
        prefix = "the peer's certificate"
        if refused_by is not None:
            prefix = f"{refused_by} refused the peer's certificate, which"
        message = f"{prefix} did not verify ({result.status.describe()}): " + "; ".join(
            result.reasons
        )
    return CertificateVerificationError(
        message,
        alert=result.alert,
        reasons=result.reasons,
        status=result.status,
        result=result,
    )


# --- the verdict --------------------------------------------------------------------------


class _Refused(Exception):
    """A validator refused the chain; the message says why."""


@dataclass(frozen=True, slots=True)
class _Problem:
    """One thing wrong with a chain: its flag and a sentence a person can act on."""

    flag: VerificationStatus
    message: str


def _verdict(
    chain: tuple[x509.Certificate, ...],
    store: TrustAnchors | xv.Store,
    *,
    purpose: Purpose,
    server_name: str | None,
    when: datetime.datetime,
    max_depth: int,
) -> tuple[x509.Certificate, ...]:
    """The validated path, or :class:`_Refused` with the validator's message."""
    for index, cert in enumerate(chain):
        # cryptography parses names and dates lazily, and its verifier raises
        # ValueError on what does not parse: refuse that up front.
        unparsed = _parse_problem(cert, index)
        if unparsed is not None:
            raise _Refused(unparsed.message)
    if _uses_eddsa(chain, store, purpose=purpose, when=when):
        if isinstance(store, xv.Store):
            raise _Refused(_BARE_STORE)
        return _verify_eddsa_chain(
            chain,
            store.certificates,
            purpose=purpose,
            server_name=server_name,
            when=when,
            max_depth=max_depth,
        )
    leaf, intermediates = chain[0], list(chain[1:])
    ca_policy, ee_policy = _extension_policies(purpose)
    builder = (
        xv.PolicyBuilder()
        .store(store if isinstance(store, xv.Store) else store.store)
        .time(when)
        .max_chain_depth(max_depth)
        .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
    )
    try:
        if server_name is not None:
            address = ip_literal(server_name)
            subject: x509.DNSName | x509.IPAddress = (
                x509.DNSName(server_name) if address is None else x509.IPAddress(address)
            )
            path = builder.build_server_verifier(subject).verify(leaf, intermediates)
        else:
            # No name to check (check_hostname=False, or a client certificate):
            # the client verifier validates the path without a subject, and
            # the extension policy above checks the purpose.
            path = builder.build_client_verifier().verify(leaf, intermediates).chain
    except xv.VerificationError as exc:
        raise _Refused(str(exc)) from None
    # cryptography checks the keys of issuers only, and not digitalSignature.
    extras = _key_problems(leaf, allow_eddsa=True) + _leaf_usage_problems(leaf, leaf.extensions)
    if extras:
        raise _Refused(extras[0].message)
    if server_name is not None and not _names_match(
        leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value, server_name
    ):
        # cryptography lets "*.com" match "example.com"; RFC 6125 §7.2 and this
        # module's own matcher (the classification, the EdDSA path) do not.
        raise _Refused(f"{_describe(leaf)} does not match {server_name!r}")
    return tuple(path)


def load_certificate(der: bytes) -> x509.Certificate:
    """Parse one DER certificate, reusing the object parsed from the same bytes.

    A peer sends the same chain on every connection. cryptography parses a
    certificate's names, dates and extensions lazily and keeps them in the
    object, so reusing it spares the checks below that work a second time;
    a certificate is immutable, and the cache is keyed by its exact bytes.

    Raises:
        ValueError: ``der`` is not a DER X.509 certificate.
        x509.InvalidVersion: its version is unknown.
    """
    if type(der) is not bytes:
        # A bytearray or memoryview is unhashable, and may change.
        der = bytes(der)
    cert = _CERTIFICATES.get(der)
    if cert is None:
        cert = x509.load_der_x509_certificate(der)
        if len(der) > _MAX_CACHED_DER:
            # Real certificates are a few KiB; a huge one is parsed but not
            # kept, so a hostile peer cannot make the cache hold megabytes.
            return cert
        if len(_CERTIFICATES) >= _MAX_CERTIFICATES:
            # Peers choose these bytes: keep the cache bounded. Clearing it
            # is one atomic step, safe with streams in several threads.
            _CERTIFICATES.clear()
        _CERTIFICATES[der] = cert
    return cert


_CERTIFICATES: dict[bytes, x509.Certificate] = {}
_MAX_CERTIFICATES: Final = 64
#: Largest certificate (DER bytes) the cache keeps: 64 of them is 512 KiB.
_MAX_CACHED_DER: Final = 8192


def ip_literal(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``name`` as an IP address if it is an IP literal, else None.

    Remembers recent names: every handshake parses its host name two or three
    times, and :func:`ipaddress.ip_address` costs a few microseconds.
    """
    try:
        return _IP_LITERALS[name]
    except KeyError:
        pass
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        address = None
    if len(_IP_LITERALS) >= _MAX_IP_LITERALS:
        _IP_LITERALS.clear()
    _IP_LITERALS[name] = address
    return address


_IP_LITERALS: dict[str, ipaddress.IPv4Address | ipaddress.IPv6Address | None] = {}
_MAX_IP_LITERALS: Final = 1024


def _extension_policies(purpose: Purpose) -> tuple[xv.ExtensionPolicy, xv.ExtensionPolicy]:
    # The policies are immutable and depend on the purpose alone: build them
    # once, not per connection.
    policies = _EXTENSION_POLICIES.get(purpose)
    if policies is None:
        policies = (_ca_eku_checker(purpose), _eku_checker(purpose))
        _EXTENSION_POLICIES[purpose] = policies
    return policies


_EXTENSION_POLICIES: dict[Purpose, tuple[xv.ExtensionPolicy, xv.ExtensionPolicy]] = {}


def _eku_checker(purpose: Purpose) -> xv.ExtensionPolicy:
    crit = xv.Criticality.AGNOSTIC
    policy = xv.ExtensionPolicy.webpki_defaults_ee()
    # A server names itself in subjectAltName (RFC 6125); a client
    # certificate need not name anything we check (user certificates often
    # name their holder in the subject alone), as with OpenSSL and GnuTLS.
    if purpose == "server":
        policy = policy.require_present(x509.SubjectAlternativeName, crit, None)
    else:
        policy = policy.may_be_present(x509.SubjectAlternativeName, crit, None)
    return policy.may_be_present(
        x509.ExtendedKeyUsage, crit, _eku_check(purpose, "extendedKeyUsage")
    )


def _ca_eku_checker(purpose: Purpose) -> xv.ExtensionPolicy:
    # An issuer's extendedKeyUsage, when present, must allow the purpose too.
    # cryptography's default CA policy decides that by the verifier built:
    # serverAuth for a server verifier, clientAuth for a client one; but a
    # server's chain checked without a name goes through a client verifier
    # (check_hostname=False), which would hold its issuers to clientAuth.
    return xv.ExtensionPolicy.webpki_defaults_ca().may_be_present(
        x509.ExtendedKeyUsage,
        xv.Criticality.AGNOSTIC,
        _eku_check(purpose, "an issuer's extendedKeyUsage"),
    )


def _eku_check(
    purpose: Purpose, whose: str
) -> Callable[[xv.Policy, x509.Certificate, x509.ExtendedKeyUsage | None], None]:
    """A policy callback: the extension, when present, must allow ``purpose``."""
    wanted = _wanted_eku(purpose)

    def check(
        _policy: xv.Policy, _cert: x509.Certificate, ext: x509.ExtendedKeyUsage | None
    ) -> None:
        if not _eku_allows(ext, wanted):
            raise ValueError(f"{whose} does not allow {purpose} authentication")

    return check


def _wanted_eku(purpose: Purpose) -> x509.ObjectIdentifier:
    return (
        ExtendedKeyUsageOID.SERVER_AUTH if purpose == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
    )


def _eku_allows(ext: x509.ExtendedKeyUsage | None, wanted: x509.ObjectIdentifier) -> bool:
    # Absent means unrestricted; present must name the purpose or anyExtendedKeyUsage.
    return ext is None or wanted in ext or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in ext


def _utc(now: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(now, tz=datetime.timezone.utc)


# --- the EdDSA fallback (RFC 5280 §6) -------------------------------------------------------


def _needs_eddsa_validator(chain: Sequence[x509.Certificate]) -> bool:
    # Every EdDSA issuer on a path, the trust anchor included, signed a
    # certificate that the peer supplied, so the signatures reveal them.
    # cryptography accepts an EdDSA key on the end-entity itself, so a leaf
    # key alone does not count.
    return any(cert.signature_algorithm_oid in _EDDSA_SIGNATURES for cert in chain) or any(
        cert.public_key_algorithm_oid in _EDDSA_KEYS for cert in chain[1:]
    )


def _uses_eddsa(
    chain: Sequence[x509.Certificate],
    store: TrustAnchors | xv.Store,
    *,
    purpose: Purpose,
    when: datetime.datetime,
) -> bool:
    """Whether the path from the leaf to an anchor needs the EdDSA validator.

    Only certificates on the structural path (names, key identifiers,
    signatures) count: an EdDSA certificate the peer sends along, off the
    path, must not move a chain to the other validator (RFC 5280 rules, not
    the web PKI's).
    """
    if not _needs_eddsa_validator(chain):
        return False
    anchors = None if isinstance(store, xv.Store) else store.certificates
    classification = _Classification(
        profile=_RFC5280,
        anchors=anchors,
        purpose=purpose,
        server_name=None,
        when=when,
        max_depth=len(chain) + 1,
    )
    path, _reached, _problems = classification._structural_path(chain[0], tuple(chain[1:]))
    return _needs_eddsa_validator(path)


def _verify_eddsa_chain(
    chain: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    *,
    purpose: Purpose,
    server_name: str | None,
    when: datetime.datetime,
    max_depth: int,
) -> tuple[x509.Certificate, ...]:
    leaf = chain[0]
    wanted = _wanted_eku(purpose)
    exts = _extensions(leaf)
    _raise_first(_basic_problems(leaf, exts, when=when, profile=_RFC5280, is_leaf=True))
    _raise_first(
        _leaf_problems(leaf, exts, purpose=purpose, wanted=wanted, server_name=server_name)
    )
    if leaf in anchors:
        # A certificate trusted as it is (a pinned self-signed leaf) is its own
        # path, as with cryptography's validator and the classification.
        return (leaf,)
    search = _PathSearch(
        intermediates=chain[1:], anchors=anchors, wanted=wanted, when=when, max_depth=max_depth
    )
    return search.run(leaf)


class _PathSearch:
    """Depth-first path building from a leaf to a trust anchor, with backtracking."""

    def __init__(
        self,
        *,
        intermediates: Sequence[x509.Certificate],
        anchors: Sequence[x509.Certificate],
        wanted: x509.ObjectIdentifier,
        when: datetime.datetime,
        max_depth: int,
    ) -> None:
        self._anchors = tuple(anchors)
        # A supplied copy of an anchor is the anchor (tried first anyway), and
        # a certificate sent twice is one candidate.
        unique = dict.fromkeys(c for c in intermediates if c not in self._anchors)
        self._intermediates = tuple(unique)
        self._wanted = wanted
        self._when = when
        self._max_depth = max_depth
        self._budget = _MAX_CANDIDATE_CHECKS
        self._refusals: list[_Refused] = []
        self._dead_end: x509.Certificate | None = None

    def run(self, leaf: x509.Certificate) -> tuple[x509.Certificate, ...]:
        found = self._extend((leaf,))
        if found is not None:
            return found
        if self._refusals:
            raise self._refusals[0]
        stuck = self._dead_end if self._dead_end is not None else leaf
        raise _Refused(_no_issuer(stuck))

    def _extend(self, path: tuple[x509.Certificate, ...]) -> tuple[x509.Certificate, ...] | None:
        child = path[-1]
        candidates = [(c, True) for c in self._anchors if _may_have_issued(c, child)]
        candidates += [
            (c, False) for c in self._intermediates if c not in path and _may_have_issued(c, child)
        ]
        if not candidates:
            self._dead_end = child
            return None
        for issuer, is_anchor in candidates:
            intermediates_below = len(path) - 1
            if not is_anchor and intermediates_below >= self._max_depth:
                self._refusals.append(
                    _Refused(
                        f"the path through {_describe(issuer)} would hold more than "
                        f"{self._max_depth} intermediates"
                    )
                )
                continue
            self._budget -= 1
            if self._budget < 0:
                raise _Refused(
                    f"path building gave up after {_MAX_CANDIDATE_CHECKS} candidate issuers"
                )
            try:
                _raise_first(_signature_algorithm_problems(child, _RFC5280))
                failure = _link_failure(child, issuer)
                if failure is not None:
                    raise _Refused(failure)
                exts = _extensions(issuer)
                _raise_first(
                    _basic_problems(issuer, exts, when=self._when, profile=_RFC5280, is_leaf=False)
                )
                _raise_first(_issuer_problems(issuer, exts, path, self._wanted, _RFC5280))
            except _Refused as refusal:
                self._refusals.append(refusal)
                continue
            if is_anchor:
                return (*path, issuer)
            found = self._extend((*path, issuer))
            if found is not None:
                return found
        return None


def _raise_first(problems: list[_Problem]) -> None:
    if problems:
        raise _Refused(problems[0].message)


def _extensions(cert: x509.Certificate) -> x509.Extensions:
    parsed = _parse_extensions(cert)
    if isinstance(parsed, _Problem):
        raise _Refused(parsed.message)
    return parsed


# --- the classification ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Profile:
    """Where the two validators' rules differ, so the checks can follow each."""

    # Critical extensions the validator processes; any other is refused.
    understood_critical: frozenset[x509.ObjectIdentifier]
    # Whether EdDSA keys and signatures are allowed above the end entity.
    eddsa_issuers: bool
    # Whether a CA must carry keyUsage (CA/Browser Forum) or may omit it (RFC 5280).
    ca_key_usage_required: bool
    # Whether a nameConstraints subtree of a kind not checked here refuses the
    # chain (our validator) or is left to the validator that checks it.
    fail_closed_name_constraints: bool


class _Classification:
    """Every problem with a chain, over the shortest structural path to an anchor."""

    def __init__(
        self,
        *,
        profile: _Profile,
        anchors: tuple[x509.Certificate, ...] | None,
        purpose: Purpose,
        server_name: str | None,
        when: datetime.datetime,
        max_depth: int,
    ) -> None:
        self._profile = profile
        self._anchors = anchors
        self._purpose: Purpose = purpose
        self._wanted = _wanted_eku(purpose)
        self._server_name = server_name
        self._when = when
        self._max_depth = max_depth

    def run(self, chain: tuple[x509.Certificate, ...]) -> list[_Problem]:
        leaf = chain[0]
        problems = self._certificate(leaf, (), is_leaf=True)
        path, reached_anchor, path_problems = self._structural_path(leaf, chain[1:])
        for index in range(1, len(path)):
            problems += _signature_algorithm_problems(path[index - 1], self._profile)
            problems += self._certificate(path[index], path[:index], is_leaf=False)
        if reached_anchor:
            intermediates = len(path) - 2
            if intermediates > self._max_depth:
                problems.append(
                    _Problem(
                        _S.CHAIN_TOO_LONG,
                        f"the path to a trust anchor holds {intermediates} intermediates, "
                        f"more than the {self._max_depth} allowed",
                    )
                )
        elif not _is_self_issued(path[-1]):
            # Its issuer, had it been found, would have checked this signature.
            problems += _signature_algorithm_problems(path[-1], self._profile)
        return problems + path_problems

    def _certificate(
        self, cert: x509.Certificate, below: tuple[x509.Certificate, ...], *, is_leaf: bool
    ) -> list[_Problem]:
        when, profile = self._when, self._profile
        exts = _parse_extensions(cert)
        if isinstance(exts, _Problem):
            return [*_basic_problems(cert, None, when=when, profile=profile, is_leaf=is_leaf), exts]
        problems = _basic_problems(cert, exts, when=when, profile=profile, is_leaf=is_leaf)
        if is_leaf:
            return problems + _leaf_problems(
                cert,
                exts,
                purpose=self._purpose,
                wanted=self._wanted,
                server_name=self._server_name,
            )
        return problems + _issuer_problems(cert, exts, below, self._wanted, self._profile)

    def _structural_path(
        self, leaf: x509.Certificate, supplied: tuple[x509.Certificate, ...]
    ) -> tuple[tuple[x509.Certificate, ...], bool, list[_Problem]]:
        """The shortest path by names, key identifiers and signatures only.

        Returns the path (leaf first), whether it ends at a trust anchor, and,
        when it does not, why it stops.
        """
        anchors = self._anchors or ()
        if leaf in anchors:
            return (leaf,), True, []
        pool = tuple(dict.fromkeys(c for c in supplied if c not in anchors))
        frontier: list[tuple[x509.Certificate, ...]] = [(leaf,)]
        deepest = frontier[0]
        refused: dict[x509.Certificate, list[str]] = {}
        budget = _MAX_CANDIDATE_CHECKS
        while frontier:
            next_level: list[tuple[x509.Certificate, ...]] = []
            for path in frontier:
                child = path[-1]
                candidates = [(c, True) for c in anchors if _may_have_issued(c, child)]
                candidates += [
                    (c, False) for c in pool if c not in path and _may_have_issued(c, child)
                ]
                for issuer, is_anchor in candidates:
                    budget -= 1
                    if budget < 0:
                        return deepest, False, self._gave_up()
                    failure = _link_failure(child, issuer)
                    if failure is not None:
                        refused.setdefault(child, []).append(failure)
                        continue
                    if is_anchor:
                        return (*path, issuer), True, []
                    next_level.append((*path, issuer))
            if next_level:
                deepest = next_level[0]
            frontier = next_level
        if self._anchors is None:
            return deepest, False, []  # without the anchors, a dead end says nothing
        return deepest, False, _dead_end_problems(deepest[-1], refused.get(deepest[-1], []))

    def _gave_up(self) -> list[_Problem]:
        message = f"path building gave up after {_MAX_CANDIDATE_CHECKS} candidate issuers"
        return [_Problem(_S.SIGNER_NOT_FOUND, message)]


def _dead_end_problems(stuck: x509.Certificate, signature_failures: list[str]) -> list[_Problem]:
    if signature_failures:
        return [
            _Problem(_S.SIGNATURE_FAILURE, signature_failures[0]),
            _Problem(
                _S.SIGNER_NOT_FOUND,
                f"no certificate whose key verifies the signature on {_describe(stuck)} is "
                "among the supplied intermediates or the trust anchors",
            ),
        ]
    if _is_self_issued(stuck):
        return [_Problem(_S.SIGNER_NOT_FOUND, f"{_describe(stuck)} is self-signed and not trusted")]
    return [_Problem(_S.SIGNER_NOT_FOUND, _no_issuer(stuck))]


def _link_failure(child: x509.Certificate, issuer: x509.Certificate) -> str | None:
    """Why ``issuer``'s key does not verify ``child``'s signature, or None if it does.

    A signature algorithm outside the set is reported on its own
    (INSECURE_ALGORITHM); such a link is judged by names alone.
    """
    if _signature_algorithm_problems(child, _RFC5280):
        return None
    try:
        child.verify_directly_issued_by(issuer)
    except InvalidSignature:
        # Like cryptography's verifier: a candidate whose key did not sign the
        # child is not its issuer.
        return (
            f"the signature on {_describe(child)} does not verify with the key of "
            f"{_describe(issuer)}"
        )
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        return (
            f"cannot check the signature on {_describe(child)} with the key of "
            f"{_describe(issuer)}: {exc}"
        )
    return None


# --- the checks both validators' classifications share -------------------------------------


def _basic_problems(
    cert: x509.Certificate,
    exts: x509.Extensions | None,
    *,
    when: datetime.datetime,
    profile: _Profile,
    is_leaf: bool,
) -> list[_Problem]:
    """Version, key, validity at ``when`` and critical extensions, for any certificate."""
    problems: list[_Problem] = []
    if cert.version != x509.Version.v3:
        problems.append(_Problem(_S.INVALID, f"{_describe(cert)} is not an X.509 v3 certificate"))
    problems += _key_problems(cert, allow_eddsa=is_leaf or profile.eddsa_issuers)
    if when < cert.not_valid_before_utc:
        problems.append(
            _Problem(
                _S.NOT_ACTIVATED,
                f"{_describe(cert)} is not yet valid (notBefore {cert.not_valid_before_utc})",
            )
        )
    if when > cert.not_valid_after_utc:
        problems.append(
            _Problem(
                _S.EXPIRED,
                f"{_describe(cert)} has expired (notAfter {cert.not_valid_after_utc})",
            )
        )
    for ext in exts or ():
        if ext.critical and ext.oid not in profile.understood_critical:
            problems.append(
                _Problem(
                    _S.UNKNOWN_CRIT_EXTENSIONS,
                    f"{_describe(cert)} has an unknown critical extension {ext.oid.dotted_string}",
                )
            )
    return problems


def _key_problems(cert: x509.Certificate, *, allow_eddsa: bool) -> list[_Problem]:
    """The web-PKI key set (RSA >= 2048 bits, P-256/384/521), plus EdDSA if allowed."""
    try:
        key = cert.public_key()
    except UnsupportedAlgorithm as exc:
        return [
            _Problem(
                _S.INSECURE_ALGORITHM,
                f"{_describe(cert)} has a key the web PKI does not permit "
                f"({cert.public_key_algorithm_oid.dotted_string}: {exc})",
            )
        ]
    except ValueError as exc:
        return [_Problem(_S.INVALID, f"the key of {_describe(cert)} is unusable: {exc}")]
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey) and allow_eddsa:
        return []
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size >= _MIN_RSA_BITS:
            return []
        detail = f"a {key.key_size}-bit RSA key, below the {_MIN_RSA_BITS} bits required"
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name in _CURVES:
            return []
        detail = f"an ECDSA key on {key.curve.name}, not P-256, P-384 or P-521"
    else:
        detail = type(key).__name__
    return [
        _Problem(
            _S.INSECURE_ALGORITHM,
            f"{_describe(cert)} has a key the web PKI does not permit ({detail})",
        )
    ]


def _signature_algorithm_problems(child: x509.Certificate, profile: _Profile) -> list[_Problem]:
    algorithm = child.signature_algorithm_oid
    allowed = _SIGNATURES if profile.eddsa_issuers else _WEBPKI_SIGNATURES
    if algorithm in allowed and (
        algorithm != SignatureAlgorithmOID.RSASSA_PSS or _has_pss_hash(child)
    ):
        return []
    return [
        _Problem(
            _S.INSECURE_ALGORITHM,
            f"{_describe(child)} is signed with {_signature_name(child)}, "
            "which the web PKI does not permit",
        )
    ]


def _signature_name(cert: x509.Certificate) -> str:
    dotted = cert.signature_algorithm_oid.dotted_string
    try:
        digest = cert.signature_hash_algorithm
    except (UnsupportedAlgorithm, ValueError):
        # ValueError: RSA-PSS without (or with broken) parameters.
        return dotted
    return dotted if digest is None else f"{digest.name.upper()} ({dotted})"


def _has_pss_hash(cert: x509.Certificate) -> bool:
    try:
        return isinstance(cert.signature_hash_algorithm, _PSS_HASHES)
    except (UnsupportedAlgorithm, ValueError):
        # ValueError: RSA-PSS without (or with broken) parameters, which the
        # web PKI does not permit: an insecure algorithm, not a crash.
        return False


def _leaf_problems(
    leaf: x509.Certificate,
    exts: x509.Extensions,
    *,
    purpose: Purpose,
    wanted: x509.ObjectIdentifier,
    server_name: str | None,
) -> list[_Problem]:
    """What makes ``leaf`` unfit to stand for the peer: purpose and names."""
    problems: list[_Problem] = []
    constraints = _find(exts, x509.BasicConstraints)
    if constraints is not None and constraints.ca:
        problems.append(
            _Problem(
                _S.PURPOSE_MISMATCH,
                f"{_describe(leaf)} is a CA certificate (basicConstraints cA), "
                "not an end-entity certificate",
            )
        )
    problems += _leaf_usage_problems(leaf, exts)
    usage = _find(exts, x509.KeyUsage)
    if usage is not None and usage.key_cert_sign:
        problems.append(
            _Problem(
                _S.PURPOSE_MISMATCH,
                f"the keyUsage of {_describe(leaf)} includes keyCertSign, which an "
                "end-entity certificate must not assert",
            )
        )
    if not _eku_allows(_find(exts, x509.ExtendedKeyUsage), wanted):
        problems.append(
            _Problem(
                _S.PURPOSE_MISMATCH,
                f"the extendedKeyUsage of {_describe(leaf)} does not allow {purpose} "
                "authentication",
            )
        )
    san = _find(exts, x509.SubjectAlternativeName)
    if san is None and purpose == "server":
        problems.append(
            _Problem(_S.UNEXPECTED_OWNER, f"{_describe(leaf)} has no subjectAltName extension")
        )
    elif san is not None and server_name is not None and not _names_match(san, server_name):
        problems.append(
            _Problem(
                _S.UNEXPECTED_OWNER,
                f"the subjectAltName of {_describe(leaf)} does not match {server_name!r}",
            )
        )
    return problems


def _leaf_usage_problems(leaf: x509.Certificate, exts: x509.Extensions) -> list[_Problem]:
    # RFC 8446 §4.4.2.2: the key signs CertificateVerify, so keyUsage (when
    # present) must allow digitalSignature.
    usage = _find(exts, x509.KeyUsage)
    if usage is None or usage.digital_signature:
        return []
    return [
        _Problem(
            _S.PURPOSE_MISMATCH,
            f"the keyUsage of {_describe(leaf)} does not include digitalSignature",
        )
    ]


def _issuer_problems(
    issuer: x509.Certificate,
    exts: x509.Extensions,
    below: tuple[x509.Certificate, ...],
    wanted: x509.ObjectIdentifier,
    profile: _Profile,
) -> list[_Problem]:
    """CA checks on ``issuer``, which signed ``below[-1]``; ``below[0]`` is the leaf."""
    problems: list[_Problem] = []
    constraints = _find(exts, x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        problems.append(
            _Problem(
                _S.SIGNER_NOT_CA,
                f"{_describe(issuer)} issued a certificate but is not a CA (basicConstraints cA)",
            )
        )
    elif constraints.path_length is not None:
        # RFC 5280 §6.1.4 (l)/(m): self-issued intermediates do not count.
        counted = sum(1 for cert in below[1:] if not _is_self_issued(cert))
        if counted > constraints.path_length:
            problems.append(
                _Problem(
                    _S.SIGNER_CONSTRAINTS_FAILURE,
                    f"{_describe(issuer)} has pathLenConstraint {constraints.path_length} "
                    f"but {counted} intermediates follow it",
                )
            )
    usage = _find(exts, x509.KeyUsage)
    if usage is not None and not usage.key_cert_sign:
        problems.append(
            _Problem(
                _S.SIGNER_CONSTRAINTS_FAILURE,
                f"the keyUsage of {_describe(issuer)} does not include keyCertSign",
            )
        )
    elif usage is None and profile.ca_key_usage_required:
        problems.append(
            _Problem(
                _S.SIGNER_CONSTRAINTS_FAILURE,
                f"{_describe(issuer)} has no keyUsage extension, which the web PKI "
                "requires of a CA",
            )
        )
    # Issuers' EKU restricts what they may issue for, as cryptography's
    # verifier enforces on its path.
    if not _eku_allows(_find(exts, x509.ExtendedKeyUsage), wanted):
        problems.append(
            _Problem(
                _S.PURPOSE_MISMATCH,
                f"the extendedKeyUsage of {_describe(issuer)} does not allow this purpose",
            )
        )
    name_constraints = _find(exts, x509.NameConstraints)
    if name_constraints is not None:
        problems += _name_constraint_problems(
            issuer, name_constraints, below, fail_closed=profile.fail_closed_name_constraints
        )
    return problems


def _name_constraint_problems(
    issuer: x509.Certificate,
    constraints: x509.NameConstraints,
    below: tuple[x509.Certificate, ...],
    *,
    fail_closed: bool,
) -> list[_Problem]:
    permitted = list(constraints.permitted_subtrees or ())
    excluded = list(constraints.excluded_subtrees or ())
    for subtree in (*permitted, *excluded):
        if fail_closed and not isinstance(subtree, x509.DNSName | x509.IPAddress):
            # Fail closed: a constraint we cannot evaluate is not ignored.
            return [
                _Problem(
                    _S.SIGNER_CONSTRAINTS_FAILURE,
                    f"the nameConstraints of {_describe(issuer)} include a "
                    f"{type(subtree).__name__} subtree, which this validator does not check",
                )
            ]
    problems: list[_Problem] = []
    # RFC 5280 §6.1.3 (b)/(c): constraints bind the leaf and every
    # intermediate below the issuer except self-issued ones.
    for cert in below:
        if cert is not below[0] and _is_self_issued(cert):
            continue
        parsed = _parse_extensions(cert)
        san = None if isinstance(parsed, _Problem) else _find(parsed, x509.SubjectAlternativeName)
        for name in san or ():
            if isinstance(name, x509.DNSName):
                ok = _dns_allowed(name.value, permitted, excluded)
            elif isinstance(name, x509.IPAddress):
                ok = _ip_allowed(name.value, permitted, excluded)
            else:
                continue
            if not ok:
                problems.append(
                    _Problem(
                        _S.SIGNER_CONSTRAINTS_FAILURE,
                        f"the subjectAltName entry {name.value!s} of {_describe(cert)} "
                        f"violates the nameConstraints of {_describe(issuer)}",
                    )
                )
    return problems


def _dns_allowed(
    name: str, permitted: Sequence[x509.GeneralName], excluded: Sequence[x509.GeneralName]
) -> bool:
    allowed = [c.value.lower() for c in permitted if isinstance(c, x509.DNSName)]
    denied = [c.value.lower() for c in excluded if isinstance(c, x509.DNSName)]
    name = name.lower()
    if (allowed or denied) and "" in name.split("."):
        # RFC 5280 §4.2.1.6 preferred name syntax: no empty label (a trailing
        # dot would otherwise slip past an excluded subtree).
        return False
    if name.startswith("*."):
        # A wildcard names every host one label below its base: it must fit
        # a permitted subtree whole, and may reach into no excluded one.
        base = name[2:]
        if allowed and not any(_dns_within(base, c, strict=False) for c in allowed):
            return False
        return not any(
            _dns_within(base, c, strict=False) or base == c.split(".", 1)[-1] for c in denied
        )
    if allowed and not any(_dns_within(name, c, strict=True) for c in allowed):
        return False
    return not any(_dns_within(name, c, strict=True) for c in denied)


def _dns_within(name: str, constraint: str, *, strict: bool) -> bool:
    """Whether ``name`` lies in the subtree ``constraint`` (RFC 5280 §4.2.1.10).

    With ``strict=False``, ``name`` is a wildcard's base and stands for the
    hosts one label below it.
    """
    if not constraint:
        return True
    if constraint.startswith("."):
        # ".example.com" (an OpenSSL/NSS extension): subdomains only.
        parent = constraint[1:]
        return name.endswith(constraint) or (not strict and name == parent)
    return name == constraint or name.endswith("." + constraint)


def _ip_allowed(
    address: _IPValue,
    permitted: Sequence[x509.GeneralName],
    excluded: Sequence[x509.GeneralName],
) -> bool:
    if not isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return False  # a network in a subjectAltName is malformed
    allowed = [c.value for c in permitted if isinstance(c, x509.IPAddress)]
    denied = [c.value for c in excluded if isinstance(c, x509.IPAddress)]
    if allowed and not any(_in_network(address, net) for net in allowed):
        return False
    return not any(_in_network(address, net) for net in denied)


def _in_network(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    network: _IPValue,
) -> bool:
    if isinstance(network, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return network.version == address.version and address in network
    return address == network


def _names_match(san: x509.SubjectAlternativeName, server_name: str) -> bool:
    address = ip_literal(server_name)  # cached: this runs on every handshake
    if address is None:
        # RFC 6125 §6.4.4: with a subjectAltName present the CN is never consulted.
        patterns = san.get_values_for_type(x509.DNSName)
        return any(_dns_matches(pattern, server_name) for pattern in patterns)
    return address in san.get_values_for_type(x509.IPAddress)


def _dns_matches(pattern: str, host: str) -> bool:
    """RFC 6125 §6.4.3: case-insensitive, ``*`` only as the whole left-most label."""
    if not (pattern.isascii() and host.isascii()) or "*" in host:
        return False
    host_labels = host.lower().split(".")
    pattern_labels = pattern.lower().split(".")
    if "" in host_labels or "" in pattern_labels:
        return False
    if pattern_labels[0] != "*":
        return "*" not in pattern and pattern_labels == host_labels
    rest = pattern_labels[1:]
    # "*.com" would span a whole top-level domain; "*.*.x" or "a.*.x" are not
    # wildcards RFC 6125 allows.
    if len(rest) < 2 or any("*" in label for label in rest):
        return False
    return len(host_labels) == len(rest) + 1 and host_labels[1:] == rest


def _may_have_issued(issuer: x509.Certificate, child: x509.Certificate) -> bool:
    if issuer.subject != child.issuer:
        return False
    # RFC 5280 §4.2.1.1: when both identifiers are there, they must agree.
    child_exts, issuer_exts = _parse_extensions(child), _parse_extensions(issuer)
    if isinstance(child_exts, _Problem) or isinstance(issuer_exts, _Problem):
        # Unparseable extensions are refused with a clear message later.
        return True
    aki = _find(child_exts, x509.AuthorityKeyIdentifier)
    ski = _find(issuer_exts, x509.SubjectKeyIdentifier)
    if aki is None or aki.key_identifier is None or ski is None:
        return True
    return aki.key_identifier == ski.digest


def _is_self_issued(cert: x509.Certificate) -> bool:
    return cert.subject == cert.issuer


def _parse_problem(cert: x509.Certificate, index: int) -> _Problem | None:
    try:
        _ = (
            cert.version,
            cert.subject,
            cert.issuer,
            cert.not_valid_before_utc,
            cert.not_valid_after_utc,
            cert.signature_algorithm_oid,
            cert.public_key_algorithm_oid,
        )
    except (ValueError, x509.InvalidVersion) as exc:
        return _Problem(_S.INVALID, f"certificate {index} of the chain does not parse: {exc}")
    return None


def _parse_extensions(cert: x509.Certificate) -> x509.Extensions | _Problem:
    try:
        return cert.extensions
    except (x509.DuplicateExtension, x509.UnsupportedGeneralNameType, ValueError) as exc:
        return _Problem(_S.INVALID, f"the extensions of {_describe(cert)} do not parse: {exc}")


def _find(exts: x509.Extensions, kind: type[_E]) -> _E | None:
    for ext in exts:
        if isinstance(ext.value, kind):
            return ext.value
    return None


def _describe(cert: x509.Certificate) -> str:
    return f"the certificate for {cert.subject.rfc4514_string()!r}"


def _no_issuer(stuck: x509.Certificate) -> str:
    return (
        f"no issuer of {_describe(stuck)} (issued by {stuck.issuer.rfc4514_string()!r}) "
        "is among the supplied intermediates or the trust anchors"
    )


_BARE_STORE: Final = (
    "the chain uses Ed25519/Ed448 signatures, which need the trust anchors "
    "themselves; the verifier was given a bare cryptography Store"
)

# Signatures that mark an EdDSA issuer, and EdDSA subject keys.
_EDDSA_SIGNATURES: Final = frozenset({SignatureAlgorithmOID.ED25519, SignatureAlgorithmOID.ED448})
_EDDSA_KEYS: Final = frozenset({PublicKeyAlgorithmOID.ED25519, PublicKeyAlgorithmOID.ED448})

# cryptography's web-PKI signature set (RSA PKCS#1 v1.5 and PSS, ECDSA, all
# over SHA-2 256/384/512), and the same plus EdDSA for our validator. For PSS
# the hash is checked; the MGF1 hash and salt length are not (cryptography
# exposes them only privately).
_WEBPKI_SIGNATURES: Final = frozenset(
    {
        SignatureAlgorithmOID.RSA_WITH_SHA256,
        SignatureAlgorithmOID.RSA_WITH_SHA384,
        SignatureAlgorithmOID.RSA_WITH_SHA512,
        SignatureAlgorithmOID.RSASSA_PSS,
        SignatureAlgorithmOID.ECDSA_WITH_SHA256,
        SignatureAlgorithmOID.ECDSA_WITH_SHA384,
        SignatureAlgorithmOID.ECDSA_WITH_SHA512,
    }
)
_SIGNATURES: Final = _WEBPKI_SIGNATURES | _EDDSA_SIGNATURES
_PSS_HASHES: Final = (hashes.SHA256, hashes.SHA384, hashes.SHA512)
_CURVES: Final = frozenset({"secp256r1", "secp384r1", "secp521r1"})
# CA/Browser Forum baseline requirements §6.1.5, and cryptography's minimum.
_MIN_RSA_BITS: Final = 2048

_WEBPKI: Final = _Profile(
    # The extensions cryptography's policy processes; it refuses any other
    # critical one.
    understood_critical=frozenset(
        {
            ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
            ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
            ExtensionOID.SUBJECT_KEY_IDENTIFIER,
            ExtensionOID.KEY_USAGE,
            ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
            ExtensionOID.BASIC_CONSTRAINTS,
            ExtensionOID.NAME_CONSTRAINTS,
            ExtensionOID.EXTENDED_KEY_USAGE,
        }
    ),
    eddsa_issuers=False,
    ca_key_usage_required=True,
    fail_closed_name_constraints=False,
)
_RFC5280: Final = _Profile(
    # RFC 5280 §4.2: any other critical extension is refused. A critical
    # certificatePolicies is understood (this client requires no particular
    # policy: the initial policy set is anyPolicy); policyConstraints and
    # inhibitAnyPolicy can demand an explicit policy on the path (§6.1.4,
    # §6.1.5), which this validator does not process: refused (fail closed).
    understood_critical=frozenset(
        {
            ExtensionOID.BASIC_CONSTRAINTS,
            ExtensionOID.KEY_USAGE,
            ExtensionOID.EXTENDED_KEY_USAGE,
            ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
            ExtensionOID.NAME_CONSTRAINTS,
            ExtensionOID.CERTIFICATE_POLICIES,
        }
    ),
    eddsa_issuers=True,
    ca_key_usage_required=False,
    fail_closed_name_constraints=True,
)

# Candidate issuers tried per chain before path building gives up; a chain
# with a few cross-signed intermediates needs far fewer.
_MAX_CANDIDATE_CHECKS: Final = 64
