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
from triotls.config import (
    DEFAULT_GROUPS,
    DEFAULT_KEY_SHARE_GROUPS,
    CertifiedKey,
    ClientConfig,
    ServerConfig,
    TrustStore,
)
from triotls.engine import ClientConnection, HandshakeKind, Negotiated, ServerConnection, events
from triotls.engine.enums import NamedGroup
from triotls.engine.tickets import ClientSession, TicketKeys
from triotls.errors import TLSError

from .driver import open_listener
from .peers import CLIENT_HOST, GnuTLSServer, OpenSSLServer, gnutls_priority, require_binary

pytestmark = pytest.mark.interop

TIMEOUT: Final = 10.0
# gnutls-serv --echo answers whole lines only.
MESSAGE: Final = b"resume me\n"


# --------------------------------------------------------------------------- #
# Our server: one engine connection per configuration, in a thread.


@dataclass(kw_only=True)
class _Served:
    """What our server saw, one entry per connection."""

    negotiated: list[Negotiated | None] = field(default_factory=list)
    received: list[bytes] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def kinds(self) -> list[HandshakeKind | None]:
        return [n.handshake_kind if n is not None else None for n in self.negotiated]


def _serve_connection(
    listener: socket.socket, config: ServerConfig, close_after: int | None, served: _Served
) -> None:
    """Echo on one connection until the peer closes (or ``close_after`` bytes echoed)."""
    deadline = time.monotonic() + TIMEOUT
    listener.settimeout(TIMEOUT)
    sock, _ = listener.accept()
    conn = ServerConnection(config)
    received = bytearray()
    try:
        with sock:
            while not conn.peer_closed:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                data = sock.recv(65536)
                if not data:
                    break  # EOF without close_notify: nothing more to echo
                for event in conn.receive_data(data):
                    if isinstance(event, events.ApplicationData):
                        received += event.data
                        conn.send_application_data(event.data)
                sock.sendall(conn.data_to_send())
                if close_after is not None and len(received) >= close_after:
                    break
            conn.close()
            sock.sendall(conn.data_to_send())
    except (OSError, TLSError) as exc:
        served.errors.append(f"{type(exc).__name__}: {exc}")
    served.negotiated.append(conn.negotiated)
    served.received.append(bytes(received))


class _OurServer:
    """Our engine serving ``len(configs)`` connections in order, on 127.0.0.1."""

    def __init__(self, configs: Sequence[ServerConfig], *, close_after: int | None = None):
        self._configs = configs
        self._close_after = close_after
        self.served = _Served()
        self.port = 0

    def run(self, client: Callable[[int], None]) -> _Served:
        """Start serving, let ``client`` talk to ``self.port``, wait for the server."""
        with open_listener(CLIENT_HOST) as listener:
            self.port = listener.getsockname()[1]
            thread = threading.Thread(target=self._serve, args=(listener,), daemon=True)
            thread.start()
            try:
                client(self.port)
            finally:
                thread.join(TIMEOUT)
            assert not thread.is_alive(), "our server did not finish"
        return self.served

    def _serve(self, listener: socket.socket) -> None:
        for config in self._configs:
            try:
                _serve_connection(listener, config, self._close_after, self.served)
            except OSError as exc:  # accept timed out: the client never came
                self.served.errors.append(f"accept: {exc}")
                return


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


def _our_server_config(
    pki: TestPKI, keys: TicketKeys, groups: tuple[NamedGroup, ...] = DEFAULT_GROUPS
) -> ServerConfig:
    return ServerConfig(
        certificates=(CertifiedKey.from_pem(pki.chain_pem, pki.key_pem),),
        ticket_keys=keys,
        groups=groups,
    )


