"""Review round 7: configuration validation, key loading, key logs and the CLI.

Most tests here proved a bug and failed before its fix (ALPN given as one
string, duplicate key_share_groups, certificates that are not CertifiedKeys,
keys that fit none of the signature_schemes, a resolver's wrong return
value, an encrypted key without a password, a key log path that is a
directory or readable by others, CLI errors inside nurseries and its
argument checks). The others pin verified behaviour that no other test
covered.
"""

from __future__ import annotations

import os
import socket
import stat
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import triotls.__main__ as cli
from tests.support.engine_pairs import handshake, make_pair, pki
from triotls.config import CertifiedKey, ClientConfig, KeyLogFile, ServerConfig
from triotls.engine.enums import NamedGroup, SignatureScheme
from triotls.errors import TLSError


def _server(**kw: object) -> ServerConfig:
    return ServerConfig(certificates=(pki("ecdsa").certified,), **kw)  # type: ignore[arg-type]


def _encrypted_key_pem(password: bytes) -> bytes:
    key = serialization.load_pem_private_key(pki("ecdsa").key_pem, password=None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )


# --- ALPN given as a bare string ------------------------------------------


def test_client_alpn_protocols_given_as_a_string_is_refused() -> None:
    # psk_key_exchange_modes refuses a bare string; alpn_protocols does not,
    # so the client would offer the protocols "h" and "2".
    with pytest.raises((TypeError, ValueError), match="alpn_protocols"):
        ClientConfig(alpn_protocols="h2")  # type: ignore[arg-type]


def test_server_alpn_protocols_given_as_a_string_is_refused() -> None:
    with pytest.raises((TypeError, ValueError), match="alpn_protocols"):
        _server(alpn_protocols="http/1.1")


# --- duplicates --------------------------------------------------------------


def test_duplicate_key_share_groups_are_refused() -> None:
    with pytest.raises(ValueError, match="key_share_groups"):
        ClientConfig(key_share_groups=(NamedGroup.X25519, NamedGroup.X25519))


def test_key_share_groups_outside_groups_are_refused() -> None:
    with pytest.raises(ValueError, match="every key_share_groups entry must also be in groups"):
        ClientConfig(groups=(NamedGroup.X25519,), key_share_groups=(NamedGroup.SECP256R1,))


# --- server certificates -------------------------------------------------------


def test_server_certificates_must_be_certified_keys() -> None:
    with pytest.raises(TypeError, match="CertifiedKey"):
        ServerConfig(certificates=(pki("ecdsa").chain_pem,))  # type: ignore[arg-type]


def test_server_config_whose_keys_fit_none_of_its_signature_schemes_is_refused() -> None:
    with pytest.raises(ValueError, match="signature_schemes"):
        ServerConfig(
            certificates=(pki("rsa").certified,),
            signature_schemes=(SignatureScheme.ECDSA_SECP256R1_SHA256,),
        )


def test_certificate_resolver_returning_a_non_certified_key_is_named_in_the_error() -> None:
    client, server = make_pair(server_kw={"certificate_resolver": lambda name, schemes: "x"})
    with pytest.raises(TLSError, match="certificate_resolver"):
        handshake(client, server)


# --- key loading ---------------------------------------------------------------


def test_encrypted_key_without_password_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="password"):
        CertifiedKey.from_pem(pki("ecdsa").chain_pem, _encrypted_key_pem(b"secret"))


def test_encrypted_key_with_its_password_loads_and_a_wrong_one_is_a_value_error() -> None:
    encrypted = _encrypted_key_pem(b"secret")
    loaded = CertifiedKey.from_pem(pki("ecdsa").chain_pem, encrypted, password=b"secret")
    assert loaded.chain == pki("ecdsa").certified.chain
    with pytest.raises(ValueError, match="Incorrect password"):
        CertifiedKey.from_pem(pki("ecdsa").chain_pem, encrypted, password=b"wrong")


