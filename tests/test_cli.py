"""``python -m triotls``: demo, client and server, with ourselves and real peers.

Every subprocess runs with a timeout and is stopped (SIGTERM, then SIGKILL)
in a ``finally``, whatever happens; on failure its command line and output
are printed. Servers listen on 127.0.0.1 only (gnutls-serv cannot be told
where to bind; it listens on every address), and ``server --port 0`` reports
the port it got.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Final

import pytest
from typing_extensions import Self

from triotls._throwaway import make_throwaway_pki

ROOT: Final = Path(__file__).resolve().parent.parent
HOST: Final = "127.0.0.1"
#: Bound of any single subprocess step (start, conversation, exit).
TIMEOUT: Final = 20.0


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("SSLKEYLOGFILE", None)
    return env


def _triotls(*args: str) -> list[str]:
    return [sys.executable, "-m", "triotls", *args]


def _run(
    argv: Sequence[str], *, stdin: bytes = b"", cwd: Path
) -> subprocess.CompletedProcess[bytes]:
    """Run to completion; subprocess.run kills the child if the timeout passes."""
    return subprocess.run(
        argv, input=stdin, capture_output=True, timeout=TIMEOUT, cwd=cwd, env=_env(), check=False
    )


def _require(binary: str) -> str:
    """The peer binary's path; a missing one fails in CI and skips (saying why) locally."""
    path = shutil.which(binary)
    if path is None:
        reason = f"{binary} is not installed (Debian: openssl / gnutls-bin)"
        if os.environ.get("CI", "").lower() not in {"", "0", "false", "no"}:
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class Process:
    """A subprocess whose stdout and stderr are collected by threads.

    Used as a context manager: leaving it always stops the process (SIGTERM,
    bounded wait, SIGKILL) and prints its output if the body failed.
    """

    def __init__(self, argv: Sequence[str], *, cwd: Path) -> None:
        self.argv = list(argv)
        self._cwd = cwd
        self.stdout = bytearray()
        self.stderr = bytearray()
        self._changed = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def popen(self) -> subprocess.Popen[bytes]:
        assert self._popen is not None  # set by __enter__
        return self._popen

    def __enter__(self) -> Self:
        assert self._popen is None, "a Process runs once"
        self._popen = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=self._cwd,
            env=_env(),
            start_new_session=True,
        )
        for pipe, sink in ((self.popen.stdout, self.stdout), (self.popen.stderr, self.stderr)):
            assert pipe is not None  # both are PIPE
            thread = threading.Thread(target=self._collect, args=(pipe.fileno(), sink), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _collect(self, fd: int, sink: bytearray) -> None:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            with self._changed:
                sink.extend(chunk)
                self._changed.notify_all()
            if not chunk:
                return

    def wait_for(self, pattern: bytes, *, stderr: bool = False) -> re.Match[bytes]:
        """Wait until the output matches ``pattern``; fail after TIMEOUT."""
        sink = self.stderr if stderr else self.stdout
        deadline = time.monotonic() + TIMEOUT
        with self._changed:
            while True:
                match = re.search(pattern, bytes(sink))
                if match:
                    return match
                left = deadline - time.monotonic()
                if left <= 0 or (self.popen.poll() is not None and not self._reading()):
                    pytest.fail(f"{pattern!r} never appeared\n{self.describe()}")
                self._changed.wait(min(left, 0.1))

    def _reading(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def write(self, data: bytes) -> None:
        assert self.popen.stdin is not None  # PIPE
        self.popen.stdin.write(data)
        self.popen.stdin.flush()

    def close_stdin(self) -> None:
        assert self.popen.stdin is not None  # PIPE
        self.popen.stdin.close()

    def wait(self) -> int:
        """Wait (bounded) for the process to exit on its own; its status."""
        try:
            status = self.popen.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"did not exit within {TIMEOUT}s\n{self.describe()}")
        for thread in self._threads:
            thread.join(TIMEOUT)
        return status

    def describe(self) -> str:
        return (
            f"$ {' '.join(self.argv)}\nreturncode: {self.popen.poll()}\n"
            f"--- stdout ---\n{bytes(self.stdout)[-3000:]!r}\n"
            f"--- stderr ---\n{bytes(self.stderr)[-3000:]!r}"
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        popen = self.popen
        if popen.poll() is None:
            popen.send_signal(signal.SIGTERM)
            try:
                popen.wait(3)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(3)
        for pipe in (popen.stdin, popen.stdout, popen.stderr):
            if pipe is not None:
                # A reader thread may still hold it; the process is gone anyway.
                with contextlib.suppress(OSError):
                    pipe.close()
        for thread in self._threads:
            thread.join(3)
        if exc_type is not None:
            print(self.describe())


def _wait_listening(process: Process, port: int) -> None:
    """Wait until ``port`` accepts TCP connections (a probe the peers shrug off)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            pytest.fail(f"the server exited before listening\n{process.describe()}")
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"nothing listened on port {port}\n{process.describe()}")


@contextlib.contextmanager
def _serve_ourselves(tmp_path: Path, *extra: str) -> Iterator[tuple[Process, int, Path]]:
    """Run ``python -m triotls server --port 0``; yield (process, port, CA file)."""
    ca = tmp_path / "server-ca.pem"
    argv = _triotls("server", "--port", "0", "--write-ca", str(ca), *extra)
    with Process(argv, cwd=tmp_path) as process:
        match = process.wait_for(rb"listening on 127\.0\.0\.1:(\d+)", stderr=True)
        yield process, int(match.group(1)), ca


@pytest.fixture
def pki_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA, and a chain and key for localhost/127.0.0.1, as files."""
    pki = make_throwaway_pki()
    ca, chain, key = tmp_path / "ca.pem", tmp_path / "chain.pem", tmp_path / "key.pem"
    ca.write_bytes(pki.ca_pem)
    chain.write_bytes(pki.chain_pem)
    key.write_bytes(pki.key_pem)
    return ca, chain, key


_NEGOTIATED: Final = re.compile(
    r"^(client|server): TLSv1\.3, (TLS_\w+), group (\w+)$", re.MULTILINE
)


# --- demo ---------------------------------------------------------------------------


def test_demo_prints_what_was_negotiated(tmp_path: Path) -> None:
    result = _run(_triotls("demo"), cwd=tmp_path)
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    sides = {m.group(1): (m.group(2), m.group(3)) for m in _NEGOTIATED.finditer(out)}
    assert set(sides) == {"client", "server"}, out
    assert sides["client"] == sides["server"]  # both sides agree on suite and group
    assert re.search(r"^client: signature \w+, ALPN h2, SNI \S+, full$", out, re.MULTILINE)
    assert "client: verified chain CN=localhost <- CN=triotls throwaway CA" in out
    assert "the server closed with close_notify" in out
    assert re.search(r"TLS handshake [\d.]+ ms", out)


def test_demo_with_a_forced_group(tmp_path: Path) -> None:
    result = _run(_triotls("demo", "--group", "secp384r1"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    groups = {m.group(3) for m in _NEGOTIATED.finditer(result.stdout.decode())}
    assert groups == {"SECP384R1"}


# --- our client and our server ---------------------------------------------------------


def test_client_echoes_stdin_through_our_server(tmp_path: Path) -> None:
    with _serve_ourselves(tmp_path) as (_server, port, ca):
        result = _run(
            _triotls("client", f"{HOST}:{port}", "--cafile", str(ca)),
            stdin=b"hello over the CLI\n",
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr.decode()
        assert result.stdout == b"hello over the CLI\n"
        assert re.search(r"^client: TLSv1\.3, TLS_\w+, group \w+$", result.stderr.decode(), re.M)


def test_client_refuses_a_server_its_ca_file_does_not_vouch_for(
    tmp_path: Path, pki_files: tuple[Path, Path, Path]
) -> None:
    unrelated_ca, _chain, _key = pki_files
    with _serve_ourselves(tmp_path) as (_server, port, _ca):
        result = _run(
            _triotls("client", f"{HOST}:{port}", "--cafile", str(unrelated_ca)),
            stdin=b"never sent\n",
            cwd=tmp_path,
        )
    assert result.returncode == 1
    assert result.stdout == b""
    assert b"triotls: CertificateVerificationError: " in result.stderr
    assert b"Traceback" not in result.stderr


# --- real peers --------------------------------------------------------------------------


@pytest.mark.interop
def test_client_against_openssl_s_server_www(
    tmp_path: Path, pki_files: tuple[Path, Path, Path]
) -> None:
    openssl = _require("openssl")
    ca, chain, key = pki_files
    port = _free_port()
    argv = [openssl, "s_server", "-accept", f"{HOST}:{port}", "-cert", str(chain), "-key", str(key)]
    with Process([*argv, "-www"], cwd=tmp_path) as server:
        _wait_listening(server, port)
        result = _run(
            _triotls("client", f"{HOST}:{port}", "--cafile", str(ca)),
            stdin=b"GET / HTTP/1.0\r\n\r\n",
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr.decode() + server.describe()
    page = result.stdout.decode(errors="replace")
    assert page.startswith("HTTP/1.0 200 ok")
    # The page is s_server's report of the connection: it agrees with ours.
    ours = re.search(r"^client: TLSv1\.3, (TLS_\w+),", result.stderr.decode(), re.M)
    assert ours is not None
    assert f"New, TLSv1.3, Cipher is {ours.group(1)}" in page


@pytest.mark.interop
def test_client_against_gnutls_serv_echo(
    tmp_path: Path, pki_files: tuple[Path, Path, Path]
) -> None:
    gnutls_serv = _require("gnutls-serv")
    ca, chain, key = pki_files
    port = _free_port()
    argv = [
        gnutls_serv, "--port", str(port), "--echo",
        "--x509certfile", str(chain), "--x509keyfile", str(key),
        "--disable-client-cert",
    ]  # fmt: skip
    with Process(argv, cwd=tmp_path) as server:
        _wait_listening(server, port)
        # gnutls-serv echoes whole lines; our client then sends close_notify
        # (stdin ended) and gnutls-serv answers with its own.
        result = _run(
            _triotls("client", f"{HOST}:{port}", "--cafile", str(ca)),
            stdin=b"hello gnutls-serv\n",
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr.decode() + server.describe()
    assert result.stdout == b"hello gnutls-serv\n"


def _converse(client: Process, message: bytes) -> int:
    """Send ``message``, wait for its echo, end stdin; the client's exit status."""
    client.write(message)
    client.wait_for(re.escape(message))
    client.close_stdin()  # the client sends close_notify and exits
    return client.wait()


@pytest.mark.interop
def test_server_against_openssl_s_client(tmp_path: Path) -> None:
    openssl = _require("openssl")
    with _serve_ourselves(tmp_path) as (server, port, ca):
        _talk_to_s_client(openssl, server, port, ca, tmp_path)


def _talk_to_s_client(openssl: str, server: Process, port: int, ca: Path, tmp_path: Path) -> None:
    argv = [
        openssl, "s_client", "-connect", f"{HOST}:{port}",
        "-CAfile", str(ca), "-verify_return_error",
        "-servername", "localhost", "-verify_hostname", "localhost",
        "-tls1_3", "-quiet", "-no_ign_eof", "-nocommands",
    ]  # fmt: skip
    with Process(argv, cwd=tmp_path) as client:
        assert _converse(client, b"hello from s_client\n") == 0
        assert b"verify return:1" in client.stderr
    assert b"connection failed" not in server.stderr


@pytest.mark.interop
def test_server_against_gnutls_cli(tmp_path: Path) -> None:
    gnutls_cli = _require("gnutls-cli")
    with _serve_ourselves(tmp_path) as (server, port, ca):
        _talk_to_gnutls_cli(gnutls_cli, server, port, ca, tmp_path)


def _talk_to_gnutls_cli(
    gnutls_cli: str, server: Process, port: int, ca: Path, tmp_path: Path
) -> None:
    argv = [
        gnutls_cli, HOST, "--port", str(port),
        "--x509cafile", str(ca),
        "--sni-hostname", "localhost", "--verify-hostname", "localhost",
        "--logfile", str(tmp_path / "gnutls-cli.log"),
    ]  # fmt: skip
    with Process(argv, cwd=tmp_path) as client:
        assert _converse(client, b"hello from gnutls-cli\n") == 0
    assert b"connection failed" not in server.stderr
    log = (tmp_path / "gnutls-cli.log").read_text(errors="replace")
    assert "TLS1.3" in log
