"""The TLS 1.3 key schedule (RFC 8446 §7.1), traffic keys and exporters.

HKDF (RFC 5869) is built on HMAC (RFC 2104) over :mod:`hashlib`: a
handshake makes about two dozen HMAC calls a side on inputs of a hash block
or two, where the per-call setup of ``hmac.digest`` (OpenSSL's HMAC context,
about 2 µs) costs more than the hashing; two ``hashlib`` calls cost 1.2 µs.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from typing import Final, NewType, final

from ..errors import InternalError

__all__ = [
    "KeySchedule",
    "Secret",
    "derive_secret",
    "finished_verify_data",
    "hkdf_expand",
    "hkdf_expand_label",
    "hkdf_extract",
    "hmac_digest",
    "next_traffic_secret",
    "resumption_psk",
    "traffic_key_and_iv",
]

Secret = NewType("Secret", bytes)
"""A TLS 1.3 secret (PRK or derived secret); never a key or an IV."""


# HMAC's inner and outer pads (RFC 2104 §2): bytes.translate XORs a whole
# key with 0x36 or 0x5C at once.
_IPAD: Final = bytes(b ^ 0x36 for b in range(256))
_OPAD: Final = bytes(b ^ 0x5C for b in range(256))


def hmac_digest(hash_name: str, key: bytes, msg: bytes) -> bytes:
    """HMAC(key, msg) with the named hash (RFC 2104); as ``hmac.digest``."""
    hash_info = _HASH_INFO.get(hash_name)
    if hash_info is None:
        hash_info = _hash_info(hash_name)
    new, block_size = hash_info
    if len(key) > block_size:
        key = new(key).digest()
    key = key.ljust(block_size, b"\0")
    inner = new(key.translate(_IPAD) + msg).digest()
    return new(key.translate(_OPAD) + inner).digest()


def _hash_info(hash_name: str) -> tuple[Callable[[bytes], hashlib._Hash], int]:
    def new(data: bytes) -> hashlib._Hash:
        return hashlib.new(hash_name, data)

    info = _HASH_INFO[hash_name] = (new, hashlib.new(hash_name).block_size)
    return info


# Per hash name: a constructor taking the first input, and the block size.
_HASH_INFO: dict[str, tuple[Callable[[bytes], hashlib._Hash], int]] = {
    "sha256": (hashlib.sha256, 64),
    "sha384": (hashlib.sha384, 128),
}


def hkdf_extract(hash_name: str, salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract(salt, IKM) (RFC 5869 §2.2)."""
    if not salt:
        salt = bytes(len(_empty_hash(hash_name)))
    return hmac_digest(hash_name, salt, ikm)