def test_key_of_another_certificate_is_refused() -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(ValueError, match="does not match the leaf certificate"):
        CertifiedKey(pki("ecdsa").certified.chain, other)


# --- key logging -----------------------------------------------------------------


def test_key_log_file_naming_a_directory_is_refused_when_built(tmp_path: Path) -> None:
    with pytest.raises((OSError, ValueError)):
        KeyLogFile(tmp_path)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_key_log_file_is_created_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "keys.log"
    old = os.umask(0o022)
    try:
        KeyLogFile(path)("CLIENT_RANDOM", b"\x01" * 32, b"\x02" * 48)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


# --- numbers ---------------------------------------------------------------------


def test_nan_handshake_timeout_is_refused_on_both_sides() -> None:
    with pytest.raises(ValueError, match="handshake_timeout must be a positive number"):
        ClientConfig(handshake_timeout=float("nan"))
    with pytest.raises(ValueError, match="handshake_timeout must be a positive number"):
        _server(handshake_timeout=float("nan"))


def test_ticket_lifetime_is_capped_at_seven_days() -> None:
    # RFC 8446 §4.6.1: servers MUST NOT use any value greater than 604800.
    assert _server(ticket_lifetime=604_800).ticket_lifetime == 604_800
    for bad in (0, 604_801):
        with pytest.raises(ValueError, match="ticket_lifetime must be 1 to 604800"):
            _server(ticket_lifetime=bad)


# --- the command-line tool ---------------------------------------------------------


def _busy_port() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port: int = sock.getsockname()[1]
    return sock, port


def test_cli_server_on_a_busy_port_reports_a_one_line_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sock, port = _busy_port()
    with sock:
        status = cli.main(["server", "--host", "127.0.0.1", "--port", str(port)])
    assert status == 1
    assert "triotls: OSError" in capsys.readouterr().err


def test_cli_server_with_an_encrypted_key_reports_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "chain.pem").write_bytes(pki("ecdsa").chain_pem)
    (tmp_path / "key.pem").write_bytes(_encrypted_key_pem(b"secret"))
    status = cli.main(
        [
            "server",
            "--port",
            "0",
            "--cert",
            str(tmp_path / "chain.pem"),
            "--key",
            str(tmp_path / "key.pem"),
        ]
    )
    assert status == 1
    assert "password" in capsys.readouterr().err


def test_cli_client_address_without_a_port_names_the_expected_form(
    capsys: pytest.CaptureFixture[str],
) -> None:
    try:
        status = cli.main(["client", "example.invalid"])
    except SystemExit as exc:  # an argparse error is a fine fix too
        status = exc.code  # type: ignore[assignment]
    assert status in (1, 2)
    assert "HOST:PORT" in capsys.readouterr().err


class _ThrowawayUsed(Exception):
    pass


def test_cli_server_key_without_cert_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "key.pem").write_bytes(pki("ecdsa").key_pem)

    def throwaway() -> object:
        raise _ThrowawayUsed

    monkeypatch.setattr(cli, "make_throwaway_pki", throwaway)
    try:
        status = cli.main(["server", "--port", "0", "--key", str(tmp_path / "key.pem")])
    except SystemExit as exc:
        status = exc.code  # type: ignore[assignment]
    assert status in (1, 2)


def test_cli_client_with_a_missing_ca_file_reports_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.pem"
    status = cli.main(["client", "--cafile", str(missing), "127.0.0.1:1"])
    assert status == 1
    err = capsys.readouterr().err
    assert err.startswith("triotls: FileNotFoundError")
    assert str(missing) in err


def test_cli_insecure_flag_is_named_and_described_as_such() -> None:
    parser = cli._parser()
    args = parser.parse_args(["client", "--insecure", "h:1"])
    assert args.insecure is True
    assert parser.parse_args(["client", "h:1"]).insecure is False  # verification on by default
