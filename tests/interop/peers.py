"""Real TLS 1.3 peers for interop tests: launch, talk, report, clean up.

Theory of operation
-------------------
Every peer is a context manager. Entering it starts the peer (a subprocess or a
thread) and, for servers, returns once the port accepts connections; leaving
it stops the peer for good (terminate, bounded wait, kill, bounded wait; sockets
closed, threads joined with a timeout) so no test leaks a process. When the
``with`` body raises, the peer's command line and output are printed, so
pytest shows them under "Captured stdout" next to the failure.

After the conversation, ``finish()`` waits (bounded) for the peer to end the
connection by itself and returns a :class:`PeerReport`: what the peer received
and what it says was negotiated, in wire code points (plain ``int``) so a test
can compare them with ``triotls.engine.enums`` members directly.

Servers echo what they receive and answer the client's close_notify with their
own. Clients send ``data``, read until the same number of bytes came back, then
close (``close="client"``) or wait for the server's close_notify
(``close="server"``).

How each peer is driven (the quirks that matter):

* ``openssl s_server`` has no echo mode for arbitrary bytes (``-rev`` reverses
  lines, ``-www`` speaks HTTP). With ``-quiet`` its stdout carries exactly the
  application data it received and its stdin is what it sends, and stdin is
  not parsed for command letters (without ``-quiet`` a line starting with
  ``Q`` kills the server). A pump thread copies stdout to stdin: that is the
  echo. ``-naccept 1`` makes it exit after the connection, having answered
  close_notify. ``-quiet`` also silences the "ACCEPT" line, so readiness is
  seen in ``/proc/net/tcp`` (a probe connection would use up ``-naccept``).
  ``commands=True`` leaves ``-quiet`` out on purpose, for tests that drive
  s_server by its command letters ("c" asks for a client certificate after
  the handshake, "k"/"K" send a KeyUpdate); stdout, then a file, mixes its
  status lines (block-buffered) with the data it received (written
  unbuffered, so a test can wait for it).
* ``openssl s_client`` needs ``-nocommands`` (even ``-brief`` obeys ``Q``) and
  ``-no_ign_eof`` after ``-quiet`` so closing its stdin sends close_notify. It
  then exits at once, without waiting for the server's close_notify, so tests
  that want to see both close_notify alerts use ``close="server"``: on the
  server's close_notify, s_client answers with its own and exits.
* Both openssl tools write a protocol trace (``-trace -msgfile``) which we
  parse for the hello retry, cipher suite, group, ALPN, signature scheme and
  alerts; ``-brief`` output lacks the group and ALPN.
* ``gnutls-serv --echo`` is line-oriented: it holds data until a newline
  arrives and treats it as a C string, so echoed data must end with ``\n``
  and contain no NUL (a NUL truncates the echo, data without a newline is
  never echoed). It rewrites CRLF to LF unless given ``--crlf``. It binds
  0.0.0.0 and :: (no option to choose). Its negotiated-parameter summary goes
  to stdout, block-buffered until it exits, so it is read after stopping it;
  ``-d 5`` puts hello-retry and alert lines on stderr. ``-a`` stops it from
  sending a CertificateRequest, which it does by default.
* ``gnutls-cli`` prints its summary to stdout unless ``--logfile`` is given;
  with it, stdout is exactly the received data. Closing its stdin sends
  close_notify and it waits for the server's ("Peer has closed the GnuTLS
  connection"). We connect to 127.0.0.1 and pass ``--sni-hostname`` and
  ``--verify-hostname``, since "localhost" may resolve to ::1 first.
* Python's ``ssl`` (OpenSSL 3.0) reports no group; the peers here read it,
  and alerts, from ``SSLContext._msg_callback`` (private but stable since
  3.8). ``set_ecdh_curve`` restricts the TLS 1.3 groups too, which is how a
  Python server forces a HelloRetryRequest.
* pyOpenSSL runs on the OpenSSL inside the ``cryptography`` wheel, which
  offers X25519MLKEM768 by default: the post-quantum peer.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Final, Literal, NoReturn, TypeVar

import pytest
from typing_extensions import Self

from tests.interop.wire import WireFormatError, server_hello_from_message
from tests.support.certs import PKIFiles

if TYPE_CHECKING:  # pyOpenSSL is optional at run time
    from OpenSSL.SSL import Connection as OpenSSLConnection
    from OpenSSL.SSL import Context as OpenSSLContext
    from OpenSSL.SSL import _NoOverlappingProtocols as NoOverlap

__all__ = [
    "CLIENT_HOST",
    "GnuTLSClient",
    "GnuTLSServer",
    "HandshakeMessageSeen",
    "OpenSSLClient",
    "OpenSSLServer",
    "PeerReport",
    "PyOpenSSLClient",
    "PyOpenSSLServer",
    "PythonSSLClient",
    "PythonSSLServer",
    "free_port",
    "gnutls_debug_handshake",
    "gnutls_priority",
    "in_ci",
    "missing_peer_reasons",
    "openssl_trace_handshake",
    "require_binary",
    "require_pyopenssl",
]

CLIENT_HOST: Final = "127.0.0.1"
"""Where every peer listens and connects."""

CloseMode = Literal["client", "server"]
_T = TypeVar("_T")

_START_TIMEOUT: Final = 5.0
_STOP_TIMEOUT: Final = 3.0
_FAILURE_GRACE: Final = 0.3
_PORT_ATTEMPTS: Final = 3

_missing_peers: list[str] = []


# --------------------------------------------------------------------------- #
# Availability: fail in CI, skip (and say why) locally.


def in_ci() -> bool:
    """Whether the ``CI`` environment variable is set (to anything but false)."""
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def require_binary(name: str) -> str:
    """Return the path of peer binary ``name``, or fail/skip the test.

    A missing peer fails the test when ``CI`` is set: CI must install every
    peer. Locally the test is skipped, and the reason is also listed at the end
    of the pytest run (see ``conftest.py``).
    """
    path = shutil.which(name)
    if path is None:
        _missing(
            f"peer binary {name!r} not found on PATH (Debian: apt-get install "
            f"{'gnutls-bin' if name.startswith('gnutls') else 'openssl'})"
        )
    return path


def require_pyopenssl() -> None:
    """Fail (CI) or skip (locally) unless pyOpenSSL can be imported."""
    try:
        import OpenSSL.SSL  # noqa: F401
    except ImportError as exc:
        _missing(f"pyOpenSSL is not importable ({exc}); pip install pyOpenSSL")


def missing_peer_reasons() -> list[str]:
    """Reasons recorded by :func:`require_binary` for skipped tests (deduplicated)."""
    return sorted(set(_missing_peers))


def _missing(reason: str) -> NoReturn:
    if in_ci():
        pytest.fail(f"{reason}; CI is set, so a missing peer is an error", pytrace=False)
    _missing_peers.append(reason)
    print(f"SKIP: {reason}", file=sys.stderr)
    pytest.skip(reason)


# --------------------------------------------------------------------------- #
# Reports.


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerReport:
    """What a peer says happened. ``None`` means the peer does not report it.

    Attributes:
        peer: which peer ("openssl s_server", "python ssl client", ...).
        handshake_ok: the peer completed the handshake.
        received: application data the peer received.
        version: e.g. "TLSv1.3".
        cipher_suite: code point of the negotiated suite.
        group: code point of the key exchange group.
        alpn: the negotiated ALPN protocol ("" if none was negotiated).
        signature_scheme: code point the server signed its CertificateVerify with.
        hello_retry: a HelloRetryRequest was sent or received.
        sent_close_notify: the peer sent close_notify.
        received_close_notify: the peer received close_notify.
        alerts_sent: alerts the peer sent, as (level, description) code points.
        alerts_received: alerts the peer received.
        returncode: exit status of a subprocess peer (None for threads, or if killed).
        error: the peer's own error message, if it failed.
        log: everything the peer printed, for diagnostics.
    """

    peer: str
    handshake_ok: bool
    received: bytes | None = None
    version: str | None = None
    cipher_suite: int | None = None
    group: int | None = None
    alpn: str | None = None
    signature_scheme: int | None = None
    hello_retry: bool | None = None
    sent_close_notify: bool | None = None
    received_close_notify: bool | None = None
    alerts_sent: tuple[tuple[int, int], ...] = ()
    alerts_received: tuple[tuple[int, int], ...] = ()
    returncode: int | None = None
    error: str | None = None
    log: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class HandshakeMessageSeen:
    """One handshake message a peer logged, from the peer's point of view.

    Attributes:
        direction: "sent" or "received" by the peer.
        name: the type in snake case, as in RFC 8446 ("certificate_request").
        length: the body length, without the 4-byte handshake header.
    """

    direction: Literal["sent", "received"]
    name: str
    length: int


# Names peers print, mapped to code points (RFC 8446, RFC 8422, RFC 7919,
# draft-kwiatkowski-tls-ecdhe-mlkem).
_SUITES_BY_NAME: Final[dict[str, int]] = {
    "TLS_AES_128_GCM_SHA256": 0x1301,
    "TLS_AES_256_GCM_SHA384": 0x1302,
    "TLS_CHACHA20_POLY1305_SHA256": 0x1303,
    "TLS_AES_128_CCM_SHA256": 0x1304,
    "TLS_AES_128_CCM_8_SHA256": 0x1305,
}
_GNUTLS_CIPHERS: Final[dict[str, int]] = {
    "AES-128-GCM": 0x1301,
    "AES-256-GCM": 0x1302,
    "CHACHA20-POLY1305": 0x1303,
    "AES-128-CCM": 0x1304,
    "AES-128-CCM-8": 0x1305,
}
_GROUPS_BY_NAME: Final[dict[str, int]] = {
    "secp256r1": 0x0017,
    "prime256v1": 0x0017,
    "p-256": 0x0017,
    "secp384r1": 0x0018,
    "p-384": 0x0018,
    "secp521r1": 0x0019,
    "p-521": 0x0019,
    "x25519": 0x001D,
    "x448": 0x001E,
    "ffdhe2048": 0x0100,
    "ffdhe3072": 0x0101,
    "ffdhe4096": 0x0102,
    "x25519mlkem768": 0x11EC,
    "x25519-mlkem768": 0x11EC,
    "secp256r1mlkem768": 0x11EB,
}
_GNUTLS_SIGNATURES: Final[dict[str, int]] = {
    "ECDSA-SECP256R1-SHA256": 0x0403,
    "ECDSA-SECP384R1-SHA384": 0x0503,
    "ECDSA-SECP521R1-SHA512": 0x0603,
    "RSA-PSS-RSAE-SHA256": 0x0804,
    "RSA-PSS-RSAE-SHA384": 0x0805,
    "RSA-PSS-RSAE-SHA512": 0x0806,
    "EdDSA-Ed25519": 0x0807,
    "EdDSA-Ed448": 0x0808,
    "RSA-PSS-SHA256": 0x0809,
    "RSA-PSS-SHA384": 0x080A,
    "RSA-PSS-SHA512": 0x080B,
}


def group_code(name: str) -> int | None:
    """Map a group name as peers print it ("X25519", "P-384", ...) to its code point."""
    return _GROUPS_BY_NAME.get(name.strip().lower())


# --------------------------------------------------------------------------- #
# Ports and processes.


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((CLIENT_HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _is_listening(port: int) -> bool:
    # A passive check: connecting to see would use up s_server's -naccept.
    wanted = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[1].endswith(wanted) and fields[3] == "0A":
                return True
    return False


def _wait_listening(port: int, process: _Process, timeout: float) -> bool:
    """Wait until ``port`` listens; False if the process died first (port taken?)."""
    if not Path("/proc/net/tcp").exists():
        pytest.fail("interop server readiness checks need Linux /proc/net/tcp")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _is_listening(port):
            return True
        if process.popen.poll() is not None:
            return False
        time.sleep(0.005)
    raise TimeoutError(
        f"{process.name} did not listen on port {port} within {timeout}s\n{process.describe()}"
    )


class _Process:
    """A peer subprocess; stdout/stderr go to files unless piped."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        workdir: Path,
        *,
        pipe_stdin: bool,
        pipe_stdout: bool,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.stdout_path = workdir / f"{_slug(name)}.stdout"
        self.stderr_path = workdir / f"{_slug(name)}.stderr"
        self._stdout_file = None if pipe_stdout else self.stdout_path.open("wb")
        self._stderr_file = self.stderr_path.open("wb")
        self.popen = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE if pipe_stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE if pipe_stdout else self._stdout_file,
            stderr=self._stderr_file,
            cwd=workdir,
            start_new_session=True,  # Ctrl-C on pytest must not hit the peer first
        )

    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` for the process to exit; its status or None."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, *, graceful: bool = True) -> int | None:
        """Terminate (SIGTERM, then SIGKILL) and reap; return the exit status."""
        if self.popen.poll() is None and graceful:
            self.popen.send_signal(signal.SIGTERM)
            self.wait(_STOP_TIMEOUT)
        if self.popen.poll() is None:
            self.popen.kill()
            self.wait(_STOP_TIMEOUT)
        for pipe in (self.popen.stdin, self.popen.stdout):
            if pipe is not None:
                # A pump thread may still hold it; the process is gone anyway.
                with contextlib.suppress(OSError):
                    pipe.close()
        for handle in (self._stdout_file, self._stderr_file):
            if handle is not None:
                handle.close()
        return self.popen.returncode

    def stderr_text(self) -> str:
        return _read_text(self.stderr_path)

    def stdout_text(self) -> str:
        return _read_text(self.stdout_path)

    def describe(self) -> str:
        parts = [f"$ {' '.join(self.argv)}", f"returncode: {self.popen.poll()}"]
        if self._stdout_file is not None:
            parts.append(f"--- stdout ---\n{_tail(self.stdout_text())}")
        parts.append(f"--- stderr ---\n{_tail(self.stderr_text())}")
        return "\n".join(parts)


class _Pump(threading.Thread):
    """Reads a subprocess's stdout; optionally writes to its stdin.

    Modes: "echo" copies everything read back to stdin (s_server); "client"
    writes ``data``, reads until as many bytes came back, then closes stdin if
    ``close_stdin`` (s_client, gnutls-cli), and reads on until EOF.
    """

    def __init__(
        self,
        process: _Process,
        *,
        mode: Literal["echo", "client"],
        data: bytes = b"",
        close_stdin: bool = False,
    ) -> None:
        super().__init__(name=f"pump {process.name}", daemon=True)
        self._process = process
        self._mode = mode
        self._data = data
        self._close_stdin = close_stdin
        self.received = bytearray()
        self.echo_complete = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        stdin = self._process.popen.stdin
        stdout = self._process.popen.stdout
        assert stdin is not None and stdout is not None  # both piped by the launcher
        try:
            if self._mode == "client":
                _write_all(stdin, self._data)
                if not self._data:
                    self._echo_done(stdin)
            fd = stdout.fileno()
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                self.received += chunk
                if self._mode == "echo":
                    _write_all(stdin, chunk)
                elif len(self.received) >= len(self._data) and not self.echo_complete.is_set():
                    self._echo_done(stdin)
        except (OSError, ValueError) as exc:
            # The process exited (or was stopped) under us; what we read stands.
            self.error = exc

    def _echo_done(self, stdin: IO[bytes]) -> None:
        self.echo_complete.set()
        if self._close_stdin:
            stdin.close()


def _write_all(stream: IO[bytes], data: bytes) -> None:
    stream.write(data)
    stream.flush()


# --------------------------------------------------------------------------- #
# OpenSSL command-line peers.


class _SubprocessPeer:
    """Shared lifecycle of subprocess peers."""

    name: str = "peer"

    def __init__(self, workdir: Path, timeout: float, log: _LogFile | None = None) -> None:
        self._workdir = workdir
        self._timeout = timeout
        self._log = log
        self._process: _Process | None = None
        self._pump: _Pump | None = None

    @property
    def process(self) -> _Process:
        """The running subprocess."""
        if self._process is None:
            raise RuntimeError(f"{self.name} was not started; use it as a context manager")
        return self._process

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None:
            if exc_type is not None:
                # Let the peer log its side of the failure (an alert) first.
                self._process.wait(_FAILURE_GRACE)
            self._process.stop()
            if self._pump is not None:
                self._pump.join(_STOP_TIMEOUT)
            if exc_type is not None:
                print(f"===== {self.name} =====\n{self.describe()}")

    def describe(self) -> str:
        """Command line, exit status and output of the peer, for failure messages."""
        if self._process is None:
            return f"{self.name}: not started"
        text = self._process.describe()
        if self._pump is not None:
            text += f"\n--- application data received ---\n{bytes(self._pump.received)!r}"
        return text + self._extra_log()

    def _extra_log(self) -> str:
        if self._log is None:
            return ""
        return f"\n--- {self._log.title} ---\n{_tail(_read_text(self._log.path), self._log.lines)}"

    def _start(self, argv: Sequence[str], *, pipe_stdin: bool, pipe_stdout: bool) -> _Process:
        self._process = _Process(
            self.name, argv, self._workdir, pipe_stdin=pipe_stdin, pipe_stdout=pipe_stdout
        )
        return self._process

    def _start_server(
        self, argv: Callable[[int], list[str]], *, pipe_stdin: bool, pipe_stdout: bool
    ) -> int:
        """Start the server ``argv(port)`` on a free port; return the port once it listens.

        With ``pipe_stdout`` a pump echoes the server's stdout to its stdin.
        """
        for _attempt in range(_PORT_ATTEMPTS):
            port = free_port()
            process = self._start(argv(port), pipe_stdin=pipe_stdin, pipe_stdout=pipe_stdout)
            if pipe_stdout:
                self._pump = _Pump(process, mode="echo")
                self._pump.start()
            if _wait_listening(port, process, _START_TIMEOUT):
                return port
            process.stop()  # most likely the port was taken meanwhile; retry
        raise RuntimeError(f"{self.name} failed to start\n{self.describe()}")

    def _start_client(self, argv: Sequence[str], *, data: bytes, close_stdin: bool) -> None:
        """Start the client ``argv`` with a pump that sends ``data`` and reads the echo."""
        process = self._start(argv, pipe_stdin=True, pipe_stdout=True)
        self._pump = _Pump(process, mode="client", data=data, close_stdin=close_stdin)
        self._pump.start()

    def _wait_exit(self, timeout: float | None) -> int | None:
        process = self.process
        status = process.wait(self._timeout if timeout is None else timeout)
        if status is None:
            process.stop()
        if self._pump is not None:
            self._pump.join(_STOP_TIMEOUT)
        return process.popen.returncode


@dataclass(frozen=True, slots=True)
class _LogFile:
    """A log a subprocess peer writes besides stdout/stderr, shown on failure."""

    path: Path
    title: str
    lines: int


class _OpenSSLPeer(_SubprocessPeer):
    """An openssl tool writing its protocol trace (``-trace -msgfile``) to ``trace_path``."""

    def __init__(self, workdir: Path, timeout: float, trace_path: Path) -> None:
        super().__init__(workdir, timeout, _LogFile(trace_path, "trace (tail)", 80))
        self._trace_path = trace_path

    def finish(self, timeout: float | None = None) -> PeerReport:
        """Wait (bounded) for the tool to end the connection and exit; report it."""
        returncode = self._wait_exit(timeout)
        trace = _OpenSSLTrace(_read_text(self._trace_path))
        close_notify = (1, 0)
        return PeerReport(
            peer=self.name,
            # Both Finished messages went by: the handshake completed.
            handshake_ok=trace.finished_seen >= 2,
            received=bytes(self._pump.received) if self._pump is not None else None,
            version=trace.version,
            cipher_suite=trace.cipher_suite,
            group=trace.group,
            alpn=trace.alpn if trace.alpn is not None else "",
            signature_scheme=trace.signature_scheme,
            hello_retry=trace.hello_retry,
            sent_close_notify=close_notify in trace.alerts_sent,
            received_close_notify=close_notify in trace.alerts_received,
            alerts_sent=tuple(trace.alerts_sent),
            alerts_received=tuple(trace.alerts_received),
            returncode=returncode,
            log=self.describe(),
        )

    def handshake_messages(self) -> list[HandshakeMessageSeen]:
        """The handshake messages in the whole trace (``log`` shows only its tail)."""
        return openssl_trace_handshake(_read_text(self._trace_path))


class _OpenSSLTrace:
    """What an ``openssl -trace`` log says about one connection."""

    # RFC 8446 §4.1.3, as s_server/s_client print it.
    _HRR_TIME = "gmt_unix_time=0xCF21AD74"
    _HRR_BYTES = "E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C"

    def __init__(self, text: str) -> None:
        self.hello_retry = False
        self.cipher_suite: int | None = None
        self.group: int | None = None
        self.alpn: str | None = None
        self.signature_scheme: int | None = None
        self.version: str | None = None
        self.alerts_sent: list[tuple[int, int]] = []
        self.alerts_received: list[tuple[int, int]] = []
        self.finished_seen = 0
        self._parse(text)

    def _parse(self, text: str) -> None:
        direction = ""
        message = ""
        extension = ""
        hrr_time = False
        for line in text.splitlines():
            if line.startswith(("Sent", "Received")):
                direction = "sent" if line.startswith("Sent") else "received"
                message = extension = ""
                continue
            msg = re.match(r"^    (\w+), Length=\d+", line)
            if msg:
                message, extension = msg.group(1), ""
                if message == "Finished":
                    self.finished_seen += 1
                continue
            ext = re.search(r"extension_type=\w+\((\d+)\)", line)
            if ext:
                extension = ext.group(1)
                continue
            alert = re.search(r"Level=\w+\((\d+)\), description=.*\((\d+)\)\s*$", line)
            if alert:
                entry = (int(alert.group(1)), int(alert.group(2)))
                (self.alerts_sent if direction == "sent" else self.alerts_received).append(entry)
                continue
            if message == "ServerHello":
                self._server_hello_line(line, extension)
                if self._HRR_TIME in line:
                    hrr_time = True
                elif hrr_time and "random_bytes" in line:
                    hrr_time = False
                    if self._HRR_BYTES in line.upper():
                        self.hello_retry = True
            elif message == "EncryptedExtensions" and extension == "16":
                name = line.strip()
                if name and "=" not in name and ":" not in name:
                    self.alpn = name
            elif message == "CertificateVerify":
                sig = re.search(r"Signature Algorithm: .*\((0x[0-9a-fA-F]{4})\)", line)
                if sig:
                    self.signature_scheme = int(sig.group(1), 16)

    def _server_hello_line(self, line: str, extension: str) -> None:
        suite = re.search(r"cipher_suite \{0x([0-9A-Fa-f]{2}), 0x([0-9A-Fa-f]{2})\}", line)
        if suite:
            self.cipher_suite = int(suite.group(1) + suite.group(2), 16)
        elif extension == "51":
            group = re.search(r"NamedGroup: .*\((\d+)\)\s*$", line)
            if group:
                self.group = int(group.group(1))
        elif extension == "43" and "(772)" in line:
            self.version = "TLSv1.3"


def openssl_trace_handshake(trace: str) -> list[HandshakeMessageSeen]:
    """The handshake messages in an ``openssl -trace`` log, in order.

    The trace prints decrypted messages as "    CertificateRequest, Length=115"
    under a "Sent Record" or "Received Record" line.
    """
    seen: list[HandshakeMessageSeen] = []
    direction: Literal["sent", "received"] = "received"
    for line in trace.splitlines():
        if line.startswith(("Sent", "Received")):
            direction = "sent" if line.startswith("Sent") else "received"
        elif match := re.match(r"^    ([A-Z]\w*), Length=(\d+)$", line):
            name = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", match.group(1)).lower()
            seen.append(HandshakeMessageSeen(direction, name, int(match.group(2))))
    return seen


class OpenSSLServer(_OpenSSLPeer):
    """``openssl s_server``, TLS 1.3 only, echoing what it receives.

    Args:
        files: certificate chain and key to serve (and CA for client certs).
        workdir: where logs and traces go.
        alpn: protocols to accept, in the server's preference order.
        groups: ``-groups`` names ("X25519", "P-256", "P-384"); empty = default.
        ciphersuites: ``-ciphersuites`` names; empty = default.
        request_client_cert: send a CertificateRequest (``-verify 1``).
        extra_args: appended to the command line.
        commands: instead of echoing, leave out ``-quiet`` so that s_server
            obeys command letters on stdin (send them with :meth:`command`)
            and writes its status lines and the data it receives to stdout
            (read with :meth:`wait_output`); ``finish()`` then reports
            ``received`` as None.
        timeout: bound for starting and for waiting the connection out.
    """

    name = "openssl s_server"

    def __init__(
        self,
        files: PKIFiles,
        *,
        workdir: Path,
        alpn: Sequence[str] = (),
        groups: Sequence[str] = (),
        ciphersuites: Sequence[str] = (),
        request_client_cert: bool = False,
        extra_args: Sequence[str] = (),
        commands: bool = False,
        timeout: float = 10.0,
    ) -> None:
        trace_path = workdir / "s_server.trace"
        super().__init__(workdir, timeout, trace_path)
        self._files = files
        self._commands = commands
        options = ["-alpn", ",".join(alpn)] if alpn else []
        options += ["-groups", ":".join(groups)] if groups else []
        options += ["-ciphersuites", ":".join(ciphersuites)] if ciphersuites else []
        if request_client_cert:
            options += ["-verify", "1", "-CAfile", str(files.ca)]
        self._options = [*options, *extra_args]
        self.port = 0

    def __enter__(self) -> Self:
        openssl = require_binary("openssl")

        def argv(port: int) -> list[str]:
            return [
                openssl, "s_server",
                "-accept", f"{CLIENT_HOST}:{port}",
                "-naccept", "1",
                "-tls1_3",
                "-cert", str(self._files.chain),
                "-key", str(self._files.key),
                "-trace", "-msgfile", str(self._trace_path),
                *([] if self._commands else ["-quiet"]),
                *self._options,
            ]  # fmt: skip

        # With commands, stdout goes to a file: nothing has to drain it.
        self.port = self._start_server(argv, pipe_stdin=True, pipe_stdout=not self._commands)
        return self

    def command(self, letter: str) -> None:
        """Send a command line ("c", "k", "K", ...) to s_server (``commands=True``).

        s_server acts on it when it next reads stdin, which it watches
        together with the connection.
        """
        if not self._commands:
            raise RuntimeError(f"{self.name} was started without commands=True")
        stdin = self.process.popen.stdin
        assert stdin is not None  # piped by __enter__
        _write_all(stdin, f"{letter}\n".encode())

    def wait_output(self, text: str, timeout: float | None = None) -> str:
        """Wait (bounded) until s_server's stdout contains ``text``; return all of it.

        Only with ``commands=True``. Received application data is written
        to stdout unbuffered, so it shows up as soon as s_server read it.

        Raises:
            TimeoutError: ``text`` did not appear in time, or s_server exited.
        """
        process = self.process
        deadline = time.monotonic() + (self._timeout if timeout is None else timeout)
        while True:
            output = process.stdout_text()
            if text in output:
                return output
            if process.popen.poll() is not None or time.monotonic() >= deadline:
                raise TimeoutError(f"{self.name} did not print {text!r} in time\n{self.describe()}")
            time.sleep(0.005)


class OpenSSLClient(_OpenSSLPeer):
    """``openssl s_client``, TLS 1.3 only: sends ``data``, expects it echoed.

    Args:
        ca_file: trust anchor; the server's chain and name are verified
            (``-verify_return_error``), so a bad chain fails the handshake.
        port: server port on 127.0.0.1.
        workdir: where logs and traces go.
        data: bytes to send once connected.
        server_name: SNI and the name to verify.
        alpn: protocols to offer.
        groups: ``-groups`` list; OpenSSL 3.0 sends a key share for the first.
        ciphersuites: ``-ciphersuites`` list.
        close: "server" waits for the server's close_notify (and s_client then
            sends its own); "client" sends close_notify after the echo and
            exits without waiting for the server's.
        timeout: bound for the whole conversation.
    """

    name = "openssl s_client"

    def __init__(
        self,
        ca_file: Path,
        port: int,
        *,
        workdir: Path,
        data: bytes,
        server_name: str = "localhost",
        alpn: Sequence[str] = (),
        groups: Sequence[str] = (),
        ciphersuites: Sequence[str] = (),
        close: CloseMode = "server",
        extra_args: Sequence[str] = (),
        timeout: float = 10.0,
    ) -> None:
        trace_path = workdir / "s_client.trace"
        super().__init__(workdir, timeout, trace_path)
        argv = [
            require_binary("openssl"), "s_client",
            "-connect", f"{CLIENT_HOST}:{port}",
            "-servername", server_name,
            "-verify_hostname", server_name,
            "-CAfile", str(ca_file),
            "-verify_return_error",
            "-tls1_3",
            "-quiet", "-no_ign_eof", "-nocommands",
            "-trace", "-msgfile", str(self._trace_path),
        ]  # fmt: skip
        if alpn:
            argv += ["-alpn", ",".join(alpn)]
        if groups:
            argv += ["-groups", ":".join(groups)]
        if ciphersuites:
            argv += ["-ciphersuites", ":".join(ciphersuites)]
        self._argv = argv + list(extra_args)
        self._data = data
        self._close = close

    def __enter__(self) -> Self:
        self._start_client(self._argv, data=self._data, close_stdin=self._close == "client")
        return self


# --------------------------------------------------------------------------- #
# GnuTLS command-line peers.


def gnutls_priority(
    *,
    ciphers: Sequence[str] = (),
    groups: Sequence[str] = (),
    signatures: Sequence[str] = (),
) -> str:
    """Build a TLS-1.3-only GnuTLS priority string.

    Args:
        ciphers: GnuTLS cipher names ("AES-128-GCM", "AES-256-GCM",
            "CHACHA20-POLY1305"), in preference order; empty = NORMAL's.
        groups: GnuTLS group names ("X25519", "SECP256R1", "SECP384R1").
        signatures: GnuTLS signature names ("ECDSA-SECP256R1-SHA256", ...).

    Returns:
        e.g. ``NORMAL:-VERS-ALL:+VERS-TLS1.3:-GROUP-ALL:+GROUP-SECP384R1``.
    """
    parts = ["NORMAL", "-VERS-ALL", "+VERS-TLS1.3"]
    if ciphers:
        parts += ["-CIPHER-ALL", *(f"+{c}" for c in ciphers)]
    if groups:
        parts += ["-GROUP-ALL", *(f"+GROUP-{g}" for g in groups)]
    if signatures:
        parts += ["-SIGN-ALL", *(f"+SIGN-{s}" for s in signatures)]
    return ":".join(parts)


class _GnuTLSLog:
    """What gnutls-serv/gnutls-cli print (summary) and log at ``-d 5``."""

    def __init__(self, summary: str, debug: str) -> None:
        self.version: str | None = None
        self.cipher_suite: int | None = None
        self.group: int | None = None
        self.signature_scheme: int | None = None
        self.alpn = ""
        self.handshake_ok = False
        description = re.search(
            r"- Description: \((TLS[\d.]+)-[^)]*\)-\((?:ECDHE|DHE)-([^)]*)\)"
            r"-\(([^)]*)\)-\(([^)]*)\)",
            summary,
        )
        if description:
            self.handshake_ok = True
            self.version = description.group(1).replace("TLS", "TLSv")
            self.group = group_code(description.group(2))
            self.signature_scheme = _GNUTLS_SIGNATURES.get(description.group(3))
            self.cipher_suite = _GNUTLS_CIPHERS.get(description.group(4))
        alpn = re.search(r"- Application protocol: (\S+)", summary)
        if alpn:
            self.alpn = alpn.group(1)
        self.hello_retry = "HELLO RETRY REQUEST" in debug
        self.alerts_sent = [
            (int(m.group(1)), int(m.group(2)))
            for m in re.finditer(r"Sending Alert\[(\d+)\|(\d+)\]", debug)
        ]
        self.alerts_received = [
            (int(m.group(1)), int(m.group(2)))
            for m in re.finditer(r"Alert\[(\d+)\|(\d+)\] - [^\n]* - was received", debug)
        ]
        self.peer_closed = "Peer has closed the GnuTLS connection" in summary
        # "*** Processing N bytes command" and the like are chatter, not errors.
        error = re.findall(
            r"^\*\*\* ((?:Fatal error|Handshake has failed|Received alert|Non fatal"
            r"|Server has terminated|.*[Ee]rror).*)$",
            summary + "\n" + debug,
            flags=re.MULTILINE,
        )
        self.error = "; ".join(error) if error else None

    def report(
        self,
        name: str,
        *,
        received: bytes | None,
        received_close_notify: bool,
        returncode: int | None,
        log: str,
    ) -> PeerReport:
        """The :class:`PeerReport` of peer ``name`` that logged this."""
        return PeerReport(
            peer=name,
            handshake_ok=self.handshake_ok,
            received=received,
            version=self.version,
            cipher_suite=self.cipher_suite,
            group=self.group,
            alpn=self.alpn,
            signature_scheme=self.signature_scheme,
            hello_retry=self.hello_retry,
            sent_close_notify=(1, 0) in self.alerts_sent,
            received_close_notify=received_close_notify,
            alerts_sent=tuple(self.alerts_sent),
            alerts_received=tuple(self.alerts_received),
            returncode=returncode,
            error=self.error,
            log=log,
        )


def gnutls_debug_handshake(debug: str) -> list[HandshakeMessageSeen]:
    """The handshake messages in a GnuTLS debug log (``-d 4`` or more), in order.

    GnuTLS logs "HSK[...]: CERTIFICATE REQUEST was queued [49 bytes]" (header
    included) for what it sends and "HSK[...]: CERTIFICATE (11) was received.
    Length 4[40], ..." (the body alone) for what it receives.
    """
    pattern = re.compile(
        r"HSK\[\w+\]: ([A-Z][A-Z ]*[A-Z])(?: \(\d+\))? was "
        r"(?:queued \[(\d+) bytes\]|received\. Length (\d+))"
    )
    seen: list[HandshakeMessageSeen] = []
    for match in pattern.finditer(debug):
        name = match.group(1).lower().replace(" ", "_")
        if match.group(2) is not None:
            seen.append(HandshakeMessageSeen("sent", name, int(match.group(2)) - 4))
        else:
            seen.append(HandshakeMessageSeen("received", name, int(match.group(3))))
    return seen


def _wait_until_quiet(process: _Process, quiet: float = 0.2, limit: float = 3.0) -> None:
    """Wait until ``process`` has written nothing for ``quiet`` s (at most ``limit`` s)."""
    deadline = time.monotonic() + limit
    sizes = (-1, -1)
    quiet_since = time.monotonic()
    while time.monotonic() < deadline and process.popen.poll() is None:
        now_sizes = (len(process.stdout_text()), len(process.stderr_text()))
        if now_sizes != sizes:
            sizes = now_sizes
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet:
            return
        time.sleep(0.02)


class GnuTLSServer(_SubprocessPeer):
    """``gnutls-serv --echo``, restricted to TLS 1.3 by the priority string.

    Args:
        files: certificate chain and key to serve.
        workdir: where logs go.
        priority: a priority string, e.g. from :func:`gnutls_priority`.
        alpn: protocols to accept.
        request_client_cert: let gnutls-serv send its (optional)
            CertificateRequest; by default ``-a`` disables it.
        timeout: bound for starting and stopping.
    """

    name = "gnutls-serv"

    def __init__(
        self,
        files: PKIFiles,
        *,
        workdir: Path,
        priority: str | None = None,
        alpn: Sequence[str] = (),
        request_client_cert: bool = False,
        extra_args: Sequence[str] = (),
        timeout: float = 10.0,
    ) -> None:
        super().__init__(workdir, timeout)
        options = [
            "--x509certfile", str(files.chain),
            "--x509keyfile", str(files.key),
            "--priority", priority or gnutls_priority(),
            "-d", "5",
        ]  # fmt: skip
        if not request_client_cert:
            options.append("--disable-client-cert")
        for proto in alpn:
            options += ["--alpn", proto]
        self._options = [*options, *extra_args]
        self.port = 0

    def __enter__(self) -> Self:
        binary = require_binary("gnutls-serv")
        self.port = self._start_server(
            lambda port: [binary, "--port", str(port), "--echo", "--crlf", *self._options],
            pipe_stdin=False,
            pipe_stdout=False,
        )
        return self

    def finish(self, timeout: float | None = None) -> PeerReport:
        """Stop the server (it serves forever) and report the connection.

        Call this after the client saw the server's close_notify: the server
        has nothing left to do then. Its summary is only flushed on exit.
        """
        process = self.process
        # The client may be done before gnutls-serv has read its last records
        # (a fatal alert, say): let the server's log settle before stopping it.
        _wait_until_quiet(process)
        # SIGTERM: gnutls-serv exits cleanly and flushes stdout ("Exiting via signal").
        process.stop()
        log = _GnuTLSLog(process.stdout_text(), process.stderr_text())
        return log.report(
            self.name,
            received=None,  # echoed, not reported
            received_close_notify=(1, 0) in log.alerts_received,
            returncode=process.popen.returncode,
            log=self.describe(),
        )

    def handshake_messages(self) -> list[HandshakeMessageSeen]:
        """The handshake messages in the whole debug log (``log`` shows only its tail).

        Complete only after :meth:`finish`.
        """
        return gnutls_debug_handshake(self.process.stderr_text())


class GnuTLSClient(_SubprocessPeer):
    """``gnutls-cli``: sends ``data``, expects it echoed, then sends close_notify.

    After closing its stdin, gnutls-cli sends close_notify and waits for the
    server's before it exits.

    Args:
        ca_file: trust anchor; chain and name ``server_name`` are verified.
        port: server port on 127.0.0.1.
        workdir: where logs go.
        data: bytes to send once connected.
        server_name: SNI and the name to verify.
        priority: a priority string, e.g. from :func:`gnutls_priority`.
        alpn: protocols to offer.
        single_key_share: send one key share (for the first group) instead of
            GnuTLS's default of two.
        timeout: bound for the whole conversation.
    """

    name = "gnutls-cli"

    def __init__(
        self,
        ca_file: Path,
        port: int,
        *,
        workdir: Path,
        data: bytes,
        server_name: str = "localhost",
        priority: str | None = None,
        alpn: Sequence[str] = (),
        single_key_share: bool = False,
        extra_args: Sequence[str] = (),
        timeout: float = 10.0,
    ) -> None:
        self._logfile = workdir / "gnutls-cli.log"
        super().__init__(workdir, timeout, _LogFile(self._logfile, "logfile", 40))
        argv = [
            require_binary("gnutls-cli"), CLIENT_HOST,
            "--port", str(port),
            "--sni-hostname", server_name,
            "--verify-hostname", server_name,
            "--x509cafile", str(ca_file),
            "--priority", priority or gnutls_priority(),
            "--logfile", str(self._logfile),
            "-d", "5",
        ]  # fmt: skip
        for proto in alpn:
            argv += ["--alpn", proto]
        if single_key_share:
            argv.append("--single-key-share")
        self._argv = argv + list(extra_args)
        self._data = data

    def __enter__(self) -> Self:
        self._start_client(self._argv, data=self._data, close_stdin=True)
        return self

    def finish(self, timeout: float | None = None) -> PeerReport:
        """Wait for gnutls-cli to exit (bounded); report the connection."""
        returncode = self._wait_exit(timeout)
        log = _GnuTLSLog(_read_text(self._logfile), self.process.stderr_text())
        assert self._pump is not None  # set by __enter__
        return log.report(
            self.name,
            received=bytes(self._pump.received),
            received_close_notify=log.peer_closed or (1, 0) in log.alerts_received,
            returncode=returncode,
            log=self.describe(),
        )


# --------------------------------------------------------------------------- #
# In-process peers (threads): Python's ssl and pyOpenSSL.


class _Observed:
    """Hello, group and alerts seen through Python's ssl message callback."""

    def __init__(self) -> None:
        self.hello_retry = False
        self.cipher_suite: int | None = None
        self.group: int | None = None
        self.alerts_sent: list[tuple[int, int]] = []
        self.alerts_received: list[tuple[int, int]] = []
        self.notes: list[str] = []

    def callback(  # noqa: PLR0917  # the signature ssl._msg_callback calls
        self,
        conn: object,
        direction: str,
        version: object,
        content_type: int,
        msg_type: int,
        data: bytes,
    ) -> None:
        """``SSLContext._msg_callback``: record hellos and alerts."""
        del conn, version
        if content_type == 21 and len(data) == 2:
            alert = (data[0], data[1])
            (self.alerts_sent if direction == "write" else self.alerts_received).append(alert)
        elif content_type == 22 and msg_type == 2:
            try:
                hello = server_hello_from_message(data)
            except WireFormatError as exc:
                self.notes.append(f"unparsable ServerHello: {exc}")
                return
            if hello.is_hello_retry_request:
                self.hello_retry = True
            else:
                self.cipher_suite = hello.cipher_suite
                self.group = hello.group


@dataclass(slots=True)
class _Exchange:
    """How far an in-process peer's conversation got."""

    received: bytearray = field(default_factory=bytearray)
    sent_close: bool = False
    got_close: bool = False
    error: str | None = None


class _ThreadPeer:
    """Shared lifecycle of in-process peers running in a thread.

    Entering runs :meth:`_converse` in the thread, which gets its socket from
    :meth:`_open`: servers call :meth:`_listen` in ``__init__`` and accept
    one connection; clients (given ``port``) connect to it.
    """

    name: str = "thread peer"

    def __init__(self, timeout: float, port: int = 0) -> None:
        self._timeout = timeout
        self._port = port
        self._thread: threading.Thread | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._report: PeerReport | None = None
        self._failure: str | None = None
        self._listener: socket.socket | None = None

    def __enter__(self) -> Self:
        self._run_thread(self._converse)
        return self

    def _converse(self) -> PeerReport:
        raise NotImplementedError

    def _listen(self) -> int:
        """Listen on a free port of 127.0.0.1; return the port."""
        self._listener = self._track(socket.create_server((CLIENT_HOST, 0)))
        self._listener.settimeout(self._timeout)
        port: int = self._listener.getsockname()[1]
        return port

    def _open(self) -> socket.socket:
        """Accept the one connection (servers) or connect to ``port`` (clients)."""
        if self._listener is None:
            return self._track(socket.create_connection((CLIENT_HOST, self._port), self._timeout))
        raw, _addr = self._listener.accept()
        self._track(raw)
        raw.settimeout(self._timeout)
        return raw

    def _run_thread(self, target: Callable[[], PeerReport]) -> None:
        def body() -> None:
            try:
                self._report = target()
            except BaseException as exc:
                self._failure = f"{type(exc).__name__}: {exc}"
            finally:
                # Close at once: s_client lingers up to 0.5 s for the TCP FIN.
                self._close_sockets()

        self._thread = threading.Thread(target=body, name=self.name, daemon=True)
        self._thread.start()

    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.append(sock)
        return sock

    def _close_sockets(self) -> None:
        with self._lock:
            for sock in self._sockets:
                # shutdown() wakes a thread blocked in recv(); close() alone does
                # not. It fails on a listener or a socket already gone: fine.
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()

    def finish(self, timeout: float | None = None) -> PeerReport:
        """Wait (bounded) for the peer's conversation to end; report it."""
        assert self._thread is not None, "use the peer as a context manager"
        self._thread.join(self._timeout if timeout is None else timeout)
        if self._thread.is_alive():
            self._close_sockets()  # unblocks the thread
            self._thread.join(_STOP_TIMEOUT)
            return PeerReport(
                peer=self.name,
                handshake_ok=False,
                error=f"{self.name} did not finish within {self._timeout}s",
            )
        if self._report is None:
            return PeerReport(peer=self.name, handshake_ok=False, error=self._failure)
        return self._report

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._thread is not None and exc_type is not None:
            # Let the peer take in our side of the failure (an alert) first.
            self._thread.join(_FAILURE_GRACE)
        self._close_sockets()
        if self._thread is not None:
            self._thread.join(_STOP_TIMEOUT)
        if exc_type is not None:
            print(f"===== {self.name} =====\nreport: {self._report}\nfailure: {self._failure}")


def _python_context(
    *,
    server: bool,
    files: PKIFiles,
    alpn: Sequence[str],
    ecdh_curve: str | None,
    observed: _Observed,
) -> ssl.SSLContext:
    if server:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(files.chain), str(files.key))
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cafile=str(files.ca))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if ecdh_curve is not None:
        # With OpenSSL 3 this sets the group list, TLS 1.3 included.
        ctx.set_ecdh_curve(ecdh_curve)
    # Private but present since Python 3.8 (Lib/test/test_ssl.py relies on it);
    # typeshed does not declare it, hence setattr.
    setattr(ctx, "_msg_callback", observed.callback)  # noqa: B010
    return ctx


@dataclass(frozen=True, slots=True)
class _Negotiated:
    """Read right after the handshake: ``unwrap()`` forgets it all."""

    version: str | None
    cipher_suite: int | None
    alpn: str

    @classmethod
    def of(cls, tls: ssl.SSLSocket) -> _Negotiated:
        cipher = tls.cipher()
        return cls(
            version=tls.version(),
            cipher_suite=_SUITES_BY_NAME.get(cipher[0]) if cipher else None,
            alpn=tls.selected_alpn_protocol() or "",
        )


class _PythonSSLPeer(_ThreadPeer):
    """Python ``ssl`` on one connection: handshake, :meth:`_exchange`, report."""

    def __init__(
        self,
        files: PKIFiles,
        *,
        server_hostname: str | None,
        alpn: Sequence[str],
        ecdh_curve: str | None,
        timeout: float,
        port: int = 0,
    ) -> None:
        super().__init__(timeout, port)
        self._server_hostname = server_hostname
        self._observed = _Observed()
        self._ctx = _python_context(
            server=server_hostname is None,
            files=files,
            alpn=alpn,
            ecdh_curve=ecdh_curve,
            observed=self._observed,
        )

    def _exchange(self, tls: ssl.SSLSocket, state: _Exchange) -> None:
        raise NotImplementedError

    def _converse(self) -> PeerReport:
        raw = self._open()
        negotiated: _Negotiated | None = None
        state = _Exchange()
        try:
            wrapped = self._ctx.wrap_socket(
                raw,
                server_side=self._server_hostname is None,
                server_hostname=self._server_hostname,
                suppress_ragged_eofs=False,
                do_handshake_on_connect=False,
            )
            self._track(wrapped)
            wrapped.do_handshake()
            negotiated = _Negotiated.of(wrapped)
            self._exchange(wrapped, state)
        except ssl.SSLEOFError as exc:
            state.error = f"EOF without close_notify: {exc}"
        except (OSError, ssl.SSLError) as exc:
            state.error = f"{type(exc).__name__}: {exc}"
        observed = self._observed
        return PeerReport(
            peer=self.name,
            handshake_ok=negotiated is not None,
            received=bytes(state.received),
            version=negotiated.version if negotiated else None,
            cipher_suite=negotiated.cipher_suite if negotiated else observed.cipher_suite,
            group=observed.group,
            alpn=negotiated.alpn if negotiated else None,
            hello_retry=observed.hello_retry,
            sent_close_notify=state.sent_close or (1, 0) in observed.alerts_sent,
            received_close_notify=state.got_close,
            alerts_sent=tuple(observed.alerts_sent),
            alerts_received=tuple(observed.alerts_received),
            error=state.error,
            log="; ".join(observed.notes),
        )


class PythonSSLServer(_PythonSSLPeer):
    """A Python ``ssl`` server in a thread: one connection, TLS 1.3, echo.

    It echoes until the client's close_notify, then answers with its own
    (``unwrap()``). A transport EOF without close_notify is reported as an
    error ("EOF without close_notify").

    Args:
        files: certificate chain and key to serve.
        alpn: protocols to accept (server preference order).
        ecdh_curve: restrict the groups to this one (e.g. "secp384r1").
        close_after: send close_notify first, once this many bytes were echoed,
            then wait for the client's.
        timeout: bound for the accept and each socket operation.
    """

    name = "python ssl server"

    def __init__(
        self,
        files: PKIFiles,
        *,
        alpn: Sequence[str] = (),
        ecdh_curve: str | None = None,
        close_after: int | None = None,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(
            files, server_hostname=None, alpn=alpn, ecdh_curve=ecdh_curve, timeout=timeout
        )
        self._close_after = close_after
        self.port = self._listen()

    def _exchange(self, tls: ssl.SSLSocket, state: _Exchange) -> None:
        while self._close_after is None or len(state.received) < self._close_after:
            chunk = tls.recv(65536)
            if not chunk:  # suppress_ragged_eofs=False: b"" only on close_notify
                state.got_close = True
                break
            state.received += chunk
            tls.sendall(chunk)
        # Sends our close_notify; if we spoke first, also waits for the client's.
        tls.unwrap()
        state.sent_close = state.got_close = True


class PythonSSLClient(_PythonSSLPeer):
    """A Python ``ssl`` client in a thread: sends ``data``, expects it echoed.

    After the echo it calls ``unwrap()``: sends close_notify and waits for the
    server's.

    Args:
        files: ``files.ca`` is the trust anchor; the chain and name are verified.
        port: server port on 127.0.0.1.
        data: bytes to send.
        server_name: SNI and the name to verify.
        alpn: protocols to offer.
        ecdh_curve: restrict the client's groups (and so its key share) to one.
        timeout: bound for each socket operation.
    """

    name = "python ssl client"

    def __init__(
        self,
        files: PKIFiles,
        port: int,
        *,
        data: bytes,
        server_name: str = "localhost",
        alpn: Sequence[str] = (),
        ecdh_curve: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(
            files,
            server_hostname=server_name,
            alpn=alpn,
            ecdh_curve=ecdh_curve,
            timeout=timeout,
            port=port,
        )
        self._data = data

    def _exchange(self, tls: ssl.SSLSocket, state: _Exchange) -> None:
        tls.sendall(self._data)
        while len(state.received) < len(self._data):
            chunk = tls.recv(65536)
            if not chunk:
                state.got_close = True
                break
            state.received += chunk
        if not state.got_close:
            tls.unwrap()  # sends close_notify, returns once the server's arrived
            state.sent_close = state.got_close = True


def _pyopenssl_context(*, server: bool, files: PKIFiles, alpn: Sequence[str]) -> OpenSSLContext:
    from OpenSSL import SSL

    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    ctx.set_max_proto_version(SSL.TLS1_3_VERSION)
    if server:
        ctx.use_certificate_chain_file(str(files.chain))
        ctx.use_privatekey_file(str(files.key))
        if alpn:
            offered = [p.encode() for p in alpn]

            def select(_conn: OpenSSLConnection, protos: list[bytes]) -> bytes | NoOverlap:
                for proto in offered:
                    if proto in protos:
                        return proto
                return SSL.NO_OVERLAPPING_PROTOCOLS

            ctx.set_alpn_select_callback(select)
    else:
        ctx.load_verify_locations(str(files.ca))
        ctx.set_verify(SSL.VERIFY_PEER, None)
        if alpn:
            ctx.set_alpn_protos([p.encode() for p in alpn])
    return ctx


def _pyopenssl_call(sock: socket.socket, step: Callable[[], _T], deadline: float) -> _T:
    """Run a pyOpenSSL call on a socket in timeout mode, waiting out WantRead/WantWrite.

    A Python socket with a timeout is non-blocking underneath, so OpenSSL
    reports "want read" instead of blocking; wait for readiness with select
    until ``deadline``.
    """
    from OpenSSL import SSL

    while True:
        try:
            return step()
        except (SSL.WantReadError, SSL.WantWriteError) as want:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("pyOpenSSL peer timed out") from None
            if isinstance(want, SSL.WantReadError):
                select.select([sock], [], [], remaining)
            else:
                select.select([], [sock], [], remaining)


class _PyOpenSSLPeer(_ThreadPeer):
    """pyOpenSSL on one connection: handshake, :meth:`_exchange`, report."""

    def __init__(
        self, files: PKIFiles, *, server: bool, alpn: Sequence[str], timeout: float, port: int = 0
    ) -> None:
        require_pyopenssl()
        super().__init__(timeout, port)
        self._ctx = _pyopenssl_context(server=server, files=files, alpn=alpn)

    def _connection(self, raw: socket.socket) -> OpenSSLConnection:
        raise NotImplementedError

    def _exchange(
        self, raw: socket.socket, conn: OpenSSLConnection, deadline: float, state: _Exchange
    ) -> None:
        raise NotImplementedError

    def _converse(self) -> PeerReport:
        from OpenSSL import SSL

        raw = self._open()
        deadline = time.monotonic() + self._timeout
        conn = self._connection(raw)
        state = _Exchange()
        done: OpenSSLConnection | None = None
        try:
            _pyopenssl_call(raw, conn.do_handshake, deadline)
            done = conn
            self._exchange(raw, conn, deadline, state)
        except (SSL.Error, OSError) as exc:
            state.error = f"{type(exc).__name__}: {exc}"
        if done is None:
            return PeerReport(
                peer=self.name,
                handshake_ok=False,
                received=bytes(state.received),
                error=state.error,
            )
        suite = done.get_cipher_name()
        group_name = done.get_group_name()
        return PeerReport(
            peer=self.name,
            handshake_ok=True,
            received=bytes(state.received),
            version=done.get_protocol_version_name(),
            cipher_suite=_SUITES_BY_NAME.get(suite) if suite else None,
            group=group_code(group_name) if group_name else None,
            alpn=done.get_alpn_proto_negotiated().decode(),
            sent_close_notify=state.sent_close,
            received_close_notify=state.got_close,
            error=state.error,
        )


class PyOpenSSLServer(_PyOpenSSLPeer):
    """A pyOpenSSL server (OpenSSL from the cryptography wheel) in a thread.

    Same behaviour as :class:`PythonSSLServer`; its OpenSSL offers and
    prefers X25519MLKEM768, so it is the post-quantum peer.
    """

    name = "pyopenssl server"

    def __init__(self, files: PKIFiles, *, alpn: Sequence[str] = (), timeout: float = 10.0):
        super().__init__(files, server=True, alpn=alpn, timeout=timeout)
        self.port = self._listen()

    def _connection(self, raw: socket.socket) -> OpenSSLConnection:
        from OpenSSL import SSL

        conn = SSL.Connection(self._ctx, raw)
        conn.set_accept_state()
        return conn

    def _exchange(
        self, raw: socket.socket, conn: OpenSSLConnection, deadline: float, state: _Exchange
    ) -> None:
        from OpenSSL import SSL

        while True:
            try:
                chunk = _pyopenssl_call(raw, lambda: conn.recv(65536), deadline)
            except SSL.ZeroReturnError:
                state.got_close = True
                break
            state.received += chunk
            _pyopenssl_call(raw, functools.partial(conn.sendall, chunk), deadline)
        _pyopenssl_call(raw, conn.shutdown, deadline)
        state.sent_close = True


class PyOpenSSLClient(_PyOpenSSLPeer):
    """A pyOpenSSL client in a thread; sends key shares for X25519MLKEM768 and X25519."""

    name = "pyopenssl client"

    def __init__(
        self,
        files: PKIFiles,
        port: int,
        *,
        data: bytes,
        server_name: str = "localhost",
        alpn: Sequence[str] = (),
        timeout: float = 10.0,
    ) -> None:
        super().__init__(files, server=False, alpn=alpn, timeout=timeout, port=port)
        self._data = data
        self._server_name = server_name

    def _connection(self, raw: socket.socket) -> OpenSSLConnection:
        from OpenSSL import SSL

        conn = SSL.Connection(self._ctx, raw)
        conn.set_tlsext_host_name(self._server_name.encode())
        conn.set_connect_state()
        return conn

    def _exchange(
        self, raw: socket.socket, conn: OpenSSLConnection, deadline: float, state: _Exchange
    ) -> None:
        from OpenSSL import SSL

        try:
            _pyopenssl_call(raw, lambda: conn.sendall(self._data), deadline)
            while len(state.received) < len(self._data):
                state.received += _pyopenssl_call(raw, lambda: conn.recv(65536), deadline)
            _pyopenssl_call(raw, conn.shutdown, deadline)
            state.sent_close = True
            while True:  # until the server's close_notify
                _pyopenssl_call(raw, lambda: conn.recv(65536), deadline)
        except SSL.ZeroReturnError:
            state.got_close = True


# --------------------------------------------------------------------------- #
# Small helpers.


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _tail(text: str, lines: int = 60) -> str:
    kept = text.splitlines()[-lines:]
    return "\n".join(kept)
