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
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pytest

from tests.support.certs import PKIFiles, TestPKI
from triotls.config import CertifiedKey, ClientConfig, PskMode, ServerConfig, TrustStore
from triotls.engine import ClientConnection, HandshakeKind, Negotiated, ServerConnection, events
from triotls.engine.enums import PskKeyExchangeMode
from triotls.engine.tickets import ClientSession, TicketKeys
from triotls.errors import TLSError

from .driver import open_listener
from .peers import CLIENT_HOST, GnuTLSServer, OpenSSLServer, gnutls_priority, require_binary
from .wire import ServerHelloInfo, server_hellos

pytestmark = pytest.mark.interop

TIMEOUT: Final = 10.0
# gnutls-serv --echo answers whole lines only.
MESSAGE: Final = b"resume without a key exchange\n"
PSK_KE_FIRST: Final[tuple[PskMode, ...]] = ("psk_ke", "psk_dhe_ke")
PSK_KE_ONLY: Final[tuple[PskMode, ...]] = ("psk_ke",)
# The PSK key exchange in a GnuTLS priority string allows psk_ke for TLS 1.3
# (lib/ext/psk_ke_modes.c); without it gnutls-serv resumes with psk_dhe_ke only.
GNUTLS_ALLOW_PSK_KE: Final = gnutls_priority() + ":+PSK"


# --------------------------------------------------------------------------- #
# Our server: one engine connection per configuration, in a thread.


@dataclass(kw_only=True)
class _Served:
    negotiated: list[Negotiated | None] = field(default_factory=list)
    sent: list[bytes] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def modes(self) -> list[PskKeyExchangeMode | None]:
        return [n.psk_key_exchange_mode if n is not None else None for n in self.negotiated]

    def kinds(self) -> list[HandshakeKind | None]:
        return [n.handshake_kind if n is not None else None for n in self.negotiated]


def _serve_connection(listener: socket.socket, config: ServerConfig, served: _Served) -> None:
    """Echo on one connection until the peer closes or MESSAGE was echoed."""
    deadline = time.monotonic() + TIMEOUT
    listener.settimeout(TIMEOUT)
    sock, _ = listener.accept()
    conn = ServerConnection(config)
    received = bytearray()
    sent = bytearray()
    try:
        with sock:
            while not conn.peer_closed and len(received) < len(MESSAGE):
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                data = sock.recv(65536)
                if not data:
                    break
                for event in conn.receive_data(data):
                    if isinstance(event, events.ApplicationData):
                        received += event.data
                        conn.send_application_data(event.data)
                out = conn.data_to_send()
                sent += out
                sock.sendall(out)
            conn.close()
            sock.sendall(conn.data_to_send())
    except (OSError, TLSError) as exc:
        served.errors.append(f"{type(exc).__name__}: {exc}")
    served.negotiated.append(conn.negotiated)
    served.sent.append(bytes(sent))


def _serve(configs: Sequence[ServerConfig], client: Callable[[int], None]) -> _Served:
    """Serve ``len(configs)`` connections on 127.0.0.1 while ``client`` talks to them."""
    served = _Served()
    with open_listener(CLIENT_HOST) as listener:

        def serve_all() -> None:
            for config in configs:
                try:
                    _serve_connection(listener, config, served)
                except OSError as exc:  # accept timed out: the client never came
                    served.errors.append(f"accept: {exc}")
                    return

        thread = threading.Thread(target=serve_all, daemon=True)
        thread.start()
        try:
            client(listener.getsockname()[1])
        finally:
            thread.join(TIMEOUT)
        assert not thread.is_alive(), "our server did not finish"
    return served


