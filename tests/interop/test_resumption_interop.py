"""Session resumption against real peers, both directions, resumed and refused.

Our server: ``openssl s_client -sess_out`` then ``-sess_in`` (s_client prints
``New, TLSv1.3`` or ``Reused, TLSv1.3``), and ``gnutls-cli --resume`` (which
reconnects by itself and prints ``*** This is a resumed session``). The server
here runs one engine connection per configuration it is given, so the
second connection can hold other ticket keys than the first: a refusal.

Our client: the engine over a socket, offering the session of a
NewSessionTicketReceived event from its first connection, to ``openssl
s_server -naccept 2`` and ``gnutls-serv`` (resumed), or to a second, fresh
instance of either (new ticket keys: refused, a full handshake).

Every subprocess runs under a timeout and is killed in ``finally``; every
socket operation has a deadline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest

from tests.support.certs import PKIFiles, TestPKI
from triotls.config import (
    DEFAULT_GROUPS,
    DEFAULT_KEY_SHARE_GROUPS,
    CertifiedKey,
    ClientConfig,
    ServerConfig,
    TrustStore,
)
from triotls.engine import HandshakeKind
from triotls.engine.enums import NamedGroup
from triotls.engine.tickets import ClientSession, TicketKeys

from .peers import GnuTLSServer, OpenSSLServer
from .sessions import (
    ClientSaw,
    GnuTLSCliResume,
    SClientSessions,
    run_session_client,
    serve_connections,
)

pytestmark = pytest.mark.interop

# gnutls-serv --echo answers whole lines only.
MESSAGE: Final = b"resume me\n"


# --------------------------------------------------------------------------- #
# Our server: one engine connection per configuration, in a thread.


def _our_server_config(
    pki: TestPKI, keys: TicketKeys, groups: tuple[NamedGroup, ...] = DEFAULT_GROUPS
) -> ServerConfig:
    return ServerConfig(
        certificates=(CertifiedKey.from_pem(pki.chain_pem, pki.key_pem),),
        ticket_keys=keys,
        groups=groups,
    )


def _s_client(files: PKIFiles, session: Path, *extra: str) -> SClientSessions:
    """``openssl s_client``: once with ``-sess_out``, once with ``-sess_in``."""
    return SClientSessions(files, session, message=MESSAGE, extra=extra)


def test_our_server_resumes_an_openssl_s_client_session(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    config = _our_server_config(pki, TicketKeys())
    client = _s_client(pki_files, tmp_path / "session.pem")
    served = serve_connections([config, config], client, close_after=len(MESSAGE))
    assert served.errors == []
    assert "New, TLSv1.3" in client.outputs[0], client.outputs[0]
    assert "Reused, TLSv1.3" in client.outputs[1], client.outputs[1]
    assert served.kinds() == [HandshakeKind.FULL, HandshakeKind.RESUMED]
    assert served.received == [MESSAGE, MESSAGE]
    assert all(MESSAGE.decode() in out for out in client.outputs)


def test_our_server_resumes_an_openssl_s_client_session_after_a_hello_retry(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    # s_client sends an X25519 share; our server wants P-256 only.
    config = _our_server_config(pki, TicketKeys(), groups=(NamedGroup.SECP256R1,))
    client = _s_client(pki_files, tmp_path / "session.pem", "-groups", "X25519:P-256")
    served = serve_connections([config, config], client, close_after=len(MESSAGE))
    assert served.errors == []
    assert "Reused, TLSv1.3" in client.outputs[1], client.outputs[1]
    assert served.kinds() == [
        HandshakeKind.FULL_WITH_HELLO_RETRY_REQUEST,
        HandshakeKind.RESUMED_WITH_HELLO_RETRY_REQUEST,
    ]


def test_our_server_with_other_ticket_keys_refuses_an_openssl_session(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    issuer = _our_server_config(pki, TicketKeys())
    stranger = _our_server_config(pki, TicketKeys())
    session = tmp_path / "session.pem"
    client = _s_client(pki_files, session, "-trace")
    served = serve_connections([issuer, stranger], client, close_after=len(MESSAGE))
    assert served.errors == []
    # s_client did offer the ticket (its -trace shows pre_shared_key, 41) ...
    assert "extension_type=psk(41)" in client.outputs[1], client.outputs[1]
    assert "New, TLSv1.3" in client.outputs[1], client.outputs[1]
    # ... and the handshake went on as a full one, data included.
    assert served.kinds() == [HandshakeKind.FULL, HandshakeKind.FULL]
    assert served.received == [MESSAGE, MESSAGE]


def test_our_server_resumes_a_gnutls_cli_session(pki: TestPKI, pki_files: PKIFiles) -> None:
    config = _our_server_config(pki, TicketKeys())
    client = GnuTLSCliResume(pki_files, message=MESSAGE)
    served = serve_connections([config, config], client)
    assert served.errors == []
    assert "*** This is a resumed session" in client.output, client.output
    assert client.output.count("- Got a certificate list") == 1, client.output
    assert served.kinds() == [HandshakeKind.FULL, HandshakeKind.RESUMED]
    # gnutls-cli sends stdin on the resumed connection only.
    assert served.received == [b"", MESSAGE]


def test_our_server_with_other_ticket_keys_refuses_a_gnutls_cli_session(
    pki: TestPKI, pki_files: PKIFiles
) -> None:
    issuer = _our_server_config(pki, TicketKeys())
    stranger = _our_server_config(pki, TicketKeys())
    client = GnuTLSCliResume(pki_files, message=MESSAGE)
    served = serve_connections([issuer, stranger], client)
    assert served.errors == []
    # gnutls-cli 3.7 prints no "not resumed" line (and says "Resume Handshake
    # was completed" either way); a refusal shows as a second certificate.
    assert "This is a resumed session" not in client.output, client.output
    assert client.output.count("- Got a certificate list") == 2, client.output
    assert served.kinds() == [HandshakeKind.FULL, HandshakeKind.FULL]
    assert served.received == [b"", MESSAGE]


# --------------------------------------------------------------------------- #
# Our client: the engine over a socket, offering the session it got.


def _our_client(
    port: int, config: ClientConfig, session: ClientSession | None, name: str = "localhost"
) -> ClientSaw:
    """Handshake, send MESSAGE, read its echo, exchange close_notify."""
    return run_session_client(port, config, message=MESSAGE, session=session, server_name=name)


def _our_client_config(
    pki: TestPKI, key_share_groups: tuple[NamedGroup, ...] = DEFAULT_KEY_SHARE_GROUPS
) -> ClientConfig:
    return ClientConfig(trust=TrustStore.from_pem(pki.ca_pem), key_share_groups=key_share_groups)


def test_our_client_resumes_with_openssl_s_server(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    config = _our_client_config(pki)
    with OpenSSLServer(pki_files, workdir=tmp_path, extra_args=["-naccept", "2"]) as server:
        first = _our_client(server.port, config, None)
        assert first.sessions, "s_server sent no ticket"
        second = _our_client(server.port, config, first.sessions[0])
        report = server.finish()
    assert first.negotiated.handshake_kind is HandshakeKind.FULL
    assert second.negotiated.handshake_kind is HandshakeKind.RESUMED
    assert second.negotiated.verified_chain == first.negotiated.verified_chain
    assert second.received == MESSAGE
    assert report.received == MESSAGE * 2
    assert report.returncode == 0


def test_our_client_resumes_with_openssl_s_server_after_a_hello_retry(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    config = _our_client_config(pki, key_share_groups=(NamedGroup.X25519,))
    with OpenSSLServer(
        pki_files, workdir=tmp_path, groups=["P-256"], extra_args=["-naccept", "2"]
    ) as server:
        first = _our_client(server.port, config, None)
        second = _our_client(server.port, config, first.sessions[0])
        report = server.finish()
    assert first.negotiated.handshake_kind is HandshakeKind.FULL_WITH_HELLO_RETRY_REQUEST
    assert second.negotiated.handshake_kind is HandshakeKind.RESUMED_WITH_HELLO_RETRY_REQUEST
    assert report.hello_retry


def test_our_client_offering_to_a_fresh_openssl_s_server_makes_a_full_handshake(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    config = _our_client_config(pki)
    (tmp_path / "1").mkdir()
    (tmp_path / "2").mkdir()
    with OpenSSLServer(pki_files, workdir=tmp_path / "1") as server:
        first = _our_client(server.port, config, None)
        server.finish()
    with OpenSSLServer(pki_files, workdir=tmp_path / "2") as server:
        second = _our_client(server.port, config, first.sessions[0])
        report = server.finish()
    assert second.negotiated.handshake_kind is HandshakeKind.FULL
    assert second.received == MESSAGE
    assert report.received == MESSAGE
    assert report.returncode == 0


def test_our_client_does_not_resume_a_session_under_another_server_name(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    # s_server (TLS 1.3) would accept the ticket whatever the SNI; the client
    # must not offer it, since the PSK vouches for a certificate checked
    # against "localhost" only (RFC 8446 §4.6.1).
    config = _our_client_config(pki)
    with OpenSSLServer(pki_files, workdir=tmp_path, extra_args=["-naccept", "2"]) as server:
        first = _our_client(server.port, config, None)
        second = _our_client(server.port, config, first.sessions[0], name="127.0.0.1")
        report = server.finish()
    assert second.negotiated.handshake_kind is HandshakeKind.FULL
    assert report.received == MESSAGE * 2


def test_our_client_resumes_with_gnutls_serv(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    config = _our_client_config(pki)
    with GnuTLSServer(pki_files, workdir=tmp_path) as server:
        first = _our_client(server.port, config, None)
        assert first.sessions, "gnutls-serv sent no ticket"
        second = _our_client(server.port, config, first.sessions[0])
        server.finish()
    assert first.negotiated.handshake_kind is HandshakeKind.FULL
    assert second.negotiated.handshake_kind is HandshakeKind.RESUMED
    assert second.received == MESSAGE


def test_our_client_offering_to_a_fresh_gnutls_serv_makes_a_full_handshake(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    config = _our_client_config(pki)
    (tmp_path / "1").mkdir()
    (tmp_path / "2").mkdir()
    with GnuTLSServer(pki_files, workdir=tmp_path / "1") as server:
        first = _our_client(server.port, config, None)
        server.finish()
    with GnuTLSServer(pki_files, workdir=tmp_path / "2") as server:
        second = _our_client(server.port, config, first.sessions[0])
        server.finish()
    assert second.negotiated.handshake_kind is HandshakeKind.FULL
    assert second.received == MESSAGE
