"""Handshake message codecs (engine/messages.py), one behaviour per test."""

from __future__ import annotations

import hashlib

import pytest

from triotls.engine.enums import ExtensionType, HandshakeType
from triotls.engine.messages import (
    HELLO_RETRY_REQUEST_RANDOM,
    Certificate,
    CertificateEntry,
    CertificateRequest,
    CertificateVerify,
    ClientHello,
    EncryptedExtensions,
    Finished,
    KeyUpdate,
    NewSessionTicket,
    ServerHello,
    frame,
)
from triotls.errors import DecodeError, IllegalParameter, UnsupportedExtension

_RANDOM = bytes(range(32))


def _client_hello(**changes: object) -> ClientHello:
    fields: dict[str, object] = {
        "random": _RANDOM,
        "legacy_session_id": b"\x11" * 32,
        "cipher_suites": (0x1301, 0x1303),
        "extensions": {ExtensionType.SUPPORTED_VERSIONS: b"\x02\x03\x04", 0x0A0A: b""},
    }
    fields.update(changes)
    return ClientHello(**fields)  # type: ignore[arg-type]


def test_hello_retry_request_random_is_sha256_of_its_name() -> None:
    # RFC 8446 §4.1.3 defines the value as SHA-256("HelloRetryRequest").
    assert hashlib.sha256(b"HelloRetryRequest").digest() == HELLO_RETRY_REQUEST_RANDOM


def test_frame_prefixes_type_and_uint24_length() -> None:
    assert frame(HandshakeType.FINISHED, b"abc") == b"\x14\x00\x00\x03abc"


# --- ClientHello ----------------------------------------------------------------------


def test_client_hello_round_trips() -> None:
    hello = _client_hello()
    assert ClientHello.decode(hello.encode()) == hello


def test_client_hello_keeps_extension_order() -> None:
    exts = {0x0A0A: b"", ExtensionType.SUPPORTED_VERSIONS: b"\x02\x03\x04", 0x1A1A: b"x"}
    decoded = ClientHello.decode(_client_hello(extensions=exts).encode())
    assert list(decoded.extensions) == [0x0A0A, ExtensionType.SUPPORTED_VERSIONS, 0x1A1A]


def test_client_hello_keeps_unknown_cipher_suites_as_ints() -> None:
    decoded = ClientHello.decode(_client_hello(cipher_suites=(0x0A0A, 0x1301)).encode())
    assert decoded.cipher_suites == (0x0A0A, 0x1301)


def test_client_hello_without_an_extension_block_decodes_with_no_extensions() -> None:
    # A TLS 1.2 ClientHello may omit the block; the server then refuses the version.
    body = _client_hello(extensions={}).encode()[:-2]
    assert ClientHello.decode(body).extensions == {}


def test_client_hello_with_a_33_byte_session_id_is_decode_error() -> None:
    body = _client_hello(legacy_session_id=bytes(33)).encode()
    with pytest.raises(DecodeError, match=r"legacy_session_id length 33 is outside 0\.\.32"):
        ClientHello.decode(body)


def test_client_hello_with_no_cipher_suites_is_decode_error() -> None:
    body = _client_hello(cipher_suites=()).encode()
    with pytest.raises(DecodeError, match="cipher_suites length 0"):
        ClientHello.decode(body)


def test_client_hello_with_no_compression_methods_is_decode_error() -> None:
    body = _client_hello(legacy_compression_methods=b"").encode()
    with pytest.raises(DecodeError, match="legacy_compression_methods length 0"):
        ClientHello.decode(body)


def test_client_hello_with_trailing_bytes_is_decode_error() -> None:
    with pytest.raises(DecodeError, match="trailing"):
        ClientHello.decode(_client_hello().encode() + b"\x00")


def test_client_hello_with_a_short_random_is_decode_error() -> None:
    with pytest.raises(DecodeError, match="random needs 32 bytes"):
        ClientHello.decode(b"\x03\x03" + bytes(20))


# --- ServerHello -----------------------------------------------------------------------


def _server_hello(**changes: object) -> ServerHello:
    fields: dict[str, object] = {
        "random": _RANDOM,
        "legacy_session_id_echo": b"\x11" * 32,
        "cipher_suite": 0x1301,
        "extensions": {
            ExtensionType.SUPPORTED_VERSIONS: b"\x03\x04",
            ExtensionType.KEY_SHARE: b"\x00\x1d\x00\x01\x01",
        },
    }
    fields.update(changes)
    return ServerHello(**fields)  # type: ignore[arg-type]


def test_server_hello_round_trips() -> None:
    hello = _server_hello()
    decoded = ServerHello.decode(hello.encode())
    assert decoded == hello
    assert not decoded.is_hello_retry_request


def test_hello_retry_request_is_recognised_by_its_random() -> None:
    hrr = _server_hello(
        random=HELLO_RETRY_REQUEST_RANDOM,
        extensions={ExtensionType.KEY_SHARE: b"\x00\x17", ExtensionType.COOKIE: b"\x00\x01c"},
    )
    decoded = ServerHello.decode(hrr.encode())
    assert decoded.is_hello_retry_request
    assert decoded.extensions[ExtensionType.COOKIE] == b"\x00\x01c"


def test_server_hello_with_a_cookie_is_illegal_parameter() -> None:
    # cookie may appear in a HelloRetryRequest, never in a ServerHello.
    hello = _server_hello(extensions={ExtensionType.COOKIE: b"\x00\x01c"})
    with pytest.raises(IllegalParameter, match="cookie is not allowed"):
        ServerHello.decode(hello.encode())


def test_server_hello_with_an_unknown_extension_is_unsupported_extension() -> None:
    hello = _server_hello(extensions={0x0A0A: b""})
    with pytest.raises(UnsupportedExtension, match="0x0a0a"):
        ServerHello.decode(hello.encode())


