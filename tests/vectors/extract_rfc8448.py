"""Extract the RFC 8448 example traces into JSON data files for byte-exact replay.

Usage::

    python tests/vectors/extract_rfc8448.py [RFC_PATH] [--check]

``RFC_PATH`` defaults to ``../shared/ref/rfc8448.txt`` relative to the repository root.
The script writes one file per section into ``tests/vectors/data/`` (see ``SECTIONS``).
With ``--check`` it writes nothing and exits 1 if a data file is missing or stale.

Theory of operation
-------------------
RFC 8448 sections 3-7 are a sequence of steps. Each step starts with a header line
indented three spaces, ``{client}  derive secret "tls13 c hs traffic":``, which may wrap
onto lines indented six spaces, always before the first blank line. The step body is
made of labelled values indented six spaces, ``PRK (32 octets):  1d c8 26 ...``, whose
hex continues on lines indented nine spaces. A label without an octet count carries
prose, not bytes (``salt:  0 (all zero octets)``), and a zero-octet value is written
``(empty)``.

Page breaks (a ``Thomson ... [Page N]`` footer, a form feed and a ``RFC 8448 ...
January 2019`` header) fall anywhere, including between the lines of one hex value
and between steps. They are blanked out first, keeping line numbers, and a hex value
continues across blank lines until it has as many bytes as its label announces. Every
value's byte count is checked against its ``(N octets)`` count, and any line that fits
none of the shapes above raises ``RFCFormatError`` with its line number, so a page-break
bug cannot silently corrupt data.

JSON schema
-----------
One file per section::

    {
      "source": "RFC 8448 section 3 (Simple 1-RTT Handshake)",
      "steps": [
        {
          "actor": "client" | "server",
          "action": "<header text, wrapped lines joined by one space, no trailing colon>",
          "values": {"<label without octet count>": "<lowercase hex, no spaces>", ...},
          "text": "<'label: prose' lines of the step joined by newlines, or ''>"
        },
        ...
      ]
    }

Steps keep the RFC order. ``values`` is an object whose key order is the RFC order. No
label repeats within one step in RFC 8448, so an object loses nothing; the extractor
raises ``RFCFormatError`` if a repeat ever appears rather than drop one. A step that only
says it is the same as the peer's (``(same as server)``) has no values.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

Actor = Literal["client", "server"]


class RFCFormatError(ValueError):
    """The RFC text does not have the shape this extractor expects."""


@dataclass(slots=True, kw_only=True)
class Step:
    """One ``{actor}  action`` step of an RFC 8448 trace."""

    actor: Actor
    action: str
    values: dict[str, bytes] = field(default_factory=dict)
    text: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        """Return the step in the JSON schema described in the module docstring."""
        return {
            "actor": self.actor,
            "action": self.action,
            "values": {label: data.hex() for label, data in self.values.items()},
            "text": "\n".join(self.text),
        }


@dataclass(slots=True, kw_only=True)
class Section:
    """One numbered section of RFC 8448 and the steps in it."""

    number: int
    title: str
    steps: list[Step]

    def to_json(self) -> dict[str, object]:
        """Return the section in the JSON schema described in the module docstring."""
        return {
            "source": f"RFC 8448 section {self.number} ({self.title})",
            "steps": [step.to_json() for step in self.steps],
        }


def parse_rfc(text: str, numbers: frozenset[int] | None = None) -> dict[int, Section]:
    """Parse the step traces of RFC 8448.

    Args:
        text: the whole RFC 8448 text, as published.
        numbers: the section numbers to parse; all of ``SECTIONS`` when None.

    Returns:
        The parsed sections by number.

    Raises:
        RFCFormatError: a section is missing or a line inside it has an unexpected shape.
    """
    wanted = frozenset(SECTIONS) if numbers is None else numbers
    # Not splitlines(): it also breaks at form feeds, which would shift line numbers.
    lines = _blank_page_breaks(text.split("\n"))
    bounds = _section_bounds(lines)
    sections: dict[int, Section] = {}
    for number in sorted(wanted):
        if number not in bounds:
            raise RFCFormatError(f"section {number} not found in the RFC text")
        title, start, end = bounds[number]
        sections[number] = Section(
            number=number, title=title, steps=_parse_steps(lines, start, end)
        )
    return sections


def output_path(data_dir: Path, number: int) -> Path:
    """Return the JSON file that holds section ``number``."""
    return data_dir / f"rfc8448_section{number}_{SECTIONS[number]}.json"


def render(section: Section) -> str:
    """Return the exact JSON text written for ``section``."""
    return json.dumps(section.to_json(), indent=2) + "\n"


def default_rfc_path() -> Path:
    """Return ``../shared/ref/rfc8448.txt`` relative to the repository root."""
    repo_root = Path(__file__).resolve().parents[2]
    return repo_root.parent / "shared" / "ref" / "rfc8448.txt"


def main(argv: list[str] | None = None) -> int:
    """Run the command line interface; return the process exit status."""
    parser = argparse.ArgumentParser(
        description="Extract the RFC 8448 example traces into tests/vectors/data/."
    )
    parser.add_argument("rfc", nargs="?", type=Path, default=default_rfc_path())
    parser.add_argument(
        "--check", action="store_true", help="fail if a data file is missing or stale"
    )
    args = parser.parse_args(argv)
    rfc_path: Path = args.rfc
    check: bool = args.check
    sections = parse_rfc(rfc_path.read_text(encoding="ascii"))
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    stale = 0
    for number, section in sections.items():
        path = output_path(DATA_DIR, number)
        rendered = render(section)
        if check:
            if not path.is_file() or path.read_text(encoding="utf-8") != rendered:
                print(f"stale: {path}", file=sys.stderr)
                stale += 1
            continue
        path.write_text(rendered, encoding="utf-8")
        print(f"{path}: {len(section.steps)} steps")
    return 1 if stale else 0


def _blank_page_breaks(lines: list[str]) -> list[str]:
    # Replace page furniture with blank lines instead of deleting it, so that error
    # messages keep the RFC's own line numbers.
    out: list[str] = []
    for line in lines:
        bare = line.lstrip("\f").rstrip()  # rstrip also drops a "\r" of CRLF text
        if _PAGE_FOOTER.fullmatch(bare) or _PAGE_HEADER.fullmatch(bare):
            out.append("")
        else:
            out.append(bare)
    return out


def _section_bounds(lines: list[str]) -> dict[int, tuple[str, int, int]]:
    starts: list[tuple[int, str, int]] = []
    for index, line in enumerate(lines):
        match = _SECTION_TITLE.fullmatch(line)
        if match:
            starts.append((int(match["number"]), match["title"], index))
    bounds: dict[int, tuple[str, int, int]] = {}
    for position, (number, title, start) in enumerate(starts):
        end = starts[position + 1][2] if position + 1 < len(starts) else len(lines)
        bounds[number] = (title, start + 1, end)
    return bounds


def _parse_steps(lines: list[str], start: int, end: int) -> list[Step]:
    steps: list[Step] = []
    step: Step | None = None
    pending: _Pending | None = None
    in_header = False
    for index in range(start, end):
        line = lines[index]
        where = f"line {index + 1}"
        if not line:
            # A blank line ends a step header; it does not end a hex value, which may
            # be split by a page break.
            in_header = False
            continue
        header = _STEP_HEADER.fullmatch(line)
        if header:
            _store(pending, where)
            pending = None
            actor: Actor = "client" if header["actor"] == "client" else "server"
            step = Step(actor=actor, action=header["action"].removesuffix(":"))
            steps.append(step)
            in_header = True
            continue
        if step is None:
            continue  # section prose before the first step
        if in_header:
            if not line.startswith(_LABEL_INDENT) or line.startswith(_HEX_INDENT):
                raise RFCFormatError(f"{where}: unexpected step header continuation {line!r}")
            step.action = f"{step.action} {line.strip().removesuffix(':')}"
            continue
        if line.startswith(_HEX_INDENT):
            if pending is None:
                raise RFCFormatError(f"{where}: hex continuation outside a value: {line!r}")
            pending.data.extend(_hex(line.strip(), where))
            continue
        label_line = _LABEL_LINE.fullmatch(line)
        if label_line is None:
            raise RFCFormatError(f"{where}: unexpected line in a step: {line!r}")
        _store(pending, where)
        pending = None
        label, count, rest = label_line["label"], label_line["count"], label_line["rest"]
        if count is None:
            step.text.append(f"{label}: {rest}")
            continue
        if label in step.values:
            raise RFCFormatError(f"{where}: label {label!r} repeats in one step")
        # Reserve the label's position now, so that values keep the RFC order.
        step.values[label] = b""
        data = bytearray() if rest == "(empty)" else bytearray(_hex(rest, where))
        pending = _Pending(step=step, label=label, count=int(count), data=data)
    _store(pending, f"line {end}")
    return steps


@dataclass(slots=True, kw_only=True)
class _Pending:
    """A value still being read: hex continues until ``count`` bytes are in."""

    step: Step
    label: str
    count: int
    data: bytearray


def _store(pending: _Pending | None, where: str) -> None:
    # Called when the next label, step or section starts: the value must be complete.
    if pending is None:
        return
    if len(pending.data) != pending.count:
        raise RFCFormatError(
            f"before {where}: {pending.label!r} of {pending.step.actor} step "
            f"{pending.step.action!r} announced {pending.count} octets "
            f"but has {len(pending.data)}"
        )
    pending.step.values[pending.label] = bytes(pending.data)


def _hex(text: str, where: str) -> bytes:
    if not _HEX_RUN.fullmatch(text):
        raise RFCFormatError(f"{where}: not a run of hex octets: {text!r}")
    return bytes.fromhex(text)


DATA_DIR: Final = Path(__file__).resolve().parent / "data"

# Section number to the file name suffix of its data file.
SECTIONS: Final[dict[int, str]] = {
    3: "simple_1rtt",
    4: "resumed_0rtt",
    5: "hrr",
    6: "client_auth",
    7: "compat_mode",
}

_LABEL_INDENT: Final = " " * 6
_HEX_INDENT: Final = " " * 9
_PAGE_FOOTER: Final = re.compile(r"Thomson\s+Informational\s+\[Page \d+\]")
_PAGE_HEADER: Final = re.compile(r"RFC 8448\s+TLS 1\.3 Traces\s+January 2019")
_SECTION_TITLE: Final = re.compile(r"(?P<number>\d+)\.  (?P<title>\S.*)")
_STEP_HEADER: Final = re.compile(r" {3}\{(?P<actor>client|server)\}  (?P<action>\S.*)")
_LABEL_LINE: Final = re.compile(
    r" {6}(?P<label>\S.*?)(?: \((?P<count>\d+) octets?\))?:  (?P<rest>\S.*)"
)
_HEX_RUN: Final = re.compile(r"[0-9a-f]{2}(?: [0-9a-f]{2})*")


if __name__ == "__main__":
    sys.exit(main())
