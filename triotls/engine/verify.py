"""Certificate chain and peer identity verification.

Path building and validation is ``cryptography.x509.verification``'s. The
extension policy is relaxed for the end-entity only where common test CAs
(trustme) mark subjectAltName and extendedKeyUsage critical; extendedKeyUsage
is then checked here, so a wrong-purpose chain is still refused.

Theory of operation: the EdDSA fallback
---------------------------------------

cryptography's web-PKI policy refuses Ed25519 and Ed448 *issuer* keys (and so
every Ed25519/Ed448 certificate signature), although RFC 8446 §9.1 lists
ed25519 among the signature schemes a TLS 1.3 client should support, and
OpenSSL and GnuTLS accept such chains. It does accept an EdDSA key on the
end-entity under an RSA or ECDSA issuer, so those chains stay on its path.

:func:`verify_chain` therefore looks at the certificates up front. When any
supplied certificate carries an Ed25519/Ed448 signature (or an intermediate
carries such a key), it validates the chain with :func:`_verify_eddsa_chain`,
a compact RFC 5280 §6 validator; every other chain goes to cryptography,
unchanged. The fallback:

1. checks the leaf on its own: parseable v3 certificate, permitted key,
   validity at ``now``, not a CA, no unknown critical extension, keyUsage
   (if present) has digitalSignature, extendedKeyUsage allows the purpose,
   subjectAltName present and matching ``server_name`` (RFC 6125 §6.4);
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
survives, the first refusal is raised; if no candidate was ever found, the
chain does not reach a trust anchor (unknown_ca).
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
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

from ..errors import CertificateVerificationError
from .enums import AlertDescription

__all__ = ["TrustAnchors", "VerifiedChain", "verify_chain"]

Purpose = Literal["server", "client"]
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

    The EdDSA fallback needs the anchor certificates themselves, which a bare
    ``cryptography`` ``Store`` does not expose.
    """

    @property
    def certificates(self) -> tuple[x509.Certificate, ...]:
        """The trusted root certificates."""
        ...

    @property
    def store(self) -> xv.Store:
        """The same certificates as a ``cryptography`` store."""
        ...


def verify_chain(
    chain: Sequence[x509.Certificate],
    store: TrustAnchors | xv.Store,
    *,
    purpose: Purpose,
    server_name: str | None,
    now: float,
    max_depth: int = 8,
) -> VerifiedChain:
    """Verify ``chain`` (leaf first) against ``store``.

    Chains with an Ed25519/Ed448 signature are validated by this module's own
    RFC 5280 validator (see the module docstring), which needs the anchors:
    pass a :class:`TrustAnchors` (such as ``config.trust_store``). Given a
    bare ``cryptography`` ``Store``, such a chain is refused (unknown_ca).

    Args:
        chain: the peer's certificates, leaf first.
        store: the trust anchors.
        purpose: which extendedKeyUsage the leaf (and its issuers) must allow.
        server_name: the DNS name or IP literal the leaf must name, or None to
            skip the name check.
        now: the verification time, in seconds since the epoch.
        max_depth: the most intermediates a path may hold.

    Returns:
        The validated path, leaf first, ending with the trust anchor.

    Raises:
        CertificateVerificationError: with the alert that fits the failure.
    """
    leaf, intermediates = chain[0], list(chain[1:])
    when = datetime.datetime.fromtimestamp(now, tz=datetime.timezone.utc)
    if _needs_eddsa_validator(chain):
        if isinstance(store, xv.Store):
            message = (
                "the chain uses Ed25519/Ed448 signatures, which need the trust anchors "
                "themselves; verify_chain was given a bare cryptography Store"
            )
            raise CertificateVerificationError(
                f"the peer's certificate did not verify: {message}",
                alert=AlertDescription.UNKNOWN_CA,
                reasons=(message,),
            )
        return _verify_eddsa_chain(
            chain,
            store.certificates,
            purpose=purpose,
            server_name=server_name,
            when=when,
            max_depth=max_depth,
        )
    builder = (
        xv.PolicyBuilder()
        .store(store if isinstance(store, xv.Store) else store.store)
        .time(when)
        .max_chain_depth(max_depth)
        .extension_policies(
            ca_policy=xv.ExtensionPolicy.webpki_defaults_ca(), ee_policy=_eku_checker(purpose)
        )
    )
    try:
        if server_name is not None:
            subject: x509.DNSName | x509.IPAddress
            try:
                subject = x509.IPAddress(ipaddress.ip_address(server_name))
            except ValueError:
                subject = x509.DNSName(server_name)
            path = builder.build_server_verifier(subject).verify(leaf, intermediates)
        else:
            # No name to check (check_hostname=False, or a client certificate):
            # the client verifier validates the path without a subject, and
            # the extension policy above checks the purpose.
            path = builder.build_client_verifier().verify(leaf, intermediates).chain
    except xv.VerificationError as exc:
        message = str(exc)
        raise CertificateVerificationError(
            f"the peer's certificate did not verify: {message}",
            alert=_alert_for(message, leaf, now),
            reasons=(message,),
        ) from None
    return VerifiedChain(chain=tuple(path))


