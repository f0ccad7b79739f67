"""The record layer and the handshake message codecs against RFC 8448, byte for byte.

Every record the RFC 8448 traces show is sealed from its plaintext with
``RecordWriter`` and compared with the RFC's complete record, and opened with
``RecordReader`` and compared with the RFC's plaintext. The traffic secrets are the
RFC's (the ``derive secret "tls13 ..."`` steps); which key protects a record follows
the RFC's own ``derive write traffic keys for ...`` steps, and the sequence number
counts the records sent under that key before it.

Every handshake message of the traces is decoded and encoded again: the codecs must
give back the RFC's exact bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

import pytest

from tests.vectors.rfc8448 import Actor, Step, Trace, load
from triotls.engine.enums import CipherSuite, ContentType, HandshakeType
from triotls.engine.messages import (
    Certificate,
    CertificateRequest,
    CertificateVerify,
    ClientHello,
    EncryptedExtensions,
    Finished,
    NewSessionTicket,
    ServerHello,
)
from triotls.engine.record import RecordReader, RecordWriter
from triotls.engine.suites import CIPHER_SUITES
from triotls.errors import BadRecordMac

SECTIONS: Final = (3, 4, 5, 6, 7)
ACTORS: Final[tuple[Actor, ...]] = ("client", "server")
# Every RFC 8448 trace negotiates TLS_AES_128_GCM_SHA256.
SUITE: Final = CIPHER_SUITES[CipherSuite.TLS_AES_128_GCM_SHA256]

# RFC 8448 names records "send <kind> record".
_CONTENT_TYPES: Final[Mapping[str, ContentType]] = {
    "handshake": ContentType.HANDSHAKE,
    "application_data": ContentType.APPLICATION_DATA,
    "alert": ContentType.ALERT,
    "change_cipher_spec": ContentType.CHANGE_CIPHER_SPEC,
}
# What "derive write traffic keys for <phase>" means: the traffic secret of that
# phase (RFC 8446 §7.1), by the label of its RFC 8448 derivation.
_PHASE_SECRETS: Final[Mapping[str, Mapping[Actor, str]]] = {
    "early application data": {"client": "c e traffic"},
    "handshake data": {"client": "c hs traffic", "server": "s hs traffic"},
    "application data": {"client": "c ap traffic", "server": "s ap traffic"},
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SentRecord:
    """One record as RFC 8448 shows it: plaintext, content type and wire bytes."""

    content_type: ContentType
    payload: bytes
    record: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordCase:
    """One RFC 8448 record and how it was protected.

    Attributes:
        step: the RFC's ``send ... record`` step.
        sent: the record.
        secret: the traffic secret that protects it, or None for a plaintext record.
        earlier: the records sent before it under the same secret, in order (its
            sequence number is their count).
        legacy_version: the record header's legacy_record_version.
    """

    step: Step
    sent: SentRecord
    secret: bytes | None
    earlier: tuple[SentRecord, ...]
    legacy_version: int

    @property
    def id(self) -> str:
        """A test id: section, step index, actor and record kind."""
        kind = self.step.action.removeprefix("send ").removesuffix(" record")
        return f"s{self.step.section}-{self.step.index}-{self.step.actor}-{kind}"


def _derivation(trace: Trace, label: str) -> Step:
    """The step deriving ``label`` that prints its values (the other side's does not)."""
    for step in trace.steps:
        if step.action.startswith(f'derive secret "tls13 {label}"') and step.has("expanded"):
            return step
    raise AssertionError(f"{trace.source} prints no derivation of {label!r}")


def _record_cases(section: int) -> list[RecordCase]:
    trace = load(section)
    cases: list[RecordCase] = []
    for actor in ACTORS:
        secret: bytes | None = None
        earlier: list[SentRecord] = []
        first = True
        for step in trace.steps:
            if step.actor != actor:
                continue
            if step.action.startswith("derive write traffic keys for "):
                phase = step.action.removeprefix("derive write traffic keys for ")
                phase = phase.split(" (")[0]  # drop "(same as server ...)"
                secret = _derivation(trace, _PHASE_SECRETS[phase][actor]).value("expanded")
                if step.has("PRK"):
                    assert step.value("PRK") == secret, f"step {step.index}: {step.action}"
                earlier = []
            elif step.action.startswith("send "):
                kind = step.action.removeprefix("send ").removesuffix(" record")
                content_type = _CONTENT_TYPES[kind]
                sent = SentRecord(
                    content_type=content_type,
                    payload=step.value("payload"),
                    record=step.value("complete record"),
                )
                # RFC 8446 §5: change_cipher_spec is never protected.
                protected = secret is not None and content_type != ContentType.CHANGE_CIPHER_SPEC
                cases.append(
                    RecordCase(
                        step=step,
                        sent=sent,
                        secret=secret if protected else None,
                        earlier=tuple(earlier) if protected else (),
                        # RFC 8446 §5.1: 0x0301 is allowed for the first ClientHello,
                        # and RFC 8448's client uses it there.
                        legacy_version=0x0301 if actor == "client" and first else 0x0303,
                    )
                )
                if protected:
                    earlier.append(sent)
                first = False
    return cases


RECORD_CASES: Final = [case for section in SECTIONS for case in _record_cases(section)]
PROTECTED_CASES: Final = [case for case in RECORD_CASES if case.secret is not None]


def test_every_trace_has_plaintext_and_protected_records() -> None:
    for section in SECTIONS:
        cases = [case for case in RECORD_CASES if case.step.section == section]
        assert cases, f"section {section} has records"
        assert any(case.secret is None for case in cases)
        assert any(case.secret is not None for case in cases)
        assert len(cases) == len(load(section).records("client")) + len(
            load(section).records("server")
        )


@pytest.mark.parametrize("case", RECORD_CASES, ids=lambda case: case.id)
def test_record_writer_seals_rfc_plaintext_into_rfc_record(case: RecordCase) -> None:
    writer = RecordWriter()
    if case.secret is not None:
        writer.set_key(SUITE, case.secret)
    for sent in case.earlier:
        assert writer.seal(sent.content_type, sent.payload) == sent.record

    record = writer.seal(case.sent.content_type, case.sent.payload, case.legacy_version)

    assert record.hex() == case.sent.record.hex()


@pytest.mark.parametrize("case", RECORD_CASES, ids=lambda case: case.id)
def test_record_reader_opens_rfc_record_into_rfc_plaintext(case: RecordCase) -> None:
    reader = RecordReader()
    if case.secret is not None:
        reader.set_key(SUITE, case.secret)
    reader.feed(b"".join(sent.record for sent in case.earlier) + case.sent.record)
    for sent in case.earlier:
        assert reader.next_record() == (sent.content_type, sent.payload)

    opened = reader.next_record()

    assert opened == (case.sent.content_type, case.sent.payload)
    assert reader.last_was_protected == (case.secret is not None)
    assert reader.next_record() is None
    assert not reader.has_pending


@pytest.mark.parametrize("case", PROTECTED_CASES, ids=lambda case: case.id)
def test_record_reader_refuses_rfc_record_under_the_wrong_sequence_number(
    case: RecordCase,
) -> None:
    # The nonce depends on the sequence number (RFC 8446 §5.3): skipping one earlier
    # record, or opening a first record as the second, must fail authentication.
    reader = RecordReader()
    assert case.secret is not None
    reader.set_key(SUITE, case.secret)
    wrong = case.earlier[1:] if case.earlier else (case.sent,)
    reader.feed(b"".join(sent.record for sent in wrong) + case.sent.record)
    with pytest.raises(BadRecordMac, match="failed authentication"):
        for _ in range(len(wrong) + 1):
            reader.next_record()


# --- handshake message codecs ---------------------------------------------------------

_CODECS: Final[Mapping[str, Callable[[bytes], bytes]]] = {
    "ClientHello": lambda body: ClientHello.decode(body).encode(),
    "ServerHello": lambda body: ServerHello.decode(body).encode(),  # and HelloRetryRequest
    "EncryptedExtensions": lambda body: EncryptedExtensions.decode(body).encode(),
    "CertificateRequest": lambda body: CertificateRequest.decode(body).encode(),
    "Certificate": lambda body: Certificate.decode(body).encode(),
    "CertificateVerify": lambda body: CertificateVerify.decode(body).encode(),
    # Every RFC 8448 trace uses SHA-256: verify_data is 32 bytes.
    "Finished": lambda body: Finished.decode(body, 32).encode(),
    "NewSessionTicket": lambda body: NewSessionTicket.decode(body).encode(),
}
# RFC 8446 §4.5: EndOfEarlyData has an empty body; triotls has no codec for it.
_NO_CODEC: Final = frozenset({"EndOfEarlyData"})
_TYPES: Final[Mapping[str, HandshakeType]] = {
    "ClientHello": HandshakeType.CLIENT_HELLO,
    "ServerHello": HandshakeType.SERVER_HELLO,
    "EncryptedExtensions": HandshakeType.ENCRYPTED_EXTENSIONS,
    "CertificateRequest": HandshakeType.CERTIFICATE_REQUEST,
    "Certificate": HandshakeType.CERTIFICATE,
    "CertificateVerify": HandshakeType.CERTIFICATE_VERIFY,
    "Finished": HandshakeType.FINISHED,
    "NewSessionTicket": HandshakeType.NEW_SESSION_TICKET,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageCase:
    """One handshake message of an RFC 8448 trace (with its 4-byte header)."""

    section: int
    actor: Actor
    position: int
    name: str
    raw: bytes

    @property
    def id(self) -> str:
        """A test id: section, actor, position and message name."""
        return f"s{self.section}-{self.actor}-{self.position}-{self.name}"


def _message_cases() -> list[MessageCase]:
    cases: list[MessageCase] = []
    for section in SECTIONS:
        trace = load(section)
        for actor in ACTORS:
            for position, (name, printed) in enumerate(trace.handshake_messages(actor)):
                if name in _NO_CODEC:
                    continue
                raw = printed
                if section == 4 and name == "ClientHello":
                    # RFC 8448 section 4 prints the ClientHello without its PSK
                    # binders (what the binder covers); the complete message is the
                    # payload of the client's first record.
                    raw = trace.find("client", "send handshake record").value("payload")
                    assert raw.startswith(printed) and len(raw) > len(printed)
                cases.append(
                    MessageCase(section=section, actor=actor, position=position, name=name, raw=raw)
                )
    return cases


MESSAGE_CASES: Final = _message_cases()


def test_message_cases_cover_every_codec() -> None:
    assert {case.name for case in MESSAGE_CASES} == set(_CODECS)


@pytest.mark.parametrize("case", MESSAGE_CASES, ids=lambda case: case.id)
def test_handshake_message_decodes_and_encodes_to_rfc_bytes(case: MessageCase) -> None:
    assert case.raw[0] == _TYPES[case.name]
    assert int.from_bytes(case.raw[1:4], "big") == len(case.raw) - 4
    body = case.raw[4:]

    assert _CODECS[case.name](body).hex() == body.hex()


def test_section_5_server_hellos_are_retry_request_then_server_hello() -> None:
    hellos = [raw for name, raw in load(5).handshake_messages("server") if name == "ServerHello"]
    assert [ServerHello.decode(raw[4:]).is_hello_retry_request for raw in hellos] == [True, False]
