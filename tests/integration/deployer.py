"""Run the real `pyinfra ... deploy.py` against a test container and read pyinfra's own results;
the helpers the integration tests share around it: host data for the stand-in, the verify suite
run against the container, and the stand-in's fixture knobs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

from roles.native.plan import sha256_of
from tests.integration import testbed
from tests.integration.testbed import ROOT, sh  # noqa: F401  (sh: the tests' import place)

# CI sets this: a missing engine or tool must fail the run, not skip the tier quietly.
REQUIRED = os.environ.get("RIG_REQUIRE_INTEGRATION") == "1"
INVENTORY = "tests/integration/inventory.py"
MODEL = "phi4-mini:3.8b"  # trained for 128K: a 32K model cannot give the 64K asked for
VARIANT = "phi4-mini-64k"
API = "http://127.0.0.1:11434"
# The stand-in's fixture knobs (tests/standin/ollama_standin.py) go in this drop-in, never
# in the one the deploy writes, so a converge neither sees nor undoes them.
STANDIN_DROPIN = "/etc/systemd/system/ollama.service.d/zz-standin-fixture.conf"
SMI = "/usr/local/bin/nvidia-smi"  # fake_nvidia_smi's script: first on the deploy's PATH
NVIDIA_SMI_STANDIN = """#!/bin/sh
# TEST FIXTURE standing in for nvidia-smi: prints the output the test recorded.
cat /etc/ollama-rig-test/nvidia-smi.out
"""


def unavailable(reason: str) -> NoReturn:
    """What a test does without its engine or tool: skip, or fail where CI requires the tier."""
    if REQUIRED:
        pytest.fail(reason)
    pytest.skip(reason)


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


def changed(run: DeployRun) -> str:
    """What a run changed, with the end of its log: the message of a 'changes nothing' check."""
    return f"changed: {run.changed_operations()}\n{run.stderr[-3000:]}"


def ran_in_order(run: DeployRun, *endings: str) -> None:
    """Each ending names an operation that changed something, and they ran in this order."""
    names = run.changed_operations()
    at = [next((i for i, name in enumerate(names) if name.endswith(end)), -1) for end in endings]
    assert -1 not in at and at == sorted(at), f"{endings}\n{changed(run)}"


def run_deploy(
    container: str, data: dict[str, Any], *extra: str, deploy: str = "deploy.py"
) -> DeployRun:
    """`pyinfra -y --json tests/integration/inventory.py deploy.py` against container."""
    env = {**os.environ, "RIG_TEST_HOST": container, "RIG_TEST_DATA": json.dumps(data)}
    command = [sys.executable, "-m", "pyinfra", "-y", "--json", *extra, INVENTORY, deploy]
    started = time.monotonic()
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    run = DeployRun(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)
    try:
        payload = json.loads(proc.stdout)
    except json.JSONDecodeError:
        payload = {}
    run.results = payload.get("results") or {}
    return run


def standin_data(archive: Path, **overrides: Any) -> dict[str, Any]:
    """Host data of the native topology: the stand-in release in archive, MODEL and its 64K
    VARIANT, no GPU (GPU checks run with --rig-gpu and set_standin_vram)."""
    data: dict[str, Any] = {
        "gpu": "none",
        "ollama_archive_path": str(archive),
        "ollama_archive_sha256": sha256_of(str(archive)),
        "ollama_models": [MODEL],
        "ollama_model_variants": {VARIANT: {"from": MODEL, "num_ctx": 65536}},
        "ollama_start_timeout": 30,
    }
    data.update(overrides)
    return data


def run_verify(
    container: str, *args: str, suite: str = "tests/verify"
) -> subprocess.CompletedProcess[str]:
    """The verify suite (or one file of it) against the container, as a user runs it."""
    command = [sys.executable, "-m", "pytest", suite, f"--hosts=docker://{container}"]
    command += ["-p", "no:cacheprovider", "-rA", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def api_version(container: str) -> str:
    """The body GET /api/version answers in the container, without spaces ("" when none)."""
    return sh(container, f"curl -fsS {API}/api/version", check=False).replace(" ", "")


def wait_http(container: str, url: str, timeout: int = 30) -> None:
    """Wait until url answers inside the container (timeout: seconds, as ollama_start_timeout)."""
    sh(
        container,
        f"end=$(( $(date +%s) + {timeout} )); until curl -fs {url} >/dev/null; do"
        ' [ "$(date +%s)" -lt "$end" ] || exit 1; sleep 0.2; done',
    )


def set_standin_env(container: str, **env: str) -> None:
    """Restart the stand-in with env in its fixture drop-in (none given: drop-in removed)."""
    if env:
        lines = "".join(f"Environment={name}={value}\\n" for name, value in env.items())
        sh(container, f"printf '[Service]\\n{lines}' > {STANDIN_DROPIN}")
    else:
        testbed.exec_in(container, "rm", "-f", STANDIN_DROPIN)
    testbed.exec_in(container, "systemctl", "daemon-reload")
    testbed.exec_in(container, "systemctl", "restart", "ollama.service")
    wait_http(container, f"{API}/api/version")


def fake_nvidia_smi(container: str, output: str) -> None:
    """TEST FIXTURE standing in for nvidia-smi in the container: prints output (chosen by the
    test), whatever the arguments. Never installed by a deploy."""
    sh(container, "mkdir -p /etc/ollama-rig-test")
    sh(container, f"cat > {SMI} <<'EOF'\n{NVIDIA_SMI_STANDIN}EOF\nchmod 755 {SMI}")
    sh(container, f"cat > /etc/ollama-rig-test/nvidia-smi.out <<'EOF'\n{output}EOF")


def set_standin_vram(container: str, vram_bytes: int | None) -> None:
    """Fixture knob of the stand-in: how much VRAM its simulated GPU has (None: no drop-in)."""
    if vram_bytes is None:
        set_standin_env(container)
    else:
        set_standin_env(container, OLLAMA_STANDIN_VRAM_BYTES=str(vram_bytes))
