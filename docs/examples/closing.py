"""Closing a TLS stream: close_notify, truncation, half-close and unwrap.

Run it with ``python docs/examples/closing.py``. Everything happens in memory.
"""

from __future__ import annotations

import dataclasses

import trio
import trio.testing

from triotls import (
    CertifiedKey,
    ClientConfig,
    ServerConfig,
    TLSStream,
    TruncationError,
    TrustStore,
)
from triotls._throwaway import make_throwaway_pki


async def connected_pair(
    client_config: ClientConfig, server_config: ServerConfig
) -> tuple[TLSStream, TLSStream]:
    """Two TLSStreams over an in-memory transport, handshake done."""
    client_transport, server_transport = trio.testing.memory_stream_pair()
    client = TLSStream(client_transport, client_config, server_hostname="localhost")
    server = TLSStream(server_transport, server_config, server_side=True)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.do_handshake)
        await client.do_handshake()
    return client, server


async def clean_close(client: TLSStream, server: TLSStream) -> None:
    """aclose() sends close_notify; the peer reads b"" and learns why."""
    await server.send_all(b"last words")
    await server.aclose()
    print(f"client read {await client.receive_some()!r}, then {await client.receive_some()!r}")
    print(f"close_reason: {client.close_reason}")
    await client.aclose()


async def truncation(client: TLSStream, server: TLSStream) -> None:
    """The transport ends without close_notify: an attacker may have cut it short."""
    await server.transport_stream.aclose()  # close TCP (here: memory) without TLS
    try:
        await client.receive_some()
    except TruncationError as exc:
        print(f"TruncationError: {exc}")
        print(f"  also a BrokenResourceError: {isinstance(exc, trio.BrokenResourceError)}")
    await client.aclose()


async def ragged_eof_allowed(client: TLSStream, server: TLSStream) -> None:
    """With https_compatible=True, a bare EOF after the handshake reads as b""."""
    await server.transport_stream.aclose()
    print(f"client read {await client.receive_some()!r}, close_reason: {client.close_reason}")
    await client.aclose()


async def half_close(client: TLSStream, server: TLSStream) -> None:
    """send_eof() closes one direction only (RFC 8446 §6.1)."""
    await client.send_all(b"request")
    await client.send_eof()  # close_notify: the client sends nothing more
    request = b""
    while chunk := await server.receive_some():
        request += chunk
    await server.send_all(b"response to " + request)  # the server can still send
    await server.aclose()
    print(f"client read {await client.receive_some()!r} after its send_eof()")
    await client.aclose()


async def unwrap_both(client: TLSStream, server: TLSStream) -> None:
    """unwrap() exchanges close_notify and hands back the transport."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.unwrap)
        transport, leftover = await client.unwrap()
    print(f"client got its transport back ({type(transport).__name__}), leftover {leftover!r}")
    await transport.send_all(b"plain text from here on")
    print(f"the server's transport reads {await server.transport_stream.receive_some()!r}")


async def main() -> None:
    pki = make_throwaway_pki()
    client_config = ClientConfig(trust=TrustStore.from_pem(pki.ca_pem))
    server_config = ServerConfig(certificates=(CertifiedKey.from_pem(pki.chain_pem, pki.key_pem),))
    ragged = dataclasses.replace(client_config, https_compatible=True)
    with trio.fail_after(30):
        await clean_close(*await connected_pair(client_config, server_config))
        await truncation(*await connected_pair(client_config, server_config))
        await ragged_eof_allowed(*await connected_pair(ragged, server_config))
        await half_close(*await connected_pair(client_config, server_config))
        await unwrap_both(*await connected_pair(client_config, server_config))


if __name__ == "__main__":
    trio.run(main)
