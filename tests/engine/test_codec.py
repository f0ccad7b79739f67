"""The bounds-checked Reader and the Writer (engine/codec.py)."""

from __future__ import annotations

import pytest

from triotls.engine.codec import Reader, Writer
from triotls.errors import DecodeError, InternalError

# --- Reader: fixed-size reads ----------------------------------------------------------


def test_reader_reads_integers_big_endian() -> None:
    r = Reader(bytes.fromhex("01 0203 040506 0708090a"))
    assert r.u8() == 0x01
    assert r.u16() == 0x0203
    assert r.u24() == 0x040506
    assert r.u32() == 0x0708090A
    assert r.is_at_end()


@pytest.mark.parametrize(
    ("data", "read"),
    [
        (b"", Reader.u8),
        (b"\x01", Reader.u16),
        (b"\x01\x02", Reader.u24),
        (b"\x01\x02\x03", Reader.u32),
    ],
    ids=["u8", "u16", "u24", "u32"],
)
def test_reader_short_integer_read_is_decode_error(data: bytes, read: object) -> None:
    assert callable(read)
    with pytest.raises(DecodeError, match="needs"):
        read(Reader(data))


def test_short_read_names_the_message_and_the_field() -> None:
    r = Reader(b"\x00" * 10, "ServerHello")
    with pytest.raises(DecodeError, match=r"ServerHello: random needs 32 bytes but only 10"):
        r.read(32, "random")


def test_reader_remaining_counts_unread_bytes() -> None:
    r = Reader(b"abcdef")
    r.read(2)
    assert r.remaining == 4
    assert r.rest() == b"cdef"
    assert r.remaining == 0


# --- Reader: vectors ------------------------------------------------------------------------


def test_vec8_reads_a_one_byte_length_vector() -> None:
    r = Reader(b"\x03abcX")
    assert r.vec8() == b"abc"
    assert r.read(1) == b"X"


def test_vec16_and_vec24_read_their_length_widths() -> None:
    r = Reader(b"\x00\x02ab\x00\x00\x01c")
    assert r.vec16() == b"ab"
    assert r.vec24() == b"c"


def test_vector_below_its_minimum_length_is_decode_error() -> None:
    with pytest.raises(DecodeError, match=r"cipher_suites length 0 is outside 2\.\.65534"):
        Reader(b"\x00\x00").vec16("cipher_suites", min_len=2, max_len=2**16 - 2)


def test_vector_above_its_maximum_length_is_decode_error() -> None:
    data = b"\x21" + bytes(33)
    with pytest.raises(DecodeError, match=r"legacy_session_id length 33 is outside 0\.\.32"):
        Reader(data).vec8("legacy_session_id", max_len=32)


def test_vector_longer_than_the_data_is_decode_error() -> None:
    with pytest.raises(DecodeError, match="needs 5 bytes but only 2"):
        Reader(b"\x05ab").vec8("name")


def test_vector_of_items_with_a_partial_item_is_decode_error() -> None:
    with pytest.raises(DecodeError, match="not a multiple of 2"):
        Reader(b"\x00\x03abc").vec16("groups", item=2)


def test_u16_list_reads_values() -> None:
    assert Reader(b"\x00\x04\x13\x01\x13\x02").u16_list("cipher_suites") == (0x1301, 0x1302)


def test_u16_list_with_one_byte_length() -> None:
    assert Reader(b"\x02\x03\x04").u16_list("versions", width=8, max_len=254) == (0x0304,)


def test_u16_list_with_odd_length_is_decode_error() -> None:
    with pytest.raises(DecodeError, match="not a multiple of 2"):
        Reader(b"\x00\x03\x13\x01\x13").u16_list("cipher_suites")


def test_sub_reader_is_bounded_by_its_vector_length() -> None:
    r = Reader(b"\x00\x02ab" + b"cdef", "Outer")
    child = r.sub16("inner")
    assert child.read(2) == b"ab"
    with pytest.raises(DecodeError, match=r"Outer\.inner: u8 needs 1 byte"):
        child.u8()
    assert r.rest() == b"cdef"


def test_sub_reader_with_trailing_bytes_fails_expect_end() -> None:
    child = Reader(b"\x03abc").sub8("list")
    child.read(2)
    with pytest.raises(DecodeError, match="1 unexpected trailing bytes"):
        child.expect_end()


def test_expect_end_names_the_structure() -> None:
    r = Reader(b"\x00\x00", "KeyUpdate")
    r.u8()
    with pytest.raises(DecodeError, match="KeyUpdate: 1 unexpected trailing bytes"):
        r.expect_end()


def test_huge_declared_length_is_refused_without_allocating() -> None:
    # A 2^24-1 byte claim over 3 bytes of data: refused, not attempted.
    with pytest.raises(DecodeError, match="needs 16777215 bytes but only 0"):
        Reader(b"\xff\xff\xff").vec24("certificate_list")


# --- Writer ---------------------------------------------------------------------------------


def test_writer_writes_integers_big_endian() -> None:
    w = Writer()
    w.u8(1)
    w.u16(0x0203)
    w.u24(0x040506)
    w.u32(0x0708090A)
    assert w.getvalue() == bytes.fromhex("01 0203 040506 0708090a")


def test_writer_vectors_carry_their_length() -> None:
    w = Writer()
    w.vec8(b"a")
    w.vec16(b"bc")
    w.vec24(b"def")
    assert w.getvalue() == b"\x01a\x00\x02bc\x00\x00\x03def"


def test_writer_prefixed_block_covers_what_it_wraps() -> None:
    w = Writer()
    with w.prefixed16():
        w.u8(1)
        with w.prefixed8():
            w.write(b"xyz")
    assert w.getvalue() == b"\x00\x05\x01\x03xyz"


def test_writer_prefixed24_block() -> None:
    w = Writer()
    with w.prefixed24():
        w.write(b"ab")
    assert w.getvalue() == b"\x00\x00\x02ab"


def test_writer_u16_list_with_either_width() -> None:
    w = Writer()
    w.u16_list((0x0304,), width=8)
    w.u16_list([0x1301, 0x1303])
    assert w.getvalue() == b"\x02\x03\x04\x00\x04\x13\x01\x13\x03"


def test_writer_vector_over_its_limit_is_internal_error() -> None:
    with pytest.raises(InternalError, match="256 bytes exceeds its limit 255"):
        Writer().vec8(bytes(256))


def test_writer_prefixed_block_over_its_limit_is_internal_error() -> None:
    w = Writer()
    with pytest.raises(InternalError, match="exceeds its limit 255"), w.prefixed8():
        w.write(bytes(300))


def test_reader_reads_what_writer_wrote() -> None:
    w = Writer()
    w.u16(0x0303)
    w.vec8(b"session")
    w.u16_list((1, 2, 3))
    with w.prefixed16():
        w.vec24(b"cert")
    r = Reader(w.getvalue())
    assert r.u16() == 0x0303
    assert r.vec8() == b"session"
    assert r.u16_list("list") == (1, 2, 3)
    inner = r.sub16("block")
    assert inner.vec24() == b"cert"
    inner.expect_end()
    r.expect_end()
