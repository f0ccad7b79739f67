"""psk_ke: resuming without a fresh key exchange, only when both sides name it.

Run it with ``python docs/examples/psk_ke.py``. Everything happens on
loopback: one server, and clients that resume its tickets with and without
``"psk_ke"`` in their configuration.
"""

from __future__ import annotations

import dataclasses
import functools

import trio

from triotls import (
    CertifiedKey,
    ClientConfig,
    ServerConfig,
    SessionCache,
    TLSListener,
    TLSStream,
    TrustStore,
    open_tls_over_tcp_stream,
    serve_tls_over_tcp,
)
from triotls._throwaway import make_throwaway_pki


def client_config_allowing_psk_ke(trust: TrustStore) -> ClientConfig:
    """A client that lets servers resume without a key exchange, preferring that."""
    return ClientConfig(
        trust=trust,
        session_cache=SessionCache(),
        psk_key_exchange_modes=("psk_ke", "psk_dhe_ke"),
    )


def server_config_allowing_psk_ke(certified: CertifiedKey) -> ServerConfig:
    """A server that resumes without a key exchange when the client allows it."""
    return ServerConfig(certificates=(certified,), psk_key_exchange_modes=("psk_ke", "psk_dhe_ke"))


async def echo_once(stream: TLSStream) -> None:
    async with stream:
        await stream.send_all(await stream.receive_some())


async def connect(port: int, config: ClientConfig) -> None:
    stream = await open_tls_over_tcp_stream("127.0.0.1", port, config, server_hostname="localhost")
    async with stream:
        await stream.send_all(b"ping")
        await stream.receive_some()
        negotiated = stream.negotiated
        assert negotiated is not None  # the handshake completed
        mode = negotiated.psk_key_exchange_mode  # None for a full handshake
        group = negotiated.group  # None when no key exchange was made
        mode_name = mode.name if mode is not None else None
        group_name = group.name if group is not None else None
        print(f"  {negotiated.handshake_kind}, mode {mode_name}, group {group_name}")


async def main() -> None:
    pki = make_throwaway_pki(("localhost", "127.0.0.1"))
    certified = CertifiedKey.from_pem(pki.chain_pem, pki.key_pem)
    trust = TrustStore.from_pem(pki.ca_pem)
    server_config = server_config_allowing_psk_ke(certified)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            serve = functools.partial(serve_tls_over_tcp, host="127.0.0.1")
            listeners: list[TLSListener] = await nursery.start(serve, echo_once, 0, server_config)
            transport = listeners[0].transport_listener
            assert isinstance(transport, trio.SocketListener)
            port = transport.socket.getsockname()[1]

            print("both sides allow psk_ke:")
            client_config = client_config_allowing_psk_ke(trust)
            await connect(port, client_config)  # full: no ticket yet
            await connect(port, client_config)  # resumed with the PSK alone

            print("a default client (psk_dhe_ke only):")
            default_client = ClientConfig(trust=trust, session_cache=SessionCache())
            await connect(port, default_client)
            await connect(port, default_client)  # resumed with a fresh key exchange

            print("a default server (same ticket keys):")
            listeners[0].config = dataclasses.replace(
                server_config, psk_key_exchange_modes=("psk_dhe_ke",)
            )
            await connect(port, client_config)
            nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
