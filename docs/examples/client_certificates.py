"""Client certificates (mTLS): a server that asks for them, clients that have one or not.

Run it with ``python docs/examples/client_certificates.py``. Everything happens
in memory (``trio.testing.memory_stream_pair``) with throwaway certificates.
"""

from __future__ import annotations

import trio
import trio.testing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from triotls import (
    AlertReceived,
    CertificateRequired,
    CertifiedKey,
    ClientConfig,
    ServerConfig,
    TLSStream,
    TrustStore,
)
from triotls._throwaway import make_throwaway_pki

SERVER_PKI = make_throwaway_pki()
CLIENT_PKI = make_throwaway_pki(("alice.example",), client=True)


async def connect(
    server_config: ServerConfig, client_config: ClientConfig
) -> tuple[TLSStream, TLSStream, str]:
    """Handshake in memory; return both streams and how the server's side ended."""
    client_transport, server_transport = trio.testing.memory_stream_pair()
    server = TLSStream(server_transport, server_config, server_side=True)
    client = TLSStream(client_transport, client_config, server_hostname="localhost")
    server_fate = "handshake completed"

    async def serve() -> None:
        nonlocal server_fate
        try:
            await server.do_handshake()
        except CertificateRequired as exc:
            server_fate = f"{type(exc).__name__}: {exc}"

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        await client.do_handshake()
    return client, server, server_fate


async def main() -> None:
    # The server: its own certificate, and the roots client certificates must
    # lead to. client_auth="required" refuses a client without a certificate.
    server_config = ServerConfig(
        certificates=(CertifiedKey.from_pem(SERVER_PKI.chain_pem, SERVER_PKI.key_pem),),
        client_auth="required",
        client_trust=TrustStore.from_pem(CLIENT_PKI.ca_pem),
    )
    # The client: it trusts the server's CA, and holds a certificate to show.
    alice = CertifiedKey.from_pem(CLIENT_PKI.chain_pem, CLIENT_PKI.key_pem)
    client_config = ClientConfig(trust=TrustStore.from_pem(SERVER_PKI.ca_pem), certificate=alice)
    _client, server, _fate = await connect(server_config, client_config)
    negotiated = server.negotiated
    assert negotiated is not None and server.verification is not None
    subject = negotiated.peer_certificates[0].subject.rfc4514_string()
    print(f"required: the client is {subject}, verified: {server.verification.is_valid}")

    # A client without a certificate: its handshake ends with its Finished,
    # and the server's certificate_required alert arrives on the next read.
    anonymous = ClientConfig(trust=TrustStore.from_pem(SERVER_PKI.ca_pem))
    client, _server, fate = await connect(server_config, anonymous)
    print(f"required, no certificate: the server raised {fate}")
    try:
        await client.receive_some()
    except AlertReceived as exc:
        print(f"required, no certificate: the client got {exc}")

    # client_auth="optional": a client without a certificate is let in,
    # unauthenticated.
    optional = ServerConfig(
        certificates=server_config.certificates,
        client_auth="optional",
        client_trust=server_config.client_trust,
    )
    _client, server, _fate = await connect(optional, anonymous)
    assert server.negotiated is not None
    print(f"optional, no certificate: peer certificates {server.negotiated.peer_certificates}")

    # Keys and certificates also load from a password-protected PKCS#12 file.
    bundle = pkcs12.serialize_key_and_certificates(
        b"alice",
        alice.private_key,
        alice.chain[0],
        None,
        serialization.BestAvailableEncryption(b"secret"),
    )
    certified = CertifiedKey.from_pkcs12(bundle, password=b"secret")
    from_p12 = ClientConfig(trust=client_config.trust, certificate=certified)
    _client, server, _fate = await connect(server_config, from_p12)
    assert server.verification is not None
    print(f"from PKCS#12: verified: {server.verification.is_valid}")


if __name__ == "__main__":
    trio.run(main)
