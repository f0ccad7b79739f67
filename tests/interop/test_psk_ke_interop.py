"""psk_ke resumption (RFC 8446 §4.2.9) against real peers, both directions.

psk_ke resumes from the PSK alone: the ServerHello carries pre_shared_key
and no key_share. Each side of triotls uses it only when its config names
it in ``psk_key_exchange_modes``.

Our server: ``openssl s_client -allow_no_dhe_kex`` offers psk_dhe_ke and
psk_ke; s_client's ``-trace`` shows which extensions the resumed
ServerHello carried. ``gnutls-cli --resume`` offers both modes by default
(its priority string has no PSK key exchange, and GnuTLS then offers both
for resumption). Our server's ``psk_key_exchange_modes`` order decides.

Our client: ``openssl s_server -allow_no_dhe_kex`` resumes with psk_ke
when the client offers psk_ke only (OpenSSL 3.0 picks psk_dhe_ke whenever
it is offered), and ``gnutls-serv`` with ``+PSK`` in its priority string
does the same; without ``+PSK`` it neither resumes with psk_ke nor sends
tickets to a client that offers psk_ke only.

What the servers sent is read from the captured bytes with
``wire.server_hellos`` (independent of the engine), whose ``group`` is the
ServerHello's key_share group, None when it has none.

Every subprocess runs under a timeout and is killed in ``finally``; every
socket operation has a deadline.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import pytest

from tests.support.certs import PKIFiles, TestPKI
from triotls.config import CertifiedKey, ClientConfig, PskMode, ServerConfig, TrustStore
from triotls.engine import HandshakeKind
from triotls.engine.enums import PskKeyExchangeMode
from triotls.engine.tickets import ClientSession, TicketKeys

from .peers import GnuTLSServer, OpenSSLServer, gnutls_priority
from .sessions import (
    ClientSaw,
    GnuTLSCliResume,
    SClientSessions,
    Served,
    run_session_client,
    serve_connections,
)
from .wire import ServerHelloInfo, server_hellos

pytestmark = pytest.mark.interop

# gnutls-serv --echo answers whole lines only.
MESSAGE: Final = b"resume without a key exchange\n"
PSK_KE_FIRST: Final[tuple[PskMode, ...]] = ("psk_ke", "psk_dhe_ke")
PSK_KE_ONLY: Final[tuple[PskMode, ...]] = ("psk_ke",)
# The PSK key exchange in a GnuTLS priority string allows psk_ke for TLS 1.3
# (lib/ext/psk_ke_modes.c); without it gnutls-serv resumes with psk_dhe_ke only.
GNUTLS_ALLOW_PSK_KE: Final = gnutls_priority() + ":+PSK"


# --------------------------------------------------------------------------- #
# Our server: one engine connection per configuration, in a thread.


def _serve(configs: Sequence[ServerConfig], client: Callable[[int], None]) -> Served:
    """Serve ``len(configs)`` connections; each closes once MESSAGE was echoed."""
    return serve_connections(configs, client, close_after=len(MESSAGE))


def _server_config(pki: TestPKI, modes: tuple[PskMode, ...]) -> ServerConfig:
    return ServerConfig(
        certificates=(CertifiedKey.from_pem(pki.chain_pem, pki.key_pem),),
        ticket_keys=TicketKeys(),
        psk_key_exchange_modes=modes,
    )


def _resumed_hello(wire: bytes) -> ServerHelloInfo:
    (hello,) = server_hellos(wire)
    assert not hello.is_hello_retry_request
    return hello


class _SClient(SClientSessions):
    """``openssl s_client -allow_no_dhe_kex -trace``: ``-sess_out``, then ``-sess_in``."""

    def __init__(self, files: PKIFiles, session: Path) -> None:
        super().__init__(files, session, message=MESSAGE, extra=["-allow_no_dhe_kex", "-trace"])

    def server_hello_extensions(self, index: int) -> list[str]:
        """The extension names s_client's trace lists in the ServerHello it received."""
        trace = self.outputs[index]
        start = trace.index("ServerHello")
        end = trace.index("Received Record", start)
        return re.findall(r"extension_type=(\w+)\(\d+\)", trace[start:end])

    def offered_modes(self, index: int) -> str:
        """s_client's trace of its psk_key_exchange_modes extension."""
        trace = self.outputs[index]
        start = trace.index("extension_type=psk_key_exchange_modes(45)")
        return trace[start : trace.index("extension_type=", start + 1)]


