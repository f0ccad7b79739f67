"""TLSStream.request_client_certificate: post-handshake client authentication (RFC 8446 §4.6.2)."""

from __future__ import annotations

import dataclasses

import pytest
import trio
import trio.testing
import trustme
from cryptography import x509

from tests.stream.helpers import handshake_both, receive_exactly, tls_pair
from triotls.config import CertifiedKey, ClientConfig, ServerConfig, TrustStore
from triotls.errors import UsageError
from triotls.stream import TLSStream


def _configs(
    ca: trustme.CA, client_config: ClientConfig, server_config: ServerConfig
) -> tuple[ClientConfig, ServerConfig]:
    leaf = ca.issue_cert("client@example")  # trustme leaves allow clientAuth
    chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    client = dataclasses.replace(
        client_config,
        post_handshake_auth=True,
        certificate=CertifiedKey.from_pem(chain, leaf.private_key_pem.bytes()),
    )
    server = dataclasses.replace(
        server_config, client_trust=TrustStore.from_pem(ca.cert_pem.bytes())
    )
    return client, server


async def _connected(
    ca: trustme.CA, client_config: ClientConfig, server_config: ServerConfig
) -> tuple[TLSStream, TLSStream]:
    client, server = tls_pair(
        trio.testing.memory_stream_pair(), *_configs(ca, client_config, server_config)
    )
    await handshake_both(client, server)
    return client, server


async def test_request_client_certificate_result_arrives_through_receive_some(
    ca: trustme.CA, client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server = await _connected(ca, client_config, server_config)
    before = server.client_certificate_result
    assert before is None
    await server.request_client_certificate()
    await server.send_all(b"ping")
    assert await receive_exactly(client, 4) == b"ping"  # the client answered meanwhile
    await client.send_all(b"pong")
    assert await receive_exactly(server, 4) == b"pong"
    result = server.client_certificate_result
    assert result is not None and result.verification is not None
    assert result.verification.is_valid
    leaf = result.peer_certificates[0]
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.RFC822Name) == ["client@example"]


async def test_request_client_certificate_on_the_client_is_usage_error(
    ca: trustme.CA, client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, _server = await _connected(ca, client_config, server_config)
    with pytest.raises(UsageError, match="server side"):
        await client.request_client_certificate()


async def test_request_client_certificate_checkpoints(
    ca: trustme.CA, client_config: ClientConfig, server_config: ServerConfig
) -> None:
    _client, server = await _connected(ca, client_config, server_config)
    with trio.testing.assert_checkpoints():
        await server.request_client_certificate()
