"""Codec properties: decode(encode(x)) == x, and every strict prefix is a DecodeError."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.properties.strategies import (
    certificate_requests,
    certificate_verifies,
    certificates,
    client_hellos,
    encrypted_extensions,
    key_share_entries,
    key_updates,
    new_session_tickets,
    offered_psks,
    server_hellos,
)
from triotls.engine.codec import Writer
from triotls.engine.extensions import (
    decode_alpn,
    decode_cookie,
    decode_key_share_ch,
    decode_key_share_sh,
    decode_pre_shared_key_ch,
    decode_record_size_limit,
    decode_server_name,
    decode_supported_versions_ch,
    decode_u16_list,
    encode_alpn,
    encode_cookie,
    encode_key_share_ch,
    encode_key_share_sh,
    encode_pre_shared_key_ch,
    encode_server_name,
    encode_u16,
    encode_u16_list,
)
from triotls.engine.messages import (
    Certificate,
    CertificateRequest,
    CertificateVerify,
    ClientHello,
    EncryptedExtensions,
    Finished,
    KeyUpdate,
    NewSessionTicket,
    ServerHello,
)
from triotls.errors import DecodeError

EXAMPLES = settings(max_examples=150, deadline=None)

Message = (
    ClientHello
    | ServerHello
    | EncryptedExtensions
    | CertificateRequest
    | Certificate
    | CertificateVerify
    | NewSessionTicket
    | KeyUpdate
)
Decoder = Callable[[bytes], Message]

MESSAGES: list[tuple[str, st.SearchStrategy[Message], Decoder]] = [
    ("ClientHello", client_hellos(), ClientHello.decode),
    ("ServerHello", server_hellos(), ServerHello.decode),
    ("EncryptedExtensions", encrypted_extensions(), EncryptedExtensions.decode),
    ("CertificateRequest", certificate_requests(), CertificateRequest.decode),
    ("Certificate", certificates(), Certificate.decode),
    ("CertificateVerify", certificate_verifies(), CertificateVerify.decode),
    ("NewSessionTicket", new_session_tickets(), NewSessionTicket.decode),
    ("KeyUpdate", key_updates(), KeyUpdate.decode),
]


def _extension_order(msg: object) -> list[int]:
    exts = getattr(msg, "extensions", {})
    assert isinstance(exts, dict)
    return list(exts)


def _optional_extension_block_start(msg: Message) -> int | None:
    """Where a hello's extension block starts: without it, the rest is a TLS 1.2 hello."""
    if isinstance(msg, ClientHello | ServerHello):
        return len(dataclasses.replace(msg, extensions={}).encode()) - 2
    return None


# --- messages -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "strategy", "decode"), MESSAGES, ids=[m[0] for m in MESSAGES])
@EXAMPLES
@given(data=st.data())
def test_message_decodes_to_what_was_encoded(
    name: str, strategy: st.SearchStrategy[Message], decode: Decoder, data: st.DataObject
) -> None:
    msg = data.draw(strategy, label=name)
    decoded = decode(msg.encode())
    assert decoded == msg
    assert _extension_order(decoded) == _extension_order(msg)


@pytest.mark.parametrize(("name", "strategy", "decode"), MESSAGES, ids=[m[0] for m in MESSAGES])
@EXAMPLES
@given(data=st.data())
def test_every_strict_prefix_of_a_message_is_decode_error(
    name: str, strategy: st.SearchStrategy[Message], decode: Decoder, data: st.DataObject
) -> None:
    msg = data.draw(strategy, label=name)
    encoded = msg.encode()
    # RFC 5246 §7.4.1.2: a hello may end before its extension block (TLS 1.2);
    # that prefix decodes, with no extensions, and the version check refuses it.
    legacy_end = _optional_extension_block_start(msg)
    for end in range(len(encoded)):
        if end == legacy_end:
            assert _extension_order(decode(encoded[:end])) == []
            continue
        with pytest.raises(DecodeError):
            decode(encoded[:end])


