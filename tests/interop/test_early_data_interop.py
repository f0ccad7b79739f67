"""0-RTT early data against real peers, both directions (RFC 8446 §4.2.10).

Our server (``max_early_data_size`` set) issues a ticket to ``openssl
s_client -sess_out``, which comes back with ``-sess_in -early_data FILE``
(s_client prints ``Early data was accepted``/``rejected``), and to
``gnutls-cli --resume --earlydata=FILE``, which reconnects by itself (its
``-d 4`` log shows ``END OF EARLY DATA was queued`` when the server accepted).

Our client: the engine over a socket gets a ticket from ``openssl s_server
-early_data`` (which writes the early data it received to stdout; the peer
harness echoes stdout back) or ``gnutls-serv --earlydata`` (which does not
echo early data, but logs ``decrypted early data with length: N`` at
``-d 5``), then connects again with ``start_handshake(early_data=...)``.

Every subprocess runs under a timeout and is killed in ``finally``; every
socket operation has a deadline.
"""

from __future__ import annotations

import dataclasses
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
from triotls.config import CertifiedKey, ClientConfig, ServerConfig, TrustStore
from triotls.engine import ClientConnection, HandshakeKind, Negotiated, ServerConnection, events
from triotls.engine.state import EarlyDataStatus
from triotls.engine.tickets import ClientSession, TicketKeys
from triotls.errors import TLSError

from .driver import open_listener
from .peers import CLIENT_HOST, GnuTLSServer, OpenSSLServer, gnutls_priority, require_binary

pytestmark = pytest.mark.interop

TIMEOUT: Final = 10.0
# gnutls-serv --echo answers whole lines only.
MESSAGE: Final = b"after the handshake\n"
EARLY: Final = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n0-RTT from the peer\n"
LIMIT: Final = 16_384


# --------------------------------------------------------------------------- #
# Our server: one engine connection per configuration, in a thread.


@dataclass(kw_only=True)
class _Served:
    """What our server saw, one entry per connection."""

    negotiated: list[Negotiated | None] = field(default_factory=list)
    early: list[bytes] = field(default_factory=list)
    received: list[bytes] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def kinds(self) -> list[HandshakeKind | None]:
        return [n.handshake_kind if n is not None else None for n in self.negotiated]

    def early_statuses(self) -> list[EarlyDataStatus | None]:
        return [n.early_data if n is not None else None for n in self.negotiated]


def _serve_connection(
    listener: socket.socket, config: ServerConfig, close_after: int | None, served: _Served
) -> None:
    """Echo application data until the peer closes (or ``close_after`` bytes came)."""
    deadline = time.monotonic() + TIMEOUT
    listener.settimeout(TIMEOUT)
    sock, _ = listener.accept()
    conn = ServerConnection(config)
    early = bytearray()
    received = bytearray()
    try:
        with sock:
            while not conn.peer_closed:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                data = sock.recv(65536)
                if not data:
                    break
                for event in conn.receive_data(data):
                    if isinstance(event, events.EarlyDataReceived):
                        early += event.data
                    elif isinstance(event, events.ApplicationData):
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
    served.early.append(bytes(early))
    served.received.append(bytes(received))


def _serve(
    configs: Sequence[ServerConfig], client: Callable[[int], None], close_after: int | None
) -> _Served:
    """Serve ``len(configs)`` connections in order while ``client(port)`` talks to us."""
    served = _Served()

    def serve_all(listener: socket.socket) -> None:
        for config in configs:
            try:
                _serve_connection(listener, config, close_after, served)
            except OSError as exc:  # accept timed out: the client never came
                served.errors.append(f"accept: {exc}")
                return

    with open_listener(CLIENT_HOST) as listener:
        thread = threading.Thread(target=serve_all, args=(listener,), daemon=True)
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


def _our_server_config(pki: TestPKI, *, max_early_data_size: int = LIMIT) -> ServerConfig:
    return ServerConfig(
        certificates=(CertifiedKey.from_pem(pki.chain_pem, pki.key_pem),),
        ticket_keys=TicketKeys(),
        max_early_data_size=max_early_data_size,
    )


