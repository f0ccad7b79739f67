"""Building blocks for engine tests: certificates, connection pairs, wire helpers.

Certificates are made once per test session (``functools.cache``) because key
generation dominates the cost of a handshake test. The default chain is a
``trustme`` ECDSA P-256 one; RSA comes from ``trustme`` as well, and the
Ed25519 and wrong-purpose chains are built here with ``cryptography`` because
trustme cannot make them.

Connections are driven by hand: :func:`handshake` pumps bytes until both
sides report completion, :func:`pump` moves one batch of bytes one way. The
wire helpers read plaintext records without trusting the engine under test,
and :func:`rewrite_outgoing_handshake` lets a test change a handshake message
after the sender put it in its transcript but before it is sealed, which is
how a tampered *encrypted* message is produced without re-implementing the
record layer.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import ipaddress
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from triotls.config import CertifiedKey, ClientConfig, ServerConfig, TrustStore
from triotls.engine import ClientConnection, Connection, ServerConnection
from triotls.engine.enums import ContentType
from triotls.engine.events import Event
from triotls.engine.messages import ClientHello, ServerHello, frame
from triotls.errors import AlertReceived

__all__ = [
    "SERVER_NAME",
    "DeterministicRandom",
    "FixedClock",
    "KeyKind",
    "Pki",
    "alert_seen_by",
    "client_auth_only_pki",
    "client_ca",
    "client_certified",
    "client_trust",
    "handshake",
    "last_alert",
    "make_pair",
    "pki",
    "pump",
    "records",
    "replace_extension",
    "rewrite_client_hello",
    "rewrite_outgoing_handshake",
    "rewrite_server_hello",
    "server_flight",
    "split_records",
    "unknown_ca_trust",
]

SERVER_NAME: Final = "localhost"
SERVER_IP: Final = "127.0.0.1"
# Enough round trips for a HelloRetryRequest handshake with room to spare; a
# handshake that needs more is stuck, and the helper says so instead of looping.
_MAX_ROUNDS: Final = 8

KeyKind = Literal["ecdsa", "rsa", "ed25519"]


class DeterministicRandom:
    """A ``Random`` that yields the same bytes for the same seed.

    SHA-256 in counter mode over the seed: two instances with one seed make
    identical ClientHellos and key shares, so a recorded flight replays.
    """

    def __init__(self, seed: bytes = b"triotls engine tests") -> None:
        self._seed = seed
        self._counter = 0

    def random_bytes(self, n: int) -> bytes:
        """The next ``n`` bytes of the stream."""
        out = bytearray()
        while len(out) < n:
            out += hashlib.sha256(self._seed + self._counter.to_bytes(8, "big")).digest()
            self._counter += 1
        return bytes(out[:n])


class FixedClock:
    """A ``Clock`` that always reports one moment."""

    def __init__(self, when: datetime.datetime) -> None:
        self._now = when.timestamp()

    def now(self) -> float:
        """The fixed moment, in seconds since the epoch."""
        return self._now


# No slots: functools.cached_property stores into the instance __dict__.
@dataclass(frozen=True, kw_only=True)
class Pki:
    """A root and one end-entity chain it issued, PEM-encoded."""

    ca_pem: bytes
    chain_pem: bytes
    key_pem: bytes

    @functools.cached_property
    def trust(self) -> TrustStore:
        """A trust store holding the root."""
        return TrustStore.from_pem(self.ca_pem)

    @functools.cached_property
    def certified(self) -> CertifiedKey:
        """The chain and its key, ready for a ServerConfig."""
        return CertifiedKey.from_pem(self.chain_pem, self.key_pem)

    @property
    def leaf(self) -> x509.Certificate:
        """The end-entity certificate."""
        return x509.load_pem_x509_certificates(self.chain_pem)[0]


@functools.cache
def pki(kind: KeyKind = "ecdsa") -> Pki:
    """The session's chain for ``localhost``/``127.0.0.1`` with a ``kind`` leaf key."""
    if kind == "ecdsa":
        return _trustme_pki(trustme.KeyType.ECDSA)
    if kind == "rsa":
        built = _trustme_pki(trustme.KeyType.RSA)
        # trustme's KeyType.RSA has issued EC leaves in some versions; the
        # tests need a real RSA leaf, so build one if trustme did not.
        key = serialization.load_pem_private_key(built.key_pem, password=None)
        if isinstance(key, rsa.RSAPrivateKey):
            return built
        return _built_pki(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _built_pki(ed25519.Ed25519PrivateKey.generate())


@functools.cache
def client_auth_only_pki(*, critical: bool) -> Pki:
    """A chain whose leaf's extendedKeyUsage allows client authentication only.

    ``critical=True`` marks subjectAltName and extendedKeyUsage critical, as
    trustme does (DESIGN.md, "Known trap").
    """
    return _built_pki(
        ec.generate_private_key(ec.SECP256R1()),
        eku=(ExtendedKeyUsageOID.CLIENT_AUTH,),
        critical=critical,
    )


@functools.cache
def client_ca() -> trustme.CA:
    """A CA for client certificates, apart from the servers' (mTLS tests)."""
    return trustme.CA(organization_name="triotls test client CA")


@functools.cache
def client_trust() -> TrustStore:
    """A server's ``client_trust`` holding :func:`client_ca`."""
    return TrustStore.from_pem(client_ca().cert_pem.bytes())


@functools.cache
def client_certified() -> CertifiedKey:
    """A client certificate from :func:`client_ca` (trustme leaves allow clientAuth)."""
    leaf = client_ca().issue_cert("client@example")
    chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    return CertifiedKey.from_pem(chain, leaf.private_key_pem.bytes())


@functools.cache
def unknown_ca_trust() -> TrustStore:
    """A trust store whose root issued none of the session's chains."""
    return TrustStore.from_pem(trustme.CA().cert_pem.bytes())


def make_pair(
    *,
    client_kw: Mapping[str, Any] | None = None,
    server_kw: Mapping[str, Any] | None = None,
    kind: KeyKind = "ecdsa",
    server_hostname: str | None = SERVER_NAME,
) -> tuple[ClientConnection, ServerConnection]:
    """A fresh client and server that trust each other (the handshake is not started).

    Args:
        client_kw: ClientConfig fields overriding the defaults (``trust`` is set).
        server_kw: ServerConfig fields overriding the defaults (``certificates`` is set).
        kind: the server's certificate key type.
        server_hostname: what the client asks for and checks.
    """
    chain = pki(kind)
    client_fields: dict[str, Any] = {"trust": chain.trust, **(client_kw or {})}
    server_fields: dict[str, Any] = {"certificates": (chain.certified,), **(server_kw or {})}
    client = ClientConnection(ClientConfig(**client_fields), server_hostname=server_hostname)
    server = ServerConnection(ServerConfig(**server_fields))
    return client, server


def pump(src: Connection, dst: Connection) -> list[Event]:
    """Move what ``src`` has to send into ``dst``; nothing moves if ``src`` is idle.

    (Feeding ``b""`` would mean EOF, so an idle ``src`` is not fed through.)
    """
    data = src.data_to_send()
    if not data:
        return []
    return dst.receive_data(data)


def handshake(
    client: ClientConnection, server: ServerConnection
) -> tuple[list[Event], list[Event]]:
    """Start the client and pump bytes both ways until both sides complete.

    Returns:
        (client events, server events) collected on the way.
    """
    client.start_handshake()
    client_events: list[Event] = []
    server_events: list[Event] = []
    for _ in range(_MAX_ROUNDS):
        server_events += pump(client, server)
        client_events += pump(server, client)
        if client.handshake_complete and server.handshake_complete:
            server_events += pump(client, server)
            return client_events, server_events
    raise AssertionError(
        f"the handshake did not complete in {_MAX_ROUNDS} rounds "
        f"(client in {client.state_name}, server in {server.state_name})"
    )


def server_flight(client: ClientConnection, server: ServerConnection) -> bytes:
    """Start the client, give its ClientHello to the server, return the server's answer."""
    client.start_handshake()
    pump(client, server)
    return server.data_to_send()


def split_records(wire: bytes) -> list[bytes]:
    """Cut a byte stream into whole records (header included); a partial tail is an error."""
    out: list[bytes] = []
    pos = 0
    while pos < len(wire):
        if len(wire) - pos < 5:
            raise AssertionError(f"{len(wire) - pos} stray bytes after the last record")
        (length,) = struct.unpack_from(">H", wire, pos + 3)
        end = pos + 5 + length
        if end > len(wire):
            raise AssertionError("the last record is incomplete")
        out.append(wire[pos:end])
        pos = end
    return out


def records(wire: bytes) -> list[tuple[int, int]]:
    """The (outer content type, length) of each record in ``wire``."""
    return [(rec[0], len(rec) - 5) for rec in split_records(wire)]


def last_alert(wire: bytes) -> int:
    """The description of the last record in ``wire``, which must be a plaintext alert."""
    recs = split_records(wire)
    if not recs or recs[-1][0] != ContentType.ALERT or len(recs[-1]) != 7:
        kinds = [rec[0] for rec in recs]
        raise AssertionError(f"the last record is not a plaintext alert (types {kinds})")
    return recs[-1][6]


def alert_seen_by(peer: Connection, wire: bytes) -> int:
    """Feed ``wire`` to ``peer`` and return the fatal alert it reports.

    This is how a test reads an alert that was encrypted: the peer holds the key.
    """
    with pytest.raises(AlertReceived) as info:
        peer.receive_data(wire)
    return info.value.description


def rewrite_server_hello(flight: bytes, change: Callable[[ServerHello], ServerHello]) -> bytes:
    """Replace the ServerHello in the first record of ``flight`` with ``change(sh)``."""

    def rewrite(body: bytes) -> bytes:
        return change(ServerHello.decode(body)).encode()

    return _rewrite_first_handshake_record(flight, rewrite)


def rewrite_client_hello(wire: bytes, change: Callable[[ClientHello], ClientHello]) -> bytes:
    """Replace the ClientHello in the first handshake record of ``wire``."""

    def rewrite(body: bytes) -> bytes:
        return change(ClientHello.decode(body)).encode()

    return _rewrite_first_handshake_record(wire, rewrite)


def rewrite_outgoing_handshake(conn: Connection, rewrite: Callable[[bytes], bytes]) -> None:
    """Pass every framed handshake message ``conn`` queues through ``rewrite``.

    The sender's transcript keeps the original message, so a rewritten message
    that still parses shows up as a transcript mismatch at the receiver.
    """
    original = conn.queue_handshake

    def queue_handshake(raw: bytes, *, legacy_version: int = 0x0303) -> None:
        original(rewrite(raw), legacy_version=legacy_version)

    # The Connection API has no tamper hook, and should not: replacing the
    # bound method on this one instance is the narrowest way to get one.
    conn.queue_handshake = queue_handshake  # type: ignore[method-assign]


def replace_extension(
    exts: Mapping[int, bytes], ext_type: int, data: bytes | None
) -> dict[int, bytes]:
    """A copy of ``exts`` with ``ext_type`` set to ``data`` (removed when None), order kept."""
    out = dict(exts)
    if data is None:
        out.pop(ext_type, None)
    else:
        out[ext_type] = data
    return out


def _rewrite_first_handshake_record(wire: bytes, rewrite: Callable[[bytes], bytes]) -> bytes:
    recs = split_records(wire)
    for index, rec in enumerate(recs):
        if rec[0] != ContentType.HANDSHAKE:
            continue
        payload = rec[5:]
        length = int.from_bytes(payload[1:4], "big")
        if len(payload) != 4 + length:
            raise AssertionError("the first handshake record does not hold exactly one message")
        body = rewrite(payload[4:])
        new_payload = frame(payload[0], body)
        recs[index] = rec[:3] + struct.pack(">H", len(new_payload)) + new_payload
        return b"".join(recs)
    raise AssertionError("no plaintext handshake record in the bytes given")


def _trustme_pki(key_type: trustme.KeyType) -> Pki:
    ca = trustme.CA(key_type=key_type)
    leaf = ca.issue_cert(SERVER_NAME, SERVER_IP, key_type=key_type)
    return Pki(
        ca_pem=ca.cert_pem.bytes(),
        chain_pem=b"".join(blob.bytes() for blob in leaf.cert_chain_pems),
        key_pem=leaf.private_key_pem.bytes(),
    )


def _built_pki(
    leaf_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey,
    *,
    eku: tuple[x509.ObjectIdentifier, ...] = (ExtendedKeyUsageOID.SERVER_AUTH,),
    critical: bool = False,
) -> Pki:
    now = datetime.datetime.now(datetime.timezone.utc)
    not_before = now - datetime.timedelta(days=1)
    not_after = now + datetime.timedelta(days=30)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "triotls engine test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(eku)), critical=critical)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(SERVER_NAME), x509.IPAddress(ipaddress.ip_address(SERVER_IP))]
            ),
            critical=critical,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return Pki(
        ca_pem=ca_cert.public_bytes(pem),
        chain_pem=leaf_cert.public_bytes(pem),
        key_pem=leaf_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )
