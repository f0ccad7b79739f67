"""Config validation: a bad value fails when the config is built, with a clear message."""

from __future__ import annotations

import pytest

from tests.support.engine_pairs import pki
from triotls.config import ClientConfig, ServerConfig, TrustStore


def _server(**kw: object) -> ServerConfig:
    return ServerConfig(certificates=(pki("ecdsa").certified,), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("limit", [63, 2**14 + 2])
def test_client_refuses_a_record_size_limit_outside_rfc_8449(limit: int) -> None:
    with pytest.raises(ValueError, match="record_size_limit must be between 64 and 16385"):
        ClientConfig(record_size_limit=limit)


@pytest.mark.parametrize("limit", [63, 2**14 + 2])
def test_server_refuses_a_record_size_limit_outside_rfc_8449(limit: int) -> None:
    with pytest.raises(ValueError, match="record_size_limit must be between 64 and 16385"):
        _server(record_size_limit=limit)


@pytest.mark.parametrize("limit", [64, 2**14 + 1, None])
def test_record_size_limits_within_rfc_8449_are_accepted(limit: int | None) -> None:
    assert ClientConfig(record_size_limit=limit).record_size_limit == limit
    assert _server(record_size_limit=limit).record_size_limit == limit


@pytest.mark.parametrize("timeout", [0, -1.0])
def test_handshake_timeout_zero_or_negative_is_refused_on_both_sides(timeout: float) -> None:
    with pytest.raises(ValueError, match="unlike GnuTLS, 0 does not mean 'no limit'"):
        ClientConfig(handshake_timeout=timeout)
    with pytest.raises(ValueError, match="handshake_timeout must be a positive number"):
        _server(handshake_timeout=timeout)


def test_trust_store_fingerprint_follows_roots_and_crls_not_the_object() -> None:
    # Sessions resume only under a trust store with the same fingerprint.
    root = pki("ecdsa").trust.certificates[0]
    other = pki("rsa").trust.certificates[0]
    same = TrustStore([root])
    assert TrustStore([root]).fingerprint == same.fingerprint
    assert TrustStore([other]).fingerprint != same.fingerprint
    assert TrustStore([root, other]).fingerprint != TrustStore([other, root]).fingerprint
    assert len(same.fingerprint) == 32
