"""Time a first converge and a no-op second converge of deploy.py on a fresh test container.

    .venv/bin/python -m bench.converge [--runs N]

Prints wall time and pyinfra's own counts (operations, changed, unchanged, errors) for each.
Needs what the integration tier needs (scripts/testbed-engine.sh). Figures, not assertions.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from roles.native.plan import sha256_of
from tests.integration import testbed
from tests.integration.deployer import DeployRun, run_deploy
from tests.standin.build_archive import build_archive


def row(label: str, run: DeployRun) -> str:
    totals = run.totals
    return (
        f"{label:<18} {run.seconds:7.2f} s  ops {run.operations:3d}  changed"
        f" {totals.get('success', 0):3d}  unchanged {totals.get('no_change', 0):3d}"
        f"  errors {totals.get('error', 0)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh containers to time")
    args = parser.parse_args()
    if not testbed.engine_available():
        print("no Docker engine: run scripts/testbed-engine.sh first", file=sys.stderr)
        return 1
    testbed.build_image()
    firsts, seconds = [], []
    with tempfile.TemporaryDirectory() as tmp:
        archive = build_archive("0.32.7", Path(tmp))
        data = {
            "gpu": "none",
            "ollama_archive_path": str(archive),
            "ollama_archive_sha256": sha256_of(str(archive)),
            "ollama_models": ["phi4-mini:3.8b"],
        }
        for number in range(1, args.runs + 1):
            container = testbed.create(f"ollama-rig-bench-{number}")
            try:
                first, second = run_deploy(container, data), run_deploy(container, data)
            finally:
                testbed.destroy(f"ollama-rig-bench-{number}")
            if first.returncode or second.returncode:
                print((first.output + second.output)[-3000:], file=sys.stderr)
                return 1
            print(row(f"run {number} first", first))
            print(row(f"run {number} second", second))
            firsts.append(first.seconds)
            seconds.append(second.seconds)
    print(f"median first converge  {statistics.median(firsts):7.2f} s over {args.runs} runs")
    print(f"median second converge {statistics.median(seconds):7.2f} s over {args.runs} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
