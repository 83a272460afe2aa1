"""`python -m facts.parse KIND [FILE]` as a user runs it: JSON out, or one line and exit 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from facts.parsers import PARSERS

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "outputs"


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "facts.parse", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _one_clean_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_file_argument_prints_json() -> None:
    proc = _run("ollama-ps", str(FIXTURES / "ollama-ps" / "context-100gpu.txt"))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["models"][0]["name"] == "qwen2.5vl:latest"
    assert data["models"][0]["gpu_percent"] == 100
    assert proc.stdout.startswith('{\n  "models"')  # indent 2


def test_stdin_when_no_file() -> None:
    text = (FIXTURES / "nvidia-smi" / "fail-no-driver.txt").read_text()
    proc = _run("nvidia-smi", stdin=text)
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["error"] == "no-driver"


def test_dash_means_stdin() -> None:
    proc = _run("proc-devices", "-", stdin="195 nvidia\n511 nvidia-uvm\n")
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["uvm_major"] == 511


@pytest.mark.parametrize("kind", sorted(PARSERS))
def test_unparseable_input_gives_one_line(kind: str) -> None:
    line = _one_clean_line(_run(kind, stdin="\x00garbage that is no command output\n"))
    assert line.startswith(f"facts.parse: {kind}: ")


def test_unknown_kind_gives_one_line() -> None:
    line = _one_clean_line(_run("nvidia-sm", stdin="x"))
    assert "unknown KIND 'nvidia-sm'" in line and "nvidia-smi" in line


def test_missing_file_gives_one_line() -> None:
    line = _one_clean_line(_run("lspci", str(ROOT / "no" / "such" / "file.txt")))
    assert "cannot read" in line


def test_no_arguments_gives_usage_and_exit_1() -> None:
    line = _one_clean_line(_run())
    assert line.startswith("usage: python -m facts.parse KIND [FILE]")


def test_invalid_daemon_json_names_line_and_column() -> None:
    path = FIXTURES / "daemon-json" / "invalid-trailing-comma.json"
    line = _one_clean_line(_run("daemon-json", str(path)))
    assert "line 9 column 27" in line


def test_noheader_csv_with_unknown_columns_says_what_to_do() -> None:
    path = FIXTURES / "nvidia-smi" / "csv-noheader-nounits-name-free.txt"
    line = _one_clean_line(_run("nvidia-smi", str(path)))
    assert "parse_nvidia_smi_query" in line


def test_required_kinds_are_registered() -> None:
    required = {
        "ollama-ps",
        "api-ps",
        "ollama-list",
        "nvidia-smi",
        "lspci",
        "iommu-groups",
        "dmesg-iommu",
        "proc-devices",
        "pve-lxc-conf",
        "docker-info",
        "daemon-json",
        "ollama-log",
        "cmdline",
    }
    assert required <= set(PARSERS)
