"""The client side of the handshake: what it sends, and what it refuses from a server."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import serialization

from tests.support.engine_pairs import (
    FixedClock,
    Pki,
    alert_seen_by,
    client_auth_only_pki,
    handshake,
    last_alert,
    make_pair,
    pki,
    pump,
    records,
    replace_extension,
    rewrite_outgoing_handshake,
    rewrite_server_hello,
    server_flight,
    split_records,
    unknown_ca_trust,
)
from triotls.config import ClientConfig, ServerConfig
from triotls.engine import ClientConnection, ServerConnection
from triotls.engine.enums import (
    AlertDescription,
    CipherSuite,
    ContentType,
    ExtensionType,
    HandshakeType,
    NamedGroup,
    SignatureScheme,
)
from triotls.engine.events import ApplicationData, HandshakeComplete, NewSessionTicketReceived
from triotls.engine.extensions import (
    decode_alpn,
    decode_cookie,
    decode_key_share_ch,
    decode_server_name,
    encode_alpn,
    encode_cookie,
    encode_u16,
    encode_u16_list,
)
from triotls.engine.messages import (
    HELLO_RETRY_REQUEST_RANDOM,
    Certificate,
    CertificateEntry,
    CertificateRequest,
    CertificateVerify,
    ClientHello,
    EncryptedExtensions,
    NewSessionTicket,
    ServerHello,
    frame,
)
from triotls.engine.state import HandshakeKind
from triotls.errors import (
    AlertReceived,
    BadCertificate,
    CertificateVerificationError,
    DecodeError,
    DecryptError,
    IllegalParameter,
    MissingExtension,
    NoApplicationProtocol,
    ProtocolVersionError,
    UnexpectedMessage,
    UnsupportedCertificate,
    UnsupportedExtension,
    UsageError,
)

_UTC = datetime.timezone.utc


def _client_hello(client: ClientConnection) -> ClientHello:
    client.start_handshake()
    record = split_records(client.data_to_send())[0]
    assert record[5] == HandshakeType.CLIENT_HELLO
    return ClientHello.decode(record[9:])


def _flight_with(
    server: ServerConnection,
    client: ClientConnection,
    msg_type: HandshakeType,
    change: Callable[[bytes], bytes],
) -> bytes:
    """The server's flight with the body of its ``msg_type`` message passed through ``change``."""

    def rewrite(raw: bytes) -> bytes:
        if raw[0] != msg_type:
            return raw
        return frame(raw[0], change(raw[4:]))

    rewrite_outgoing_handshake(server, rewrite)
    return server_flight(client, server)


# --- the ClientHello ---------------------------------------------------------------


def test_client_hello_offers_tls13_only() -> None:
    client, _server = make_pair()
    hello = _client_hello(client)
    assert hello.legacy_version == 0x0303
    assert hello.extensions[ExtensionType.SUPPORTED_VERSIONS] == b"\x02\x03\x04"


def test_client_hello_sends_sni_for_a_dns_name() -> None:
    client, _server = make_pair()
    hello = _client_hello(client)
    assert decode_server_name(hello.extensions[ExtensionType.SERVER_NAME]) == "localhost"


def test_client_hello_sends_no_sni_for_an_ip_literal() -> None:
    client, _server = make_pair(server_hostname="127.0.0.1")
    assert ExtensionType.SERVER_NAME not in _client_hello(client).extensions


def test_client_hello_sends_key_shares_for_the_configured_groups_only() -> None:
    client, _server = make_pair(
        client_kw={"key_share_groups": (NamedGroup.SECP256R1, NamedGroup.X25519)}
    )
    hello = _client_hello(client)
    shares = decode_key_share_ch(hello.extensions[ExtensionType.KEY_SHARE])
    assert [s.group for s in shares] == [NamedGroup.SECP256R1, NamedGroup.X25519]
    assert [len(s.key_exchange) for s in shares] == [65, 32]


def test_default_hybrid_and_x25519_shares_reuse_one_x25519_key() -> None:
    # The default offer: X25519MLKEM768 (ML-KEM key, then X25519) and x25519.
    client, _server = make_pair()
    hello = _client_hello(client)
    shares = {
        s.group: s.key_exchange
        for s in decode_key_share_ch(hello.extensions[ExtensionType.KEY_SHARE])
    }
    assert set(shares) == {NamedGroup.X25519MLKEM768, NamedGroup.X25519}
    assert len(shares[NamedGroup.X25519MLKEM768]) == 1184 + 32
    assert shares[NamedGroup.X25519MLKEM768][1184:] == shares[NamedGroup.X25519]


@pytest.mark.parametrize("server_group", [NamedGroup.X25519MLKEM768, NamedGroup.X25519])
def test_a_shared_x25519_key_completes_whichever_group_the_server_picks(
    server_group: NamedGroup,
) -> None:
    client, server = make_pair(server_kw={"groups": (server_group,)})
    handshake(client, server)
    assert client.negotiated is not None and server.negotiated is not None
    assert client.negotiated.group == server.negotiated.group == server_group
    server.send_application_data(b"over the shared key")
    events = client.receive_data(server.data_to_send())
    assert [e.data for e in events if isinstance(e, ApplicationData)] == [b"over the shared key"]


