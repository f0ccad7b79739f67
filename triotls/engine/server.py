"""The server side of the TLS 1.3 handshake (RFC 8446 §2, §4).

States: ExpectClientHello, then (after a HelloRetryRequest)
ExpectSecondClientHello; the server flight goes out in one piece; then,
when ``client_auth`` asks for a client certificate in a full handshake,
ExpectClientCertificate and (for a non-empty chain only)
ExpectClientCertificateVerify; then ExpectClientFinished, then ServerTraffic.
When the client offered post_handshake_auth, ``request_client_certificate``
leads from ServerTraffic through ExpectPostHandshakeCertificate,
ExpectPostHandshakeCertificateVerify and ExpectPostHandshakeFinished back
to ServerTraffic (RFC 8446 §4.6.2); application data flows meanwhile.

Session tickets normally leave with the server's first flight: the client's
Finished is then fully determined by the transcript, so the resumption
secret can be computed ahead of it. With a CertificateRequest the client's
Certificate and CertificateVerify come first and cannot be predicted, so
the tickets go out after the client's Finished has verified, and carry the
client's chain (when it verified cleanly) so that resuming cannot skip
client authentication: a server requesting certificates verifies that chain
again before it accepts the ticket.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Final, final

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ..errors import (
    CertificateRequired,
    CertificateVerificationError,
    DecodeError,
    DecryptError,
    HandshakeFailure,
    IllegalParameter,
    InternalError,
    LocalAlert,
    MissingExtension,
    NoApplicationProtocol,
    ProtocolVersionError,
    UsageError,
)
from .client import CLIENT_SIGNATURE_CONTEXT, parse_certificate_chain, verify_peer_signature
from .connection import Connection, KeyLog, constant_time_equal
from .enums import (
    CipherSuite,
    ExtensionType,
    HandshakeType,
    NamedGroup,
    PskKeyExchangeMode,
    SignatureScheme,
)
from .events import ClientCertificateReceived
from .extensions import (
    KeyShareEntry,
    decode_alpn,
    decode_empty,
    decode_key_share_ch,
    decode_pre_shared_key_ch,
    decode_psk_modes,
    decode_record_size_limit,
    decode_server_name,
    decode_status_request,
    decode_supported_versions_ch,
    decode_u16_list,
    encode_alpn,
    encode_certificate_authorities,
    encode_certificate_status,
    encode_key_share_sh,
    encode_u16,
    encode_u16_list,
)
from .keyschedule import KeySchedule, Secret, finished_verify_data, resumption_psk
from .messages import (
    HELLO_RETRY_REQUEST_RANDOM,
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
from .state import EarlyDataStatus, HandshakeKind, Negotiated, State
from .status import VerificationResult
from .suites import (
    CIPHER_SUITES,
    SIGNATURE_SCHEMES,
    SchemeInfo,
    SuiteInfo,
    key_kind,
    scheme_fits_key,
    server_key_exchange,
    sign,
)
from .tickets import SessionState
from .transcript import Transcript
from .verify import check_chain, enforce_verification

if TYPE_CHECKING:
    # Annotations only: triotls.config imports triotls.engine (enums, suites),
    # so a runtime import here would be circular when config loads first.
    from ..config import CertifiedKey, ServerConfig

__all__ = ["ServerConnection"]

SERVER_SIGNATURE_CONTEXT: Final = b" " * 64 + b"TLS 1.3, server CertificateVerify\x00"


@final
class ServerConnection(Connection):
    """The server end of one TLS 1.3 connection (sans-IO).

    Args:
        config: the server settings.
        key_log: receives secrets for debugging; defaults to ``config.key_log``.
    """

    is_client = False

    def __init__(self, config: ServerConfig, *, key_log: KeyLog | None = None) -> None:
        super().__init__(config.max_handshake_message_size, key_log or config.key_log)
        self.config = config
        self._state = ExpectClientHello(_ServerHandshake(config=config))

    def start_handshake(self) -> None:
        """Nothing to do: the server waits for the ClientHello."""

    @property
    def may_receive_early_data(self) -> bool:
        """Whether 0-RTT data may still arrive: before the ClientHello, or until EndOfEarlyData."""
        return isinstance(self._state, (ExpectClientHello, ExpectEndOfEarlyData))

    def request_client_certificate(self) -> None:
        """Queue a post-handshake CertificateRequest (RFC 8446 §4.6.2).

        The client's answer arrives from ``receive_data`` as a
        :class:`~triotls.engine.events.ClientCertificateReceived` event,
        possibly after more application data.

        Raises:
            UsageError: the handshake is not complete, the connection is
                closed, the client did not offer post_handshake_auth, the
                config has no ``client_trust``, or an earlier request is
                still unanswered.
        """
        self._guard(self._request_client_certificate, None)

    def _request_client_certificate(self, _: None) -> None:
        state = self._state
        if self.closed:
            raise UsageError("cannot request a client certificate after close()")
        if isinstance(state, _AwaitingPostHandshakeAnswer):
            raise UsageError(
                "a client certificate request is still unanswered; wait for "
                "ClientCertificateReceived before sending another"
            )
        if not isinstance(state, ServerTraffic):
            raise UsageError("a client certificate can only be requested after the handshake")
        self._state = state.request_certificate(self)


@dataclass(kw_only=True, eq=False)
class _ServerHandshake:
    """What the server states share while the handshake runs."""

    config: ServerConfig
    transcript: Transcript = field(default_factory=Transcript)
    client_hello: ClientHello | None = None
    hello_retry: bool = False
    # The cookie our HelloRetryRequest carried, which the second ClientHello
    # must echo (RFC 8446 §4.2.2).
    retry_cookie: bytes | None = None
    suite: SuiteInfo | None = None
    group: int | None = None
    schedule: KeySchedule | None = None
    client_secret: Secret | None = None
    client_app_secret: Secret | None = None
    certified: CertifiedKey | None = None
    scheme: SchemeInfo | None = None
    # The ClientHello's signature_algorithms, None when it sent none.
    client_schemes: tuple[int, ...] | None = None
    alpn_protocol: str | None = None
    server_name: str | None = None
    sent_ccs: bool = False
    resumed: bool = False
    psk_mode: PskKeyExchangeMode | None = None  # how a resumption made its keys
    peer_chain: tuple[x509.Certificate, ...] = ()
    verification: VerificationResult | None = None
    # Tickets wait for the client's Finished when a CertificateRequest went out.
    tickets_deferred: bool = False
    # The client sent status_request for OCSP (RFC 6066 §8).
    ocsp_requested: bool = False
    early_data: EarlyDataStatus = EarlyDataStatus.NOT_OFFERED

    def random_bytes(self, n: int) -> bytes:
        return self.config.random.random_bytes(n)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Choice:
    """What the server picked from one ClientHello.

    ``group`` is None when no (EC)DHE key exchange is possible, for the
    reason ``no_key_exchange`` holds: only a psk_ke resumption can go on,
    and that error is raised if none does. With a group and no ``share``,
    a HelloRetryRequest is needed.
    """

    suite: SuiteInfo
    group: int | None
    share: KeyShareEntry | None
    no_key_exchange: LocalAlert | None = None


@final
class ExpectClientHello(State):
    """Waiting for the first ClientHello."""

    expects: ClassVar = frozenset({HandshakeType.CLIENT_HELLO})

    def __init__(self, hs: _ServerHandshake) -> None:
        self._hs = hs

    def handle(self, msg: HandshakeMessage, conn: Connection) -> State:
        hs = self._hs
        conn.allow_change_cipher_spec(True)
        ch = ClientHello.decode(msg.body)
        _check_client_hello(ch)
        choice = _choose(hs, ch, required_group=None)
        hs.client_hello = ch
        _negotiate_extensions(hs, ch, conn)
        early_offered = ExtensionType.EARLY_DATA in ch.extensions
        if early_offered:
            decode_empty(ch.extensions[ExtensionType.EARLY_DATA], "early_data")
            hs.early_data = EarlyDataStatus.REJECTED
        hs.transcript.set_hash(choice.suite.hash_name)
        mode = _psk_mode(hs, ch, choice)
        resumption = None
        # psk_dhe_ke without a usable share waits for the second ClientHello,
        # whose binder covers the retry; psk_ke needs no share, so no retry.
        if mode is PskKeyExchangeMode.PSK_KE or choice.share is not None:
            resumption = _accept_psk(hs, ch, msg.raw, choice.suite, mode)
        if ExtensionType.PRE_SHARED_KEY not in ch.extensions or (
            resumption is None and choice.share is not None
        ):
            # A full handshake (now, or after a retry without a PSK offer):
            # a certificate is needed, and its absence is best said at once.
            _choose_certificate_for(hs)
        if resumption is None and choice.share is None:
            if choice.no_key_exchange is not None:
                raise choice.no_key_exchange
            if early_offered:
                conn.reject_early_data()  # RFC 8446 §4.2.10: never after a retry
            return _send_hello_retry_request(hs, ch, msg, choice, conn)
        if early_offered and resumption is not None and _accept_early_data(hs, resumption, choice):
            hs.early_data = EarlyDataStatus.ACCEPTED
        elif early_offered:
            conn.reject_early_data()
        hs.transcript.add(msg.raw)
        return _send_server_flight(hs, ch, choice, conn, resumption)


def _choose_certificate_for(hs: _ServerHandshake) -> None:
    """Pick the certificate and scheme of a full handshake (a resumed one sends none)."""
    if hs.client_schemes is None:
        # RFC 8446 §4.2.3: a server authenticating with a certificate needs it.
        raise MissingExtension("the ClientHello has no signature_algorithms")
    hs.certified, hs.scheme = _choose_certificate(hs.config, hs.server_name, hs.client_schemes)


@final
class ExpectSecondClientHello(State):
    """Waiting for the ClientHello that answers our HelloRetryRequest."""

    expects: ClassVar = frozenset({HandshakeType.CLIENT_HELLO})

    def __init__(self, hs: _ServerHandshake, first: _Choice) -> None:
        self._hs = hs
        self._first = first

    def handle(self, msg: HandshakeMessage, conn: Connection) -> State:
        hs = self._hs
        assert hs.client_hello is not None  # the first ClientHello
        ch = ClientHello.decode(msg.body)
        _check_client_hello(ch)
        first = hs.client_hello
        # RFC 8446 §4.1.2: the second ClientHello repeats the first except for
        # key_share, early_data (removed), cookie (the retry's, echoed),
        # pre_shared_key (ages and binders recomputed) and padding.
        if ch.cipher_suites != first.cipher_suites or ch.random != first.random:
            raise IllegalParameter("the second ClientHello changed its random or cipher suites")
        if ch.legacy_session_id != first.legacy_session_id:
            raise IllegalParameter("the second ClientHello changed its legacy_session_id")
        if ExtensionType.EARLY_DATA in ch.extensions:
            raise IllegalParameter("early_data in the ClientHello after a HelloRetryRequest")
        changed = sorted(
            f"{ext:#06x}"
            for ext in set(first.extensions) | set(ch.extensions)
            if ext not in _MAY_CHANGE_AFTER_RETRY
            and first.extensions.get(ext) != ch.extensions.get(ext)
        )
        if changed:
            raise IllegalParameter(
                "the second ClientHello changed extensions it must repeat: " + ", ".join(changed)
            )
        if ch.extensions.get(ExtensionType.COOKIE) != hs.retry_cookie:
            raise IllegalParameter(
                "the second ClientHello's cookie is not the one the HelloRetryRequest sent"
            )
        choice = _choose(hs, ch, required_group=self._first.group)
        if choice.suite.suite != self._first.suite.suite:
            raise IllegalParameter("the second ClientHello led to a different cipher suite")
        if choice.share is None:
            raise IllegalParameter(
                f"the second ClientHello has no key share for group {self._first.group:#06x}, "
                "which the HelloRetryRequest asked for"
            )
        hs.client_hello = ch
        _negotiate_extensions(hs, ch, conn)
        mode = _psk_mode(hs, ch, choice)
        resumption = _accept_psk(hs, ch, msg.raw, choice.suite, mode)
        if resumption is None and hs.certified is None:
            _choose_certificate_for(hs)
        hs.transcript.add(msg.raw)
        return _send_server_flight(hs, ch, choice, conn, resumption)


# RFC 8446 §4.1.2: what a second ClientHello may change (early_data must go).
_MAY_CHANGE_AFTER_RETRY: Final = frozenset(
    {
        ExtensionType.KEY_SHARE,
        ExtensionType.EARLY_DATA,
        ExtensionType.COOKIE,
        ExtensionType.PRE_SHARED_KEY,
        ExtensionType.PADDING,
    }
)


def _check_client_hello(ch: ClientHello) -> None:
    if ch.legacy_version <= 0x0300:
        # RFC 8446 appendix D.5: SSL 3.0 (or older) in legacy_version.
        raise ProtocolVersionError(
            f"ClientHello.legacy_version is {ch.legacy_version:#06x} (SSL 3.0 or older)"
        )
    versions_data = ch.extensions.get(ExtensionType.SUPPORTED_VERSIONS)
    versions = decode_supported_versions_ch(versions_data) if versions_data is not None else ()
    if 0x0304 not in versions:
        offered = ", ".join(f"{v:#06x}" for v in versions) or f"{ch.legacy_version:#06x}"
        raise ProtocolVersionError(
            f"the client does not offer TLS 1.3 (it offers {offered}); this server speaks "
            "TLS 1.3 only"
        )
    if ch.legacy_compression_methods != b"\x00":
        # RFC 8446 §4.1.2: exactly one compression method, null.
        raise IllegalParameter("a TLS 1.3 ClientHello must offer only null compression")
    post_handshake_auth = ch.extensions.get(ExtensionType.POST_HANDSHAKE_AUTH)
    if post_handshake_auth is not None:
        decode_empty(post_handshake_auth, "post_handshake_auth")  # RFC 8446 §4.2.6
    modes = ch.extensions.get(ExtensionType.PSK_KEY_EXCHANGE_MODES)
    if modes is not None:
        # Decoded later only when a PSK is offered or tickets go out: a
        # malformed one is refused here, before any flight.
        decode_psk_modes(modes)


def _choose(hs: _ServerHandshake, ch: ClientHello, *, required_group: int | None) -> _Choice:
    cfg = hs.config
    suite_id = next((s for s in cfg.cipher_suites if s in ch.cipher_suites), None)
    if suite_id is None:
        raise HandshakeFailure(
            "no cipher suite in common: the client offered "
            + ", ".join(f"{s:#06x}" for s in ch.cipher_suites)
        )
    if ExtensionType.PRE_SHARED_KEY in ch.extensions and (
        ExtensionType.PSK_KEY_EXCHANGE_MODES not in ch.extensions
    ):
        raise MissingExtension("pre_shared_key offered without psk_key_exchange_modes")
    groups_data = ch.extensions.get(ExtensionType.SUPPORTED_GROUPS)
    shares_data = ch.extensions.get(ExtensionType.KEY_SHARE)
    if (
        ExtensionType.SIGNATURE_ALGORITHMS not in ch.extensions
        and ExtensionType.PRE_SHARED_KEY not in ch.extensions
    ):
        # RFC 8446 §9.2: without a PSK it is mandatory (with one, only a full
        # handshake needs it: _choose_certificate_for).
        raise MissingExtension("the ClientHello has no signature_algorithms")
    suite = CIPHER_SUITES[suite_id]
    if (
        groups_data is None
        and shares_data is None
        and required_group is None
        and ExtensionType.PRE_SHARED_KEY in ch.extensions
    ):
        # RFC 8446 §9.2: with a PSK both may be left out, for psk_ke.
        return _Choice(
            suite=suite,
            group=None,
            share=None,
            no_key_exchange=MissingExtension(
                "the ClientHello has neither supported_groups nor key_share, and its PSK was "
                "not accepted for a psk_ke resumption; a full handshake needs both "
                "(RFC 8446 §9.2)"
            ),
        )
    if groups_data is None or shares_data is None:
        # RFC 8446 §9.2: without a PSK both are mandatory, and one calls for the other.
        raise MissingExtension("the ClientHello lacks supported_groups or key_share")
    client_groups = decode_u16_list(groups_data, "supported_groups")
    shares = decode_key_share_ch(shares_data)
    for share in shares:
        if share.group not in client_groups:
            raise IllegalParameter(
                f"key_share for group {share.group:#06x}, which supported_groups does not list"
            )
    by_group = {share.group: share for share in shares}
    common = [g for g in cfg.groups if g in client_groups]
    if required_group is not None:
        retry_share = by_group.get(required_group)
        if len(shares) != 1:
            retry_share = None
        return _Choice(suite=suite, group=required_group, share=retry_share)
    if not common:
        # Fatal unless a psk_ke resumption goes on without a key exchange.
        refusal = HandshakeFailure(
            "no key exchange group in common: the client supports "
            + ", ".join(f"{g:#06x}" for g in client_groups)
        )
        return _Choice(suite=suite, group=None, share=None, no_key_exchange=refusal)
    # Prefer a group the client already sent a share for: a retry costs a
    # round trip, which buys nothing when both groups are acceptable.
    for group in common:
        if group in by_group:
            return _Choice(suite=suite, group=group, share=by_group[group])
    return _Choice(suite=suite, group=common[0], share=None)


def _negotiate_extensions(hs: _ServerHandshake, ch: ClientHello, conn: Connection) -> None:
    cfg = hs.config
    schemes_data = ch.extensions.get(ExtensionType.SIGNATURE_ALGORITHMS)
    # Decoded (so checked) whether a full handshake uses it or not.
    hs.client_schemes = (
        decode_u16_list(schemes_data, "signature_algorithms") if schemes_data is not None else None
    )
    sni = ch.extensions.get(ExtensionType.SERVER_NAME)
    hs.server_name = decode_server_name(sni) if sni is not None else None
    status_request = ch.extensions.get(ExtensionType.STATUS_REQUEST)
    hs.ocsp_requested = status_request is not None and decode_status_request(status_request)
    hs.alpn_protocol = None
    alpn = ch.extensions.get(ExtensionType.APPLICATION_LAYER_PROTOCOL_NEGOTIATION)
    if alpn is not None and cfg.alpn_protocols:
        offered = decode_alpn(alpn)
        for proto in cfg.alpn_protocols:
            if proto.encode() in offered:
                hs.alpn_protocol = proto
                break
        else:
            raise NoApplicationProtocol(
                "the client offered ALPN "
                + ", ".join(repr(p) for p in offered)
                + f" and this server accepts only {list(cfg.alpn_protocols)}"
            )
    limit = ch.extensions.get(ExtensionType.RECORD_SIZE_LIMIT)
    if limit is not None:
        conn.set_peer_record_limit(decode_record_size_limit(limit))


def _choose_certificate(
    cfg: ServerConfig, server_name: str | None, client_schemes: tuple[int, ...]
) -> tuple[CertifiedKey, SchemeInfo]:
    """The certificate and scheme to sign with: the resolver's pick, else the first that fits."""
    if cfg.certificate_resolver is not None:
        resolved = cfg.certificate_resolver(server_name, client_schemes)
        if resolved is not None and not hasattr(resolved, "private_key"):
            raise InternalError(
                f"the certificate_resolver returned {type(resolved).__name__}, not a "
                "CertifiedKey or None"
            )
        if resolved is not None:
            info = _fitting_scheme(cfg, resolved, client_schemes)
            if info is None:
                raise HandshakeFailure(
                    f"the certificate_resolver chose a certificate for {server_name!r} whose key "
                    "signs with no scheme the client accepts ("
                    + ", ".join(f"{s:#06x}" for s in client_schemes)
                    + ")"
                )
            return resolved, info
    for certified in cfg.certificates:
        info = _fitting_scheme(cfg, certified, client_schemes)
        if info is not None:
            return certified, info
    raise HandshakeFailure(
        "none of the server's certificates can sign with a scheme the client accepts ("
        + ", ".join(f"{s:#06x}" for s in client_schemes)
        + ")"
    )


