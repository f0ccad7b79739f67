"""Session resumption: a client session cache, shared ticket keys, rotation, refusal.

Run it with ``python docs/examples/resumption.py``. Everything happens on
loopback: two servers that load the same ticket keys (a "fleet"), and a
client that resumes its sessions with either of them.
"""

from __future__ import annotations

import dataclasses
import functools
import os

import trio

from triotls import (
    CertifiedKey,
    ClientConfig,
    ServerConfig,
    SessionCache,
    TicketKeys,
    TLSListener,
    TLSStream,
    TrustStore,
    open_tls_over_tcp_stream,
    serve_tls_over_tcp,
)
from triotls._throwaway import make_throwaway_pki

# Stands in for your secret storage (a vault, a KMS, a file only the server
# can read). Ticket keys are 32 random bytes, the newest first.
SECRET_STORAGE: dict[str, list[bytes]] = {"ticket-keys": [os.urandom(32)]}


def load_ticket_keys() -> TicketKeys:
    """Every server of the fleet builds its TicketKeys from the same stored bytes."""
    return TicketKeys(SECRET_STORAGE["ticket-keys"], keep=3)


def rotate_stored_keys() -> None:
    """New key first; the old ones stay (up to ``keep``) so their tickets still resume."""
    SECRET_STORAGE["ticket-keys"].insert(0, os.urandom(32))


async def echo_once(stream: TLSStream) -> None:
    async with stream:
        await stream.send_all(await stream.receive_some())


async def start_server(nursery: trio.Nursery, config: ServerConfig) -> tuple[TLSListener, int]:
    serve = functools.partial(serve_tls_over_tcp, host="127.0.0.1")
    listeners: list[TLSListener] = await nursery.start(serve, echo_once, 0, config)
    transport = listeners[0].transport_listener
    assert isinstance(transport, trio.SocketListener)
    return listeners[0], transport.socket.getsockname()[1]


async def connect(port: int, config: ClientConfig) -> None:
    """One connection; the cache in ``config`` offers a ticket and keeps new ones."""
    stream = await open_tls_over_tcp_stream("127.0.0.1", port, config, server_hostname="localhost")
    async with stream:
        await stream.send_all(b"ping")
        await stream.receive_some()
        print(f"  {stream.handshake_kind}, session_resumed={stream.session_resumed}")


async def through_the_load_balancer(server: str, port: int, config: ClientConfig) -> None:
    """As if a load balancer sent us to ``port``: the client only knows one name.

    The cache key says which connections may share tickets; here every server
    of the fleet is "app.example:443" to the client.
    """
    tcp = await trio.open_tcp_stream("127.0.0.1", port)
    stream = TLSStream(tcp, config, server_hostname="localhost", session_key="app.example:443")
    async with stream:
        await stream.send_all(b"ping")
        await stream.receive_some()
        print(f"  server {server}: {stream.handshake_kind}")


def client_config_with_cache(trust: TrustStore) -> ClientConfig:
    """Resumption on the client: give the configuration a SessionCache."""
    return ClientConfig(trust=trust, session_cache=SessionCache())


def server_config_with_tickets(certified: CertifiedKey, keys: TicketKeys) -> ServerConfig:
    """Ticket settings on the server (these values are the defaults, but the keys)."""
    return ServerConfig(
        certificates=(certified,),
        ticket_keys=keys,
        ticket_count=2,  # tickets sent with each handshake; 0 sends none
        ticket_lifetime=7200,  # seconds a ticket may be used; at most 7 days
    )


async def main() -> None:
    pki = make_throwaway_pki(("localhost", "127.0.0.1"))
    certified = CertifiedKey.from_pem(pki.chain_pem, pki.key_pem)
    client_config = client_config_with_cache(TrustStore.from_pem(pki.ca_pem))
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            keys_a = load_ticket_keys()
            config_a = server_config_with_tickets(certified, keys_a)
            listener_a, port_a = await start_server(nursery, config_a)
            print("a client with a SessionCache:")
            await connect(port_a, client_config)  # full: the cache is empty
            await connect(port_a, client_config)  # resumed with a ticket from the first

            print("two servers that loaded the same ticket keys:")
            config_b = server_config_with_tickets(certified, load_ticket_keys())
            _, port_b = await start_server(nursery, config_b)
            await through_the_load_balancer("A", port_a, client_config)
            await through_the_load_balancer("B", port_b, client_config)

            print("after a key rotation, tickets under the previous key still resume:")
            rotate_stored_keys()
            keys_a.rotate(SECRET_STORAGE["ticket-keys"][0])  # what a reload would do
            await connect(port_a, client_config)
            print(f"  server A holds {len(keys_a.key_ids)} keys")

            print("a server with other ticket keys refuses the ticket:")
            listener_a.config = dataclasses.replace(config_a, ticket_keys=TicketKeys())
            await connect(port_a, client_config)  # refused: a full handshake, no error
            await connect(port_a, client_config)  # the tickets it just sent resume
            nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
