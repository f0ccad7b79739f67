"""Configuration: :class:`ClientConfig`, :class:`ServerConfig`, trust and keys.

Configs are immutable and may be shared by any number of connections. The
engine reads randomness and time only through ``config.random`` and
``config.clock``, so tests can replay fixed traces. Nothing here imports trio.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import ssl
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, Protocol, TypeAlias, final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509 import ocsp
from cryptography.x509.oid import PublicKeyAlgorithmOID

from .engine.connection import MAX_EARLY_DATA_SIZE, KeyLog
from .engine.enums import CipherSuite, NamedGroup, SignatureScheme
from .engine.status import OCSPMode, VerifyCallback, VerifyMode
from .engine.suites import (
    CIPHER_SUITES,
    GROUPS,
    SIGNATURE_SCHEMES,
    PrivateKey,
    key_kind,
    scheme_fits_key,
)
from .engine.tickets import ReplayCache, ReplayGuard, SessionCache, TicketKeys

__all__ = [
    "DEFAULT_CIPHER_SUITES",
    "DEFAULT_GROUPS",
    "DEFAULT_KEY_SHARE_GROUPS",
    "DEFAULT_SIGNATURE_SCHEMES",
    "MAX_EARLY_DATA_SIZE",
    "CRLSource",
    "CertificateResolver",
    "CertifiedKey",
    "ClientAuth",
    "ClientConfig",
    "Clock",
    "KeyLog",
    "KeyLogFile",
    "OCSPStaple",
    "PskMode",
    "Random",
    "ReplayCache",
    "ReplayGuard",
    "ServerConfig",
    "SessionCache",
    "SystemClock",
    "SystemRandom",
    "TicketKeys",
    "TrustStore",
]


class Random(Protocol):
    """Where the engine gets randomness (``os.urandom`` by default)."""

    def random_bytes(self, n: int) -> bytes:
        """Return ``n`` cryptographically strong random bytes."""
        ...


class Clock(Protocol):
    """Where the engine gets wall-clock time (for certificate validity)."""

    def now(self) -> float:
        """Seconds since the POSIX epoch."""
        ...


@final
class SystemRandom:
    """Randomness from the operating system."""

    def random_bytes(self, n: int) -> bytes:
        """Return ``n`` bytes from ``os.urandom``."""
        return os.urandom(n)


@final
class SystemClock:
    """The system's wall clock."""

    def now(self) -> float:
        """``time.time()``."""
        return time.time()


@final
class KeyLogFile:
    """Append secrets to a file in the NSS key log format (for Wireshark).

    Anyone who reads this file can decrypt the logged connections: use it
    only for debugging.
    """

    __slots__ = ("path",)

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise IsADirectoryError(f"the key log path {str(self.path)!r} is a directory")
        if not self.path.parent.is_dir():
            raise FileNotFoundError(
                f"the key log path {str(self.path)!r} is in a directory that does not exist"
            )

    def __call__(self, label: str, client_random: bytes, secret: bytes) -> None:
        """Write one ``LABEL <client_random> <secret>`` line.

        The file is created readable and writable by its owner only (0600):
        its lines decrypt the logged connections.
        """
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with open(fd, "a", encoding="ascii") as f:
            f.write(f"{label} {client_random.hex()} {secret.hex()}\n")


CRLSource: TypeAlias = x509.CertificateRevocationList | bytes | str | os.PathLike[str]
"""Where :meth:`TrustStore.with_crls` takes CRLs from: a parsed CRL, PEM or DER
bytes, or a file or directory of PEM or DER files."""