def _fitting_scheme(
    cfg: ServerConfig, certified: CertifiedKey, client_schemes: tuple[int, ...]
) -> SchemeInfo | None:
    kind = key_kind(certified.private_key, is_pss_key=certified.is_pss_key)
    for scheme in cfg.signature_schemes:
        info = SIGNATURE_SCHEMES[scheme]
        if scheme in client_schemes and scheme_fits_key(info, kind):
            return info
    return None


def _send_hello_retry_request(
    hs: _ServerHandshake, ch: ClientHello, msg: HandshakeMessage, choice: _Choice, conn: Connection
) -> State:
    assert choice.group is not None  # callers raise no_key_exchange instead
    hs.hello_retry = True
    hs.transcript.set_hash(choice.suite.hash_name)
    hs.transcript.add(msg.raw)
    hs.transcript.roll_up_for_hello_retry()
    hrr = ServerHello(
        random=HELLO_RETRY_REQUEST_RANDOM,
        legacy_session_id_echo=ch.legacy_session_id,
        cipher_suite=choice.suite.suite,
        extensions={
            ExtensionType.KEY_SHARE: encode_u16(choice.group),
            ExtensionType.SUPPORTED_VERSIONS: encode_u16(0x0304),
        },
    )
    raw = frame(HandshakeType.SERVER_HELLO, hrr.encode())
    # Ours sends none, but what the second ClientHello must echo is what went out.
    hs.retry_cookie = hrr.extensions.get(ExtensionType.COOKIE)
    hs.transcript.add(raw)
    conn.queue_handshake(raw)
    if ch.legacy_session_id:
        # RFC 8446 appendix D.4: in compatibility mode, CCS follows the first
        # server message.
        conn.queue_change_cipher_spec()
        hs.sent_ccs = True
    return ExpectSecondClientHello(hs, choice)


