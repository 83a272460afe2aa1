"""Size strings as the tools on a GPU host print them.

Two conventions meet here and must not be mixed:

- Ollama's CLI (`ollama ps`, `ollama list`) prints decimal sizes with format.HumanBytes:
  1 GB = 1000**3 bytes, truncated to an integer from 10 units up ("19 GB").
- llama.cpp / llama-server log lines and Ollama's own server log print binary sizes
  ("800.00 MiB", "23.6 GiB"): 1 MiB = 1024**2 bytes.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from facts.parsers import ParseError

_DECIMAL_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15}
_BINARY_UNITS = {"B": 1, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*$")


def _scaled(number: str, factor: int) -> int:
    try:
        return int((Decimal(number) * factor).to_integral_value())
    except InvalidOperation as exc:  # pragma: no cover - the regex only lets digits through
        raise ParseError(f"not a number: {number!r}") from exc


def decimal_bytes(text: str) -> int:
    """ "4.7 GB" -> 4700000000, "19 GB" -> 19000000000, "512 B" -> 512 (Ollama's HumanBytes)."""
    match = _SIZE.match(text)
    if not match or match.group(2).upper() not in _DECIMAL_UNITS:
        raise ParseError(f"not a decimal size like '4.7 GB': {text!r}")
    return _scaled(match.group(1), _DECIMAL_UNITS[match.group(2).upper()])


def binary_bytes(number: str, unit: str) -> int:
    """("800.00", "MiB") -> 838860800; units B, KiB, MiB, GiB, TiB."""
    factor = _BINARY_UNITS.get(unit.upper())
    if factor is None:
        raise ParseError(f"not a binary size unit: {unit!r}")
    return _scaled(number, factor)


def binary_size(text: str) -> int:
    """ "23.6 GiB" -> bytes (binary units, as in Ollama's server log)."""
    match = _SIZE.match(text)
    if not match:
        raise ParseError(f"not a size like '23.6 GiB': {text!r}")
    return binary_bytes(match.group(1), match.group(2))