def test_client_hello_offers_alpn_in_preference_order() -> None:
    client, _server = make_pair(client_kw={"alpn_protocols": ("h2", "http/1.1")})
    hello = _client_hello(client)
    alpn = hello.extensions[ExtensionType.APPLICATION_LAYER_PROTOCOL_NEGOTIATION]
    assert decode_alpn(alpn) == (b"h2", b"http/1.1")


def test_client_hello_has_a_32_byte_session_id_in_middlebox_compat_mode() -> None:
    client, _server = make_pair(client_kw={"middlebox_compat": True})
    assert len(_client_hello(client).legacy_session_id) == 32


def test_client_hello_has_an_empty_session_id_without_middlebox_compat() -> None:
    client, _server = make_pair(client_kw={"middlebox_compat": False})
    assert _client_hello(client).legacy_session_id == b""


def test_client_hello_record_uses_legacy_record_version_0x0301() -> None:
    client, _server = make_pair()
    client.start_handshake()
    assert client.data_to_send()[:3] == b"\x16\x03\x01"


def test_start_handshake_twice_is_a_usage_error() -> None:
    client, _server = make_pair()
    client.start_handshake()
    with pytest.raises(UsageError, match="already called"):
        client.start_handshake()


def test_client_without_server_hostname_refuses_to_check_names() -> None:
    _client, _server = make_pair()
    config = ClientConfig(trust=_client.config.trust)
    with pytest.raises(ValueError, match="server_hostname is required"):
        ClientConnection(config)


@pytest.mark.parametrize(
    "name",
    ["bad host", "localhost.", "", "*.localhost", "[::1]", "a" * 64 + ".example"],
    ids=["space", "trailing-dot", "empty", "wildcard", "bracketed-ip", "long-label"],
)
def test_client_refuses_a_server_hostname_it_cannot_send_or_check(name: str) -> None:
    config = ClientConfig(trust=pki("ecdsa").trust)
    with pytest.raises(ValueError, match="neither an IP address nor a valid DNS name"):
        ClientConnection(config, server_hostname=name)


def test_client_accepts_an_underscore_name_it_does_not_check() -> None:
    config = ClientConfig(trust=pki("ecdsa").trust, check_hostname=False)
    client = ClientConnection(config, server_hostname="my_host.internal")
    hello = _client_hello(client)
    assert decode_server_name(hello.extensions[ExtensionType.SERVER_NAME]) == "my_host.internal"


def test_client_accepts_an_ipv6_literal() -> None:
    client, _server = make_pair(server_hostname="::1")
    assert ExtensionType.SERVER_NAME not in _client_hello(client).extensions


def test_client_without_hostname_check_verifies_the_chain_only() -> None:
    client, server = make_pair(client_kw={"check_hostname": False}, server_hostname=None)
    handshake(client, server)
    assert client.negotiated is not None and client.negotiated.verified_chain is not None


def test_handshake_message_before_start_handshake_is_unexpected_message() -> None:
    client, server = make_pair()
    other, _ = make_pair()
    flight = server_flight(other, server)
    with pytest.raises(UnexpectedMessage, match="expected: none"):
        client.receive_data(flight)


# --- HelloRetryRequest ------------------------------------------------------------------


def test_client_retries_with_the_group_the_server_asks_for() -> None:
    client, server = make_pair(
        client_kw={"key_share_groups": (NamedGroup.X25519,)},
        server_kw={"groups": (NamedGroup.SECP384R1,)},
    )
    client.start_handshake()
    pump(client, server)
    hrr_wire = server.data_to_send()
    hrr = ServerHello.decode(split_records(hrr_wire)[0][9:])
    assert hrr.random == HELLO_RETRY_REQUEST_RANDOM
    client.receive_data(hrr_wire)
    retry = client.data_to_send()
    hello2 = next(r for r in split_records(retry) if r[0] == 0x16)
    shares = decode_key_share_ch(ClientHello.decode(hello2[9:]).extensions[ExtensionType.KEY_SHARE])
    assert [s.group for s in shares] == [NamedGroup.SECP384R1]
    server.receive_data(retry)
    client.receive_data(server.data_to_send())
    pump(client, server)
    assert client.negotiated is not None
    assert client.negotiated.group == NamedGroup.SECP384R1
    assert client.negotiated.handshake_kind == HandshakeKind.FULL_WITH_HELLO_RETRY_REQUEST


def _hrr_flight() -> tuple[ClientConnection, bytes]:
    client, server = make_pair(
        client_kw={"key_share_groups": (NamedGroup.X25519,)},
        server_kw={"groups": (NamedGroup.SECP256R1,)},
    )
    return client, server_flight(client, server)


