"""Replay RFC 8448 sections 3 (1-RTT) and 5 (HelloRetryRequest) through whole connections.

Each side is a real ``ClientConnection`` or ``ServerConnection`` talking to the other
side's RFC records, and what it writes is compared with the RFC's records byte for
byte.

Theory of operation
-------------------
The RFC's ephemeral keys and randoms reach the engine through an injected
``Random`` (:class:`ScriptedRandom`) that hands out the RFC's values in the order the
engine draws them and checks the size of each request. The engine draws:

- client: 32 bytes of ClientHello.random, 32 of legacy_session_id only in
  middlebox compatibility mode (RFC 8448's hellos have an empty one, so it is off),
  then a private key per ``key_share_groups`` entry, and one more for the group a
  HelloRetryRequest asks for;
- server: the key-exchange private key, then 32 bytes of ServerHello.random.

An x25519 private key is the 32 drawn bytes. A P-256 private key is drawn as 40
bytes that the engine reduces to ``1 + n mod (order - 1)``; :func:`p256_draw`
hands out ``k - 1`` so that the engine arrives at the RFC's scalar ``k``.

What config cannot reproduce is substituted with ``monkeypatch``, and each
substitution first checks that what our code built agrees with the RFC in
everything our code implements:

- the client's ClientHellos: RFC 8448's client offers renegotiation_info,
  session_ticket, FFDHE groups and PKCS#1/SHA-1 signature schemes, which triotls
  never sends; after a HelloRetryRequest it also places the cookie elsewhere and
  adds a padding extension (RFC 7685);
- the server's EncryptedExtensions: RFC 8448's server lists its supported_groups,
  FFDHE groups included, which triotls does not implement;
- the server's CertificateVerify signature: RSA-PSS is randomized (the salt), so no
  key can reproduce the RFC's signature; the substitute verifies the RFC's signature
  over exactly the bytes our server asked to sign, then returns it;
- the server's HelloRetryRequest: RFC 8448's server puts an opaque cookie in it,
  state that only that server can interpret; triotls's server is stateful and sends
  no cookie.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import re
from dataclasses import dataclass, field
from typing import Final, final

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

import triotls.engine.client as client_module
import triotls.engine.server as server_module
from tests.vectors import extract_rfc8448
from tests.vectors.rfc8448 import Actor, Step, Trace, load
from triotls.config import CertifiedKey, ClientConfig, ServerConfig
from triotls.engine import ClientConnection, HandshakeKind, ServerConnection, events
from triotls.engine.client import _ClientHandshake
from triotls.engine.connection import Connection
from triotls.engine.enums import (
    CipherSuite,
    ContentType,
    ExtensionType,
    NamedGroup,
    SignatureScheme,
)
from triotls.engine.messages import (
    Certificate,
    CertificateVerify,
    ClientHello,
    EncryptedExtensions,
    NewSessionTicket,
    ServerHello,
)
from triotls.engine.record import RecordReader
from triotls.engine.server import _ServerHandshake
from triotls.engine.suites import CIPHER_SUITES, SchemeInfo

# --- RFC 8448 section 2: the server's RSA key ------------------------------------------

# RFC 8448 section 2 ("Private Keys"), copied as printed, spaces removed.
RFC8448_RSA_KEY: Final = {
    "modulus (public)": (
        "b4bb498f8279303d980836399b36c6988c0c68de55e1bdb826d3901a2461eafd2de49a91d015abbc"
        "9a95137ace6c1af19eaa6af98c7ced43120998e187a80ee0ccb0524b1b018c3e0b63264d449a6d38"
        "e22a5fda430846748030530ef0461c8ca9d9efbfae8ea6d1d03e2bd193eff0ab9a8002c47428a6d3"
        "5a8d88d79f7f1e3f"
    ),
    "public exponent": "010001",
    "private exponent": (
        "04dea705d43a6ea7209dd8072111a83c81e322a59278b33480641eaf7c0a6985b8e31c44f6de62e1"
        "b4c2309f6126e77b7c41e923314bbfa3881305dc1217f16c819ce538e922f369828d0e57195d8c84"
        "88460207b2faa726bcf708bbd7db7f679f893492fc2a622e08970aac441ce4e0c3088df25ae67923"
        "3df8a3bda2ff9941"
    ),
    "prime1": (
        "e435fb7cc83737756dacea96ab7f59a2cc1069db7deb190e17e33a532b273f30a327aa0aaabc58cd"
        "67466af9845fadc675fe094af92c4bd1f2c1bc33dd2e0515"
    ),
    "prime2": (
        "cabd3bc0e0438664c8d4cc9f99977a94d9bbfead8e43870abae3f7eb8b4e0eee8af1d9b4719ba619"
        "6cf2cbbaeeebf8b3490afe9e9ffa74a88aa51fc645629303"
    ),
    "exponent1": (
        "3f57345c27fe1b687e6e761627b78b1b826433dd760fa0bea6a6acf39490aa1b47cda4869d68f584"
        "dd5b5029bd32093b8258661fe715025e5d70a45a08d3d319"
    ),
    "exponent2": (
        "183da01363bd2f2885cacbdc9964bf4764f1517636f86401286f71893c52ccfe40a6c23d0d086b47"
        "c6fb10d8fd1041e04def7e9a40ce957c417794e10412d139"
    ),
    "coefficient": (
        "839ca9a085e4286b2c90e466997a2c681f21339aa3477814e4dec11833050ed50dd13cc038048a43"
        "c59b2acc416889c037665fe5afa605969f8c01dfa5ca969d"
    ),
}


def rfc_server_key() -> rsa.RSAPrivateKey:
    """The RSA private key of RFC 8448 section 2."""
    number = {label: int(value, 16) for label, value in RFC8448_RSA_KEY.items()}
    public = rsa.RSAPublicNumbers(number["public exponent"], number["modulus (public)"])
    return rsa.RSAPrivateNumbers(
        p=number["prime1"],
        q=number["prime2"],
        d=number["private exponent"],
        dmp1=number["exponent1"],
        dmq1=number["exponent2"],
        iqmp=number["coefficient"],
        public_numbers=public,
    ).private_key()


def rfc_certificate(trace: Trace) -> x509.Certificate:
    """The server's certificate: the only entry of the RFC's Certificate message."""
    raw = dict(trace.handshake_messages("server"))["Certificate"]
    (entry,) = Certificate.decode(raw[4:]).certificate_list
    return x509.load_der_x509_certificate(entry.cert_data)


def test_rfc_key_numbers_are_section_2_of_the_rfc_text() -> None:
    path = extract_rfc8448.default_rfc_path()
    if not path.is_file():
        reason = f"RFC 8448 text not found at {path}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must have shared/ref beside the repository")
        print(reason)
        pytest.skip(reason)
    text = path.read_text(encoding="ascii")
    section = text[text.index("\n2.  Private Keys") : text.index("\n3.  Simple 1-RTT")]
    printed: dict[str, str] = {}
    label = None
    for line in section.splitlines():
        if match := re.fullmatch(r"   (\S[^:]*):  ((?:[0-9a-f]{2} ?)+)", line):
            label = match[1]
            printed[label] = match[2].replace(" ", "")
        elif label and (match := re.fullmatch(r" {6}((?:[0-9a-f]{2} ?)+)", line)):
            printed[label] += match[1].replace(" ", "")
        elif line.strip() and not re.match(r"Thomson|RFC 8448|\f", line):
            label = None
    assert printed == RFC8448_RSA_KEY


def test_rfc_key_is_the_key_of_the_rfc_certificate() -> None:
    key = rfc_server_key()
    public = rfc_certificate(load(3)).public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.public_numbers() == key.public_key().public_numbers()


# --- injected randomness and time -------------------------------------------------------


@final
class ScriptedRandom:
    """Hands out the RFC's values in order, checking the size of each request."""

    def __init__(self, *values: bytes) -> None:
        self._values = list(values)

    def random_bytes(self, n: int) -> bytes:
        """Return the next scripted value, which must be ``n`` bytes long."""
        assert self._values, f"the engine drew {n} random bytes beyond the RFC's values"
        value = self._values.pop(0)
        assert len(value) == n, f"the engine drew {n} random bytes where the RFC has {len(value)}"
        return value

    @property
    def left(self) -> int:
        """How many scripted values were not drawn."""
        return len(self._values)


