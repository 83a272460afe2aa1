"""Run the real `pyinfra ... deploy.py` against a test container and read pyinfra's own results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = "tests/integration/inventory.py"


@dataclass
class DeployRun:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def totals(self) -> dict[str, int]:
        """pyinfra's own counts: success (= changed), no_change, error."""
        return dict(self.results.get("totals", {}))

    @property
    def operations(self) -> int:
        return len(self.results.get("operations", []))

    def changed_operations(self) -> list[str]:
        return [op["name"] for op in self.results.get("operations", []) if op["success"]]


def run_deploy(container: str, data: dict[str, Any], *extra: str) -> DeployRun:
    """`pyinfra -y --json tests/integration/inventory.py deploy.py` against container."""
    env = {**os.environ, "RIG_TEST_HOST": container, "RIG_TEST_DATA": json.dumps(data)}
    command = [sys.executable, "-m", "pyinfra", "-y", "--json", *extra, INVENTORY, "deploy.py"]
    started = time.monotonic()
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    run = DeployRun(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)
    try:
        payload = json.loads(proc.stdout)
    except json.JSONDecodeError:
        payload = {}
    run.results = payload.get("results") or {}
    return run
