"""Checks on the RFC 8448 trace data files and their loader.

Nothing here recomputes cryptography: the data is checked against the RFC text and
for structure (record headers, handshake headers, which bytes embed which).
"""

from __future__ import annotations

import os
import re

import pytest

from tests.vectors import extract_rfc8448
from tests.vectors.rfc8448 import Actor, Trace, load

SECTIONS = sorted(extract_rfc8448.SECTIONS)
ACTORS: tuple[Actor, ...] = ("client", "server")

# RFC 8446 §4: HandshakeType code points, by the names RFC 8448 labels messages with.
HANDSHAKE_TYPES = {
    "ClientHello": 1,
    "ServerHello": 2,  # also the HelloRetryRequest in section 5
    "NewSessionTicket": 4,
    "EndOfEarlyData": 5,
    "EncryptedExtensions": 8,
    "Certificate": 11,
    "CertificateRequest": 13,
    "CertificateVerify": 15,
    "Finished": 20,
}
# RFC 8446 §5.1: ContentType code points.
CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA = 20, 21, 22, 23
# RFC 8446 §5.2: TLS_AES_128_GCM_SHA256 (every RFC 8448 trace) has a 16-byte tag, and
# the inner plaintext adds one content type byte.
AEAD_TAG_LEN = 16


@pytest.fixture(scope="module")
def rfc_text() -> str:
    path = extract_rfc8448.default_rfc_path()
    if not path.is_file():
        reason = f"RFC 8448 text not found at {path}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must have shared/ref beside the repository")
        print(reason)
        pytest.skip(reason)
    return path.read_text(encoding="ascii")


# --- the data files match the RFC text ----------------------------------------------


@pytest.mark.parametrize("section", SECTIONS)
def test_data_file_is_what_the_extractor_makes_from_the_rfc(rfc_text: str, section: int) -> None:
    parsed = extract_rfc8448.parse_rfc(rfc_text, frozenset({section}))[section]
    path = extract_rfc8448.output_path(extract_rfc8448.DATA_DIR, section)
    assert path.read_text(encoding="utf-8") == extract_rfc8448.render(parsed), (
        f"{path} is stale: run python tests/vectors/extract_rfc8448.py"
    )


@pytest.mark.parametrize("section", SECTIONS)
def test_every_octet_count_in_the_rfc_is_a_value_of_that_length(
    rfc_text: str, section: int
) -> None:
    # A deliberately naive scan, independent of the extractor: every "label (N octets):"
    # line of the section, in order.
    lines = rfc_text.splitlines()
    start = lines.index(next(line for line in lines if line.startswith(f"{section}.  ")))
    end = lines.index(next(line for line in lines if line.startswith(f"{section + 1}.  ")))
    announced = [
        (match[1], int(match[2]))
        for line in lines[start:end]
        if (match := re.match(r" {6}(\S.*?) \((\d+) octets?\):  ", line))
    ]
    extracted = [
        (label, len(data)) for step in load(section).steps for label, data in step.values.items()
    ]
    assert extracted == announced


@pytest.mark.parametrize("section", SECTIONS)
def test_step_headers_match_the_rfc_in_order(rfc_text: str, section: int) -> None:
    lines = rfc_text.splitlines()
    start = lines.index(next(line for line in lines if line.startswith(f"{section}.  ")))
    end = lines.index(next(line for line in lines if line.startswith(f"{section + 1}.  ")))
    headers = [
        (match[1], match[2])
        for line in lines[start:end]
        if (match := re.fullmatch(r" {3}\{(client|server)\}  (.*)", line))
    ]
    steps = load(section).steps
    assert len(steps) == len(headers)
    for step, (actor, first_line) in zip(steps, headers, strict=True):
        assert step.actor == actor
        assert step.action.startswith(first_line.removesuffix(":"))


# --- structure, without recomputing any cryptography --------------------------------


def test_section3_client_public_key_is_the_client_hello_key_share() -> None:
    trace = load(3)
    public_key = trace.find("client", "create an ephemeral x25519").value("public key")
    # RFC 8446 §4.2.8: KeyShareEntry(group=x25519 0x001d, key_exchange<1..2^16-1>).
    entry = bytes.fromhex("001d0020") + public_key
    assert entry in trace.find("client", "construct a ClientHello").value("ClientHello")
    assert entry in trace.find("client", "send handshake record").value("payload")
    assert entry in trace.records("client")[0]


def test_section3_server_public_key_is_the_server_hello_key_share() -> None:
    trace = load(3)
    public_key = trace.find("server", "create an ephemeral x25519").value("public key")
    entry = bytes.fromhex("001d0020") + public_key
    assert entry in trace.find("server", "construct a ServerHello").value("ServerHello")
    assert entry in trace.records("server")[0]


