"""Review round 9: the client's session cache as the trio layer uses it.

docs/resumption.rst: "A cache shared by configurations that differ there
resumes only within each", and each ticket is used once (single_use).
"""

from __future__ import annotations

import dataclasses

import trio
import trio.testing
import trustme

from triotls import HandshakeKind, SessionCache, TicketKeys
from triotls.config import ClientConfig, ServerConfig, TrustStore
from triotls.stream import TLSStream

from .helpers import handshake_both, tls_pair

BOUND = 10.0


async def _connect(config: ClientConfig, server: ServerConfig) -> HandshakeKind | None:
    client, server_stream = tls_pair(trio.testing.memory_stream_pair(), config, server)
    await handshake_both(client, server_stream)
    # The tickets came with the server's flight; let the client read them.
    await _read_tickets(client, server_stream)
    return client.handshake_kind


async def _read_tickets(client: TLSStream, server: TLSStream) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.send_all, b"x")
        assert await client.receive_some(1) == b"x"


def _other_trust(client_config: ClientConfig) -> TrustStore:
    assert client_config.trust is not None
    extra = TrustStore.from_pem(trustme.CA().cert_pem.bytes())
    return TrustStore([*client_config.trust.certificates, *extra.certificates])


async def test_configurations_sharing_a_cache_each_resume_their_own_sessions(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    cache = SessionCache()
    config_a = dataclasses.replace(client_config, session_cache=cache)
    # Trusts one more root: sessions of one are not offered by the other.
    config_b = dataclasses.replace(
        client_config, session_cache=cache, trust=_other_trust(client_config)
    )
    server = dataclasses.replace(server_config, ticket_keys=TicketKeys())
    with trio.fail_after(BOUND):
        first_a = await _connect(config_a, server)
        first_b = await _connect(config_b, server)
        # config_b took none of config_a's tickets (it could not use them):
        # both of config_a's are left, next to config_b's two.
        assert len(cache) == 4
        second_a = await _connect(config_a, server)
        second_b = await _connect(config_b, server)
    assert (first_a, first_b) == (HandshakeKind.FULL, HandshakeKind.FULL)
    # Each still has tickets of its own in the cache, and uses them.
    assert (second_a, second_b) == (HandshakeKind.RESUMED, HandshakeKind.RESUMED)