def test_second_hello_retry_request_is_unexpected_message() -> None:
    client, hrr = _hrr_flight()
    client.receive_data(hrr)
    with pytest.raises(UnexpectedMessage, match="second HelloRetryRequest"):
        client.receive_data(hrr)
    assert last_alert(client.data_to_send()) == AlertDescription.UNEXPECTED_MESSAGE


def test_hello_retry_request_for_a_group_not_offered_is_illegal_parameter() -> None:
    client, server = make_pair(
        client_kw={
            "groups": (NamedGroup.X25519, NamedGroup.SECP256R1),
            "key_share_groups": (NamedGroup.X25519,),
        },
        server_kw={"groups": (NamedGroup.SECP256R1,)},
    )
    hrr = server_flight(client, server)

    def ask_for_p384(sh: ServerHello) -> ServerHello:
        exts = replace_extension(
            sh.extensions, ExtensionType.KEY_SHARE, encode_u16(NamedGroup.SECP384R1)
        )
        return dataclasses.replace(sh, extensions=exts)

    with pytest.raises(IllegalParameter, match="did not offer"):
        client.receive_data(rewrite_server_hello(hrr, ask_for_p384))
    assert last_alert(client.data_to_send()) == AlertDescription.ILLEGAL_PARAMETER


def test_hello_retry_request_for_a_group_already_shared_is_illegal_parameter() -> None:
    client, hrr = _hrr_flight()

    def ask_for_x25519(sh: ServerHello) -> ServerHello:
        exts = replace_extension(
            sh.extensions, ExtensionType.KEY_SHARE, encode_u16(NamedGroup.X25519)
        )
        return dataclasses.replace(sh, extensions=exts)

    with pytest.raises(IllegalParameter, match="already sent a share"):
        client.receive_data(rewrite_server_hello(hrr, ask_for_x25519))


def test_hello_retry_request_that_changes_nothing_is_illegal_parameter() -> None:
    client, hrr = _hrr_flight()

    def drop_key_share(sh: ServerHello) -> ServerHello:
        return dataclasses.replace(
            sh, extensions=replace_extension(sh.extensions, ExtensionType.KEY_SHARE, None)
        )

    with pytest.raises(IllegalParameter, match="would not change"):
        client.receive_data(rewrite_server_hello(hrr, drop_key_share))


def test_server_hello_after_retry_with_another_suite_is_illegal_parameter() -> None:
    client, server = make_pair(
        client_kw={"key_share_groups": (NamedGroup.X25519,)},
        server_kw={"groups": (NamedGroup.SECP256R1,)},
    )
    client.start_handshake()
    pump(client, server)
    pump(server, client)
    server.receive_data(client.data_to_send())
    flight = server.data_to_send()

    def other_suite(sh: ServerHello) -> ServerHello:
        assert sh.cipher_suite != CipherSuite.TLS_AES_256_GCM_SHA384
        return dataclasses.replace(sh, cipher_suite=CipherSuite.TLS_AES_256_GCM_SHA384)

    with pytest.raises(IllegalParameter, match="different cipher suite"):
        client.receive_data(rewrite_server_hello(flight, other_suite))


def test_client_echoes_the_cookie_of_a_hello_retry_request() -> None:
    # RFC 8446 §4.1.4: the cookie is the one extension an HRR may carry unasked.
    client, hrr = _hrr_flight()

    def with_cookie(sh: ServerHello) -> ServerHello:
        exts = {**sh.extensions, ExtensionType.COOKIE: encode_cookie(b"server state")}
        return dataclasses.replace(sh, extensions=exts)

    client.receive_data(rewrite_server_hello(hrr, with_cookie))
    retry = next(r for r in split_records(client.data_to_send()) if r[0] == 0x16)
    hello2 = ClientHello.decode(retry[9:])
    assert decode_cookie(hello2.extensions[ExtensionType.COOKIE]) == b"server state"


def test_hello_retry_request_with_another_unrequested_extension_is_unsupported() -> None:
    client, hrr = _hrr_flight()

    def with_psk(sh: ServerHello) -> ServerHello:
        return dataclasses.replace(
            sh, extensions={**sh.extensions, ExtensionType.PRE_SHARED_KEY: b"\x00\x00"}
        )

    with pytest.raises(IllegalParameter, match="pre_shared_key is not allowed"):
        client.receive_data(rewrite_server_hello(hrr, with_psk))


# --- a tampered ServerHello ----------------------------------------------------------------


def test_server_hello_with_unoffered_suite_is_illegal_parameter() -> None:
    client, server = make_pair(client_kw={"cipher_suites": (CipherSuite.TLS_AES_128_GCM_SHA256,)})
    flight = server_flight(client, server)

    def pick_chacha(sh: ServerHello) -> ServerHello:
        return dataclasses.replace(sh, cipher_suite=CipherSuite.TLS_CHACHA20_POLY1305_SHA256)

    with pytest.raises(IllegalParameter, match="did not offer"):
        client.receive_data(rewrite_server_hello(flight, pick_chacha))
    wire = client.data_to_send()
    assert last_alert(wire) == AlertDescription.ILLEGAL_PARAMETER
    with pytest.raises(AlertReceived) as info:
        server.receive_data(wire)
    assert info.value.description == AlertDescription.ILLEGAL_PARAMETER


