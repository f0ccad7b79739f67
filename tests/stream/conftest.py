"""Fixtures for the trio layer: a throwaway CA, client and server configs."""

from __future__ import annotations

import pytest
import trustme

from triotls.config import CertifiedKey, ClientConfig, ServerConfig, TrustStore


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA(key_type=trustme.KeyType.ECDSA)


@pytest.fixture(scope="session")
def server_config(ca: trustme.CA) -> ServerConfig:
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    return ServerConfig(certificates=(CertifiedKey.from_pem(chain, leaf.private_key_pem.bytes()),))


@pytest.fixture(scope="session")
def client_config(ca: trustme.CA) -> ClientConfig:
    return ClientConfig(trust=TrustStore.from_pem(ca.cert_pem.bytes()))


@pytest.fixture(scope="session")
def wrong_ca_client_config() -> ClientConfig:
    """A client that trusts only an unrelated CA: the server's chain fails."""
    other = trustme.CA(key_type=trustme.KeyType.ECDSA)
    return ClientConfig(trust=TrustStore.from_pem(other.cert_pem.bytes()))