def _send_server_flight(
    hs: _ServerHandshake,
    ch: ClientHello,
    choice: _Choice,
    conn: Connection,
    resumption: _Resumption | None,
) -> State:
    # A full handshake chose its certificate (_choose_certificate_for).
    assert resumption is not None or (hs.certified is not None and hs.scheme is not None)
    suite = choice.suite
    hash_name = suite.hash_name
    sh_exts: dict[int, bytes] = {}
    shared_secret: bytes | None = None  # psk_ke: none (RFC 8446 §7.1)
    if resumption is None or resumption.mode is PskKeyExchangeMode.PSK_DHE_KE:
        # Callers retry, or raise no_key_exchange, when there is no share.
        assert choice.share is not None and choice.group is not None
        our_share, shared_secret = server_key_exchange(
            choice.group, choice.share.key_exchange, hs.random_bytes
        )
        sh_exts[ExtensionType.KEY_SHARE] = encode_key_share_sh(
            KeyShareEntry(group=choice.group, key_exchange=our_share)
        )
        hs.group = choice.group
    hs.suite = suite
    hs.resumed = resumption is not None
    hs.psk_mode = resumption.mode if resumption is not None else None
    early_secret: Secret | None = None
    if resumption is not None and hs.early_data is EarlyDataStatus.ACCEPTED:
        # RFC 8446 §7.1: client_early_traffic_secret hashes the ClientHello alone.
        early_secret = resumption.schedule.client_early_traffic_secret(hs.transcript.digest())
        conn.log_secret("CLIENT_EARLY_TRAFFIC_SECRET", ch.random, early_secret)
    if resumption is not None:
        hs.peer_chain = resumption.client_chain
        hs.verification = resumption.client_verification
    sh_exts[ExtensionType.SUPPORTED_VERSIONS] = encode_u16(0x0304)
    if resumption is not None:
        sh_exts[ExtensionType.PRE_SHARED_KEY] = encode_u16(resumption.index)
    sh = ServerHello(
        random=hs.random_bytes(32),
        legacy_session_id_echo=ch.legacy_session_id,
        cipher_suite=suite.suite,
        extensions=sh_exts,
    )
    raw = frame(HandshakeType.SERVER_HELLO, sh.encode())
    hs.transcript.add(raw)
    conn.queue_handshake(raw)
    if ch.legacy_session_id and not hs.sent_ccs:
        conn.queue_change_cipher_spec()
        hs.sent_ccs = True
    schedule = KeySchedule(hash_name) if resumption is None else resumption.schedule
    hs.schedule = schedule
    conn.set_suite(suite, schedule)
    client_hs, server_hs = schedule.handshake(shared_secret, hs.transcript.digest())
    conn.log_secret("CLIENT_HANDSHAKE_TRAFFIC_SECRET", ch.random, client_hs)
    conn.log_secret("SERVER_HANDSHAKE_TRAFFIC_SECRET", ch.random, server_hs)
    hs.client_secret = client_hs
    conn.install_write_key(server_hs)
    if early_secret is None:
        conn.install_read_key(client_hs, "the client's encrypted handshake")
    else:
        # The client's 0-RTT records come first, then its EndOfEarlyData.
        conn.install_read_key(early_secret, "the client's early data")

    ee_exts = encrypted_extensions(hs, ch, conn)
    _emit(
        hs,
        conn,
        HandshakeType.ENCRYPTED_EXTENSIONS,
        EncryptedExtensions(extensions=ee_exts).encode(),
    )

    # RFC 8446 §4.3.2: a server authenticating with a resumption PSK must not
    # send a CertificateRequest in the main handshake.
    if resumption is None and hs.config.client_auth != "none":
        _emit(hs, conn, HandshakeType.CERTIFICATE_REQUEST, certificate_request(hs.config).encode())
        hs.tickets_deferred = True
    if resumption is None:
        assert hs.certified is not None and hs.scheme is not None  # see above
        # RFC 8446 §2.2: a resumed handshake authenticates with the PSK alone.
        _emit(hs, conn, HandshakeType.CERTIFICATE, _certificate_body(hs, hs.certified))
        signature = sign(
            hs.certified.private_key, hs.scheme, SERVER_SIGNATURE_CONTEXT + hs.transcript.digest()
        )
        cv = CertificateVerify(algorithm=hs.scheme.scheme, signature=signature)
        _emit(hs, conn, HandshakeType.CERTIFICATE_VERIFY, cv.encode())
    verify_data = finished_verify_data(hash_name, server_hs, hs.transcript.digest())
    _emit(hs, conn, HandshakeType.FINISHED, Finished(verify_data=verify_data).encode())
    client_app, server_app = schedule.application(hs.transcript.digest())
    conn.log_secret("CLIENT_TRAFFIC_SECRET_0", ch.random, client_app)
    conn.log_secret("SERVER_TRAFFIC_SECRET_0", ch.random, server_app)
    exporter = schedule.exporter_master_secret
    assert exporter is not None  # derived with the application secrets
    conn.log_secret("EXPORTER_SECRET", ch.random, exporter)
    hs.client_app_secret = client_app
    conn.install_write_key(server_app)
    if hs.tickets_deferred:
        return ExpectClientCertificate(hs)
    # The client's EndOfEarlyData (when 0-RTT was accepted) and Finished are
    # fully determined by now, so tickets can be computed ahead of them.
    if _may_issue_tickets(hs):
        rest = _END_OF_EARLY_DATA if early_secret is not None else b""
        client_finished = frame(
            HandshakeType.FINISHED,
            finished_verify_data(hash_name, client_hs, hs.transcript.digest_with(rest)),
        )
        transcript_hash = hs.transcript.digest_with(rest + client_finished)
        _issue_tickets(hs, conn, schedule.resumption_master_secret(transcript_hash))
    if early_secret is not None:
        assert resumption is not None  # 0-RTT is only accepted with a PSK
        conn.accept_early_data(resumption.state.max_early_data_size)
        return ExpectEndOfEarlyData(hs)
    return ExpectClientFinished(hs)