@final
class TrustStore:
    """A set of trusted root certificates used to verify the peer's chain.

    It may also hold certificate revocation lists (``crls``), as an OpenSSL
    ``X509_STORE`` or GnuTLS credentials do: every certificate on a verified
    path whose issuer has a CRL here is checked against it (see
    :doc:`/verification`). Add them with :meth:`with_crls`.

    Args:
        certificates: the trusted roots.
        crls: revocation lists of those roots or of any intermediate below
            them.
    """

    __slots__ = ("_fingerprint", "_store", "certificates", "crls")

    def __init__(
        self,
        certificates: Sequence[x509.Certificate],
        *,
        crls: Sequence[x509.CertificateRevocationList] = (),
    ) -> None:
        if not certificates:
            raise ValueError("a TrustStore needs at least one certificate")
        self.certificates: tuple[x509.Certificate, ...] = tuple(certificates)
        self.crls: tuple[x509.CertificateRevocationList, ...] = tuple(crls)
        for crl in self.crls:
            if not isinstance(crl, x509.CertificateRevocationList):
                raise TypeError(
                    f"crls must hold cryptography CertificateRevocationList objects, not "
                    f"{type(crl).__name__}; use TrustStore.with_crls() to load PEM or DER"
                )
        self._store: x509.verification.Store | None = None
        self._fingerprint: bytes | None = None

    def with_crls(self, *sources: CRLSource) -> TrustStore:
        """This store with more CRLs: each source a CRL, PEM/DER bytes, a file or a directory.

        PEM data may hold several ``X509 CRL`` blocks; other data is read as
        one DER CRL. A directory contributes each of its files. The CRLs'
        signatures and dates are checked when a chain is verified, against
        the issuer on its path, not here.

        Raises:
            ValueError: a source does not parse as CRLs.
            FileNotFoundError: a path does not exist.
        """
        crls = list(self.crls)
        for source in sources:
            crls += _load_crls(source)
        store = TrustStore(self.certificates, crls=crls)
        store._store = self._store  # same roots, same parsed store
        return store

    @classmethod
    def from_pem(cls, source: bytes | str | os.PathLike[str]) -> TrustStore:
        """Load PEM certificates from bytes, a file, or a directory of files.

        ``bytes`` are PEM data; ``str`` or a path names a file or directory.

        Raises:
            ValueError: a certificate in ``source`` cannot be parsed, or
                there is none.
        """
        return cls(_load_pem_sources(source, lenient=False))

    @classmethod
    def system(cls) -> TrustStore:
        """The machine's CA bundle, found the way OpenSSL finds it.

        In order, the first place that holds certificates wins:

        1. ``SSL_CERT_FILE`` and ``SSL_CERT_DIR``, when either is set: then
           only they are used, and a wrong value is an error rather than a
           silent fallback (OpenSSL also uses nothing else then);
        2. OpenSSL's compiled-in file and directory
           (:func:`ssl.get_default_verify_paths`);
        3. the bundles of common distributions (Debian, Fedora/RHEL,
           openSUSE, Alpine, the BSDs and macOS);
        4. the ``certifi`` package's bundle, if it is installed
           (``pip install triotls[certifi]``).

        Certificates that ``cryptography`` cannot parse (Debian's bundle has
        a few old roots with a serial number of zero) are skipped, as OpenSSL
        would not use them either.

        Raises:
            FileNotFoundError: no bundle was found; the message lists where
                triotls looked.
        """
        paths = ssl.get_default_verify_paths()
        from_env = [
            os.environ[name]
            for name in (paths.openssl_cafile_env, paths.openssl_capath_env)
            if os.environ.get(name)
        ]
        if from_env:
            certs = _first_bundle(from_env)
            if certs:
                return cls(certs)
            raise FileNotFoundError(
                f"{paths.openssl_cafile_env}/{paths.openssl_capath_env} name "
                f"{', '.join(from_env)}, which holds no PEM certificate; fix or unset them"
            )
        searched = [paths.openssl_cafile, paths.openssl_capath, *_DISTRIBUTION_BUNDLES]
        certs = _first_bundle(searched)
        if certs:
            return cls(certs)
        certifi_bundle = _certifi_bundle()
        if certifi_bundle is not None:
            certs = _first_bundle([certifi_bundle])
            if certs:
                return cls(certs)
        raise FileNotFoundError(
            "no system CA bundle found: looked at SSL_CERT_FILE, SSL_CERT_DIR, "
            f"{', '.join(searched)} and the certifi package "
            f"({'installed, but empty' if certifi_bundle else 'not installed'}); install the "
            "system's CA certificates (ca-certificates) or certifi, or pass "
            "TrustStore.from_pem(...)"
        )

    @property
    def store(self) -> x509.verification.Store:
        """The parsed ``cryptography`` store, built once."""
        if self._store is None:
            self._store = x509.verification.Store(list(self.certificates))
        return self._store

    @property
    def fingerprint(self) -> bytes:
        """SHA-256 over the DER of the roots, then of the CRLs, in order; computed once.

        Two stores with the same roots and CRLs in the same order have the
        same fingerprint: a client resumes a session only under a trust
        store with the fingerprint of the one that verified it.
        """
        if self._fingerprint is None:
            digest = hashlib.sha256(len(self.certificates).to_bytes(4, "big"))
            ders = [cert.public_bytes(serialization.Encoding.DER) for cert in self.certificates]
            ders += [crl.public_bytes(serialization.Encoding.DER) for crl in self.crls]
            for der in ders:
                digest.update(len(der).to_bytes(4, "big") + der)
            self._fingerprint = digest.digest()
        return self._fingerprint


_PEM_BEGIN: Final = b"-----BEGIN CERTIFICATE-----"
# Where distributions keep their bundles, beyond OpenSSL's compiled-in
# defaults (the list Go's crypto/x509 searches as well).
_DISTRIBUTION_BUNDLES: Final = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Gentoo, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL 6
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # CentOS, RHEL 7+
    "/etc/ssl/ca-bundle.pem",  # openSUSE
    "/etc/pki/tls/cacert.pem",  # OpenELEC
    "/etc/ssl/cert.pem",  # Alpine, macOS, FreeBSD, OpenBSD
    "/usr/local/share/certs/ca-root-nss.crt",  # FreeBSD
    "/etc/ssl/certs",  # hashed directories
    "/etc/pki/tls/certs",
)


def _first_bundle(candidates: Sequence[str]) -> list[x509.Certificate]:
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            # A hashed directory links each root under a second name.
            certs = list(dict.fromkeys(_load_pem_sources(candidate, lenient=True)))
            if certs:
                return certs
    return []


