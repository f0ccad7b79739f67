"""Review round 6, F7 and F8 (revocation.py): the edges around the fixes.

F7: only the newest CRL of an issuer's scope says whether a certificate is on
the list, so a certificateHold a newer list dropped no longer counts; every
authentic CRL is still held to its dates. F8: a delegated OCSP responder's
certificate is held to the key policy and refuses unknown critical extensions.
"""

from __future__ import annotations

import datetime
import subprocess
import sys
from collections.abc import Sequence

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.support.chains import DAY, HOST, NOW, Issued, SigningKey, intermediate, issue, leaf, root
from tests.support.revocation import ocsp_response
from triotls import VerificationResult, VerificationStatus
from triotls.config import TrustStore
from triotls.engine.verify import check_chain

S = VerificationStatus


def _check(
    chain: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    *,
    crls: Sequence[x509.CertificateRevocationList] = (),
    staple: bytes | None = None,
) -> VerificationResult:
    return check_chain(
        chain,
        TrustStore(anchors, crls=crls),
        purpose="server",
        server_name=HOST,
        now=NOW.timestamp(),
        ocsp_response=staple,
        ocsp_requested=staple is not None,
    )


def _crl(
    issuer: Issued,
    number: int | None,
    *,
    last_update: datetime.datetime,
    next_update: datetime.datetime,
    listed: x509.Certificate | None = None,
    reason: x509.ReasonFlags = x509.ReasonFlags.certificate_hold,
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(last_update)
        .next_update(next_update)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), False
        )
    )
    if number is not None:
        builder = builder.add_extension(x509.CRLNumber(number), False)
    if listed is not None:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(listed.serial_number)
            .revocation_date(last_update - DAY)
            .add_extension(x509.CRLReason(reason), False)
            .build()
        )
    key = issuer.key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return builder.sign(key, hashes.SHA256())


def _pki() -> tuple[Issued, Issued, Issued]:
    anchor = root()
    middle = intermediate(anchor)
    return anchor, middle, leaf(middle)


# --- F7 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["older-first", "newer-first"])
def test_the_newest_crl_decides_whatever_the_order(order: str) -> None:
    anchor, middle, end = _pki()
    older = _crl(middle, 1, last_update=NOW - 3 * DAY, next_update=NOW + 4 * DAY, listed=end.cert)
    newer = _crl(middle, 2, last_update=NOW - DAY, next_update=NOW + 6 * DAY)
    crls = [older, newer] if order == "older-first" else [newer, older]
    assert _check([end.cert, middle.cert], [anchor.cert], crls=crls).status == S(0)


def test_a_newer_crl_that_keeps_the_hold_revokes() -> None:
    anchor, middle, end = _pki()
    older = _crl(middle, 1, last_update=NOW - 3 * DAY, next_update=NOW + 4 * DAY)
    newer = _crl(middle, 2, last_update=NOW - DAY, next_update=NOW + 6 * DAY, listed=end.cert)
    result = _check([end.cert, middle.cert], [anchor.cert], crls=[older, newer])
    assert result.status == S.INVALID | S.REVOKED


def test_the_crl_number_outranks_the_date() -> None:
    anchor, middle, end = _pki()
    numbered_higher = _crl(middle, 5, last_update=NOW - 3 * DAY, next_update=NOW + 4 * DAY)
    dated_later = _crl(middle, 4, last_update=NOW - DAY, next_update=NOW + 6 * DAY, listed=end.cert)
    result = _check([end.cert, middle.cert], [anchor.cert], crls=[dated_later, numbered_higher])
    assert result.status == S(0)


def test_without_crl_numbers_the_latest_this_update_decides() -> None:
    anchor, middle, end = _pki()
    older = _crl(
        middle, None, last_update=NOW - 3 * DAY, next_update=NOW + 4 * DAY, listed=end.cert
    )
    newer = _crl(middle, None, last_update=NOW - DAY, next_update=NOW + 6 * DAY)
    assert _check([end.cert, middle.cert], [anchor.cert], crls=[older, newer]).status == S(0)


def test_crls_that_tie_are_all_consulted() -> None:
    anchor, middle, end = _pki()
    one = _crl(middle, 1, last_update=NOW - DAY, next_update=NOW + 6 * DAY, listed=end.cert)
    other = _crl(middle, 1, last_update=NOW - DAY, next_update=NOW + 6 * DAY)
    result = _check([end.cert, middle.cert], [anchor.cert], crls=[other, one])
    assert result.status == S.INVALID | S.REVOKED


