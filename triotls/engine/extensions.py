"""Extension blocks and the codecs of each extension triotls understands.

Blocks decode into an insertion-ordered ``dict[int, bytes]`` (type -> data):
unknown types stay plain ints with their raw bytes (RFC 8701 GREASE), and the
typed codecs below turn one entry into Python values on demand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from ..errors import DecodeError, IllegalParameter, UnsupportedExtension
from .codec import Reader, Writer
from .enums import ExtensionType as ET

__all__ = [
    "KeyShareEntry",
    "MessageContext",
    "OfferedPsks",
    "PskIdentity",
    "decode_extensions",
    "encode_extensions",
]

MessageContext = Literal["CH", "SH", "HRR", "EE", "CT", "CR", "NST"]

# RFC 8446 §4.2, and RFC 8449 §5 for record_size_limit: where each extension
# may appear. A known extension elsewhere is illegal_parameter.
_ALLOWED: Final[Mapping[int, frozenset[str]]] = {
    ET.SERVER_NAME: frozenset({"CH", "EE"}),
    ET.MAX_FRAGMENT_LENGTH: frozenset({"CH", "EE"}),
    ET.STATUS_REQUEST: frozenset({"CH", "CR", "CT"}),
    ET.SUPPORTED_GROUPS: frozenset({"CH", "EE"}),
    ET.SIGNATURE_ALGORITHMS: frozenset({"CH", "CR"}),
    ET.USE_SRTP: frozenset({"CH", "EE"}),
    ET.HEARTBEAT: frozenset({"CH", "EE"}),
    ET.APPLICATION_LAYER_PROTOCOL_NEGOTIATION: frozenset({"CH", "EE"}),
    ET.SIGNED_CERTIFICATE_TIMESTAMP: frozenset({"CH", "CR", "CT"}),
    ET.CLIENT_CERTIFICATE_TYPE: frozenset({"CH", "EE"}),
    ET.SERVER_CERTIFICATE_TYPE: frozenset({"CH", "EE"}),
    ET.PADDING: frozenset({"CH"}),
    ET.KEY_SHARE: frozenset({"CH", "SH", "HRR"}),
    ET.PRE_SHARED_KEY: frozenset({"CH", "SH"}),
    ET.PSK_KEY_EXCHANGE_MODES: frozenset({"CH"}),
    ET.EARLY_DATA: frozenset({"CH", "EE", "NST"}),
    ET.COOKIE: frozenset({"CH", "HRR"}),
    ET.SUPPORTED_VERSIONS: frozenset({"CH", "SH", "HRR"}),
    ET.CERTIFICATE_AUTHORITIES: frozenset({"CH", "CR"}),
    ET.OID_FILTERS: frozenset({"CR"}),
    ET.POST_HANDSHAKE_AUTH: frozenset({"CH"}),
    ET.SIGNATURE_ALGORITHMS_CERT: frozenset({"CH", "CR"}),
    ET.RECORD_SIZE_LIMIT: frozenset({"CH", "EE"}),
}

# An enum member lookup costs 0.1 µs; decode_extensions compares every type.
_PRE_SHARED_KEY: Final = int(ET.PRE_SHARED_KEY)

# Messages whose unknown extensions are ignored (RFC 8446 §4.2, §4.3.2, §4.6.1);
# in the other (server-sent) messages an extension the client did not offer is
# checked by the handshake against what it sent.
_IGNORE_UNKNOWN: Final = frozenset({"CH", "CR", "NST"})


def decode_extensions(r: Reader, context: MessageContext, *, min_len: int = 0) -> dict[int, bytes]:
    """Decode an ``Extension extensions<min..2^16-1>`` block.

    Raises:
        DecodeError: the block is malformed.
        IllegalParameter: a type repeats, or a known type is not allowed in
            this message, or pre_shared_key is not last in a ClientHello.
        UnsupportedExtension: an unknown type appears in a message whose
            extensions must all answer the peer's request.
    """
    block = r.sub16("extensions", min_len=min_len)
    exts: dict[int, bytes] = {}
    while not block.is_at_end():
        ext_type, data = block.u16_vec16("extension_type", "extension_data")
        if ext_type in exts:
            # RFC 8446 §4.2: at most one extension of a type per block.
            raise IllegalParameter(f"{context}: extension {ext_type:#06x} appears twice")
        if context == "CH" and ext_type == _PRE_SHARED_KEY and not block.is_at_end():
            raise IllegalParameter("ClientHello: pre_shared_key must be the last extension")
        allowed = _ALLOWED.get(ext_type)
        if allowed is None:
            if context not in _IGNORE_UNKNOWN:
                raise UnsupportedExtension(
                    f"{context}: unknown extension {ext_type:#06x} that we never offered"
                )
        elif context not in allowed:
            raise IllegalParameter(
                f"{context}: extension {ET(ext_type).name.lower()} is not allowed in this message"
            )
        exts[ext_type] = data
    return exts


def encode_extensions(w: Writer, exts: Iterable[tuple[int, bytes]]) -> None:
    """Encode an extension block from ``(type, data)`` pairs, in order."""
    with w.prefixed16():
        for ext_type, data in exts:
            w.u16_vec16(ext_type, data)


# --- server_name (RFC 6066 §3) -------------------------------------------------


def encode_server_name(host_name: str) -> bytes:
    """ServerNameList with one host_name entry."""
    w = Writer()
    with w.prefixed16():
        w.u8(0)  # NameType host_name
        w.vec16(host_name.encode("ascii"))
    return w.getvalue()


def decode_server_name(data: bytes) -> str | None:
    """The host_name in a ClientHello's server_name, or None if it has none."""
    r = Reader(data, "server_name")
    names = r.sub16("server_name_list", min_len=1)
    r.expect_end()
    host: str | None = None
    seen: set[int] = set()
    while not names.is_at_end():
        name_type = names.u8("name_type")
        name = names.vec16("name", min_len=1)
        if name_type in seen:
            # RFC 6066 §3: at most one name of each type.
            raise IllegalParameter("server_name lists two names of the same type")
        seen.add(name_type)
        if name_type == 0:
            try:
                text = name.decode("ascii")
            except UnicodeDecodeError:
                raise DecodeError("server_name host_name is not ASCII") from None
            if text.endswith(".") or not text.isprintable():
                raise IllegalParameter(f"server_name host_name {text!r} is not a valid name")
            host = text.lower()
    return host