def _eku_checker(purpose: Purpose) -> xv.ExtensionPolicy:
    wanted = _wanted_eku(purpose)

    def check(
        _policy: xv.Policy, _cert: x509.Certificate, ext: x509.ExtendedKeyUsage | None
    ) -> None:
        if not _eku_allows(ext, wanted):
            raise ValueError(f"extendedKeyUsage does not allow {purpose} authentication")

    crit = xv.Criticality.AGNOSTIC
    return (
        xv.ExtensionPolicy.webpki_defaults_ee()
        .require_present(x509.SubjectAlternativeName, crit, None)
        .may_be_present(x509.ExtendedKeyUsage, crit, check)
    )


def _wanted_eku(purpose: Purpose) -> x509.ObjectIdentifier:
    return (
        ExtendedKeyUsageOID.SERVER_AUTH if purpose == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
    )


def _eku_allows(ext: x509.ExtendedKeyUsage | None, wanted: x509.ObjectIdentifier) -> bool:
    # Absent means unrestricted; present must name the purpose or anyExtendedKeyUsage.
    return ext is None or wanted in ext or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in ext


def _alert_for(message: str, leaf: x509.Certificate, now: float) -> AlertDescription:
    when = datetime.datetime.fromtimestamp(now, tz=datetime.timezone.utc)
    if when > leaf.not_valid_after_utc or when < leaf.not_valid_before_utc:
        return AlertDescription.CERTIFICATE_EXPIRED
    lowered = message.lower()
    if "candidates exhausted" in lowered or "no valid" in lowered or "issuer" in lowered:
        return AlertDescription.UNKNOWN_CA
    if "expired" in lowered or "not yet valid" in lowered:
        return AlertDescription.CERTIFICATE_EXPIRED
    return AlertDescription.BAD_CERTIFICATE


# --- the EdDSA fallback (RFC 5280 §6) -------------------------------------------------------


def _needs_eddsa_validator(chain: Sequence[x509.Certificate]) -> bool:
    # Every EdDSA issuer on a path, the trust anchor included, signed a
    # certificate that the peer supplied, so the signatures reveal them.
    # cryptography accepts an EdDSA key on the end-entity itself, so a leaf
    # key alone does not count.
    return any(cert.signature_algorithm_oid in _EDDSA_SIGNATURES for cert in chain) or any(
        cert.public_key_algorithm_oid in _EDDSA_KEYS for cert in chain[1:]
    )


def _verify_eddsa_chain(
    chain: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    *,
    purpose: Purpose,
    server_name: str | None,
    when: datetime.datetime,
    max_depth: int,
) -> VerifiedChain:
    leaf = chain[0]
    wanted = _wanted_eku(purpose)
    try:
        _check_leaf(leaf, purpose=purpose, wanted=wanted, server_name=server_name, when=when)
        search = _PathSearch(
            intermediates=chain[1:], anchors=anchors, wanted=wanted, when=when, max_depth=max_depth
        )
        path = search.run(leaf)
    except CertificateVerificationError as exc:
        message = str(exc)
        raise CertificateVerificationError(
            f"the peer's certificate did not verify: {message}",
            alert=exc.sent_alert,
            reasons=exc.reasons or (message,),
        ) from None
    return VerifiedChain(chain=path)


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
        self._refusals: list[CertificateVerificationError] = []
        self._dead_end: x509.Certificate | None = None

    def run(self, leaf: x509.Certificate) -> tuple[x509.Certificate, ...]:
        found = self._extend((leaf,))
        if found is not None:
            return found
        if self._refusals:
            first = self._refusals[0]
            raise CertificateVerificationError(
                str(first),
                alert=first.sent_alert,
                reasons=tuple(str(refusal) for refusal in self._refusals),
            )
        stuck = self._dead_end if self._dead_end is not None else leaf
        raise _refuse(
            AlertDescription.UNKNOWN_CA,
            f"no issuer of {_describe(stuck)} (issued by "
            f"{stuck.issuer.rfc4514_string()!r}) is among the supplied intermediates "
            "or the trust anchors",
        )

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
                    _refuse(
                        AlertDescription.UNKNOWN_CA,
                        f"the path through {_describe(issuer)} would hold more than "
                        f"{self._max_depth} intermediates",
                    )
                )
                continue
            self._budget -= 1
            if self._budget < 0:
                raise _refuse(
                    AlertDescription.UNKNOWN_CA,
                    f"path building gave up after {_MAX_CANDIDATE_CHECKS} candidate issuers",
                )
            try:
                _check_signed_by(child, issuer)
                _check_issuer(issuer, path, wanted=self._wanted, when=self._when)
            except CertificateVerificationError as exc:
                self._refusals.append(exc)
                continue
            if is_anchor:
                return (*path, issuer)
            found = self._extend((*path, issuer))
            if found is not None:
                return found
        return None


