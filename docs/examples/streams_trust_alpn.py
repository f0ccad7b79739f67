"""TLSStream over any trio stream, trust stores, ALPN, and what failures look like.

Run it with ``python docs/examples/streams_trust_alpn.py``. Everything happens
in memory (``trio.testing.memory_stream_pair``): a TLSStream wraps any trio
``Stream``, not only TCP.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import trio
import trio.testing

from triotls import (
    AlertReceived,
    CertificateVerificationError,
    CertifiedKey,
    ClientConfig,
    ServerConfig,
    TLSStream,
    TrustStore,
)
from triotls._throwaway import ThrowawayPKI, make_throwaway_pki


def tls_pair(
    client_config: ClientConfig, server_config: ServerConfig
) -> tuple[TLSStream, TLSStream]:
    """Two TLSStreams joined by an in-memory transport."""
    client_transport, server_transport = trio.testing.memory_stream_pair()
    client = TLSStream(client_transport, client_config, server_hostname="localhost")
    server = TLSStream(server_transport, server_config, server_side=True)
    return client, server


async def handshake_both(client: TLSStream, server: TLSStream) -> dict[str, str]:
    """Run both handshakes at once; report how each side ended."""
    outcome: dict[str, str] = {}

    async def run(side: str, stream: TLSStream) -> None:
        try:
            await stream.do_handshake()
        except trio.BrokenResourceError as exc:  # every TLS error is one
            outcome[side] = f"{type(exc).__name__}: {exc}"
        else:
            outcome[side] = f"ok, ALPN {stream.alpn_protocol!r}"

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, "client", client)
        nursery.start_soon(run, "server", server)
    return outcome


def trust_store_sources(pki: ThrowawayPKI, directory: Path) -> list[TrustStore]:
    """The ways to build a TrustStore."""
    (directory / "ca.pem").write_bytes(pki.ca_pem)
    stores = [
        TrustStore.from_pem(pki.ca_pem),  # PEM bytes
        TrustStore.from_pem(directory / "ca.pem"),  # a PEM file (str or path)
        TrustStore.from_pem(directory),  # every PEM certificate in a directory
    ]
    try:
        stores.append(TrustStore.system())  # the machine's CA bundle, as OpenSSL finds it
    except FileNotFoundError:
        print("no system CA bundle on this machine")
    return stores


async def negotiate_alpn(pki: ThrowawayPKI) -> None:
    """The server picks, in its own order of preference, among what the client offers."""
    certified = CertifiedKey.from_pem(pki.chain_pem, pki.key_pem)
    client_config = ClientConfig(
        trust=TrustStore.from_pem(pki.ca_pem), alpn_protocols=("h2", "http/1.1")
    )
    for accepted in [("http/1.1", "h2"), ("imap",)]:
        server_config = ServerConfig(certificates=(certified,), alpn_protocols=accepted)
        client, server = tls_pair(client_config, server_config)
        print(f"server accepts {accepted}: {await handshake_both(client, server)}")


async def wrong_trust(pki: ThrowawayPKI) -> None:
    """A client that trusts another CA refuses the server's certificate."""
    server_config = ServerConfig(certificates=(CertifiedKey.from_pem(pki.chain_pem, pki.key_pem),))
    other_ca = make_throwaway_pki().ca_pem
    client, server = tls_pair(ClientConfig(trust=TrustStore.from_pem(other_ca)), server_config)

    async def serve() -> None:
        try:
            await server.do_handshake()
        except AlertReceived as exc:
            print(f"server: {exc}")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        try:
            await client.do_handshake()
        except CertificateVerificationError as exc:
            print(f"client: {exc.reasons}, sent alert {exc.sent_alert.name}")
            broken = isinstance(exc, trio.BrokenResourceError)
            print(f"client: also a BrokenResourceError: {broken}")


async def main() -> None:
    pki = make_throwaway_pki()
    with tempfile.TemporaryDirectory() as tmp:
        stores = trust_store_sources(pki, Path(tmp))
    print(f"{len(stores)} trust stores")
    with trio.fail_after(30):
        await negotiate_alpn(pki)
        await wrong_trust(pki)


if __name__ == "__main__":
    trio.run(main)
