"""The client side of the TLS 1.3 handshake (RFC 8446 §2, §4).

States, in order: ExpectServerHello (which may loop once through a
HelloRetryRequest), ExpectEncryptedExtensions,
ExpectCertificateOrCertificateRequest, ExpectCertificate,
ExpectCertificateVerify, ExpectFinished, then ClientTraffic, which also
answers a post-handshake CertificateRequest (RFC 8446 §4.6.2) when the
client offered post_handshake_auth.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Final, final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from ..errors import (
    BadCertificate,
    DecodeError,
    DecryptError,
    IllegalParameter,
    MissingExtension,
    ProtocolVersionError,
    UnexpectedMessage,
    UnsupportedCertificate,
    UnsupportedExtension,
    UsageError,
)
from .connection import Connection, KeyLog, constant_time_equal
from .enums import (
    CipherSuite,
    ExtensionType,
    HandshakeType,
    NamedGroup,
    PskKeyExchangeMode,
    SignatureScheme,
)
from .events import CertificateRequested, NewSessionTicketReceived
from .extensions import (
    KeyShareEntry,
    OfferedPsks,
    PskIdentity,
    decode_alpn,
    decode_certificate_status,
    decode_cookie,
    decode_empty,
    decode_key_share_sh,
    decode_psk_modes,
    decode_record_size_limit,
    decode_u16,
    decode_u16_list,
    decode_u32,
    encode_alpn,
    encode_cookie,
    encode_key_share_ch,
    encode_pre_shared_key_ch,
    encode_psk_modes,
    encode_server_name,
    encode_status_request,
    encode_u16_list,
)
from .keyschedule import KeySchedule, Secret, finished_verify_data, resumption_psk
from .messages import (
    Certificate,
    CertificateEntry,
    CertificateRequest,
    CertificateVerify,
    ClientHello,
    EncryptedExtensions,
    Finished,
    HandshakeMessage,
    NewSessionTicket,
    ServerHello,
    frame,
)
from .names import to_a_labels
from .state import EarlyDataStatus, HandshakeKind, Negotiated, State
from .status import VerificationResult, VerificationStatus
from .suites import (
    CIPHER_SUITES,
    SIGNATURE_SCHEMES,
    KeyExchange,
    PublicKey,
    SuiteInfo,
    key_kind,
    scheme_fits_key,
    sign,
    start_key_exchange,
    start_key_exchanges,
    verify_signature,
)
from .tickets import ClientSession
from .transcript import Transcript
from .verify import check_chain, enforce_verification, ip_literal, load_certificate

if TYPE_CHECKING:
    # Annotations only: triotls.config imports triotls.engine (enums, suites),
    # so a runtime import here would be circular when config loads first.
    from ..config import ClientConfig, Clock

__all__ = ["ClientConnection"]

# RFC 8446 §4.1.3: the last 8 bytes of a TLS 1.3 server's random when it
# negotiates TLS 1.2 or below; seeing them while offering 1.3 is a downgrade.
_DOWNGRADE_TLS12: Final = b"DOWNGRD\x01"
_DOWNGRADE_TLS11: Final = b"DOWNGRD\x00"
# A DNS host name (RFC 1123 §2.1): labels of 1-63 letters, digits or inner
# hyphens, 253 characters at most, ASCII only, no trailing dot.
_DNS_NAME: Final = re.compile(
    r"(?=.{1,253}\Z)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\Z"
)
SERVER_SIGNATURE_CONTEXT: Final = b" " * 64 + b"TLS 1.3, server CertificateVerify\x00"
CLIENT_SIGNATURE_CONTEXT: Final = b" " * 64 + b"TLS 1.3, client CertificateVerify\x00"


@final
class ClientConnection(Connection):
    """The client end of one TLS 1.3 connection (sans-IO).

    Args:
        config: the client settings.
        server_hostname: the name to send with SNI and to check the
            certificate against (a DNS name or an IP address literal). An
            internationalized name (``"bücher.example"``) is converted to
            its A-labels (IDNA 2008), which ``server_hostname`` then holds.
        key_log: receives secrets for debugging; defaults to ``config.key_log``.
        session: a ticket from an earlier connection to offer for resumption;
            if the server refuses it, the handshake goes on as a full one.
    """

    is_client = True

    def __init__(
        self,
        config: ClientConfig,
        *,
        server_hostname: str | None = None,
        key_log: KeyLog | None = None,
        session: ClientSession | None = None,
    ) -> None:
        super().__init__(config.max_handshake_message_size, key_log or config.key_log)
        self.config = config
        if server_hostname is not None and not _is_ip_literal(server_hostname):
            # SNI and certificates use A-labels: "bücher.example" is sent
            # and checked as "xn--bcher-kva.example" (IDNA 2008).
            server_hostname = to_a_labels(server_hostname)
        self.server_hostname = server_hostname
        self.session = session
        if config.verify_peer and config.check_hostname and server_hostname is None:
            raise ValueError(
                "server_hostname is required to check the server's certificate; "
                "pass check_hostname=False in the config to skip the name check"
            )
        if server_hostname is not None and not _is_ip_literal(server_hostname):
            # Refuse here what SNI (RFC 6066 §3: ASCII, no trailing dot) or the
            # name check cannot use, instead of failing mid-handshake. The name
            # check refuses "_"; a name that is only sent as SNI may have one.
            checked = config.verify_peer and config.check_hostname
            name = server_hostname if checked else server_hostname.replace("_", "a")
            if not _DNS_NAME.fullmatch(name):
                raise ValueError(
                    f"server_hostname {server_hostname!r} is neither an IP address nor a valid "
                    "DNS name (letters, digits and hyphens in labels of at most 63 characters, "
                    "no trailing dot)"
                )
        self._started = False
        self._early_data_offered = False

    def start_handshake(self, *, early_data: bytes = b"") -> None:
        """Queue the ClientHello, and ``early_data`` as 0-RTT data if it can go.

        Early data is offered only when ``session`` allows it (its ticket
        carried max_early_data_size, no smaller than ``early_data``, for
        the ALPN protocol and suite this config can still use); whether it
        went out is :attr:`early_data_offered`, and whether the server took
        it is ``negotiated.early_data``. Refused or never offered, it is
        not sent again (RFC 8446 §4.2.10): that is the caller's decision.
        """
        if self._started:
            raise UsageError("start_handshake() was already called")
        if self.closed and self.error is None:
            raise UsageError("start_handshake() after close(): nothing can be sent")
        self._started = True
        self._guard(self._start_handshake, early_data)

    def _start_handshake(self, early_data: bytes) -> None:
        hs = _ClientHandshake(
            config=self.config,
            server_name=self.server_hostname,
            session=self.session,
            early_data=early_data,
        )
        hs.client_hello = _build_client_hello(hs)
        raw = _framed_client_hello(hs, hs.client_hello)
        hs.transcript.add(raw)
        # RFC 8446 §5.1: legacy_record_version may be 0x0301 for the first
        # ClientHello, which some old middleboxes insist on.
        self.queue_handshake(raw, legacy_version=0x0301)
        self.allow_change_cipher_spec(True)
        self._state = ExpectServerHello(hs)
        if ExtensionType.EARLY_DATA in hs.client_hello.extensions:
            self._send_early_data(hs, raw)
            self._early_data_offered = True

    def may_offer(self, session: ClientSession) -> bool:
        """Whether this connection would offer ``session`` (name, suite, verification terms).

        For a session cache to hand out a ticket this connection can use
        (``SessionCache.take(..., usable=conn.may_offer)``), rather than one it
        would refuse; expiry is the cache's own check.
        """
        return _session_fits(self.config, self.server_hostname, session)

    @property
    def early_data_offered(self) -> bool:
        """Whether the ClientHello offered 0-RTT data (see :meth:`start_handshake`)."""
        return self._early_data_offered

    def _send_early_data(self, hs: _ClientHandshake, client_hello: bytes) -> None:
        """Seal the early data under client_early_traffic_secret (RFC 8446 §7.1)."""
        session = hs.session
        assert session is not None and hs.psk_schedule is not None  # offered with a PSK
        suite = CIPHER_SUITES[session.cipher_suite]
        secret = hs.psk_schedule.client_early_traffic_secret(
            hashlib.new(suite.hash_name, client_hello).digest()
        )
        assert hs.client_hello is not None  # just built
        self.log_secret("CLIENT_EARLY_TRAFFIC_SECRET", hs.client_hello.random, secret)
        if hs.config.middlebox_compat:
            # RFC 8446 appendix D.4: with early data, the CCS follows the ClientHello.
            self.queue_change_cipher_spec()
            hs.sent_ccs = True
        self.set_suite(suite, hs.psk_schedule)
        self.install_write_key(secret)
        self.seal_early_data(hs.early_data)
        hs.early_status = EarlyDataStatus.REJECTED  # until EncryptedExtensions accept it


@dataclass(kw_only=True, eq=False)
class _ClientHandshake:
    """What the client states share while the handshake runs."""

    config: ClientConfig
    server_name: str | None
    session: ClientSession | None = None
    psk_schedule: KeySchedule | None = None
    resumed: bool = False
    psk_mode: PskKeyExchangeMode | None = None  # how a resumption made its keys
    transcript: Transcript = field(default_factory=Transcript)
    client_hello: ClientHello | None = None
    # The framed bytes _offer_psk encoded for the hello it returned (binder
    # included), so that the hello is not encoded a third time.
    framed_hello: tuple[ClientHello, bytes] | None = None
    key_exchanges: dict[int, KeyExchange] = field(default_factory=dict)
    sent_ccs: bool = False
    hello_retry: ServerHello | None = None
    suite: SuiteInfo | None = None
    schedule: KeySchedule | None = None
    group: int | None = None
    client_secret: Secret | None = None
    server_secret: Secret | None = None
    alpn_protocol: str | None = None
    certificate_request: CertificateRequest | None = None
    peer_chain: tuple[x509.Certificate, ...] = ()
    verified_chain: tuple[x509.Certificate, ...] | None = None
    verification: VerificationResult | None = None
    signature_scheme: int | None = None
    early_data: bytes = field(default=b"", repr=False)
    early_status: EarlyDataStatus = EarlyDataStatus.NOT_OFFERED

    def random_bytes(self, n: int) -> bytes:
        return self.config.random.random_bytes(n)


def _is_ip_literal(name: str) -> bool:
    return ip_literal(name) is not None


def _build_client_hello(hs: _ClientHandshake) -> ClientHello:
    cfg = hs.config
    random = hs.random_bytes(32)
    session_id = hs.random_bytes(32) if cfg.middlebox_compat else b""
    hs.key_exchanges.update(start_key_exchanges(cfg.key_share_groups, hs.random_bytes))
    exts: dict[int, bytes] = {}
    # RFC 6066 §3: IP literals are not sent as host names.
    if hs.server_name is not None and not _is_ip_literal(hs.server_name):
        exts[ExtensionType.SERVER_NAME] = encode_server_name(hs.server_name)
    exts.update(_config_extensions(cfg))
    # Key shares even when offering psk_ke only: a refused ticket means a full handshake.
    exts[ExtensionType.KEY_SHARE] = encode_key_share_ch(
        [KeyShareEntry(group=g, key_exchange=kx.share()) for g, kx in hs.key_exchanges.items()]
    )
    hello = ClientHello(
        random=random,
        legacy_session_id=session_id,
        cipher_suites=tuple(cfg.cipher_suites),
        extensions=exts,
    )
    return _offer_psk(hs, hello)


def _config_extensions(cfg: ClientConfig) -> dict[int, bytes]:
    """The extensions that depend on the config alone, in the order they are sent.

    Encoded on a config's first ClientHello and kept in it: configs are
    immutable, and this is the same for all their connections.
    """
    cached = cfg._hello_extensions
    if cached is not None:
        return cached
    exts: dict[int, bytes] = {}
    exts[ExtensionType.SUPPORTED_GROUPS] = encode_u16_list(cfg.groups)
    exts[ExtensionType.SIGNATURE_ALGORITHMS] = encode_u16_list(cfg.signature_schemes)
    if cfg.post_handshake_auth:
        exts[ExtensionType.POST_HANDSHAKE_AUTH] = b""  # RFC 8446 §4.2.6: always empty
    if cfg.verify_peer and cfg.ocsp != "off":
        exts[ExtensionType.STATUS_REQUEST] = encode_status_request()
    if cfg.alpn_protocols:
        exts[ExtensionType.APPLICATION_LAYER_PROTOCOL_NEGOTIATION] = encode_alpn(
            [p.encode() for p in cfg.alpn_protocols]
        )
    if cfg.record_size_limit is not None:
        exts[ExtensionType.RECORD_SIZE_LIMIT] = cfg.record_size_limit.to_bytes(2, "big")
    exts[ExtensionType.SUPPORTED_VERSIONS] = b"\x02\x03\x04"
    # Sent even without a ticket, as OpenSSL does; the server may then issue some.
    exts[ExtensionType.PSK_KEY_EXCHANGE_MODES] = encode_psk_modes(
        [PskKeyExchangeMode[name.upper()] for name in cfg.psk_key_exchange_modes]
    )
    # The config is frozen; this cache is its one field set after __init__
    # (two threads racing here store equal dicts, and callers only read it).
    object.__setattr__(cfg, "_hello_extensions", exts)
    return exts


def _framed_client_hello(hs: _ClientHandshake, hello: ClientHello) -> bytes:
    """``hello`` framed: the bytes :func:`_offer_psk` made for it, else a fresh encoding."""
    made, hs.framed_hello = hs.framed_hello, None
    if made is not None and made[0] is hello:
        return made[1]
    return frame(HandshakeType.CLIENT_HELLO, hello.encode())


def _offer_psk(hs: _ClientHandshake, hello: ClientHello) -> ClientHello:
    """Add (or refresh, or drop) the resumption offer: pre_shared_key, last.

    The binder is an HMAC over the ClientHello up to the binders themselves
    (RFC 8446 §4.2.11.2), so the hello is encoded once with a placeholder of
    the right length, hashed up to the binders, then completed in place: the
    binder is the last ``hash_len`` bytes of the hello, and of the extension.
    """
    exts = dict(hello.extensions)
    exts.pop(ExtensionType.PRE_SHARED_KEY, None)
    session = hs.session
    suite = CIPHER_SUITES.get(session.cipher_suite) if session is not None else None
    now = hs.config.clock.now()
    usable = (
        session is not None
        and suite is not None
        and session.is_usable_at(now)
        and _session_fits(hs.config, hs.server_name, session)
        # After a HelloRetryRequest the PSK must still fit the suite's hash.
        and (
            hs.hello_retry is None
            or CIPHER_SUITES[hs.hello_retry.cipher_suite].hash_name == suite.hash_name
        )
    )
    if not usable or session is None or suite is None:
        hs.psk_schedule = None
        if ExtensionType.PRE_SHARED_KEY not in hello.extensions:
            return hello  # nothing to drop
        return _with_extensions(hello, exts)
    schedule = KeySchedule(suite.hash_name, session.psk)
    hs.psk_schedule = schedule
    if hs.hello_retry is None and _may_send_early_data(hs.config, session, hs.early_data):
        exts[ExtensionType.EARLY_DATA] = b""  # before pre_shared_key, which is last
    identity = PskIdentity(
        identity=session.ticket, obfuscated_ticket_age=session.obfuscated_age(now)
    )
    offer = OfferedPsks(identities=(identity,), binders=(bytes(suite.hash_len),))
    placeholder = encode_pre_shared_key_ch(offer)
    exts[ExtensionType.PRE_SHARED_KEY] = placeholder
    offered = _with_extensions(hello, exts)
    raw = frame(HandshakeType.CLIENT_HELLO, offered.encode())
    truncated = raw[: len(raw) - offer.binders_length]
    if hs.hello_retry is None:
        prefix_hash = hashlib.new(suite.hash_name, truncated).digest()
    else:
        prefix_hash = hs.transcript.digest_with(truncated)
    binder = finished_verify_data(suite.hash_name, schedule.binder_key(), prefix_hash)
    # An HMAC with the suite's hash is hash_len bytes, the placeholder's size;
    # pre_shared_key is the last extension and its one binder comes last.
    assert len(binder) == suite.hash_len
    cut = len(raw) - suite.hash_len
    # ``exts`` belongs to ``offered`` alone, which nothing else has seen yet.
    exts[ExtensionType.PRE_SHARED_KEY] = placeholder[: len(placeholder) - suite.hash_len] + binder
    hs.framed_hello = (offered, raw[:cut] + binder)
    return offered


def _session_fits(cfg: ClientConfig, server_name: str | None, session: ClientSession) -> bool:
    """Whether a client with ``cfg``, connecting to ``server_name``, may offer ``session``."""
    return (
        session.cipher_suite in CIPHER_SUITES
        and session.cipher_suite in cfg.cipher_suites
        # RFC 8446 §4.6.1: resume only for the name the session was verified
        # for; a server may accept a ticket under another name, and the PSK
        # stands for a certificate that was never checked against it.
        and session.server_name == server_name
        # A session from a connection that was not verified (verify_peer off)
        # must not let a verifying client skip the check; nor one verified
        # under other terms (another trust store, no name check, OCSP off) let
        # this client skip its own: resuming checks nothing again.
        and (not cfg.verify_peer or session.verified_chain is not None)
        and _verified_alike(session.verified_under, cfg)
    )


def _verification_terms(cfg: ClientConfig) -> tuple[object, ...]:
    """What a connection's verification of the server depended on in ``cfg``.

    The trust store by its fingerprint (its roots and CRLs), a verify
    callback as the same object (what it accepts cannot be compared).
    """
    return (
        cfg.trust.fingerprint if cfg.trust is not None else None,
        cfg.verify_callback,
        cfg.verify_peer,
        cfg.check_hostname,
        cfg.verify_mode,
        cfg.max_chain_depth,
        cfg.ocsp,
    )


def _verified_alike(terms: tuple[object, ...], cfg: ClientConfig) -> bool:
    """Whether a session verified under ``terms`` may resume under ``cfg``."""
    ours = _verification_terms(cfg)
    if len(terms) != len(ours):
        return False
    (trust, callback, *rest), (our_trust, our_callback, *our_rest) = terms, ours
    return trust == our_trust and callback is our_callback and rest == our_rest


def _with_extensions(hello: ClientHello, exts: dict[int, bytes]) -> ClientHello:
    """``hello`` with ``exts``; what ``dataclasses.replace`` does, at a third of the cost."""
    return type(hello)(
        legacy_version=hello.legacy_version,
        random=hello.random,
        legacy_session_id=hello.legacy_session_id,
        cipher_suites=hello.cipher_suites,
        legacy_compression_methods=hello.legacy_compression_methods,
        extensions=exts,
    )


def _may_send_early_data(config: ClientConfig, session: ClientSession, data: bytes) -> bool:
    """Whether ``data`` may go as 0-RTT data with ``session`` (RFC 8446 §4.2.10)."""
    if not data or len(data) > session.max_early_data_size:
        return False  # nothing to send, or the ticket allows less (all or nothing)
    # The early data is the session's ALPN protocol's: offer it only when
    # this client still offers that protocol, so the server can accept it.
    if session.alpn_protocol is None:
        return not config.alpn_protocols
    return session.alpn_protocol in config.alpn_protocols


def _check_offered(exts: dict[int, bytes], offered: dict[int, bytes], where: str) -> None:
    # RFC 8446 §4.2: a response to an extension we did not send is fatal.
    for ext_type in exts:
        if ext_type not in offered:
            raise UnsupportedExtension(
                f"{where} carries extension {ext_type:#06x}, which the client did not offer"
            )


@final
class ExpectServerHello(State):
    """Waiting for ServerHello or HelloRetryRequest."""

    expects: ClassVar = frozenset({HandshakeType.SERVER_HELLO})

    def __init__(self, hs: _ClientHandshake) -> None:
        self._hs = hs

    def handle(self, msg: HandshakeMessage, conn: Connection) -> State:
        hs = self._hs
        assert hs.client_hello is not None  # set by start_handshake
        sh = ServerHello.decode(msg.body)
        ch = hs.client_hello
        versions = sh.extensions.get(ExtensionType.SUPPORTED_VERSIONS)
        if versions is None:
            tail = sh.random[-8:]
            if tail in (_DOWNGRADE_TLS12, _DOWNGRADE_TLS11):
                raise IllegalParameter(
                    "the server signalled a downgrade to an older TLS version (RFC 8446 §4.1.3); "
                    "refusing"
                )
            raise ProtocolVersionError(
                f"the server chose version {sh.legacy_version:#06x}, but this client speaks "
                "TLS 1.3 only"
            )
        selected = decode_u16(versions, "selected_version")
        if selected != 0x0304:
            raise IllegalParameter(
                f"the server selected version {selected:#06x}, which the client did not offer"
            )
        if sh.legacy_version != 0x0303:
            raise ProtocolVersionError(
                f"ServerHello legacy_version is {sh.legacy_version:#06x}, not 0x0303"
            )
        if sh.legacy_session_id_echo != ch.legacy_session_id:
            raise IllegalParameter("ServerHello does not echo the client's legacy_session_id")
        if sh.cipher_suite not in ch.cipher_suites:
            raise IllegalParameter(
                f"ServerHello selected cipher suite {sh.cipher_suite:#06x}, which the client "
                "did not offer"
            )
        if sh.legacy_compression_method != 0:
            raise IllegalParameter("ServerHello legacy_compression_method is not 0")
        # RFC 8446 §4.1.4: a HelloRetryRequest may carry a cookie unasked.
        unasked = {ExtensionType.COOKIE} if sh.is_hello_retry_request else set()
        answered = {t: d for t, d in sh.extensions.items() if t not in unasked}
        _check_offered(answered, ch.extensions, "ServerHello")
        suite = CIPHER_SUITES[sh.cipher_suite]
        if sh.is_hello_retry_request:
            return self._hello_retry(sh, msg, suite, conn)
        if hs.hello_retry is not None and sh.cipher_suite != hs.hello_retry.cipher_suite:
            raise IllegalParameter(
                "ServerHello selected a different cipher suite than the HelloRetryRequest"
            )
        schedule = self._accept_psk(sh, suite)
        shared_secret = self._key_exchange(sh)
        hs.key_exchanges.clear()
        hs.suite = suite
        hs.transcript.set_hash(suite.hash_name)
        hs.transcript.add(msg.raw)
        hs.schedule = schedule
        conn.set_suite(suite, schedule)
        hs.client_secret, hs.server_secret = schedule.handshake(
            shared_secret, hs.transcript.digest()
        )
        client_random = hs.client_hello.random
        conn.log_secret("CLIENT_HANDSHAKE_TRAFFIC_SECRET", client_random, hs.client_secret)
        conn.log_secret("SERVER_HANDSHAKE_TRAFFIC_SECRET", client_random, hs.server_secret)
        conn.install_read_key(hs.server_secret, "the server's encrypted handshake")
        # From here on our alerts must be encrypted too (RFC 8446 §6: alerts
        # follow the current write state); the compatibility CCS is written
        # raw, so it still goes out in the clear before our second flight.
        # With 0-RTT data offered and the PSK taken, the early key stays until
        # EncryptedExtensions say whether an EndOfEarlyData must follow it.
        if not _early_data_undecided(hs):
            conn.install_write_key(hs.client_secret)
        return ExpectEncryptedExtensions(hs)

    def _key_exchange(self, sh: ServerHello) -> bytes | None:
        """The (EC)DHE shared secret, or None for a psk_ke resumption (RFC 8446 §4.2.9)."""
        hs = self._hs
        assert hs.client_hello is not None  # set by start_handshake
        offered = decode_psk_modes(hs.client_hello.extensions[ExtensionType.PSK_KEY_EXCHANGE_MODES])
        share_data = sh.extensions.get(ExtensionType.KEY_SHARE)
        if share_data is None:
            if not hs.resumed:
                raise MissingExtension("ServerHello has no key_share, and it selected no PSK")
            if PskKeyExchangeMode.PSK_KE not in offered:
                # RFC 8446 §4.2.11: a key_share the modes require is missing.
                raise IllegalParameter(
                    "ServerHello resumed without a key_share (psk_ke), which the client did "
                    "not offer: it allows psk_dhe_ke only"
                )
            hs.psk_mode = PskKeyExchangeMode.PSK_KE
            return None
        if hs.resumed and PskKeyExchangeMode.PSK_DHE_KE not in offered:
            # RFC 8446 §4.2.9: the server must not select a mode the client did not list.
            raise IllegalParameter(
                "ServerHello resumed with a key_share (psk_dhe_ke), but the client offered "
                "psk_ke only"
            )
        share = decode_key_share_sh(share_data)
        kx = hs.key_exchanges.get(share.group)
        if kx is None:
            raise IllegalParameter(
                f"ServerHello key_share is for group {share.group:#06x}, for which the client "
                "sent no share"
            )
        hs.group = share.group
        if hs.resumed:
            hs.psk_mode = PskKeyExchangeMode.PSK_DHE_KE
        return kx.finish(share.key_exchange)

    def _accept_psk(self, sh: ServerHello, suite: SuiteInfo) -> KeySchedule:
        """The key schedule: resumed when the server took our PSK, else fresh."""
        hs = self._hs
        selected = sh.extensions.get(ExtensionType.PRE_SHARED_KEY)
        if selected is None:
            return KeySchedule(suite.hash_name)
        if hs.psk_schedule is None:
            raise IllegalParameter("ServerHello selected a PSK, but the client offered none")
        index = decode_u16(selected, "selected_identity")
        if index != 0:
            raise IllegalParameter(f"ServerHello selected PSK {index}; the client offered one")
        if hs.psk_schedule.hash_name != suite.hash_name:
            # RFC 8446 §4.2.11: the suite must use the PSK's hash.
            raise IllegalParameter("the server resumed with a cipher suite of another hash")
        hs.resumed = True
        return hs.psk_schedule

    def _hello_retry(
        self, hrr: ServerHello, msg: HandshakeMessage, suite: SuiteInfo, conn: Connection
    ) -> State:
        hs = self._hs
        assert hs.client_hello is not None  # set by start_handshake
        if hs.hello_retry is not None:
            raise UnexpectedMessage("a second HelloRetryRequest in one handshake")
        exts = dict(hs.client_hello.extensions)
        changed = False
        group_data = hrr.extensions.get(ExtensionType.KEY_SHARE)
        if group_data is not None:
            group = decode_u16(group_data, "selected_group")
            if group not in hs.config.groups:
                raise IllegalParameter(
                    f"HelloRetryRequest asks for group {group:#06x}, which the client did not offer"
                )
            if group in hs.key_exchanges:
                raise IllegalParameter(
                    f"HelloRetryRequest asks for group {group:#06x}, for which the client "
                    "already sent a share"
                )
            hs.key_exchanges.clear()
            kx = start_key_exchange(group, hs.random_bytes)
            hs.key_exchanges[group] = kx
            exts[ExtensionType.KEY_SHARE] = encode_key_share_ch(
                [KeyShareEntry(group=group, key_exchange=kx.share())]
            )
            changed = True
        cookie = hrr.extensions.get(ExtensionType.COOKIE)
        if cookie is not None:
            exts[ExtensionType.COOKIE] = encode_cookie(decode_cookie(cookie))
            changed = True
        if not changed:
            # RFC 8446 §4.1.4: an HRR that would not change the ClientHello.
            raise IllegalParameter("HelloRetryRequest would not change the ClientHello")
        exts.pop(ExtensionType.EARLY_DATA, None)
        if hs.early_status is not EarlyDataStatus.NOT_OFFERED:
            conn.drop_write_key()  # RFC 8446 §4.1.2: the second ClientHello is plaintext
        hs.hello_retry = hrr
        hs.transcript.set_hash(suite.hash_name)
        hs.transcript.roll_up_for_hello_retry()
        hs.transcript.add(msg.raw)
        ch2 = ClientHello(
            random=hs.client_hello.random,
            legacy_session_id=hs.client_hello.legacy_session_id,
            cipher_suites=hs.client_hello.cipher_suites,
            extensions=exts,
        )
        ch2 = _offer_psk(hs, ch2)
        hs.client_hello = ch2
        raw = _framed_client_hello(hs, ch2)
        hs.transcript.add(raw)
        if hs.config.middlebox_compat and not hs.sent_ccs:
            conn.queue_change_cipher_spec()
            hs.sent_ccs = True
        conn.queue_handshake(raw)
        return ExpectServerHello(hs)


@final
class ExpectEncryptedExtensions(State):
    """Waiting for EncryptedExtensions."""

    expects: ClassVar = frozenset({HandshakeType.ENCRYPTED_EXTENSIONS})

    def __init__(self, hs: _ClientHandshake) -> None:
        self._hs = hs

    def handle(self, msg: HandshakeMessage, conn: Connection) -> State:
        hs = self._hs
        assert hs.client_hello is not None  # set by start_handshake
        ee = EncryptedExtensions.decode(msg.body)
        _check_offered(ee.extensions, hs.client_hello.extensions, "EncryptedExtensions")
        alpn = ee.extensions.get(ExtensionType.APPLICATION_LAYER_PROTOCOL_NEGOTIATION)
        if alpn is not None:
            protocols = decode_alpn(alpn)
            # RFC 7301 §3.1: the server answers with exactly one protocol.
            if len(protocols) != 1:
                raise DecodeError(f"server ALPN answer lists {len(protocols)} protocols, not 1")
            chosen = protocols[0]
            offered = [p.encode() for p in hs.config.alpn_protocols]
            if chosen not in offered:
                raise IllegalParameter(
                    f"server selected ALPN protocol {chosen!r}, which the client did not offer"
                )
            hs.alpn_protocol = chosen.decode()
        limit = ee.extensions.get(ExtensionType.RECORD_SIZE_LIMIT)
        if limit is not None:
            conn.set_peer_record_limit(decode_record_size_limit(limit))
            assert hs.config.record_size_limit is not None  # offered, checked above
            conn.set_own_record_limit(hs.config.record_size_limit)
        server_name = ee.extensions.get(ExtensionType.SERVER_NAME)
        if server_name:
            raise DecodeError("server_name in EncryptedExtensions must be empty (RFC 6066 §3)")
        early = ee.extensions.get(ExtensionType.EARLY_DATA)
        if early is not None:
            _check_early_data_accepted(hs, early)
            hs.early_status = EarlyDataStatus.ACCEPTED
        elif _early_data_undecided(hs):
            assert hs.client_secret is not None  # set at ServerHello
            conn.install_write_key(hs.client_secret)  # refused: no EndOfEarlyData
        hs.transcript.add(msg.raw)
        if hs.resumed:
            # RFC 8446 §2.2: a PSK handshake authenticates with the PSK.
            return ExpectFinished(hs)
        return ExpectCertificateOrCertificateRequest(hs)


def _early_data_undecided(hs: _ClientHandshake) -> bool:
    """Whether our 0-RTT data may still be accepted, so the early key stays until EE.

    Not after a HelloRetryRequest: the early key is dropped then (the second
    ClientHello offers no early data), and the handshake key follows the
    ServerHello at once, so an alert about EncryptedExtensions is encrypted.
    """
    return (
        hs.resumed and hs.early_status is not EarlyDataStatus.NOT_OFFERED and hs.hello_retry is None
    )


def _check_early_data_accepted(hs: _ClientHandshake, body: bytes) -> None:
    """The server's acceptance of 0-RTT must match the PSK's parameters (§4.2.10)."""
    decode_empty(body, "early_data")
    session = hs.session
    # _check_offered refused it if our (last) ClientHello did not offer it.
    assert session is not None and hs.suite is not None  # offered with a PSK
    if not hs.resumed:
        raise IllegalParameter("the server accepted 0-RTT data without accepting the PSK")
    if hs.suite.suite != session.cipher_suite:
        raise IllegalParameter("the server accepted 0-RTT data under another cipher suite")
    if hs.alpn_protocol != session.alpn_protocol:
        raise IllegalParameter(
            f"the server accepted 0-RTT data but selected ALPN {hs.alpn_protocol!r}; the "
            f"data was written for {session.alpn_protocol!r}"
        )


@final
class ExpectCertificateOrCertificateRequest(State):
    """Waiting for the server's Certificate, or a CertificateRequest first."""

    expects: ClassVar = frozenset({HandshakeType.CERTIFICATE, HandshakeType.CERTIFICATE_REQUEST})

    def __init__(self, hs: _ClientHandshake) -> None:
        self._hs = hs

    def handle(self, msg: HandshakeMessage, conn: Connection) -> State:
        hs = self._hs
        if msg.msg_type == HandshakeType.CERTIFICATE:
            return _handle_server_certificate(hs, msg)
        request = CertificateRequest.decode(msg.body)
        if request.certificate_request_context:
            raise IllegalParameter(
                "CertificateRequest in the handshake must have an empty context (RFC 8446 §4.3.2)"
            )
        if ExtensionType.SIGNATURE_ALGORITHMS not in request.extensions:
            raise MissingExtension("CertificateRequest has no signature_algorithms")
        hs.certificate_request = request
        hs.transcript.add(msg.raw)
        return ExpectCertificate(hs)