@final
class FixedClock:
    """A wall clock stopped in January 2019, when RFC 8448 was published."""

    def now(self) -> float:
        """2019-01-01T00:00:00Z."""
        return datetime.datetime(2019, 1, 1, tzinfo=datetime.timezone.utc).timestamp()


def p256_draw(private_key: bytes) -> bytes:
    """The 40 random bytes from which the engine derives the P-256 scalar ``private_key``.

    ``suites._ec_private`` reduces 40 drawn bytes ``n`` to ``1 + n mod (order - 1)``. A
    valid scalar ``k`` is in ``[1, order - 1]``, so ``k - 1 < order - 1`` passes the
    reduction unchanged and the engine arrives at ``k``.
    """
    return (int.from_bytes(private_key, "big") - 1).to_bytes(40, "big")


def key_draws(trace: Trace, actor: Actor) -> list[bytes]:
    """The random draws of ``actor``'s ephemeral private keys, in RFC order."""
    draws: list[bytes] = []
    for step in trace.find_all(actor, "create an ephemeral"):
        private_key = step.value("private key")
        if "x25519" in step.action:
            draws.append(private_key)
        else:
            assert "P-256" in step.action, step.action
            draws.append(p256_draw(private_key))
    return draws


# --- the RFC's records ----------------------------------------------------------------