@pytest.mark.parametrize("sentinel", [b"DOWNGRD\x01", b"DOWNGRD\x00"])
def test_server_hello_with_downgrade_sentinel_is_illegal_parameter(sentinel: bytes) -> None:
    client, server = make_pair()
    flight = server_flight(client, server)

    def downgrade(sh: ServerHello) -> ServerHello:
        # What a TLS 1.3 server says when it negotiates 1.2 (RFC 8446 §4.1.3).
        exts = replace_extension(sh.extensions, ExtensionType.SUPPORTED_VERSIONS, None)
        return dataclasses.replace(sh, random=sh.random[:24] + sentinel, extensions=exts)

    with pytest.raises(IllegalParameter, match="downgrade"):
        client.receive_data(rewrite_server_hello(flight, downgrade))
    assert last_alert(client.data_to_send()) == AlertDescription.ILLEGAL_PARAMETER


def test_server_hello_for_tls12_without_sentinel_is_protocol_version() -> None:
    client, server = make_pair()
    flight = server_flight(client, server)

    def tls12(sh: ServerHello) -> ServerHello:
        exts = replace_extension(sh.extensions, ExtensionType.SUPPORTED_VERSIONS, None)
        return dataclasses.replace(sh, extensions=exts)

    with pytest.raises(ProtocolVersionError, match=r"TLS 1\.3 only"):
        client.receive_data(rewrite_server_hello(flight, tls12))
    assert last_alert(client.data_to_send()) == AlertDescription.PROTOCOL_VERSION


def test_server_hello_selecting_an_unoffered_version_is_illegal_parameter() -> None:
    client, server = make_pair()
    flight = server_flight(client, server)

    def tls14(sh: ServerHello) -> ServerHello:
        exts = replace_extension(sh.extensions, ExtensionType.SUPPORTED_VERSIONS, b"\x03\x05")
        return dataclasses.replace(sh, extensions=exts)

    with pytest.raises(IllegalParameter, match="0x0305"):
        client.receive_data(rewrite_server_hello(flight, tls14))


def test_server_hello_not_echoing_the_session_id_is_illegal_parameter() -> None:
    client, server = make_pair()
    flight = server_flight(client, server)

    def other_id(sh: ServerHello) -> ServerHello:
        return dataclasses.replace(sh, legacy_session_id_echo=bytes(32))

    with pytest.raises(IllegalParameter, match="legacy_session_id"):
        client.receive_data(rewrite_server_hello(flight, other_id))


def test_server_hello_with_a_key_share_for_an_unshared_group_is_illegal_parameter() -> None:
    client, server = make_pair(client_kw={"key_share_groups": (NamedGroup.X25519,)})
    flight = server_flight(client, server)

    def p256_share(sh: ServerHello) -> ServerHello:
        share = b"\x00\x17\x00\x41\x04" + bytes(64)
        exts = replace_extension(sh.extensions, ExtensionType.KEY_SHARE, share)
        return dataclasses.replace(sh, extensions=exts)

    with pytest.raises(IllegalParameter, match="sent no share"):
        client.receive_data(rewrite_server_hello(flight, p256_share))


def test_server_hello_without_key_share_is_missing_extension() -> None:
    client, server = make_pair()
    flight = server_flight(client, server)

    def no_share(sh: ServerHello) -> ServerHello:
        exts = replace_extension(sh.extensions, ExtensionType.KEY_SHARE, None)
        return dataclasses.replace(sh, extensions=exts)

    with pytest.raises(MissingExtension, match="no key_share"):
        client.receive_data(rewrite_server_hello(flight, no_share))
    assert last_alert(client.data_to_send()) == AlertDescription.MISSING_EXTENSION


def test_server_hello_with_an_all_zero_x25519_share_is_illegal_parameter() -> None:
    client, server = make_pair(
        client_kw={"groups": (NamedGroup.X25519,), "key_share_groups": (NamedGroup.X25519,)}
    )
    flight = server_flight(client, server)

    def zero_share(sh: ServerHello) -> ServerHello:
        share = b"\x00\x1d\x00\x20" + bytes(32)
        exts = replace_extension(sh.extensions, ExtensionType.KEY_SHARE, share)
        return dataclasses.replace(sh, extensions=exts)

    with pytest.raises(IllegalParameter, match="all-zero"):
        client.receive_data(rewrite_server_hello(flight, zero_share))


