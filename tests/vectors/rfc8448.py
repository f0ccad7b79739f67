"""Load the RFC 8448 example traces extracted by ``extract_rfc8448.py``.

The data files live in ``tests/vectors/data/``; their schema is described in the
docstring of ``extract_rfc8448.py``. Usage::

    from tests.vectors.rfc8448 import load

    trace = load(3)  # RFC 8448 section 3, Simple 1-RTT Handshake
    client_private = trace.find("client", "create an ephemeral x25519").value("private key")
    client_hello = trace.find("client", "construct a ClientHello").value("ClientHello")
    first_flight = trace.records("server")[0]  # exact bytes the server wrote first
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal, final

Actor = Literal["client", "server"]


class VectorKeyError(KeyError):
    """A trace, step or value asked for is not in the RFC 8448 data.

    A ``KeyError`` whose ``str()`` is the plain message (``KeyError`` shows its repr).
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One ``{actor}  action`` step of an RFC 8448 trace.

    Attributes:
        section: the RFC 8448 section the step comes from.
        index: the step's position in its section, from 0.
        actor: who performs the step.
        action: the step header, without its trailing colon.
        values: the labelled byte strings of the step, in RFC order, keyed by label
            without the octet count (``"PRK"``, ``"complete record"``, ``"ClientHello"``).
        text: the step's prose values (``"salt: 0 (all zero octets)"``), or ``""``.
    """

    section: int
    index: int
    actor: Actor
    action: str
    values: Mapping[str, bytes]
    text: str

    def value(self, label: str) -> bytes:
        """Return the bytes labelled ``label`` in this step.

        Raises:
            VectorKeyError: the step has no value with that label (a ``KeyError``).
        """
        try:
            return self.values[label]
        except KeyError:
            raise VectorKeyError(
                f"RFC 8448 section {self.section} step {self.index} "
                f"({self.actor}: {self.action!r}) has no value {label!r}; "
                f"it has {list(self.values)}"
            ) from None

    def has(self, label: str) -> bool:
        """Return whether this step has a value labelled ``label``."""
        return label in self.values


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Trace:
    """The steps of one RFC 8448 section, in RFC order.

    Attributes:
        section: the RFC 8448 section number.
        source: the citation, e.g. ``"RFC 8448 section 3 (Simple 1-RTT Handshake)"``.
        steps: every step of the section, in RFC order.
    """

    section: int
    source: str
    steps: tuple[Step, ...]

    def find_all(self, actor: Actor, action_prefix: str) -> list[Step]:
        """Return, in order, the steps of ``actor`` whose action starts with the prefix."""
        return [
            step
            for step in self.steps
            if step.actor == actor and step.action.startswith(action_prefix)
        ]

    def find(self, actor: Actor, action_prefix: str, nth: int = 0) -> Step:
        """Return the ``nth`` (from 0) step of ``actor`` whose action starts with the prefix.

        Raises:
            VectorKeyError: fewer than ``nth + 1`` steps match (a ``KeyError``).
        """
        matches = self.find_all(actor, action_prefix)
        if 0 <= nth < len(matches):
            return matches[nth]
        actions = [step.action for step in self.steps if step.actor == actor]
        raise VectorKeyError(
            f"{self.source} has {len(matches)} {actor} step(s) whose action starts with "
            f"{action_prefix!r}, so there is no nth={nth}; the {actor} actions are {actions}"
        )

    def records(self, actor: Actor) -> list[bytes]:
        """Return, in order, the ``complete record`` of every ``send ...`` step of ``actor``.

        These are the exact bytes that side wrote to the wire.
        """
        return [step.value(_RECORD) for step in self.find_all(actor, "send ")]

    def handshake_messages(self, actor: Actor) -> list[tuple[str, bytes]]:
        """Return, in order, the handshake messages ``actor`` constructed.

        Each item is ``(name, message)``, the message with its 4-byte handshake header,
        from the ``construct a/an <Name> handshake message`` steps. Section 5 labels the
        HelloRetryRequest ``ServerHello`` (as the RFC does), and in section 4 the
        ``ClientHello`` is the one without its PSK binders (RFC 8448 prints the binders
        only in the ``send handshake record`` payload).
        """
        messages: list[tuple[str, bytes]] = []
        for step in self.find_all(actor, "construct a"):
            name = step.action.split(" ")[2]
            messages.append((name, step.value(name)))
        return messages


def load(section: int) -> Trace:
    """Load the RFC 8448 trace of ``section`` (3 to 7).

    Raises:
        VectorKeyError: no data file exists for that section (a ``KeyError``).
        ValueError: the data file does not follow the schema.
    """
    cached = _CACHE.get(section)
    if cached is not None:
        return cached
    if section not in _FILES:
        raise VectorKeyError(
            f"no RFC 8448 data for section {section}; available sections: {sorted(_FILES)}"
        )
    path = _DATA_DIR / _FILES[section]
    with path.open(encoding="utf-8") as file:
        document: object = json.load(file)
    trace = _parse_trace(section, document, path)
    _CACHE[section] = trace
    return trace


def _parse_trace(section: int, document: object, path: Path) -> Trace:
    if not isinstance(document, dict):
        raise ValueError(f"{path}: top level is not an object")
    source = document.get("source")
    raw_steps = document.get("steps")
    if not isinstance(source, str) or not isinstance(raw_steps, list):
        raise ValueError(f"{path}: needs a string 'source' and a list 'steps'")
    steps = tuple(_parse_step(section, index, raw, path) for index, raw in enumerate(raw_steps))
    return Trace(section=section, source=source, steps=steps)


def _parse_step(section: int, index: int, raw: object, path: Path) -> Step:
    where = f"{path}: step {index}"
    if not isinstance(raw, dict):
        raise ValueError(f"{where} is not an object")
    actor = raw.get("actor")
    action = raw.get("action")
    raw_values = raw.get("values")
    text = raw.get("text")
    if actor not in ("client", "server"):
        raise ValueError(f"{where}: actor {actor!r} is neither 'client' nor 'server'")
    if not isinstance(action, str) or not isinstance(text, str):
        raise ValueError(f"{where}: 'action' and 'text' must be strings")
    if not isinstance(raw_values, dict):
        raise ValueError(f"{where}: 'values' must be an object")
    values: dict[str, bytes] = {}
    for label, hex_value in raw_values.items():
        if not isinstance(label, str) or not isinstance(hex_value, str):
            raise ValueError(f"{where}: values must map strings to hex strings")
        values[label] = bytes.fromhex(hex_value)
    return Step(
        section=section,
        index=index,
        actor="client" if actor == "client" else "server",
        action=action,
        values=MappingProxyType(values),
        text=text,
    )


_DATA_DIR: Final = Path(__file__).resolve().parent / "data"
_FILES: Final[Mapping[int, str]] = MappingProxyType(
    {
        3: "rfc8448_section3_simple_1rtt.json",
        4: "rfc8448_section4_resumed_0rtt.json",
        5: "rfc8448_section5_hrr.json",
        6: "rfc8448_section6_client_auth.json",
        7: "rfc8448_section7_compat_mode.json",
    }
)
_RECORD: Final = "complete record"
_CACHE: dict[int, Trace] = {}