def sent_step_after(trace: Trace, actor: Actor, construct: str, nth: int = 0) -> Step:
    """The first ``send`` step of ``actor`` after its ``nth`` step starting with ``construct``."""
    built = trace.find(actor, construct, nth)
    for step in trace.steps[built.index + 1 :]:
        if step.actor == actor and step.action.startswith("send "):
            return step
    raise AssertionError(f"{trace.source}: nothing sent after {built.action!r}")


def sent_after(trace: Trace, actor: Actor, construct: str, nth: int = 0) -> bytes:
    """The record ``actor`` sent first after its ``nth`` step starting with ``construct``."""
    return sent_step_after(trace, actor, construct, nth).value("complete record")


def sent(trace: Trace, actor: Actor, kind: str) -> bytes:
    """The record of ``actor``'s (only) ``send <kind> record`` step."""
    return trace.find(actor, f"send {kind} record").value("complete record")


def payload(trace: Trace, actor: Actor, kind: str) -> bytes:
    """The plaintext of ``actor``'s (only) ``send <kind> record`` step."""
    return trace.find(actor, f"send {kind} record").value("payload")


def rfc_message(trace: Trace, actor: Actor, name: str, nth: int = 0) -> bytes:
    """The body (no handshake header) of the ``nth`` message ``name`` of ``actor``."""
    bodies = [raw[4:] for label, raw in trace.handshake_messages(actor) if label == name]
    return bodies[nth]


def split_records(data: bytes) -> list[bytes]:
    """Cut a byte stream into records by their headers' lengths."""
    records: list[bytes] = []
    while data:
        assert len(data) >= 5, f"{len(data)} bytes left, less than a record header"
        end = 5 + int.from_bytes(data[3:5], "big")
        assert len(data) >= end, f"a record announces {end} bytes, {len(data)} are left"
        records.append(data[:end])
        data = data[end:]
    return records


def traffic_secret(trace: Trace, label: str) -> bytes:
    """The RFC's ``derive secret "tls13 <label>"`` output."""
    for step in trace.find_all("server", f'derive secret "tls13 {label}"'):
        if step.has("expanded"):
            return step.value("expanded")
    raise AssertionError(f"{trace.source} prints no server derivation of {label!r}")


# --- the server side --------------------------------------------------------------------


@dataclass(kw_only=True, eq=False)
class ServerReplay:
    """A ServerConnection set up to answer RFC 8448's client as RFC 8448's server did.

    Attributes:
        trace: the RFC 8448 section.
        conn: the connection under test.
        random: its randomness, scripted with the RFC server's values.
        signed: each content our server asked to sign (the patched ``sign`` checked
            the RFC's signature over it).
        answers: each extension dict our real ``encrypted_extensions`` returned.
        retry_requests: each HelloRetryRequest our server built, before substitution.
    """

    trace: Trace
    conn: ServerConnection
    random: ScriptedRandom
    signed: list[bytes] = field(default_factory=list)
    answers: list[dict[int, bytes]] = field(default_factory=list)
    retry_requests: list[ServerHello] = field(default_factory=list)

    @property
    def client_hellos(self) -> list[bytes]:
        """The RFC client's ClientHello records, in order."""
        count = len(self.trace.find_all("client", "construct a ClientHello"))
        return [
            sent_after(self.trace, "client", "construct a ClientHello", n) for n in range(count)
        ]

    def receive(self, record: bytes) -> tuple[list[events.Event], list[bytes]]:
        """Feed one RFC client record; return the events and the records we wrote."""
        received = self.conn.receive_data(record)
        return received, split_records(self.conn.data_to_send())

    def through_flight(self) -> list[bytes]:
        """Feed the client's hello(s); return our records after the last ClientHello."""
        *first, last = self.client_hellos
        for record in first:
            self.receive(record)
        received, written = self.receive(last)
        assert received == []
        return written

    def through_client_finished(self) -> list[events.Event]:
        """Run the handshake; return the events of the client's Finished."""
        self.through_flight()
        received, written = self.receive(sent_after(self.trace, "client", "construct a Finished"))
        # The RFC server sends a NewSessionTicket here; triotls sends no tickets.
        assert written == []
        return received