def test_server_hello_with_a_short_hybrid_share_is_illegal_parameter() -> None:
    client, server = make_pair()
    flight = server_flight(client, server)

    def short_share(sh: ServerHello) -> ServerHello:
        share = b"\x11\xec\x00\x20" + bytes(32)
        exts = replace_extension(sh.extensions, ExtensionType.KEY_SHARE, share)
        return dataclasses.replace(sh, extensions=exts)

    with pytest.raises(IllegalParameter, match="expected 1120"):
        client.receive_data(rewrite_server_hello(flight, short_share))


def test_server_hello_with_an_unrequested_extension_is_unsupported_extension() -> None:
    client, server = make_pair(client_kw={"alpn_protocols": ()})
    flight = server_flight(client, server)

    def with_psk(sh: ServerHello) -> ServerHello:
        exts = replace_extension(sh.extensions, ExtensionType.PRE_SHARED_KEY, b"\x00\x00")
        return dataclasses.replace(sh, extensions=exts)

    with pytest.raises(UnsupportedExtension, match="did not offer"):
        client.receive_data(rewrite_server_hello(flight, with_psk))
    assert last_alert(client.data_to_send()) == AlertDescription.UNSUPPORTED_EXTENSION


def test_server_hello_with_nonzero_compression_is_illegal_parameter() -> None:
    client, server = make_pair()
    flight = server_flight(client, server)
    with pytest.raises(IllegalParameter, match="compression"):
        client.receive_data(
            rewrite_server_hello(
                flight, lambda sh: dataclasses.replace(sh, legacy_compression_method=1)
            )
        )


# --- the encrypted server flight ---------------------------------------------------------


def test_tampered_server_finished_is_decrypt_error() -> None:
    client, server = make_pair()

    def flip_last_bit(body: bytes) -> bytes:
        return body[:-1] + bytes([body[-1] ^ 0x01])

    flight = _flight_with(server, client, HandshakeType.FINISHED, flip_last_bit)
    with pytest.raises(DecryptError, match="server's Finished does not verify"):
        client.receive_data(flight)
    wire = client.data_to_send()
    # RFC 8446 §6: past the ServerHello the client's alert is encrypted.
    assert [t for t, _ in records(wire)] == [ContentType.APPLICATION_DATA]
    assert alert_seen_by(server, wire) == AlertDescription.DECRYPT_ERROR


def test_certificate_verify_with_a_bad_signature_is_decrypt_error() -> None:
    client, server = make_pair()

    def flip_signature(body: bytes) -> bytes:
        cv = CertificateVerify.decode(body)
        bad = cv.signature[:-1] + bytes([cv.signature[-1] ^ 0x01])
        return CertificateVerify(algorithm=cv.algorithm, signature=bad).encode()

    flight = _flight_with(server, client, HandshakeType.CERTIFICATE_VERIFY, flip_signature)
    with pytest.raises(DecryptError, match="does not verify"):
        client.receive_data(flight)
    assert alert_seen_by(server, client.data_to_send()) == AlertDescription.DECRYPT_ERROR


def test_certificate_verify_with_a_scheme_not_fitting_the_key_is_illegal_parameter() -> None:
    client, server = make_pair()

    def claim_ed25519(body: bytes) -> bytes:
        cv = CertificateVerify.decode(body)
        return CertificateVerify(algorithm=SignatureScheme.ED25519, signature=cv.signature).encode()

    flight = _flight_with(server, client, HandshakeType.CERTIFICATE_VERIFY, claim_ed25519)
    with pytest.raises(IllegalParameter, match="does not match"):
        client.receive_data(flight)


def test_certificate_verify_with_an_unoffered_scheme_is_illegal_parameter() -> None:
    client, server = make_pair()

    def claim_pkcs1(body: bytes) -> bytes:
        cv = CertificateVerify.decode(body)
        scheme = SignatureScheme.RSA_PKCS1_SHA256
        return CertificateVerify(algorithm=scheme, signature=cv.signature).encode()

    flight = _flight_with(server, client, HandshakeType.CERTIFICATE_VERIFY, claim_pkcs1)
    with pytest.raises(IllegalParameter, match="0x0401, which was not offered"):
        client.receive_data(flight)


def test_encrypted_extensions_with_an_unoffered_alpn_is_illegal_parameter() -> None:
    client, server = make_pair(
        client_kw={"alpn_protocols": ("h2",)}, server_kw={"alpn_protocols": ("h2",)}
    )

    def other_protocol(body: bytes) -> bytes:
        ee = EncryptedExtensions.decode(body)
        exts = replace_extension(
            ee.extensions,
            ExtensionType.APPLICATION_LAYER_PROTOCOL_NEGOTIATION,
            encode_alpn([b"spdy/1"]),
        )
        return EncryptedExtensions(extensions=exts).encode()

    flight = _flight_with(server, client, HandshakeType.ENCRYPTED_EXTENSIONS, other_protocol)
    with pytest.raises(IllegalParameter, match="did not offer"):
        client.receive_data(flight)