class _SClient:
    """``openssl s_client``: ``-sess_out`` once, then ``-sess_in -early_data`` for the rest."""

    def __init__(self, files: PKIFiles, workdir: Path, reconnects: int) -> None:
        self._openssl = require_binary("openssl")
        self._files = files
        self._session = workdir / "session.pem"
        self._early = workdir / "early.txt"
        self._early.write_bytes(EARLY)
        self._reconnects = reconnects
        self.outputs: list[str] = []

    def __call__(self, port: int) -> None:
        runs = [["-sess_out", str(self._session)]] + [
            ["-sess_in", str(self._session), "-early_data", str(self._early)]
        ] * self._reconnects
        for flags in runs:
            # -ign_eof: wait for our close_notify (sent after the echo) rather
            # than leave at the end of stdin, which may come before the echo.
            result = _run_tool(
                [self._openssl, "s_client", "-connect", f"{CLIENT_HOST}:{port}",
                 "-servername", "localhost", "-verify_hostname", "localhost",
                 "-CAfile", str(self._files.ca), "-verify_return_error", "-tls1_3",
                 "-ign_eof", "-nocommands", *flags],
                MESSAGE,
            )  # fmt: skip
            self.outputs.append(
                result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace")
            )
            assert result.returncode == 0, self.outputs[-1]


