"""The sans-IO engine must stay usable without trio (DESIGN.md, Layers)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_importing_engine_does_not_import_trio() -> None:
    # A fresh interpreter: this process has trio loaded already (pytest-trio).
    # cwd=ROOT puts the source tree first on sys.path, so the tree is checked.
    result = subprocess.run(
        [sys.executable, "-c", "import sys, triotls.engine; print('trio' in sys.modules)"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False", (
        "importing triotls.engine imported trio; the engine must stay trio-free\n" + result.stderr
    )