@pytest.mark.parametrize("section", SECTIONS)
@pytest.mark.parametrize("actor", ACTORS)
def test_every_ephemeral_public_key_is_in_a_hello_of_its_actor(section: int, actor: Actor) -> None:
    trace = load(section)
    hellos = [data for name, data in trace.handshake_messages(actor) if name.endswith("Hello")]
    for step in trace.find_all(actor, "create an ephemeral"):
        public_key = step.value("public key")
        assert any(public_key in hello for hello in hellos), step.action


@pytest.mark.parametrize("section", SECTIONS)
@pytest.mark.parametrize("actor", ACTORS)
def test_every_complete_record_has_a_valid_record_header(section: int, actor: Actor) -> None:
    records = load(section).records(actor)
    assert records
    for record in records:
        assert record[0] in (CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA)
        # RFC 8446 §5.1: legacy_record_version is 0x0303, or 0x0301 on a first ClientHello.
        assert record[1:3] in (b"\x03\x03", b"\x03\x01")
        length = int.from_bytes(record[3:5], "big")
        assert length == len(record) - 5
        assert 0 < length <= 2**14 + 256


@pytest.mark.parametrize("section", SECTIONS)
@pytest.mark.parametrize("actor", ACTORS)
def test_plaintext_records_carry_their_payload(section: int, actor: Actor) -> None:
    for step in load(section).find_all(actor, "send "):
        record = step.value("complete record")
        if record[0] == APPLICATION_DATA:
            continue
        assert record[5:] == step.value("payload")
        expected = CHANGE_CIPHER_SPEC if "change_cipher_spec" in step.action else HANDSHAKE
        assert record[0] == expected, step.action


@pytest.mark.parametrize("section", SECTIONS)
@pytest.mark.parametrize("actor", ACTORS)
def test_protected_records_are_payload_plus_content_type_plus_tag(
    section: int, actor: Actor
) -> None:
    for step in load(section).find_all(actor, "send "):
        record = step.value("complete record")
        if record[0] != APPLICATION_DATA:
            continue
        # RFC 8446 §5.2: no padding in RFC 8448's traces.
        assert len(record) - 5 == len(step.value("payload")) + 1 + AEAD_TAG_LEN, step.action


@pytest.mark.parametrize("section", SECTIONS)
def test_server_records_contain_every_server_hello(section: int) -> None:
    trace = load(section)
    wire = b"".join(trace.records("server"))
    server_hellos = [
        data for name, data in trace.handshake_messages("server") if name == "ServerHello"
    ]
    assert server_hellos
    for server_hello in server_hellos:
        assert server_hello in wire


@pytest.mark.parametrize("section", SECTIONS)
@pytest.mark.parametrize("actor", ACTORS)
def test_handshake_messages_have_their_type_and_length_header(section: int, actor: Actor) -> None:
    messages = load(section).handshake_messages(actor)
    assert messages
    for name, message in messages:
        assert message[0] == HANDSHAKE_TYPES[name], name
        if (section, name) == (4, "ClientHello"):
            continue  # see test_section4_client_hello_is_printed_without_its_psk_binders
        assert int.from_bytes(message[1:4], "big") == len(message) - 4, name


@pytest.mark.parametrize(
    ("section", "actor"),
    [
        (section, actor)
        for section in SECTIONS
        for actor in ACTORS
        if (section, actor) != (4, "client")
    ],
)
def test_handshake_messages_are_what_the_handshake_records_carry(
    section: int, actor: Actor
) -> None:
    trace = load(section)
    sent = b"".join(step.value("payload") for step in trace.find_all(actor, "send handshake"))
    assert b"".join(data for _, data in trace.handshake_messages(actor)) == sent


def test_section4_client_hello_is_printed_without_its_psk_binders() -> None:
    # RFC 8448 section 4 prints the ClientHello truncated before the binders (the part
    # the binder covers); only the record payload has the binders.
    trace = load(4)
    client_hello = trace.find("client", "construct a ClientHello").value("ClientHello")
    binder_step = trace.find("client", "calculate PSK binder")
    assert binder_step.value("ClientHello prefix") == client_hello
    # RFC 8446 §4.2.11: PskBinderEntry binders<33..2^16-1>, one 32-byte entry.
    binders = bytes.fromhex("002120") + binder_step.value("finished")
    payload = trace.find("client", "send handshake record").value("payload")
    assert payload == client_hello + binders
    assert int.from_bytes(client_hello[1:4], "big") == len(payload) - 4


@pytest.mark.parametrize("section", SECTIONS)
@pytest.mark.parametrize("actor", ACTORS)
def test_finished_messages_carry_the_calculated_verify_data(section: int, actor: Actor) -> None:
    trace = load(section)
    verify_data = [
        step.value("finished")
        for step in trace.find_all(actor, "calculate finished")
        if step.has("finished")
    ]
    finished = [data for name, data in trace.handshake_messages(actor) if name == "Finished"]
    assert finished == [b"\x14\x00\x00\x20" + data for data in verify_data]


@pytest.mark.parametrize("section", SECTIONS)
def test_steps_that_repeat_the_peer_have_no_values(section: int) -> None:
    for step in load(section).steps:
        if "(same as" in step.action:
            assert not step.values, step.action


