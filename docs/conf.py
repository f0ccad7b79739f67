"""Sphinx configuration for the triotls documentation."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from sphinx.application import Sphinx

# Document the source tree next to this file, even when an older triotls is
# installed in the environment that runs sphinx-build.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

project = "triotls"
author = "the triotls developers"
copyright = "the triotls developers"
release = "0.1.0.dev0"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]

# Docstrings follow Google style (see STYLE.md).
napoleon_google_docstring = True
napoleon_numpy_docstring = False

autodoc_typehints = "description"
autodoc_member_order = "bysource"

# No intersphinx: documentation builds must not reach the network.

html_theme = "alabaster"
exclude_patterns = ["_build"]


def _skip_parameter_types(app: Sphinx, what: str, name: str, obj: object, *_: object) -> None:
    """Keep typehints out of the description where they only add noise.

    With ``autodoc_typehints = "description"``, autodoc lists every constructor
    parameter with its type. For the configuration dataclasses (and Negotiated)
    that list repeats, without descriptions, the fields their "Attributes:"
    section already documents with types; for exceptions it adds a "Return
    type: None" and, for CertificateVerificationError, the type of the
    ``alert`` class attribute instead of the parameter. Runs after autodoc
    recorded the typehints (priority 600 > 500) and forgets them.
    """
    documents_fields = (
        what == "class"
        and isinstance(obj, type)
        and dataclasses.is_dataclass(obj)
        and "Attributes:" in (obj.__doc__ or "")
    )
    if what != "exception" and not documents_fields:
        return
    current = getattr(app.env, "current_document", None)
    recorded = getattr(current, "autodoc_annotations", None)
    if recorded is None:  # Sphinx < 8.2 kept them in temp_data
        recorded = app.env.temp_data.get("annotations", {})
    recorded.pop(name, None)


def setup(app: Sphinx) -> None:
    app.connect("autodoc-process-signature", _skip_parameter_types, priority=600)