#: EndOfEarlyData (RFC 8446 §4.5): an empty handshake message.
_END_OF_EARLY_DATA: Final = frame(HandshakeType.END_OF_EARLY_DATA, b"")


@final
class ExpectEndOfEarlyData(State):
    """Reading the client's 0-RTT data until its EndOfEarlyData (RFC 8446 §4.5)."""

    expects: ClassVar = frozenset({HandshakeType.END_OF_EARLY_DATA})

    def __init__(self, hs: _ServerHandshake) -> None:
        self._hs = hs

    def handle(self, msg: HandshakeMessage, conn: Connection) -> State:
        hs = self._hs
        assert hs.client_secret is not None  # set in the flight
        if msg.body:
            raise DecodeError(f"EndOfEarlyData has a {len(msg.body)}-byte body; it is empty")
        hs.transcript.add(msg.raw)
        conn.end_early_data()
        conn.install_read_key(hs.client_secret, "the client's encrypted handshake")
        return ExpectClientFinished(hs)


def _certificate_body(hs: _ServerHandshake, certified: CertifiedKey) -> bytes:
    """Our Certificate message's body, encoded once per chain and OCSP staple.

    The chain is the same on every full handshake, and the staple (the one
    thing in the message that can change, a callback's answer) is the key.
    """
    staple = certified.current_ocsp_response() if hs.ocsp_requested else None
    cache = certified._certificate_messages
    cached = cache.get(staple)
    chain_der = certified.chain_der
    if cached is not None and cached[0] is chain_der:
        return cached[1]
    body = Certificate(certificate_list=_certificate_entries(chain_der, staple)).encode()
    if len(cache) >= 2:
        # At most the bare chain and the current staple: a callback's staples
        # change over time, and the old ones are never needed again.
        cache.clear()
    cache[staple] = (chain_der, body)
    return body