@final
class ExpectCertificate(State):
    """Waiting for the server's Certificate after a CertificateRequest."""

    expects: ClassVar = frozenset({HandshakeType.CERTIFICATE})

    def __init__(self, hs: _ClientHandshake) -> None:
        self._hs = hs

    def handle(self, msg: HandshakeMessage, conn: Connection) -> State:
        return _handle_server_certificate(self._hs, msg)


def parse_certificate_chain(
    cert: Certificate, who: str, *, status_requested: bool = False
) -> tuple[x509.Certificate, ...]:
    """Parse each entry of a Certificate message; refuse unrequested per-entry extensions.

    With ``status_requested`` (we sent status_request), an entry may carry a
    status_request extension (RFC 8446 §4.4.2.1); :func:`stapled_ocsp_response`
    reads the leaf's. Any other entry extension (SCTs, which we never ask
    for) is unsupported_extension (RFC 8446 §4.2).
    """
    chain: list[x509.Certificate] = []
    for index, entry in enumerate(cert.certificate_list):
        unrequested = [
            ext_type
            for ext_type in entry.extensions
            if not (status_requested and ext_type == ExtensionType.STATUS_REQUEST)
        ]
        if unrequested:
            requester = "client" if who == "server" else "server"
            raise UnsupportedExtension(
                f"{who} certificate {index} carries extensions the {requester} did not request "
                f"({', '.join(f'{ext_type:#06x}' for ext_type in unrequested)})"
            )
        try:
            chain.append(load_certificate(entry.cert_data))
        except (ValueError, x509.InvalidVersion) as exc:  # InvalidVersion is no ValueError
            raise BadCertificate(
                f"{who} certificate {index} is not valid DER X.509: {exc}"
            ) from None
    return tuple(chain)