# --- status_request (RFC 6066 §8, RFC 8446 §4.4.2.1) ------------------------------

# CertificateStatusType ocsp(1), the only one defined.
STATUS_TYPE_OCSP: Final = 1


def encode_status_request() -> bytes:
    """CertificateStatusRequest for OCSP, with no responder IDs and no extensions.

    An empty responder_id_list means the responders are known to the server
    (RFC 6066 §8), which is how browsers and OpenSSL ask.
    """
    w = Writer()
    w.u8(STATUS_TYPE_OCSP)
    w.vec16(b"")  # ResponderID responder_id_list<0..2^16-1>
    w.vec16(b"")  # Extensions request_extensions<0..2^16-1>
    return w.getvalue()


def decode_status_request(data: bytes) -> bool:
    """Whether a ClientHello's status_request asks for an OCSP response.

    Another status_type is not an error: RFC 6066 §8 defines only ocsp(1),
    and a server ignores what it does not know.
    """
    r = Reader(data, "status_request")
    status_type = r.u8("status_type")
    if status_type != STATUS_TYPE_OCSP:
        return False
    r.vec16("responder_id_list")
    r.vec16("request_extensions")
    r.expect_end()
    return True


def encode_certificate_status(ocsp_response: bytes) -> bytes:
    """CertificateStatus carrying one DER OCSPResponse (RFC 6066 §8)."""
    w = Writer()
    w.u8(STATUS_TYPE_OCSP)
    w.vec24(ocsp_response)
    return w.getvalue()


def decode_certificate_status(data: bytes) -> bytes:
    """The DER OCSPResponse in a CertificateEntry's status_request (RFC 8446 §4.4.2.1).

    Raises:
        DecodeError: the structure is malformed.
        IllegalParameter: its status_type is not ocsp(1), the only type we ask for.
    """
    r = Reader(data, "CertificateStatus")
    status_type = r.u8("status_type")
    if status_type != STATUS_TYPE_OCSP:
        raise IllegalParameter(
            f"CertificateStatus has status_type {status_type}, and only ocsp(1) was requested"
        )
    response = r.vec24("OCSPResponse", min_len=1)
    r.expect_end()
    return response


