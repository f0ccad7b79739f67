"""triotls: TLS 1.3 for trio, with a sans-IO engine in Python on cryptography."""

from __future__ import annotations