def stapled_ocsp_response(cert: Certificate) -> bytes | None:
    """The DER OCSPResponse stapled to the leaf's entry, or None.

    Every entry's status is decoded (a malformed one is decode_error), but
    only the leaf's is used: revocation of intermediates comes from CRLs.
    """
    staples = [
        decode_certificate_status(entry.extensions[ExtensionType.STATUS_REQUEST])
        if ExtensionType.STATUS_REQUEST in entry.extensions
        else None
        for entry in cert.certificate_list
    ]
    return staples[0] if staples else None


def _handle_server_certificate(hs: _ClientHandshake, msg: HandshakeMessage) -> State:
    cert = Certificate.decode(msg.body)
    if cert.certificate_request_context:
        raise IllegalParameter("server Certificate must have an empty request context")
    if not cert.certificate_list:
        # RFC 8446 §4.4.2.4: an empty server Certificate is a decode_error.
        raise DecodeError("the server sent an empty Certificate message")
    assert hs.client_hello is not None  # set by start_handshake
    requested = ExtensionType.STATUS_REQUEST in hs.client_hello.extensions
    chain = parse_certificate_chain(cert, "server", status_requested=requested)
    config = hs.config
    if config.verify_peer:
        result = check_chain(
            chain,
            config.trust_store,
            purpose="server",
            server_name=hs.server_name if config.check_hostname else None,
            now=config.clock.now(),
            max_depth=config.max_chain_depth,
            ocsp_response=stapled_ocsp_response(cert) if requested else None,
            ocsp_requested=requested,
            ocsp_required=config.ocsp == "require",
        )
        # Raises, and so aborts the handshake, when the mode refuses the chain.
        enforce_verification(result, mode=config.verify_mode, callback=config.verify_callback)
        hs.verification = result
        hs.verified_chain = result.verified_chain
    hs.peer_chain = chain
    hs.transcript.add(msg.raw)
    return ExpectCertificateVerify(hs)


