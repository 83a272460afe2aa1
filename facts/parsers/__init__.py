"""Pure parsers for command output seen on GPU hosts (DESIGN.md, `python -m facts.parse`).

Every parser takes the captured text and returns a JSON-serialisable dict, or raises
ParseError with one human-readable line.
"""

from __future__ import annotations


class ParseError(ValueError):
    """The input is not the output this parser understands; the message is one line."""