def _certificate_entries(
    chain_der: tuple[bytes, ...], staple: bytes | None
) -> tuple[CertificateEntry, ...]:
    """The chain's entries, with ``staple`` (the OCSP response) on the leaf's.

    RFC 8446 §4.4.2.1 carries the response in the leaf's CertificateEntry;
    RFC 8446 §4.2 forbids sending it to a client that did not ask, so the
    caller passes None then.
    """
    entries = [CertificateEntry(cert_data=der) for der in chain_der]
    if staple is not None:
        entries[0] = CertificateEntry(
            cert_data=entries[0].cert_data,
            extensions={ExtensionType.STATUS_REQUEST: encode_certificate_status(staple)},
        )
    return tuple(entries)


def certificate_request(cfg: ServerConfig, context: bytes = b"") -> CertificateRequest:
    """Our CertificateRequest (RFC 8446 §4.3.2): the schemes and roots we accept.

    The context is empty, as it must be in the main handshake, unless
    ``context`` gives one (post-handshake authentication). The
    certificate_authorities extension (RFC 8446 §4.2.4) lists the subject
    names of ``client_trust``'s roots, so a client holding several
    certificates can pick one that will verify; when those names exceed
    :data:`MAX_CERTIFICATE_AUTHORITIES_SIZE` the extension is left out
    (a partial list would steer clients away from the roots left off).
    """
    assert cfg.client_trust is not None  # ServerConfig refuses client_auth without it
    exts: dict[int, bytes] = {
        ExtensionType.SIGNATURE_ALGORITHMS: encode_u16_list(cfg.signature_schemes),
    }
    names = tuple(
        dict.fromkeys(root.subject.public_bytes() for root in cfg.client_trust.certificates)
    )
    if sum(2 + len(name) for name in names) <= MAX_CERTIFICATE_AUTHORITIES_SIZE:
        exts[ExtensionType.CERTIFICATE_AUTHORITIES] = encode_certificate_authorities(names)
    return CertificateRequest(certificate_request_context=context, extensions=exts)


#: Largest certificate_authorities list sent, in bytes; above it none is sent.
MAX_CERTIFICATE_AUTHORITIES_SIZE: Final = 2**14


@dataclass(frozen=True, slots=True, kw_only=True)
class _Resumption:
    """A PSK the server accepted: which identity, and its key schedule."""

    index: int
    mode: PskKeyExchangeMode
    schedule: KeySchedule
    state: SessionState
    identity: bytes
    age_error: float  # |client's idea of the ticket age - ours|, seconds
    client_chain: tuple[x509.Certificate, ...] = ()
    client_verification: VerificationResult | None = None


#: Offered identities looked at; more would only cost decryptions.
_MAX_PSK_IDENTITIES: Final = 4
#: Allowed gap between the client's and our idea of a ticket's age.
_TICKET_AGE_TOLERANCE: Final = 10.0


def _psk_mode(hs: _ServerHandshake, ch: ClientHello, choice: _Choice) -> PskKeyExchangeMode | None:
    """The mode to resume with if the PSK is accepted (RFC 8446 §4.2.9); None: no resumption.

    The first of the config's ``psk_key_exchange_modes`` that the client
    also offers, skipping psk_dhe_ke when no (EC)DHE is possible at all.
    """
    if ExtensionType.PRE_SHARED_KEY not in ch.extensions:
        return None
    modes_data = ch.extensions.get(ExtensionType.PSK_KEY_EXCHANGE_MODES)
    if modes_data is None:
        raise MissingExtension("pre_shared_key offered without psk_key_exchange_modes")
    offered = decode_psk_modes(modes_data)
    for name in hs.config.psk_key_exchange_modes:
        mode = PskKeyExchangeMode[name.upper()]
        if mode in offered and (mode is PskKeyExchangeMode.PSK_KE or choice.group is not None):
            return mode
    return None


