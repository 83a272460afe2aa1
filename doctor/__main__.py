"""`python -m doctor --captured DIR [--json]`: diagnose a box from a folder of captured outputs.

Exit status: 0 no cause of a fallback found (warnings and notes may still be printed);
1 at least one finding of severity "error"; 2 bad usage or nothing usable in DIR.
Problems are one line on stderr, never a traceback. How to capture: doctor/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NoReturn

from doctor.captures import read_folder
from doctor.kinds import KINDS
from doctor.report import build_report, render_text


class _OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="python -m doctor",
        description="Name the cause of an Ollama CPU fallback from captured outputs."
        " For a live host: pyinfra inventory/home.py diagnose.py",
    )
    parser.add_argument(
        "--captured",
        metavar="DIR",
        required=True,
        help=f"folder of files named by KIND ({', '.join(KINDS)}), e.g. DIR/nvidia-smi.txt",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    return parser


def _run(folder: Path, as_json: bool) -> int:
    if not folder.is_dir():
        print(f"doctor: {folder} is not a folder", file=sys.stderr)
        return 2
    captures = read_folder(folder)
    if not captures.items:
        print(
            f"doctor: no captured outputs in {folder} (expected files named by KIND,"
            " e.g. nvidia-smi.txt, ollama-ps.txt, journal.txt)",
            file=sys.stderr,
        )
        return 2
    if not any(item.parsed is not None for item in captures.items.values()):
        print(
            f"doctor: nothing usable in {folder}: " + "; ".join(captures.problems), file=sys.stderr
        )
        return 2
    report = build_report(captures)
    print(json.dumps(report.to_dict(), indent=2) if as_json else render_text(report))
    return 1 if report.has_errors else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(Path(args.captured), args.json)
    except OSError as exc:
        print(f"doctor: cannot read {args.captured}: {exc.strerror}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug must still give one line, not a traceback
        print(f"doctor: internal error {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