def _may_have_issued(issuer: x509.Certificate, child: x509.Certificate) -> bool:
    if issuer.subject != child.issuer:
        return False
    # RFC 5280 §4.2.1.1: when both identifiers are there, they must agree.
    try:
        aki = _find(_extensions(child), x509.AuthorityKeyIdentifier)
        ski = _find(_extensions(issuer), x509.SubjectKeyIdentifier)
    except CertificateVerificationError:
        # Unparseable extensions are refused with a clear message later.
        return True
    if aki is None or aki.key_identifier is None or ski is None:
        return True
    return aki.key_identifier == ski.digest


def _check_leaf(
    leaf: x509.Certificate,
    *,
    purpose: Purpose,
    wanted: x509.ObjectIdentifier,
    server_name: str | None,
    when: datetime.datetime,
) -> None:
    exts = _extensions(leaf)
    _check_basics(leaf, exts, when)
    constraints = _find(exts, x509.BasicConstraints)
    if constraints is not None and constraints.ca:
        raise _refuse(
            AlertDescription.BAD_CERTIFICATE,
            f"{_describe(leaf)} is a CA certificate (basicConstraints cA), "
            "not an end-entity certificate",
        )
    usage = _find(exts, x509.KeyUsage)
    if usage is not None and not usage.digital_signature:
        raise _refuse(
            AlertDescription.BAD_CERTIFICATE,
            f"the keyUsage of {_describe(leaf)} does not include digitalSignature",
        )
    if not _eku_allows(_find(exts, x509.ExtendedKeyUsage), wanted):
        raise _refuse(
            AlertDescription.BAD_CERTIFICATE,
            f"the extendedKeyUsage of {_describe(leaf)} does not allow {purpose} authentication",
        )
    san = _find(exts, x509.SubjectAlternativeName)
    if san is None:
        raise _refuse(
            AlertDescription.BAD_CERTIFICATE, f"{_describe(leaf)} has no subjectAltName extension"
        )
    if server_name is not None and not _names_match(san, server_name):
        raise _refuse(
            AlertDescription.BAD_CERTIFICATE,
            f"the subjectAltName of {_describe(leaf)} does not match {server_name!r}",
        )


