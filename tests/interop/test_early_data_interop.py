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
import subprocess
from pathlib import Path
from typing import Final

import pytest

from tests.support.certs import PKIFiles, TestPKI
from triotls.config import CertifiedKey, ClientConfig, ServerConfig, TrustStore
from triotls.engine import HandshakeKind
from triotls.engine.state import EarlyDataStatus
from triotls.engine.tickets import ClientSession, TicketKeys

from .peers import GnuTLSServer, OpenSSLServer, require_binary
from .sessions import (
    TIMEOUT,
    ClientSaw,
    GnuTLSCliResume,
    SClientSessions,
    run_session_client,
    serve_connections,
)

pytestmark = pytest.mark.interop

# gnutls-serv --echo answers whole lines only.
MESSAGE: Final = b"after the handshake\n"
EARLY: Final = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n0-RTT from the peer\n"
LIMIT: Final = 16_384


# --------------------------------------------------------------------------- #
# Our server: one engine connection per configuration, in a thread.


def _our_server_config(pki: TestPKI, *, max_early_data_size: int = LIMIT) -> ServerConfig:
    return ServerConfig(
        certificates=(CertifiedKey.from_pem(pki.chain_pem, pki.key_pem),),
        ticket_keys=TicketKeys(),
        max_early_data_size=max_early_data_size,
    )


def _s_client(files: PKIFiles, workdir: Path, reconnects: int) -> SClientSessions:
    """``openssl s_client``: ``-sess_out`` once, then ``-sess_in -early_data`` for the rest."""
    early = workdir / "early.txt"
    early.write_bytes(EARLY)
    return SClientSessions(
        files,
        workdir / "session.pem",
        message=MESSAGE,
        resume_extra=["-early_data", str(early)],
        reconnects=reconnects,
    )


def test_our_server_accepts_early_data_from_openssl_s_client(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    config = _our_server_config(pki)
    client = _s_client(pki_files, tmp_path, reconnects=1)
    served = serve_connections([config, config], client, close_after=len(MESSAGE))
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
    client = _s_client(pki_files, tmp_path, reconnects=2)
    served = serve_connections([config, config, config], client, close_after=len(MESSAGE))
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
    client = _s_client(pki_files, tmp_path, reconnects=1)
    served = serve_connections([issuer, turned_off], client, close_after=len(MESSAGE))
    assert served.errors == []
    assert "Early data was rejected" in client.outputs[1], client.outputs[1]
    assert "Reused, TLSv1.3" in client.outputs[1], client.outputs[1]
    assert served.kinds() == [HandshakeKind.FULL, HandshakeKind.RESUMED]
    assert served.early_statuses()[1] is EarlyDataStatus.REJECTED
    assert served.early == [b"", b""]
    assert served.received == [MESSAGE, MESSAGE]


def _gnutls_cli(files: PKIFiles, early: Path) -> GnuTLSCliResume:
    """``gnutls-cli --resume --earlydata``: connect, then reconnect sending ``early``."""
    return GnuTLSCliResume(files, message=MESSAGE, extra=[f"--earlydata={early}", "-d", "4"])


def test_our_server_accepts_early_data_from_gnutls_cli(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    early = tmp_path / "early.txt"
    early.write_bytes(EARLY)
    config = _our_server_config(pki)
    client = _gnutls_cli(pki_files, early)
    served = serve_connections([config, config], client)
    log = client.output
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
    config = dataclasses.replace(_our_server_config(pki), record_size_limit=512)
    client = _gnutls_cli(pki_files, early)
    served = serve_connections([config, config], client)
    log = client.output
    assert "Sending extension Record Size Limit/28" in log, log
    assert served.errors == []
    assert served.early_statuses() == [EarlyDataStatus.NOT_OFFERED, EarlyDataStatus.ACCEPTED]
    assert served.early == [b"", data]
    assert served.received == [b"", MESSAGE]


# --------------------------------------------------------------------------- #
# Our client: the engine over a socket, offering early data with its session.


def _our_client(
    port: int, config: ClientConfig, session: ClientSession | None, early_data: bytes, echo: bytes
) -> ClientSaw:
    """Handshake (offering ``early_data``), send MESSAGE, read ``echo``, close."""
    return run_session_client(
        port, config, message=MESSAGE, session=session, early_data=early_data, echo=echo
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
