"""TrustStore.system(): the CA bundle found the way OpenSSL finds it, then certifi.

Each test points the search at files it wrote (through the environment,
``ssl.get_default_verify_paths`` and the distribution list), so the outcome
does not depend on the machine; the last test reads the machine's own bundle.
"""

from __future__ import annotations

import ssl
import sys
import types
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.support.chains import root
from triotls import config as config_module
from triotls.config import TrustStore


def _write_roots(path: Path, count: int) -> list[bytes]:
    pems = [root(f"Root {n}").cert.public_bytes(serialization.Encoding.PEM) for n in range(count)]
    path.write_bytes(b"".join(pems))
    return pems


def _pems(store: TrustStore) -> list[bytes]:
    return [cert.public_bytes(serialization.Encoding.PEM) for cert in store.certificates]


@pytest.fixture
def nowhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No environment variables, and OpenSSL and distribution paths that do not exist."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    missing = str(tmp_path / "missing")
    paths = ssl.DefaultVerifyPaths(
        missing, missing, "SSL_CERT_FILE", missing, "SSL_CERT_DIR", missing
    )
    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: paths)
    monkeypatch.setattr(config_module, "_DISTRIBUTION_BUNDLES", (missing + "-too",))
    monkeypatch.setitem(sys.modules, "certifi", None)  # import certifi raises ImportError
    return tmp_path


def test_ssl_cert_file_wins(nowhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every other source holds roots too; only SSL_CERT_FILE's are taken.
    others = [nowhere / name for name in ("openssl.pem", "ca-bundle.crt", "cacert.pem")]
    for other in others:
        _write_roots(other, 1)
    paths = ssl.DefaultVerifyPaths(
        str(others[0]), "/nonexistent", "SSL_CERT_FILE", str(others[0]), "SSL_CERT_DIR", "/x"
    )
    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: paths)
    monkeypatch.setattr(config_module, "_DISTRIBUTION_BUNDLES", (str(others[1]),))
    certifi = types.ModuleType("certifi")
    certifi.where = lambda: str(others[2])  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "certifi", certifi)
    pems = _write_roots(nowhere / "bundle.pem", 2)
    monkeypatch.setenv("SSL_CERT_FILE", str(nowhere / "bundle.pem"))
    assert _pems(TrustStore.system()) == pems


def test_ssl_cert_dir_is_read_and_duplicates_are_dropped(
    nowhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = nowhere / "certs"
    directory.mkdir()
    pems = _write_roots(directory / "a.pem", 1)
    (directory / "abcd1234.0").write_bytes(pems[0])  # a hashed-name copy
    monkeypatch.setenv("SSL_CERT_DIR", str(directory))
    assert _pems(TrustStore.system()) == pems


def test_a_wrong_ssl_cert_file_is_an_error_not_a_fallback(
    nowhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(nowhere / "typo.pem"))
    with pytest.raises(FileNotFoundError, match=r"typo\.pem, which holds no PEM certificate"):
        TrustStore.system()


def test_openssl_default_file_is_used(nowhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pems = _write_roots(nowhere / "openssl.pem", 1)
    bundle = str(nowhere / "openssl.pem")
    paths = ssl.DefaultVerifyPaths(
        bundle, "/nonexistent", "SSL_CERT_FILE", bundle, "SSL_CERT_DIR", "/nonexistent"
    )
    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: paths)
    assert _pems(TrustStore.system()) == pems


def test_a_distribution_bundle_is_used(nowhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pems = _write_roots(nowhere / "ca-bundle.crt", 1)
    monkeypatch.setattr(
        config_module, "_DISTRIBUTION_BUNDLES", ("/nonexistent", str(nowhere / "ca-bundle.crt"))
    )
    assert _pems(TrustStore.system()) == pems


def test_certifi_is_the_last_resort(nowhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pems = _write_roots(nowhere / "cacert.pem", 1)
    certifi = types.ModuleType("certifi")
    certifi.where = lambda: str(nowhere / "cacert.pem")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "certifi", certifi)
    assert _pems(TrustStore.system()) == pems


def test_nothing_found_says_where_it_looked(nowhere: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        TrustStore.system()
    message = str(info.value)
    assert message.startswith("no system CA bundle found: looked at SSL_CERT_FILE, SSL_CERT_DIR")
    assert str(nowhere / "missing-too") in message
    assert "the certifi package (not installed)" in message


def test_this_machines_bundle_loads() -> None:
    # The CI image and the development machine have Debian's ca-certificates.
    assert len(TrustStore.system().certificates) > 50
