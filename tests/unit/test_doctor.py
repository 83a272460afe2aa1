"""The doctor on captured-output folders made from real recorded outputs (tests/fixtures/doctor).

Each folder holds files named by KIND with a .source sidecar (URL first). The cause each
folder must produce is written here, read off the recordings, never taken from the doctor.
A folder without an entry here fails test_every_case_is_checked.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import doctor
from doctor.captures import read_folder
from doctor.diagnose import diagnose
from doctor.kinds import KINDS
from doctor.report import build_report, render_text

CASES_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "doctor"
README = Path(__file__).resolve().parents[2] / "doctor" / "README.md"

# case folder -> (the finding code it must produce, its severity)
CASES = {
    "docker-no-nvidia-runtime": ("docker-no-nvidia-runtime", "error"),
    "docker-runtime-not-loaded": ("docker-runtime-not-loaded", "warning"),
    "driver-library-mismatch": ("driver-library-mismatch", "error"),
    "no-driver": ("no-driver", "error"),
    "gpu-lost-in-container": ("gpu-lost-in-container", "error"),
    "missing-nvidia-uvm": ("missing-nvidia-uvm", "error"),
    "vm-no-avx": ("cpu-without-avx", "error"),
    "ollama-too-old-cc": ("ollama-too-old-for-gpu", "error"),
    "model-too-large-sized": ("model-too-large", "error"),
    "model-too-large-log": ("model-too-large", "error"),
    "vram-held": ("vram-held-by-other-process", "warning"),
    "context-capped": ("context-capped", "info"),
    "server-unreachable": ("server-unreachable", "warning"),
}
HEALTHY = "healthy"


def _findings(case: str) -> dict[str, doctor.Finding]:
    return {f.code: f for f in diagnose(read_folder(CASES_DIR / case))}


@pytest.mark.parametrize("case", sorted(CASES))
def test_case_names_its_cause(case: str) -> None:
    code, severity = CASES[case]
    findings = _findings(case)
    assert code in findings, f"{case}: got {sorted(findings)}"
    finding = findings[code]
    assert finding.severity == severity
    assert finding.cause and finding.fix
    assert finding.evidence, "a finding must quote what it rests on"


@pytest.mark.parametrize("case", sorted(CASES))
def test_case_reads_every_file(case: str) -> None:
    captures = read_folder(CASES_DIR / case)
    assert captures.problems == [], captures.problems


def test_distinct_fallback_causes_at_least_five() -> None:
    errors = {code for code, severity in CASES.values() if severity == "error"}
    assert len(errors) >= 5


def test_healthy_box_has_no_findings() -> None:
    report = build_report(read_folder(CASES_DIR / HEALTHY))
    assert report.findings == []
    assert report.all_on_gpu
    assert "every loaded model is 100% GPU" in render_text(report)


def test_every_case_is_checked() -> None:
    folders = {p.name for p in CASES_DIR.iterdir() if p.is_dir()}
    assert folders == set(CASES) | {HEALTHY}


@pytest.mark.parametrize(
    "path", sorted(p for p in CASES_DIR.rglob("*") if p.is_file() and p.suffix != ".source")
)
def test_every_capture_has_a_source(path: Path) -> None:
    sidecar = path.with_suffix(".source")
    assert sidecar.exists(), f"{path} has no {sidecar.name}"
    assert sidecar.read_text().startswith("https://"), f"{sidecar}: first line must be the URL"


def test_sized_case_says_what_fits() -> None:
    finding = _findings("model-too-large-sized")["model-too-large"]
    sizing = next(line for line in finding.evidence if line.startswith("sizing:"))
    assert "llama3.1:8b at context 4096" in sizing
    assert "3.3 GiB" in sizing  # the free VRAM the scheduler logged
    assert "100% on the GPU" in finding.fix


def test_docker_case_quotes_runtimes_and_the_container() -> None:
    evidence = _findings("docker-no-nvidia-runtime")["docker-no-nvidia-runtime"].evidence
    assert evidence[0] == "docker-info: runtimes runc (default runc)"
    assert any("command not found" in line for line in evidence)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_capture_commands_are_documented(kind: str) -> None:
    command = KINDS[kind].capture
    assert command in README.read_text(), f"doctor/README.md lacks: {command}"
    assert command in (doctor.__doc__ or ""), f"doctor/__init__.py docstring lacks: {command}"