def _run_tool(argv: Sequence[str], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    """Run a peer tool to completion under TIMEOUT; kill it whatever happens."""
    process = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        stdout, stderr = process.communicate(stdin, timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(TIMEOUT)
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


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


class _SClient:
    """``openssl s_client -allow_no_dhe_kex -trace``: ``-sess_out``, then ``-sess_in``."""

    def __init__(self, files: PKIFiles, session: Path) -> None:
        self._openssl = require_binary("openssl")
        self._files = files
        self._session = session
        self.outputs: list[str] = []

    def __call__(self, port: int) -> None:
        for flag in ("-sess_out", "-sess_in"):
            result = _run_tool(
                [self._openssl, "s_client", "-connect", f"{CLIENT_HOST}:{port}",
                 "-servername", "localhost", "-verify_hostname", "localhost",
                 "-CAfile", str(self._files.ca), "-verify_return_error", "-tls1_3",
                 "-allow_no_dhe_kex", "-trace",
                 "-ign_eof", "-nocommands", flag, str(self._session)],
                MESSAGE,
            )  # fmt: skip
            text = result.stdout.decode(errors="replace")
            self.outputs.append(text + result.stderr.decode(errors="replace"))
            assert result.returncode == 0, self.outputs[-1]

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


class _GnuTLSCliResume:
    """``gnutls-cli --resume``: connects, disconnects, reconnects with the ticket."""

    def __init__(self, files: PKIFiles, priority: str) -> None:
        self._binary = require_binary("gnutls-cli")
        self._files = files
        self._priority = priority
        self.output = ""

    def __call__(self, port: int) -> None:
        result = _run_tool(
            [self._binary, CLIENT_HOST, "--port", str(port),
             "--sni-hostname", "localhost", "--verify-hostname", "localhost",
             "--x509cafile", str(self._files.ca), "--priority", self._priority,
             "--resume"],
            MESSAGE,
        )  # fmt: skip
        self.output = result.stdout.decode(errors="replace") + result.stderr.decode(
            errors="replace"
        )
        assert result.returncode == 0, self.output


def test_gnutls_cli_resumes_with_psk_ke_when_our_server_prefers_it(
    pki: TestPKI, pki_files: PKIFiles
) -> None:
    # With no PSK key exchange in its priority string, gnutls-cli offers
    # psk_dhe_ke and psk_ke for resumption; our server's order picks psk_ke.
    config = _server_config(pki, PSK_KE_FIRST)
    client = _GnuTLSCliResume(pki_files, gnutls_priority())
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
    client = _GnuTLSCliResume(pki_files, gnutls_priority())
    served = _serve([config, config], client)
    assert served.errors == []
    assert "*** This is a resumed session" in client.output, client.output
    assert _resumed_hello(served.sent[1]).group is not None
    assert served.modes() == [None, PskKeyExchangeMode.PSK_DHE_KE]


# --------------------------------------------------------------------------- #
# Our client: the engine over a socket, offering the session it got.


@dataclass(frozen=True, slots=True, kw_only=True)
class _ClientSaw:
    negotiated: Negotiated
    sessions: list[ClientSession]
    received: bytes
    server_wire: bytes


def _our_client(port: int, config: ClientConfig, session: ClientSession | None) -> _ClientSaw:
    """Handshake, send MESSAGE, read its echo, exchange close_notify; keep the server's bytes."""
    deadline = time.monotonic() + TIMEOUT
    sessions: list[ClientSession] = []
    received = bytearray()
    server_wire = bytearray()
    conn = ClientConnection(config, server_hostname="localhost", session=session)
    with socket.create_connection((CLIENT_HOST, port), timeout=TIMEOUT) as sock:

        def step() -> bool:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            server_wire.extend(chunk)
            for event in conn.receive_data(chunk):
                if isinstance(event, events.NewSessionTicketReceived) and event.session:
                    sessions.append(event.session)
                elif isinstance(event, events.ApplicationData):
                    received.extend(event.data)
            sock.sendall(conn.data_to_send())
            return bool(chunk)

        conn.start_handshake()
        sock.sendall(conn.data_to_send())
        while not conn.handshake_complete:
            assert step(), "the server closed the connection during the handshake"
        conn.send_application_data(MESSAGE)
        sock.sendall(conn.data_to_send())
        while len(received) < len(MESSAGE):
            assert step(), f"the server closed after echoing {bytes(received)!r}"
        conn.close()
        sock.sendall(conn.data_to_send())
        while not conn.peer_closed and step():
            pass
    assert conn.negotiated is not None  # the handshake completed above
    return _ClientSaw(
        negotiated=conn.negotiated,
        sessions=sessions,
        received=bytes(received),
        server_wire=bytes(server_wire),
    )


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