def _certifi_bundle() -> str | None:
    try:
        certifi = importlib.import_module("certifi")
    except ImportError:
        return None
    where: object = certifi.where()
    return where if isinstance(where, str) else None


_CRL_PEM_BEGIN: Final = b"-----BEGIN X509 CRL-----"


def _load_crls(source: CRLSource) -> list[x509.CertificateRevocationList]:
    if isinstance(source, x509.CertificateRevocationList):
        return [source]
    if isinstance(source, bytes):
        blobs = [(source, "the bytes given")]
    else:
        path = Path(source)
        files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
        blobs = [(f.read_bytes(), str(f)) for f in files]
    crls: list[x509.CertificateRevocationList] = []
    for blob, origin in blobs:
        try:
            if _CRL_PEM_BEGIN in blob:
                for part in blob.split(_CRL_PEM_BEGIN)[1:]:
                    crls.append(x509.load_pem_x509_crl(_CRL_PEM_BEGIN + part))
            else:
                crls.append(x509.load_der_x509_crl(blob))
        except ValueError as exc:
            raise ValueError(f"{origin} does not hold a PEM or DER X.509 CRL: {exc}") from None
    return crls


def _load_pem_sources(
    source: bytes | str | os.PathLike[str], *, lenient: bool
) -> list[x509.Certificate]:
    if isinstance(source, bytes):
        blobs = [source]
    else:
        path = Path(source)
        files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
        blobs = [f.read_bytes() for f in files]
    certs: list[x509.Certificate] = []
    for blob in blobs:
        for part in blob.split(_PEM_BEGIN)[1:]:
            pem = _PEM_BEGIN + part
            try:
                with warnings.catch_warnings():
                    # Old roots with serial 0 draw a deprecation warning; they
                    # load today and are skipped when cryptography refuses them.
                    warnings.simplefilter("ignore")
                    certs.append(x509.load_pem_x509_certificate(pem))
            except ValueError:
                if not lenient:
                    raise
    return certs


OCSPStaple: TypeAlias = bytes | Callable[[], bytes | None]
"""What a server staples to its leaf: a DER OCSPResponse, or a function that
returns the current one (or None to staple nothing this time)."""


