"""Handshake deadlines and cancellation, shown on in-memory transports.

Run it with ``python docs/examples/timeouts.py`` (it takes about two seconds).
"""

from __future__ import annotations

import dataclasses

import trio
import trio.testing

from triotls import (
    CertifiedKey,
    ClientConfig,
    HandshakeTimeout,
    ServerConfig,
    TLSError,
    TLSStream,
    TrustStore,
)
from triotls._throwaway import make_throwaway_pki


def make_configs() -> tuple[ClientConfig, ServerConfig]:
    pki = make_throwaway_pki()
    client_config = ClientConfig(trust=TrustStore.from_pem(pki.ca_pem))
    server_config = ServerConfig(certificates=(CertifiedKey.from_pem(pki.chain_pem, pki.key_pem),))
    return client_config, server_config


async def silent_peer(client_config: ClientConfig) -> None:
    """The peer never answers: HandshakeTimeout after config.handshake_timeout."""
    config = dataclasses.replace(client_config, handshake_timeout=0.5)
    transport, _silent = trio.testing.memory_stream_pair()
    client = TLSStream(transport, config, server_hostname="localhost")
    try:
        await client.do_handshake()
    except HandshakeTimeout as exc:
        first = exc
        print(f"HandshakeTimeout: {exc}")
        print(
            f"  also TooSlowError: {isinstance(exc, trio.TooSlowError)}, "
            f"BrokenResourceError: {isinstance(exc, trio.BrokenResourceError)}, "
            f"TLSError: {isinstance(exc, TLSError)}"
        )
    try:
        await client.send_all(b"too late")
    except trio.BrokenResourceError as exc:
        print(f"  the stream is broken; later calls raise the same error: {exc is first}")


async def resume_after_cancellation(
    client_config: ClientConfig, server_config: ServerConfig
) -> None:
    """A handshake cancelled while waiting for the peer can be resumed."""
    client_transport, server_transport = trio.testing.memory_stream_pair()
    client = TLSStream(client_transport, client_config, server_hostname="localhost")
    server = TLSStream(server_transport, server_config, server_side=True)
    with trio.move_on_after(0.2) as scope:  # the server is not running yet
        await client.do_handshake()
    print(f"first attempt cancelled: {scope.cancelled_caught}")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.do_handshake)
        await client.do_handshake()  # continues where it stopped
    print(f"resumed and completed: {client.version}, {client.handshake_seconds:.1f} s in all")


async def caller_deadline(client_config: ClientConfig, server_config: ServerConfig) -> None:
    """Your own deadline combines with the handshake's: the earlier one wins."""
    client_transport, server_transport = trio.testing.memory_stream_pair()
    client = TLSStream(client_transport, client_config, server_hostname="localhost")
    try:
        with trio.fail_after(0.2):  # much earlier than the 40 s default
            await client.do_handshake()
    except trio.TooSlowError as exc:
        # Your scope fired, not the handshake's: a plain TooSlowError, and the
        # stream is still usable because no write was interrupted.
        ours = isinstance(exc, HandshakeTimeout)
        print(f"caller's deadline: {exc!r}, a HandshakeTimeout: {ours}")
    server = TLSStream(server_transport, server_config, server_side=True)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.do_handshake)
        await client.do_handshake()
    print(f"then completed: {client.version}")


async def deadline_is_not_extended(client_config: ClientConfig) -> None:
    """The deadline is fixed when the handshake starts; resuming keeps it."""
    config = dataclasses.replace(client_config, handshake_timeout=1.0)
    transport, _silent = trio.testing.memory_stream_pair()
    client = TLSStream(transport, config, server_hostname="localhost")
    start = trio.current_time()
    with trio.move_on_after(0.6):
        await client.do_handshake()
    await trio.sleep(0.2)
    try:
        await client.do_handshake()  # resumes, with 0.2 s left, not 1.0 s
    except HandshakeTimeout:
        print(f"timed out {trio.current_time() - start:.1f} s after the handshake started")


async def cancelled_write_breaks(client_config: ClientConfig, server_config: ServerConfig) -> None:
    """Only a cancellation in the middle of a transport write breaks the stream."""
    client_transport, server_transport = trio.testing.lockstep_stream_pair()
    client = TLSStream(client_transport, client_config, server_hostname="localhost")
    server = TLSStream(server_transport, server_config, server_side=True)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.do_handshake)
        await client.do_handshake()
    with trio.move_on_after(0.2):  # the server is not reading: the write blocks
        await client.send_all(b"x" * 100_000)
    try:
        await client.send_all(b"more")
    except trio.BrokenResourceError as exc:
        print(f"after a cancelled write: BrokenResourceError: {exc}")


def zero_is_not_no_limit() -> None:
    """Unlike GnuTLS, 0 does not mean 'no limit': use None for that."""
    try:
        ClientConfig(handshake_timeout=0)
    except ValueError as exc:
        print(f"ValueError: {exc}")
    print(f"no limit: {ClientConfig(handshake_timeout=None).handshake_timeout}")


async def main() -> None:
    client_config, server_config = make_configs()
    with trio.fail_after(30):
        await silent_peer(client_config)
        await resume_after_cancellation(client_config, server_config)
        await caller_deadline(client_config, server_config)
        await deadline_is_not_extended(client_config)
        await cancelled_write_breaks(client_config, server_config)
    zero_is_not_no_limit()


if __name__ == "__main__":
    trio.run(main)
