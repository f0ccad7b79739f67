"""The documentation's examples run, and say what the docs claim they say.

Every file in ``docs/examples/`` is included into the Sphinx pages with
``literalinclude``; these tests run each one as a user would (``python
docs/examples/NAME.py``, in a subprocess, on loopback or in memory only) and
check the lines the pages talk about. The commands the tutorial shows
(``python -m triotls demo``, ``server`` and ``client``) run here too.

The subprocesses get the repository root on ``PYTHONPATH`` so that they test
this checkout, whatever triotls the virtualenv has installed.
"""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Final

import pytest

ROOT: Final = Path(__file__).resolve().parent.parent
EXAMPLES: Final = ROOT / "docs" / "examples"
# Each example finishes in a few seconds; this bounds a hung one.
TIMEOUT: Final = 60.0

# Lines (or fragments of lines) each example must print, in this order.
EXPECTED_OUTPUT: Final[dict[str, tuple[str, ...]]] = {
    "engine_pair.py": (
        "round 1: client got ['HandshakeComplete', 'NewSessionTicketReceived', "
        "'NewSessionTicketReceived']",
        "round 2: server got ['HandshakeComplete']",
        "ALPN 'http/1.1', full handshake",
        "server received b'GET / HTTP/1.1\\r\\n\\r\\n'",
        "client received b'HTTP/1.1 200 OK\\r\\n\\r\\n'",
        "server got [KeyUpdated(update_requested=True)]",
        "client got [KeyUpdated(update_requested=False), ApplicationData(data=b'with new keys')]",
        "both sides exported",
        "server got [CloseNotify()]",
        "client got [ApplicationData(data=b'the server can still send')]",
        "client got [CloseNotify()]",
        "receive_data raised DecodeError",
        "alert record queued for the peer: 15030300020232",
        "latched: the same exception is raised again: True",
        "trio imported: False",
    ),
    "first_client_server.py": (
        "client: TLSv1.3, <CipherSuite.TLS_AES_128_GCM_SHA256",
        "server: TLSv1.3, <CipherSuite.TLS_AES_128_GCM_SHA256",
        "client: the server closed with <CloseReason.CLOSE_NOTIFY",
        "client: received b'hello, TLS 1.3'",
    ),
    "streams_trust_alpn.py": (
        "trust stores",
        "server accepts ('http/1.1', 'h2'): {",
        "ALPN 'http/1.1'",
        "NoApplicationProtocol",
        "no_application_protocol (120)",
        "sent alert UNKNOWN_CA",
        "client: also a BrokenResourceError: True",
        "server: the peer sent a fatal alert: unknown_ca (48)",
    ),
    "timeouts.py": (
        "HandshakeTimeout: the TLS handshake did not complete within 0.5 seconds",
        "also TooSlowError: True, BrokenResourceError: True, TLSError: True",
        "later calls raise the same error: True",
        "first attempt cancelled: True",
        "resumed and completed: TLSv1.3",
        "caller's deadline: TooSlowError(), a HandshakeTimeout: False",
        "then completed: TLSv1.3",
        "timed out 1.0 s after the handshake started",
        "after a cancelled write: BrokenResourceError",
        "ValueError: handshake_timeout must be a positive number",
        "no limit: None",
    ),
    "key_log.py": (
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET <32-byte random> <32-byte secret>",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET <32-byte random> <32-byte secret>",
        "CLIENT_TRAFFIC_SECRET_0 <32-byte random> <32-byte secret>",
        "SERVER_TRAFFIC_SECRET_0 <32-byte random> <32-byte secret>",
        "EXPORTER_SECRET <32-byte random> <32-byte secret>",
    ),
    "resumption.py": (
        "a client with a SessionCache:",
        "HandshakeKind.FULL, session_resumed=False",
        "HandshakeKind.RESUMED, session_resumed=True",
        "two servers that loaded the same ticket keys:",
        "server A: HandshakeKind.FULL",
        "server B: HandshakeKind.RESUMED",
        "after a key rotation, tickets under the previous key still resume:",
        "HandshakeKind.RESUMED, session_resumed=True",
        "server A holds 2 keys",
        "a server with other ticket keys refuses the ticket:",
        "HandshakeKind.FULL, session_resumed=False",
        "HandshakeKind.RESUMED, session_resumed=True",
    ),
    "psk_ke.py": (
        "both sides allow psk_ke:",
        "HandshakeKind.FULL, mode None, group X25519MLKEM768",
        "HandshakeKind.RESUMED, mode PSK_KE, group None",
        "a default client (psk_dhe_ke only):",
        "HandshakeKind.FULL, mode None, group X25519MLKEM768",
        "HandshakeKind.RESUMED, mode PSK_DHE_KE, group X25519MLKEM768",
        "a default server (same ticket keys):",
        "HandshakeKind.RESUMED, mode PSK_DHE_KE, group X25519MLKEM768",
    ),
    "early_data.py": (
        "first visit (no ticket yet):",
        "server read b'GET /index.html\\n' as 1-RTT data, answering after the client's Finished",
        "client: HandshakeKind.FULL, early data EarlyDataStatus.NOT_OFFERED",
        "second visit (resumed, the request goes as early data):",
        "server read b'GET /index.html\\n' as 0-RTT data, answering before the client's Finished",
        "client: HandshakeKind.RESUMED, early data EarlyDataStatus.ACCEPTED",
        "a request that is not safe to repeat:",
        "server read b'POST /order\\n' as 0-RTT data, answering after the client's Finished",
        "client: HandshakeKind.RESUMED, early data EarlyDataStatus.ACCEPTED",
        "the server turned 0-RTT off (same ticket keys):",
        "server read b'GET /index.html\\n' as 1-RTT data, answering after the client's Finished",
        "client: HandshakeKind.RESUMED, early data EarlyDataStatus.REJECTED",
    ),
    "closing.py": (
        "client read b'last words', then b''",
        "close_reason: CloseReason.CLOSE_NOTIFY",
        "TruncationError: the peer closed the transport without sending close_notify",
        "also a BrokenResourceError: True",
        "client read b'', close_reason: CloseReason.RAGGED_EOF",
        "client read b'response to request' after its send_eof()",
        "client got its transport back",
        "the server's transport reads bytearray(b'plain text from here on')",
    ),
    "client_certificates.py": (
        "required: the client is CN=alice.example, verified: True",
        "required, no certificate: the server raised CertificateRequired: the client sent no "
        "certificate, and this server requires one (client_auth='required')",
        "required, no certificate: the client got the peer sent a fatal alert: "
        "certificate_required (116)",
        "optional, no certificate: peer certificates ()",
        "from PKCS#12: verified: True",
    ),
    "revocation.py": (
        "crl: INVALID | REVOKED; the server got: the peer sent a fatal alert: "
        "certificate_revoked (44)",
        "ocsp good: verified, staple received: True",
        "ocsp revoked: INVALID | REVOKED; the server got: the peer sent a fatal alert: "
        "certificate_revoked (44)",
        "ocsp revoked: the certificate for 'CN=localhost' is revoked: the stapled OCSP "
        "response says so (revoked ",
        "must-staple: INVALID | MISSING_OCSP_STATUS; the server got: the peer sent a fatal "
        "alert: bad_certificate_status_response (113)",
    ),
    "verification.py": (
        "required: CertificateVerificationError, status INVALID | UNEXPECTED_OWNER",
        "required: the peer's certificate did not verify (name mismatch): ",
        "required: sent BAD_CERTIFICATE; the server got: the peer sent a fatal alert: "
        "bad_certificate (42)",
        "report: the server says: handshake completed",
        "report: status INVALID | UNEXPECTED_OWNER (name mismatch)",
        "report: the subjectAltName of the certificate for 'CN=localhost' does not match "
        "'example.org'",
        "report: not trusted, closing; the default mode would have sent BAD_CERTIFICATE",
        "callback: status INVALID | SIGNER_NOT_FOUND, pinned leaf: True",
        "callback: accepted; stream.verification keeps INVALID | SIGNER_NOT_FOUND",
        "callback: status INVALID | SIGNER_NOT_FOUND, pinned leaf: False",
        "callback: refused the other server, sent UNKNOWN_CA",
    ),
}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    # SSLKEYLOGFILE would replace the key log that key_log.py configures.
    env.pop("SSLKEYLOGFILE", None)
    return env


