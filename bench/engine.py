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

* ``floor``: only the native calls (``cryptography``, ``hashlib``,
  ``os.urandom``) that a full and a resumed handshake pair make, made
  directly one after another: the cost no Python engine on ``cryptography``
  can go below (the rest of ``handshake`` and ``resumed`` is the engine's
  own Python).

* ``hybrid``, ``tickets``, ``writes``: full handshakes with the default
  groups (X25519MLKEM768 and x25519), full handshakes with two tickets, and
  64 KiB sealed and opened in writes of 1, 4, 16 and 64 KiB: the figures
  behind the advice in docs/performance.rst.

Run ``python bench/engine.py [handshake|resumed|records|floor|hybrid|tickets|writes ...]`` from the
repository root with triotls and trustme importable; compare two trees by
running the script of each alternately (``PYTHONPATH=tree python
tree/bench/engine.py``), in fresh processes.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import os
import sys
import time
from collections.abc import Callable, Sequence

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509 import verification

from triotls import (
    CertifiedKey,
    CipherSuite,
    ClientConfig,
    NamedGroup,
    ServerConfig,
    TrustStore,
    config,
)
from triotls.engine import keyschedule, record, transcript
from triotls.engine.client import ClientConnection
from triotls.engine.events import NewSessionTicketReceived
from triotls.engine.keyschedule import hmac_digest
from triotls.engine.server import ServerConnection
from triotls.engine.tickets import ClientSession
from triotls.engine.verify import _extension_policies

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


def _sessions(events: Sequence[object]) -> list[ClientSession]:
    return [
        e.session
        for e in events
        if isinstance(e, NewSessionTicketReceived) and e.session is not None
    ]


def best_of(runs: int, count: int, one: Callable[[], object]) -> float:
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


def handshakes(*, resumed: bool, hybrid: bool = False, tickets: int = 0) -> float:
    """µs of CPU per handshake pair (full, or each resuming the last one).

    ``hybrid``: both ends with their default groups (X25519MLKEM768 and
    x25519) instead of x25519 alone; ``tickets``: the server's
    ``ticket_count`` on full handshakes.
    """
    client_config, server_config = configs()
    if hybrid:
        groups = (NamedGroup.X25519MLKEM768, NamedGroup.X25519)
        client_config = dataclasses.replace(client_config, groups=groups, key_share_groups=groups)
        server_config = dataclasses.replace(server_config, groups=groups)
    server_config = dataclasses.replace(server_config, ticket_count=1 if resumed else tickets)
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


def native_calls(*, resumed: bool) -> dict[str, int]:
    """What one handshake pair of ``handshakes()`` asks of native code, counted.

    Runs such a pair (resumed: the second of two connections) with the
    engine's entry points to native code wrapped: HMACs (HKDF and Finished),
    traffic keys installed (an AESGCM each), protected records (each sealed
    by one side and opened by the other), bytes added to both transcripts,
    and calls for randomness.
    """
    counts = dict.fromkeys(("hmac", "aead_keys", "records", "hashed", "random"), 0)
    hmac_digest = keyschedule.hmac_digest
    protection_init = record._Protection.__init__
    transcript_add = transcript.Transcript.add
    random_bytes = config.SystemRandom.random_bytes

    def counting_hmac(hash_name: str, key: bytes, msg: bytes) -> bytes:
        counts["hmac"] += 1
        return hmac_digest(hash_name, key, msg)

    def counting_protection(self: object, suite: object, secret: bytes) -> None:
        counts["aead_keys"] += 1
        protection_init(self, suite, secret)  # type: ignore[arg-type]

    def counting_add(self: transcript.Transcript, raw: bytes) -> None:
        counts["hashed"] += len(raw)
        transcript_add(self, raw)

    def counting_random(self: config.SystemRandom, n: int) -> bytes:
        counts["random"] += 1
        return random_bytes(self, n)

    client_config, server_config = configs()
    server_config = dataclasses.replace(server_config, ticket_count=1 if resumed else 0)
    # A first connection warms the caches a benchmark run has warm (and
    # gives the ticket to resume).
    client = ClientConnection(client_config, server_hostname="localhost")
    server = ServerConnection(server_config)
    sessions = connect(client, server)
    server.send_application_data(b"x")
    sessions += _sessions(client.receive_data(server.data_to_send()))
    session = sessions[-1] if resumed else None
    patches = (
        (keyschedule, "hmac_digest", counting_hmac),
        (record._Protection, "__init__", counting_protection),
        (transcript.Transcript, "add", counting_add),
        (config.SystemRandom, "random_bytes", counting_random),
    )
    originals = [(target, name, getattr(target, name)) for target, name, _ in patches]
    for target, name, replacement in patches:
        setattr(target, name, replacement)
    try:
        client = ClientConnection(client_config, server_hostname="localhost", session=session)
        server = ServerConnection(server_config)
        wire: list[bytes] = []
        client.start_handshake()
        while not (client.handshake_complete and server.handshake_complete):
            if data := client.data_to_send():
                wire.append(data)
                server.receive_data(data)
            if data := server.data_to_send():
                wire.append(data)
                client.receive_data(data)
        server.send_application_data(b"x")
        client.close()
        server.close()
        for data in (server.data_to_send(), client.data_to_send()):
            wire.append(data)
    finally:
        for target, name, original in originals:
            setattr(target, name, original)
    for data in wire:
        pos = 0
        while pos + 5 <= len(data):
            counts["records"] += data[pos] == 23  # protected (application_data type)
            pos += 5 + int.from_bytes(data[pos + 3 : pos + 5], "big")
    return counts