# --- lists of uint16 ----------------------------------------------------------


def encode_u16_list(values: Sequence[int], width: int = 16) -> bytes:
    """A vector of uint16 values (supported_groups, signature_algorithms, ...)."""
    w = Writer()
    w.u16_list(tuple(values), width=width)
    return w.getvalue()


def decode_u16_list(data: bytes, what: str) -> tuple[int, ...]:
    """supported_groups, signature_algorithms(_cert): ``uint16 <2..2^16-2>``."""
    r = Reader(data, what)
    values = r.u16_list(what)
    r.expect_end()
    return values


# --- supported_versions (RFC 8446 §4.2.1) -------------------------------------


def decode_supported_versions_ch(data: bytes) -> tuple[int, ...]:
    """The versions a ClientHello offers: ``ProtocolVersion versions<2..254>``."""
    r = Reader(data, "supported_versions")
    versions = r.u16_list("versions", max_len=254, width=8)
    r.expect_end()
    return versions


def decode_u16(data: bytes, what: str) -> int:
    """A single uint16 extension body (selected_version, HRR selected_group, ...)."""
    r = Reader(data, what)
    value = r.u16(what)
    r.expect_end()
    return value


def decode_u32(data: bytes, what: str) -> int:
    """A single uint32 extension body (early_data's max_early_data_size)."""
    r = Reader(data, what)
    value = r.u32(what)
    r.expect_end()
    return value


def encode_u16(value: int) -> bytes:
    """A single uint16 extension body."""
    return value.to_bytes(2, "big")


# --- ALPN (RFC 7301 §3.1) ------------------------------------------------------


def encode_alpn(protocols: Sequence[bytes]) -> bytes:
    """ProtocolNameList."""
    w = Writer()
    with w.prefixed16():
        for proto in protocols:
            w.vec8(proto)
    return w.getvalue()


def decode_alpn(data: bytes) -> tuple[bytes, ...]:
    """ProtocolNameList: ``ProtocolName protocol_name_list<2..2^16-1>``."""
    r = Reader(data, "application_layer_protocol_negotiation")
    names = r.sub16("protocol_name_list", min_len=2)
    r.expect_end()
    protocols: list[bytes] = []
    while not names.is_at_end():
        protocols.append(names.vec8("protocol_name", min_len=1))
    return tuple(protocols)


# --- key_share (RFC 8446 §4.2.8) -----------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyShareEntry:
    """One ``KeyShareEntry``: a group and its public key_exchange bytes."""

    group: int
    key_exchange: bytes


def encode_key_share_ch(entries: Sequence[KeyShareEntry]) -> bytes:
    """KeyShareClientHello."""
    w = Writer()
    with w.prefixed16():
        for entry in entries:
            w.u16(entry.group)
            w.vec16(entry.key_exchange)
    return w.getvalue()


def decode_key_share_ch(data: bytes) -> tuple[KeyShareEntry, ...]:
    """KeyShareClientHello: ``KeyShareEntry client_shares<0..2^16-1>``."""
    r = Reader(data, "key_share")
    shares = r.sub16("client_shares")
    r.expect_end()
    entries: list[KeyShareEntry] = []
    groups: set[int] = set()
    while not shares.is_at_end():
        group = shares.u16("group")
        key_exchange = shares.vec16("key_exchange", min_len=1)
        if group in groups:
            # RFC 8446 §4.2.8: clients MUST NOT offer two shares for one group.
            raise IllegalParameter(f"key_share offers group {group:#06x} twice")
        groups.add(group)
        entries.append(KeyShareEntry(group=group, key_exchange=key_exchange))
    return tuple(entries)


def encode_key_share_sh(entry: KeyShareEntry) -> bytes:
    """KeyShareServerHello."""
    w = Writer()
    w.u16(entry.group)
    w.vec16(entry.key_exchange)
    return w.getvalue()


def decode_key_share_sh(data: bytes) -> KeyShareEntry:
    """KeyShareServerHello: one KeyShareEntry."""
    r = Reader(data, "key_share")
    group = r.u16("group")
    key_exchange = r.vec16("key_exchange", min_len=1)
    r.expect_end()
    return KeyShareEntry(group=group, key_exchange=key_exchange)


# --- cookie (RFC 8446 §4.2.2) ---------------------------------------------------


