"""Extension blocks and the per-extension codecs (engine/extensions.py)."""

from __future__ import annotations

import pytest

from triotls.engine.codec import Reader, Writer
from triotls.engine.enums import ExtensionType
from triotls.engine.extensions import (
    KeyShareEntry,
    MessageContext,
    OfferedPsks,
    PskIdentity,
    decode_alpn,
    decode_cookie,
    decode_empty,
    decode_extensions,
    decode_key_share_ch,
    decode_key_share_sh,
    decode_pre_shared_key_ch,
    decode_psk_modes,
    decode_record_size_limit,
    decode_server_name,
    decode_supported_versions_ch,
    decode_u16,
    decode_u16_list,
    encode_alpn,
    encode_cookie,
    encode_extensions,
    encode_key_share_ch,
    encode_key_share_sh,
    encode_pre_shared_key_ch,
    encode_server_name,
    encode_u16,
    encode_u16_list,
)
from triotls.errors import DecodeError, IllegalParameter, UnsupportedExtension


def _block(*exts: tuple[int, bytes]) -> Reader:
    w = Writer()
    encode_extensions(w, exts)
    return Reader(w.getvalue(), "test")


# --- extension blocks ----------------------------------------------------------------------


def test_extension_block_decodes_in_wire_order() -> None:
    exts = decode_extensions(
        _block((ExtensionType.SUPPORTED_VERSIONS, b"\x02\x03\x04"), (0x0A0A, b"")), "CH"
    )
    assert list(exts.items()) == [
        (ExtensionType.SUPPORTED_VERSIONS, b"\x02\x03\x04"),
        (0x0A0A, b""),
    ]


def test_extension_block_with_a_duplicate_type_is_illegal_parameter() -> None:
    block = _block((ExtensionType.KEY_SHARE, b"a"), (ExtensionType.KEY_SHARE, b"b"))
    with pytest.raises(IllegalParameter, match="CH: extension 0x0033 appears twice"):
        decode_extensions(block, "CH")


def test_duplicate_unknown_extension_is_illegal_parameter_too() -> None:
    with pytest.raises(IllegalParameter, match="appears twice"):
        decode_extensions(_block((0x0A0A, b""), (0x0A0A, b"")), "CH")


@pytest.mark.parametrize("context", ["CH", "CR", "NST"])
def test_unknown_extension_is_kept_where_unknown_ones_are_ignored(context: MessageContext) -> None:
    assert decode_extensions(_block((0xFAFA, b"grease")), context) == {0xFAFA: b"grease"}


@pytest.mark.parametrize("context", ["SH", "HRR", "EE", "CT"])
def test_unknown_extension_is_unsupported_in_answers(context: MessageContext) -> None:
    with pytest.raises(UnsupportedExtension, match="0xfafa"):
        decode_extensions(_block((0xFAFA, b"")), context)


@pytest.mark.parametrize(
    ("ext_type", "context"),
    [
        (ExtensionType.KEY_SHARE, "EE"),
        (ExtensionType.SUPPORTED_VERSIONS, "EE"),
        (ExtensionType.SERVER_NAME, "SH"),
        (ExtensionType.COOKIE, "SH"),
        (ExtensionType.PRE_SHARED_KEY, "HRR"),
        (ExtensionType.SIGNATURE_ALGORITHMS, "EE"),
        (ExtensionType.EARLY_DATA, "CR"),
        (ExtensionType.PADDING, "EE"),
    ],
)
def test_known_extension_in_the_wrong_message_is_illegal_parameter(
    ext_type: ExtensionType, context: MessageContext
) -> None:
    with pytest.raises(IllegalParameter, match="is not allowed in this message"):
        decode_extensions(_block((ext_type, b"")), context)


def test_pre_shared_key_not_last_in_client_hello_is_illegal_parameter() -> None:
    block = _block((ExtensionType.PRE_SHARED_KEY, b""), (ExtensionType.PADDING, b""))
    with pytest.raises(IllegalParameter, match="must be the last extension"):
        decode_extensions(block, "CH")


def test_pre_shared_key_last_in_client_hello_is_accepted() -> None:
    block = _block((ExtensionType.PADDING, b""), (ExtensionType.PRE_SHARED_KEY, b"x"))
    assert ExtensionType.PRE_SHARED_KEY in decode_extensions(block, "CH")