def _accept_psk(
    hs: _ServerHandshake,
    ch: ClientHello,
    raw: bytes,
    suite: SuiteInfo,
    mode: PskKeyExchangeMode | None,
) -> _Resumption | None:
    """Decide whether to resume (RFC 8446 §4.2.11) in ``mode``; None means a full handshake.

    Anything that makes a ticket unusable (unknown key, expired, another
    server name, ALPN or hash), or no mode in common (``mode`` None), just
    means a full handshake; only a wrong binder on the identity we would
    accept is fatal (decrypt_error).
    """
    offer_data = ch.extensions.get(ExtensionType.PRE_SHARED_KEY)
    if offer_data is None or mode is None:
        return None
    offer = decode_pre_shared_key_ch(offer_data)
    now = hs.config.clock.now()
    for index, identity in enumerate(offer.identities[:_MAX_PSK_IDENTITIES]):
        state = hs.config.ticket_keys.open(identity.identity)
        if state is None or state.cipher_suite not in CIPHER_SUITES:
            continue
        if CIPHER_SUITES[state.cipher_suite].hash_name != suite.hash_name:
            continue
        server_age = now - state.created_at
        if not -_TICKET_AGE_TOLERANCE <= server_age <= state.lifetime:
            continue
        client_age = ((identity.obfuscated_ticket_age - state.ticket_age_add) % 2**32) / 1000
        if abs(client_age - server_age) > _TICKET_AGE_TOLERANCE + state.lifetime * 0.01:
            continue
        if state.server_name != hs.server_name or state.alpn_protocol != hs.alpn_protocol:
            continue
        identity_check = _check_resumed_client(hs, state)
        if identity_check is None:
            continue
        client_chain, client_verification = identity_check
        schedule = KeySchedule(suite.hash_name, state.psk)
        truncated = raw[: len(raw) - offer.binders_length]
        expected = finished_verify_data(
            suite.hash_name, schedule.binder_key(), hs.transcript.digest_with(truncated)
        )
        if not constant_time_equal(expected, offer.binders[index]):
            raise DecryptError("the PSK binder of the offered ticket does not verify")
        return _Resumption(
            index=index,
            mode=mode,
            schedule=schedule,
            state=state,
            identity=identity.identity,
            age_error=abs(client_age - server_age),
            client_chain=client_chain,
            client_verification=client_verification,
        )
    return None


#: Largest gap between the client's and our idea of a ticket's age for which
#: 0-RTT is accepted (RFC 8446 §8.3); a copy of the ClientHello fails this
#: check by itself twice this long after the original arrived.
EARLY_DATA_AGE_WINDOW: Final = 10.0


def _accept_early_data(hs: _ServerHandshake, resumption: _Resumption, choice: _Choice) -> bool:
    """Whether to accept the client's 0-RTT data (RFC 8446 §4.2.10, §8)."""
    cfg = hs.config
    state = resumption.state
    if not (cfg.max_early_data_size and state.max_early_data_size):
        return False  # off here, or the ticket did not allow it
    if state.max_early_data_size > cfg.max_early_data_size:
        # A ticket from before the limit was lowered (or from another server
        # of the fleet): its larger promise is refused, not honoured.
        return False
    if resumption.index != 0 or state.cipher_suite != choice.suite.suite:
        return False  # §4.2.10: the first PSK, with the ticket's own suite
    if resumption.age_error >= EARLY_DATA_AGE_WINDOW:
        # §8.3: too old (or too new) to be a fresh ClientHello. Strictly
        # inside the window: a copy then passes this check only less than
        # 2 * EARLY_DATA_AGE_WINDOW after the original, while the guard
        # still holds its entry (kept for exactly that long).
        return False
    guard = cfg.early_data_replay_guard
    assert guard is not None  # ServerConfig makes one when 0-RTT is enabled
    key = hashlib.sha256(b"triotls 0-RTT\x00" + resumption.identity).digest()
    # Recorded last: an offer refused for another reason uses up nothing.
    return guard.first_use(key, cfg.clock.now(), 2 * EARLY_DATA_AGE_WINDOW)


def _check_resumed_client(
    hs: _ServerHandshake, state: SessionState
) -> tuple[tuple[x509.Certificate, ...], VerificationResult | None] | None:
    """The client identity a ticket carries, verified again; None: do not resume.

    A resumed handshake has no CertificateRequest (RFC 8446 §4.3.2), so the
    ticket stands for the client's certificate. With ``client_auth="required"``
    a ticket without one is not resumed (the full handshake then asks for a
    certificate); a chain the ticket carries is verified again with today's
    clock, trust and callback, and a chain that no longer passes means a full
    handshake too. With ``client_auth="none"`` the stored chain is ignored.
    """
    cfg = hs.config
    if cfg.client_auth == "none":
        return (), None
    if not state.client_chain:
        return None if cfg.client_auth == "required" else ((), None)
    assert cfg.client_trust is not None  # ServerConfig refuses client_auth without it
    try:
        chain = tuple(x509.load_der_x509_certificate(der) for der in state.client_chain)
    except ValueError:
        return None  # our own sealed bytes; unparsable only if cryptography changed
    result = check_chain(
        chain,
        cfg.client_trust,
        purpose="client",
        server_name=None,
        now=cfg.clock.now(),
        max_depth=cfg.client_max_chain_depth,
    )
    if not result.is_valid:
        return None
    try:
        enforce_verification(result, mode="required", callback=cfg.client_verify_callback)
    except CertificateVerificationError:
        return None
    return chain, result


def _may_issue_tickets(hs: _ServerHandshake) -> bool:
    """Whether tickets go out: the config issues some, with a mode both ends allow.

    Checked before the resumption secret is derived, which costs HMACs.
    """
    cfg = hs.config
    assert hs.client_hello is not None  # set before any flight
    modes = hs.client_hello.extensions.get(ExtensionType.PSK_KEY_EXCHANGE_MODES)
    if not cfg.ticket_count or modes is None:
        return False
    offered = decode_psk_modes(modes)
    return any(PskKeyExchangeMode[name.upper()] in offered for name in cfg.psk_key_exchange_modes)


def _issue_tickets(hs: _ServerHandshake, conn: Connection, secret: Secret) -> None:
    """Send NewSessionTickets (RFC 8446 §4.6.1) derived from resumption ``secret``.

    Without a CertificateRequest they go with our first flight, not after
    the client's Finished, so a protocol where only the client talks never
    needs the server to write later (trio issue #819); the client's Finished
    is fully determined by the transcript, so the resumption secret can be
    computed ahead of it, as OpenSSL does. With one, they follow the
    client's Finished (see the module docstring). Callers check
    :func:`_may_issue_tickets` first.
    """
    cfg = hs.config
    client_chain: tuple[bytes, ...] = ()
    if cfg.client_auth != "none" and hs.verification is not None and hs.verification.is_valid:
        client_chain = tuple(cert.public_bytes(Encoding.DER) for cert in hs.peer_chain)
        if sum(len(der) for der in client_chain) > _MAX_TICKET_CLIENT_CHAIN:
            # Too big to carry; a ticket without it would resume unauthenticated.
            return
    assert hs.suite is not None  # set in the flight
    hash_name = hs.suite.hash_name
    now = cfg.clock.now()
    early_extension: dict[int, bytes] = {}
    if cfg.max_early_data_size:
        # RFC 8446 §4.6.1: the ticket may bring this much 0-RTT data.
        early_extension[ExtensionType.EARLY_DATA] = cfg.max_early_data_size.to_bytes(4, "big")
    for counter in range(cfg.ticket_count):
        nonce = counter.to_bytes(1, "big")
        age_add = int.from_bytes(hs.random_bytes(4), "big")
        state = SessionState(
            cipher_suite=hs.suite.suite,
            psk=resumption_psk(hash_name, secret, nonce),
            created_at=now,
            lifetime=cfg.ticket_lifetime,
            ticket_age_add=age_add,
            alpn_protocol=hs.alpn_protocol,
            server_name=hs.server_name,
            client_chain=client_chain,
            max_early_data_size=cfg.max_early_data_size,
        )
        ticket = NewSessionTicket(
            ticket_lifetime=cfg.ticket_lifetime,
            ticket_age_add=age_add,
            ticket_nonce=nonce,
            ticket=cfg.ticket_keys.seal(state, hs.random_bytes(12)),
            extensions=early_extension,
        )
        conn.queue_handshake(frame(HandshakeType.NEW_SESSION_TICKET, ticket.encode()))


