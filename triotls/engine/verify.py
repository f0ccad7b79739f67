"""Certificate chain and peer identity verification.

Path building and validation is ``cryptography.x509.verification``'s. The
extension policy is relaxed for the end-entity only where common test CAs
(trustme) mark subjectAltName and extendedKeyUsage critical; extendedKeyUsage
is then checked here, so a wrong-purpose chain is still refused.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.x509 import verification as xv
from cryptography.x509.oid import ExtendedKeyUsageOID

from ..errors import CertificateVerificationError
from .enums import AlertDescription

__all__ = ["VerifiedChain", "verify_chain"]

Purpose = Literal["server", "client"]


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedChain:
    """Proof that a chain was verified: the path found, leaf first."""

    chain: tuple[x509.Certificate, ...]


def _eku_checker(purpose: Purpose) -> xv.ExtensionPolicy:
    wanted = (
        ExtendedKeyUsageOID.SERVER_AUTH if purpose == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
    )

    def check(
        _policy: xv.Policy, _cert: x509.Certificate, ext: x509.ExtendedKeyUsage | None
    ) -> None:
        if (
            ext is not None
            and wanted not in ext
            and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in ext
        ):
            raise ValueError(f"extendedKeyUsage does not allow {purpose} authentication")

    crit = xv.Criticality.AGNOSTIC
    return (
        xv.ExtensionPolicy.webpki_defaults_ee()
        .require_present(x509.SubjectAlternativeName, crit, None)
        .may_be_present(x509.ExtendedKeyUsage, crit, check)
    )


def verify_chain(
    chain: Sequence[x509.Certificate],
    store: xv.Store,
    *,
    purpose: Purpose,
    server_name: str | None,
    now: float,
    max_depth: int = 8,
) -> VerifiedChain:
    """Verify ``chain`` (leaf first) against ``store``.

    Raises:
        CertificateVerificationError: with the alert that fits the failure.
    """
    leaf, intermediates = chain[0], list(chain[1:])
    when = datetime.datetime.fromtimestamp(now, tz=datetime.timezone.utc)
    builder = (
        xv.PolicyBuilder()
        .store(store)
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