def test_extension_data_running_past_the_block_is_decode_error() -> None:
    # Block length 6 holds type 0x0000 and a data length of 5, with 2 bytes of data.
    with pytest.raises(DecodeError, match="extension_data needs 5 bytes"):
        decode_extensions(Reader(b"\x00\x06\x00\x00\x00\x05ab"), "CH")


def test_extension_block_below_its_minimum_length_is_decode_error() -> None:
    with pytest.raises(DecodeError, match="extensions length 0 is outside 2"):
        decode_extensions(Reader(b"\x00\x00"), "CR", min_len=2)


# --- server_name (RFC 6066 §3) ---------------------------------------------------------------


def test_server_name_round_trips_in_lower_case() -> None:
    assert decode_server_name(encode_server_name("Example.ORG")) == "example.org"


def test_server_name_without_a_host_name_entry_is_none() -> None:
    data = b"\x00\x05\x07\x00\x02ab"  # one entry of an unknown NameType 7
    assert decode_server_name(data) is None


def test_server_name_with_an_empty_list_is_decode_error() -> None:
    with pytest.raises(DecodeError, match="server_name_list length 0"):
        decode_server_name(b"\x00\x00")


def test_server_name_with_two_host_names_is_illegal_parameter() -> None:
    data = b"\x00\x0a" + b"\x00\x00\x02ab" + b"\x00\x00\x02cd"
    with pytest.raises(IllegalParameter, match="two names of the same type"):
        decode_server_name(data)


def test_server_name_that_is_not_ascii_is_decode_error() -> None:
    data = b"\x00\x05\x00\x00\x02\xc3\xa9"
    with pytest.raises(DecodeError, match="not ASCII"):
        decode_server_name(data)


@pytest.mark.parametrize("name", ["example.org.", "exa\tmple.org"])
def test_server_name_that_is_not_a_host_name_is_illegal_parameter(name: str) -> None:
    with pytest.raises(IllegalParameter, match="not a valid name"):
        decode_server_name(encode_server_name(name))


def test_server_name_with_an_empty_host_name_is_decode_error() -> None:
    with pytest.raises(DecodeError, match="name length 0"):
        decode_server_name(b"\x00\x03\x00\x00\x00")


# --- lists of uint16, supported_versions, single values ----------------------------------------


def test_u16_list_round_trips() -> None:
    assert decode_u16_list(encode_u16_list([0x001D, 0x11EC]), "supported_groups") == (
        0x001D,
        0x11EC,
    )


def test_u16_list_that_is_empty_is_decode_error() -> None:
    with pytest.raises(DecodeError, match="supported_groups length 0"):
        decode_u16_list(b"\x00\x00", "supported_groups")


def test_supported_versions_in_client_hello_decodes() -> None:
    assert decode_supported_versions_ch(b"\x04\x03\x04\x03\x03") == (0x0304, 0x0303)


def test_supported_versions_with_odd_length_is_decode_error() -> None:
    with pytest.raises(DecodeError, match="not a multiple of 2"):
        decode_supported_versions_ch(b"\x03\x03\x04\x03")


def test_single_u16_with_extra_bytes_is_decode_error() -> None:
    with pytest.raises(DecodeError, match="trailing"):
        decode_u16(b"\x03\x04\x00", "selected_version")


def test_single_u16_round_trips() -> None:
    assert decode_u16(encode_u16(0x0304), "selected_version") == 0x0304


# --- ALPN (RFC 7301) ---------------------------------------------------------------------------


def test_alpn_round_trips() -> None:
    assert decode_alpn(encode_alpn([b"h2", b"http/1.1"])) == (b"h2", b"http/1.1")


def test_alpn_with_an_empty_protocol_name_is_decode_error() -> None:
    with pytest.raises(DecodeError, match="protocol_name length 0"):
        decode_alpn(b"\x00\x03\x00\x01a")


def test_alpn_with_an_empty_list_is_decode_error() -> None:
    with pytest.raises(DecodeError, match="protocol_name_list length 0"):
        decode_alpn(b"\x00\x00")