#: Largest client chain (DER bytes) a ticket carries; beyond it no ticket is sent.
_MAX_TICKET_CLIENT_CHAIN: Final = 2**14


def encrypted_extensions(
    hs: _ServerHandshake, ch: ClientHello, conn: Connection
) -> dict[int, bytes]:
    """The server's EncryptedExtensions: answers to what the client offered."""
    exts: dict[int, bytes] = {}
    if hs.alpn_protocol is not None:
        exts[ExtensionType.APPLICATION_LAYER_PROTOCOL_NEGOTIATION] = encode_alpn(
            [hs.alpn_protocol.encode()]
        )
    limit = hs.config.record_size_limit
    if ExtensionType.RECORD_SIZE_LIMIT in ch.extensions and limit is not None:
        exts[ExtensionType.RECORD_SIZE_LIMIT] = encode_u16(limit)
        conn.set_own_record_limit(limit)
    if hs.server_name is not None:
        exts[ExtensionType.SERVER_NAME] = b""  # RFC 6066 §3: the name was used
    if hs.early_data is EarlyDataStatus.ACCEPTED:
        exts[ExtensionType.EARLY_DATA] = b""
    return exts


def _emit(hs: _ServerHandshake, conn: Connection, msg_type: int, body: bytes) -> None:
    raw = frame(msg_type, body)
    hs.transcript.add(raw)
    conn.queue_handshake(raw)


@final
class ExpectClientCertificate(State):
    """Waiting for the client's Certificate, which our CertificateRequest asked for."""

    expects: ClassVar = frozenset({HandshakeType.CERTIFICATE})

    def __init__(self, hs: _ServerHandshake) -> None:
        self._hs = hs

    def handle(self, msg: HandshakeMessage, conn: Connection) -> State:
        hs = self._hs
        cfg = hs.config
        cert = Certificate.decode(msg.body)
        if cert.certificate_request_context:
            # RFC 8446 §4.4.2: it echoes our CertificateRequest's, which was empty.
            raise IllegalParameter(
                "the client's Certificate has a certificate_request_context; the "
                "CertificateRequest sent an empty one"
            )
        hs.transcript.add(msg.raw)
        if not cert.certificate_list:
            if cfg.client_auth == "required":
                # RFC 8446 §4.4.2.4: certificate_required.
                raise CertificateRequired(
                    "the client sent no certificate, and this server requires one "
                    "(client_auth='required')"
                )
            return ExpectClientFinished(hs)
        chain = parse_certificate_chain(cert, "client")
        assert cfg.client_trust is not None  # ServerConfig refuses client_auth without it
        result = check_chain(
            chain,
            cfg.client_trust,
            purpose="client",
            server_name=None,
            now=cfg.clock.now(),
            max_depth=cfg.client_max_chain_depth,
        )
        # Raises, and so aborts the handshake, when the mode refuses the chain.
        enforce_verification(
            result, mode=cfg.client_verify_mode, callback=cfg.client_verify_callback
        )
        hs.peer_chain = chain
        hs.verification = result
        return ExpectClientCertificateVerify(hs)


@final
class ExpectClientCertificateVerify(State):
    """Waiting for the client's CertificateVerify over the transcript so far."""

    expects: ClassVar = frozenset({HandshakeType.CERTIFICATE_VERIFY})

    def __init__(self, hs: _ServerHandshake) -> None:
        self._hs = hs

    def handle(self, msg: HandshakeMessage, conn: Connection) -> State:
        hs = self._hs
        cv = CertificateVerify.decode(msg.body)
        # The schemes our CertificateRequest offered (RFC 8446 §4.4.3).
        verify_peer_signature(
            cv,
            hs.peer_chain[0],
            hs.config.signature_schemes,
            CLIENT_SIGNATURE_CONTEXT + hs.transcript.digest(),
        )
        hs.transcript.add(msg.raw)
        return ExpectClientFinished(hs)


@final
class ExpectClientFinished(State):
    """Waiting for the client's Finished."""

    expects: ClassVar = frozenset({HandshakeType.FINISHED})

    def __init__(self, hs: _ServerHandshake) -> None:
        self._hs = hs

    def handle(self, msg: HandshakeMessage, conn: Connection) -> State:
        hs = self._hs
        assert hs.suite is not None and hs.schedule is not None  # set in the flight
        assert hs.client_secret is not None and hs.client_app_secret is not None
        assert hs.resumed or hs.scheme is not None  # a full handshake signed
        finished = Finished.decode(msg.body, hs.suite.hash_len)
        expected = finished_verify_data(
            hs.suite.hash_name, hs.client_secret, hs.transcript.digest()
        )
        if not constant_time_equal(expected, finished.verify_data):
            raise DecryptError("the client's Finished does not verify (transcript mismatch)")
        hs.transcript.add(msg.raw)
        conn.install_read_key(hs.client_app_secret, "the client's application data")
        if hs.tickets_deferred and _may_issue_tickets(hs):
            secret = hs.schedule.resumption_master_secret(hs.transcript.digest())
            _issue_tickets(hs, conn, secret)
        conn.complete_handshake(
            Negotiated(
                version=0x0304,
                cipher_suite=CipherSuite(hs.suite.suite),
                group=NamedGroup(hs.group) if hs.group is not None else None,
                signature_scheme=(
                    None if hs.scheme is None or hs.resumed else SignatureScheme(hs.scheme.scheme)
                ),
                alpn_protocol=hs.alpn_protocol,
                server_name=hs.server_name,
                peer_certificates=hs.peer_chain,
                verified_chain=(
                    hs.verification.verified_chain if hs.verification is not None else None
                ),
                handshake_kind=_handshake_kind(resumed=hs.resumed, retried=hs.hello_retry),
                verification=hs.verification,
                early_data=hs.early_data,
                psk_key_exchange_mode=hs.psk_mode,
            )
        )
        assert hs.client_hello is not None  # set before any flight
        auth = None
        if ExtensionType.POST_HANDSHAKE_AUTH in hs.client_hello.extensions:
            auth = _PostHandshakeAuth(
                config=hs.config,
                hash_name=hs.suite.hash_name,
                hash_len=hs.suite.hash_len,
                transcript=hs.transcript,  # ends with the client's Finished
            )
        return ServerTraffic(auth)


