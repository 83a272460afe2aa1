"""`python -m facts.parse KIND [FILE]`: parse a captured command output and print JSON.

Reads FILE, or stdin without one (or with "-"). Exit status 0 with the JSON (indent 2) on
stdout; exit status 1 with one line on stderr for an unknown KIND, an unreadable file or
input the parser does not understand. Never a traceback.
"""

from __future__ import annotations

import json
import sys

from facts.parsers import PARSERS, ParseError

USAGE = "usage: python -m facts.parse KIND [FILE]   (KIND: " + ", ".join(sorted(PARSERS)) + ")"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help") or len(args) > 2:
        print(USAGE, file=sys.stderr if not args or len(args) > 2 else sys.stdout)
        return 0 if args and args[0] in ("-h", "--help") else 1
    kind = args[0]
    parser = PARSERS.get(kind)
    if parser is None:
        print(
            f"facts.parse: unknown KIND {kind!r}; known: {', '.join(sorted(PARSERS))}",
            file=sys.stderr,
        )
        return 1
    try:
        if len(args) == 2 and args[1] != "-":
            with open(args[1], encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        else:
            text = sys.stdin.read()
    except OSError as exc:
        print(f"facts.parse: cannot read {args[1]}: {exc.strerror}", file=sys.stderr)
        return 1
    try:
        result = parser(text)
    except ParseError as exc:
        message = " ".join(str(exc).split())
        print(f"facts.parse: {kind}: {message}", file=sys.stderr)
        return 1
    except Exception as exc:  # a parser bug must still give one line, not a traceback
        print(f"facts.parse: {kind}: internal error {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
