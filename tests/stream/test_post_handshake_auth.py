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


async def test_wait_client_certificate_returns_the_answer_without_other_data(
    ca: trustme.CA, client_config: ClientConfig, server_config: ServerConfig
) -> None:
    """The client only reads; the server waits for its answer alone (no data follows it)."""
    client, server = await _connected(ca, client_config, server_config)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            # The client answers inside receive_some, then waits for data.
            nursery.start_soon(receive_exactly, client, 2)
            await server.request_client_certificate()
            result = await server.wait_client_certificate()
            assert result is server.client_certificate_result
            assert result.verification is not None and result.verification.is_valid
            # Already answered: returns at once, the same result.
            assert await server.wait_client_certificate() is result
            await server.send_all(b"ok")


async def test_data_that_arrives_before_the_answer_is_kept_for_receive_some(
    ca: trustme.CA, client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server = await _connected(ca, client_config, server_config)
    with trio.fail_after(10):
        await client.send_all(b"sent before the request")
        await server.request_client_certificate()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive_exactly, client, 2)
            result = await server.wait_client_certificate()
            await server.send_all(b"ok")
    assert result.peer_certificates
    assert await receive_exactly(server, 23) == b"sent before the request"


async def test_wait_client_certificate_without_a_request_is_a_usage_error(
    ca: trustme.CA, client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server = await _connected(ca, client_config, server_config)
    with pytest.raises(UsageError, match="no client certificate was requested"):
        await server.wait_client_certificate()
    with pytest.raises(UsageError, match="only the server side"):
        await client.wait_client_certificate()


async def test_a_client_that_closes_without_answering_ends_the_wait(
    ca: trustme.CA, client_config: ClientConfig, server_config: ServerConfig
) -> None:
    client, server = await _connected(ca, client_config, server_config)
    await client.send_eof()  # close_notify; it never reads the request
    await server.request_client_certificate()
    with trio.fail_after(10), pytest.raises(trio.BrokenResourceError, match="without answering"):
        await server.wait_client_certificate()


async def test_a_flood_of_data_before_the_answer_stops_the_wait(
    ca: trustme.CA, client_config: ClientConfig, server_config: ServerConfig
) -> None:
    """Waiting never buffers without bound: past 1 MiB the caller must read first."""
    client, server = await _connected(ca, client_config, server_config)
    blob = b"x" * (2**20 + 2**16)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send_all, blob)
            await server.request_client_certificate()
            with pytest.raises(UsageError, match="read them with receive_some"):
                await server.wait_client_certificate()
            assert await receive_exactly(server, len(blob)) == blob