def test_a_stale_crl_kept_beside_a_current_one_is_still_superseded_but_not_revoking() -> None:
    # Every authentic CRL is held to its dates (docs/verification.rst: "supply
    # current CRLs"); only the newest says whether the certificate is listed.
    anchor, middle, end = _pki()
    stale = _crl(middle, 1, last_update=NOW - 9 * DAY, next_update=NOW - DAY, listed=end.cert)
    current = _crl(middle, 2, last_update=NOW - DAY, next_update=NOW + 6 * DAY)
    result = _check([end.cert, middle.cert], [anchor.cert], crls=[stale, current])
    assert result.status == S.INVALID | S.REVOCATION_DATA_SUPERSEDED


def test_the_only_crl_still_revokes_when_stale() -> None:
    anchor, middle, end = _pki()
    stale = _crl(
        middle,
        1,
        last_update=NOW - 9 * DAY,
        next_update=NOW - DAY,
        listed=end.cert,
        reason=x509.ReasonFlags.key_compromise,
    )
    result = _check([end.cert, middle.cert], [anchor.cert], crls=[stale])
    assert result.status == S.INVALID | S.REVOKED | S.REVOCATION_DATA_SUPERSEDED


def test_a_newer_crl_of_another_key_of_the_same_name_does_not_release() -> None:
    # Same issuer name, another key: its list is not the certificate issuer's.
    anchor, middle, end = _pki()
    rolled = intermediate(anchor)  # same subject "Test Intermediate", new key
    held = _crl(middle, 1, last_update=NOW - 3 * DAY, next_update=NOW + 4 * DAY, listed=end.cert)
    other_key = _crl(rolled, 2, last_update=NOW - DAY, next_update=NOW + 6 * DAY)
    result = _check([end.cert, middle.cert], [anchor.cert], crls=[held, other_key])
    assert result.status == S.INVALID | S.REVOKED


# --- F8 --------------------------------------------------------------------------------------


def _responder(
    issuer: Issued, key: SigningKey, extra: Sequence[tuple[x509.ExtensionType, bool]] = ()
) -> Issued:
    return issue(
        "Test OCSP Responder",
        key=key,
        issuer=issuer,
        ca=False,
        eku=(ExtendedKeyUsageOID.OCSP_SIGNING,),
        extra=extra,
    )


_NOCHECK = (x509.OCSPNoCheck(), True)
_POLICIES = (
    x509.CertificatePolicies(
        [x509.PolicyInformation(x509.ObjectIdentifier("2.23.140.1.2.1"), None)]
    ),
    True,
)


@pytest.mark.parametrize(
    ("key", "extra"),
    [
        pytest.param(ec.generate_private_key(ec.SECP384R1()), (), id="p384"),
        pytest.param(ed25519.Ed25519PrivateKey.generate(), (), id="ed25519"),
        pytest.param(ec.generate_private_key(ec.SECP256R1()), (_NOCHECK,), id="critical-nocheck"),
    ],
)
def test_delegated_responders_within_the_policy_are_accepted(
    key: SigningKey, extra: tuple[tuple[x509.ExtensionType, bool], ...]
) -> None:
    anchor, middle, end = _pki()
    staple = ocsp_response(end.cert, middle, signed_by=_responder(middle, key, extra))
    assert _check([end.cert, middle.cert], [anchor.cert], staple=staple).status == S(0)


@pytest.mark.parametrize(
    ("key", "extra", "said"),
    [
        pytest.param(
            ec.generate_private_key(ec.SECP256K1()), (), "secp256k1", id="secp256k1-curve"
        ),
        pytest.param(
            ec.generate_private_key(ec.SECP256R1()),
            (_POLICIES,),
            "unknown critical extension 2.5.29.32",
            id="critical-certificate-policies",
        ),
    ],
)
def test_delegated_responders_outside_the_policy_are_refused_with_a_reason(
    key: SigningKey, extra: tuple[tuple[x509.ExtensionType, bool], ...], said: str
) -> None:
    anchor, middle, end = _pki()
    staple = ocsp_response(end.cert, middle, signed_by=_responder(middle, key, extra))
    result = _check([end.cert, middle.cert], [anchor.cert], staple=staple)
    assert result.status == S.INVALID | S.INVALID_OCSP_STATUS
    assert any(said in reason for reason in result.reasons), result.reasons


def test_the_revocation_module_imports_first() -> None:
    # revocation.py imports verify.py's key policy lazily: verify imports it.
    code = "import triotls.engine.revocation as r; assert r.check_revocation"
    subprocess.run([sys.executable, "-c", code], check=True)
