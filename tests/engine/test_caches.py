"""The handshake's small caches give the same answers as the work they save."""

from __future__ import annotations

import ipaddress

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.support.engine_pairs import handshake, make_pair
from triotls.engine import verify
from triotls.engine.verify import ip_literal, load_certificate


def _der() -> bytes:
    leaf = trustme.CA().issue_cert("cache.example")
    return leaf.cert_chain_pems[0].bytes()


def test_load_certificate_reuses_the_object_for_the_same_bytes() -> None:
    cert = x509.load_pem_x509_certificate(_der())
    der = cert.public_bytes(Encoding.DER)
    first = load_certificate(der)
    assert load_certificate(bytes(der)) is first
    assert first == cert


def test_load_certificate_accepts_a_bytearray_and_parses_it_the_same() -> None:
    der = x509.load_pem_x509_certificate(_der()).public_bytes(Encoding.DER)
    # Outside the annotation on purpose: untyped callers pass bytearrays.
    assert load_certificate(bytearray(der)) == load_certificate(der)  # type: ignore[arg-type]


def test_load_certificate_still_refuses_garbage() -> None:
    with pytest.raises(ValueError):
        load_certificate(b"\x30\x03\x02\x01\x00")


def test_load_certificate_cache_stays_bounded() -> None:
    ca = trustme.CA()
    for n in range(80):
        pem = ca.issue_cert(f"host{n}.example").cert_chain_pems[0].bytes()
        load_certificate(x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER))
    assert len(verify._CERTIFICATES) <= 64  # the cache's own bound


def test_load_certificate_does_not_keep_huge_certificates() -> None:
    """A peer-chosen 20 KiB certificate is parsed, not cached (memory stays small)."""
    ca = trustme.CA()
    names = [f"host-{n:04d}.a-rather-long-subdomain-label.example" for n in range(400)]
    pem = ca.issue_cert(*names).cert_chain_pems[0].bytes()
    der = x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
    assert len(der) > verify._MAX_CACHED_DER
    first = load_certificate(der)
    assert der not in verify._CERTIFICATES
    assert load_certificate(der) == first  # parsed again, same certificate


@pytest.mark.parametrize(
    "name",
    [
        "127.0.0.1",
        "::1",
        "2001:db8::1",
        "localhost",
        "example.com",
        "1.2.3",
        "01.2.3.4",
        "fe80::1%eth0",
    ],
)
def test_ip_literal_agrees_with_ipaddress(name: str) -> None:
    try:
        expected: object = ipaddress.ip_address(name)
    except ValueError:
        expected = None
    assert ip_literal(name) == expected
    assert ip_literal(name) == expected  # and again, from the cache


def test_exporter_accepts_a_bytearray_label_like_bytes() -> None:
    client, server = make_pair()
    handshake(client, server)
    label = b"EXPORTER-cache-test"
    # Outside the annotation on purpose: untyped callers pass bytearrays.
    mutable_label = bytearray(label)
    assert client.export_keying_material(mutable_label, b"ctx", 48) == (  # type: ignore[arg-type]
        server.export_keying_material(label, b"ctx", 48)
    )