def floor(*, resumed: bool) -> float:
    """µs of CPU for the native calls of one handshake pair, made directly."""
    ca = trustme.CA(key_type=trustme.KeyType.ECDSA)
    issued = ca.issue_cert("localhost", key_type=trustme.KeyType.ECDSA)
    leaf = x509.load_pem_x509_certificate(issued.cert_chain_pems[0].bytes())
    key = serialization.load_pem_private_key(issued.private_key_pem.bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    store = verification.Store([x509.load_pem_x509_certificate(ca.cert_pem.bytes())])
    # The extension policies triotls gives the validator (trustme marks its
    # subjectAltName critical, which the webpki defaults refuse).
    ca_policy, ee_policy = _extension_policies("server")
    calls = native_calls(resumed=resumed)
    secret, label = os.urandom(32), b"\x00\x20\x0dtls13 c hs traffic" + os.urandom(33)
    signed = b" " * 64 + b"TLS 1.3, server CertificateVerify\x00" + os.urandom(32)
    ticket_aead = AESGCM(os.urandom(32))
    payload = os.urandom(200)
    hashed = os.urandom(calls["hashed"] // 2)  # each side's transcript
    peer_share = x25519.X25519PrivateKey.generate().public_key().public_bytes_raw()

    def one() -> None:
        for _ in range(2):  # a key share and its agreement, each side
            private = x25519.X25519PrivateKey.from_private_bytes(os.urandom(32))
            private.public_key().public_bytes_raw()
            private.exchange(x25519.X25519PublicKey.from_public_bytes(peer_share))
        for _ in range(calls["hmac"]):
            hmac_digest("sha256", secret, label)
        for _ in range(calls["aead_keys"]):
            AESGCM(secret[:16])
        aead = AESGCM(secret[:16])
        for _ in range(calls["records"]):
            aead.decrypt(bytes(12), aead.encrypt(bytes(12), payload, b"hdr12"), b"hdr12")
        for _ in range(2):
            digest = hashlib.sha256(hashed)
            for _ in range(4):
                digest.copy().digest()
        for _ in range(calls["random"]):
            os.urandom(32)
        if resumed:  # the ticket: sealed by the server, opened by the server
            ticket_aead.decrypt(bytes(12), ticket_aead.encrypt(bytes(12), payload, None), None)
        else:  # the server signs, the client validates the chain and checks the signature
            signature = key.sign(signed, ec.ECDSA(hashes.SHA256()))
            now = datetime.datetime.now(datetime.timezone.utc)
            verifier = (
                verification.PolicyBuilder()
                .store(store)
                .time(now)
                .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
                .build_server_verifier(x509.DNSName("localhost"))
            )
            verifier.verify(leaf, [])
            public = leaf.public_key()
            assert isinstance(public, ec.EllipticCurvePublicKey)
            public.verify(signature, signed, ec.ECDSA(hashes.SHA256()))

    return best_of(RUNS, 150, one)


def write_sizes() -> dict[int, float]:
    """µs of CPU to seal and open 64 KiB given in writes of each size."""
    client_config, server_config = configs()
    client = ClientConnection(client_config, server_hostname="localhost")
    server = ServerConnection(server_config)
    connect(client, server)
    server.coalesce_application_data = True  # as TLSStream asks
    payload = os.urandom(65_536)
    result = {}
    for size in (1024, 4096, 16_384, 65_536):
        pieces = [payload[i : i + size] for i in range(0, len(payload), size)]

        def one(pieces: list[bytes] = pieces) -> None:
            for piece in pieces:
                client.send_application_data(piece)
            server.receive_data(client.data_to_send())

        result[size] = best_of(RUNS, 100, one)
    return result


def mlkem_floor() -> float:
    """µs of CPU for the ML-KEM-768 calls X25519MLKEM768 adds to a handshake pair."""

    def one() -> None:
        private = mlkem.MLKEM768PrivateKey.from_seed_bytes(os.urandom(64))  # client
        share = private.public_key().public_bytes_raw()
        public = mlkem.MLKEM768PublicKey.from_public_bytes(share)  # server: FIPS 203 check
        _secret, ciphertext = public.encapsulate()
        private.decapsulate(ciphertext)  # client

    return best_of(RUNS, 150, one)


def main(argv: list[str]) -> None:
    which = argv or ["handshake", "resumed", "records", "floor", "hybrid", "tickets", "writes"]
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
        elif name == "hybrid":
            print(f"hybrid: {handshakes(resumed=False, hybrid=True):.0f} µs per full pair")
        elif name == "tickets":
            print(f"tickets: {handshakes(resumed=False, tickets=2):.0f} µs per full pair")
        elif name == "writes":
            costs = ", ".join(f"{size} B: {us:.0f} µs" for size, us in write_sizes().items())
            print(f"writes: 64 KiB sealed and opened, by write size: {costs}")
        elif name == "floor":
            print(
                f"floor: native calls of a full handshake {floor(resumed=False):.0f} µs "
                f"per pair, of a resumed one {floor(resumed=True):.0f} µs; "
                f"X25519MLKEM768 adds {mlkem_floor():.0f} µs of ML-KEM-768"
            )
        else:
            raise SystemExit(
                f"unknown benchmark {name!r}: "
                "handshake, resumed, records, floor, hybrid, tickets or writes"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
