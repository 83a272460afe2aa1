"""Byte sizes: parse what users type ("8GiB", "4.7GB", "512MiB", "123456") and print them back.

Decimal units (kB, MB, GB, TB) are powers of 1000, as `ollama list` prints them; binary units
(KiB, MiB, GiB, TiB) are powers of 1024, as nvidia-smi and llama.cpp print them.
"""

from __future__ import annotations

import re

KIB = 1024
MIB = 1024**2
GIB = 1024**3

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": KIB,
    "mib": MIB,
    "gib": GIB,
    "tib": 1024**4,
}

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> int:
    """Return the bytes in `text`; raise ValueError with a one-line reason if it is no size."""
    match = _SIZE_RE.match(str(text))
    if not match:
        raise ValueError(f"not a size: {text!r} (use bytes or a unit, e.g. 8GiB, 4.7GB, 512MiB)")
    number, unit = match.group(1), match.group(2).lower()
    if unit not in _UNITS:
        raise ValueError(
            f"unknown unit {match.group(2)!r} in {text!r} (use B, kB, MB, GB, KiB, MiB, GiB)"
        )
    if unit in ("", "b") and "." in number:
        raise ValueError(f"a plain byte count must be a whole number: {text!r}")
    return int(round(float(number) * _UNITS[unit]))


def human_gb(n: int) -> str:
    """Decimal size with one decimal, the way `ollama ps` reads ("3.8 GB", "986.1 MB")."""
    for unit, size in (("TB", 1000**4), ("GB", 1000**3), ("MB", 1000**2), ("kB", 1000)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def human_gib(n: int) -> str:
    """Binary size with one decimal ("8.0 GiB"), the way VRAM is usually quoted."""
    for unit, size in (("TiB", 1024**4), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"
