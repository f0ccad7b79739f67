"""Bounds-checked reader and writer for TLS presentation-language vectors.

Every read checks the bytes left; every vector read checks the RFC bounds.
A short or out-of-range read raises :class:`~triotls.errors.DecodeError`
naming the field, so hostile input can never cause an IndexError or an
unbounded allocation.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Final, final

from ..errors import DecodeError, InternalError

__all__ = ["Reader", "Writer"]

_U16: Final = struct.Struct(">H")
_U32: Final = struct.Struct(">I")


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
            raise DecodeError(
                f"{self.what}: {field} needs {n} bytes but only {self._end - pos} are left"
            )
        self._pos = pos + n
        return self._buf[pos : pos + n]

    def u8(self, field: str = "u8") -> int:
        """Read one unsigned byte."""
        if self._pos >= self._end:
            raise DecodeError(f"{self.what}: {field} needs 1 byte but none are left")
        value = self._buf[self._pos]
        self._pos += 1
        return value

    def u16(self, field: str = "u16") -> int:
        """Read a big-endian uint16."""
        value: int = _U16.unpack(self._take(2, field))[0]
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
        return self._vec(self.u8(f"{field} length"), field, min_len, max_len, item)

    def vec16(
        self, field: str = "vector", *, min_len: int = 0, max_len: int = 2**16 - 1, item: int = 1
    ) -> bytes:
        """Read a vector with a two-byte length."""
        return self._vec(self.u16(f"{field} length"), field, min_len, max_len, item)

    def vec24(
        self, field: str = "vector", *, min_len: int = 0, max_len: int = 2**24 - 1, item: int = 1
    ) -> bytes:
        """Read a vector with a three-byte length."""
        return self._vec(self.u24(f"{field} length"), field, min_len, max_len, item)

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

    def prefixed8(self) -> AbstractContextManager[None]:
        """Write a one-byte length prefix covering what the block appends."""
        return self._prefixed(1)

    def prefixed16(self) -> AbstractContextManager[None]:
        """Write a two-byte length prefix covering what the block appends."""
        return self._prefixed(2)

    def prefixed24(self) -> AbstractContextManager[None]:
        """Write a three-byte length prefix covering what the block appends."""
        return self._prefixed(3)

    @contextmanager
    def _prefixed(self, width: int) -> Iterator[None]:
        """Write a length prefix of ``width`` bytes covering what the block appends."""
        start = len(self._buf)
        self._buf += bytes(width)
        yield
        length = len(self._buf) - start - width
        self._check(length, 2 ** (8 * width) - 1)
        self._buf[start : start + width] = length.to_bytes(width, "big")

    @staticmethod
    def _check(length: int, limit: int) -> None:
        if length > limit:
            raise InternalError(f"encoded vector of {length} bytes exceeds its limit {limit}")

    def getvalue(self) -> bytes:
        """The bytes written so far."""
        return bytes(self._buf)
