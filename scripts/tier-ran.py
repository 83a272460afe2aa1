"""Fail unless the tiers CI requires really ran: read pytest's JUnit report, count their tests.

Usage: python scripts/tier-ran.py build/junit.xml
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

# Test modules (JUnit classname prefixes) that must run without a single skip in CI.
REQUIRED = {
    "integration tier": "tests.integration.",
    "harness checks by the harnesses' own code": "tests.unit.test_harness_checks",
    "libvirt's own validation of the domain XML": "tests.unit.test_kvm_vm",
}


def main(path: str) -> int:
    cases = list(ET.parse(path).getroot().iter("testcase"))
    failed = False
    for tier, prefix in REQUIRED.items():
        mine = [c for c in cases if c.get("classname", "").startswith(prefix)]
        skipped = [c for c in mine if c.find("skipped") is not None]
        print(f"{tier}: {len(mine) - len(skipped)} ran, {len(skipped)} skipped")
        for case in skipped:
            why = case.find("skipped")
            print(f"  skipped: {case.get('name')}: {why.get('message') if why is not None else ''}")
        if not mine or skipped:
            failed = True
    if failed:
        print("a required tier did not fully run: CI fails", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