@final
class ExpectCertificateVerify(State):
    """Waiting for the server's CertificateVerify."""

    expects: ClassVar = frozenset({HandshakeType.CERTIFICATE_VERIFY})

    def __init__(self, hs: _ClientHandshake) -> None:
        self._hs = hs

    def handle(self, msg: HandshakeMessage, conn: Connection) -> State:
        hs = self._hs
        cv = CertificateVerify.decode(msg.body)
        verify_peer_signature(
            cv,
            hs.peer_chain[0],
            hs.config.signature_schemes,
            SERVER_SIGNATURE_CONTEXT + hs.transcript.digest(),
        )
        hs.signature_scheme = cv.algorithm
        hs.transcript.add(msg.raw)
        return ExpectFinished(hs)


def verify_peer_signature(
    cv: CertificateVerify, leaf: x509.Certificate, accepted: tuple[int, ...], signed: bytes
) -> None:
    """Check a CertificateVerify against the peer's leaf (RFC 8446 §4.4.3)."""
    info = SIGNATURE_SCHEMES.get(cv.algorithm)
    if info is None or cv.algorithm not in accepted:
        raise IllegalParameter(
            f"the peer signed with scheme {cv.algorithm:#06x}, which was not offered"
        )
    try:
        public_key = leaf.public_key()
    except UnsupportedAlgorithm:
        # An unknown key algorithm or curve; only reachable unverified, or from a
        # trusted CA that certifies keys we cannot use.
        raise UnsupportedCertificate(
            f"the peer's certificate key ({leaf.public_key_algorithm_oid.dotted_string}) "
            "is of an algorithm or curve this library does not support"
        ) from None
    except ValueError as exc:
        raise BadCertificate(f"the peer's certificate holds an invalid public key: {exc}") from None
    if not isinstance(public_key, PublicKey):
        raise BadCertificate(
            f"the peer's certificate has an unsupported key type {type(public_key).__name__}"
        )
    is_pss = leaf.public_key_algorithm_oid == x509.oid.PublicKeyAlgorithmOID.RSASSA_PSS
    if not scheme_fits_key(info, key_kind(public_key, is_pss_key=is_pss)):
        raise IllegalParameter(
            f"signature scheme {info.scheme.name.lower()} does not match the peer's key"
        )
    verify_signature(public_key, info, cv.signature, signed)