@dataclass(frozen=True, slots=True, kw_only=True)
class _PostHandshakeAuth:
    """What post-handshake client authentication (RFC 8446 §4.6.2) needs.

    ``transcript`` ends with the client's Finished and is never added to:
    each request continues a copy of it (RFC 8446 §4.4, the "Post-Handshake"
    row: ClientHello ... client Finished + CertificateRequest).
    """

    config: ServerConfig
    hash_name: str
    hash_len: int
    transcript: Transcript


@final
class ServerTraffic(State):
    """The handshake is done: only KeyUpdate may arrive, unless we ask for a certificate."""

    expects: ClassVar = frozenset({HandshakeType.KEY_UPDATE})

    def __init__(self, auth: _PostHandshakeAuth | None = None) -> None:
        self._auth = auth  # None: the client did not offer post_handshake_auth

    def handle(self, msg: HandshakeMessage, conn: Connection) -> State:
        conn.receive_key_update(msg)
        return self

    def request_certificate(self, conn: Connection) -> State:
        """Queue a CertificateRequest with a fresh context; wait for the answer."""
        auth = self._auth
        if auth is None:
            raise UsageError(
                "the client did not offer post_handshake_auth (RFC 8446 §4.2.6), so it "
                "cannot be asked for a certificate after the handshake"
            )
        if auth.config.client_trust is None:
            raise UsageError(
                "requesting a client certificate needs client_trust in the ServerConfig: the "
                "roots the client's chain must lead to"
            )
        # RFC 8446 §4.3.2: unique per post-handshake request, so the answer
        # cannot be replayed from an earlier one.
        context = auth.config.random.random_bytes(_REQUEST_CONTEXT_SIZE)
        transcript = auth.transcript.copy()
        raw = frame(
            HandshakeType.CERTIFICATE_REQUEST, certificate_request(auth.config, context).encode()
        )
        transcript.add(raw)
        conn.queue_handshake(raw)
        return ExpectPostHandshakeCertificate(auth, context, transcript)


#: Bytes of random certificate_request_context in a post-handshake request.
_REQUEST_CONTEXT_SIZE: Final = 32


class _AwaitingPostHandshakeAnswer(State):
    """Base of the states between our post-handshake request and the client's Finished."""


@final
class ExpectPostHandshakeCertificate(_AwaitingPostHandshakeAnswer):
    """Waiting for the client's Certificate answering our post-handshake request."""

    # RFC 8446 §4.6.2: the answer may be delayed; a KeyUpdate may come first.
    expects: ClassVar = frozenset({HandshakeType.CERTIFICATE, HandshakeType.KEY_UPDATE})

    def __init__(self, auth: _PostHandshakeAuth, context: bytes, transcript: Transcript) -> None:
        self._auth = auth
        self._context = context
        self._transcript = transcript

    def handle(self, msg: HandshakeMessage, conn: Connection) -> State:
        if msg.msg_type == HandshakeType.KEY_UPDATE:
            conn.receive_key_update(msg)
            return self
        auth = self._auth
        cfg = auth.config
        cert = Certificate.decode(msg.body)
        if not constant_time_equal(cert.certificate_request_context, self._context):
            # RFC 8446 §4.4.2: the context echoes the request's.
            raise IllegalParameter(
                "the client's post-handshake Certificate does not echo the "
                "certificate_request_context of our CertificateRequest"
            )
        self._transcript.add(msg.raw)
        if not cert.certificate_list:
            return ExpectPostHandshakeFinished(auth, self._transcript, (), None)
        chain = parse_certificate_chain(cert, "client")
        assert cfg.client_trust is not None  # checked by request_certificate
        result = check_chain(
            chain,
            cfg.client_trust,
            purpose="client",
            server_name=None,
            now=cfg.clock.now(),
            max_depth=cfg.client_max_chain_depth,
        )
        # Raises, and so ends the connection, when the mode refuses the chain.
        enforce_verification(
            result, mode=cfg.client_verify_mode, callback=cfg.client_verify_callback
        )
        return ExpectPostHandshakeCertificateVerify(auth, self._transcript, chain, result)


@final
class ExpectPostHandshakeCertificateVerify(_AwaitingPostHandshakeAnswer):
    """Waiting for the client's post-handshake CertificateVerify."""

    # RFC 8446 §4.6.2: the answer's messages are consecutive on the wire.
    expects: ClassVar = frozenset({HandshakeType.CERTIFICATE_VERIFY})

    def __init__(
        self,
        auth: _PostHandshakeAuth,
        transcript: Transcript,
        chain: tuple[x509.Certificate, ...],
        verification: VerificationResult,
    ) -> None:
        self._auth = auth
        self._transcript = transcript
        self._chain = chain
        self._verification = verification

    def handle(self, msg: HandshakeMessage, conn: Connection) -> State:
        cv = CertificateVerify.decode(msg.body)
        verify_peer_signature(
            cv,
            self._chain[0],
            self._auth.config.signature_schemes,
            CLIENT_SIGNATURE_CONTEXT + self._transcript.digest(),
        )
        self._transcript.add(msg.raw)
        return ExpectPostHandshakeFinished(
            self._auth, self._transcript, self._chain, self._verification
        )


@final
class ExpectPostHandshakeFinished(_AwaitingPostHandshakeAnswer):
    """Waiting for the client's Finished that closes its post-handshake answer."""

    expects: ClassVar = frozenset({HandshakeType.FINISHED})

    def __init__(
        self,
        auth: _PostHandshakeAuth,
        transcript: Transcript,
        chain: tuple[x509.Certificate, ...],
        verification: VerificationResult | None,
    ) -> None:
        self._auth = auth
        self._transcript = transcript
        self._chain = chain
        self._verification = verification

    def handle(self, msg: HandshakeMessage, conn: Connection) -> State:
        auth = self._auth
        finished = Finished.decode(msg.body, auth.hash_len)
        # RFC 8446 §4.4: the base key is client_application_traffic_secret_N.
        expected = finished_verify_data(
            auth.hash_name, conn.client_application_secret(), self._transcript.digest()
        )
        if not constant_time_equal(expected, finished.verify_data):
            raise DecryptError(
                "the client's post-handshake Finished does not verify (transcript mismatch)"
            )
        conn.push_event(
            ClientCertificateReceived(
                peer_certificates=self._chain, verification=self._verification
            )
        )
        return ServerTraffic(auth)


def _handshake_kind(*, resumed: bool, retried: bool) -> HandshakeKind:
    if resumed:
        return HandshakeKind.RESUMED_WITH_HELLO_RETRY_REQUEST if retried else HandshakeKind.RESUMED
    return HandshakeKind.FULL_WITH_HELLO_RETRY_REQUEST if retried else HandshakeKind.FULL