@EXAMPLES
@given(verify_data=st.binary(min_size=32, max_size=32) | st.binary(min_size=48, max_size=48))
def test_finished_decodes_to_what_was_encoded_and_refuses_prefixes(verify_data: bytes) -> None:
    hash_len = len(verify_data)
    assert Finished.decode(Finished(verify_data=verify_data).encode(), hash_len).verify_data == (
        verify_data
    )
    for end in range(hash_len):
        with pytest.raises(DecodeError):
            Finished.decode(verify_data[:end], hash_len)


# --- extension codecs ----------------------------------------------------------------------------


def _u16_list_codec(values: list[int]) -> tuple[bytes, Callable[[bytes], object], object]:
    return encode_u16_list(values), lambda d: decode_u16_list(d, "supported_groups"), tuple(values)


def _versions_codec(values: list[int]) -> tuple[bytes, Callable[[bytes], object], object]:
    return encode_u16_list(values, width=8), decode_supported_versions_ch, tuple(values)


host_names = st.from_regex(r"[a-z0-9]([a-z0-9.-]{0,40}[a-z0-9])?", fullmatch=True)
alpn_lists = st.lists(st.binary(min_size=1, max_size=32), min_size=1, max_size=5)
unique_shares = st.lists(key_share_entries(), max_size=4, unique_by=lambda e: e.group)

EXTENSION_CODECS: list[
    tuple[str, st.SearchStrategy[tuple[bytes, Callable[[bytes], object], object]]]
] = [
    ("server_name", host_names.map(lambda h: (encode_server_name(h), decode_server_name, h))),
    (
        "supported_groups",
        st.lists(st.integers(0, 2**16 - 1), min_size=1, max_size=40).map(_u16_list_codec),
    ),
    (
        "supported_versions",
        st.lists(st.integers(0, 2**16 - 1), min_size=1, max_size=20).map(_versions_codec),
    ),
    ("alpn", alpn_lists.map(lambda p: (encode_alpn(p), decode_alpn, tuple(p)))),
    (
        "key_share_ch",
        unique_shares.map(lambda e: (encode_key_share_ch(e), decode_key_share_ch, tuple(e))),
    ),
    (
        "key_share_sh",
        key_share_entries().map(lambda e: (encode_key_share_sh(e), decode_key_share_sh, e)),
    ),
    (
        "cookie",
        st.binary(min_size=1, max_size=64).map(lambda c: (encode_cookie(c), decode_cookie, c)),
    ),
    (
        "pre_shared_key",
        offered_psks().map(lambda p: (encode_pre_shared_key_ch(p), decode_pre_shared_key_ch, p)),
    ),
    (
        "record_size_limit",
        st.integers(64, 2**16 - 1).map(lambda n: (encode_u16(n), decode_record_size_limit, n)),
    ),
]


@pytest.mark.parametrize(
    ("name", "strategy"), EXTENSION_CODECS, ids=[c[0] for c in EXTENSION_CODECS]
)
@EXAMPLES
@given(data=st.data())
def test_extension_decodes_to_what_was_encoded(
    name: str,
    strategy: st.SearchStrategy[tuple[bytes, Callable[[bytes], object], object]],
    data: st.DataObject,
) -> None:
    encoded, decode, value = data.draw(strategy, label=name)
    assert decode(encoded) == value


@pytest.mark.parametrize(
    ("name", "strategy"), EXTENSION_CODECS, ids=[c[0] for c in EXTENSION_CODECS]
)
@EXAMPLES
@given(data=st.data())
def test_every_strict_prefix_of_an_extension_is_decode_error(
    name: str,
    strategy: st.SearchStrategy[tuple[bytes, Callable[[bytes], object], object]],
    data: st.DataObject,
) -> None:
    encoded, decode, _value = data.draw(strategy, label=name)
    for end in range(len(encoded)):
        with pytest.raises(DecodeError):
            decode(encoded[:end])


@EXAMPLES
@given(values=st.lists(st.integers(0, 2**16 - 1), max_size=50), width=st.sampled_from([8, 16]))
def test_writer_u16_list_reads_back(values: list[int], width: int) -> None:
    from triotls.engine.codec import Reader

    w = Writer()
    if width == 8 and len(values) > 127:
        values = values[:127]
    w.u16_list(values, width=width)
    r = Reader(w.getvalue())
    assert r.u16_list("values", min_len=0, max_len=2**16 - 1, width=width) == tuple(values)
    r.expect_end()