# --- loader API -----------------------------------------------------------------


def test_find_returns_the_nth_matching_step() -> None:
    trace = load(3)
    second = trace.find("server", "send handshake record", nth=1)
    assert second.value("payload")[0] == HANDSHAKE_TYPES["EncryptedExtensions"]
    assert second is trace.find_all("server", "send handshake record")[1]


def test_find_without_a_match_raises_key_error_listing_actions() -> None:
    with pytest.raises(KeyError, match=r"has 0 client step.*'send alert record'"):
        load(3).find("client", "construct a NewSessionTicket")


def test_find_past_the_last_match_raises_key_error() -> None:
    with pytest.raises(KeyError, match="no nth=9"):
        load(3).find("client", "send handshake record", nth=9)


def test_value_with_unknown_label_raises_key_error_listing_labels() -> None:
    step = load(3).find("client", "create an ephemeral x25519")
    with pytest.raises(KeyError, match=r"no value 'secret'.*'private key', 'public key'"):
        step.value("secret")


def test_load_of_a_section_without_trace_raises_key_error() -> None:
    with pytest.raises(KeyError, match="no RFC 8448 data for section 2"):
        load(2)


def test_records_are_the_complete_records_of_send_steps_in_order() -> None:
    trace = load(7)
    actions = [step.action for step in trace.find_all("server", "send ")]
    assert actions[:2] == ["send handshake record", "send change_cipher_spec record"]
    assert trace.records("server")[1] == bytes.fromhex("140303000101")


def test_step_text_keeps_prose_values() -> None:
    step = load(3).find("server", 'extract secret "early"')
    assert step.text == "salt: 0 (all zero octets)"
    assert not step.has("salt")


def test_load_returns_the_same_trace_each_time() -> None:
    trace: Trace = load(5)
    assert load(5) is trace


# --- extractor, on synthetic RFC text --------------------------------------------


def _synthetic(body: str) -> str:
    return f"3.  Simple 1-RTT Handshake\n\n   Prose.\n\n{body}\n4.  Resumed 0-RTT Handshake\n"


def test_extractor_joins_a_value_split_by_a_page_break() -> None:
    text = _synthetic(
        "   {client}  send handshake record:\n\n"
        "      payload (20 octets):  00 01 02 03 04 05 06 07 08 09\n\n\n"
        "Thomson                       Informational                     [Page 4]\n"
        "\f\n"
        "RFC 8448                     TLS 1.3 Traces                 January 2019\n\n\n"
        "         0a 0b 0c 0d 0e 0f 10 11 12 13\n"
    )
    (step,) = extract_rfc8448.parse_rfc(text, frozenset({3}))[3].steps
    assert step.values == {"payload": bytes(range(20))}


def test_extractor_joins_a_wrapped_step_header() -> None:
    text = _synthetic(
        "   {client}  derive read traffic keys for handshake data (same as server\n"
        "      handshake data write traffic keys)\n"
    )
    (step,) = extract_rfc8448.parse_rfc(text, frozenset({3}))[3].steps
    assert step.action == (
        "derive read traffic keys for handshake data (same as server handshake data "
        "write traffic keys)"
    )


def test_extractor_reads_an_empty_value() -> None:
    text = _synthetic(
        '   {server}  calculate finished "tls13 finished":\n\n      hash (0 octets):  (empty)\n'
    )
    (step,) = extract_rfc8448.parse_rfc(text, frozenset({3}))[3].steps
    assert step.values == {"hash": b""}


def test_extractor_rejects_a_value_shorter_than_its_octet_count() -> None:
    text = _synthetic("   {client}  send alert record:\n\n      payload (3 octets):  01 00\n")
    with pytest.raises(extract_rfc8448.RFCFormatError, match="announced 3 octets but has 2"):
        extract_rfc8448.parse_rfc(text, frozenset({3}))


def test_extractor_rejects_a_value_longer_than_its_octet_count() -> None:
    text = _synthetic(
        "   {client}  send alert record:\n\n      payload (1 octets):  01\n         00\n"
    )
    with pytest.raises(extract_rfc8448.RFCFormatError, match="announced 1 octets but has 2"):
        extract_rfc8448.parse_rfc(text, frozenset({3}))


def test_extractor_rejects_a_repeated_label() -> None:
    text = _synthetic(
        "   {client}  send alert record:\n\n"
        "      payload (1 octets):  01\n\n      payload (1 octets):  02\n"
    )
    with pytest.raises(extract_rfc8448.RFCFormatError, match="'payload' repeats"):
        extract_rfc8448.parse_rfc(text, frozenset({3}))


def test_extractor_rejects_an_unexpected_line() -> None:
    text = _synthetic("   {client}  send alert record:\n\n   stray prose\n")
    with pytest.raises(extract_rfc8448.RFCFormatError, match="line 7: unexpected line"):
        extract_rfc8448.parse_rfc(text, frozenset({3}))