def start_server(section: int, monkeypatch: pytest.MonkeyPatch) -> ServerReplay:
    """Set up a ServerConnection with the RFC server's key, randomness and answers."""
    trace = load(section)
    leaf = rfc_certificate(trace)
    server_hello = ServerHello.decode(rfc_message(trace, "server", "ServerHello", nth=-1))
    random = ScriptedRandom(*key_draws(trace, "server"), server_hello.random)
    config = ServerConfig(
        certificates=(CertifiedKey([leaf], rfc_server_key()),),
        cipher_suites=(CipherSuite.TLS_AES_128_GCM_SHA256,),
        # Section 3's server takes the client's x25519 share. Section 5's asks for
        # P-256 with a HelloRetryRequest; ours prefers any group the client already
        # sent a share for, so x25519 must not be acceptable to it.
        groups=(NamedGroup.X25519,) if section == 3 else (NamedGroup.SECP256R1,),
        random=random,
        clock=FixedClock(),
        # The RFC server sends its ticket after the client's Finished; ours sends
        # tickets with its first flight, which the trace cannot show.
        ticket_count=0,
    )
    replay = ServerReplay(trace=trace, conn=ServerConnection(config), random=random)
    _substitute_encrypted_extensions(monkeypatch, replay)
    _substitute_signature(monkeypatch, replay, leaf)
    if section == 5:
        _substitute_retry_request(monkeypatch, replay)
    return replay


def _substitute_encrypted_extensions(monkeypatch: pytest.MonkeyPatch, replay: ServerReplay) -> None:
    # RFC 8448's server answers with supported_groups (RFC 8446 §4.2.7 lets a server
    # list its groups), FFDHE groups included; triotls implements no FFDHE group.
    # Everything else it answered must be exactly what our server answers.
    rfc = EncryptedExtensions.decode(rfc_message(replay.trace, "server", "EncryptedExtensions"))
    real = server_module.encrypted_extensions

    def encrypted_extensions(
        hs: _ServerHandshake, ch: ClientHello, conn: Connection
    ) -> dict[int, bytes]:
        ours = real(hs, ch, conn)
        replay.answers.append(ours)
        expected = [
            (t, d) for t, d in rfc.extensions.items() if t != ExtensionType.SUPPORTED_GROUPS
        ]
        assert list(ours.items()) == expected, "our EncryptedExtensions differ from the RFC's"
        return dict(rfc.extensions)

    monkeypatch.setattr(server_module, "encrypted_extensions", encrypted_extensions)


def _substitute_signature(
    monkeypatch: pytest.MonkeyPatch, replay: ServerReplay, leaf: x509.Certificate
) -> None:
    # RSA-PSS draws a random salt for every signature (RFC 8017 §9.1.1), so no key
    # reproduces the RFC's signature. The RFC's signature must verify over exactly
    # the bytes our server asks to sign; then it stands in for ours.
    rfc = CertificateVerify.decode(rfc_message(replay.trace, "server", "CertificateVerify"))
    public_key = leaf.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)

    rfc_key = rfc_server_key().private_numbers()

    def sign(key: object, info: SchemeInfo, data: bytes) -> bytes:
        replay.signed.append(data)
        assert isinstance(key, rsa.RSAPrivateKey) and key.private_numbers() == rfc_key
        assert info.scheme == rfc.algorithm == SignatureScheme.RSA_PSS_RSAE_SHA256
        try:
            public_key.verify(rfc.signature, data, _PSS_SHA256, hashes.SHA256())
        except InvalidSignature:
            raise AssertionError(
                "the RFC's CertificateVerify signature does not cover what our server signs"
            ) from None
        return rfc.signature

    monkeypatch.setattr(server_module, "sign", sign)


