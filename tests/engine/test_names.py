"""Internationalized server names: IDNA 2008 A-labels for SNI and the name check."""

from __future__ import annotations

import pytest
from cryptography import x509

from tests.support.chains import NOW, Chain, intermediate, leaf, root
from tests.support.engine_pairs import FixedClock, handshake
from triotls.config import ClientConfig, ServerConfig
from triotls.engine import ClientConnection, ServerConnection
from triotls.engine.enums import ExtensionType
from triotls.engine.extensions import decode_server_name
from triotls.engine.messages import ClientHello
from triotls.engine.names import to_a_labels
from triotls.errors import CertificateVerificationError


@pytest.mark.parametrize(
    ("name", "a_labels"),
    [
        ("bücher.example", "xn--bcher-kva.example"),
        ("Bücher.Example", "xn--bcher-kva.example"),  # UTS #46 maps case
        # IDNA 2008 keeps ß; the built-in codec (IDNA 2003) makes it "fass.de".
        ("faß.de", "xn--fa-hia.de"),
        ("例え.テスト", "xn--r8jz45g.xn--zckzah"),
        ("localhost", "localhost"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ],
)
def test_to_a_labels(name: str, a_labels: str) -> None:
    assert to_a_labels(name) == a_labels


def test_idna_2008_differs_from_the_builtin_codec() -> None:
    assert "faß.de".encode("idna") == b"fass.de"
    assert to_a_labels("faß.de") != "fass.de"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        # Symbols were valid in IDNA 2003 (xn--n3h.net) and are not in 2008.
        ("☃.net", r"not a valid internationalized domain name \(IDNA 2008\)"),
        ("xn--zz.example", "has an invalid IDNA A-label"),
        ("bü cher.example", r"not a valid internationalized domain name \(IDNA 2008\)"),
    ],
)
def test_client_refuses_an_invalid_internationalized_name(name: str, message: str) -> None:
    config = ClientConfig(trust=_chain().trust)
    with pytest.raises(ValueError, match=message):
        ClientConnection(config, server_hostname=name)


_CHAINS: dict[str, Chain] = {}


def _chain() -> Chain:
    if "idn" not in _CHAINS:
        anchor = root()
        middle = intermediate(anchor)
        end = leaf(middle, san=[x509.DNSName("xn--bcher-kva.example")])
        _CHAINS["idn"] = Chain.of(end, middle, anchors=[anchor])
    return _CHAINS["idn"]


def _pair(name: str) -> tuple[ClientConnection, ServerConnection]:
    chain = _chain()
    client = ClientConnection(
        ClientConfig(trust=chain.trust, clock=FixedClock(NOW)), server_hostname=name
    )
    server = ServerConnection(ServerConfig(certificates=(chain.certified,), clock=FixedClock(NOW)))
    return client, server


def test_u_label_name_is_sent_as_a_labels_and_matches_the_certificate() -> None:
    client, server = _pair("Bücher.example")
    assert client.server_hostname == "xn--bcher-kva.example"
    client.start_handshake()
    hello_bytes = client.data_to_send()
    hello = ClientHello.decode(hello_bytes[5 + 4 :])
    sni = decode_server_name(hello.extensions[ExtensionType.SERVER_NAME])
    assert sni == "xn--bcher-kva.example"
    server.receive_data(hello_bytes)
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    assert server.negotiated is not None
    assert server.negotiated.server_name == "xn--bcher-kva.example"
    assert client.negotiated is not None and client.negotiated.verification is not None
    assert client.negotiated.verification.server_name == "xn--bcher-kva.example"


def test_another_u_label_does_not_match() -> None:
    client, server = _pair("bucher.example")
    with pytest.raises(CertificateVerificationError, match=r"does not match 'bucher\.example'"):
        handshake(client, server)
