"""Development sessions: ``nox -s tests lint typecheck docs`` is what CI runs.

Every session runs on the interpreter nox itself runs on, in a venv under
``.nox/`` that later runs reuse (``nox -N`` forces a fresh one).
"""

from __future__ import annotations

from pathlib import Path

import nox

ROOT = Path(__file__).parent

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests", "lint", "typecheck", "docs"]

# What `lint` checks; paths that do not exist (yet) are left out.
LINT_PATHS = ("triotls", "tests", "noxfile.py", "bench", "docs/conf.py", "docs/examples")


@nox.session
def tests(session: nox.Session) -> None:
    """Run the whole test suite, interop tests included."""
    session.install(".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Check lint rules and formatting with ruff (no fixes applied)."""
    session.install(".[lint]")
    paths = [p for p in LINT_PATHS if (ROOT / p).exists()]
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)


@nox.session
def typecheck(session: nox.Session) -> None:
    """Run mypy --strict over triotls/ and tests/ (settings in pyproject.toml)."""
    session.install(".[typecheck]")
    session.run("mypy", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the Sphinx site; any warning fails the build."""
    session.install(".[docs]")
    session.run(
        "sphinx-build",
        "-W",
        "--keep-going",
        "-b",
        "html",
        "docs",
        "docs/_build/html",
        *session.posargs,
    )


@nox.session
def interop(session: nox.Session) -> None:
    """Run only the tests that talk to real peers (openssl, gnutls, python ssl)."""
    session.install(".[test]")
    session.run("pytest", "-m", "interop", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Run the benchmarks in bench/run.py (not part of CI)."""
    script = ROOT / "bench" / "run.py"
    if not script.exists():
        session.skip("bench/run.py does not exist yet")
    session.install(".")
    requirements = ROOT / "bench" / "requirements.txt"
    if requirements.exists():
        session.install("-r", str(requirements))
    session.run("python", str(script), *session.posargs)