def _substitute_retry_request(monkeypatch: pytest.MonkeyPatch, replay: ServerReplay) -> None:
    # RFC 8448's server puts a cookie (RFC 8446 §4.2.2) in its HelloRetryRequest:
    # opaque state only that server can interpret. Ours is stateful and sends none.
    # Everything else must be exactly what our server built, in the same order.
    rfc = ServerHello.decode(rfc_message(replay.trace, "server", "ServerHello", nth=0))
    assert rfc.is_hello_retry_request
    rfc_without_cookie = dataclasses.replace(
        rfc, extensions={t: d for t, d in rfc.extensions.items() if t != ExtensionType.COOKIE}
    )

    def server_hello(
        *,
        random: bytes,
        legacy_session_id_echo: bytes,
        cipher_suite: int,
        extensions: dict[int, bytes],
    ) -> ServerHello:
        ours = ServerHello(
            random=random,
            legacy_session_id_echo=legacy_session_id_echo,
            cipher_suite=cipher_suite,
            extensions=extensions,
        )
        if not ours.is_hello_retry_request:
            return ours
        replay.retry_requests.append(ours)
        assert ours.encode() == rfc_without_cookie.encode(), "our HRR differs from the RFC's"
        return rfc

    monkeypatch.setattr(server_module, "ServerHello", server_hello)


_PSS_SHA256: Final = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


def test_server_answers_first_client_hello_with_rfc_retry_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    replay = start_server(5, monkeypatch)
    received, written = replay.receive(replay.client_hellos[0])
    assert received == []
    assert len(replay.retry_requests) == 1
    assert [record.hex() for record in written] == [
        sent_after(replay.trace, "server", "construct a ServerHello", nth=0).hex()
    ]


@pytest.mark.parametrize("section", [3, 5])
def test_server_hello_record_is_rfc_record(section: int, monkeypatch: pytest.MonkeyPatch) -> None:
    replay = start_server(section, monkeypatch)
    written = replay.through_flight()
    # Section 5's first ServerHello is the HelloRetryRequest.
    expected = sent_after(
        replay.trace, "server", "construct a ServerHello", nth=1 if section == 5 else 0
    )
    assert written[0].hex() == expected.hex()


