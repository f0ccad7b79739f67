"""Bounds-checked reader and writer for TLS presentation-language vectors.

Every read checks the bytes left; every vector read checks the RFC bounds.
A short or out-of-range read raises :class:`~triotls.errors.DecodeError`
naming the field, so hostile input can never cause an IndexError or an
unbounded allocation.
"""

from __future__ import annotations

import struct
from types import TracebackType
from typing import Final, final

from ..errors import DecodeError, InternalError

__all__ = ["Reader", "Writer"]

_U16: Final = struct.Struct(">H")
_U32: Final = struct.Struct(">I")
_U16_U16: Final = struct.Struct(">HH")


@final
class Reader:
    """A cursor over a bytes-like buffer; every read is bounds-checked."""

    __slots__ = ("_buf", "_end", "_pos", "what")

    def __init__(self, data: bytes, what: str = "message") -> None:
        self._buf = data
        self._pos = 0
        self._end = len(data)
        self.what = what

    @property
    def remaining(self) -> int:
        """Bytes not read yet."""
        return self._end - self._pos

    def is_at_end(self) -> bool:
        """Whether every byte has been consumed."""
        return self._pos >= self._end

    def _take(self, n: int, field: str) -> bytes:
        pos = self._pos
        if n > self._end - pos:
            raise self._short(n, field)
        self._pos = pos + n
        return self._buf[pos : pos + n]

    def _short(self, n: int, field: str) -> DecodeError:
        return DecodeError(
            f"{self.what}: {field} needs {n} bytes but only {self._end - self._pos} are left"
        )

    def u8(self, field: str = "u8") -> int:
        """Read one unsigned byte."""
        if self._pos >= self._end:
            raise DecodeError(f"{self.what}: {field} needs 1 byte but none are left")
        value = self._buf[self._pos]
        self._pos += 1
        return value

    def u16(self, field: str = "u16") -> int:
        """Read a big-endian uint16."""
        pos = self._pos
        if self._end - pos < 2:
            raise self._short(2, field)
        self._pos = pos + 2
        value: int = _U16.unpack_from(self._buf, pos)[0]
        return value

    def u24(self, field: str = "u24") -> int:
        """Read a big-endian uint24."""
        return int.from_bytes(self._take(3, field), "big")

    def u32(self, field: str = "u32") -> int:
        """Read a big-endian uint32."""
        value: int = _U32.unpack(self._take(4, field))[0]
        return value

    def read(self, n: int, field: str = "bytes") -> bytes:
        """Read exactly ``n`` bytes."""
        return self._take(n, field)

    def rest(self) -> bytes:
        """Read everything that is left."""
        return self._take(self._end - self._pos, "rest")

    def _vec(self, length: int, field: str, min_len: int, max_len: int, item: int) -> bytes:
        if length < min_len or length > max_len:
            raise DecodeError(
                f"{self.what}: {field} length {length} is outside {min_len}..{max_len}"
            )
        if item > 1 and length % item:
            raise DecodeError(f"{self.what}: {field} length {length} is not a multiple of {item}")
        return self._take(length, field)

    def vec8(
        self, field: str = "vector", *, min_len: int = 0, max_len: int = 2**8 - 1, item: int = 1
    ) -> bytes:
        """Read an ``opaque <min..max>`` vector with a one-byte length."""
        # u8 and u16 inlined here and in vec16: the most frequent reads, and
        # the error's field name is only formatted when there is an error.
        pos = self._pos
        if pos >= self._end:
            raise DecodeError(f"{self.what}: {field} length needs 1 byte but none are left")
        self._pos = pos + 1
        return self._vec(self._buf[pos], field, min_len, max_len, item)

    def vec16(
        self, field: str = "vector", *, min_len: int = 0, max_len: int = 2**16 - 1, item: int = 1
    ) -> bytes:
        """Read a vector with a two-byte length."""
        pos = self._pos
        if self._end - pos < 2:
            raise self._short(2, f"{field} length")
        self._pos = pos + 2
        length: int = _U16.unpack_from(self._buf, pos)[0]
        return self._vec(length, field, min_len, max_len, item)

    def vec24(
        self, field: str = "vector", *, min_len: int = 0, max_len: int = 2**24 - 1, item: int = 1
    ) -> bytes:
        """Read a vector with a three-byte length."""
        return self._vec(self.u24(f"{field} length"), field, min_len, max_len, item)

    def u16_vec16(self, type_field: str, data_field: str) -> tuple[int, bytes]:
        """Read a uint16 then an ``opaque <0..2^16-1>`` vector (an Extension, RFC 8446 §4.2).

        The same as ``(u16(type_field), vec16(data_field))``, errors included,
        in one bounds check when the bytes are there: extension blocks are
        the most frequent structure in a handshake.
        """
        buf, pos, end = self._buf, self._pos, self._end
        if end - pos >= 4:
            value, length = _U16_U16.unpack_from(buf, pos)
            start = pos + 4
            if length <= end - start:
                self._pos = start + length
                return value, buf[start : start + length]
        # Short: the field-by-field reads raise the DecodeError naming the field.
        value = self.u16(type_field)
        return value, self.vec16(data_field)

    def sub8(self, field: str = "vector", *, min_len: int = 0, max_len: int = 2**8 - 1) -> Reader:
        """A child reader over a vector with a one-byte length."""
        return Reader(self.vec8(field, min_len=min_len, max_len=max_len), f"{self.what}.{field}")

    def sub16(self, field: str = "vector", *, min_len: int = 0, max_len: int = 2**16 - 1) -> Reader:
        """A child reader over a vector with a two-byte length."""
        return Reader(self.vec16(field, min_len=min_len, max_len=max_len), f"{self.what}.{field}")

    def sub24(self, field: str = "vector", *, min_len: int = 0, max_len: int = 2**24 - 1) -> Reader:
        """A child reader over a vector with a three-byte length."""
        return Reader(self.vec24(field, min_len=min_len, max_len=max_len), f"{self.what}.{field}")

    def u16_list(
        self, field: str, *, min_len: int = 2, max_len: int = 2**16 - 2, width: int = 16
    ) -> tuple[int, ...]:
        """Read a vector of uint16 values (cipher suites, groups, schemes)."""
        length_field = f"{field} length"
        length = self.u8(length_field) if width == 8 else self.u16(length_field)
        raw = self._vec(length, field, min_len, max_len, 2)
        return struct.unpack(f">{len(raw) // 2}H", raw)

    def expect_end(self, what: str | None = None) -> None:
        """Raise DecodeError if any bytes are left."""
        if self._pos != self._end:
            raise DecodeError(
                f"{what or self.what}: {self._end - self._pos} unexpected trailing bytes"
            )


