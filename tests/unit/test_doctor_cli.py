"""`python -m doctor --captured DIR` as a user runs it: report and exit 0/1, or one line, exit 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "fixtures" / "doctor"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "doctor", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_a_cause_found_exits_1_with_a_readable_report() -> None:
    proc = _run("--captured", str(CASES / "vm-no-avx"))
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith("ollama-rig doctor: 1 finding")
    assert "[error] The CPU has no AVX" in proc.stdout
    assert "  fix: Give the VM the host's CPU type" in proc.stdout


def test_healthy_exits_0() -> None:
    proc = _run("--captured", str(CASES / "healthy"))
    assert proc.returncode == 0
    assert "every loaded model is 100% GPU" in proc.stdout


def test_json_for_scripts() -> None:
    proc = _run("--captured", str(CASES / "missing-nvidia-uvm"), "--json")
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert [f["code"] for f in data["findings"]] == ["missing-nvidia-uvm"]
    assert set(data["findings"][0]) == {"code", "severity", "cause", "evidence", "fix"}
    assert data["read"] == ["dev-nvidia", "proc-devices"]
    assert data["problems"] == []


def test_warnings_only_exit_0() -> None:
    assert _run("--captured", str(CASES / "server-unreachable")).returncode == 0


def test_missing_folder_is_one_line() -> None:
    line = _one_line_error(_run("--captured", "/nonexistent/capture"))
    assert line == "doctor: /nonexistent/capture is not a folder"


def test_empty_folder_is_one_line(tmp_path: Path) -> None:
    line = _one_line_error(_run("--captured", str(tmp_path)))
    assert line.startswith(f"doctor: no captured outputs in {tmp_path}")


def test_nothing_usable_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "nvidia-smi.txt").write_text("this is not what nvidia-smi prints\n")
    line = _one_line_error(_run("--captured", str(tmp_path)))
    assert line.startswith(f"doctor: nothing usable in {tmp_path}: {tmp_path}/nvidia-smi.txt:")


def test_without_arguments_is_one_line() -> None:
    assert "--captured" in _one_line_error(_run())


def test_bad_and_unknown_files_are_reported_not_fatal(tmp_path: Path) -> None:
    shutil.copy(CASES / "healthy" / "ollama-ps.txt", tmp_path / "ollama-ps.txt")
    (tmp_path / "nvidia-smi.txt").write_text("this is not what nvidia-smi prints\n")
    (tmp_path / "notes.txt").write_text("my notes\n")
    (tmp_path / "journal.txt").write_text("")
    proc = _run("--captured", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    problems = proc.stdout.split("could not use:\n", 1)[1].splitlines()
    assert problems == [
        f"  {tmp_path / 'journal.txt'}: empty: nothing was captured",
        f"  {tmp_path / 'nvidia-smi.txt'}: unparseable: not nvidia-smi output (table, -L, CSV or a"
        " known failure): 'this is not what nvidia-smi prints'",
        f"  {tmp_path / 'notes.txt'}: skipped: not a known KIND (nvidia-smi, nvidia-smi-apps,"
        " ollama-ps, api-ps, ollama-version, journal, cpuinfo, dev-nvidia, proc-devices, lspci,"
        " pci-sysfs, docker-info, daemon-json, container-nvidia-smi, pve-lxc-conf, nvidia-version,"
        " nvidia-libs, iommu-groups, dmesg-iommu, cmdline, modprobe, lxd-config)",
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_one_line(tmp_path: Path) -> None:
    capture = tmp_path / "ollama-ps.txt"
    shutil.copy(CASES / "healthy" / "ollama-ps.txt", capture)
    capture.chmod(0)
    try:
        proc = _run("--captured", str(tmp_path))
    finally:
        capture.chmod(0o644)
    assert proc.returncode == 0
    assert f"{capture}: unreadable: Permission denied" in proc.stdout