def test_encrypted_extensions_with_two_alpn_protocols_is_decode_error() -> None:
    client, server = make_pair(
        client_kw={"alpn_protocols": ("h2", "http/1.1")}, server_kw={"alpn_protocols": ("h2",)}
    )

    def two_protocols(body: bytes) -> bytes:
        ee = EncryptedExtensions.decode(body)
        exts = replace_extension(
            ee.extensions,
            ExtensionType.APPLICATION_LAYER_PROTOCOL_NEGOTIATION,
            encode_alpn([b"h2", b"http/1.1"]),
        )
        return EncryptedExtensions(extensions=exts).encode()

    flight = _flight_with(server, client, HandshakeType.ENCRYPTED_EXTENSIONS, two_protocols)
    with pytest.raises(DecodeError, match="2 protocols"):
        client.receive_data(flight)


def test_encrypted_extensions_accepting_unsent_early_data_is_unsupported_extension() -> None:
    client, server = make_pair()

    def early_data(body: bytes) -> bytes:
        ee = EncryptedExtensions.decode(body)
        exts = replace_extension(ee.extensions, ExtensionType.EARLY_DATA, b"")
        return EncryptedExtensions(extensions=exts).encode()

    flight = _flight_with(server, client, HandshakeType.ENCRYPTED_EXTENSIONS, early_data)
    with pytest.raises(UnsupportedExtension, match="did not offer"):
        client.receive_data(flight)


def test_encrypted_extensions_with_an_unknown_extension_is_unsupported_extension() -> None:
    client, server = make_pair()

    def unknown(body: bytes) -> bytes:
        ee = EncryptedExtensions.decode(body)
        return EncryptedExtensions(extensions={**ee.extensions, 0x0A0A: b""}).encode()

    flight = _flight_with(server, client, HandshakeType.ENCRYPTED_EXTENSIONS, unknown)
    with pytest.raises(UnsupportedExtension, match="0x0a0a"):
        client.receive_data(flight)
    assert alert_seen_by(server, client.data_to_send()) == AlertDescription.UNSUPPORTED_EXTENSION


def test_empty_server_certificate_is_decode_error() -> None:
    client, server = make_pair()
    flight = _flight_with(
        server, client, HandshakeType.CERTIFICATE, lambda body: Certificate().encode()
    )
    with pytest.raises(DecodeError, match="empty Certificate"):
        client.receive_data(flight)


def test_server_certificate_that_is_not_der_is_bad_certificate() -> None:
    client, server = make_pair()
    garbage = Certificate(certificate_list=(CertificateEntry(cert_data=b"\x30\x03abc"),))
    flight = _flight_with(server, client, HandshakeType.CERTIFICATE, lambda body: garbage.encode())
    with pytest.raises(BadCertificate, match="not valid DER"):
        client.receive_data(flight)
    assert alert_seen_by(server, client.data_to_send()) == AlertDescription.BAD_CERTIFICATE


def test_server_certificate_with_entry_extensions_is_unsupported_extension() -> None:
    client, server = make_pair(client_kw={"ocsp": "off"})

    def with_ocsp(body: bytes) -> bytes:
        cert = Certificate.decode(body)
        first = cert.certificate_list[0]
        entry = CertificateEntry(
            cert_data=first.cert_data, extensions={ExtensionType.STATUS_REQUEST: b"\x01"}
        )
        return Certificate(certificate_list=(entry,)).encode()

    flight = _flight_with(server, client, HandshakeType.CERTIFICATE, with_ocsp)
    with pytest.raises(UnsupportedExtension, match="did not request"):
        client.receive_data(flight)


def test_server_certificate_with_a_request_context_is_illegal_parameter() -> None:
    client, server = make_pair()

    def with_context(body: bytes) -> bytes:
        cert = Certificate.decode(body)
        return Certificate(
            certificate_request_context=b"\x01", certificate_list=cert.certificate_list
        ).encode()

    flight = _flight_with(server, client, HandshakeType.CERTIFICATE, with_context)
    with pytest.raises(IllegalParameter, match="empty request context"):
        client.receive_data(flight)


def test_server_flight_with_finished_in_place_of_certificate_is_unexpected_message() -> None:
    client, server = make_pair()

    def relabel_certificate(raw: bytes) -> bytes:
        if raw[0] == HandshakeType.CERTIFICATE:
            return bytes([HandshakeType.FINISHED]) + raw[1:]
        return raw

    rewrite_outgoing_handshake(server, relabel_certificate)
    flight = server_flight(client, server)
    with pytest.raises(UnexpectedMessage, match="received FINISHED in state ExpectCertificateOr"):
        client.receive_data(flight)
    assert alert_seen_by(server, client.data_to_send()) == AlertDescription.UNEXPECTED_MESSAGE


def _flight_with_leaf(client: ClientConnection, server: ServerConnection, der: bytes) -> bytes:
    entry = CertificateEntry(cert_data=der)
    return _flight_with(
        server,
        client,
        HandshakeType.CERTIFICATE,
        lambda body: Certificate(certificate_list=(entry,)).encode(),
    )


