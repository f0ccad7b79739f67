"""Record framing and protection (engine/record.py)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from triotls.engine.enums import CipherSuite, ContentType
from triotls.engine.keyschedule import traffic_key_and_iv
from triotls.engine.record import (
    MAX_PLAINTEXT,
    RecordReader,
    RecordWriter,
    decode_alert,
)
from triotls.engine.suites import CIPHER_SUITES, SuiteInfo
from triotls.errors import BadRecordMac, DecodeError, RecordOverflow, UnexpectedMessage

SUITE: SuiteInfo = CIPHER_SUITES[CipherSuite.TLS_AES_128_GCM_SHA256]
SECRET = bytes(range(32))


def _protected_pair(suite: SuiteInfo = SUITE) -> tuple[RecordWriter, RecordReader]:
    writer, reader = RecordWriter(), RecordReader()
    writer.set_key(suite, SECRET)
    reader.set_key(suite, SECRET)
    return writer, reader


def _all_records(reader: RecordReader, wire: bytes) -> list[tuple[int, bytes]]:
    reader.feed(wire)
    out: list[tuple[int, bytes]] = []
    while (record := reader.next_record()) is not None:
        out.append(record)
    return out


def _seal_inner(inner: bytes, seq: int = 0) -> bytes:
    """A protected record around ``inner`` (content, type byte, padding), built by hand."""
    key, iv = traffic_key_and_iv(SUITE.hash_name, SECRET, SUITE.key_len)
    nonce = (int.from_bytes(iv, "big") ^ seq).to_bytes(12, "big")
    header = b"\x17\x03\x03" + (len(inner) + 16).to_bytes(2, "big")
    return header + AESGCM(key).encrypt(nonce, inner, header)


# --- plaintext records -------------------------------------------------------------------


def test_plaintext_record_has_type_version_and_length() -> None:
    wire = RecordWriter().seal(ContentType.HANDSHAKE, b"hello")
    assert wire == b"\x16\x03\x03\x00\x05hello"


def test_plaintext_record_may_carry_legacy_version_0x0301() -> None:
    wire = RecordWriter().seal(ContentType.HANDSHAKE, b"hi", legacy_version=0x0301)
    assert wire[:3] == b"\x16\x03\x01"


def test_plaintext_data_is_fragmented_at_max_fragment() -> None:
    writer = RecordWriter()
    writer.max_fragment = 100
    records = _all_records(RecordReader(), writer.seal(ContentType.HANDSHAKE, bytes(250)))
    assert [len(data) for _, data in records] == [100, 100, 50]


def test_reader_returns_none_until_a_record_is_complete() -> None:
    reader = RecordReader()
    wire = RecordWriter().seal(ContentType.HANDSHAKE, b"hello")
    reader.feed(wire[:3])
    assert reader.next_record() is None
    reader.feed(wire[3:7])
    assert reader.next_record() is None
    assert reader.has_pending
    reader.feed(wire[7:])
    assert reader.next_record() == (ContentType.HANDSHAKE, b"hello")
    assert not reader.has_pending


def test_reader_refuses_an_oversized_plaintext_record_from_its_header() -> None:
    reader = RecordReader()
    reader.feed(b"\x16\x03\x03" + (MAX_PLAINTEXT + 1).to_bytes(2, "big"))
    with pytest.raises(RecordOverflow, match="16385 bytes exceeds the limit of 16384"):
        reader.next_record()


def test_reader_accepts_a_plaintext_record_of_exactly_2_14_bytes() -> None:
    reader = RecordReader()
    reader.feed(b"\x16\x03\x03\x40\x00" + bytes(MAX_PLAINTEXT))
    record = reader.next_record()
    assert record is not None and len(record[1]) == MAX_PLAINTEXT


def test_reader_refuses_an_unknown_content_type() -> None:
    reader = RecordReader()
    reader.feed(b"\x18\x03\x03\x00\x01\x00")  # 24 is heartbeat, not TLS 1.3
    with pytest.raises(UnexpectedMessage, match="unknown content type 24"):
        reader.next_record()


@pytest.mark.parametrize("content_type", [ContentType.HANDSHAKE, ContentType.ALERT])
def test_reader_refuses_an_empty_plaintext_record(content_type: ContentType) -> None:
    reader = RecordReader()
    reader.feed(bytes([content_type]) + b"\x03\x03\x00\x00")
    with pytest.raises(UnexpectedMessage, match="empty plaintext record"):
        reader.next_record()


def test_take_unprocessed_returns_the_bytes_after_the_last_record() -> None:
    reader = RecordReader()
    reader.feed(RecordWriter().seal(ContentType.ALERT, b"\x01\x00") + b"rest")
    reader.next_record()
    assert reader.take_unprocessed() == b"rest"
    assert not reader.has_pending


# --- protected records -----------------------------------------------------------------------


@pytest.mark.parametrize("suite", list(CipherSuite), ids=lambda s: s.name)
def test_protected_record_round_trips_with_each_suite(suite: CipherSuite) -> None:
    writer, reader = _protected_pair(CIPHER_SUITES[suite])
    wire = writer.seal(ContentType.HANDSHAKE, b"finished")
    assert _all_records(reader, wire) == [(ContentType.HANDSHAKE, b"finished")]
    assert reader.last_was_protected


def test_protected_record_hides_its_type_and_length_of_content() -> None:
    writer, _reader = _protected_pair()
    wire = writer.seal(ContentType.ALERT, b"\x01\x00")
    assert wire[:3] == b"\x17\x03\x03"
    assert int.from_bytes(wire[3:5], "big") == 2 + 1 + 16
    assert b"\x01\x00" not in wire[5:]


def test_protected_records_use_a_new_nonce_each_time() -> None:
    writer, reader = _protected_pair()
    first = writer.seal(ContentType.APPLICATION_DATA, b"same")
    second = writer.seal(ContentType.APPLICATION_DATA, b"same")
    assert first != second
    assert _all_records(reader, first + second) == [(ContentType.APPLICATION_DATA, b"same")] * 2


def test_protected_record_matches_an_independent_rfc8446_seal() -> None:
    # RFC 8446 §5.2-§5.3: nonce = iv XOR seq, additional data = the record header.
    writer, _reader = _protected_pair()
    writer.seal(ContentType.APPLICATION_DATA, b"zero")
    assert writer.seal(ContentType.APPLICATION_DATA, b"one") == _seal_inner(b"one\x17", seq=1)


def test_padding_is_stripped_by_the_reader() -> None:
    writer, reader = _protected_pair()
    writer.padding = 50
    wire = writer.seal(ContentType.APPLICATION_DATA, b"padded")
    assert int.from_bytes(wire[3:5], "big") == 6 + 1 + 50 + 16
    assert _all_records(reader, wire) == [(ContentType.APPLICATION_DATA, b"padded")]


def test_reader_accepts_padding_written_by_hand() -> None:
    _writer, reader = _protected_pair()
    wire = _seal_inner(b"data\x17" + bytes(100))
    assert _all_records(reader, wire) == [(ContentType.APPLICATION_DATA, b"data")]


def test_protected_record_with_only_padding_is_unexpected_message() -> None:
    _writer, reader = _protected_pair()
    reader.feed(_seal_inner(bytes(10)))
    with pytest.raises(UnexpectedMessage, match="all padding"):
        reader.next_record()


def test_protected_change_cipher_spec_is_unexpected_message() -> None:
    _writer, reader = _protected_pair()
    reader.feed(_seal_inner(b"\x01\x14"))
    with pytest.raises(UnexpectedMessage, match="protected record of content type 20"):
        reader.next_record()


def test_protected_record_of_unknown_inner_type_is_unexpected_message() -> None:
    _writer, reader = _protected_pair()
    reader.feed(_seal_inner(b"x\x63"))
    with pytest.raises(UnexpectedMessage, match="content type 99"):
        reader.next_record()


def test_tampered_protected_record_is_bad_record_mac() -> None:
    writer, reader = _protected_pair()
    wire = bytearray(writer.seal(ContentType.APPLICATION_DATA, b"attack at dawn"))
    wire[-1] ^= 0x01
    reader.feed(bytes(wire))
    with pytest.raises(BadRecordMac, match="failed authentication"):
        reader.next_record()


def test_tampered_record_header_is_bad_record_mac() -> None:
    # The header is the additional data: changing the version breaks the tag.
    writer, reader = _protected_pair()
    wire = bytearray(writer.seal(ContentType.APPLICATION_DATA, b"data"))
    wire[2] = 0x01
    reader.feed(bytes(wire))
    with pytest.raises(BadRecordMac):
        reader.next_record()


def test_record_from_another_key_is_bad_record_mac() -> None:
    writer, _ = _protected_pair()
    reader = RecordReader()
    reader.set_key(SUITE, bytes(32))
    reader.feed(writer.seal(ContentType.APPLICATION_DATA, b"data"))
    with pytest.raises(BadRecordMac):
        reader.next_record()


def test_protected_record_too_short_for_a_tag_is_bad_record_mac() -> None:
    _writer, reader = _protected_pair()
    reader.feed(b"\x17\x03\x03\x00\x10" + bytes(16))
    with pytest.raises(BadRecordMac, match="too short"):
        reader.next_record()


def test_protected_record_over_2_14_plus_256_is_refused_from_its_header() -> None:
    _writer, reader = _protected_pair()
    reader.feed(b"\x17\x03\x03" + (2**14 + 257).to_bytes(2, "big"))
    with pytest.raises(RecordOverflow, match="exceeds the limit of 16640"):
        reader.next_record()


def test_decrypted_record_over_2_14_plus_1_is_record_overflow() -> None:
    _writer, reader = _protected_pair()
    reader.feed(_seal_inner(bytes(MAX_PLAINTEXT) + b"\x17" + b"\x00"))
    with pytest.raises(RecordOverflow, match="16386 bytes exceeds the limit of 16385"):
        reader.next_record()


def test_decrypted_record_over_the_announced_limit_is_record_overflow() -> None:
    _writer, reader = _protected_pair()
    reader.max_inner_plaintext = 64
    reader.feed(_seal_inner(bytes(64) + b"\x17"))
    with pytest.raises(RecordOverflow, match="65 bytes exceeds the limit of 64"):
        reader.next_record()


def test_protected_writer_fragments_at_max_fragment() -> None:
    writer, reader = _protected_pair()
    writer.max_fragment = 63  # a peer's record_size_limit of 64, minus the type byte
    wire = writer.seal(ContentType.APPLICATION_DATA, bytes(200))
    lengths = []
    pos = 0
    while pos < len(wire):
        length = int.from_bytes(wire[pos + 3 : pos + 5], "big")
        lengths.append(length)
        pos += 5 + length
    assert lengths == [64 + 16, 64 + 16, 64 + 16, 12 + 16]
    assert b"".join(d for _, d in _all_records(reader, wire)) == bytes(200)


def test_records_split_across_reads_at_any_offset_open_the_same() -> None:
    writer, _ = _protected_pair()
    messages = [bytes([n]) * size for n, size in enumerate((300, 1, 0, 40, 700))]
    wire = b"".join(writer.seal(ContentType.APPLICATION_DATA, m) for m in messages if m)
    expected = [(ContentType.APPLICATION_DATA, m) for m in messages if m]
    for first_cut in range(len(wire)):
        for second_cut in (first_cut, first_cut + 3, first_cut + 350, len(wire)):
            _, reader = _protected_pair()
            records = []
            pieces = wire[:first_cut], wire[first_cut:second_cut], wire[second_cut:]
            for piece in pieces:
                records += _all_records(reader, piece)
            assert records == expected, (first_cut, second_cut)
            assert not reader.has_pending


def test_take_unprocessed_after_a_split_record_returns_everything_unparsed() -> None:
    writer = RecordWriter()
    wire = writer.seal(ContentType.ALERT, b"\x01\x00") + writer.seal(ContentType.ALERT, b"\x01\x00")
    reader = RecordReader()
    reader.feed(wire[:12])  # the second record's header, not its body
    assert reader.next_record() == (ContentType.ALERT, b"\x01\x00")
    assert reader.next_record() is None
    reader.feed(wire[12:] + b"rest")
    assert reader.has_pending
    assert reader.take_unprocessed() == wire[7:] + b"rest"
    assert not reader.has_pending


def test_plaintext_alert_is_still_readable_after_the_read_key_is_set() -> None:
    # The peer may not have keys yet when it fails (RFC 8446 §6), so its alert is plain.
    _writer, reader = _protected_pair()
    reader.feed(b"\x15\x03\x03\x00\x02\x02\x28")
    assert reader.next_record() == (ContentType.ALERT, b"\x02\x28")
    assert not reader.last_was_protected


def test_new_key_starts_at_sequence_number_zero() -> None:
    writer, reader = _protected_pair()
    _all_records(reader, writer.seal(ContentType.APPLICATION_DATA, b"a"))
    writer.set_key(SUITE, SECRET)
    reader.set_key(SUITE, SECRET)
    wire = writer.seal(ContentType.APPLICATION_DATA, b"b")
    assert wire == _seal_inner(b"b\x17", seq=0)
    assert _all_records(reader, wire) == [(ContentType.APPLICATION_DATA, b"b")]


def test_writer_does_not_want_a_key_update_for_a_fresh_key() -> None:
    writer, _reader = _protected_pair()
    assert not writer.wants_key_update
    assert not RecordWriter().wants_key_update


# --- alerts ----------------------------------------------------------------------------------


def test_decode_alert_returns_level_and_description() -> None:
    assert decode_alert(b"\x02\x33") == (2, 51)


@pytest.mark.parametrize("body", [b"\x02", b"\x02\x33\x00"])
def test_alert_of_the_wrong_length_is_decode_error(body: bytes) -> None:
    with pytest.raises(DecodeError, match="expected 2"):
        decode_alert(body)