def _run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, *args],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        env=_env(),
        timeout=TIMEOUT,
        check=False,
    )


def _assert_in_order(output: str, expected: tuple[str, ...]) -> None:
    position = 0
    for fragment in expected:
        found = output.find(fragment, position)
        assert found >= 0, f"{fragment!r} missing (in order) from:\n{output}"
        position = found + len(fragment)


def test_every_example_has_expected_output() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED_OUTPUT)


@pytest.mark.parametrize("name", sorted(EXPECTED_OUTPUT))
def test_example_runs_and_prints_what_the_docs_say(name: str) -> None:
    result = _run(str(EXAMPLES / name))
    output = result.stdout.decode()
    assert result.returncode == 0, f"{name} failed:\n{output}\n{result.stderr.decode()}"
    _assert_in_order(output, EXPECTED_OUTPUT[name])


def test_demo_command_prints_what_was_negotiated() -> None:
    result = _run("-m", "triotls", "demo")
    output = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    _assert_in_order(
        output,
        (
            "server listening on 127.0.0.1:",
            "client: TLSv1.3, TLS_AES_128_GCM_SHA256, group X25519MLKEM768",
            "client: verified chain CN=localhost <- CN=triotls throwaway CA",
            "server: TLSv1.3",
            "the server closed with close_notify",
        ),
    )