@final
class CertifiedKey:
    """A certificate chain (leaf first), the private key of its leaf, and an OCSP staple.

    Args:
        chain: the certificates, leaf first.
        private_key: the leaf's key.
        ocsp_response: a DER OCSPResponse for the leaf, sent to clients that
            ask for one (status_request, RFC 6066 §8, carried in the leaf's
            CertificateEntry as RFC 8446 §4.4.2.1 says), never to others.
            Bytes are checked here: the response must parse, be successful
            and be about the leaf. Or a function, called on each full
            handshake whose client asks, that returns the current response
            or None: the way to refresh a response before it expires
            without building a new config. Fetching responses from the CA's
            responder is the application's job.

    Raises:
        ValueError: the chain is empty, the key does not match the leaf, or
            ``ocsp_response`` is not a successful OCSP response for the leaf.
        TypeError: the key is of an unsupported type.
    """

    __slots__ = (
        "_certificate_messages",
        "chain",
        "chain_der",
        "is_pss_key",
        "ocsp_response",
        "private_key",
    )

    def __init__(
        self,
        chain: Sequence[x509.Certificate],
        private_key: PrivateKey,
        *,
        ocsp_response: OCSPStaple | None = None,
    ) -> None:
        if not chain:
            raise ValueError("a CertifiedKey needs at least the leaf certificate")
        if not isinstance(
            private_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
        ):
            raise TypeError(
                f"unsupported private key type {type(private_key).__name__}: "
                "use ECDSA (P-256/P-384), RSA or Ed25519"
            )
        leaf_public = chain[0].public_key()
        fmt = serialization.PublicFormat.SubjectPublicKeyInfo
        der = serialization.Encoding.DER
        if isinstance(private_key, rsa.RSAPrivateKey):
            # RSA-PSS (id-RSASSA-PSS) keys compare by modulus and exponent.
            ours = private_key.public_key().public_numbers()
            if (
                not isinstance(leaf_public, rsa.RSAPublicKey)
                or leaf_public.public_numbers() != ours
            ):
                raise ValueError("the private key does not match the leaf certificate")
        elif private_key.public_key().public_bytes(der, fmt) != leaf_public.public_bytes(der, fmt):
            raise ValueError("the private key does not match the leaf certificate")
        self.chain: tuple[x509.Certificate, ...] = tuple(chain)
        self.private_key = private_key
        self.is_pss_key = chain[0].public_key_algorithm_oid == PublicKeyAlgorithmOID.RSASSA_PSS
        self.chain_der: tuple[bytes, ...] = tuple(
            c.public_bytes(serialization.Encoding.DER) for c in self.chain
        )
        if isinstance(ocsp_response, bytes | bytearray | memoryview):
            ocsp_response = bytes(ocsp_response)
            _check_ocsp_response(ocsp_response, self.chain[0])
        elif ocsp_response is not None and not callable(ocsp_response):
            raise TypeError(
                "ocsp_response must be DER bytes, a function returning them, or None, not "
                f"{type(ocsp_response).__name__}"
            )
        self.ocsp_response: OCSPStaple | None = ocsp_response
        # The server's encoded Certificate message for this chain, keyed by the
        # OCSP staple its leaf entry carries (None: none), with the chain_der
        # it was encoded from; filled by the engine's server, two entries at most.
        self._certificate_messages: dict[bytes | None, tuple[tuple[bytes, ...], bytes]] = {}

    def with_ocsp_response(self, ocsp_response: OCSPStaple | None) -> CertifiedKey:
        """The same chain and key with another OCSP staple (see the class arguments)."""
        return CertifiedKey(self.chain, self.private_key, ocsp_response=ocsp_response)

    def current_ocsp_response(self) -> bytes | None:
        """The DER OCSP response to staple now: the bytes, or what the function returns.

        Raises:
            TypeError: the function returned something other than bytes or None.
            ValueError: it returned an empty or oversized response.
        """
        staple = self.ocsp_response
        if staple is None or isinstance(staple, bytes):
            return staple
        current = staple()
        if current is None:
            return None
        if not isinstance(current, bytes):
            raise TypeError(
                f"the ocsp_response function returned {type(current).__name__}, not bytes or None"
            )
        if not 0 < len(current) < 2**24 - 4:
            # RFC 6066 §8: opaque OCSPResponse<1..2^24-1>, inside the entry's
            # extension, itself inside a Certificate message.
            raise ValueError(f"the ocsp_response function returned {len(current)} bytes")
        return current

    @classmethod
    def from_pem(
        cls, chain_pem: bytes, key_pem: bytes, *, password: bytes | None = None
    ) -> CertifiedKey:
        """Load a PEM chain (leaf first) and a PEM private key.

        Args:
            chain_pem: one or more PEM certificates, leaf first.
            key_pem: the leaf's private key (PKCS#8, traditional or encrypted PEM).
            password: the password of an encrypted key.

        Raises:
            ValueError: the data does not parse, the password is wrong or
                missing, or the key does not match the leaf certificate.
            TypeError: the key is of an unsupported type, or a password was
                given for a key that is not encrypted.
        """
        chain = x509.load_pem_x509_certificates(chain_pem)
        try:
            key = serialization.load_pem_private_key(key_pem, password=password)
        except TypeError as exc:
            if password is None:
                # cryptography: "Password was not given but private key is encrypted".
                raise ValueError(
                    "the private key is encrypted: a password is needed to load it"
                ) from exc
            raise
        if not isinstance(
            key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
        ):
            raise TypeError(f"unsupported private key type {type(key).__name__}")
        return cls(chain, key)

    @classmethod
    def from_pkcs12(cls, data: bytes, password: bytes | None = None) -> CertifiedKey:
        """Load a PKCS#12 (``.p12``/``.pfx``) bundle: key, leaf and extra certificates.

        The extra certificates follow the leaf in the order the bundle lists
        them, which should be the issuing order (intermediate first).

        Args:
            data: the DER-encoded PKCS#12 bundle.
            password: the bundle's password, or None if it has none.

        Raises:
            ValueError: the bundle does not parse, the password is wrong, it
                lacks a key or a certificate, or the key does not match the
                certificate.
            TypeError: the key is of an unsupported type.
        """
        key, leaf, extra = pkcs12.load_key_and_certificates(data, password)
        if key is None or leaf is None:
            raise ValueError("the PKCS#12 bundle needs both a private key and its certificate")
        if not isinstance(
            key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
        ):
            raise TypeError(f"unsupported private key type {type(key).__name__}")
        return cls([leaf, *extra], key)

    @classmethod
    def from_files(
        cls,
        chain_path: str | os.PathLike[str],
        key_path: str | os.PathLike[str],
        *,
        password: bytes | None = None,
    ) -> CertifiedKey:
        """Load a PEM chain file and a PEM key file."""
        return cls.from_pem(
            Path(chain_path).read_bytes(), Path(key_path).read_bytes(), password=password
        )


def _check_ocsp_response(der: bytes, leaf: x509.Certificate) -> None:
    try:
        response = ocsp.load_der_ocsp_response(der)
    except ValueError as exc:
        raise ValueError(f"ocsp_response is not a DER OCSP response: {exc}") from None
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise ValueError(
            f"ocsp_response has status {response.response_status.name.lower()}; only a "
            "successful response can be stapled"
        )
    serials = [single.serial_number for single in response.responses]
    if leaf.serial_number not in serials:
        raise ValueError(
            f"ocsp_response is about serial {', '.join(f'{s:#x}' for s in serials)}, not the "
            f"leaf certificate's {leaf.serial_number:#x}"
        )


