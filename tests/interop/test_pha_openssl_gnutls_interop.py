"""Post-handshake client authentication (RFC 8446 §4.6.2) against openssl and GnuTLS.

Both tools do it in both directions (``test_post_handshake_auth_interop.py``
covers Python's ``ssl``). Each direction is tested with a trusted
certificate, with none (the client declines), and with one from a CA the
asking side does not trust.

* Our server asks (``ServerConnection.request_client_certificate``; once
  through ``TLSStream.request_client_certificate``) a client that offered
  post_handshake_auth: ``openssl s_client -enable_pha`` and ``gnutls-cli
  --post-handshake-auth`` ("Enable post-handshake authentication under
  TLS1.3" in ``gnutls-cli --help``). gnutls-cli answers by itself: on
  GNUTLS_E_REAUTH_REQUEST it calls ``gnutls_reauth`` and logs "*** Re-auth
  was performed.".
* The peer server asks our client (``ClientConfig(post_handshake_auth=True)``):
  ``openssl s_server`` on the command letter ``c`` ("Send a certificate
  request to the client (TLSv1.3 only)", openssl-s_server(1), CONNECTED
  COMMANDS). It needs no ``-verify``: it sets SSL_VERIFY_PEER itself before
  SSL_verify_client_post_handshake and sends the request at once, so a
  client that declines is accepted and ``-verify_return_error`` refuses a
  chain it cannot verify. ``gnutls-serv --echo`` asks when it receives the
  line ``**REAUTH**`` (GnuTLS's ``check_command``; it answers "Successfully
  executed command"). It runs with ``--disable-client-cert``, so the
  handshake asks for nothing and the late request requires a certificate
  (certificate_required if declined), and with ``--verify-client-cert``,
  since ``--require-client-cert`` alone does not verify the chain (it logs
  "Peer's certificate was NOT verified").

A TLSStream server learns the answer from a ``receive_some`` that returns
something: the answer alone does not end one, so the trio test lets the
client close after its answer.

Every peer runs under a timeout and is stopped by its PID on exit (see
``peers.py``); every socket operation has a deadline.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

import pytest
import trio

from tests.interop.client_auth_support import (
    ClientPKI,
    EngineSocket,
    PeerClientKind,
    open_engine_client,
    received_certificate_subjects,
    serve_peer_client,
)
from tests.interop.peers import (
    CLIENT_HOST,
    GnuTLSServer,
    OpenSSLClient,
    OpenSSLServer,
    PeerReport,
)
from tests.support.certs import PKIFiles, TestPKI
from triotls.config import CertifiedKey, ClientConfig, ServerConfig, TrustStore
from triotls.engine import ClientConnection, ServerConnection, events
from triotls.engine.enums import AlertDescription
from triotls.errors import AlertReceived, CertificateVerificationError
from triotls.stream import TLSStream

pytestmark = pytest.mark.interop

TIMEOUT: Final = 5.0
# A line: gnutls-serv --echo answers whole lines only.
MESSAGE: Final = b"after the request\n"
FATAL: Final = 2


def _server_config(pki: TestPKI, client_pki: ClientPKI) -> ServerConfig:
    # client_auth stays "none": the handshake asks for nothing.
    return ServerConfig(
        certificates=(CertifiedKey.from_pem(pki.chain_pem, pki.key_pem),),
        client_trust=client_pki.trust,
    )


def _client_config(pki: TestPKI, certificate: ClientPKI | None) -> ClientConfig:
    return ClientConfig(
        trust=TrustStore.from_pem(pki.ca_pem),
        certificate=certificate.certified if certificate is not None else None,
        post_handshake_auth=True,
    )


def _request_and_echo(
    server: EngineSocket[ServerConnection], *, close_first: bool
) -> events.ClientCertificateReceived:
    """Handshake, ask for a certificate, echo MESSAGE, wait for the answer, close.

    With ``close_first`` we close once the answer and MESSAGE are in (s_client
    waits for that); otherwise we echo until the client closes, since
    gnutls-cli leaves without a close_notify of its own when ours comes first.
    """
    server.handshake()
    assert server.first(events.ClientCertificateReceived) is None
    server.conn.request_client_certificate()
    server.flush()
    server.echo(until=len(MESSAGE) if close_first else None)
    server.wait_for(
        lambda: server.first(events.ClientCertificateReceived) is not None,
        "the client answered the CertificateRequest",
    )
    server.close()
    answer = server.first(events.ClientCertificateReceived)
    assert answer is not None  # waited for above
    return answer


# The flag that makes each client offer post_handshake_auth.
_ENABLE_PHA: Final[dict[PeerClientKind, str]] = {
    "openssl": "-enable_pha",
    "gnutls": "--post-handshake-auth",
}


def _ask(
    kind: PeerClientKind,
    config: ServerConfig,
    pki_files: PKIFiles,
    workdir: Path,
    certificate: ClientPKI | None,
) -> tuple[events.ClientCertificateReceived, PeerReport]:
    """Our server asks an s_client/gnutls-cli for a certificate after the handshake."""
    answer, report = serve_peer_client(
        kind,
        config,
        pki_files,
        workdir,
        lambda server: _request_and_echo(server, close_first=kind == "openssl"),
        data=MESSAGE,
        certificate=certificate,
        extra=[_ENABLE_PHA[kind]],
        timeout=TIMEOUT,
    )
    assert report.received == MESSAGE, report.log
    assert report.returncode == 0, report.log
    return answer, report


# --------------------------------------------------------------------------- #
# Our server asks.


def test_our_server_gets_openssl_s_client_certificate_after_the_handshake(
    pki: TestPKI, pki_files: PKIFiles, client_pki: ClientPKI, tmp_path: Path
) -> None:
    answer, _report = _ask(
        "openssl", _server_config(pki, client_pki), pki_files, tmp_path, client_pki
    )
    assert answer.peer_certificates[0] == client_pki.certified.chain[0]
    assert answer.verification is not None
    assert answer.verification.is_valid


def test_our_server_hears_openssl_s_client_decline_without_a_certificate(
    pki: TestPKI, pki_files: PKIFiles, client_pki: ClientPKI, tmp_path: Path
) -> None:
    config = _server_config(pki, client_pki)
    answer, _report = _ask("openssl", config, pki_files, tmp_path, None)
    assert answer == events.ClientCertificateReceived(peer_certificates=(), verification=None)


def test_our_server_refuses_untrusted_openssl_s_client_certificate_after_the_handshake(
    pki: TestPKI, pki_files: PKIFiles, client_pki: ClientPKI, rogue_pki: ClientPKI, tmp_path: Path
) -> None:

    def refuse(server: EngineSocket[ServerConnection]) -> CertificateVerificationError:
        with pytest.raises(CertificateVerificationError) as failure:
            _request_and_echo(server, close_first=True)
        return failure.value

    error, report = serve_peer_client(
        "openssl",
        _server_config(pki, client_pki),
        pki_files,
        tmp_path,
        refuse,
        data=MESSAGE,
        certificate=rogue_pki,
        extra=[_ENABLE_PHA["openssl"]],
        timeout=TIMEOUT,
    )
    assert error.sent_alert == AlertDescription.UNKNOWN_CA
    assert (FATAL, AlertDescription.UNKNOWN_CA) in report.alerts_received, report.log


def test_our_server_gets_gnutls_cli_certificate_after_the_handshake(
    pki: TestPKI, pki_files: PKIFiles, client_pki: ClientPKI, tmp_path: Path
) -> None:
    answer, report = _ask(
        "gnutls", _server_config(pki, client_pki), pki_files, tmp_path, client_pki
    )
    assert answer.peer_certificates[0] == client_pki.certified.chain[0]
    assert answer.verification is not None
    assert answer.verification.is_valid
    assert "*** Re-auth was performed." in report.log
    assert "Successfully sent 1 certificate(s) to server" in report.log


def test_our_server_hears_gnutls_cli_decline_without_a_certificate(
    pki: TestPKI, pki_files: PKIFiles, client_pki: ClientPKI, tmp_path: Path
) -> None:
    config = _server_config(pki, client_pki)
    answer, report = _ask("gnutls", config, pki_files, tmp_path, None)
    assert answer == events.ClientCertificateReceived(peer_certificates=(), verification=None)
    assert "*** Re-auth was performed." in report.log


def test_our_trio_server_gets_openssl_s_client_certificate_after_the_handshake(
    pki: TestPKI, pki_files: PKIFiles, client_pki: ClientPKI, tmp_path: Path
) -> None:
    extra = ["-enable_pha", "-cert", str(client_pki.chain), "-key", str(client_pki.key)]

    async def serve() -> tuple[events.ClientCertificateReceived | None, PeerReport]:
        listener = (await trio.open_tcp_listeners(0, host=CLIENT_HOST))[0]
        async with listener:
            port = listener.socket.getsockname()[1]
            with OpenSSLClient(
                pki_files.ca,
                port,
                workdir=tmp_path,
                data=MESSAGE,
                close="client",
                extra_args=extra,
                timeout=TIMEOUT,
            ) as client:
                with trio.fail_after(TIMEOUT):
                    stream = TLSStream(
                        await listener.accept(), _server_config(pki, client_pki), server_side=True
                    )
                    async with stream:
                        await stream.do_handshake()
                        await stream.request_client_certificate()
                        received = b""
                        while len(received) < len(MESSAGE):
                            received += await stream.receive_some()
                        await stream.send_all(received)
                        # The answer alone does not end a receive_some; the
                        # client's close_notify (sent after its answer) does.
                        assert await stream.receive_some() == b""
                        answer = stream.client_certificate_result
                return answer, await trio.to_thread.run_sync(client.finish)

    answer, report = trio.run(serve)
    assert report.received == MESSAGE, report.log
    assert answer is not None
    assert answer.peer_certificates[0] == client_pki.certified.chain[0]
    assert answer.verification is not None
    assert answer.verification.is_valid


# --------------------------------------------------------------------------- #
# The peer server asks our client.


def _s_server(pki_files: PKIFiles, workdir: Path, client_ca: Path, *extra: str) -> OpenSSLServer:
    return OpenSSLServer(
        pki_files,
        workdir=workdir,
        commands=True,
        extra_args=["-CAfile", str(client_ca), *extra],
        timeout=TIMEOUT,
    )


def _answer_s_server_request(server: OpenSSLServer, client: EngineSocket[ClientConnection]) -> None:
    """Handshake, have s_server ask ("c"), answer, and show s_server a line after."""
    client.handshake()
    server.command("c")
    client.wait_for(
        lambda: client.first(events.CertificateRequested) is not None,
        "s_server's CertificateRequest arrived",
    )
    client.send(MESSAGE)  # s_server prints it once it read our answer before it
    server.wait_output(MESSAGE.decode())


def test_our_client_answers_openssl_s_server_request_with_its_certificate(
    pki: TestPKI, pki_files: PKIFiles, client_pki: ClientPKI, tmp_path: Path
) -> None:
    config = _client_config(pki, client_pki)
    with _s_server(pki_files, tmp_path, client_pki.ca, "-verify_return_error") as server:
        with open_engine_client(server.port, config, timeout=TIMEOUT) as client:
            _answer_s_server_request(server, client)
            client.close()
        report = server.finish()
        stderr = server.process.stderr_text()
    assert client.first(events.CertificateRequested) == events.CertificateRequested(
        certificate_sent=True
    )
    assert report.returncode == 0, report.log
    trace = (tmp_path / "s_server.trace").read_text()
    assert any(client_pki.common_name in s for s in received_certificate_subjects(trace)), trace
    # s_server's verify callback: our leaf (depth 0) verified against -CAfile.
    verified = rf"depth=0 .*CN = {re.escape(client_pki.common_name)}\nverify return:1"
    assert re.search(verified, stderr), stderr


def test_our_client_declines_openssl_s_server_request_without_a_certificate(
    pki: TestPKI, pki_files: PKIFiles, client_pki: ClientPKI, tmp_path: Path
) -> None:
    config = _client_config(pki, None)
    with _s_server(pki_files, tmp_path, client_pki.ca) as server:
        with open_engine_client(server.port, config, timeout=TIMEOUT) as client:
            _answer_s_server_request(server, client)
            client.close()
        report = server.finish()
    assert client.first(events.CertificateRequested) == events.CertificateRequested(
        certificate_sent=False
    )
    assert report.returncode == 0, report.log
    assert received_certificate_subjects((tmp_path / "s_server.trace").read_text()) == []


def test_openssl_s_server_refuses_our_untrusted_certificate_after_the_handshake(
    pki: TestPKI, pki_files: PKIFiles, client_pki: ClientPKI, rogue_pki: ClientPKI, tmp_path: Path
) -> None:
    config = _client_config(pki, rogue_pki)
    with _s_server(pki_files, tmp_path, client_pki.ca, "-verify_return_error") as server:
        with open_engine_client(server.port, config, timeout=TIMEOUT) as client:
            client.handshake()
            server.command("c")
            with pytest.raises(AlertReceived) as failure:
                client.wait_for(lambda: False, "s_server's alert arrived")
        report = server.finish()
    assert failure.value.description == AlertDescription.UNKNOWN_CA
    assert client.first(events.CertificateRequested) == events.CertificateRequested(
        certificate_sent=True
    )
    assert (FATAL, AlertDescription.UNKNOWN_CA) in report.alerts_sent, report.log


def _gnutls_serv(pki_files: PKIFiles, workdir: Path, client_ca: Path) -> GnuTLSServer:
    return GnuTLSServer(
        pki_files,
        workdir=workdir,
        extra_args=["--x509cafile", str(client_ca), "--verify-client-cert"],
        timeout=TIMEOUT,
    )


def _ask_via_gnutls_serv(client: EngineSocket[ClientConnection]) -> None:
    """Handshake, send the **REAUTH** line, answer the request it triggers."""
    client.handshake()
    client.send(b"**REAUTH**\n")
    client.wait_for(
        lambda: client.first(events.CertificateRequested) is not None,
        "gnutls-serv's CertificateRequest arrived",
    )


def test_our_client_answers_gnutls_serv_request_with_its_certificate(
    pki: TestPKI, pki_files: PKIFiles, client_pki: ClientPKI, tmp_path: Path
) -> None:
    config = _client_config(pki, client_pki)
    with _gnutls_serv(pki_files, tmp_path, client_pki.ca) as server:
        with open_engine_client(server.port, config, timeout=TIMEOUT) as client:
            _ask_via_gnutls_serv(client)
            reply = b"Successfully executed command\n"
            client.wait_for(lambda: reply in client.received, "gnutls-serv reported success")
            client.send(MESSAGE)
            client.wait_for(lambda: client.received.endswith(MESSAGE), "gnutls-serv echoed")
            client.close()
        report = server.finish()
        stderr = server.process.stderr_text()
    assert client.first(events.CertificateRequested) == events.CertificateRequested(
        certificate_sent=True
    )
    assert report.alerts_sent == ((1, 0),), report.log
    # gnutls-serv logs no subject; its -d 5 log shows the answer, and
    # --verify-client-cert refused nothing (see the untrusted case below).
    answer = stderr[stderr.index("*** Processing 11 bytes command: **REAUTH**") :]
    assert "CERTIFICATE (11) was received" in answer, answer
    assert "CERTIFICATE VERIFY (15) was received" in answer, answer


def _refused_by_gnutls_serv(
    pki: TestPKI, pki_files: PKIFiles, client_ca: Path, workdir: Path, certificate: ClientPKI | None
) -> tuple[AlertReceived, EngineSocket[ClientConnection], PeerReport]:
    """gnutls-serv asks our client (presenting ``certificate``), which hears a refusal."""
    config = _client_config(pki, certificate)
    with _gnutls_serv(pki_files, workdir, client_ca) as server:
        with open_engine_client(server.port, config, timeout=TIMEOUT) as client:
            _ask_via_gnutls_serv(client)
            with pytest.raises(AlertReceived) as failure:
                client.wait_for(lambda: False, "gnutls-serv's alert arrived")
        report = server.finish()
    return failure.value, client, report


def test_gnutls_serv_refuses_our_client_declining_its_request(
    pki: TestPKI, pki_files: PKIFiles, client_pki: ClientPKI, tmp_path: Path
) -> None:
    # With --disable-client-cert, gnutls-serv's **REAUTH** requires a certificate.
    alert, client, report = _refused_by_gnutls_serv(pki, pki_files, client_pki.ca, tmp_path, None)
    assert client.first(events.CertificateRequested) == events.CertificateRequested(
        certificate_sent=False
    )
    assert alert.description == AlertDescription.CERTIFICATE_REQUIRED
    assert (FATAL, AlertDescription.CERTIFICATE_REQUIRED) in report.alerts_sent, report.log


def test_gnutls_serv_refuses_our_untrusted_certificate_after_the_handshake(
    pki: TestPKI, pki_files: PKIFiles, client_pki: ClientPKI, rogue_pki: ClientPKI, tmp_path: Path
) -> None:
    alert, client, report = _refused_by_gnutls_serv(
        pki, pki_files, client_pki.ca, tmp_path, rogue_pki
    )
    assert client.first(events.CertificateRequested) == events.CertificateRequested(
        certificate_sent=True
    )
    assert alert.description == AlertDescription.ACCESS_DENIED
    assert (FATAL, AlertDescription.ACCESS_DENIED) in report.alerts_sent, report.log