def _patched_leaf(old: bytes, new: bytes) -> bytes:
    der = pki("ecdsa").leaf.public_bytes(serialization.Encoding.DER)
    assert der.count(old) == 1
    return der.replace(old, new)


def test_unverified_certificate_with_an_unknown_key_algorithm_is_unsupported_certificate() -> None:
    # id-ecPublicKey (1.2.840.10045.2.1) turned into an unassigned arc.
    der = _patched_leaf(bytes.fromhex("06072a8648ce3d0201"), bytes.fromhex("06072a8648ce3d0209"))
    client, server = make_pair(client_kw={"verify_peer": False})
    with pytest.raises(UnsupportedCertificate, match=r"1\.2\.840\.10045\.2\.9"):
        client.receive_data(_flight_with_leaf(client, server, der))
    assert alert_seen_by(server, client.data_to_send()) == AlertDescription.UNSUPPORTED_CERTIFICATE


def test_unverified_certificate_with_an_invalid_public_key_is_bad_certificate() -> None:
    point = (
        pki("ecdsa")
        .leaf.public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    der = _patched_leaf(point, b"\x04" + bytes(64))
    client, server = make_pair(client_kw={"verify_peer": False})
    with pytest.raises(BadCertificate, match="invalid public key"):
        client.receive_data(_flight_with_leaf(client, server, der))
    assert alert_seen_by(server, client.data_to_send()) == AlertDescription.BAD_CERTIFICATE


def test_server_certificate_with_an_invalid_x509_version_is_bad_certificate() -> None:
    # version [0] EXPLICIT INTEGER 2 (v3) turned into 3, which X.509 does not define.
    der = _patched_leaf(bytes.fromhex("a003020102"), bytes.fromhex("a003020103"))
    client, server = make_pair()
    with pytest.raises(BadCertificate, match="not a valid X509 version"):
        client.receive_data(_flight_with_leaf(client, server, der))
    assert alert_seen_by(server, client.data_to_send()) == AlertDescription.BAD_CERTIFICATE


def test_verified_certificate_with_a_patched_key_fails_verification() -> None:
    der = _patched_leaf(bytes.fromhex("06072a8648ce3d0201"), bytes.fromhex("06072a8648ce3d0209"))
    client, server = make_pair()
    with pytest.raises(CertificateVerificationError):
        client.receive_data(_flight_with_leaf(client, server, der))


# --- certificate verification ----------------------------------------------------------------


def _verification_failure(
    client: ClientConnection, server: ServerConnection
) -> tuple[CertificateVerificationError, int]:
    flight = server_flight(client, server)
    with pytest.raises(CertificateVerificationError) as info:
        client.receive_data(flight)
    seen = alert_seen_by(server, client.data_to_send())
    assert seen == info.value.sent_alert
    return info.value, seen


def test_wrong_hostname_is_bad_certificate() -> None:
    client, server = make_pair(server_hostname="example.org")
    error, seen = _verification_failure(client, server)
    assert "subjectAltName" in str(error)
    assert seen == AlertDescription.BAD_CERTIFICATE


def test_unknown_ca_is_unknown_ca() -> None:
    client, server = make_pair(client_kw={"trust": unknown_ca_trust()})
    error, seen = _verification_failure(client, server)
    assert "did not verify" in str(error)
    assert seen == AlertDescription.UNKNOWN_CA


def test_expired_certificate_is_certificate_expired() -> None:
    later = FixedClock(datetime.datetime(3000, 6, 1, tzinfo=_UTC))
    client, server = make_pair(client_kw={"clock": later})
    error, seen = _verification_failure(client, server)
    assert "not valid at validation time" in str(error)
    assert seen == AlertDescription.CERTIFICATE_EXPIRED


def test_not_yet_valid_certificate_is_certificate_expired() -> None:
    earlier = FixedClock(datetime.datetime(1990, 6, 1, tzinfo=_UTC))
    client, server = make_pair(client_kw={"clock": earlier})
    _error, seen = _verification_failure(client, server)
    assert seen == AlertDescription.CERTIFICATE_EXPIRED


def test_hostname_is_matched_against_ip_address_sans() -> None:
    client, server = make_pair(server_hostname="127.0.0.1")
    handshake(client, server)
    assert client.negotiated is not None and client.negotiated.verified_chain is not None


def test_wrong_ip_address_is_bad_certificate() -> None:
    client, server = make_pair(server_hostname="127.0.0.2")
    _error, seen = _verification_failure(client, server)
    assert seen == AlertDescription.BAD_CERTIFICATE


def _pair_for(chain: Pki) -> tuple[ClientConnection, ServerConnection]:
    client = ClientConnection(ClientConfig(trust=chain.trust), server_hostname="localhost")
    server = ServerConnection(ServerConfig(certificates=(chain.certified,)))
    return client, server


@pytest.mark.parametrize("critical", [True, False], ids=["trustme-style", "webpki-style"])
def test_client_auth_only_certificate_is_refused_for_a_server(critical: bool) -> None:
    client, server = _pair_for(client_auth_only_pki(critical=critical))
    error, seen = _verification_failure(client, server)
    assert "extendedKeyUsage does not allow server authentication" in str(error)
    assert seen == AlertDescription.BAD_CERTIFICATE


def test_verification_is_skipped_when_disabled() -> None:
    client, server = make_pair(client_kw={"verify_peer": False, "trust": unknown_ca_trust()})
    handshake(client, server)
    assert client.handshake_complete


def test_verification_failure_reports_the_reason() -> None:
    client, server = make_pair(client_kw={"trust": unknown_ca_trust()})
    error, _seen = _verification_failure(client, server)
    assert error.reasons and "candidates exhausted" in error.reasons[0]


# --- after the handshake -----------------------------------------------------------------


def _ticket(lifetime: int) -> bytes:
    body = NewSessionTicket(
        ticket_lifetime=lifetime, ticket_age_add=7, ticket_nonce=b"\x00", ticket=b"opaque"
    ).encode()
    return frame(HandshakeType.NEW_SESSION_TICKET, body)


def test_client_reports_a_new_session_ticket() -> None:
    client, server = make_pair()
    handshake(client, server)
    server.queue_handshake(_ticket(7200))
    assert pump(server, client) == [NewSessionTicketReceived(lifetime=7200)]


def test_client_accepts_a_ticket_arriving_with_the_server_flight() -> None:
    # Servers commonly send tickets right after their Finished, in the same
    # flight; ours does by itself (here: one foreign ticket after its own).
    client, server = make_pair(server_kw={"ticket_count": 1})
    flight = server_flight(client, server)
    server.queue_handshake(_ticket(300))
    events = client.receive_data(flight + server.data_to_send())
    assert events == [
        HandshakeComplete(),
        NewSessionTicketReceived(lifetime=7200),
        NewSessionTicketReceived(lifetime=300),
    ]


def test_ticket_valid_for_more_than_seven_days_is_illegal_parameter() -> None:
    client, server = make_pair()
    handshake(client, server)
    server.queue_handshake(_ticket(604_801))
    with pytest.raises(IllegalParameter, match="7-day maximum"):
        pump(server, client)
    assert alert_seen_by(server, client.data_to_send()) == AlertDescription.ILLEGAL_PARAMETER


def test_post_handshake_certificate_request_is_unexpected_message() -> None:
    # The client did not offer post_handshake_auth (RFC 8446 §4.6.2).
    client, server = make_pair()
    handshake(client, server)
    request = CertificateRequest(
        certificate_request_context=b"\x01",
        extensions={ExtensionType.SIGNATURE_ALGORITHMS: encode_u16_list([0x0403])},
    )
    server.queue_handshake(frame(HandshakeType.CERTIFICATE_REQUEST, request.encode()))
    with pytest.raises(UnexpectedMessage, match="CERTIFICATE_REQUEST in state ClientTraffic"):
        pump(server, client)


# --- ALPN ----------------------------------------------------------------------------------


def test_alpn_selects_the_servers_preferred_common_protocol() -> None:
    client, server = make_pair(
        client_kw={"alpn_protocols": ("h2", "http/1.1")},
        server_kw={"alpn_protocols": ("http/1.1", "h2")},
    )
    handshake(client, server)
    assert client.negotiated is not None and server.negotiated is not None
    assert client.negotiated.alpn_protocol == "http/1.1"
    assert server.negotiated.alpn_protocol == "http/1.1"


def test_alpn_is_none_when_the_client_offers_none() -> None:
    client, server = make_pair(server_kw={"alpn_protocols": ("h2",)})
    handshake(client, server)
    assert client.negotiated is not None and server.negotiated is not None
    assert client.negotiated.alpn_protocol is None
    assert server.negotiated.alpn_protocol is None


def test_alpn_is_none_when_the_server_has_no_alpn_configured() -> None:
    client, server = make_pair(client_kw={"alpn_protocols": ("h2",)})
    handshake(client, server)
    assert client.negotiated is not None
    assert client.negotiated.alpn_protocol is None


def test_alpn_mismatch_is_no_application_protocol_seen_by_the_client() -> None:
    client, server = make_pair(
        client_kw={"alpn_protocols": ("h2",)}, server_kw={"alpn_protocols": ("http/1.1",)}
    )
    client.start_handshake()
    with pytest.raises(NoApplicationProtocol, match=r"accepts only \['http/1.1'\]"):
        pump(client, server)
    wire = server.data_to_send()
    assert last_alert(wire) == AlertDescription.NO_APPLICATION_PROTOCOL
    with pytest.raises(AlertReceived) as info:
        client.receive_data(wire)
    assert info.value.description == 120  # no_application_protocol, RFC 7301 §3.2