DEFAULT_CIPHER_SUITES: Final = (
    CipherSuite.TLS_AES_128_GCM_SHA256,
    CipherSuite.TLS_AES_256_GCM_SHA384,
    CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
)
DEFAULT_GROUPS: Final = (
    NamedGroup.X25519MLKEM768,
    NamedGroup.X25519,
    NamedGroup.SECP256R1,
    NamedGroup.SECP384R1,
)
DEFAULT_KEY_SHARE_GROUPS: Final = (NamedGroup.X25519MLKEM768, NamedGroup.X25519)
DEFAULT_SIGNATURE_SCHEMES: Final = (
    SignatureScheme.ECDSA_SECP256R1_SHA256,
    SignatureScheme.ECDSA_SECP384R1_SHA384,
    SignatureScheme.ED25519,
    SignatureScheme.RSA_PSS_RSAE_SHA256,
    SignatureScheme.RSA_PSS_RSAE_SHA384,
    SignatureScheme.RSA_PSS_RSAE_SHA512,
    SignatureScheme.RSA_PSS_PSS_SHA256,
    SignatureScheme.RSA_PSS_PSS_SHA384,
    SignatureScheme.RSA_PSS_PSS_SHA512,
)
# RFC 8446 §4.2.3: PKCS#1 v1.5 may be offered for signatures *in certificates*;
# they are never accepted in CertificateVerify.
CERTIFICATE_ONLY_SCHEMES: Final = (
    SignatureScheme.RSA_PKCS1_SHA256,
    SignatureScheme.RSA_PKCS1_SHA384,
    SignatureScheme.RSA_PKCS1_SHA512,
)


def _check_alpn_type(alpn_protocols: object) -> None:
    # Before tuple(): a bare string would become one protocol per letter.
    if isinstance(alpn_protocols, str | bytes):
        raise TypeError(
            f"alpn_protocols must be a sequence of protocol names, not one string "
            f"({alpn_protocols!r}); write ({alpn_protocols!r},)"
        )


def _check_common(
    *,
    cipher_suites: Sequence[int],
    groups: Sequence[int],
    signature_schemes: Sequence[int],
    alpn_protocols: Sequence[str],
    handshake_timeout: float | None,
    max_handshake_message_size: int,
    record_size_limit: int | None,
) -> None:
    if not cipher_suites or any(s not in CIPHER_SUITES for s in cipher_suites):
        raise ValueError(f"cipher_suites must be a non-empty subset of {list(CIPHER_SUITES)}")
    if not groups or any(g not in GROUPS for g in groups):
        raise ValueError(f"groups must be a non-empty subset of {sorted(GROUPS)}")
    if not signature_schemes or any(s not in SIGNATURE_SCHEMES for s in signature_schemes):
        raise ValueError("signature_schemes must be a non-empty subset of the supported schemes")
    for proto in alpn_protocols:
        if not isinstance(proto, str):
            raise TypeError(f"alpn_protocols entries must be str, not {type(proto).__name__}")
        if not 1 <= len(proto.encode()) <= 255:
            raise ValueError(f"ALPN protocol {proto!r} must be 1 to 255 bytes long")
    if handshake_timeout is not None and not handshake_timeout > 0:
        raise ValueError(
            f"handshake_timeout must be a positive number of seconds or None for no limit, "
            f"not {handshake_timeout!r} (unlike GnuTLS, 0 does not mean 'no limit' here)"
        )
    if max_handshake_message_size < 2**12:
        raise ValueError("max_handshake_message_size must be at least 4096 bytes")
    if record_size_limit is not None and not 64 <= record_size_limit <= 2**14 + 1:
        raise ValueError("record_size_limit must be between 64 and 16385 (RFC 8449 §4)")


