"""Captured outputs, keyed by KIND, parsed once; read from a folder or given as strings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from doctor.kinds import ALIASES, KINDS
from facts.parsers import ParseError

# Files that sit beside captures and are not captures: provenance sidecars, notes.
_SIDECARS = {".source", ".md"}


@dataclass
class Capture:
    """One output: its text and parsed value, or the one-line reason it could not be used."""

    kind: str
    origin: str  # file path or "live"
    parsed: dict[str, Any] | None = None
    problem: str | None = None
    text: str = ""  # kept so findings can quote the lines they rest on


@dataclass
class Captures:
    """All outputs of one box. `get(kind)` is the parsed value or None (absent or unusable)."""

    items: dict[str, Capture] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # one line per file not read as a KIND

    def get(self, kind: str) -> dict[str, Any] | None:
        item = self.items.get(kind)
        return item.parsed if item else None

    def quote(self, kind: str, *needles: str) -> str | None:
        """The last line of a parsed capture that contains any needle, as "KIND: line"."""
        item = self.items.get(kind)
        if not item or item.parsed is None:
            return None
        for line in reversed(item.text.splitlines()):
            if any(needle in line for needle in needles):
                return f"{kind}: {' '.join(line.split())[:240]}"
        return None

    @property
    def problems(self) -> list[str]:
        """One line per capture that could not be used, then per file skipped."""
        lines = [f"{c.origin}: {c.problem}" for c in self.items.values() if c.problem]
        return lines + self.skipped


def parse_capture(kind: str, text: str, origin: str) -> Capture:
    """Parse `text` as `kind`; any failure becomes a one-line problem, never an exception."""
    if not text.strip():
        return Capture(kind, origin, problem="empty: nothing was captured")
    try:
        return Capture(kind, origin, parsed=KINDS[kind].parse(text), text=text)
    except ParseError as exc:
        return Capture(kind, origin, problem="unparseable: " + " ".join(str(exc).split()))
    except Exception as exc:  # a parser bug must still give one line, not a traceback
        return Capture(kind, origin, problem=f"unparseable: internal error {type(exc).__name__}")


def kind_of(path: Path) -> str | None:
    """ "nvidia-smi.txt" -> "nvidia-smi"; "server-log.log" -> "journal"; unknown -> None."""
    stem = path.name.split(".", 1)[0] if path.suffix else path.name
    stem = ALIASES.get(stem, stem)
    return stem if stem in KINDS else None


def from_outputs(outputs: Mapping[str, str | None], origin: str = "live") -> Captures:
    """Parse live outputs {KIND: text}; empty or None outputs are absent, not problems."""
    captures = Captures()
    for kind, text in outputs.items():
        if text and text.strip():
            captures.items[kind] = parse_capture(kind, text, f"{origin} {kind}")
    return captures


def read_folder(folder: Path) -> Captures:
    """Read DIR/<KIND>[.ext] files; unknown names and unreadable files become one line each."""
    captures = Captures()
    for path in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
        if path.suffix in _SIDECARS or path.is_dir():
            continue
        kind = kind_of(path)
        if kind is None:
            captures.skipped.append(f"{path}: skipped: not a known KIND ({', '.join(KINDS)})")
            continue
        if kind in captures.items:
            captures.skipped.append(f"{path}: skipped: a second file for {kind}")
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            captures.items[kind] = Capture(kind, str(path), problem=f"unreadable: {exc.strerror}")
            continue
        captures.items[kind] = parse_capture(kind, text, str(path))
    return captures
