"""What triotls supports, mapped onto ``cryptography``: suites, groups, signatures.

Peer code points are plain ints; the lookups here return None for anything
we do not implement, so GREASE and unknown values simply never match.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mlkem, padding, rsa, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from ..errors import DecryptError, IllegalParameter, InternalError
from .enums import CipherSuite, NamedGroup, SignatureScheme

__all__ = [
    "AEAD",
    "CIPHER_SUITES",
    "GROUPS",
    "SIGNATURE_SCHEMES",
    "KeyExchange",
    "SuiteInfo",
    "server_key_exchange",
    "sign",
    "start_key_exchange",
    "start_key_exchanges",
    "verify_signature",
]


class AEAD(Protocol):
    """What the record layer needs of an AEAD (``cryptography``'s AESGCM et al.)."""

    def encrypt(
        self, nonce: bytes, data: bytes | memoryview, associated_data: bytes | None
    ) -> bytes: ...

    def decrypt(
        self, nonce: bytes, data: bytes | memoryview, associated_data: bytes | None
    ) -> bytes: ...

    def decrypt_into(
        self,
        nonce: bytes,
        data: bytes | memoryview,
        associated_data: bytes | None,
        buf: bytearray | memoryview,
    ) -> int: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SuiteInfo:
    """A TLS 1.3 cipher suite: AEAD constructor, key length and HKDF hash."""

    suite: CipherSuite
    aead: Callable[[bytes], AEAD]
    key_len: int
    hash_name: str

    @property
    def hash_len(self) -> int:
        """Output length of the suite's hash."""
        return 48 if self.hash_name == "sha384" else 32


CIPHER_SUITES: Final[Mapping[int, SuiteInfo]] = {
    CipherSuite.TLS_AES_128_GCM_SHA256: SuiteInfo(
        suite=CipherSuite.TLS_AES_128_GCM_SHA256, aead=AESGCM, key_len=16, hash_name="sha256"
    ),
    CipherSuite.TLS_AES_256_GCM_SHA384: SuiteInfo(
        suite=CipherSuite.TLS_AES_256_GCM_SHA384, aead=AESGCM, key_len=32, hash_name="sha384"
    ),
    CipherSuite.TLS_CHACHA20_POLY1305_SHA256: SuiteInfo(
        suite=CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
        aead=ChaCha20Poly1305,
        key_len=32,
        hash_name="sha256",
    ),
}

# --- key exchange ----------------------------------------------------------------

RandomBytes = Callable[[int], bytes]


class KeyExchange(Protocol):
    """A client's pending key share for one group."""

    group: int

    def share(self) -> bytes:
        """The key_exchange bytes to send."""
        ...

    def finish(self, server_share: bytes) -> bytes:
        """The shared secret, given the server's key_exchange bytes."""
        ...


_EC_CURVES: Final[Mapping[int, tuple[ec.EllipticCurve, int]]] = {
    NamedGroup.SECP256R1: (ec.SECP256R1(), 65),
    NamedGroup.SECP384R1: (ec.SECP384R1(), 97),
}
_SECP_ORDERS: Final[Mapping[int, int]] = {
    NamedGroup.SECP256R1: 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    NamedGroup.SECP384R1: int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
}


def _x25519_private(random_bytes: RandomBytes) -> x25519.X25519PrivateKey:
    return x25519.X25519PrivateKey.from_private_bytes(random_bytes(32))


def _x25519_shared(private: x25519.X25519PrivateKey, peer: bytes) -> bytes:
    if len(peer) != 32:
        raise IllegalParameter(f"x25519 key share is {len(peer)} bytes, expected 32")
    try:
        # cryptography refuses an all-zero result (RFC 8446 §7.4.2 requires it).
        return private.exchange(x25519.X25519PublicKey.from_public_bytes(peer))
    except ValueError:
        raise IllegalParameter("x25519 key share gives an all-zero shared secret") from None


def _ec_private(group: int, random_bytes: RandomBytes) -> ec.EllipticCurvePrivateKey:
    curve, _ = _EC_CURVES[group]
    order = _SECP_ORDERS[group]
    size = (order.bit_length() + 7) // 8
    # 64 extra bits make the bias of the reduction negligible.
    scalar = int.from_bytes(random_bytes(size + 8), "big") % (order - 1) + 1
    return ec.derive_private_key(scalar, curve)


def _ec_public_bytes(private: ec.EllipticCurvePrivateKey) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return private.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def _ec_shared(group: int, private: ec.EllipticCurvePrivateKey, peer: bytes) -> bytes:
    curve, size = _EC_CURVES[group]
    # RFC 8446 §4.2.8.2: only the uncompressed form (0x04 || X || Y) is allowed.
    if len(peer) != size or peer[0] != 0x04:
        raise IllegalParameter(
            f"{curve.name} key share must be an uncompressed point of {size} bytes"
        )
    try:
        public = ec.EllipticCurvePublicKey.from_encoded_point(curve, peer)
    except ValueError:
        raise IllegalParameter(f"{curve.name} key share is not a point on the curve") from None
    return private.exchange(ec.ECDH(), public)


@final
class _X25519Exchange:
    __slots__ = ("_private", "group")

    def __init__(
        self, random_bytes: RandomBytes, private: x25519.X25519PrivateKey | None = None
    ) -> None:
        self.group = int(NamedGroup.X25519)
        self._private = private or _x25519_private(random_bytes)

    def share(self) -> bytes:
        return self._private.public_key().public_bytes_raw()

    def finish(self, server_share: bytes) -> bytes:
        return _x25519_shared(self._private, server_share)


@final
class _ECExchange:
    __slots__ = ("_private", "group")

    def __init__(self, group: int, random_bytes: RandomBytes) -> None:
        self.group = group
        self._private = _ec_private(group, random_bytes)

    def share(self) -> bytes:
        return _ec_public_bytes(self._private)

    def finish(self, server_share: bytes) -> bytes:
        return _ec_shared(self.group, self._private, server_share)


_MLKEM768_EK: Final = 1184
_MLKEM768_CT: Final = 1088


@final
class _X25519MLKEM768Exchange:
    """draft-ietf-tls-ecdhe-mlkem §3: the ML-KEM part comes first."""

    __slots__ = ("_kem", "_x25519", "group")

    def __init__(
        self, random_bytes: RandomBytes, x25519_private: x25519.X25519PrivateKey | None = None
    ) -> None:
        self.group = int(NamedGroup.X25519MLKEM768)
        self._kem = mlkem.MLKEM768PrivateKey.from_seed_bytes(random_bytes(64))
        self._x25519 = x25519_private or _x25519_private(random_bytes)

    def share(self) -> bytes:
        return (
            self._kem.public_key().public_bytes_raw() + self._x25519.public_key().public_bytes_raw()
        )

    def finish(self, server_share: bytes) -> bytes:
        if len(server_share) != _MLKEM768_CT + 32:
            raise IllegalParameter(
                f"X25519MLKEM768 server share is {len(server_share)} bytes, expected 1120"
            )
        try:
            kem_secret = self._kem.decapsulate(server_share[:_MLKEM768_CT])
        except ValueError as exc:
            raise InternalError(f"ML-KEM decapsulation failed: {exc}") from exc
        return kem_secret + _x25519_shared(self._x25519, server_share[_MLKEM768_CT:])


def start_key_exchange(group: int, random_bytes: RandomBytes) -> KeyExchange:
    """Create a client key share for ``group`` (one of :data:`GROUPS`)."""
    if group == NamedGroup.X25519:
        return _X25519Exchange(random_bytes)
    if group in _EC_CURVES:
        return _ECExchange(group, random_bytes)
    if group == NamedGroup.X25519MLKEM768:
        return _X25519MLKEM768Exchange(random_bytes)
    raise InternalError(f"no key exchange for group {group:#06x}")


def start_key_exchanges(groups: Sequence[int], random_bytes: RandomBytes) -> dict[int, KeyExchange]:
    """Client key shares for ``groups`` (the ClientHello's key_share), by group.

    Offered together, X25519MLKEM768 and x25519 share one X25519 key, as
    rustls and BoringSSL do: the server selects one group, so the key takes
    part in one exchange only, and the client saves a key generation (about
    37 µs here). Every other share gets a key of its own.
    """
    shared = None
    if NamedGroup.X25519 in groups and NamedGroup.X25519MLKEM768 in groups:
        shared = _x25519_private(random_bytes)
    exchanges: dict[int, KeyExchange] = {}
    for group in groups:
        if group == NamedGroup.X25519:
            exchanges[group] = _X25519Exchange(random_bytes, shared)
        elif group == NamedGroup.X25519MLKEM768:
            exchanges[group] = _X25519MLKEM768Exchange(random_bytes, shared)
        else:
            exchanges[group] = start_key_exchange(group, random_bytes)
    return exchanges


def server_key_exchange(
    group: int, client_share: bytes, random_bytes: RandomBytes
) -> tuple[bytes, bytes]:
    """The server's answer to a client share: (server key_exchange, shared secret)."""
    if group == NamedGroup.X25519:
        x = _x25519_private(random_bytes)
        return x.public_key().public_bytes_raw(), _x25519_shared(x, client_share)
    if group in _EC_CURVES:
        private = _ec_private(group, random_bytes)
        secret = _ec_shared(group, private, client_share)
        return _ec_public_bytes(private), secret
    if group == NamedGroup.X25519MLKEM768:
        if len(client_share) != _MLKEM768_EK + 32:
            raise IllegalParameter(
                f"X25519MLKEM768 client share is {len(client_share)} bytes, expected 1216"
            )
        try:
            # from_public_bytes performs the FIPS 203 §7.2 encapsulation key check.
            ek = mlkem.MLKEM768PublicKey.from_public_bytes(client_share[:_MLKEM768_EK])
        except ValueError:
            raise IllegalParameter("X25519MLKEM768 encapsulation key is invalid") from None
        kem_secret, ciphertext = ek.encapsulate()
        x = _x25519_private(random_bytes)
        x_secret = _x25519_shared(x, client_share[_MLKEM768_EK:])
        return ciphertext + x.public_key().public_bytes_raw(), kem_secret + x_secret
    raise InternalError(f"no key exchange for group {group:#06x}")


GROUPS: Final = frozenset(
    {NamedGroup.X25519MLKEM768, NamedGroup.X25519, NamedGroup.SECP256R1, NamedGroup.SECP384R1}
)

# --- signatures -----------------------------------------------------------------

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey

_HASHES: Final[Mapping[str, Callable[[], hashes.HashAlgorithm]]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SchemeInfo:
    """How a signature scheme signs: key kind, hash, curve, padding."""

    scheme: SignatureScheme
    kind: str  # "ecdsa", "rsa_pss_rsae", "rsa_pss_pss", "ed25519"
    hash_name: str | None
    curve: str | None = None


SIGNATURE_SCHEMES: Final[Mapping[int, SchemeInfo]] = {
    s.scheme: s
    for s in (
        SchemeInfo(
            scheme=SignatureScheme.ECDSA_SECP256R1_SHA256,
            kind="ecdsa",
            hash_name="sha256",
            curve="secp256r1",
        ),
        SchemeInfo(
            scheme=SignatureScheme.ECDSA_SECP384R1_SHA384,
            kind="ecdsa",
            hash_name="sha384",
            curve="secp384r1",
        ),
        SchemeInfo(scheme=SignatureScheme.ED25519, kind="ed25519", hash_name=None),
        SchemeInfo(
            scheme=SignatureScheme.RSA_PSS_RSAE_SHA256, kind="rsa_pss_rsae", hash_name="sha256"
        ),
        SchemeInfo(
            scheme=SignatureScheme.RSA_PSS_RSAE_SHA384, kind="rsa_pss_rsae", hash_name="sha384"
        ),
        SchemeInfo(
            scheme=SignatureScheme.RSA_PSS_RSAE_SHA512, kind="rsa_pss_rsae", hash_name="sha512"
        ),
        SchemeInfo(
            scheme=SignatureScheme.RSA_PSS_PSS_SHA256, kind="rsa_pss_pss", hash_name="sha256"
        ),
        SchemeInfo(
            scheme=SignatureScheme.RSA_PSS_PSS_SHA384, kind="rsa_pss_pss", hash_name="sha384"
        ),
        SchemeInfo(
            scheme=SignatureScheme.RSA_PSS_PSS_SHA512, kind="rsa_pss_pss", hash_name="sha512"
        ),
    )
}
"""Schemes allowed in CertificateVerify (RFC 8446 §4.2.3: no PKCS#1, no SHA-1)."""


def key_kind(key: PrivateKey | PublicKey, *, is_pss_key: bool = False) -> str:
    """Which family of schemes a key can sign with."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return f"ecdsa:{key.curve.name}"
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "rsa_pss_pss" if is_pss_key else "rsa_pss_rsae"
    return "ed25519"


def scheme_fits_key(info: SchemeInfo, kind: str) -> bool:
    """Whether ``info`` can be used with a key of ``kind`` (see :func:`key_kind`)."""
    if info.kind == "ecdsa":
        return kind == f"ecdsa:{info.curve}"
    return info.kind == kind


def _pss(hash_name: str) -> padding.PSS:
    algorithm = _HASHES[hash_name]()
    # RFC 8446 §4.2.3: the salt length equals the digest length.
    return padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size)


def sign(key: PrivateKey, info: SchemeInfo, data: bytes) -> bytes:
    """Sign ``data`` with ``key`` under scheme ``info``."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        assert info.hash_name is not None  # every ECDSA scheme names a hash
        return key.sign(data, ec.ECDSA(_HASHES[info.hash_name]()))
    if isinstance(key, rsa.RSAPrivateKey):
        assert info.hash_name is not None  # every RSA-PSS scheme names a hash
        return key.sign(data, _pss(info.hash_name), _HASHES[info.hash_name]())
    return key.sign(data)


def verify_signature(key: PublicKey, info: SchemeInfo, signature: bytes, data: bytes) -> None:
    """Verify a handshake signature; raise DecryptError if it is wrong (RFC 8446 §4.4.3)."""
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            assert info.hash_name is not None  # every ECDSA scheme names a hash
            key.verify(signature, data, ec.ECDSA(_HASHES[info.hash_name]()))
        elif isinstance(key, rsa.RSAPublicKey):
            assert info.hash_name is not None  # every RSA-PSS scheme names a hash
            key.verify(signature, data, _pss(info.hash_name), _HASHES[info.hash_name]())
        else:
            key.verify(signature, data)
    except InvalidSignature:
        raise DecryptError(
            f"the peer's CertificateVerify signature ({info.scheme.name.lower()}) does not verify"
        ) from None