def _check_verification(
    *,
    verify_peer: bool,
    verify_mode: str,
    verify_callback: VerifyCallback | None,
    max_chain_depth: int,
) -> None:
    if verify_mode not in ("required", "report"):
        raise ValueError(f"verify_mode must be 'required' or 'report', not {verify_mode!r}")
    if not verify_peer and (verify_mode != "required" or verify_callback is not None):
        raise ValueError(
            "verify_peer=False turns verification off, so there is nothing to report or to "
            "pass to a verify_callback; keep verify_peer=True to use verify_mode='report' "
            "or a verify_callback"
        )
    if verify_callback is not None and verify_mode != "required":
        raise ValueError(
            "a verify_callback decides during the handshake, and verify_mode='report' "
            "defers the decision until after it: choose one"
        )
    if not 0 <= max_chain_depth <= 255:
        raise ValueError(f"max_chain_depth must be between 0 and 255, not {max_chain_depth!r}")


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class ClientConfig:
    """Settings for the client side of connections.

    Attributes:
        trust: roots to verify the server against; ``None`` uses the system's.
        verify_peer: verify the server's chain (default True). False turns
            verification off entirely: nothing is checked, and
            ``verification`` is None.
        check_hostname: check the chain against ``server_hostname`` (default True).
        verify_mode: ``"required"`` (default) aborts the handshake when the
            chain does not verify, with the alert its status calls for;
            ``"report"`` completes the handshake and leaves the decision to
            the caller, who reads ``TLSStream.verification`` (see
            :doc:`/verification`).
        verify_callback: called during the handshake with the
            :class:`~triotls.engine.status.VerificationResult`, verified or
            not; ``True`` accepts the chain, anything else aborts the
            handshake. It replaces ``verify_mode``, which must stay
            ``"required"``.
        max_chain_depth: the most intermediates a path to a trusted root may
            hold (default 8, as cryptography's).
        ocsp: OCSP stapling (see :data:`~triotls.engine.status.OCSPMode`):
            ``"request"`` (default) asks the server for its leaf's OCSP
            response and checks one that comes; ``"require"`` also refuses
            a server that sends none; ``"off"`` does not ask. CRLs come
            from ``trust`` (:meth:`TrustStore.with_crls`).
        alpn_protocols: protocols to offer with ALPN, most preferred first.
        cipher_suites: suites to offer, most preferred first.
        groups: key exchange groups to offer, most preferred first.
        key_share_groups: groups to send key shares for in the first ClientHello.
        signature_schemes: handshake signature schemes to accept.
        certificate: a client certificate for servers that ask for one.
        post_handshake_auth: offer post-handshake client authentication
            (RFC 8446 §4.6.2): the server may then ask for a certificate at
            any time after the handshake (see :doc:`/verification`).
        middlebox_compat: RFC 8446 appendix D.4 compatibility mode.
        handshake_timeout: seconds for the whole handshake in the trio layer;
            None for no limit.
        https_compatible: accept a transport EOF without close_notify.
        max_handshake_message_size: largest handshake message accepted.
        record_size_limit: the record_size_limit to announce (RFC 8449).
        random: randomness source (tests inject a fixed one).
        clock: wall clock for certificate validity.
        key_log: receives secrets for debugging (see :class:`KeyLogFile`);
            the trio layer also honours ``SSLKEYLOGFILE``.
        session_cache: where tickets from servers are kept and offered again
            (resumption); None disables resumption.
        psk_key_exchange_modes: how a resumption may make its keys, most
            preferred first (see :data:`PskMode`): ``("psk_dhe_ke",)``
            (default) always adds a fresh (EC)DHE key exchange; listing
            ``"psk_ke"`` lets a server resume without one, giving up forward
            secrecy for that connection (see :doc:`/resumption`). Key shares
            are sent either way, for a full handshake if the ticket is refused.
    """

    trust: TrustStore | None = None
    verify_peer: bool = True
    check_hostname: bool = True
    verify_mode: VerifyMode = "required"
    verify_callback: VerifyCallback | None = None
    max_chain_depth: int = 8
    ocsp: OCSPMode = "request"
    alpn_protocols: tuple[str, ...] = ()
    cipher_suites: tuple[CipherSuite, ...] = DEFAULT_CIPHER_SUITES
    groups: tuple[NamedGroup, ...] = DEFAULT_GROUPS
    key_share_groups: tuple[NamedGroup, ...] = DEFAULT_KEY_SHARE_GROUPS
    signature_schemes: tuple[SignatureScheme, ...] = DEFAULT_SIGNATURE_SCHEMES
    certificate: CertifiedKey | None = None
    post_handshake_auth: bool = False
    middlebox_compat: bool = True
    handshake_timeout: float | None = 40.0
    https_compatible: bool = False
    max_handshake_message_size: int = 2**17
    record_size_limit: int | None = 2**14 + 1
    random: Random = field(default_factory=SystemRandom)
    clock: Clock = field(default_factory=SystemClock)
    key_log: KeyLog | None = None
    session_cache: SessionCache | None = None
    psk_key_exchange_modes: tuple[PskMode, ...] = ("psk_dhe_ke",)
    # The ClientHello extensions that depend on this config alone, encoded
    # once by the engine's client on first use (the config is immutable, and
    # ``dataclasses.replace`` starts a new one empty). Not a setting.
    _hello_extensions: dict[int, bytes] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        _check_psk_modes(self)
        _check_alpn_type(self.alpn_protocols)
        object.__setattr__(self, "alpn_protocols", tuple(self.alpn_protocols))
        object.__setattr__(self, "cipher_suites", tuple(self.cipher_suites))
        object.__setattr__(self, "groups", tuple(self.groups))
        object.__setattr__(self, "key_share_groups", tuple(self.key_share_groups))
        object.__setattr__(self, "signature_schemes", tuple(self.signature_schemes))
        _check_common(
            cipher_suites=self.cipher_suites,
            groups=self.groups,
            signature_schemes=self.signature_schemes,
            alpn_protocols=self.alpn_protocols,
            handshake_timeout=self.handshake_timeout,
            max_handshake_message_size=self.max_handshake_message_size,
            record_size_limit=self.record_size_limit,
        )
        if any(g not in self.groups for g in self.key_share_groups):
            raise ValueError("every key_share_groups entry must also be in groups")
        if len(set(self.key_share_groups)) != len(self.key_share_groups):
            # RFC 8446 §4.2.8: one KeyShareEntry per group at most.
            raise ValueError("key_share_groups must not name a group twice")
        _check_verification(
            verify_peer=self.verify_peer,
            verify_mode=self.verify_mode,
            verify_callback=self.verify_callback,
            max_chain_depth=self.max_chain_depth,
        )
        if self.ocsp not in ("off", "request", "require"):
            raise ValueError(f"ocsp must be 'off', 'request' or 'require', not {self.ocsp!r}")
        if self.ocsp == "require" and not self.verify_peer:
            raise ValueError(
                "ocsp='require' needs verify_peer=True: without verification no OCSP "
                "response is checked"
            )

    @property
    def trust_store(self) -> TrustStore:
        """The configured trust store, or the system's."""
        if self.trust is not None:
            return self.trust
        return _system_trust()