# --- key_share -----------------------------------------------------------------------------------


def test_client_key_share_round_trips() -> None:
    entries = (
        KeyShareEntry(group=0x001D, key_exchange=bytes(32)),
        KeyShareEntry(group=0x0A0A, key_exchange=b"\x00"),
    )
    assert decode_key_share_ch(encode_key_share_ch(entries)) == entries


def test_client_key_share_may_be_empty() -> None:
    # RFC 8446 §4.2.8: an empty client_shares asks the server to pick (via HRR).
    assert decode_key_share_ch(b"\x00\x00") == ()


def test_client_key_share_with_a_repeated_group_is_illegal_parameter() -> None:
    entry = KeyShareEntry(group=0x001D, key_exchange=b"k")
    with pytest.raises(IllegalParameter, match="group 0x001d twice"):
        decode_key_share_ch(encode_key_share_ch([entry, entry]))


def test_key_share_with_empty_key_exchange_is_decode_error() -> None:
    with pytest.raises(DecodeError, match="key_exchange length 0"):
        decode_key_share_sh(b"\x00\x1d\x00\x00")


def test_server_key_share_round_trips() -> None:
    entry = KeyShareEntry(group=0x0017, key_exchange=b"\x04" + bytes(64))
    assert decode_key_share_sh(encode_key_share_sh(entry)) == entry


def test_server_key_share_with_trailing_bytes_is_decode_error() -> None:
    entry = KeyShareEntry(group=0x001D, key_exchange=bytes(32))
    with pytest.raises(DecodeError, match="trailing"):
        decode_key_share_sh(encode_key_share_sh(entry) + b"\x00")


# --- cookie, PSKs, record_size_limit, empty extensions --------------------------------------


def test_cookie_round_trips() -> None:
    assert decode_cookie(encode_cookie(b"state")) == b"state"


def test_empty_cookie_is_decode_error() -> None:
    with pytest.raises(DecodeError, match="cookie length 0"):
        decode_cookie(b"\x00\x00")


def test_psk_modes_decode() -> None:
    assert decode_psk_modes(b"\x02\x00\x01") == (0, 1)


def test_empty_psk_modes_is_decode_error() -> None:
    with pytest.raises(DecodeError, match="ke_modes length 0"):
        decode_psk_modes(b"\x00")


def test_pre_shared_key_round_trips() -> None:
    psks = OfferedPsks(
        identities=(PskIdentity(identity=b"ticket", obfuscated_ticket_age=12345),),
        binders=(bytes(32),),
    )
    decoded = decode_pre_shared_key_ch(encode_pre_shared_key_ch(psks))
    assert decoded == psks
    assert decoded.binders_length == 2 + 1 + 32


def test_pre_shared_key_with_fewer_binders_than_identities_is_illegal_parameter() -> None:
    psks = OfferedPsks(
        identities=(
            PskIdentity(identity=b"a", obfuscated_ticket_age=0),
            PskIdentity(identity=b"b", obfuscated_ticket_age=0),
        ),
        binders=(bytes(32),),
    )
    with pytest.raises(IllegalParameter, match="2 identities but 1 binders"):
        decode_pre_shared_key_ch(encode_pre_shared_key_ch(psks))


def test_pre_shared_key_with_a_short_binder_is_decode_error() -> None:
    psks = OfferedPsks(
        identities=(PskIdentity(identity=b"a", obfuscated_ticket_age=0),),
        binders=(bytes(40), bytes(31)),
    )
    with pytest.raises(DecodeError, match="binder length 31"):
        decode_pre_shared_key_ch(encode_pre_shared_key_ch(psks))


def test_record_size_limit_decodes() -> None:
    assert decode_record_size_limit(b"\x40\x01") == 2**14 + 1


def test_record_size_limit_below_64_is_illegal_parameter() -> None:
    with pytest.raises(IllegalParameter, match="below the minimum of 64"):
        decode_record_size_limit(b"\x00\x3f")


def test_empty_extension_with_data_is_decode_error() -> None:
    with pytest.raises(DecodeError, match="early_data extension must be empty"):
        decode_empty(b"\x00", "early_data")


def test_empty_extension_without_data_decodes() -> None:
    decode_empty(b"", "early_data")