def encode_cookie(cookie: bytes) -> bytes:
    """Cookie."""
    w = Writer()
    w.vec16(cookie)
    return w.getvalue()


def decode_cookie(data: bytes) -> bytes:
    """Cookie: ``opaque cookie<1..2^16-1>``."""
    r = Reader(data, "cookie")
    cookie = r.vec16("cookie", min_len=1)
    r.expect_end()
    return cookie


# --- certificate_authorities (RFC 8446 §4.2.4) ----------------------------------


def encode_certificate_authorities(names: Sequence[bytes]) -> bytes:
    """certificate_authorities: DER-encoded X.501 DistinguishedNames."""
    w = Writer()
    with w.prefixed16():
        for name in names:
            w.vec16(name)
    return w.getvalue()


def decode_certificate_authorities(data: bytes) -> tuple[bytes, ...]:
    """``DistinguishedName authorities<3..2^16-1>``, each ``opaque <1..2^16-1>``."""
    r = Reader(data, "certificate_authorities")
    names_r = r.sub16("authorities", min_len=3)
    r.expect_end()
    names: list[bytes] = []
    while not names_r.is_at_end():
        names.append(names_r.vec16("DistinguishedName", min_len=1))
    return tuple(names)


# --- psk_key_exchange_modes and pre_shared_key (RFC 8446 §4.2.9, §4.2.11) -------


def decode_psk_modes(data: bytes) -> tuple[int, ...]:
    """PskKeyExchangeModes: ``PskKeyExchangeMode ke_modes<1..255>``."""
    r = Reader(data, "psk_key_exchange_modes")
    modes = r.vec8("ke_modes", min_len=1)
    r.expect_end()
    return tuple(modes)


def encode_psk_modes(modes: Sequence[int]) -> bytes:
    """PskKeyExchangeModes from mode code points, in the order given."""
    w = Writer()
    w.vec8(bytes(modes))
    return w.getvalue()


@dataclass(frozen=True, slots=True, kw_only=True)
class PskIdentity:
    """One offered PSK identity."""

    identity: bytes
    obfuscated_ticket_age: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferedPsks:
    """The ClientHello's pre_shared_key: identities and their binders."""

    identities: tuple[PskIdentity, ...]
    binders: tuple[bytes, ...]

    @property
    def binders_length(self) -> int:
        """Length of the encoded binders vector, length prefix included."""
        return 2 + sum(1 + len(b) for b in self.binders)


def decode_pre_shared_key_ch(data: bytes) -> OfferedPsks:
    """OfferedPsks: identities<7..2^16-1>, binders<33..2^16-1>."""
    r = Reader(data, "pre_shared_key")
    ids = r.sub16("identities", min_len=7)
    identities: list[PskIdentity] = []
    while not ids.is_at_end():
        identity = ids.vec16("identity", min_len=1)
        age = ids.u32("obfuscated_ticket_age")
        identities.append(PskIdentity(identity=identity, obfuscated_ticket_age=age))
    bnd = r.sub16("binders", min_len=33)
    r.expect_end()
    binders: list[bytes] = []
    while not bnd.is_at_end():
        binders.append(bnd.vec8("binder", min_len=32))
    if len(binders) != len(identities):
        raise IllegalParameter(
            f"pre_shared_key has {len(identities)} identities but {len(binders)} binders"
        )
    return OfferedPsks(identities=tuple(identities), binders=tuple(binders))


def encode_pre_shared_key_ch(psks: OfferedPsks) -> bytes:
    """OfferedPsks."""
    w = Writer()
    with w.prefixed16():
        for ident in psks.identities:
            w.vec16(ident.identity)
            w.u32(ident.obfuscated_ticket_age)
    with w.prefixed16():
        for binder in psks.binders:
            w.vec8(binder)
    return w.getvalue()


# --- record_size_limit (RFC 8449 §4) --------------------------------------------


def decode_record_size_limit(data: bytes) -> int:
    """RecordSizeLimit: uint16, at least 64."""
    limit = decode_u16(data, "record_size_limit")
    if limit < 64:
        raise IllegalParameter(f"record_size_limit {limit} is below the minimum of 64")
    return limit


def decode_empty(data: bytes, what: str) -> None:
    """An extension whose body must be empty (early_data in CH/EE, ...)."""
    if data:
        raise DecodeError(f"{what} extension must be empty, got {len(data)} bytes")
