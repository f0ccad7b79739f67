"""Internationalized host names: U-labels to the A-labels SNI and certificates use.

SNI carries ASCII only (RFC 6066 §3), and certificates name hosts by their
A-labels (RFC 5280 §7.2), so a ``server_hostname`` such as ``bücher.example``
is converted once, when the connection is built. The conversion is IDNA 2008
(RFC 5891) with the UTS #46 mapping in non-transitional mode, as browsers do,
through the ``idna`` package. Python's built-in ``"idna"`` codec implements
IDNA 2003, which maps ``ß`` to ``ss`` (``faß.de`` would become ``fass.de``,
another domain) and accepts symbols IDNA 2008 disallows, such as ``☃``.
"""

from __future__ import annotations

import idna

__all__ = ["to_a_labels"]


def to_a_labels(name: str) -> str:
    """``name`` with every U-label converted to its A-label (IDNA 2008).

    ASCII names are returned unchanged, except that their ``xn--`` labels
    must be valid A-labels. The UTS #46 mapping lowercases and normalizes
    (``Bücher.example`` and ``bücher.example`` both give
    ``xn--bcher-kva.example``).

    Raises:
        ValueError: ``name`` is not a valid internationalized domain name.
    """
    if name.isascii():
        if "xn--" in name.lower():
            try:
                idna.decode(name)
            except idna.IDNAError as exc:
                raise ValueError(
                    f"server_hostname {name!r} has an invalid IDNA A-label: {exc}"
                ) from None
        return name
    try:
        return idna.encode(name, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(
            f"server_hostname {name!r} is not a valid internationalized domain name "
            f"(IDNA 2008): {exc}"
        ) from None
