"""The key schedule against published vectors: RFC 5869 (HKDF) and RFC 8448 (TLS 1.3).

Every expected value is copied from an RFC: the HKDF cases below from RFC 5869
appendix A, the TLS 1.3 secrets from the RFC 8448 trace data in
``tests/vectors/data/``. The only hashing done here besides the code under test is
``hashlib.sha256`` over RFC 8448's own handshake messages, where the RFC does not
print a transcript hash (the one the server Finished covers).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.vectors.rfc8448 import Step, Trace, load
from triotls.engine.keyschedule import (
    KeySchedule,
    derive_secret,
    finished_verify_data,
    hkdf_expand,
    hkdf_expand_label,
    hkdf_extract,
    hmac_digest,
    resumption_psk,
    traffic_key_and_iv,
)
from triotls.engine.messages import NewSessionTicket
from triotls.engine.transcript import Transcript

# --- RFC 4231: HMAC-SHA-256 and HMAC-SHA-384 ----------------------------------------

# (key, data, HMAC-SHA-256, HMAC-SHA-384), as printed in RFC 4231 §4.3 (test
# case 2: a key shorter than the hash) and §4.7 (test case 6: a 131-byte key,
# longer than SHA-256's block, which RFC 2104 hashes first).
_RFC4231_CASES = [
    (
        b"Jefe",
        b"what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e"
        "8e2240ca5e69e2c78b3239ecfab21649",
    ),
    (
        b"\xaa" * 131,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c6"
        "0c2ef6ab4030fe8296248df163f44952",
    ),
]


@pytest.mark.parametrize(("key", "data", "sha256", "sha384"), _RFC4231_CASES)
def test_hmac_digest_gives_rfc4231_values(
    key: bytes, data: bytes, sha256: str, sha384: str
) -> None:
    assert hmac_digest("sha256", key, data).hex() == sha256
    assert hmac_digest("sha384", key, data).hex() == sha384


@given(
    hash_name=st.sampled_from(["sha256", "sha384", "sha512"]),
    key=st.binary(max_size=300),
    data=st.binary(max_size=300),
)
def test_hmac_digest_equals_the_standard_library(hash_name: str, key: bytes, data: bytes) -> None:
    # Keys around every block size (64 and 128 bytes) and the fallback for a
    # hash without a precomputed entry (sha512).
    assert hmac_digest(hash_name, key, data) == hmac.digest(key, data, hash_name)


def test_key_schedule_without_psk_reuses_the_zero_psk_secrets() -> None:
    # The no-PSK early secret and its "derived" secret are cached per hash:
    # they must equal what a PSK of zeros gives, derived afresh.
    zeros = bytes(32)
    fresh = hkdf_extract("sha256", zeros, zeros)
    cached = KeySchedule("sha256")
    assert cached.early_secret == fresh == KeySchedule("sha256", b"").early_secret
    derived = derive_secret("sha256", fresh, b"derived", hashlib.sha256().digest())
    shared, transcript = b"\x11" * 32, b"\x22" * 32
    expected = derive_secret(
        "sha256", hkdf_extract("sha256", derived, shared), b"c hs traffic", transcript
    )
    assert cached.handshake(shared, transcript)[0] == expected


# --- RFC 5869 appendix A: HKDF with SHA-256 ------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class HkdfCase:
    """One RFC 5869 appendix A test case (all values hex, as printed)."""

    section: str
    ikm: str
    salt: str
    info: str
    length: int
    prk: str
    okm: str


RFC5869_SHA256_CASES = (
    # RFC 5869 appendix A.1, Test Case 1: basic test case with SHA-256.
    HkdfCase(
        section="A.1",
        ikm="0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
        salt="000102030405060708090a0b0c",
        info="f0f1f2f3f4f5f6f7f8f9",
        length=42,
        prk="077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
        okm="3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
    ),
    # RFC 5869 appendix A.2, Test Case 2: SHA-256 with longer inputs and outputs.
    HkdfCase(
        section="A.2",
        ikm="000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
        "404142434445464748494a4b4c4d4e4f",
        salt="606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
        "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
        "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
        info="b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
        "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef"
        "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
        length=82,
        prk="06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
        okm="b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
        "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
        "cc30c58179ec3e87c14c01d5c1f3434f1d87",
    ),
    # RFC 5869 appendix A.3, Test Case 3: SHA-256 with zero-length salt and info.
    HkdfCase(
        section="A.3",
        ikm="0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
        salt="",
        info="",
        length=42,
        prk="19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
        okm="8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
    ),
)


@pytest.mark.parametrize("case", RFC5869_SHA256_CASES, ids=lambda case: case.section)
def test_hkdf_extract_gives_rfc5869_prk(case: HkdfCase) -> None:
    prk = hkdf_extract("sha256", bytes.fromhex(case.salt), bytes.fromhex(case.ikm))
    assert prk.hex() == case.prk


@pytest.mark.parametrize("case", RFC5869_SHA256_CASES, ids=lambda case: case.section)
def test_hkdf_expand_gives_rfc5869_okm(case: HkdfCase) -> None:
    okm = hkdf_expand("sha256", bytes.fromhex(case.prk), bytes.fromhex(case.info), case.length)
    assert okm.hex() == case.okm


# --- RFC 8448: the TLS 1.3 key schedule -----------------------------------------------

# The sections whose handshake is a full (EC)DHE one without a PSK.
FULL_HANDSHAKE_SECTIONS = (3, 5, 6, 7)
SECTION_3 = load(3)
SECTION_5 = load(5)


def _derivation(trace: Trace, label: str) -> Step:
    """The step deriving ``label`` (e.g. ``"c hs traffic"``) that prints its values.

    RFC 8448 prints each derivation once, on the side that does it first; the other
    side's step says "(same as ...)" and has no values.
    """
    for step in trace.steps:
        if step.action.startswith(f'derive secret "tls13 {label}"') and step.has("expanded"):
            return step
    raise AssertionError(f"{trace.source} prints no derivation of {label!r}")


def _messages_in_order(trace: Trace) -> list[tuple[str, bytes]]:
    """The handshake messages of a full handshake in wire order (no NewSessionTicket)."""
    client = trace.handshake_messages("client")
    server = trace.handshake_messages("server")
    hellos = [msg for msg in client if msg[0] == "ClientHello"]
    server_hellos = [msg for msg in server if msg[0] == "ServerHello"]
    ordered: list[tuple[str, bytes]] = []
    for hello, server_hello in zip(hellos, server_hellos, strict=True):
        ordered += [hello, server_hello]
    ordered += [msg for msg in server if msg[0] not in ("ServerHello", "NewSessionTicket")]
    ordered += [msg for msg in client if msg[0] != "ClientHello"]
    return ordered


def _rfc_transcript_hash(trace: Trace, through: str) -> bytes:
    """SHA-256 over the RFC's handshake messages, from the ClientHello through ``through``.

    Only for a transcript hash RFC 8448 does not print; the messages are the RFC's.
    """
    messages = _messages_in_order(trace)
    names = [name for name, _ in messages]
    upto = messages[: names.index(through) + 1]
    return hashlib.sha256(b"".join(raw for _, raw in upto)).digest()


@pytest.mark.parametrize("section", [3, 4, 5, 6, 7])
def test_derive_secret_gives_every_rfc8448_derivation(section: int) -> None:
    steps = [
        step
        for step in load(section).steps
        if step.action.startswith("derive secret") and step.has("expanded")
    ]
    assert steps, "the trace has derivations"
    for step in steps:
        label = step.action.split('"')[1].removeprefix("tls13 ").encode()
        derived = derive_secret("sha256", step.value("PRK"), label, step.value("hash"))
        assert derived == step.value("expanded"), f"step {step.index}: {step.action}"


@pytest.mark.parametrize("section", [3, 4, 5, 6, 7])
def test_hkdf_extract_gives_every_rfc8448_extracted_secret(section: int) -> None:
    steps = [step for step in load(section).steps if step.has("secret") and step.has("IKM")]
    assert steps, "the trace has extractions"
    for step in steps:
        if step.has("salt"):
            salt = step.value("salt")
        else:
            # The early secret: RFC 8448 prints "salt: 0 (all zero octets)".
            assert step.text == "salt: 0 (all zero octets)"
            salt = bytes(32)
        secret = hkdf_extract("sha256", salt, step.value("IKM"))
        assert secret == step.value("secret"), f"step {step.index}: {step.action}"


@pytest.mark.parametrize("section", [3, 4, 5, 6, 7])
def test_hkdf_expand_label_builds_every_rfc8448_info(section: int) -> None:
    # The RFC prints the HkdfLabel ("info") of every expansion; expanding with our
    # label encoding must give the same output as with the RFC's info.
    steps = [step for step in load(section).steps if step.has("info") and step.has("PRK")]
    assert steps
    for step in steps:
        info = step.value("info")
        length = int.from_bytes(info[:2], "big")
        label_len = info[2]
        label = info[3 : 3 + label_len].removeprefix(b"tls13 ")
        context = info[4 + label_len :]
        ours = hkdf_expand_label("sha256", step.value("PRK"), label, context, length)
        assert ours == hkdf_expand("sha256", step.value("PRK"), info, length)
        assert ours == step.value("expanded"), f"step {step.index}: {step.action}"


@pytest.mark.parametrize("section", FULL_HANDSHAKE_SECTIONS)
def test_key_schedule_early_secret_is_rfc_early_secret(section: int) -> None:
    early = load(section).find("server", 'extract secret "early"')
    assert KeySchedule("sha256").early_secret == early.value("secret")


@pytest.mark.parametrize("section", FULL_HANDSHAKE_SECTIONS)
def test_key_schedule_handshake_secrets_are_rfc_secrets(section: int) -> None:
    trace = load(section)
    schedule = KeySchedule("sha256")
    shared_secret = trace.find("server", 'extract secret "handshake"').value("IKM")
    client_hs = _derivation(trace, "c hs traffic")
    server_hs = _derivation(trace, "s hs traffic")
    assert client_hs.value("hash") == server_hs.value("hash")

    client, server = schedule.handshake(shared_secret, client_hs.value("hash"))

    assert client == client_hs.value("expanded")
    assert server == server_hs.value("expanded")


@pytest.mark.parametrize("section", FULL_HANDSHAKE_SECTIONS)
def test_handshake_secret_comes_from_rfc_derived_salt(section: int) -> None:
    # KeySchedule keeps the handshake secret private; this checks the two steps it
    # takes: Derive-Secret(early, "derived", "") then HKDF-Extract with the DHE secret.
    trace = load(section)
    derived = trace.find("server", 'derive secret for handshake "tls13 derived"')
    handshake = trace.find("server", 'extract secret "handshake"')
    early = trace.find("server", 'extract secret "early"').value("secret")
    empty_hash = derived.value("hash")

    assert derive_secret("sha256", early, b"derived", empty_hash) == derived.value("expanded")
    assert handshake.value("salt") == derived.value("expanded")
    assert hkdf_extract("sha256", handshake.value("salt"), handshake.value("IKM")) == (
        handshake.value("secret")
    )


@pytest.mark.parametrize("section", FULL_HANDSHAKE_SECTIONS)
def test_master_secret_comes_from_rfc_derived_salt(section: int) -> None:
    trace = load(section)
    handshake_secret = trace.find("server", 'extract secret "handshake"').value("secret")
    derived = trace.find("server", 'derive secret for master "tls13 derived"')
    master = trace.find("server", 'extract secret "master"')

    assert derived.value("PRK") == handshake_secret
    assert derive_secret("sha256", handshake_secret, b"derived", derived.value("hash")) == (
        derived.value("expanded")
    )
    assert master.value("salt") == derived.value("expanded")
    # RFC 8446 §7.1: the master secret's input keying material is Hash.length zeros.
    assert master.value("IKM") == bytes(32)
    assert hkdf_extract("sha256", master.value("salt"), master.value("IKM")) == (
        master.value("secret")
    )


def _schedule_through_server_finished(trace: Trace) -> tuple[KeySchedule, bytes, bytes]:
    """A KeySchedule fed the RFC's inputs through the server Finished.

    Returns the schedule and the (client, server) application traffic secrets.
    """
    schedule = KeySchedule("sha256")
    shared_secret = trace.find("server", 'extract secret "handshake"').value("IKM")
    schedule.handshake(shared_secret, _derivation(trace, "c hs traffic").value("hash"))
    client_app, server_app = schedule.application(_derivation(trace, "c ap traffic").value("hash"))
    return schedule, client_app, server_app


@pytest.mark.parametrize("section", FULL_HANDSHAKE_SECTIONS)
def test_key_schedule_application_secrets_are_rfc_secrets(section: int) -> None:
    trace = load(section)
    client_ap = _derivation(trace, "c ap traffic")
    server_ap = _derivation(trace, "s ap traffic")
    assert client_ap.value("hash") == server_ap.value("hash")

    _, client, server = _schedule_through_server_finished(trace)

    assert client == client_ap.value("expanded")
    assert server == server_ap.value("expanded")


@pytest.mark.parametrize("section", FULL_HANDSHAKE_SECTIONS)
def test_key_schedule_exporter_master_secret_is_rfc_secret(section: int) -> None:
    trace = load(section)
    schedule, _, _ = _schedule_through_server_finished(trace)
    assert schedule.exporter_master_secret == _derivation(trace, "exp master").value("expanded")


@pytest.mark.parametrize("section", FULL_HANDSHAKE_SECTIONS)
def test_key_schedule_resumption_master_secret_is_rfc_secret(section: int) -> None:
    trace = load(section)
    schedule, _, _ = _schedule_through_server_finished(trace)
    res_master = _derivation(trace, "res master")

    assert schedule.resumption_master_secret(res_master.value("hash")) == (
        res_master.value("expanded")
    )


def _traffic_key_steps() -> list[Step]:
    return [
        step
        for section in (3, 4, 5, 6, 7)
        for step in load(section).steps
        if "traffic keys" in step.action and step.has("PRK")
    ]


@pytest.mark.parametrize(
    "step", _traffic_key_steps(), ids=lambda step: f"s{step.section}-{step.index}-{step.actor}"
)
def test_traffic_key_and_iv_are_rfc_key_and_iv(step: Step) -> None:
    key, iv = traffic_key_and_iv("sha256", step.value("PRK"), 16)
    assert key == step.value("key expanded")
    assert iv == step.value("iv expanded")


def test_traffic_keys_use_the_rfc_traffic_secrets() -> None:
    # Ties the key derivations above to the secrets of the key schedule (section 3).
    trace = SECTION_3
    prks = {
        "server handshake": trace.find("server", "derive write traffic keys for handshake"),
        "server application": trace.find("server", "derive write traffic keys for application"),
        "client handshake": trace.find("server", "derive read traffic keys for handshake"),
        "client application": trace.find("client", "derive write traffic keys for application"),
    }
    secrets = {
        "server handshake": _derivation(trace, "s hs traffic"),
        "server application": _derivation(trace, "s ap traffic"),
        "client handshake": _derivation(trace, "c hs traffic"),
        "client application": _derivation(trace, "c ap traffic"),
    }
    for name, step in prks.items():
        assert step.value("PRK") == secrets[name].value("expanded"), name


def test_server_finished_verify_data_is_rfc_verify_data() -> None:
    trace = SECTION_3
    finished = trace.find("server", 'calculate finished "tls13 finished"')
    assert finished.value("PRK") == _derivation(trace, "s hs traffic").value("expanded")
    # RFC 8448 prints this step's hash as empty; the server Finished covers the
    # transcript through CertificateVerify, hashed here from the RFC's messages.
    transcript_hash = _rfc_transcript_hash(trace, through="CertificateVerify")

    verify_data = finished_verify_data("sha256", finished.value("PRK"), transcript_hash)

    assert verify_data == finished.value("finished")
    assert dict(trace.handshake_messages("server"))["Finished"][4:] == verify_data


def test_finished_key_is_rfc_finished_key() -> None:
    finished = SECTION_3.find("server", 'calculate finished "tls13 finished"')
    key = hkdf_expand_label("sha256", finished.value("PRK"), b"finished", b"", 32)
    assert key == finished.value("expanded")


def test_client_finished_verify_data_is_rfc_verify_data() -> None:
    trace = SECTION_3
    # The client's first "calculate finished" step is its check of the server's.
    finished = trace.find("client", 'calculate finished "tls13 finished"', nth=1)
    assert finished.value("PRK") == _derivation(trace, "c hs traffic").value("expanded")
    # The client Finished covers the transcript through the server Finished, the
    # hash the RFC prints for the "c ap traffic" derivation.
    transcript_hash = _derivation(trace, "c ap traffic").value("hash")

    verify_data = finished_verify_data("sha256", finished.value("PRK"), transcript_hash)

    assert verify_data == finished.value("finished")
    assert dict(trace.handshake_messages("client"))["Finished"][4:] == verify_data


def test_resumption_psk_is_rfc_psk() -> None:
    trace = SECTION_3
    step = trace.find("server", 'generate resumption secret "tls13 resumption"')
    ticket = NewSessionTicket.decode(
        dict(trace.handshake_messages("server"))["NewSessionTicket"][4:]
    )
    # RFC 8446 §4.6.1: the ticket nonce is the HKDF-Expand-Label context.
    assert step.value("hash") == ticket.ticket_nonce
    assert step.value("PRK") == _derivation(trace, "res master").value("expanded")

    psk = resumption_psk("sha256", step.value("PRK"), ticket.ticket_nonce)

    assert psk == step.value("expanded")


def test_section_4_resumes_with_the_section_3_psk() -> None:
    # RFC 8448 section 4 resumes the section 3 session: its early secret's IKM is
    # the PSK section 3 derived.
    psk = SECTION_3.find("server", 'generate resumption secret "tls13 resumption"')
    early = load(4).find("client", 'extract secret "early"')
    assert early.value("IKM") == psk.value("expanded")
    assert KeySchedule("sha256", psk.value("expanded")).early_secret == early.value("secret")


def test_key_schedule_binder_key_and_binder_are_rfc_values() -> None:
    trace = load(4)
    psk = trace.find("client", 'extract secret "early"').value("IKM")
    binder = trace.find("client", "calculate PSK binder")
    schedule = KeySchedule("sha256", psk)

    binder_key = schedule.binder_key()

    assert binder_key == binder.value("PRK")
    assert finished_verify_data("sha256", binder_key, binder.value("binder hash")) == (
        binder.value("finished")
    )


def test_key_schedule_client_early_traffic_secret_is_rfc_secret() -> None:
    trace = load(4)
    psk = trace.find("client", 'extract secret "early"').value("IKM")
    early_traffic = _derivation(trace, "c e traffic")
    schedule = KeySchedule("sha256", psk)
    assert schedule.client_early_traffic_secret(early_traffic.value("hash")) == (
        early_traffic.value("expanded")
    )


# --- RFC 8448: transcript hashes --------------------------------------------------------


@pytest.mark.parametrize("section", [3, 6, 7])
def test_transcript_hashes_are_the_rfc_hashes(section: int) -> None:
    trace = load(section)
    messages = _messages_in_order(trace)
    transcript = Transcript()
    transcript.add(messages[0][1])  # the ClientHello, before the suite is known
    transcript.set_hash("sha256")
    hashes: dict[str, bytes] = {}
    for name, raw in messages[1:]:
        transcript.add(raw)
        hashes.setdefault(name, transcript.digest())
    # The client Finished comes after the server's; the last digest is through it.
    hashes["client Finished"] = transcript.digest()

    assert hashes["ServerHello"] == _derivation(trace, "c hs traffic").value("hash")
    assert hashes["Finished"] == _derivation(trace, "c ap traffic").value("hash")
    assert hashes["client Finished"] == _derivation(trace, "res master").value("hash")


@pytest.mark.parametrize("hash_first", [False, True], ids=["client-order", "server-order"])
def test_hello_retry_transcript_gives_rfc_handshake_hash(hash_first: bool) -> None:
    # RFC 8446 §4.4.1: ClientHello1 is replaced by message_hash(Hash(ClientHello1)).
    # The client adds ClientHello1 before it knows the hash; the server after.
    trace = SECTION_5
    (_, hello1), hrr, (_, hello2), server_hello = _messages_in_order(trace)[:4]
    assert hrr[0] == "ServerHello" and server_hello[0] == "ServerHello"
    transcript = Transcript()
    if hash_first:
        transcript.set_hash("sha256")
    transcript.add(hello1)
    transcript.set_hash("sha256")
    transcript.roll_up_for_hello_retry()
    transcript.add(hrr[1])
    transcript.add(hello2)
    transcript.add(server_hello[1])

    assert transcript.digest() == _derivation(trace, "c hs traffic").value("hash")


def test_hello_retry_transcript_gives_rfc_application_and_resumption_hashes() -> None:
    trace = SECTION_5
    messages = _messages_in_order(trace)
    names = [name for name, _ in messages]
    server_finished = names.index("Finished")
    transcript = Transcript()
    transcript.add(messages[0][1])
    transcript.set_hash("sha256")
    transcript.roll_up_for_hello_retry()
    for _, raw in messages[1 : server_finished + 1]:
        transcript.add(raw)
    through_server_finished = transcript.digest()
    for _, raw in messages[server_finished + 1 :]:
        transcript.add(raw)

    assert through_server_finished == _derivation(trace, "c ap traffic").value("hash")
    assert transcript.digest() == _derivation(trace, "res master").value("hash")