_SYSTEM_TRUST: list[TrustStore] = []


def _system_trust() -> TrustStore:
    if not _SYSTEM_TRUST:
        _SYSTEM_TRUST.append(TrustStore.system())
    return _SYSTEM_TRUST[0]


ClientAuth: TypeAlias = Literal["none", "optional", "required"]
"""Whether a server asks for a client certificate, and whether it insists.

``"none"`` sends no CertificateRequest; ``"optional"`` asks, and goes on
without client authentication when the client sends no certificate;
``"required"`` asks and aborts with certificate_required (RFC 8446
§4.4.2.4) when none comes."""

PskMode: TypeAlias = Literal["psk_dhe_ke", "psk_ke"]
"""A PSK key exchange mode (RFC 8446 §4.2.9), by the RFC's name.

``"psk_dhe_ke"`` resumes with a fresh (EC)DHE key exchange, so each
connection's keys are its own (forward secrecy). ``"psk_ke"`` resumes with
the PSK alone: one round trip's computation less, but whoever later learns
the PSK (the client's cached ticket, or the server's ticket keys) can
decrypt that connection's recorded traffic. Neither side uses it unless it
is named in ``psk_key_exchange_modes``."""


def _check_psk_modes(config: ClientConfig | ServerConfig) -> None:
    # Typed as a tuple of names; a caller may still pass a bare string.
    given: Sequence[str] | str = config.psk_key_exchange_modes
    if isinstance(given, str):
        raise ValueError(
            f"psk_key_exchange_modes must be a tuple of mode names, such as ({given!r},), "
            "not a string"
        )
    modes = tuple(given)
    unknown = [m for m in modes if m not in _PSK_MODES]
    if not modes or unknown or len(set(modes)) != len(modes):
        raise ValueError(
            f"psk_key_exchange_modes must list 'psk_dhe_ke' and/or 'psk_ke' (RFC 8446 §4.2.9), "
            f"each once, most preferred first; got {modes!r}"
        )
    object.__setattr__(config, "psk_key_exchange_modes", modes)


_PSK_MODES: Final = ("psk_dhe_ke", "psk_ke")


