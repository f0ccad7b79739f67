"""Engine-only microbenchmarks: the sans-IO engine without trio, without a peer's stack.

``bench/run.py`` measures what an application sees, against trio.SSLStream;
this script isolates the engine, to A/B a change to it with less noise (CPU
time, best of several runs, no scheduler, no transport):

* ``handshake``: full handshakes, both ends in this process, µs per pair
  (x25519, TLS_AES_128_GCM_SHA256, an ECDSA P-256 chain verified by the
  client, the server's first byte of data and both close_notify alerts);
* ``resumed``: the same, each connection resuming the previous one's ticket;
* ``records``: sealing 64 KiB writes (four 16 KiB records) and opening them
  again from reads cut at an offset that is not a record boundary, as a
  transport delivers them, with one event per record and coalesced (one
  event per read, as ``TLSStream`` asks for); µs per 256 KiB, and the bare
  AES-GCM calls for the same records as the floor.

Run ``python bench/engine.py [handshake|resumed|records ...]`` from the
repository root with triotls and trustme importable; compare two trees by
running the script of each alternately (``PYTHONPATH=tree python
tree/bench/engine.py``), in fresh processes.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable

import trustme
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from triotls import CertifiedKey, CipherSuite, ClientConfig, NamedGroup, ServerConfig, TrustStore
from triotls.engine.client import ClientConnection
from triotls.engine.events import NewSessionTicketReceived
from triotls.engine.server import ServerConnection
from triotls.engine.tickets import ClientSession

RUNS = 15


def configs() -> tuple[ClientConfig, ServerConfig]:
    """A client and a server pinned to x25519 and AES-128-GCM, one trustme chain."""
    ca = trustme.CA(key_type=trustme.KeyType.ECDSA)
    leaf = ca.issue_cert("localhost", key_type=trustme.KeyType.ECDSA)
    chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    certified = CertifiedKey.from_pem(chain, leaf.private_key_pem.bytes())
    x25519 = (NamedGroup.X25519,)
    suites = (CipherSuite.TLS_AES_128_GCM_SHA256,)
    client = ClientConfig(
        trust=TrustStore.from_pem(ca.cert_pem.bytes()),
        cipher_suites=suites,
        groups=x25519,
        key_share_groups=x25519,
    )
    server = ServerConfig(
        certificates=(certified,), cipher_suites=suites, groups=x25519, ticket_count=0
    )
    return client, server


def connect(client: ClientConnection, server: ServerConnection) -> list[ClientSession]:
    """Run a handshake between the two; return the sessions the client received."""
    sessions: list[ClientSession] = []
    client.start_handshake()
    while not (client.handshake_complete and server.handshake_complete):
        if data := client.data_to_send():
            server.receive_data(data)
        if data := server.data_to_send():
            sessions += _sessions(client.receive_data(data))
    return sessions


def _sessions(events: list[object]) -> list[ClientSession]:
    return [
        e.session
        for e in events
        if isinstance(e, NewSessionTicketReceived) and e.session is not None
    ]


def best_of(runs: int, count: int, one: Callable[[], None]) -> float:
    """The best CPU time per call of ``one`` over ``runs`` runs of ``count`` calls, in µs."""
    for _ in range(max(1, count // 5)):
        one()  # warm up: imports, caches
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        for _ in range(count):
            one()
        best = min(best, (time.process_time() - start) / count)
    return best * 1e6


def handshakes(*, resumed: bool) -> float:
    """µs of CPU per handshake pair (full, or each resuming the last one)."""
    client_config, server_config = configs()
    if resumed:
        server_config = dataclasses.replace(server_config, ticket_count=1)
    last: list[ClientSession | None] = [None]

    def one() -> None:
        client = ClientConnection(client_config, server_hostname="localhost", session=last[0])
        server = ServerConnection(server_config)
        sessions = connect(client, server)
        server.send_application_data(b"x")
        sessions += _sessions(client.receive_data(server.data_to_send()))
        client.close()
        server.close()
        server.receive_data(client.data_to_send())
        client.receive_data(server.data_to_send())
        if resumed:
            last[0] = sessions[-1]

    return best_of(RUNS, 150, one)


def records(*, coalesce: bool) -> tuple[float, float, float, float]:
    """µs per 256 KiB: (seal, open, bare encrypt, bare decrypt)."""
    client_config, server_config = configs()
    client = ClientConnection(client_config, server_hostname="localhost")
    server = ServerConnection(server_config)
    connect(client, server)
    server.coalesce_application_data = coalesce
    payload = os.urandom(65_536)
    cut = 100_000  # inside a record: reads rarely end on a record boundary
    seal = open_ = float("inf")
    for _ in range(RUNS):
        sealed = opened = 0.0
        for _ in range(100):
            start = time.process_time()
            for _ in range(4):
                client.send_application_data(payload)
            wire = client.data_to_send()
            middle = time.process_time()
            server.receive_data(wire[:cut])
            server.receive_data(wire[cut:])
            sealed += middle - start
            opened += time.process_time() - middle
        seal, open_ = min(seal, sealed / 100), min(open_, opened / 100)
    aead = AESGCM(bytes(16))
    inner = payload[:16_384] + b"\x17"
    header = b"\x17\x03\x03\x40\x11"
    ciphertext = aead.encrypt(bytes(12), inner, header)
    encrypt = best_of(RUNS, 100, lambda: aead.encrypt(bytes(12), inner, header)) * 16
    decrypt = best_of(RUNS, 100, lambda: aead.decrypt(bytes(12), ciphertext, header)) * 16
    return seal * 1e6, open_ * 1e6, encrypt, decrypt


def main(argv: list[str]) -> None:
    which = argv or ["handshake", "resumed", "records"]
    for name in which:
        if name == "handshake":
            print(f"handshake: {handshakes(resumed=False):.0f} µs per pair")
        elif name == "resumed":
            print(f"resumed: {handshakes(resumed=True):.0f} µs per pair")
        elif name == "records":
            seal, open_, encrypt, decrypt = records(coalesce=False)
            coalesced = records(coalesce=True)[1]
            print(
                f"records: per 256 KiB, seal {seal:.1f} µs (AES-GCM alone {encrypt:.1f}), "
                f"open {open_:.1f} µs, coalesced {coalesced:.1f} µs (AES-GCM alone {decrypt:.1f})"
            )
        else:
            raise SystemExit(f"unknown benchmark {name!r}: handshake, resumed or records")


if __name__ == "__main__":
    main(sys.argv[1:])