def hkdf_expand(hash_name: str, prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand(PRK, info, L) (RFC 5869 §2.3)."""
    # Every TLS 1.3 secret, key and IV fits in T(1): one HMAC, no loop.
    first = hmac_digest(hash_name, prk, info + b"\x01")
    if length <= len(first):
        return first if length == len(first) else first[:length]
    # RFC 5869 §2.3: L <= 255 * HashLen, T(255) being the last block.
    if length > 255 * len(first):
        raise InternalError(f"HKDF-Expand asked for {length} bytes, over 255 blocks")
    out = first
    block = first
    counter = 2
    while len(out) < length:
        block = hmac_digest(hash_name, prk, block + info + bytes([counter]))
        out += block
        counter += 1
    return out[:length]


def hkdf_expand_label(
    hash_name: str, secret: bytes, label: bytes, context: bytes, length: int
) -> bytes:
    """HKDF-Expand-Label (RFC 8446 §7.1); ``label`` excludes the "tls13 " prefix."""
    # An exporter label from the application may be any bytes-like object.
    cacheable = type(label) is bytes
    prefix = _LABEL_PREFIXES.get((label, length)) if cacheable else None
    if prefix is None:
        full_label = b"tls13 " + label
        prefix = struct.pack(">HB", length, len(full_label)) + full_label
        # Exporter labels come from the application: keep the cache bounded.
        if cacheable and len(_LABEL_PREFIXES) < _MAX_CACHED_LABELS:
            _LABEL_PREFIXES[(label, length)] = prefix
    return hkdf_expand(hash_name, secret, prefix + bytes([len(context)]) + context, length)


# The HkdfLabel up to its context (length, label), per (label without "tls13 ",
# length): a handshake uses a dozen of them, each many times.
_LABEL_PREFIXES: dict[tuple[bytes, int], bytes] = {}
_MAX_CACHED_LABELS: Final = 256


def derive_secret(hash_name: str, secret: bytes, label: bytes, transcript_hash: bytes) -> Secret:
    """Derive-Secret(Secret, Label, Messages) with the transcript hash given."""
    return Secret(
        hkdf_expand_label(hash_name, secret, label, transcript_hash, len(transcript_hash))
    )


def traffic_key_and_iv(
    hash_name: str, secret: bytes, key_len: int, iv_len: int = 12
) -> tuple[bytes, bytes]:
    """The write key and IV of a traffic secret (RFC 8446 §7.3)."""
    key = hkdf_expand_label(hash_name, secret, b"key", b"", key_len)
    iv = hkdf_expand_label(hash_name, secret, b"iv", b"", iv_len)
    return key, iv


def next_traffic_secret(hash_name: str, secret: bytes) -> Secret:
    """application_traffic_secret_N+1 (RFC 8446 §7.2)."""
    return Secret(
        hkdf_expand_label(hash_name, secret, b"traffic upd", b"", len(_empty_hash(hash_name)))
    )


def finished_verify_data(hash_name: str, base_key: bytes, transcript_hash: bytes) -> bytes:
    """Finished.verify_data (RFC 8446 §4.4.4)."""
    size = len(transcript_hash)
    finished_key = hkdf_expand_label(hash_name, base_key, b"finished", b"", size)
    return hmac_digest(hash_name, finished_key, transcript_hash)


@final
class KeySchedule:
    """The secrets of one connection, derived stage by stage (RFC 8446 §7.1).

    Call :meth:`handshake` with the (EC)DHE shared secret and the transcript
    hash through ServerHello, then :meth:`application` with the transcript hash
    through the server Finished, and :meth:`resumption` through the client
    Finished.
    """

    __slots__ = (
        "_application_secrets",
        "_early_derived",
        "_exporter_master_secret",
        "_handshake_secret",
        "_master_secret",
        "early_secret",
        "hash_len",
        "hash_name",
    )

    def __init__(self, hash_name: str, psk: bytes | None = None) -> None:
        self.hash_name = hash_name
        self.hash_len = len(_empty_hash(hash_name))
        if psk:
            zeros = bytes(self.hash_len)
            self.early_secret = Secret(hkdf_extract(hash_name, zeros, psk))
            self._early_derived: Secret | None = None
        else:
            # Without a PSK the early secret and its "derived" secret are
            # constants of the hash: computed once (two HMACs a handshake).
            self.early_secret, self._early_derived = _no_psk_secrets(hash_name)
        self._handshake_secret: Secret | None = None
        self._master_secret: Secret | None = None
        self._exporter_master_secret: Secret | None = None
        self._application_secrets: tuple[Secret, Secret] | None = None

    def _empty_hash(self) -> bytes:
        return _empty_hash(self.hash_name)

    def binder_key(self, *, external: bool = False) -> Secret:
        """The PSK binder key: "ext binder" or "res binder" (RFC 8446 §7.1)."""
        label = b"ext binder" if external else b"res binder"
        return derive_secret(self.hash_name, self.early_secret, label, self._empty_hash())

    def client_early_traffic_secret(self, transcript_hash: bytes) -> Secret:
        """client_early_traffic_secret (transcript through ClientHello)."""
        return derive_secret(self.hash_name, self.early_secret, b"c e traffic", transcript_hash)

    def handshake(
        self, shared_secret: bytes | None, transcript_hash: bytes
    ) -> tuple[Secret, Secret]:
        """Enter the handshake stage; return (client, server) handshake traffic secrets.

        ``shared_secret`` is the (EC)DHE shared secret, or None for a psk_ke
        resumption, which has none: RFC 8446 §7.1 then uses Hash.length zeros.
        """
        derived = self._early_derived or derive_secret(
            self.hash_name, self.early_secret, b"derived", self._empty_hash()
        )
        ikm = shared_secret if shared_secret is not None else bytes(self.hash_len)
        hs = Secret(hkdf_extract(self.hash_name, derived, ikm))
        self._handshake_secret = hs
        client = derive_secret(self.hash_name, hs, b"c hs traffic", transcript_hash)
        server = derive_secret(self.hash_name, hs, b"s hs traffic", transcript_hash)
        return client, server

    def application(self, transcript_hash: bytes) -> tuple[Secret, Secret]:
        """Enter the application stage; return (client, server) application secrets."""
        if self._handshake_secret is None:
            raise InternalError("application secrets derived before the handshake secret")
        derived = derive_secret(
            self.hash_name, self._handshake_secret, b"derived", self._empty_hash()
        )
        master = Secret(hkdf_extract(self.hash_name, derived, bytes(self.hash_len)))
        self._master_secret = master
        client = derive_secret(self.hash_name, master, b"c ap traffic", transcript_hash)
        server = derive_secret(self.hash_name, master, b"s ap traffic", transcript_hash)
        self._exporter_master_secret = derive_secret(
            self.hash_name, master, b"exp master", transcript_hash
        )
        self._application_secrets = (client, server)
        return client, server

    @property
    def application_secrets(self) -> tuple[Secret, Secret] | None:
        """(client, server) application_traffic_secret_0, once derived."""
        return self._application_secrets

    def resumption_master_secret(self, transcript_hash: bytes) -> Secret:
        """resumption_master_secret (transcript through the client Finished)."""
        if self._master_secret is None:
            raise InternalError("resumption secret derived before the master secret")
        return derive_secret(self.hash_name, self._master_secret, b"res master", transcript_hash)

    @property
    def exporter_master_secret(self) -> Secret | None:
        """exporter_master_secret once the application stage is reached."""
        return self._exporter_master_secret

    def export(self, label: bytes, context: bytes, length: int) -> bytes:
        """TLS-Exporter(label, context_value, key_length) (RFC 8446 §7.5)."""
        if self._exporter_master_secret is None:
            raise InternalError("keying material exported before the handshake completed")
        secret = derive_secret(
            self.hash_name, self._exporter_master_secret, label, self._empty_hash()
        )
        context_hash = hashlib.new(self.hash_name, context).digest()
        return hkdf_expand_label(self.hash_name, secret, b"exporter", context_hash, length)


def resumption_psk(hash_name: str, resumption_master_secret: bytes, ticket_nonce: bytes) -> bytes:
    """The PSK of a ticket (RFC 8446 §4.6.1)."""
    size = len(_empty_hash(hash_name))
    return hkdf_expand_label(hash_name, resumption_master_secret, b"resumption", ticket_nonce, size)


def _no_psk_secrets(hash_name: str) -> tuple[Secret, Secret]:
    """(Early Secret, Derive-Secret(., "derived", "")) with a PSK of zeros (RFC 8446 §7.1)."""
    secrets = _NO_PSK_SECRETS.get(hash_name)
    if secrets is None:
        empty = _empty_hash(hash_name)
        zeros = bytes(len(empty))
        early = Secret(hkdf_extract(hash_name, zeros, zeros))
        secrets = (early, derive_secret(hash_name, early, b"derived", empty))
        _NO_PSK_SECRETS[hash_name] = secrets
    return secrets


# Keyed by the cipher suites' hash names, as _EMPTY_HASHES.
_NO_PSK_SECRETS: dict[str, tuple[Secret, Secret]] = {}


def _empty_hash(hash_name: str) -> bytes:
    """Hash(""): its length is the hash's; computed once per algorithm."""
    empty = _EMPTY_HASHES.get(hash_name)
    if empty is None:
        empty = _EMPTY_HASHES[hash_name] = hashlib.new(hash_name).digest()
    return empty


# Keyed by the cipher suites' hash names: a handful at most.
_EMPTY_HASHES: dict[str, bytes] = {}