class _SClient:
    """``openssl s_client``: once with ``-sess_out``, once with ``-sess_in``."""

    def __init__(self, files: PKIFiles, session: Path, extra: Sequence[str] = ()) -> None:
        self._openssl = require_binary("openssl")
        self._files = files
        self._session = session
        self._extra = list(extra)
        self.outputs: list[str] = []

    def __call__(self, port: int) -> None:
        for flag in ("-sess_out", "-sess_in"):
            # -ign_eof: wait for our close_notify (sent after the echo) rather
            # than leave at the end of stdin, which may come before the echo.
            result = _run_tool(
                [self._openssl, "s_client", "-connect", f"{CLIENT_HOST}:{port}",
                 "-servername", "localhost", "-verify_hostname", "localhost",
                 "-CAfile", str(self._files.ca), "-verify_return_error", "-tls1_3",
                 "-ign_eof", "-nocommands", flag, str(self._session), *self._extra],
                MESSAGE,
            )  # fmt: skip
            text = result.stdout.decode(errors="replace")
            self.outputs.append(text + result.stderr.decode(errors="replace"))
            assert result.returncode == 0, self.outputs[-1]


def test_our_server_resumes_an_openssl_s_client_session(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    config = _our_server_config(pki, TicketKeys())
    client = _SClient(pki_files, tmp_path / "session.pem")
    served = _OurServer([config, config], close_after=len(MESSAGE)).run(client)
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
    client = _SClient(pki_files, tmp_path / "session.pem", ["-groups", "X25519:P-256"])
    served = _OurServer([config, config], close_after=len(MESSAGE)).run(client)
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
    client = _SClient(pki_files, session, ["-trace"])
    served = _OurServer([issuer, stranger], close_after=len(MESSAGE)).run(client)
    assert served.errors == []
    # s_client did offer the ticket (its -trace shows pre_shared_key, 41) ...
    assert "extension_type=psk(41)" in client.outputs[1], client.outputs[1]
    assert "New, TLSv1.3" in client.outputs[1], client.outputs[1]
    # ... and the handshake went on as a full one, data included.
    assert served.kinds() == [HandshakeKind.FULL, HandshakeKind.FULL]
    assert served.received == [MESSAGE, MESSAGE]


class _GnuTLSCliResume:
    """``gnutls-cli --resume``: connects, disconnects, reconnects with the ticket."""

    def __init__(self, files: PKIFiles) -> None:
        self._binary = require_binary("gnutls-cli")
        self._files = files
        self.output = ""

    def __call__(self, port: int) -> None:
        result = _run_tool(
            [self._binary, CLIENT_HOST, "--port", str(port),
             "--sni-hostname", "localhost", "--verify-hostname", "localhost",
             "--x509cafile", str(self._files.ca), "--priority", gnutls_priority(),
             "--resume"],
            MESSAGE,
        )  # fmt: skip
        self.output = result.stdout.decode(errors="replace") + result.stderr.decode(
            errors="replace"
        )
        assert result.returncode == 0, self.output


def test_our_server_resumes_a_gnutls_cli_session(pki: TestPKI, pki_files: PKIFiles) -> None:
    config = _our_server_config(pki, TicketKeys())
    client = _GnuTLSCliResume(pki_files)
    served = _OurServer([config, config]).run(client)
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
    client = _GnuTLSCliResume(pki_files)
    served = _OurServer([issuer, stranger]).run(client)
    assert served.errors == []
    # gnutls-cli 3.7 prints no "not resumed" line (and says "Resume Handshake
    # was completed" either way); a refusal shows as a second certificate.
    assert "This is a resumed session" not in client.output, client.output
    assert client.output.count("- Got a certificate list") == 2, client.output
    assert served.kinds() == [HandshakeKind.FULL, HandshakeKind.FULL]
    assert served.received == [b"", MESSAGE]


# --------------------------------------------------------------------------- #
# Our client: the engine over a socket, offering the session it got.


@dataclass(frozen=True, slots=True, kw_only=True)
class _ClientSaw:
    negotiated: Negotiated
    sessions: list[ClientSession]
    received: bytes


def _our_client(
    port: int, config: ClientConfig, session: ClientSession | None, name: str = "localhost"
) -> _ClientSaw:
    """Handshake, send MESSAGE, read its echo, exchange close_notify."""
    deadline = time.monotonic() + TIMEOUT
    sessions: list[ClientSession] = []
    received = bytearray()
    conn = ClientConnection(config, server_hostname=name, session=session)
    with socket.create_connection((CLIENT_HOST, port), timeout=TIMEOUT) as sock:

        def step() -> bool:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(65536)
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
    return _ClientSaw(negotiated=conn.negotiated, sessions=sessions, received=bytes(received))


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