def test_openssl_s_client_resumes_with_psk_ke_when_our_server_prefers_it(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    config = _server_config(pki, PSK_KE_FIRST)
    client = _SClient(pki_files, tmp_path / "session.pem")
    served = _serve([config, config], client)
    assert served.errors == []
    assert "psk_ke" in client.offered_modes(1), client.offered_modes(1)
    assert "New, TLSv1.3" in client.outputs[0], client.outputs[0]
    assert "Reused, TLSv1.3" in client.outputs[1], client.outputs[1]
    # What s_client received, and what our server sent: psk, and no key_share.
    assert client.server_hello_extensions(1) == ["supported_versions", "psk"]
    assert "key_share" in client.server_hello_extensions(0)
    assert _resumed_hello(served.sent[1]).group is None
    assert served.kinds() == [HandshakeKind.FULL, HandshakeKind.RESUMED]
    assert served.modes() == [None, PskKeyExchangeMode.PSK_KE]
    resumed = served.negotiated[1]
    assert resumed is not None and resumed.group is None
    assert all(MESSAGE.decode() in out for out in client.outputs)


def test_openssl_s_client_offering_psk_ke_gets_psk_dhe_ke_from_a_default_server(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    config = _server_config(pki, ("psk_dhe_ke",))
    client = _SClient(pki_files, tmp_path / "session.pem")
    served = _serve([config, config], client)
    assert served.errors == []
    assert "Reused, TLSv1.3" in client.outputs[1], client.outputs[1]
    assert "key_share" in client.server_hello_extensions(1)
    assert _resumed_hello(served.sent[1]).group is not None
    assert served.modes() == [None, PskKeyExchangeMode.PSK_DHE_KE]


def test_openssl_s_client_gets_psk_dhe_ke_from_our_server_preferring_it(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    # Both sides allow both modes; our server's order decides.
    config = _server_config(pki, ("psk_dhe_ke", "psk_ke"))
    client = _SClient(pki_files, tmp_path / "session.pem")
    served = _serve([config, config], client)
    assert served.errors == []
    assert "key_share" in client.server_hello_extensions(1)
    assert served.modes() == [None, PskKeyExchangeMode.PSK_DHE_KE]


def test_gnutls_cli_resumes_with_psk_ke_when_our_server_prefers_it(
    pki: TestPKI, pki_files: PKIFiles
) -> None:
    # With no PSK key exchange in its priority string, gnutls-cli offers
    # psk_dhe_ke and psk_ke for resumption; our server's order picks psk_ke.
    config = _server_config(pki, PSK_KE_FIRST)
    client = GnuTLSCliResume(pki_files, message=MESSAGE)
    served = _serve([config, config], client)
    assert served.errors == []
    assert "*** This is a resumed session" in client.output, client.output
    assert _resumed_hello(served.sent[1]).group is None
    assert served.kinds() == [HandshakeKind.FULL, HandshakeKind.RESUMED]
    assert served.modes() == [None, PskKeyExchangeMode.PSK_KE]


def test_gnutls_cli_resumes_with_psk_dhe_ke_from_a_default_server(
    pki: TestPKI, pki_files: PKIFiles
) -> None:
    config = _server_config(pki, ("psk_dhe_ke",))
    client = GnuTLSCliResume(pki_files, message=MESSAGE)
    served = _serve([config, config], client)
    assert served.errors == []
    assert "*** This is a resumed session" in client.output, client.output
    assert _resumed_hello(served.sent[1]).group is not None
    assert served.modes() == [None, PskKeyExchangeMode.PSK_DHE_KE]


# --------------------------------------------------------------------------- #
# Our client: the engine over a socket, offering the session it got.


def _our_client(port: int, config: ClientConfig, session: ClientSession | None) -> ClientSaw:
    """Handshake, send MESSAGE, read its echo, exchange close_notify; keep the server's bytes."""
    return run_session_client(port, config, message=MESSAGE, session=session)


def _client_config(pki: TestPKI, modes: tuple[PskMode, ...]) -> ClientConfig:
    return ClientConfig(trust=TrustStore.from_pem(pki.ca_pem), psk_key_exchange_modes=modes)


def test_our_client_resumes_with_psk_ke_from_openssl_s_server(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    config = _client_config(pki, PSK_KE_ONLY)
    with OpenSSLServer(
        pki_files, workdir=tmp_path, extra_args=["-naccept", "2", "-allow_no_dhe_kex"]
    ) as server:
        first = _our_client(server.port, config, None)
        assert first.sessions, "s_server sent no ticket"
        second = _our_client(server.port, config, first.sessions[0])
        report = server.finish()
    assert first.negotiated.handshake_kind is HandshakeKind.FULL
    assert second.negotiated.handshake_kind is HandshakeKind.RESUMED
    assert second.negotiated.psk_key_exchange_mode is PskKeyExchangeMode.PSK_KE
    assert second.negotiated.group is None
    assert _resumed_hello(second.server_wire).group is None
    assert second.received == MESSAGE
    assert report.received == MESSAGE * 2
    assert report.returncode == 0


def test_our_client_offering_psk_ke_only_gets_a_full_handshake_from_a_strict_s_server(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    # Without -allow_no_dhe_kex, s_server refuses psk_ke: the ticket is not
    # used, and the key shares our client always sends make a full handshake.
    config = _client_config(pki, PSK_KE_ONLY)
    with OpenSSLServer(pki_files, workdir=tmp_path, extra_args=["-naccept", "2"]) as server:
        first = _our_client(server.port, config, None)
        second = _our_client(server.port, config, first.sessions[0])
        report = server.finish()
    assert second.negotiated.handshake_kind is HandshakeKind.FULL
    assert second.negotiated.psk_key_exchange_mode is None
    assert _resumed_hello(second.server_wire).group is not None
    assert report.received == MESSAGE * 2


def test_our_client_gets_psk_dhe_ke_from_s_server_when_it_offers_both(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    # OpenSSL 3.0 takes psk_dhe_ke whenever the client offers it.
    config = _client_config(pki, PSK_KE_FIRST)
    with OpenSSLServer(
        pki_files, workdir=tmp_path, extra_args=["-naccept", "2", "-allow_no_dhe_kex"]
    ) as server:
        first = _our_client(server.port, config, None)
        second = _our_client(server.port, config, first.sessions[0])
        server.finish()
    assert second.negotiated.handshake_kind is HandshakeKind.RESUMED
    assert second.negotiated.psk_key_exchange_mode is PskKeyExchangeMode.PSK_DHE_KE
    assert _resumed_hello(second.server_wire).group is not None


def test_our_client_resumes_with_psk_ke_from_gnutls_serv(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    config = _client_config(pki, PSK_KE_ONLY)
    with GnuTLSServer(pki_files, workdir=tmp_path, priority=GNUTLS_ALLOW_PSK_KE) as server:
        first = _our_client(server.port, config, None)
        assert first.sessions, "gnutls-serv sent no ticket"
        second = _our_client(server.port, config, first.sessions[0])
        server.finish()
    assert first.negotiated.handshake_kind is HandshakeKind.FULL
    assert second.negotiated.handshake_kind is HandshakeKind.RESUMED
    assert second.negotiated.psk_key_exchange_mode is PskKeyExchangeMode.PSK_KE
    assert _resumed_hello(second.server_wire).group is None
    assert second.received == MESSAGE


def test_our_client_offering_psk_ke_only_gets_a_full_handshake_from_a_default_gnutls_serv(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    config = _client_config(pki, PSK_KE_ONLY)
    with GnuTLSServer(pki_files, workdir=tmp_path) as server:
        # The ticket comes from a connection that allowed psk_dhe_ke: a
        # client offering psk_ke only gets none from this gnutls-serv.
        first = _our_client(server.port, _client_config(pki, ("psk_dhe_ke",)), None)
        second = _our_client(server.port, config, first.sessions[0])
        server.finish()
    assert second.sessions == []
    assert second.negotiated.handshake_kind is HandshakeKind.FULL
    assert _resumed_hello(second.server_wire).group is not None
    assert second.received == MESSAGE