def _free_port() -> int:
    # A small race (another process may take the port before the server binds
    # it) is acceptable on a test machine's loopback interface.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _LineReader:
    """Read a child's stderr in a thread, so the test can wait with a timeout."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None  # started with stderr=PIPE
        self._pipe = process.stderr
        self._lines: queue.Queue[str] = queue.Queue()
        self._seen: list[str] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for raw in self._pipe:
            self._lines.put(raw.decode())

    def wait_for(self, fragment: str) -> str:
        """The first line containing ``fragment``."""
        while True:
            try:
                line = self._lines.get(timeout=TIMEOUT)
            except queue.Empty:
                pytest.fail(f"no {fragment!r} from the child; it said: {''.join(self._seen)}")
            self._seen.append(line)
            if fragment in line:
                return line

    def close(self) -> None:
        """After the child exited: let the thread see EOF, then close the pipe."""
        self._thread.join(timeout=TIMEOUT)
        self._pipe.close()


def test_cli_server_and_client_echo_over_loopback(tmp_path: Path) -> None:
    port = _free_port()
    ca_file = tmp_path / "ca.pem"
    command = ["-m", "triotls", "server", "--port", str(port), "--write-ca", str(ca_file)]
    server = subprocess.Popen(
        [sys.executable, *command],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        cwd=ROOT,
        env=_env(),
    )
    stderr = _LineReader(server)
    try:
        assert f"listening on 127.0.0.1:{port}" in stderr.wait_for("listening on")
        result = _run(
            "-m",
            "triotls",
            "client",
            f"127.0.0.1:{port}",
            "--cafile",
            str(ca_file),
            stdin=b"hello over the command line\n",
        )
        assert result.returncode == 0, result.stderr.decode()
        assert result.stdout == b"hello over the command line\n"
        _assert_in_order(result.stderr.decode(), ("client: TLSv1.3", "verified chain"))
    finally:
        server.terminate()
        try:
            server.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        stderr.close()