@final
class ExpectFinished(State):
    """Waiting for the server's Finished."""

    expects: ClassVar = frozenset({HandshakeType.FINISHED})

    def __init__(self, hs: _ClientHandshake) -> None:
        self._hs = hs

    def handle(self, msg: HandshakeMessage, conn: Connection) -> State:
        hs = self._hs
        assert hs.suite is not None and hs.schedule is not None  # set at ServerHello
        assert hs.server_secret is not None and hs.client_secret is not None
        hash_name = hs.suite.hash_name
        finished = Finished.decode(msg.body, hs.suite.hash_len)
        expected = finished_verify_data(hash_name, hs.server_secret, hs.transcript.digest())
        if not constant_time_equal(expected, finished.verify_data):
            raise DecryptError("the server's Finished does not verify (transcript mismatch)")
        hs.transcript.add(msg.raw)
        client_app, server_app = hs.schedule.application(hs.transcript.digest())
        _log_application_secrets(conn, hs)
        conn.install_read_key(server_app, "the server's application data")
        if hs.early_status is EarlyDataStatus.ACCEPTED:
            # RFC 8446 §4.5: EndOfEarlyData, under the early key, ends the 0-RTT data.
            raw = frame(HandshakeType.END_OF_EARLY_DATA, b"")
            hs.transcript.add(raw)
            conn.queue_handshake(raw)
            conn.install_write_key(hs.client_secret)
        if hs.config.middlebox_compat and not hs.sent_ccs:
            conn.queue_change_cipher_spec()
            hs.sent_ccs = True
        if hs.certificate_request is not None:
            _emit_client_certificate(hs.config, hs.certificate_request, hs.transcript, conn)
        verify_data = finished_verify_data(hash_name, hs.client_secret, hs.transcript.digest())
        raw = frame(HandshakeType.FINISHED, Finished(verify_data=verify_data).encode())
        hs.transcript.add(raw)
        conn.queue_handshake(raw)
        conn.install_write_key(client_app)
        resumption_secret = hs.schedule.resumption_master_secret(hs.transcript.digest())
        if hs.resumed and hs.session is not None:
            # The PSK stands for the certificate verified in the first handshake.
            hs.peer_chain = hs.session.peer_certificates
            hs.verified_chain = hs.session.verified_chain
            checked_name = hs.server_name if hs.config.check_hostname else None
            hs.verification = _resumed_verification(hs.session, checked_name)
        if hs.resumed:
            kind = (
                HandshakeKind.RESUMED
                if hs.hello_retry is None
                else HandshakeKind.RESUMED_WITH_HELLO_RETRY_REQUEST
            )
        else:
            kind = (
                HandshakeKind.FULL
                if hs.hello_retry is None
                else HandshakeKind.FULL_WITH_HELLO_RETRY_REQUEST
            )
        conn.complete_handshake(
            Negotiated(
                version=0x0304,
                cipher_suite=CipherSuite(hs.suite.suite),
                group=NamedGroup(hs.group) if hs.group is not None else None,
                signature_scheme=(
                    SignatureScheme(hs.signature_scheme) if hs.signature_scheme else None
                ),
                alpn_protocol=hs.alpn_protocol,
                server_name=hs.server_name,
                peer_certificates=hs.peer_chain,
                verified_chain=hs.verified_chain,
                handshake_kind=kind,
                verification=hs.verification,
                early_data=hs.early_status,
                psk_key_exchange_mode=hs.psk_mode,
            )
        )
        return ClientTraffic(
            _TicketContext(
                suite=hs.suite,
                resumption_secret=resumption_secret,
                alpn_protocol=hs.alpn_protocol,
                server_name=hs.server_name,
                peer_chain=hs.peer_chain,
                verified_chain=hs.verified_chain,
                verified_under=_verification_terms(hs.config),
                clock=hs.config.clock,
                # A session stands for the certificate it was made with, and
                # resuming it checks nothing again: keep none from a chain
                # that did not verify, even one the caller let through.
                resumable=hs.verification is None or hs.verification.is_valid,
            ),
            _PostHandshakeAuth(
                config=hs.config,
                hash_name=hash_name,
                transcript=hs.transcript,  # ends with our Finished
            )
            if hs.config.post_handshake_auth
            else None,
        )


