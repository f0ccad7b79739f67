"""Handshake message reassembly across records (engine/handshake_buffer.py)."""

from __future__ import annotations

import pytest

from triotls.engine.enums import HandshakeType
from triotls.engine.handshake_buffer import HandshakeBuffer
from triotls.engine.messages import frame
from triotls.errors import DecodeError, UnexpectedMessage


def test_whole_message_in_one_payload_is_returned() -> None:
    buf = HandshakeBuffer(2**14)
    raw = frame(HandshakeType.FINISHED, bytes(32))
    buf.feed(raw)
    msg = buf.next_message()
    assert msg is not None
    assert (msg.msg_type, msg.body, msg.raw) == (HandshakeType.FINISHED, bytes(32), raw)
    assert buf.next_message() is None
    assert buf.is_empty


def test_message_split_across_payloads_is_reassembled() -> None:
    buf = HandshakeBuffer(2**14)
    raw = frame(HandshakeType.CERTIFICATE, bytes(range(200)))
    buf.feed(raw[:2])
    assert buf.next_message() is None
    buf.feed(raw[2:100])
    assert buf.next_message() is None
    assert not buf.is_empty
    buf.feed(raw[100:])
    msg = buf.next_message()
    assert msg is not None and msg.raw == raw


def test_two_messages_in_one_payload_come_out_in_order() -> None:
    buf = HandshakeBuffer(2**14)
    first = frame(HandshakeType.ENCRYPTED_EXTENSIONS, b"\x00\x00")
    second = frame(HandshakeType.FINISHED, bytes(32))
    buf.feed(first + second[:10])
    msg = buf.next_message()
    assert msg is not None and msg.raw == first
    assert buf.next_message() is None
    buf.feed(second[10:])
    msg = buf.next_message()
    assert msg is not None and msg.raw == second


def test_message_with_an_empty_body_is_returned() -> None:
    buf = HandshakeBuffer(2**14)
    buf.feed(frame(HandshakeType.END_OF_EARLY_DATA, b""))
    msg = buf.next_message()
    assert msg is not None and msg.body == b""


def test_message_of_exactly_the_maximum_size_is_accepted() -> None:
    buf = HandshakeBuffer(4096)
    buf.feed(frame(HandshakeType.CERTIFICATE, bytes(4096)))
    msg = buf.next_message()
    assert msg is not None and len(msg.body) == 4096


def test_message_over_the_maximum_is_refused_from_its_header_alone() -> None:
    buf = HandshakeBuffer(4096)
    buf.feed(bytes([HandshakeType.CERTIFICATE]) + (4097).to_bytes(3, "big"))
    with pytest.raises(DecodeError, match="claims 4097 bytes, over the limit of 4096"):
        buf.next_message()


def test_message_claiming_2_24_minus_1_bytes_is_refused() -> None:
    buf = HandshakeBuffer(2**17)
    buf.feed(b"\x01\xff\xff\xff")
    with pytest.raises(DecodeError, match="max_handshake_message_size"):
        buf.next_message()


def test_key_change_with_a_partial_message_buffered_is_unexpected_message() -> None:
    buf = HandshakeBuffer(2**14)
    buf.feed(frame(HandshakeType.FINISHED, bytes(32))[:5])
    with pytest.raises(UnexpectedMessage, match="5 bytes of a handshake message were left"):
        buf.check_key_change("the server's Finished")


def test_key_change_with_an_empty_buffer_is_allowed() -> None:
    buf = HandshakeBuffer(2**14)
    buf.feed(frame(HandshakeType.FINISHED, bytes(32)))
    buf.next_message()
    buf.check_key_change("KeyUpdate")
