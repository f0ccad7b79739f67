"""Sphinx configuration for the triotls documentation."""

from __future__ import annotations

import sys
from pathlib import Path

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
