"""OCSP stapling with real peers, both ways.

Our client against ``openssl s_server -status_file`` and ``gnutls-serv
--ocsp-response``: the staple arrives in the leaf's CertificateEntry and is
checked (a "good" response verifies, a "revoked" one is refused with
certificate_revoked, which the server reads). Our server stapling to
``openssl s_client -status`` (the staple's bytes are read back from
s_client's own protocol trace) and to ``gnutls-cli --ocsp --save-ocsp``
(GnuTLS verifies the response itself, and refuses the connection when the
response says "revoked").

The PKI is built here, dated around the real clock, since the peers check
certificate and response dates against it; the responses are signed by the
intermediate that issued the leaf.
"""

from __future__ import annotations

import datetime
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from tests.interop.driver import DriverError, EngineResult, open_listener, run_client, serve_one
from tests.interop.peers import (
    CLIENT_HOST,
    GnuTLSClient,
    GnuTLSServer,
    OpenSSLClient,
    OpenSSLServer,
)
from tests.interop.scenarios import PAYLOAD, TIMEOUT
from tests.support.certs import PKIFiles
from tests.support.chains import Issued, intermediate, leaf, root
from tests.support.revocation import GOOD, REVOKED, ocsp_response
from triotls import VerificationStatus
from triotls.config import CertifiedKey, ClientConfig, ServerConfig, TrustStore
from triotls.engine.enums import AlertDescription
from triotls.engine.extensions import encode_certificate_status
from triotls.errors import CertificateVerificationError

pytestmark = pytest.mark.interop

