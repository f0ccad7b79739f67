"""A client and a server engine talking to each other in memory, without trio.

The sans-IO engine never touches a socket: whoever drives it moves the bytes.
Here that is a plain loop that hands each side's ``data_to_send()`` to the
other side's ``receive_data()``. Run it with ``python docs/examples/engine_pair.py``.
"""

from __future__ import annotations

import sys

from triotls import CertifiedKey, ClientConfig, DecodeError, ServerConfig, TrustStore
from triotls._throwaway import make_throwaway_pki
from triotls.engine import ClientConnection, Connection, ServerConnection, events


def make_configs() -> tuple[ClientConfig, ServerConfig]:
    """A throwaway CA, a server certificate it issued, and a client that trusts it."""
    pki = make_throwaway_pki()  # never use these certificates outside tests
    server_config = ServerConfig(
        certificates=(CertifiedKey.from_pem(pki.chain_pem, pki.key_pem),),
        alpn_protocols=("http/1.1",),
    )
    client_config = ClientConfig(
        trust=TrustStore.from_pem(pki.ca_pem), alpn_protocols=("h2", "http/1.1")
    )
    return client_config, server_config


def names(got: list[events.Event]) -> list[str]:
    """Event class names (a ticket's session holds secrets not worth printing)."""
    return [type(event).__name__ for event in got]


def transfer(sender: Connection, receiver: Connection) -> list[events.Event]:
    """Move everything ``sender`` queued to ``receiver``; return the receiver's events."""
    wire = sender.data_to_send()
    if not wire:
        return []  # receive_data(b"") would mean "the transport reached EOF"
    return receiver.receive_data(wire)


def handshake(client: ClientConnection, server: ServerConnection) -> None:
    """Pump bytes both ways until both sides report HandshakeComplete."""
    client.start_handshake()  # queues the ClientHello
    for flight in range(1, 5):  # a full handshake needs 3 flights; 4 is plenty
        print(f"round {flight}: server got {names(transfer(client, server))}")
        print(f"round {flight}: client got {names(transfer(server, client))}")
        if client.handshake_complete and server.handshake_complete:
            return
    raise RuntimeError("the handshake did not complete")


def exchange_data(client: ClientConnection, server: ServerConnection) -> None:
    """Queue application data on one side, move the bytes, read the events."""
    client.send_application_data(b"GET / HTTP/1.1\r\n\r\n")
    for event in transfer(client, server):
        if isinstance(event, events.ApplicationData):
            print(f"server received {event.data!r}")
    server.send_application_data(b"HTTP/1.1 200 OK\r\n\r\n")
    for event in transfer(server, client):
        if isinstance(event, events.ApplicationData):
            print(f"client received {event.data!r}")


def update_keys_and_export(client: ClientConnection, server: ServerConnection) -> None:
    """KeyUpdate both ways, then derive the same exporter secret on both sides."""
    client.key_update(request_peer=True)  # new client keys; ask the server for new ones
    print(f"server got {transfer(client, server)}")
    # The server's answer goes out just before its next application data.
    server.send_application_data(b"with new keys")
    print(f"client got {transfer(server, client)}")
    label = b"EXPORTER-docs-example"  # RFC 8446 §7.5
    exported = client.export_keying_material(label, b"", 32)
    assert exported == server.export_keying_material(label, b"", 32)
    print(f"both sides exported {exported.hex()[:16]}...")


def close_both(client: ClientConnection, server: ServerConnection) -> None:
    """close() queues close_notify; each direction of TLS 1.3 closes on its own."""
    client.close()
    print(f"server got {transfer(client, server)}")
    server.send_application_data(b"the server can still send")
    print(f"client got {transfer(server, client)}")
    server.close()
    print(f"client got {transfer(server, client)}")


def show_error_latch(server_config: ServerConfig) -> None:
    """A broken ClientHello: the engine raises, queues an alert, and stays failed."""
    server = ServerConnection(server_config)
    # One handshake record holding a ClientHello whose body is far too short.
    garbage = bytes.fromhex("1603010008" + "0100000403030000")
    try:
        server.receive_data(garbage)
    except DecodeError as exc:
        print(f"receive_data raised {type(exc).__name__}: {exc}")
        print(f"alert record queued for the peer: {server.data_to_send().hex()}")
    try:
        server.receive_data(b"anything")
    except DecodeError as exc:
        print(f"latched: the same exception is raised again: {exc is server.error}")


def main() -> None:
    client_config, server_config = make_configs()
    client = ClientConnection(client_config, server_hostname="localhost")
    server = ServerConnection(server_config)
    handshake(client, server)
    negotiated = client.negotiated
    assert negotiated is not None  # set once handshake_complete is True
    print(
        f"negotiated {negotiated.cipher_suite.name}, {negotiated.group!r}, "
        f"ALPN {negotiated.alpn_protocol!r}, {negotiated.handshake_kind.value} handshake"
    )
    exchange_data(client, server)
    update_keys_and_export(client, server)
    close_both(client, server)
    show_error_latch(server_config)
    # The engine is sans-IO: nothing above imported trio.
    print(f"trio imported: {'trio' in sys.modules}")


if __name__ == "__main__":
    main()
