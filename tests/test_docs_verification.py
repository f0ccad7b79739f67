"""The flag table in docs/verification.rst says what the code does.

Each row names a flag, its value, its meaning, the alert the default mode
sends for it and its GnuTLS counterpart; a row that drifts from
``VerificationStatus`` or ``alert_for`` fails here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from triotls.engine.status import VerificationStatus, alert_for

PAGE: Final = Path(__file__).resolve().parent.parent / "docs" / "verification.rst"
# "   * - ``FLAG``" starts a row; the next four "     - " lines are its cells.
ROW: Final = re.compile(r"^   \* - ``(?P<flag>[A-Z_]+)``$")
CELL: Final = re.compile(r"^     - (?P<text>.*)$")


def _rows() -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        if match := ROW.match(line):
            current = rows.setdefault(match["flag"], [])
        elif current is not None and (cell := CELL.match(line)):
            current.append(cell["text"])
    return rows


def test_every_flag_has_one_row_in_value_order() -> None:
    assert list(_rows()) == [flag.name for flag in VerificationStatus]


def test_each_row_gives_the_value_alert_and_gnutls_name_of_its_flag() -> None:
    for name, (value, _meaning, alert, gnutls) in _rows().items():
        flag = VerificationStatus[name]
        assert value == f"``1 << {flag.value.bit_length() - 1}``", name
        assert alert == alert_for(VerificationStatus.INVALID | flag).name.lower(), name
        if name == "CHAIN_TOO_LONG":
            assert gnutls == "none"
        else:
            assert gnutls == f"``GNUTLS_CERT_{name}``", name
