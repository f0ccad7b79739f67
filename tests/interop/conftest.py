"""Fixtures for the interop suite: test PKIs (one per key kind, made once).

``pki`` is the ECDSA P-256 PKI unless parametrized indirectly with a key kind
name::

    @pytest.mark.parametrize("pki", ["rsa-2048", "ed25519"], indirect=True)
    def test_x(pki: TestPKI, pki_files: PKIFiles) -> None: ...

Every test module here sets ``pytestmark = pytest.mark.interop``; select or
deselect the suite with ``-m interop`` / ``-m "not interop"``. Run it with::

    pytest tests/interop                              # everything (about 10 s)
    pytest tests/interop/test_peers_selfcheck.py      # the harness alone, no triotls

Peers: ``openssl`` (3.0), ``gnutls-cli``/``gnutls-serv`` (Debian gnutls-bin),
Python's ``ssl`` and pyOpenSSL. A missing one fails the run when ``CI`` is set
and is skipped (listed at the end of the run) otherwise.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.client_auth_support import ClientPKI, make_client_pki
from tests.interop.peers import missing_peer_reasons
from tests.support.certs import KEY_KINDS, KeyKind, PKIFiles, TestPKI, make_pki


class PKICache:
    """Builds each kind of :class:`TestPKI` once and writes it to disk once."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._pkis: dict[KeyKind, TestPKI] = {}
        self._files: dict[KeyKind, PKIFiles] = {}

    def pki(self, kind: KeyKind) -> TestPKI:
        """The PKI for ``kind``, built on first use."""
        if kind not in self._pkis:
            self._pkis[kind] = make_pki(kind)
        return self._pkis[kind]

    def files(self, kind: KeyKind) -> PKIFiles:
        """The PKI for ``kind`` as PEM files (for the openssl/gnutls binaries)."""
        if kind not in self._files:
            self._files[kind] = self.pki(kind).write(self._directory)
        return self._files[kind]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    reasons = missing_peer_reasons()
    if reasons:
        terminalreporter.section("interop peers missing (tests skipped; CI would fail)")
        for reason in reasons:
            terminalreporter.write_line(reason)


@pytest.fixture(scope="session")
def pki_cache(tmp_path_factory: pytest.TempPathFactory) -> PKICache:
    """Session-wide cache of test PKIs."""
    return PKICache(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def ecdsa_p256_pki(pki_cache: PKICache) -> TestPKI:
    """trustme CA and ECDSA P-256 leaf for localhost/127.0.0.1."""
    return pki_cache.pki("ecdsa-p256")


@pytest.fixture(scope="session")
def rsa_2048_pki(pki_cache: PKICache) -> TestPKI:
    """trustme CA and RSA-2048 leaf (the server signs with RSA-PSS rsae)."""
    return pki_cache.pki("rsa-2048")


@pytest.fixture(scope="session")
def ed25519_pki(pki_cache: PKICache) -> TestPKI:
    """Ed25519 CA and leaf built with cryptography."""
    return pki_cache.pki("ed25519")


@pytest.fixture(scope="session")
def ecdsa_p384_pki(pki_cache: PKICache) -> TestPKI:
    """ECDSA P-384 CA and leaf built with cryptography."""
    return pki_cache.pki("ecdsa-p384")


@pytest.fixture
def pki(request: pytest.FixtureRequest, pki_cache: PKICache) -> TestPKI:
    """The PKI of the kind given by indirect parametrization (default ecdsa-p256)."""
    wanted: str = getattr(request, "param", "ecdsa-p256")
    for kind in KEY_KINDS:
        if kind == wanted:
            return pki_cache.pki(kind)
    raise ValueError(f"unknown key kind {wanted!r}; expected one of {KEY_KINDS}")


@pytest.fixture
def pki_files(pki: TestPKI, pki_cache: PKICache) -> PKIFiles:
    """``pki`` written to PEM files."""
    return pki_cache.files(pki.kind)


@pytest.fixture(scope="module")
def client_pki(tmp_path_factory: pytest.TempPathFactory) -> ClientPKI:
    """A client certificate (own CA, EKU clientAuth) the servers in a test trust."""
    return make_client_pki(tmp_path_factory.mktemp("client-pki"), "trusted")


@pytest.fixture(scope="module")
def rogue_pki(tmp_path_factory: pytest.TempPathFactory) -> ClientPKI:
    """A client certificate from a CA no server here trusts."""
    return make_client_pki(tmp_path_factory.mktemp("rogue-pki"), "rogue")