def _resumed_verification(
    session: ClientSession, server_name: str | None
) -> VerificationResult | None:
    """What a resumed session stands for: the clean result its ticket came with."""
    if session.verified_chain is None:
        return None  # issued by a connection that did not verify the server
    return VerificationResult(
        status=VerificationStatus(0),
        reasons=(),
        chain=session.peer_certificates,
        verified_chain=session.verified_chain,
        server_name=server_name,
    )


def _log_application_secrets(conn: Connection, hs: _ClientHandshake) -> None:
    assert hs.client_hello is not None and hs.schedule is not None  # in ExpectFinished
    secrets = hs.schedule.application_secrets
    assert secrets is not None  # just derived
    client_random = hs.client_hello.random
    conn.log_secret("CLIENT_TRAFFIC_SECRET_0", client_random, secrets[0])
    conn.log_secret("SERVER_TRAFFIC_SECRET_0", client_random, secrets[1])
    exporter = hs.schedule.exporter_master_secret
    assert exporter is not None  # derived with the application secrets
    conn.log_secret("EXPORTER_SECRET", client_random, exporter)


def _emit_client_certificate(
    config: ClientConfig, request: CertificateRequest, transcript: Transcript, conn: Connection
) -> bool:
    """Answer a CertificateRequest: our chain and signature, or an empty list.

    Returns:
        whether a certificate was sent.
    """
    accepted = decode_u16_list(
        request.extensions[ExtensionType.SIGNATURE_ALGORITHMS], "signature_algorithms"
    )
    certified = config.certificate
    chosen = None
    if certified is not None:
        kind = key_kind(certified.private_key, is_pss_key=certified.is_pss_key)
        for scheme in config.signature_schemes:
            info = SIGNATURE_SCHEMES[scheme]
            if scheme in accepted and scheme_fits_key(info, kind):
                chosen = info
                break
    entries: tuple[bytes, ...] = certified.chain_der if (certified and chosen) else ()
    body = Certificate(
        certificate_request_context=request.certificate_request_context,
        certificate_list=tuple(CertificateEntry(cert_data=der) for der in entries),
    ).encode()
    raw = frame(HandshakeType.CERTIFICATE, body)
    transcript.add(raw)
    conn.queue_handshake(raw)
    if certified is None or chosen is None:
        return False
    signature = sign(certified.private_key, chosen, CLIENT_SIGNATURE_CONTEXT + transcript.digest())
    raw = frame(
        HandshakeType.CERTIFICATE_VERIFY,
        CertificateVerify(algorithm=chosen.scheme, signature=signature).encode(),
    )
    transcript.add(raw)
    conn.queue_handshake(raw)
    return True