@final
class Writer:
    """Appends TLS-encoded values to a bytearray."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def u8(self, value: int) -> None:
        """Append one byte."""
        self._buf.append(value)

    def u16(self, value: int) -> None:
        """Append a big-endian uint16."""
        self._buf += _U16.pack(value)

    def u24(self, value: int) -> None:
        """Append a big-endian uint24."""
        self._buf += value.to_bytes(3, "big")

    def u32(self, value: int) -> None:
        """Append a big-endian uint32."""
        self._buf += _U32.pack(value)

    def write(self, data: bytes) -> None:
        """Append raw bytes."""
        self._buf += data

    def vec8(self, data: bytes) -> None:
        """Append an opaque vector with a one-byte length."""
        self._check(len(data), 2**8 - 1)
        self._buf.append(len(data))
        self._buf += data

    def vec16(self, data: bytes) -> None:
        """Append an opaque vector with a two-byte length."""
        self._check(len(data), 2**16 - 1)
        self._buf += _U16.pack(len(data))
        self._buf += data

    def u16_vec16(self, value: int, data: bytes) -> None:
        """Append a uint16 then an opaque vector with a two-byte length (an Extension)."""
        self._check(len(data), 2**16 - 1)
        self._buf += _U16_U16.pack(value, len(data))
        self._buf += data

    def vec24(self, data: bytes) -> None:
        """Append an opaque vector with a three-byte length."""
        self._check(len(data), 2**24 - 1)
        self._buf += len(data).to_bytes(3, "big")
        self._buf += data

    def u16_list(self, values: tuple[int, ...] | list[int], *, width: int = 16) -> None:
        """Append a vector of uint16 values with a ``width``-bit length prefix."""
        raw = struct.pack(f">{len(values)}H", *values)
        if width == 8:
            self.vec8(raw)
        else:
            self.vec16(raw)

    def prefixed8(self) -> _Prefixed:
        """Write a one-byte length prefix covering what the block appends."""
        return _Prefixed(self._buf, 1)

    def prefixed16(self) -> _Prefixed:
        """Write a two-byte length prefix covering what the block appends."""
        return _Prefixed(self._buf, 2)

    def prefixed24(self) -> _Prefixed:
        """Write a three-byte length prefix covering what the block appends."""
        return _Prefixed(self._buf, 3)

    @staticmethod
    def _check(length: int, limit: int) -> None:
        if length > limit:
            raise InternalError(f"encoded vector of {length} bytes exceeds its limit {limit}")

    def getvalue(self) -> bytes:
        """The bytes written so far."""
        return bytes(self._buf)


@final
class _Prefixed:
    """A length prefix of ``width`` bytes covering what the ``with`` block appends.

    A small class rather than ``contextlib.contextmanager``: a generator-based
    manager costs about three times as much, and every extension block and
    nested vector of every handshake message opens one.
    """

    __slots__ = ("_buf", "_start", "_width")

    def __init__(self, buf: bytearray, width: int) -> None:
        self._buf = buf
        self._width = width
        self._start = 0

    def __enter__(self) -> None:
        self._start = len(self._buf)
        self._buf += bytes(self._width)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            return  # as contextmanager did: the block's error propagates, nothing patched
        buf, start, width = self._buf, self._start, self._width
        length = len(buf) - start - width
        if length >> (8 * width):
            Writer._check(length, 2 ** (8 * width) - 1)  # raises InternalError
        buf[start : start + width] = length.to_bytes(width, "big")