CertificateResolver: TypeAlias = Callable[[str | None, tuple[int, ...]], CertifiedKey | None]
"""Picks the server's certificate for one ClientHello.

Called with the SNI host name (None when the client sent none) and the
signature schemes the client accepts, as plain ``int`` code points; returns
the :class:`CertifiedKey` to use, or None to fall back to
``ServerConfig.certificates``."""


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """Settings for the server side of connections.

    Attributes:
        certificates: certificate chains with keys; the first whose key fits a
            signature scheme the client accepts is used.
        certificate_resolver: called for each ClientHello with the SNI name
            and the client's signature schemes (see
            :data:`CertificateResolver`); the key it returns is used, and
            None falls back to ``certificates``. A key that fits none of the
            client's schemes fails the handshake (handshake_failure).
        client_auth: ``"none"`` (default), ``"optional"`` or ``"required"``:
            whether to request a client certificate (see :data:`ClientAuth`
            and :doc:`/verification`).
        client_trust: the roots client chains must lead to; required when
            ``client_auth`` is not ``"none"``. Their subject names are sent
            in the certificate_authorities extension.
        client_verify_mode: as ``ClientConfig.verify_mode``, for the
            client's chain: ``"required"`` aborts the handshake when it
            does not verify, ``"report"`` completes it and leaves the
            decision to the caller (``Negotiated.verification``).
        client_verify_callback: as ``ClientConfig.verify_callback``, for the
            client's chain.
        client_max_chain_depth: the most intermediates a client chain's path
            to a trusted root may hold (default 8).
        alpn_protocols: protocols to accept, most preferred first; when set and
            the client offers none of them, the handshake fails with
            no_application_protocol (RFC 7301 §3.2).
        cipher_suites: suites to accept, most preferred first.
        groups: key exchange groups to accept, most preferred first.
        signature_schemes: schemes the server may sign with, and accepts in
            a client's CertificateVerify (offered in the CertificateRequest).
        handshake_timeout: seconds for the whole handshake in the trio layer.
        https_compatible: accept a transport EOF without close_notify.
        max_handshake_message_size: largest handshake message accepted.
        record_size_limit: the record_size_limit to answer with (RFC 8449).
        random: randomness source.
        clock: wall clock.
        key_log: receives secrets for debugging (see :class:`KeyLogFile`).
        ticket_keys: the keys session tickets are sealed with; share them
            across servers to resume each other's sessions.
        ticket_count: tickets sent with each handshake, resumed ones included
            (0: none).
        ticket_lifetime: seconds a ticket may be used (at most 7 days).
        max_early_data_size: 0-RTT bytes a resumed client may send with its
            ClientHello (RFC 8446 §4.2.10), at most 65536; 0 (the default)
            turns early data off. Tickets issued while it is set allow that
            much; early data can be replayed by an attacker, so read
            :doc:`/resumption` before turning it on.
        early_data_replay_guard: remembers which tickets already brought
            early data (RFC 8446 §8); an in-process :class:`ReplayCache` by
            default. Servers that share ``ticket_keys`` must share a guard
            too.
        psk_key_exchange_modes: the ways a resumption may make its keys,
            most preferred first (see :data:`PskMode`). ``("psk_dhe_ke",)``
            (default) resumes only with a fresh (EC)DHE key exchange; with
            ``"psk_ke"`` listed, a client that offers it may resume without
            one, with no forward secrecy for that connection (see
            :doc:`/resumption`). Tickets go to clients that offer one of
            these modes.
    """

    certificates: tuple[CertifiedKey, ...]
    certificate_resolver: CertificateResolver | None = None
    client_auth: ClientAuth = "none"
    client_trust: TrustStore | None = None
    client_verify_mode: VerifyMode = "required"
    client_verify_callback: VerifyCallback | None = None
    client_max_chain_depth: int = 8
    alpn_protocols: tuple[str, ...] = ()
    cipher_suites: tuple[CipherSuite, ...] = DEFAULT_CIPHER_SUITES
    groups: tuple[NamedGroup, ...] = DEFAULT_GROUPS
    signature_schemes: tuple[SignatureScheme, ...] = DEFAULT_SIGNATURE_SCHEMES
    handshake_timeout: float | None = 40.0
    https_compatible: bool = False
    max_handshake_message_size: int = 2**17
    record_size_limit: int | None = 2**14 + 1
    random: Random = field(default_factory=SystemRandom)
    clock: Clock = field(default_factory=SystemClock)
    key_log: KeyLog | None = None
    ticket_keys: TicketKeys = field(default_factory=TicketKeys)
    ticket_count: int = 2
    ticket_lifetime: int = 7200
    max_early_data_size: int = 0
    early_data_replay_guard: ReplayGuard | None = None
    psk_key_exchange_modes: tuple[PskMode, ...] = ("psk_dhe_ke",)

    def __post_init__(self) -> None:
        _check_psk_modes(self)
        object.__setattr__(self, "certificates", tuple(self.certificates))
        if not 0 <= self.max_early_data_size <= MAX_EARLY_DATA_SIZE:
            raise ValueError(
                f"max_early_data_size must be 0 (no 0-RTT) to {MAX_EARLY_DATA_SIZE} bytes"
            )
        if self.max_early_data_size and self.early_data_replay_guard is None:
            # Loaded ticket keys may have sealed tickets before this process
            # started: its register then opens only after a replay window.
            started_at = self.clock.now() if self.ticket_keys.loaded else None
            object.__setattr__(self, "early_data_replay_guard", ReplayCache(started_at=started_at))
        _check_alpn_type(self.alpn_protocols)
        object.__setattr__(self, "alpn_protocols", tuple(self.alpn_protocols))
        object.__setattr__(self, "cipher_suites", tuple(self.cipher_suites))
        object.__setattr__(self, "groups", tuple(self.groups))
        object.__setattr__(self, "signature_schemes", tuple(self.signature_schemes))
        if not self.certificates:
            raise ValueError("a ServerConfig needs at least one CertifiedKey")
        for certified in self.certificates:
            if not isinstance(certified, CertifiedKey):
                raise TypeError(
                    f"certificates must hold CertifiedKey objects, not {type(certified).__name__} "
                    "(load them with CertifiedKey.from_pem or from_files)"
                )
        if not 0 <= self.ticket_count <= 16:
            raise ValueError("ticket_count must be between 0 and 16")
        if not 1 <= self.ticket_lifetime <= 604_800:
            # RFC 8446 §4.6.1: at most seven days.
            raise ValueError("ticket_lifetime must be 1 to 604800 seconds (7 days)")
        _check_common(
            cipher_suites=self.cipher_suites,
            groups=self.groups,
            signature_schemes=self.signature_schemes,
            alpn_protocols=self.alpn_protocols,
            handshake_timeout=self.handshake_timeout,
            max_handshake_message_size=self.max_handshake_message_size,
            record_size_limit=self.record_size_limit,
        )
        if self.certificate_resolver is None and not any(
            scheme_fits_key(
                SIGNATURE_SCHEMES[scheme],
                key_kind(certified.private_key, is_pss_key=certified.is_pss_key),
            )
            for certified in self.certificates
            for scheme in self.signature_schemes
        ):
            raise ValueError(
                "none of the certificates' keys can sign with any of signature_schemes "
                f"{[SignatureScheme(s).name for s in self.signature_schemes]}: every "
                "handshake would fail"
            )
        if self.client_auth not in ("none", "optional", "required"):
            raise ValueError(
                f"client_auth must be 'none', 'optional' or 'required', not {self.client_auth!r}"
            )
        if self.client_auth != "none" and self.client_trust is None:
            raise ValueError(
                f"client_auth={self.client_auth!r} needs client_trust: the roots that client "
                "certificates must lead to"
            )
        _check_verification(
            verify_peer=True,
            verify_mode=self.client_verify_mode,
            verify_callback=self.client_verify_callback,
            max_chain_depth=self.client_max_chain_depth,
        )