S = VerificationStatus
HOUR = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class Pki:
    anchor: Issued
    middle: Issued
    end: Issued
    files: PKIFiles

    def staple(self, status: ocsp.OCSPCertStatus) -> bytes:
        now = datetime.datetime.now(datetime.timezone.utc)
        return ocsp_response(
            self.end.cert,
            self.middle,
            status=status,
            this_update=now - HOUR,
            next_update=now + 24 * HOUR,
        )

    def certified(self, staple: bytes | None) -> CertifiedKey:
        return CertifiedKey([self.end.cert, self.middle.cert], self.end.key, ocsp_response=staple)

    def client_config(self, **fields: object) -> ClientConfig:
        return ClientConfig(trust=TrustStore([self.anchor.cert]), **fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    now = datetime.datetime.now(datetime.timezone.utc)
    before, after = now - 24 * HOUR, now + 30 * 24 * HOUR
    anchor = root(not_before=before, not_after=after)
    middle = intermediate(anchor, not_before=before, not_after=after)
    end = leaf(middle, not_before=before, not_after=after)
    directory = tmp_path_factory.mktemp("ocsp-pki")
    files = PKIFiles(
        ca=directory / "ca.pem", chain=directory / "chain.pem", key=directory / "key.pem"
    )
    pem = serialization.Encoding.PEM
    files.ca.write_bytes(anchor.cert.public_bytes(pem))
    files.chain.write_bytes(end.cert.public_bytes(pem) + middle.cert.public_bytes(pem))
    files.key.write_bytes(
        end.key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Pki(anchor=anchor, middle=middle, end=end, files=files)


def _status_file(tmp_path: Path, staple: bytes) -> Path:
    path = tmp_path / "response.der"
    path.write_bytes(staple)
    return path


# --- our client, their server ----------------------------------------------------------------


def _server(kind: str, pki: Pki, tmp_path: Path, staple: bytes) -> OpenSSLServer | GnuTLSServer:
    response = _status_file(tmp_path, staple)
    if kind == "openssl":
        # -cert sends the leaf alone; -cert_chain adds the intermediate.
        return OpenSSLServer(
            pki.files,
            workdir=tmp_path,
            extra_args=["-cert_chain", str(pki.files.chain), "-status_file", str(response)],
        )
    # gnutls-serv checks the response when loading it and refuses a
    # "revoked" one unless told to send it anyway.
    return GnuTLSServer(
        pki.files,
        workdir=tmp_path,
        extra_args=["--ocsp-response", str(response), "--ignore-ocsp-response-errors"],
    )


@pytest.mark.parametrize("server", ["openssl", "gnutls"])
def test_client_receives_and_accepts_a_good_staple(server: str, pki: Pki, tmp_path: Path) -> None:
    staple = pki.staple(GOOD)
    with _server(server, pki, tmp_path, staple) as peer:
        result = run_client(
            CLIENT_HOST,
            peer.port,
            pki.client_config(ocsp="require"),
            "localhost",
            b"hi\n",
            True,
            TIMEOUT,
        )
        report = peer.finish()
    assert report.handshake_ok
    assert result.received == b"hi\n"
    assert result.negotiated is not None
    verification = result.negotiated.verification
    assert verification is not None and verification.is_valid
    assert verification.ocsp_response == staple


@pytest.mark.parametrize("server", ["openssl", "gnutls"])
def test_client_refuses_a_revoked_staple_and_the_server_reads_certificate_revoked(
    server: str, pki: Pki, tmp_path: Path
) -> None:
    staple = pki.staple(REVOKED)
    with _server(server, pki, tmp_path, staple) as peer:
        with pytest.raises(DriverError) as info:
            run_client(
                CLIENT_HOST, peer.port, pki.client_config(), "localhost", b"hi\n", True, TIMEOUT
            )
        report = peer.finish()
    error = info.value.__cause__
    assert isinstance(error, CertificateVerificationError)
    assert error.status == S.INVALID | S.REVOKED
    assert "is revoked: the stapled OCSP response says so" in str(error)
    assert error.sent_alert == AlertDescription.CERTIFICATE_REVOKED
    assert (2, AlertDescription.CERTIFICATE_REVOKED) in report.alerts_received


def test_client_without_ocsp_gets_no_staple_from_openssl(pki: Pki, tmp_path: Path) -> None:
    with _server("openssl", pki, tmp_path, pki.staple(REVOKED)) as peer:
        result = run_client(
            CLIENT_HOST,
            peer.port,
            pki.client_config(ocsp="off"),
            "localhost",
            b"hi\n",
            True,
            TIMEOUT,
        )
        peer.finish()
    assert result.negotiated is not None and result.negotiated.verification is not None
    assert result.negotiated.verification.is_valid
    assert result.negotiated.verification.ocsp_response is None


# --- our server, their client ----------------------------------------------------------------


class _Server:
    """Our engine's server on a thread, serving one connection."""

    def __init__(self, config: ServerConfig, *, close_after: int | None) -> None:
        self._config = config
        self._close_after = close_after
        self.result: EngineResult | None = None
        self.error: DriverError | None = None

    def __enter__(self) -> _Server:
        self._listener_cm = open_listener()
        self._listener = self._listener_cm.__enter__()
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._run)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.result = serve_one(
                self._listener, self._config, timeout=TIMEOUT, close_after=self._close_after
            )
        except DriverError as exc:
            self.error = exc

    def __exit__(self, *exc_info: object) -> None:
        self._thread.join(TIMEOUT + 1)
        self._listener_cm.__exit__(None, None, None)


def _trace_staple(trace: str) -> bytes | None:
    """The status_request extension of the Certificate message, from s_client's -trace."""
    lines = trace.splitlines()
    in_certificate = False
    for index, line in enumerate(lines):
        if "HandshakeType=Certificate(" in line or "Certificate, Length=" in line:
            in_certificate = True
        match = re.search(r"extension_type=status_request\(5\), length=(\d+)", line)
        if in_certificate and match:
            length = int(match[1])
            data = bytearray()
            for dump in lines[index + 1 :]:
                hexes = re.match(r"\s+[0-9a-f]{4} - ((?:[0-9a-f]{2}[ -])+)", dump)
                if not hexes or len(data) >= length:
                    break
                data += bytes.fromhex(hexes[1].replace("-", " "))
            return bytes(data[:length])
    return None


def test_server_staples_for_openssl_s_client_status(pki: Pki, tmp_path: Path) -> None:
    staple = pki.staple(GOOD)
    config = ServerConfig(certificates=(pki.certified(staple),))
    with (
        _Server(config, close_after=len(PAYLOAD)) as server,
        OpenSSLClient(
            pki.files.ca, server.port, workdir=tmp_path, data=PAYLOAD, extra_args=["-status"]
        ) as client,
    ):
        report = client.finish()
    assert server.error is None, server.error
    assert report.handshake_ok and report.received == PAYLOAD
    trace = (tmp_path / "s_client.trace").read_text()
    assert _trace_staple(trace) == encode_certificate_status(staple)


def test_server_does_not_staple_for_openssl_s_client_without_status(
    pki: Pki, tmp_path: Path
) -> None:
    config = ServerConfig(certificates=(pki.certified(pki.staple(GOOD)),))
    with (
        _Server(config, close_after=len(PAYLOAD)) as server,
        OpenSSLClient(pki.files.ca, server.port, workdir=tmp_path, data=PAYLOAD) as client,
    ):
        report = client.finish()
    assert server.error is None, server.error
    assert report.handshake_ok
    trace = (tmp_path / "s_client.trace").read_text()
    assert "status_request" not in trace
    assert _trace_staple(trace) is None


def test_gnutls_cli_verifies_our_good_staple(pki: Pki, tmp_path: Path) -> None:
    staple = pki.staple(GOOD)
    saved = tmp_path / "saved.der"
    config = ServerConfig(certificates=(pki.certified(staple),))
    with (
        _Server(config, close_after=None) as server,
        GnuTLSClient(
            pki.files.ca,
            server.port,
            workdir=tmp_path,
            data=b"hello\n",
            extra_args=["--ocsp", f"--save-ocsp={saved}"],
        ) as client,
    ):
        report = client.finish()
    assert server.error is None, server.error
    assert report.handshake_ok and report.received == b"hello\n"
    assert saved.read_bytes() == staple


def test_gnutls_cli_refuses_our_server_when_the_staple_says_revoked(
    pki: Pki, tmp_path: Path
) -> None:
    config = ServerConfig(certificates=(pki.certified(pki.staple(REVOKED)),))
    with (
        _Server(config, close_after=None) as server,
        GnuTLSClient(
            pki.files.ca, server.port, workdir=tmp_path, data=b"hello\n", extra_args=["--ocsp"]
        ) as client,
    ):
        report = client.finish()
    assert not report.handshake_ok
    assert "The certificate chain is revoked" in (tmp_path / "gnutls-cli.log").read_text()
    assert server.error is not None
    assert "bad_certificate" in str(server.error)
