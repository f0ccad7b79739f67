"""Properties of the status_request, early_data and psk_key_exchange_modes codecs.

status_request (RFC 6066 §8) is a ClientHello's CertificateStatusRequest and,
in a CertificateEntry, the server's CertificateStatus (RFC 8446 §4.4.2.1);
early_data (RFC 8446 §4.2.10) is empty in a ClientHello and EncryptedExtensions
and a uint32 max_early_data_size in a NewSessionTicket; psk_key_exchange_modes
(RFC 8446 §4.2.9) lists the client's modes. For each: decode(encode(x)) == x,
every strict prefix of a valid encoding raises DecodeError, and arbitrary
bytes raise only TLSError subclasses, never InternalError.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triotls.engine.codec import Writer
from triotls.engine.extensions import (
    STATUS_TYPE_OCSP,
    decode_certificate_status,
    decode_empty,
    decode_psk_modes,
    decode_status_request,
    decode_u32,
    encode_certificate_status,
    encode_psk_modes,
    encode_status_request,
)
from triotls.errors import DecodeError, IllegalParameter, InternalError, TLSError

EXAMPLES = settings(max_examples=150, deadline=None)

ocsp_responses = st.binary(min_size=1, max_size=600)
other_status_types = st.integers(0, 255).filter(lambda t: t != STATUS_TYPE_OCSP)


def _status_request(responder_ids: bytes, request_extensions: bytes) -> bytes:
    """An OCSP CertificateStatusRequest with the given (opaque) lists, as peers send it."""
    w = Writer()
    w.u8(STATUS_TYPE_OCSP)
    w.vec16(responder_ids)  # ResponderID responder_id_list<0..2^16-1>
    w.vec16(request_extensions)  # Extensions request_extensions<0..2^16-1>
    return w.getvalue()


ocsp_status_requests = st.builds(
    _status_request, st.binary(max_size=200), st.binary(max_size=200)
) | st.just(encode_status_request())


def _only_tls_errors(decode: Callable[[bytes], object], data: bytes) -> None:
    try:
        decode(data)
    except InternalError as exc:
        raise AssertionError(f"hostile input caused an internal error: {exc!r}") from exc
    except TLSError:
        pass


# --- status_request in a ClientHello ------------------------------------------------------


def test_our_status_request_asks_for_ocsp() -> None:
    assert decode_status_request(encode_status_request()) is True


@EXAMPLES
@given(data=ocsp_status_requests)
def test_any_ocsp_status_request_decodes_as_asking_for_ocsp(data: bytes) -> None:
    assert decode_status_request(data) is True


@EXAMPLES
@given(data=ocsp_status_requests)
def test_every_strict_prefix_of_an_ocsp_status_request_is_decode_error(data: bytes) -> None:
    for end in range(len(data)):
        with pytest.raises(DecodeError):
            decode_status_request(data[:end])


@EXAMPLES
@given(data=ocsp_status_requests, extra=st.binary(min_size=1, max_size=8))
def test_status_request_with_trailing_bytes_is_decode_error(data: bytes, extra: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_status_request(data + extra)


@EXAMPLES
@given(status_type=other_status_types, rest=st.binary(max_size=64))
def test_status_request_of_another_type_is_ignored_whatever_follows(
    status_type: int, rest: bytes
) -> None:
    # RFC 6066 §8 defines ocsp(1) only; a server ignores what it does not know.
    assert decode_status_request(bytes([status_type]) + rest) is False


@EXAMPLES
@given(data=st.binary(max_size=300))
def test_arbitrary_status_request_bytes_raise_only_tls_errors(data: bytes) -> None:
    _only_tls_errors(decode_status_request, data)


# --- CertificateStatus in the leaf's CertificateEntry ----------------------------------------


@EXAMPLES
@given(response=ocsp_responses)
def test_certificate_status_decodes_to_the_response_encoded(response: bytes) -> None:
    assert decode_certificate_status(encode_certificate_status(response)) == response


@EXAMPLES
@given(response=ocsp_responses)
def test_every_strict_prefix_of_a_certificate_status_is_decode_error(response: bytes) -> None:
    encoded = encode_certificate_status(response)
    for end in range(len(encoded)):
        with pytest.raises(DecodeError):
            decode_certificate_status(encoded[:end])


@EXAMPLES
@given(response=ocsp_responses, extra=st.binary(min_size=1, max_size=8))
def test_certificate_status_with_trailing_bytes_is_decode_error(
    response: bytes, extra: bytes
) -> None:
    with pytest.raises(DecodeError):
        decode_certificate_status(encode_certificate_status(response) + extra)


def test_certificate_status_with_an_empty_response_is_decode_error() -> None:
    # RFC 6066 §8: opaque OCSPResponse<1..2^24-1>.
    with pytest.raises(DecodeError, match=r"OCSPResponse length 0 is outside 1\.\."):
        decode_certificate_status(encode_certificate_status(b""))


@EXAMPLES
@given(status_type=other_status_types, response=ocsp_responses)
def test_certificate_status_of_another_type_is_illegal_parameter(
    status_type: int, response: bytes
) -> None:
    encoded = bytes([status_type]) + encode_certificate_status(response)[1:]
    with pytest.raises(IllegalParameter, match="only ocsp"):
        decode_certificate_status(encoded)


@EXAMPLES
@given(data=st.binary(max_size=300))
def test_arbitrary_certificate_status_bytes_raise_only_tls_errors(data: bytes) -> None:
    _only_tls_errors(decode_certificate_status, data)


# --- early_data -------------------------------------------------------------------------------


def _max_early_data_size(data: bytes) -> int:
    return decode_u32(data, "max_early_data_size")


@EXAMPLES
@given(size=st.integers(0, 2**32 - 1))
def test_max_early_data_size_decodes_to_what_was_encoded(size: int) -> None:
    # RFC 8446 §4.2.10: uint32 max_early_data_size, as the server writes it.
    assert _max_early_data_size(size.to_bytes(4, "big")) == size


@EXAMPLES
@given(size=st.integers(0, 2**32 - 1), extra=st.binary(min_size=1, max_size=4))
def test_max_early_data_size_prefixes_and_extensions_are_decode_errors(
    size: int, extra: bytes
) -> None:
    encoded = size.to_bytes(4, "big")
    for end in range(len(encoded)):
        with pytest.raises(DecodeError):
            _max_early_data_size(encoded[:end])
    with pytest.raises(DecodeError):
        _max_early_data_size(encoded + extra)


def test_empty_early_data_decodes() -> None:
    decode_empty(b"", "early_data")  # ClientHello and EncryptedExtensions: empty


@EXAMPLES
@given(data=st.binary(min_size=1, max_size=64))
def test_non_empty_early_data_in_a_hello_is_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError, match="must be empty"):
        decode_empty(data, "early_data")


@EXAMPLES
@given(data=st.binary(max_size=64))
def test_arbitrary_early_data_bytes_raise_only_tls_errors(data: bytes) -> None:
    _only_tls_errors(_max_early_data_size, data)
    _only_tls_errors(lambda d: decode_empty(d, "early_data"), data)


# --- psk_key_exchange_modes -------------------------------------------------------------------

mode_lists = st.lists(st.integers(0, 255), min_size=1, max_size=255)


@EXAMPLES
@given(modes=mode_lists)
def test_psk_modes_decode_to_what_was_encoded(modes: list[int]) -> None:
    # Unknown modes are kept as plain ints; the server picks from its own.
    assert decode_psk_modes(encode_psk_modes(modes)) == tuple(modes)


@EXAMPLES
@given(modes=mode_lists)
def test_every_strict_prefix_of_psk_modes_is_decode_error(modes: list[int]) -> None:
    encoded = encode_psk_modes(modes)
    for end in range(len(encoded)):
        with pytest.raises(DecodeError):
            decode_psk_modes(encoded[:end])


def test_empty_psk_modes_list_is_decode_error() -> None:
    # RFC 8446 §4.2.9: PskKeyExchangeMode ke_modes<1..255>.
    with pytest.raises(DecodeError, match=r"ke_modes length 0 is outside 1\.\.255"):
        decode_psk_modes(encode_psk_modes([]))


@EXAMPLES
@given(data=st.binary(max_size=300))
def test_arbitrary_psk_modes_bytes_raise_only_tls_errors(data: bytes) -> None:
    _only_tls_errors(decode_psk_modes, data)