def test_server_hello_with_trailing_bytes_is_decode_error() -> None:
    with pytest.raises(DecodeError, match="trailing"):
        ServerHello.decode(_server_hello().encode() + b"\x00")


# --- EncryptedExtensions, CertificateRequest ---------------------------------------------


def test_encrypted_extensions_round_trip() -> None:
    ee = EncryptedExtensions(
        extensions={
            ExtensionType.SERVER_NAME: b"",
            ExtensionType.APPLICATION_LAYER_PROTOCOL_NEGOTIATION: b"\x00\x03\x02h2",
        }
    )
    assert EncryptedExtensions.decode(ee.encode()) == ee


def test_encrypted_extensions_without_the_block_is_decode_error() -> None:
    with pytest.raises(DecodeError, match="extensions length needs 2 bytes"):
        EncryptedExtensions.decode(b"")


def test_encrypted_extensions_with_key_share_is_illegal_parameter() -> None:
    ee = EncryptedExtensions(extensions={ExtensionType.KEY_SHARE: b""})
    with pytest.raises(IllegalParameter, match="key_share is not allowed"):
        EncryptedExtensions.decode(ee.encode())


def test_certificate_request_round_trips() -> None:
    cr = CertificateRequest(
        certificate_request_context=b"",
        extensions={ExtensionType.SIGNATURE_ALGORITHMS: b"\x00\x02\x04\x03", 0x0A0A: b""},
    )
    assert CertificateRequest.decode(cr.encode()) == cr


def test_certificate_request_without_extensions_is_decode_error() -> None:
    with pytest.raises(DecodeError, match="extensions length 0 is outside 2"):
        CertificateRequest.decode(CertificateRequest().encode())


# --- Certificate, CertificateVerify, Finished ------------------------------------------------


def test_certificate_round_trips() -> None:
    cert = Certificate(
        certificate_request_context=b"\x01",
        certificate_list=(
            CertificateEntry(cert_data=b"leaf", extensions={ExtensionType.STATUS_REQUEST: b"x"}),
            CertificateEntry(cert_data=b"intermediate"),
        ),
    )
    assert Certificate.decode(cert.encode()) == cert


def test_empty_certificate_list_decodes() -> None:
    assert Certificate.decode(Certificate().encode()).certificate_list == ()


def test_certificate_entry_with_empty_cert_data_is_decode_error() -> None:
    body = Certificate(certificate_list=(CertificateEntry(cert_data=b""),)).encode()
    with pytest.raises(DecodeError, match="cert_data length 0"):
        Certificate.decode(body)


def test_certificate_entry_without_its_extension_block_is_decode_error() -> None:
    # certificate_list holds cert_data but the entry's extensions are cut off.
    body = b"\x00" + b"\x00\x00\x05" + b"\x00\x00\x02ab"
    with pytest.raises(DecodeError, match="extensions length needs 2 bytes"):
        Certificate.decode(body)


def test_certificate_with_bytes_after_the_list_is_decode_error() -> None:
    with pytest.raises(DecodeError, match="trailing"):
        Certificate.decode(Certificate().encode() + b"\x00")


def test_certificate_verify_round_trips() -> None:
    cv = CertificateVerify(algorithm=0x0403, signature=b"sig")
    assert CertificateVerify.decode(cv.encode()) == cv


def test_certificate_verify_with_an_empty_signature_is_decode_error() -> None:
    with pytest.raises(DecodeError, match="signature length 0"):
        CertificateVerify.decode(b"\x04\x03\x00\x00")


@pytest.mark.parametrize("hash_len", [32, 48])
def test_finished_of_the_hash_length_decodes(hash_len: int) -> None:
    assert Finished.decode(bytes(hash_len), hash_len).verify_data == bytes(hash_len)


def test_finished_of_another_length_is_decode_error() -> None:
    with pytest.raises(DecodeError, match="Finished is 31 bytes, expected 32"):
        Finished.decode(bytes(31), 32)


# --- post-handshake messages ----------------------------------------------------------------


def test_new_session_ticket_round_trips() -> None:
    ticket = NewSessionTicket(
        ticket_lifetime=7200,
        ticket_age_add=0xDEADBEEF,
        ticket_nonce=b"\x00",
        ticket=b"opaque",
        extensions={ExtensionType.EARLY_DATA: b"\x00\x00\x40\x00"},
    )
    assert NewSessionTicket.decode(ticket.encode()) == ticket


def test_new_session_ticket_over_seven_days_is_illegal_parameter() -> None:
    ticket = NewSessionTicket(
        ticket_lifetime=604_801, ticket_age_add=0, ticket_nonce=b"", ticket=b"t"
    )
    with pytest.raises(IllegalParameter, match="exceeds the 7-day maximum"):
        NewSessionTicket.decode(ticket.encode())


def test_new_session_ticket_with_an_empty_ticket_is_decode_error() -> None:
    ticket = NewSessionTicket(ticket_lifetime=1, ticket_age_add=0, ticket_nonce=b"", ticket=b"")
    with pytest.raises(DecodeError, match="ticket length 0"):
        NewSessionTicket.decode(ticket.encode())


@pytest.mark.parametrize("value", [0, 1])
def test_key_update_round_trips(value: int) -> None:
    assert KeyUpdate.decode(KeyUpdate(request_update=value).encode()).request_update == value


def test_key_update_with_request_2_is_illegal_parameter() -> None:
    with pytest.raises(IllegalParameter, match="neither 0 nor 1"):
        KeyUpdate.decode(b"\x02")


def test_key_update_with_two_bytes_is_decode_error() -> None:
    with pytest.raises(DecodeError, match="trailing"):
        KeyUpdate.decode(b"\x00\x00")