def test_our_server_accepts_early_data_from_openssl_s_client(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    config = _our_server_config(pki)
    client = _SClient(pki_files, tmp_path, reconnects=1)
    served = _serve([config, config], client, close_after=len(MESSAGE))
    assert served.errors == []
    # The ticket s_client stored says how much early data our server allows.
    ticket = subprocess.run(
        [require_binary("openssl"), "sess_id", "-in", str(tmp_path / "session.pem"),
         "-text", "-noout"],
        capture_output=True, check=True, timeout=TIMEOUT,
    ).stdout.decode()  # fmt: skip
    assert f"Max Early Data: {LIMIT}" in ticket, ticket
    assert "Reused, TLSv1.3" in client.outputs[1], client.outputs[1]
    assert "Early data was accepted" in client.outputs[1], client.outputs[1]
    assert served.kinds() == [HandshakeKind.FULL, HandshakeKind.RESUMED]
    assert served.early_statuses() == [EarlyDataStatus.NOT_OFFERED, EarlyDataStatus.ACCEPTED]
    assert served.early == [b"", EARLY]
    assert served.received == [MESSAGE, MESSAGE]


def test_our_server_rejects_a_replayed_openssl_ticket_s_early_data(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    # s_client offers the same stored ticket twice: the second offer is a
    # replay to our server's guard, which refuses the early data but resumes.
    config = _our_server_config(pki)
    client = _SClient(pki_files, tmp_path, reconnects=2)
    served = _serve([config, config, config], client, close_after=len(MESSAGE))
    assert served.errors == []
    assert "Early data was accepted" in client.outputs[1], client.outputs[1]
    assert "Early data was rejected" in client.outputs[2], client.outputs[2]
    assert "Reused, TLSv1.3" in client.outputs[2], client.outputs[2]
    assert served.kinds() == [HandshakeKind.FULL, HandshakeKind.RESUMED, HandshakeKind.RESUMED]
    assert served.early_statuses()[1:] == [EarlyDataStatus.ACCEPTED, EarlyDataStatus.REJECTED]
    assert served.early == [b"", EARLY, b""]
    assert served.received == [MESSAGE, MESSAGE, MESSAGE]


def test_our_server_with_early_data_turned_off_rejects_it_and_resumes(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    issuer = _our_server_config(pki)
    turned_off = dataclasses.replace(issuer, max_early_data_size=0)
    client = _SClient(pki_files, tmp_path, reconnects=1)
    served = _serve([issuer, turned_off], client, close_after=len(MESSAGE))
    assert served.errors == []
    assert "Early data was rejected" in client.outputs[1], client.outputs[1]
    assert "Reused, TLSv1.3" in client.outputs[1], client.outputs[1]
    assert served.kinds() == [HandshakeKind.FULL, HandshakeKind.RESUMED]
    assert served.early_statuses()[1] is EarlyDataStatus.REJECTED
    assert served.early == [b"", b""]
    assert served.received == [MESSAGE, MESSAGE]


def _gnutls_cli_resuming_with_early_data(
    files: PKIFiles, early: Path, output: list[str]
) -> Callable[[int], None]:
    """``gnutls-cli --resume --earlydata``: connect, then reconnect sending ``early``."""

    def talk(port: int) -> None:
        result = _run_tool(
            [require_binary("gnutls-cli"), CLIENT_HOST, "--port", str(port),
             "--sni-hostname", "localhost", "--verify-hostname", "localhost",
             "--x509cafile", str(files.ca), "--priority", gnutls_priority(),
             "--resume", f"--earlydata={early}", "-d", "4"],
            MESSAGE,
        )  # fmt: skip
        output.append(result.stdout.decode(errors="replace"))
        output.append(result.stderr.decode(errors="replace"))
        assert result.returncode == 0, "\n".join(output)

    return talk


def test_our_server_accepts_early_data_from_gnutls_cli(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    early = tmp_path / "early.txt"
    early.write_bytes(EARLY)
    output: list[str] = []
    config = _our_server_config(pki)
    client = _gnutls_cli_resuming_with_early_data(pki_files, early, output)
    served = _serve([config, config], client, close_after=None)
    log = "\n".join(output)
    assert served.errors == []
    assert "*** This is a resumed session" in log, log
    # gnutls-cli sends EndOfEarlyData only when our EncryptedExtensions accepted.
    assert "END OF EARLY DATA was queued" in log, log
    assert served.kinds() == [HandshakeKind.FULL, HandshakeKind.RESUMED]
    assert served.early_statuses() == [EarlyDataStatus.NOT_OFFERED, EarlyDataStatus.ACCEPTED]
    assert served.early == [b"", EARLY]
    # gnutls-cli sends stdin on the resumed connection only.
    assert served.received == [b"", MESSAGE]


def test_our_server_reads_gnutls_early_data_records_larger_than_its_record_size_limit(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    # gnutls-cli offers record_size_limit, so our server announces 512 in
    # EncryptedExtensions; the early data, sealed before that, comes in one
    # larger record (RFC 8449 §4: the limit of the handshake that made the key).
    data = b"z" * 2000 + b"\n"
    early = tmp_path / "early.txt"
    early.write_bytes(data)
    output: list[str] = []
    config = dataclasses.replace(_our_server_config(pki), record_size_limit=512)
    client = _gnutls_cli_resuming_with_early_data(pki_files, early, output)
    served = _serve([config, config], client, close_after=None)
    log = "\n".join(output)
    assert "Sending extension Record Size Limit/28" in log, log
    assert served.errors == []
    assert served.early_statuses() == [EarlyDataStatus.NOT_OFFERED, EarlyDataStatus.ACCEPTED]
    assert served.early == [b"", data]
    assert served.received == [b"", MESSAGE]


# --------------------------------------------------------------------------- #
# Our client: the engine over a socket, offering early data with its session.


@dataclass(frozen=True, slots=True, kw_only=True)
class _ClientSaw:
    negotiated: Negotiated
    early_data_offered: bool
    sessions: list[ClientSession]
    received: bytes


def _our_client(
    port: int, config: ClientConfig, session: ClientSession | None, early_data: bytes, echo: bytes
) -> _ClientSaw:
    """Handshake (offering ``early_data``), send MESSAGE, read ``echo``, close."""
    deadline = time.monotonic() + TIMEOUT
    sessions: list[ClientSession] = []
    received = bytearray()
    conn = ClientConnection(config, server_hostname="localhost", session=session)
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

        conn.start_handshake(early_data=early_data)
        sock.sendall(conn.data_to_send())
        while not conn.handshake_complete:
            assert step(), "the server closed the connection during the handshake"
        conn.send_application_data(MESSAGE)
        sock.sendall(conn.data_to_send())
        while len(received) < len(echo):
            assert step(), f"the server closed after sending {bytes(received)!r}"
        conn.close()
        sock.sendall(conn.data_to_send())
        while not conn.peer_closed and step():
            pass
    assert conn.negotiated is not None  # the handshake completed above
    return _ClientSaw(
        negotiated=conn.negotiated,
        early_data_offered=conn.early_data_offered,
        sessions=sessions,
        received=bytes(received),
    )


def _our_client_config(pki: TestPKI) -> ClientConfig:
    return ClientConfig(trust=TrustStore.from_pem(pki.ca_pem))


def test_our_client_sends_early_data_that_openssl_s_server_accepts(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    config = _our_client_config(pki)
    with OpenSSLServer(
        pki_files, workdir=tmp_path, extra_args=["-early_data", "-naccept", "2"]
    ) as server:
        first = _our_client(server.port, config, None, b"", echo=MESSAGE)
        assert first.sessions, "s_server sent no ticket"
        session = first.sessions[0]
        # s_server echoes (through the harness) the early data, then MESSAGE.
        second = _our_client(server.port, config, session, EARLY, echo=EARLY + MESSAGE)
        report = server.finish()
    assert session.max_early_data_size == LIMIT  # s_server's default max_early_data
    assert second.early_data_offered
    assert second.negotiated.early_data is EarlyDataStatus.ACCEPTED
    assert second.negotiated.handshake_kind is HandshakeKind.RESUMED
    assert second.received == EARLY + MESSAGE
    # s_server -quiet writes what it received to stdout: the early data came as such.
    assert report.received == MESSAGE + EARLY + MESSAGE
    # Its protocol trace shows our EndOfEarlyData, sent before our Finished.
    assert "EndOfEarlyData, Length=0" in (tmp_path / "s_server.trace").read_text()
    assert report.returncode == 0


def test_our_client_s_early_data_refused_by_openssl_for_a_reused_ticket(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    # s_server's anti-replay (on by default) lets a ticket resume once; the
    # second offer of the same ticket gets a full handshake, and the early
    # data is skipped unread.
    config = _our_client_config(pki)
    with OpenSSLServer(
        pki_files, workdir=tmp_path, extra_args=["-early_data", "-naccept", "3"]
    ) as server:
        first = _our_client(server.port, config, None, b"", echo=MESSAGE)
        session = first.sessions[0]
        accepted = _our_client(server.port, config, session, EARLY, echo=EARLY + MESSAGE)
        refused = _our_client(server.port, config, session, b"never read\n", echo=MESSAGE)
        report = server.finish()
    assert accepted.negotiated.early_data is EarlyDataStatus.ACCEPTED
    assert refused.early_data_offered
    assert refused.negotiated.early_data is EarlyDataStatus.REJECTED
    assert refused.negotiated.handshake_kind is HandshakeKind.FULL
    assert refused.received == MESSAGE
    assert report.received == MESSAGE + EARLY + MESSAGE + MESSAGE
    assert report.returncode == 0


def test_our_client_s_early_data_refused_by_a_fresh_openssl_s_server(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    # The ticket allowed early data, but the new s_server (no -early_data,
    # other ticket keys) cannot read it: it drops it and makes a full handshake.
    config = _our_client_config(pki)
    (tmp_path / "1").mkdir()
    (tmp_path / "2").mkdir()
    with OpenSSLServer(pki_files, workdir=tmp_path / "1", extra_args=["-early_data"]) as server:
        first = _our_client(server.port, config, None, b"", echo=MESSAGE)
        server.finish()
    assert first.sessions[0].max_early_data_size == LIMIT
    with OpenSSLServer(pki_files, workdir=tmp_path / "2") as server:
        second = _our_client(server.port, config, first.sessions[0], EARLY, echo=MESSAGE)
        report = server.finish()
    assert second.early_data_offered
    assert second.negotiated.early_data is EarlyDataStatus.REJECTED
    assert second.negotiated.handshake_kind is HandshakeKind.FULL
    assert second.received == MESSAGE
    assert report.received == MESSAGE
    assert report.returncode == 0


def test_our_client_sends_early_data_that_gnutls_serv_accepts(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    config = _our_client_config(pki)
    with GnuTLSServer(pki_files, workdir=tmp_path, extra_args=["--earlydata"]) as server:
        first = _our_client(server.port, config, None, b"", echo=MESSAGE)
        assert first.sessions, "gnutls-serv sent no ticket"
        session = first.sessions[0]
        second = _our_client(server.port, config, session, EARLY, echo=MESSAGE)
        server.finish()
        log = server.process.stderr_text()
    assert session.max_early_data_size > 0
    assert second.early_data_offered
    assert second.negotiated.early_data is EarlyDataStatus.ACCEPTED
    assert second.negotiated.handshake_kind is HandshakeKind.RESUMED
    # gnutls-serv --echo does not echo early data; its debug log shows it read it.
    assert "early data accepted" in log, log[-4000:]
    assert f"decrypted early data with length: {len(EARLY)}" in log, log[-4000:]
    assert "END OF EARLY DATA (5) was received" in log, log[-4000:]
    assert second.received == MESSAGE