@pytest.mark.parametrize("section", [3, 5])
def test_server_encrypted_flight_is_rfc_record(
    section: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    replay = start_server(section, monkeypatch)
    written = replay.through_flight()
    expected = sent_after(replay.trace, "server", "construct a Finished")
    assert [record.hex() for record in written[1:]] == [expected.hex()]


@pytest.mark.parametrize("section", [3, 5])
def test_server_encrypted_flight_carries_rfc_messages(
    section: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whatever the record boundaries, our flight must decrypt, under the RFC's
    # server handshake traffic secret, to the RFC's EncryptedExtensions through
    # Finished, byte for byte.
    replay = start_server(section, monkeypatch)
    written = replay.through_flight()
    reader = RecordReader()
    reader.set_key(
        CIPHER_SUITES[CipherSuite.TLS_AES_128_GCM_SHA256],
        traffic_secret(replay.trace, "s hs traffic"),
    )
    reader.feed(b"".join(written[1:]))
    opened = []
    while (record := reader.next_record()) is not None:
        opened.append(record)

    assert {content_type for content_type, _ in opened} == {ContentType.HANDSHAKE}
    flight = sent_step_after(replay.trace, "server", "construct a Finished").value("payload")
    assert b"".join(plaintext for _, plaintext in opened).hex() == flight.hex()


@pytest.mark.parametrize("section", [3, 5])
def test_server_answers_in_encrypted_extensions_what_the_rfc_server_answered(
    section: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    replay = start_server(section, monkeypatch)
    replay.through_flight()
    rfc = EncryptedExtensions.decode(rfc_message(replay.trace, "server", "EncryptedExtensions"))
    # RFC 8449 record_size_limit 2^14 + 1, and an empty server_name (RFC 6066 §3).
    assert replay.answers == [
        {
            ExtensionType.RECORD_SIZE_LIMIT: rfc.extensions[ExtensionType.RECORD_SIZE_LIMIT],
            ExtensionType.SERVER_NAME: b"",
        }
    ]


@pytest.mark.parametrize("section", [3, 5])
def test_server_signs_what_the_rfc_server_signed(
    section: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    replay = start_server(section, monkeypatch)
    replay.through_flight()
    rfc = CertificateVerify.decode(rfc_message(replay.trace, "server", "CertificateVerify"))
    public_key = rfc_certificate(replay.trace).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)

    (signed,) = replay.signed

    # RFC 8446 §4.4.3: 64 spaces, the context string, a zero byte, the transcript hash.
    assert signed.startswith(b" " * 64 + b"TLS 1.3, server CertificateVerify\x00")
    public_key.verify(rfc.signature, signed, _PSS_SHA256, hashes.SHA256())


@pytest.mark.parametrize("section", [3, 5])
def test_server_draws_exactly_the_rfc_random_values(
    section: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    replay = start_server(section, monkeypatch)
    replay.through_client_finished()
    assert replay.random.left == 0


@pytest.mark.parametrize("section", [3, 5])
def test_server_completes_handshake_on_rfc_client_finished(
    section: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    replay = start_server(section, monkeypatch)

    assert replay.through_client_finished() == [events.HandshakeComplete()]

    negotiated = replay.conn.negotiated
    assert negotiated is not None
    assert negotiated.cipher_suite == CipherSuite.TLS_AES_128_GCM_SHA256
    assert negotiated.group == (NamedGroup.X25519 if section == 3 else NamedGroup.SECP256R1)
    assert negotiated.signature_scheme == SignatureScheme.RSA_PSS_RSAE_SHA256
    assert negotiated.server_name == "server"
    assert negotiated.handshake_kind == (
        HandshakeKind.FULL if section == 3 else HandshakeKind.FULL_WITH_HELLO_RETRY_REQUEST
    )


def test_server_receives_rfc_application_data(monkeypatch: pytest.MonkeyPatch) -> None:
    replay = start_server(3, monkeypatch)
    replay.through_client_finished()

    received, written = replay.receive(sent(replay.trace, "client", "application_data"))

    assert received == [events.ApplicationData(payload(replay.trace, "client", "application_data"))]
    assert written == []


def _server_takes_rfc_ticket_sequence_number(replay: ServerReplay) -> None:
    # The RFC server's first record under its application key is its
    # NewSessionTicket (sequence number 0), so its application data record has
    # sequence number 1 (RFC 8446 §5.3). triotls sends no tickets; one record of
    # application data takes sequence number 0 in the ticket's place.
    replay.conn.send_application_data(b"in place of the RFC's NewSessionTicket")
    assert len(split_records(replay.conn.data_to_send())) == 1


def test_server_application_data_record_is_rfc_record(monkeypatch: pytest.MonkeyPatch) -> None:
    replay = start_server(3, monkeypatch)
    replay.through_client_finished()
    replay.receive(sent(replay.trace, "client", "application_data"))
    _server_takes_rfc_ticket_sequence_number(replay)

    replay.conn.send_application_data(payload(replay.trace, "server", "application_data"))

    assert (
        replay.conn.data_to_send().hex() == sent(replay.trace, "server", "application_data").hex()
    )


@pytest.mark.parametrize("section", [3, 5])
def test_server_close_notify_record_is_rfc_record(
    section: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    replay = start_server(section, monkeypatch)
    replay.through_client_finished()
    if section == 3:
        replay.receive(sent(replay.trace, "client", "application_data"))
        _server_takes_rfc_ticket_sequence_number(replay)
        replay.conn.send_application_data(payload(replay.trace, "server", "application_data"))
        replay.conn.data_to_send()
    assert replay.receive(sent(replay.trace, "client", "alert")) == ([events.CloseNotify()], [])

    replay.conn.close()

    assert replay.conn.data_to_send().hex() == sent(replay.trace, "server", "alert").hex()


# --- the client side --------------------------------------------------------------------


@dataclass(kw_only=True, eq=False)
class ClientReplay:
    """A ClientConnection set up to talk to RFC 8448's server as RFC 8448's client did.

    Attributes:
        trace: the RFC 8448 section.
        conn: the connection under test.
        random: its randomness, scripted with the RFC client's values.
        built: each ClientHello our own code built, before substitution.
    """

    trace: Trace
    conn: ClientConnection
    random: ScriptedRandom
    built: list[ClientHello] = field(default_factory=list)

    def receive(self, record: bytes) -> tuple[list[events.Event], list[bytes]]:
        """Feed one RFC server record; return the events and the records we wrote."""
        received = self.conn.receive_data(record)
        return received, split_records(self.conn.data_to_send())

    def through_server_flight(self) -> tuple[list[events.Event], list[bytes]]:
        """Start, feed the server's records through its Finished; return the last answer."""
        self.conn.data_to_send()
        flight = sent_after(self.trace, "server", "construct a Finished")
        for record in self.trace.records("server"):
            answer = self.receive(record)
            if record == flight:
                return answer
        raise AssertionError("the RFC server's flight was not among its records")


def start_client(section: int, monkeypatch: pytest.MonkeyPatch) -> ClientReplay:
    """Set up a ClientConnection with the RFC client's randomness and hellos; start it."""
    trace = load(section)
    first_hello = ClientHello.decode(rfc_message(trace, "client", "ClientHello"))
    # RFC 8448's hellos have an empty legacy_session_id: no compatibility mode, so
    # the client draws its random, then its x25519 key (and a P-256 key on retry).
    assert first_hello.legacy_session_id == b""
    random = ScriptedRandom(first_hello.random, *key_draws(trace, "client"))
    config = ClientConfig(
        # The RFC's certificate (CN=rsa) has no subjectAltName, is in no trust store
        # and expires in July 2026; the CertificateVerify signature is still checked
        # against it, whatever verify_peer says.
        verify_peer=False,
        middlebox_compat=False,
        cipher_suites=(
            CipherSuite.TLS_AES_128_GCM_SHA256,
            CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
            CipherSuite.TLS_AES_256_GCM_SHA384,
        ),
        groups=(NamedGroup.X25519, NamedGroup.SECP256R1, NamedGroup.SECP384R1),
        key_share_groups=(NamedGroup.X25519,),
        random=random,
        clock=FixedClock(),
    )
    replay = ClientReplay(
        trace=trace, conn=ClientConnection(config, server_hostname="server"), random=random
    )
    _substitute_client_hellos(monkeypatch, replay)
    replay.conn.start_handshake()
    return replay


def _substitute_client_hellos(monkeypatch: pytest.MonkeyPatch, replay: ClientReplay) -> None:
    # RFC 8448's client offers what triotls never sends: renegotiation_info,
    # session_ticket, FFDHE groups, PKCS#1 and SHA-1 signature schemes. Our real
    # builder still runs (it draws the key shares from the scripted Random); then
    # the RFC's hello takes the place of ours.
    rfc = [
        ClientHello.decode(raw[4:])
        for name, raw in replay.trace.handshake_messages("client")
        if name == "ClientHello"
    ]
    real_build = client_module._build_client_hello

    def build_client_hello(hs: _ClientHandshake) -> ClientHello:
        ours = real_build(hs)
        replay.built.append(ours)
        assert (
            ours.extensions[ExtensionType.KEY_SHARE] == rfc[0].extensions[ExtensionType.KEY_SHARE]
        )
        return rfc[0]

    # The second ClientHello is built inside ExpectServerHello._hello_retry from the
    # first one's extensions. RFC 8448's client puts the cookie before
    # psk_key_exchange_modes and adds a padding extension (RFC 7685) that brings the
    # message to 512 bytes; ours appends the cookie and does not pad. Everything
    # else must be what our client built.
    def client_hello(
        *,
        random: bytes,
        legacy_session_id: bytes,
        cipher_suites: tuple[int, ...],
        extensions: dict[int, bytes],
    ) -> ClientHello:
        ours = ClientHello(
            random=random,
            legacy_session_id=legacy_session_id,
            cipher_suites=cipher_suites,
            extensions=extensions,
        )
        if not replay.built:
            return ours  # the real builder making the first hello
        replay.built.append(ours)
        expected = rfc[len(replay.built) - 1]
        unpadded = {t: d for t, d in expected.extensions.items() if t != ExtensionType.PADDING}
        assert ours.extensions == unpadded, "our second ClientHello differs from the RFC's"
        assert dataclasses.replace(ours, extensions={}) == dataclasses.replace(
            expected, extensions={}
        )
        return expected

    monkeypatch.setattr(client_module, "_build_client_hello", build_client_hello)
    monkeypatch.setattr(client_module, "ClientHello", client_hello)


@pytest.mark.parametrize("section", [3, 5])
def test_client_hello_record_is_rfc_record(section: int, monkeypatch: pytest.MonkeyPatch) -> None:
    replay = start_client(section, monkeypatch)
    expected = sent_after(replay.trace, "client", "construct a ClientHello")
    assert replay.conn.data_to_send().hex() == expected.hex()


@pytest.mark.parametrize("section", [3, 5])
def test_client_builds_the_rfc_offers_it_implements(
    section: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    replay = start_client(section, monkeypatch)
    (ours,) = replay.built
    rfc = ClientHello.decode(rfc_message(replay.trace, "client", "ClientHello"))
    assert (ours.random, ours.legacy_session_id) == (rfc.random, rfc.legacy_session_id)
    # Our supported_groups and signature_algorithms are the subsets we implement.
    for ext_type in (ExtensionType.SUPPORTED_GROUPS, ExtensionType.SIGNATURE_ALGORITHMS):
        assert ext_type in ours.extensions and ext_type in rfc.extensions
    shared = {
        ExtensionType.SERVER_NAME,
        ExtensionType.KEY_SHARE,
        ExtensionType.SUPPORTED_VERSIONS,
        ExtensionType.PSK_KEY_EXCHANGE_MODES,
        ExtensionType.RECORD_SIZE_LIMIT,
    }
    assert {t: ours.extensions[t] for t in shared} == {t: rfc.extensions[t] for t in shared}
    assert set(ours.extensions) - set(rfc.extensions) == set()


def test_client_answers_retry_request_with_rfc_second_client_hello(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    replay = start_client(5, monkeypatch)
    replay.conn.data_to_send()

    received, written = replay.receive(
        sent_after(replay.trace, "server", "construct a ServerHello")
    )

    assert received == []
    expected = sent_after(replay.trace, "client", "construct a ClientHello", nth=1)
    assert [record.hex() for record in written] == [expected.hex()]


@pytest.mark.parametrize("section", [3, 5])
def test_client_finished_record_is_rfc_record(
    section: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    replay = start_client(section, monkeypatch)

    received, written = replay.through_server_flight()

    assert received == [events.HandshakeComplete()]
    expected = sent_after(replay.trace, "client", "construct a Finished")
    assert [record.hex() for record in written] == [expected.hex()]


@pytest.mark.parametrize("section", [3, 5])
def test_client_negotiates_what_the_rfc_client_negotiated(
    section: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    replay = start_client(section, monkeypatch)
    replay.through_server_flight()

    negotiated = replay.conn.negotiated
    assert negotiated is not None
    assert negotiated.cipher_suite == CipherSuite.TLS_AES_128_GCM_SHA256
    assert negotiated.group == (NamedGroup.X25519 if section == 3 else NamedGroup.SECP256R1)
    assert negotiated.signature_scheme == SignatureScheme.RSA_PSS_RSAE_SHA256
    assert negotiated.peer_certificates == (rfc_certificate(replay.trace),)
    assert negotiated.verified_chain is None
    assert negotiated.handshake_kind == (
        HandshakeKind.FULL if section == 3 else HandshakeKind.FULL_WITH_HELLO_RETRY_REQUEST
    )
    assert replay.random.left == 0


def test_client_receives_rfc_new_session_ticket(monkeypatch: pytest.MonkeyPatch) -> None:
    replay = start_client(3, monkeypatch)
    replay.through_server_flight()
    ticket = NewSessionTicket.decode(rfc_message(replay.trace, "server", "NewSessionTicket"))

    received, written = replay.receive(
        sent_after(replay.trace, "server", "construct a NewSessionTicket")
    )

    assert received == [events.NewSessionTicketReceived(lifetime=ticket.ticket_lifetime)]
    assert written == []


def _client_through_ticket(replay: ClientReplay) -> None:
    replay.through_server_flight()
    replay.receive(sent_after(replay.trace, "server", "construct a NewSessionTicket"))


def test_client_receives_rfc_application_data(monkeypatch: pytest.MonkeyPatch) -> None:
    replay = start_client(3, monkeypatch)
    _client_through_ticket(replay)

    received, written = replay.receive(sent(replay.trace, "server", "application_data"))

    assert received == [events.ApplicationData(payload(replay.trace, "server", "application_data"))]
    assert written == []


def test_client_application_data_record_is_rfc_record(monkeypatch: pytest.MonkeyPatch) -> None:
    replay = start_client(3, monkeypatch)
    _client_through_ticket(replay)

    replay.conn.send_application_data(payload(replay.trace, "client", "application_data"))

    assert (
        replay.conn.data_to_send().hex() == sent(replay.trace, "client", "application_data").hex()
    )


@pytest.mark.parametrize("section", [3, 5])
def test_client_close_notify_record_is_rfc_record(
    section: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    replay = start_client(section, monkeypatch)
    replay.through_server_flight()
    if section == 3:
        replay.receive(sent_after(replay.trace, "server", "construct a NewSessionTicket"))
        replay.receive(sent(replay.trace, "server", "application_data"))
        replay.conn.send_application_data(payload(replay.trace, "client", "application_data"))
        replay.conn.data_to_send()

    replay.conn.close()

    assert replay.conn.data_to_send().hex() == sent(replay.trace, "client", "alert").hex()
    assert replay.receive(sent(replay.trace, "server", "alert")) == ([events.CloseNotify()], [])