@dataclass(frozen=True, slots=True, kw_only=True)
class _TicketContext:
    """What turning a NewSessionTicket into a ClientSession needs."""

    suite: SuiteInfo
    resumption_secret: Secret
    alpn_protocol: str | None
    server_name: str | None
    peer_chain: tuple[x509.Certificate, ...]
    verified_chain: tuple[x509.Certificate, ...] | None
    verified_under: tuple[object, ...]
    clock: Clock
    resumable: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class _PostHandshakeAuth:
    """What answering a post-handshake CertificateRequest (RFC 8446 §4.6.2) needs.

    ``transcript`` ends with our Finished and is never added to: each
    request continues a copy of it (RFC 8446 §4.4, the "Post-Handshake" row).
    """

    config: ClientConfig
    hash_name: str
    transcript: Transcript


@final
class ClientTraffic(State):
    """The handshake is done: tickets, key updates and certificate requests may arrive."""

    expects: ClassVar = frozenset(
        {
            HandshakeType.NEW_SESSION_TICKET,
            HandshakeType.KEY_UPDATE,
            HandshakeType.CERTIFICATE_REQUEST,
        }
    )

    def __init__(self, tickets: _TicketContext, auth: _PostHandshakeAuth | None = None) -> None:
        self._tickets = tickets
        self._auth = auth  # None: we did not offer post_handshake_auth

    def handle(self, msg: HandshakeMessage, conn: Connection) -> State:
        if msg.msg_type == HandshakeType.KEY_UPDATE:
            conn.receive_key_update(msg)
            return self
        if msg.msg_type == HandshakeType.CERTIFICATE_REQUEST:
            # Each costs us a signature: a stream of them is a flood.
            conn.count_idle_record("post-handshake CertificateRequests")
            self._answer_certificate_request(msg, conn)
            return self
        conn.count_idle_record("NewSessionTickets")
        ticket = NewSessionTicket.decode(msg.body)
        ctx = self._tickets
        if not ctx.resumable:
            conn.push_event(NewSessionTicketReceived(lifetime=ticket.ticket_lifetime))
            return self
        max_early = 0
        early = ticket.extensions.get(ExtensionType.EARLY_DATA)
        if early is not None:
            max_early = decode_u32(early, "max_early_data_size")
        session = ClientSession(
            ticket=ticket.ticket,
            psk=resumption_psk(ctx.suite.hash_name, ctx.resumption_secret, ticket.ticket_nonce),
            cipher_suite=ctx.suite.suite,
            ticket_age_add=ticket.ticket_age_add,
            lifetime=ticket.ticket_lifetime,
            received_at=ctx.clock.now(),
            alpn_protocol=ctx.alpn_protocol,
            server_name=ctx.server_name,
            peer_certificates=ctx.peer_chain,
            verified_chain=ctx.verified_chain,
            verified_under=ctx.verified_under,
            max_early_data_size=max_early,
        )
        conn.push_event(NewSessionTicketReceived(lifetime=ticket.ticket_lifetime, session=session))
        return self

    def _answer_certificate_request(self, msg: HandshakeMessage, conn: Connection) -> None:
        auth = self._auth
        if auth is None:
            # RFC 8446 §4.6.2: unexpected_message without post_handshake_auth.
            raise UnexpectedMessage(
                "received CERTIFICATE_REQUEST in state ClientTraffic, but the client did not "
                "offer post_handshake_auth"
            )
        request = CertificateRequest.decode(msg.body)
        if ExtensionType.SIGNATURE_ALGORITHMS not in request.extensions:
            raise MissingExtension("CertificateRequest has no signature_algorithms")
        if conn.closed:
            return  # nothing may follow our close_notify
        transcript = auth.transcript.copy()
        transcript.add(msg.raw)
        # RFC 8446 §4.6.2: Certificate [CertificateVerify] Finished, consecutive,
        # queued behind whatever we sent before, under the current write key.
        sent = _emit_client_certificate(auth.config, request, transcript, conn)
        verify_data = finished_verify_data(
            auth.hash_name, conn.client_application_secret(), transcript.digest()
        )
        conn.queue_handshake(
            frame(HandshakeType.FINISHED, Finished(verify_data=verify_data).encode())
        )
        conn.push_event(CertificateRequested(certificate_sent=sent))
