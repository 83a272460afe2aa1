"""The live doctor: facts.doctor.CapturedOutput and `pyinfra @local diagnose.py` on this machine."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from doctor.kinds import KINDS
from facts.doctor import CapturedOutput

ROOT = Path(__file__).resolve().parents[2]
LIVE = sorted(kind for kind, spec in KINDS.items() if spec.live is not None)


@pytest.mark.parametrize("kind", LIVE)
def test_live_command_never_fails_and_keeps_stderr(kind: str) -> None:
    command = CapturedOutput().command(kind)
    assert command.startswith("{ ") and command.endswith(" ; } 2>&1 || true")


@pytest.mark.parametrize("kind", LIVE)
def test_live_command_runs_here(kind: str) -> None:
    # Read-only commands: safe to run on the test machine, must exit 0 whatever is installed.
    proc = subprocess.run(
        ["sh", "-c", CapturedOutput().command(kind)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr


def test_captured_by_hand_only_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="captured by hand"):
        CapturedOutput().command("pve-lxc-conf")


def test_process_joins_lines() -> None:
    assert CapturedOutput().process(["a", "b"]) == "a\nb"


def test_pyinfra_doctor_on_this_machine() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pyinfra", "@local", "diagnose.py", "-y"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Traceback" not in output
    assert "[@local] ollama-rig doctor:" in output
    if shutil.which("nvidia-smi") is None and not Path("/dev/nvidia0").exists():
        assert "No NVIDIA GPU on this machine" in output
