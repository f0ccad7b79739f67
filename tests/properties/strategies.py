"""Hypothesis strategies for TLS 1.3 messages, extension blocks and byte mutations.

Which extension may appear in which message follows the table of RFC 8446
§4.2 (plus RFC 8449 for record_size_limit); "unknown" types are drawn from
values no enum member uses, so both the known and the GREASE paths of the
decoders are exercised.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from hypothesis import strategies as st

from triotls.engine.enums import ExtensionType as ET
from triotls.engine.extensions import (
    KeyShareEntry,
    MessageContext,
    OfferedPsks,
    PskIdentity,
)
from triotls.engine.messages import (
    HELLO_RETRY_REQUEST_RANDOM,
    Certificate,
    CertificateEntry,
    CertificateRequest,
    CertificateVerify,
    ClientHello,
    EncryptedExtensions,
    KeyUpdate,
    NewSessionTicket,
    ServerHello,
)

__all__ = [
    "Mutation",
    "certificate_requests",
    "certificate_verifies",
    "certificates",
    "client_hellos",
    "encrypted_extensions",
    "extension_blocks",
    "key_updates",
    "mutation_plans",
    "mutations",
    "new_session_tickets",
    "server_hellos",
]

# RFC 8446 §4.2 (the table), RFC 8449 §5 (record_size_limit: CH, EE).
_ALLOWED_IN: Final[Mapping[MessageContext, tuple[int, ...]]] = {
    "CH": (
        ET.SERVER_NAME,
        ET.MAX_FRAGMENT_LENGTH,
        ET.STATUS_REQUEST,
        ET.SUPPORTED_GROUPS,
        ET.SIGNATURE_ALGORITHMS,
        ET.USE_SRTP,
        ET.HEARTBEAT,
        ET.APPLICATION_LAYER_PROTOCOL_NEGOTIATION,
        ET.SIGNED_CERTIFICATE_TIMESTAMP,
        ET.CLIENT_CERTIFICATE_TYPE,
        ET.SERVER_CERTIFICATE_TYPE,
        ET.PADDING,
        ET.KEY_SHARE,
        ET.PSK_KEY_EXCHANGE_MODES,
        ET.EARLY_DATA,
        ET.COOKIE,
        ET.SUPPORTED_VERSIONS,
        ET.CERTIFICATE_AUTHORITIES,
        ET.POST_HANDSHAKE_AUTH,
        ET.SIGNATURE_ALGORITHMS_CERT,
        ET.RECORD_SIZE_LIMIT,
    ),
    "SH": (ET.KEY_SHARE, ET.PRE_SHARED_KEY, ET.SUPPORTED_VERSIONS),
    "HRR": (ET.KEY_SHARE, ET.COOKIE, ET.SUPPORTED_VERSIONS),
    "EE": (
        ET.SERVER_NAME,
        ET.MAX_FRAGMENT_LENGTH,
        ET.SUPPORTED_GROUPS,
        ET.USE_SRTP,
        ET.HEARTBEAT,
        ET.APPLICATION_LAYER_PROTOCOL_NEGOTIATION,
        ET.CLIENT_CERTIFICATE_TYPE,
        ET.SERVER_CERTIFICATE_TYPE,
        ET.EARLY_DATA,
        ET.RECORD_SIZE_LIMIT,
    ),
    "CT": (ET.STATUS_REQUEST, ET.SIGNED_CERTIFICATE_TIMESTAMP),
    "CR": (
        ET.STATUS_REQUEST,
        ET.SIGNATURE_ALGORITHMS,
        ET.SIGNED_CERTIFICATE_TIMESTAMP,
        ET.CERTIFICATE_AUTHORITIES,
        ET.OID_FILTERS,
        ET.SIGNATURE_ALGORITHMS_CERT,
    ),
    "NST": (ET.EARLY_DATA,),
}
# RFC 8446 §4.1.2, §4.3.2, §4.6.1: receivers ignore unknown extensions here.
_UNKNOWN_ALLOWED: Final = frozenset({"CH", "CR", "NST"})
_ENUM_VALUES: Final = frozenset(int(t) for t in ET)

u8s = st.integers(0, 2**8 - 1)
u16s = st.integers(0, 2**16 - 1)
u32s = st.integers(0, 2**32 - 1)
unknown_extension_types = u16s.filter(lambda t: t not in _ENUM_VALUES)


def extension_blocks(
    context: MessageContext, *, min_size: int = 0, max_size: int = 5
) -> st.SearchStrategy[dict[int, bytes]]:
    """Extension dicts a ``context`` message may legally carry (order is wire order)."""
    types: st.SearchStrategy[int] = st.sampled_from(_ALLOWED_IN[context])
    if context in _UNKNOWN_ALLOWED:
        types = types | unknown_extension_types
    block = st.dictionaries(types, st.binary(max_size=24), min_size=min_size, max_size=max_size)
    if context != "CH":
        return block
    # pre_shared_key is legal in a ClientHello only as the last extension.
    psk = st.none() | st.binary(max_size=24)
    return st.builds(_with_last, block, st.just(int(ET.PRE_SHARED_KEY)), psk)


def _with_last(block: dict[int, bytes], ext_type: int, data: bytes | None) -> dict[int, bytes]:
    if data is None:
        return block
    return {**block, ext_type: data}


def client_hellos() -> st.SearchStrategy[ClientHello]:
    """Any well-formed ClientHello body."""
    return st.builds(
        ClientHello,
        legacy_version=u16s,
        random=st.binary(min_size=32, max_size=32),
        legacy_session_id=st.binary(max_size=32),
        cipher_suites=st.lists(u16s, min_size=1, max_size=12).map(tuple),
        legacy_compression_methods=st.binary(min_size=1, max_size=4),
        extensions=extension_blocks("CH"),
    )


@st.composite
def server_hellos(draw: st.DrawFn) -> ServerHello:
    """Any well-formed ServerHello or HelloRetryRequest body."""
    is_retry = draw(st.booleans())
    random = HELLO_RETRY_REQUEST_RANDOM if is_retry else draw(st.binary(min_size=32, max_size=32))
    return ServerHello(
        legacy_version=draw(u16s),
        random=random,
        legacy_session_id_echo=draw(st.binary(max_size=32)),
        cipher_suite=draw(u16s),
        legacy_compression_method=draw(u8s),
        extensions=draw(extension_blocks("HRR" if is_retry else "SH")),
    )


def encrypted_extensions() -> st.SearchStrategy[EncryptedExtensions]:
    """Any well-formed EncryptedExtensions body."""
    return st.builds(EncryptedExtensions, extensions=extension_blocks("EE"))


def certificate_requests() -> st.SearchStrategy[CertificateRequest]:
    """Any well-formed CertificateRequest body (at least one extension)."""
    return st.builds(
        CertificateRequest,
        certificate_request_context=st.binary(max_size=32),
        extensions=extension_blocks("CR", min_size=1),
    )


def certificates() -> st.SearchStrategy[Certificate]:
    """Any well-formed Certificate body (X.509 entries as opaque bytes)."""
    entry = st.builds(
        CertificateEntry,
        cert_data=st.binary(min_size=1, max_size=40),
        extensions=extension_blocks("CT", max_size=2),
    )
    return st.builds(
        Certificate,
        certificate_request_context=st.binary(max_size=32),
        certificate_list=st.lists(entry, max_size=4).map(tuple),
    )


def certificate_verifies() -> st.SearchStrategy[CertificateVerify]:
    """Any well-formed CertificateVerify body."""
    return st.builds(
        CertificateVerify, algorithm=u16s, signature=st.binary(min_size=1, max_size=80)
    )


def new_session_tickets() -> st.SearchStrategy[NewSessionTicket]:
    """Any well-formed NewSessionTicket body."""
    return st.builds(
        NewSessionTicket,
        ticket_lifetime=st.integers(0, 604_800),
        ticket_age_add=u32s,
        ticket_nonce=st.binary(max_size=16),
        ticket=st.binary(min_size=1, max_size=40),
        extensions=extension_blocks("NST"),
    )


def key_updates() -> st.SearchStrategy[KeyUpdate]:
    """Both KeyUpdate values."""
    return st.builds(KeyUpdate, request_update=st.sampled_from([0, 1]))


def key_share_entries() -> st.SearchStrategy[KeyShareEntry]:
    """One KeyShareEntry with any group and a non-empty key."""
    return st.builds(KeyShareEntry, group=u16s, key_exchange=st.binary(min_size=1, max_size=64))


def offered_psks() -> st.SearchStrategy[OfferedPsks]:
    """A pre_shared_key offer with as many binders as identities."""
    identity = st.builds(
        PskIdentity, identity=st.binary(min_size=1, max_size=24), obfuscated_ticket_age=u32s
    )

    @st.composite
    def build(draw: st.DrawFn) -> OfferedPsks:
        identities = draw(st.lists(identity, min_size=1, max_size=3))
        binders = draw(
            st.lists(
                st.binary(min_size=32, max_size=48),
                min_size=len(identities),
                max_size=len(identities),
            )
        )
        return OfferedPsks(identities=tuple(identities), binders=tuple(binders))

    return build()


@dataclass(frozen=True, slots=True)
class Mutation:
    """A few edits (bit flips, overwrites, insertions, deletions, a cut) to apply to bytes.

    Positions are reduced modulo the length of the bytes edited, so a plan drawn
    before the bytes exist (say, ahead of a randomised signature) stays valid.
    """

    edits: tuple[tuple[str, int, int, bytes], ...]

    def apply(self, original: bytes) -> bytes:
        """``original`` with the edits made in order."""
        data = bytearray(original)
        for op, where, value, inserted in self.edits:
            pos = where % len(data) if data else 0
            if op == "insert" or not data:
                data[pos:pos] = inserted
            elif op == "flip":
                data[pos] ^= 1 << (value % 8)
            elif op == "set":
                data[pos] = value
            elif op == "delete":
                del data[pos : pos + 1 + value % 8]
            else:
                del data[pos:]
        return bytes(data)


def mutation_plans() -> st.SearchStrategy[Mutation]:
    """Plans of one to four edits."""
    edit = st.tuples(
        st.sampled_from(["flip", "set", "insert", "delete", "cut"]),
        st.integers(0, 2**16),
        st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF]) | u8s,
        st.binary(min_size=1, max_size=8),
    )
    return st.lists(edit, min_size=1, max_size=4).map(lambda e: Mutation(tuple(e)))


def mutations(original: bytes) -> st.SearchStrategy[bytes]:
    """``original`` with a few random edits."""
    return mutation_plans().map(lambda plan: plan.apply(original))