def _check_issuer(
    issuer: x509.Certificate,
    below: tuple[x509.Certificate, ...],
    *,
    wanted: x509.ObjectIdentifier,
    when: datetime.datetime,
) -> None:
    """CA checks on ``issuer``, which signed ``below[-1]``; ``below[0]`` is the leaf."""
    exts = _extensions(issuer)
    _check_basics(issuer, exts, when)
    constraints = _find(exts, x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        raise _refuse(
            AlertDescription.BAD_CERTIFICATE,
            f"{_describe(issuer)} issued a certificate but is not a CA (basicConstraints cA)",
        )
    if constraints.path_length is not None:
        # RFC 5280 §6.1.4 (l)/(m): self-issued intermediates do not count.
        counted = sum(1 for cert in below[1:] if not _is_self_issued(cert))
        if counted > constraints.path_length:
            raise _refuse(
                AlertDescription.BAD_CERTIFICATE,
                f"{_describe(issuer)} has pathLenConstraint {constraints.path_length} "
                f"but {counted} intermediates follow it",
            )
    usage = _find(exts, x509.KeyUsage)
    if usage is not None and not usage.key_cert_sign:
        raise _refuse(
            AlertDescription.BAD_CERTIFICATE,
            f"the keyUsage of {_describe(issuer)} does not include keyCertSign",
        )
    # Issuers' EKU restricts what they may issue for, as cryptography's
    # verifier enforces on its path.
    if not _eku_allows(_find(exts, x509.ExtendedKeyUsage), wanted):
        raise _refuse(
            AlertDescription.BAD_CERTIFICATE,
            f"the extendedKeyUsage of {_describe(issuer)} does not allow this purpose",
        )
    name_constraints = _find(exts, x509.NameConstraints)
    if name_constraints is not None:
        _check_name_constraints(issuer, name_constraints, below)


def _check_basics(cert: x509.Certificate, exts: x509.Extensions, when: datetime.datetime) -> None:
    if cert.version != x509.Version.v3:
        raise _refuse(
            AlertDescription.BAD_CERTIFICATE, f"{_describe(cert)} is not an X.509 v3 certificate"
        )
    _check_public_key(cert)
    if when < cert.not_valid_before_utc:
        raise _refuse(
            AlertDescription.CERTIFICATE_EXPIRED,
            f"{_describe(cert)} is not yet valid (notBefore {cert.not_valid_before_utc})",
        )
    if when > cert.not_valid_after_utc:
        raise _refuse(
            AlertDescription.CERTIFICATE_EXPIRED,
            f"{_describe(cert)} has expired (notAfter {cert.not_valid_after_utc})",
        )
    for ext in exts:
        if ext.critical and ext.oid not in _UNDERSTOOD_CRITICAL:
            raise _refuse(
                AlertDescription.BAD_CERTIFICATE,
                f"{_describe(cert)} has an unknown critical extension {ext.oid.dotted_string}",
            )


def _check_public_key(cert: x509.Certificate) -> None:
    """The web-PKI key set (RSA >= 2048 bits, P-256/384/521) plus Ed25519 and Ed448."""
    try:
        key = cert.public_key()
    except (UnsupportedAlgorithm, ValueError) as exc:
        raise _refuse(
            AlertDescription.BAD_CERTIFICATE, f"the key of {_describe(cert)} is unusable: {exc}"
        ) from None
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048 and key.key_size % 8 == 0:
        return
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in _CURVES:
        return
    raise _refuse(
        AlertDescription.BAD_CERTIFICATE,
        f"{_describe(cert)} has a key the web PKI does not permit "
        f"({cert.public_key_algorithm_oid.dotted_string})",
    )


def _check_signed_by(child: x509.Certificate, issuer: x509.Certificate) -> None:
    algorithm = child.signature_algorithm_oid
    if algorithm not in _SIGNATURES or (
        algorithm == SignatureAlgorithmOID.RSASSA_PSS and not _has_pss_hash(child)
    ):
        raise _refuse(
            AlertDescription.BAD_CERTIFICATE,
            f"{_describe(child)} is signed with {algorithm.dotted_string}, "
            "which the web PKI does not permit",
        )
    try:
        child.verify_directly_issued_by(issuer)
    except InvalidSignature:
        # Like cryptography's verifier: a candidate whose key did not sign the
        # child is not its issuer, so the chain does not reach an anchor.
        raise _refuse(
            AlertDescription.UNKNOWN_CA,
            f"the signature on {_describe(child)} does not verify with the key of "
            f"{_describe(issuer)}",
        ) from None
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise _refuse(
            AlertDescription.BAD_CERTIFICATE,
            f"cannot check the signature on {_describe(child)} with the key of "
            f"{_describe(issuer)}: {exc}",
        ) from None


def _has_pss_hash(cert: x509.Certificate) -> bool:
    try:
        return isinstance(cert.signature_hash_algorithm, _PSS_HASHES)
    except UnsupportedAlgorithm:
        return False


def _check_name_constraints(
    issuer: x509.Certificate,
    constraints: x509.NameConstraints,
    below: tuple[x509.Certificate, ...],
) -> None:
    permitted = list(constraints.permitted_subtrees or ())
    excluded = list(constraints.excluded_subtrees or ())
    for subtree in (*permitted, *excluded):
        if not isinstance(subtree, x509.DNSName | x509.IPAddress):
            # Fail closed: a constraint we cannot evaluate is not ignored.
            raise _refuse(
                AlertDescription.BAD_CERTIFICATE,
                f"the nameConstraints of {_describe(issuer)} include a "
                f"{type(subtree).__name__} subtree, which this validator does not check",
            )
    # RFC 5280 §6.1.3 (b)/(c): constraints bind the leaf and every
    # intermediate below the issuer except self-issued ones.
    for cert in below:
        if cert is not below[0] and _is_self_issued(cert):
            continue
        san = _find(_extensions(cert), x509.SubjectAlternativeName)
        if san is None:
            continue
        for name in san:
            if isinstance(name, x509.DNSName):
                ok = _dns_allowed(name.value, permitted, excluded)
            elif isinstance(name, x509.IPAddress):
                ok = _ip_allowed(name.value, permitted, excluded)
            else:
                continue
            if not ok:
                raise _refuse(
                    AlertDescription.BAD_CERTIFICATE,
                    f"the subjectAltName entry {name.value!s} of {_describe(cert)} violates "
                    f"the nameConstraints of {_describe(issuer)}",
                )


def _dns_allowed(
    name: str, permitted: Sequence[x509.GeneralName], excluded: Sequence[x509.GeneralName]
) -> bool:
    allowed = [c.value.lower() for c in permitted if isinstance(c, x509.DNSName)]
    denied = [c.value.lower() for c in excluded if isinstance(c, x509.DNSName)]
    name = name.lower()
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
    try:
        address = ipaddress.ip_address(server_name)
    except ValueError:
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


def _is_self_issued(cert: x509.Certificate) -> bool:
    return cert.subject == cert.issuer


def _extensions(cert: x509.Certificate) -> x509.Extensions:
    try:
        return cert.extensions
    except (x509.DuplicateExtension, x509.UnsupportedGeneralNameType, ValueError) as exc:
        raise _refuse(
            AlertDescription.BAD_CERTIFICATE,
            f"the extensions of {_describe(cert)} do not parse: {exc}",
        ) from None


def _find(exts: x509.Extensions, kind: type[_E]) -> _E | None:
    for ext in exts:
        if isinstance(ext.value, kind):
            return ext.value
    return None


def _describe(cert: x509.Certificate) -> str:
    return f"the certificate for {cert.subject.rfc4514_string()!r}"


def _refuse(alert: AlertDescription, message: str) -> CertificateVerificationError:
    return CertificateVerificationError(message, alert=alert, reasons=(message,))


# Signatures that mark an EdDSA issuer, and EdDSA subject keys.
_EDDSA_SIGNATURES: Final = frozenset({SignatureAlgorithmOID.ED25519, SignatureAlgorithmOID.ED448})
_EDDSA_KEYS: Final = frozenset({PublicKeyAlgorithmOID.ED25519, PublicKeyAlgorithmOID.ED448})

# cryptography's web-PKI signature set (RSA PKCS#1 v1.5 and PSS, ECDSA, all
# over SHA-2 256/384/512) plus EdDSA. For PSS the hash is checked; the MGF1
# hash and salt length are not (cryptography exposes them only privately).
_SIGNATURES: Final = frozenset(
    {
        SignatureAlgorithmOID.RSA_WITH_SHA256,
        SignatureAlgorithmOID.RSA_WITH_SHA384,
        SignatureAlgorithmOID.RSA_WITH_SHA512,
        SignatureAlgorithmOID.RSASSA_PSS,
        SignatureAlgorithmOID.ECDSA_WITH_SHA256,
        SignatureAlgorithmOID.ECDSA_WITH_SHA384,
        SignatureAlgorithmOID.ECDSA_WITH_SHA512,
        *_EDDSA_SIGNATURES,
    }
)
_PSS_HASHES: Final = (hashes.SHA256, hashes.SHA384, hashes.SHA512)
_CURVES: Final = frozenset({"secp256r1", "secp384r1", "secp521r1"})

# Critical extensions the fallback accepts (RFC 5280 §4.2: any other critical
# one is refused). The three policy extensions are accepted but not processed:
# a web-PKI client requires no particular certificate policy.
_UNDERSTOOD_CRITICAL: Final = frozenset(
    {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.NAME_CONSTRAINTS,
        ExtensionOID.CERTIFICATE_POLICIES,
        ExtensionOID.POLICY_CONSTRAINTS,
        ExtensionOID.INHIBIT_ANY_POLICY,
    }
)

# Candidate issuers tried per chain before path building gives up; a chain
# with a few cross-signed intermediates needs far fewer.
_MAX_CANDIDATE_CHECKS: Final = 64
