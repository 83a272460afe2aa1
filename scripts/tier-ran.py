"""Fail unless the integration tier really ran: read pytest's JUnit report, count its tests.

Usage: python scripts/tier-ran.py build/junit.xml
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

TIER = "tests.integration."
MIN_TESTS = 1


def main(path: str) -> int:
    ran = skipped = 0
    for case in ET.parse(path).getroot().iter("testcase"):
        if not case.get("classname", "").startswith(TIER):
            continue
        if case.find("skipped") is not None:
            skipped += 1
        else:
            ran += 1
    print(f"integration tier: {ran} ran, {skipped} skipped")
    if ran < MIN_TESTS or skipped:
        print("integration tier did not fully run: CI fails", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
