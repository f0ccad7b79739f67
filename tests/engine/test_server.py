"""The server side of the handshake: choices it makes and ClientHellos it refuses."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from tests.support.engine_pairs import (
    alert_seen_by,
    handshake,
    last_alert,
    make_pair,
    pki,
    pump,
    records,
    replace_extension,
    rewrite_client_hello,
    rewrite_outgoing_handshake,
    split_records,
)
from triotls.config import ServerConfig
from triotls.engine import ClientConnection, ServerConnection
from triotls.engine.codec import Writer
from triotls.engine.enums import (
    AlertDescription,
    CipherSuite,
    ContentType,
    ExtensionType,
    HandshakeType,
    NamedGroup,
    SignatureScheme,
)
from triotls.engine.extensions import (
    KeyShareEntry,
    decode_key_share_ch,
    decode_record_size_limit,
    encode_extensions,
    encode_key_share_ch,
    encode_server_name,
    encode_u16_list,
)
from triotls.engine.messages import (
    HELLO_RETRY_REQUEST_RANDOM,
    ClientHello,
    EncryptedExtensions,
    ServerHello,
    frame,
)
from triotls.engine.state import HandshakeKind
from triotls.errors import (
    DecodeError,
    DecryptError,
    HandshakeFailure,
    IllegalParameter,
    MissingExtension,
    NoApplicationProtocol,
    ProtocolVersionError,
    UnexpectedMessage,
)


def _hello_wire(**client_kw: object) -> tuple[ServerConnection, bytes]:
    client, server = make_pair(client_kw=client_kw)
    client.start_handshake()
    return server, client.data_to_send()


def _refused(server: ServerConnection, wire: bytes, error: type[Exception], match: str) -> int:
    """Feed ``wire``, expect ``error``, return the plaintext alert the server sent."""
    with pytest.raises(error, match=match):
        server.receive_data(wire)
    return last_alert(server.data_to_send())


def _change_extension(ext_type: int, data: bytes | None) -> Callable[[ClientHello], ClientHello]:
    def change(hello: ClientHello) -> ClientHello:
        return dataclasses.replace(
            hello, extensions=replace_extension(hello.extensions, ext_type, data)
        )

    return change


def _raw_hello_record(hello: ClientHello, extensions: list[tuple[int, bytes]]) -> bytes:
    """A ClientHello record with an extension list a dict cannot hold (duplicates)."""
    body = dataclasses.replace(hello, extensions={}).encode()[:-2]
    w = Writer()
    encode_extensions(w, extensions)
    raw = frame(HandshakeType.CLIENT_HELLO, body + w.getvalue())
    return b"\x16\x03\x01" + len(raw).to_bytes(2, "big") + raw


def _server_extensions(client: ClientConnection, server: ServerConnection) -> dict[int, bytes]:
    """The EncryptedExtensions the server sends, read before they are sealed."""
    seen: list[bytes] = []

    def record(raw: bytes) -> bytes:
        if raw[0] == HandshakeType.ENCRYPTED_EXTENSIONS:
            seen.append(raw[4:])
        return raw

    rewrite_outgoing_handshake(server, record)
    client.start_handshake()
    pump(client, server)
    return EncryptedExtensions.decode(seen[0]).extensions


# --- choices ---------------------------------------------------------------------------


def test_server_sends_hello_retry_request_when_no_share_fits() -> None:
    client, server = make_pair(
        client_kw={"key_share_groups": (NamedGroup.X25519,)},
        server_kw={"groups": (NamedGroup.SECP256R1, NamedGroup.SECP384R1)},
    )
    client.start_handshake()
    pump(client, server)
    wire = server.data_to_send()
    hrr = ServerHello.decode(split_records(wire)[0][9:])
    assert hrr.random == HELLO_RETRY_REQUEST_RANDOM
    assert hrr.extensions[ExtensionType.KEY_SHARE] == b"\x00\x17"
    client.receive_data(wire)
    pump(client, server)
    pump(server, client)
    pump(client, server)
    assert server.negotiated is not None and client.negotiated is not None
    assert server.negotiated.group == NamedGroup.SECP256R1
    assert server.negotiated.handshake_kind == HandshakeKind.FULL_WITH_HELLO_RETRY_REQUEST
    assert client.negotiated.handshake_kind == HandshakeKind.FULL_WITH_HELLO_RETRY_REQUEST


def test_hello_retry_request_is_followed_by_ccs_in_middlebox_compat_mode() -> None:
    client, server = make_pair(
        client_kw={"key_share_groups": (NamedGroup.X25519,), "middlebox_compat": True},
        server_kw={"groups": (NamedGroup.SECP256R1,)},
    )
    client.start_handshake()
    pump(client, server)
    assert [t for t, _ in records(server.data_to_send())] == [
        ContentType.HANDSHAKE,
        ContentType.CHANGE_CIPHER_SPEC,
    ]


def test_hello_retry_request_has_no_ccs_without_middlebox_compat() -> None:
    client, server = make_pair(
        client_kw={"key_share_groups": (NamedGroup.X25519,), "middlebox_compat": False},
        server_kw={"groups": (NamedGroup.SECP256R1,)},
    )
    handshake(client, server)
    assert server.negotiated is not None
    assert server.negotiated.handshake_kind == HandshakeKind.FULL_WITH_HELLO_RETRY_REQUEST


def test_server_prefers_a_group_the_client_sent_a_share_for() -> None:
    client, server = make_pair(
        client_kw={
            "groups": (NamedGroup.SECP256R1, NamedGroup.X25519),
            "key_share_groups": (NamedGroup.X25519,),
        },
        server_kw={"groups": (NamedGroup.SECP256R1, NamedGroup.X25519)},
    )
    handshake(client, server)
    assert server.negotiated is not None
    assert server.negotiated.group == NamedGroup.X25519
    assert server.negotiated.handshake_kind == HandshakeKind.FULL


def test_server_picks_its_preferred_cipher_suite() -> None:
    client, server = make_pair(
        server_kw={
            "cipher_suites": (
                CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
                CipherSuite.TLS_AES_128_GCM_SHA256,
            )
        }
    )
    handshake(client, server)
    assert client.negotiated is not None
    assert client.negotiated.cipher_suite == CipherSuite.TLS_CHACHA20_POLY1305_SHA256


def test_server_picks_the_certificate_whose_key_the_client_accepts() -> None:
    client, server = make_pair(
        client_kw={"signature_schemes": (SignatureScheme.ED25519,)},
        server_kw={"certificates": (pki("ecdsa").certified, pki("ed25519").certified)},
    )
    client = ClientConnection(
        dataclasses.replace(client.config, trust=pki("ed25519").trust), server_hostname="localhost"
    )
    handshake(client, server)
    assert server.negotiated is not None
    assert server.negotiated.signature_scheme == SignatureScheme.ED25519


def test_server_without_a_usable_certificate_is_handshake_failure() -> None:
    server, wire = _hello_wire(signature_schemes=(SignatureScheme.ED25519,))
    alert = _refused(server, wire, HandshakeFailure, "none of the server's certificates")
    assert alert == AlertDescription.HANDSHAKE_FAILURE


def test_server_reports_sni_in_lower_case() -> None:
    client, server = make_pair(server_hostname="LocalHost")
    handshake(client, server)
    assert server.negotiated is not None
    assert server.negotiated.server_name == "localhost"


def test_server_reports_no_sni_for_an_ip_literal_client() -> None:
    client, server = make_pair(server_hostname="127.0.0.1")
    handshake(client, server)
    assert server.negotiated is not None
    assert server.negotiated.server_name is None


def test_server_acknowledges_sni_with_an_empty_extension() -> None:
    client, server = make_pair()
    exts = _server_extensions(client, server)
    assert exts[ExtensionType.SERVER_NAME] == b""


def test_server_answers_record_size_limit_only_when_offered() -> None:
    client, server = make_pair(server_kw={"record_size_limit": 1000})
    exts = _server_extensions(client, server)
    assert decode_record_size_limit(exts[ExtensionType.RECORD_SIZE_LIMIT]) == 1000
    client, server = make_pair(client_kw={"record_size_limit": None})
    assert ExtensionType.RECORD_SIZE_LIMIT not in _server_extensions(client, server)


def test_server_ignores_unknown_client_hello_extensions() -> None:
    client, server = make_pair()
    client.start_handshake()
    grease = rewrite_client_hello(client.data_to_send(), _change_extension(0x0A0A, b"grease"))
    server.receive_data(grease)
    assert server.state_name == "ExpectClientFinished"


def test_server_accepts_a_client_hello_split_over_many_records() -> None:
    client, server = make_pair()
    client.start_handshake()
    message = split_records(client.data_to_send())[0][5:]
    fragments = [message[i : i + 100] for i in range(0, len(message), 100)]
    wire = b"".join(b"\x16\x03\x01" + len(f).to_bytes(2, "big") + f for f in fragments)
    server.receive_data(wire)
    client.receive_data(server.data_to_send())
    pump(client, server)
    assert server.handshake_complete


# --- ALPN ---------------------------------------------------------------------------------


def test_server_with_no_common_alpn_protocol_is_no_application_protocol() -> None:
    client, server = make_pair(
        client_kw={"alpn_protocols": ("h2", "spdy/3")},
        server_kw={"alpn_protocols": ("http/1.1",)},
    )
    client.start_handshake()
    alert = _refused(server, client.data_to_send(), NoApplicationProtocol, "b'h2', b'spdy/3'")
    assert alert == AlertDescription.NO_APPLICATION_PROTOCOL


# --- ClientHellos the server refuses -------------------------------------------------------


def test_client_hello_without_supported_versions_is_protocol_version() -> None:
    server, wire = _hello_wire()
    tls12 = rewrite_client_hello(wire, _change_extension(ExtensionType.SUPPORTED_VERSIONS, None))
    alert = _refused(server, tls12, ProtocolVersionError, "does not offer TLS 1.3")
    assert alert == AlertDescription.PROTOCOL_VERSION


def test_client_hello_offering_only_tls12_is_protocol_version() -> None:
    server, wire = _hello_wire()
    tls12 = rewrite_client_hello(
        wire, _change_extension(ExtensionType.SUPPORTED_VERSIONS, b"\x02\x03\x03")
    )
    alert = _refused(server, tls12, ProtocolVersionError, "it offers 0x0303")
    assert alert == AlertDescription.PROTOCOL_VERSION


def test_client_hello_without_extensions_is_protocol_version() -> None:
    server, wire = _hello_wire()
    record = split_records(wire)[0]
    hello = ClientHello.decode(record[9:])
    body = dataclasses.replace(hello, extensions={}).encode()[:-2]
    raw = frame(HandshakeType.CLIENT_HELLO, body)
    bare = b"\x16\x03\x01" + len(raw).to_bytes(2, "big") + raw
    alert = _refused(server, bare, ProtocolVersionError, "TLS 1.3 only")
    assert alert == AlertDescription.PROTOCOL_VERSION


def test_client_hello_with_no_common_cipher_suite_is_handshake_failure() -> None:
    client, server = make_pair(
        client_kw={"cipher_suites": (CipherSuite.TLS_AES_128_GCM_SHA256,)},
        server_kw={"cipher_suites": (CipherSuite.TLS_AES_256_GCM_SHA384,)},
    )
    client.start_handshake()
    alert = _refused(server, client.data_to_send(), HandshakeFailure, "no cipher suite in common")
    assert alert == AlertDescription.HANDSHAKE_FAILURE


def test_client_hello_with_no_common_group_is_handshake_failure() -> None:
    client, server = make_pair(
        client_kw={"groups": (NamedGroup.X25519,), "key_share_groups": (NamedGroup.X25519,)},
        server_kw={"groups": (NamedGroup.SECP384R1,)},
    )
    client.start_handshake()
    alert = _refused(server, client.data_to_send(), HandshakeFailure, "no key exchange group")
    assert alert == AlertDescription.HANDSHAKE_FAILURE


def test_client_hello_without_signature_algorithms_is_missing_extension() -> None:
    server, wire = _hello_wire()
    bad = rewrite_client_hello(wire, _change_extension(ExtensionType.SIGNATURE_ALGORITHMS, None))
    alert = _refused(server, bad, MissingExtension, "no signature_algorithms")
    assert alert == AlertDescription.MISSING_EXTENSION


def test_client_hello_without_key_share_is_missing_extension() -> None:
    server, wire = _hello_wire()
    bad = rewrite_client_hello(wire, _change_extension(ExtensionType.KEY_SHARE, None))
    alert = _refused(server, bad, MissingExtension, "supported_groups or key_share")
    assert alert == AlertDescription.MISSING_EXTENSION


def test_client_hello_with_psk_but_no_psk_modes_is_missing_extension() -> None:
    server, wire = _hello_wire()

    def psk_without_modes(hello: ClientHello) -> ClientHello:
        exts = replace_extension(hello.extensions, ExtensionType.PSK_KEY_EXCHANGE_MODES, None)
        psk = b"\x00\x07\x00\x01x\x00\x00\x00\x00\x00\x21\x20" + bytes(32)
        exts = replace_extension(exts, ExtensionType.PRE_SHARED_KEY, psk)
        return dataclasses.replace(hello, extensions=exts)

    alert = _refused(
        server,
        rewrite_client_hello(wire, psk_without_modes),
        MissingExtension,
        "psk_key_exchange_modes",
    )
    assert alert == AlertDescription.MISSING_EXTENSION


def test_client_hello_with_a_duplicate_extension_is_illegal_parameter() -> None:
    server, wire = _hello_wire()
    hello = ClientHello.decode(split_records(wire)[0][9:])
    groups = hello.extensions[ExtensionType.SUPPORTED_GROUPS]
    doubled = [*hello.extensions.items(), (ExtensionType.SUPPORTED_GROUPS, groups)]
    alert = _refused(server, _raw_hello_record(hello, doubled), IllegalParameter, "appears twice")
    assert alert == AlertDescription.ILLEGAL_PARAMETER


def test_client_hello_with_pre_shared_key_not_last_is_illegal_parameter() -> None:
    server, wire = _hello_wire()
    hello = ClientHello.decode(split_records(wire)[0][9:])
    psk = b"\x00\x07\x00\x01x\x00\x00\x00\x00\x00\x21\x20" + bytes(32)
    exts = [(ExtensionType.PRE_SHARED_KEY, psk), *hello.extensions.items()]
    alert = _refused(server, _raw_hello_record(hello, exts), IllegalParameter, "must be the last")
    assert alert == AlertDescription.ILLEGAL_PARAMETER


def test_client_hello_with_two_shares_for_one_group_is_illegal_parameter() -> None:
    server, wire = _hello_wire(key_share_groups=(NamedGroup.X25519,))
    hello = ClientHello.decode(split_records(wire)[0][9:])
    share = decode_key_share_ch(hello.extensions[ExtensionType.KEY_SHARE])[0]
    doubled = encode_key_share_ch([share, share])
    bad = rewrite_client_hello(wire, _change_extension(ExtensionType.KEY_SHARE, doubled))
    alert = _refused(server, bad, IllegalParameter, "twice")
    assert alert == AlertDescription.ILLEGAL_PARAMETER


def test_client_hello_with_a_share_for_an_unlisted_group_is_illegal_parameter() -> None:
    server, wire = _hello_wire(
        groups=(NamedGroup.X25519, NamedGroup.SECP256R1), key_share_groups=(NamedGroup.X25519,)
    )
    only_p256 = encode_u16_list([NamedGroup.SECP256R1])
    bad = rewrite_client_hello(wire, _change_extension(ExtensionType.SUPPORTED_GROUPS, only_p256))
    alert = _refused(server, bad, IllegalParameter, "supported_groups does not list")
    assert alert == AlertDescription.ILLEGAL_PARAMETER


def test_client_hello_with_compression_is_illegal_parameter() -> None:
    server, wire = _hello_wire()
    bad = rewrite_client_hello(
        wire, lambda hello: dataclasses.replace(hello, legacy_compression_methods=b"\x01\x00")
    )
    alert = _refused(server, bad, IllegalParameter, "null compression")
    assert alert == AlertDescription.ILLEGAL_PARAMETER


def test_client_hello_with_a_trailing_dot_server_name_is_illegal_parameter() -> None:
    server, wire = _hello_wire()
    bad = rewrite_client_hello(
        wire, _change_extension(ExtensionType.SERVER_NAME, encode_server_name("localhost."))
    )
    alert = _refused(server, bad, IllegalParameter, "not a valid name")
    assert alert == AlertDescription.ILLEGAL_PARAMETER


def test_client_hello_with_trailing_bytes_is_decode_error() -> None:
    server, wire = _hello_wire()
    record = split_records(wire)[0]
    raw = frame(HandshakeType.CLIENT_HELLO, record[9:] + b"\x00")
    bad = b"\x16\x03\x01" + len(raw).to_bytes(2, "big") + raw
    alert = _refused(server, bad, DecodeError, "trailing")
    assert alert == AlertDescription.DECODE_ERROR


@pytest.mark.parametrize(
    ("group", "key_exchange", "match"),
    [
        (NamedGroup.X25519, bytes(32), "all-zero"),
        (NamedGroup.X25519, bytes(31), "expected 32"),
        (NamedGroup.SECP256R1, b"\x04" + bytes(64), "not a point on the curve"),
        (NamedGroup.SECP256R1, b"\x02" + bytes(32), "uncompressed point"),
        (NamedGroup.X25519MLKEM768, bytes(100), "expected 1216"),
        # FIPS 203 §7.2: coefficients of 0xfff exceed q, so the key is refused.
        (NamedGroup.X25519MLKEM768, b"\xff" * 1184 + bytes(range(1, 33)), "key is invalid"),
    ],
    ids=[
        "x25519-zero",
        "x25519-short",
        "p256-off-curve",
        "p256-compressed",
        "hybrid-short",
        "hybrid-bad-ek",
    ],
)
def test_client_hello_with_an_invalid_key_share_is_illegal_parameter(
    group: NamedGroup, key_exchange: bytes, match: str
) -> None:
    server, wire = _hello_wire(groups=(group,), key_share_groups=(group,))
    share = encode_key_share_ch([KeyShareEntry(group=group, key_exchange=key_exchange)])
    bad = rewrite_client_hello(wire, _change_extension(ExtensionType.KEY_SHARE, share))
    alert = _refused(server, bad, IllegalParameter, match)
    assert alert == AlertDescription.ILLEGAL_PARAMETER


def test_client_hello_over_the_size_limit_is_decode_error() -> None:
    client, server = make_pair(server_kw={"max_handshake_message_size": 4096})
    client.start_handshake()
    wire = rewrite_client_hello(
        client.data_to_send(), _change_extension(ExtensionType.PADDING, bytes(5000))
    )
    alert = _refused(server, wire, DecodeError, "max_handshake_message_size")
    assert alert == AlertDescription.DECODE_ERROR


# --- the second ClientHello ----------------------------------------------------------------


def _after_hello_retry() -> tuple[ClientConnection, ServerConnection, bytes]:
    client, server = make_pair(
        client_kw={"key_share_groups": (NamedGroup.X25519,)},
        server_kw={"groups": (NamedGroup.SECP256R1,)},
    )
    client.start_handshake()
    pump(client, server)
    pump(server, client)
    return client, server, client.data_to_send()


def test_second_client_hello_with_a_new_random_is_illegal_parameter() -> None:
    _client, server, retry = _after_hello_retry()
    bad = rewrite_client_hello(retry, lambda ch: dataclasses.replace(ch, random=bytes(32)))
    with pytest.raises(IllegalParameter, match="changed its random"):
        server.receive_data(bad)


def test_second_client_hello_without_the_requested_share_is_illegal_parameter() -> None:
    _client, server, retry = _after_hello_retry()
    x25519 = KeyShareEntry(group=NamedGroup.X25519, key_exchange=bytes(range(1, 33)))
    bad = rewrite_client_hello(
        retry, _change_extension(ExtensionType.KEY_SHARE, encode_key_share_ch([x25519]))
    )
    with pytest.raises(IllegalParameter, match="which the HelloRetryRequest asked for"):
        server.receive_data(bad)


def test_second_client_hello_with_early_data_is_illegal_parameter() -> None:
    _client, server, retry = _after_hello_retry()
    bad = rewrite_client_hello(retry, _change_extension(ExtensionType.EARLY_DATA, b""))
    with pytest.raises(IllegalParameter, match="early_data"):
        server.receive_data(bad)


def test_second_client_hello_with_another_session_id_is_illegal_parameter() -> None:
    _client, server, retry = _after_hello_retry()
    bad = rewrite_client_hello(
        retry, lambda ch: dataclasses.replace(ch, legacy_session_id=bytes(32))
    )
    with pytest.raises(IllegalParameter, match="legacy_session_id"):
        server.receive_data(bad)


# --- after the flight ---------------------------------------------------------------------


def test_tampered_client_finished_is_decrypt_error() -> None:
    client, server = make_pair()

    def flip(raw: bytes) -> bytes:
        if raw[0] != HandshakeType.FINISHED:
            return raw
        return raw[:-1] + bytes([raw[-1] ^ 0x80])

    rewrite_outgoing_handshake(client, flip)
    client.start_handshake()
    pump(client, server)
    pump(server, client)
    with pytest.raises(DecryptError, match="client's Finished does not verify"):
        pump(client, server)
    assert alert_seen_by(client, server.data_to_send()) == AlertDescription.DECRYPT_ERROR


def test_client_hello_in_traffic_is_unexpected_message() -> None:
    client, server = make_pair()
    handshake(client, server)
    fresh, _ = make_pair()
    fresh.start_handshake()
    hello = split_records(fresh.data_to_send())[0][5:]
    client.queue_handshake(hello)  # sealed under the client's application key
    with pytest.raises(UnexpectedMessage, match="received CLIENT_HELLO in state ServerTraffic"):
        pump(client, server)
    assert alert_seen_by(client, server.data_to_send()) == AlertDescription.UNEXPECTED_MESSAGE


def test_server_finished_sent_by_a_client_is_unexpected_message() -> None:
    client, server = make_pair()
    client.start_handshake()
    with pytest.raises(UnexpectedMessage, match="received FINISHED in state ExpectClientHello"):
        server.receive_data(b"\x16\x03\x03\x00\x24" + frame(HandshakeType.FINISHED, bytes(32)))
    assert last_alert(server.data_to_send()) == AlertDescription.UNEXPECTED_MESSAGE


def test_server_refuses_new_session_ticket_from_a_client() -> None:
    client, server = make_pair()
    handshake(client, server)
    client.queue_handshake(frame(HandshakeType.NEW_SESSION_TICKET, b"\x00" * 12))
    with pytest.raises(UnexpectedMessage, match="NEW_SESSION_TICKET"):
        pump(client, server)


def test_server_config_requires_a_certificate() -> None:
    with pytest.raises(ValueError, match="at least one CertifiedKey"):
        ServerConfig(certificates=())
