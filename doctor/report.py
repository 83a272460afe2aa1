"""The doctor's report for one box: readable text for people, a dict for `--json`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from doctor.captures import Captures
from doctor.diagnose import diagnose
from doctor.findings import Finding
from doctor.view import loaded_models
from sizing.units import human_gb


@dataclass
class Report:
    """Findings plus what was read and what could not be used."""

    findings: list[Finding]
    read: list[str]
    problems: list[str]
    loaded: list[str] = field(default_factory=list)
    all_on_gpu: bool = False  # models are loaded and every one is "100% GPU"

    @property
    def has_errors(self) -> bool:
        return any(f.severity == "error" for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "findings": [f.to_dict() for f in self.findings],
            "read": self.read,
            "problems": self.problems,
            "loaded": self.loaded,
            "all_on_gpu": self.all_on_gpu,
        }


def _ps_size(size: int) -> str:
    """Bytes the way `ollama ps` prints them: decimal, whole units from 10 up (FACTS.md 1)."""
    return f"{size // 10**9} GB" if size >= 10 * 10**9 else human_gb(size)


def build_report(captures: Captures) -> Report:
    """Diagnose and summarise one box's captures."""
    loaded = [
        f"{m['name']} {_ps_size(int(m['size_bytes']))} {m['processor']}"
        + (f" context {m['context']}" if m.get("context") else "")
        for m in loaded_models(captures)
    ]
    read = sorted(k for k, item in captures.items.items() if item.parsed is not None)
    models = loaded_models(captures)
    all_on_gpu = bool(models) and all(m.get("gpu_percent") == 100 for m in models)
    return Report(diagnose(captures), read, captures.problems, loaded, all_on_gpu)


def _finding_lines(finding: Finding) -> list[str]:
    lines = [f"[{finding.severity}] {finding.cause}"]
    lines += [f"  evidence: {line}" for line in finding.evidence]
    lines.append(f"  fix: {finding.fix}")
    return lines


def render_text(report: Report) -> str:
    """Plain text, one block per finding."""
    count = len(report.findings)
    head = f"ollama-rig doctor: {count} finding{'s' if count != 1 else ''}"
    lines = [head + f" (read: {', '.join(report.read) or 'nothing'})"]
    if report.loaded:
        lines.append("loaded: " + "; ".join(report.loaded))
    if not report.findings:
        where = ": every loaded model is 100% GPU." if report.all_on_gpu else " in the captures."
        lines.append("No cause of a CPU fallback found" + where)
    for finding in report.findings:
        lines += ["", *_finding_lines(finding)]
    if report.problems:
        lines += ["", "could not use:"] + [f"  {line}" for line in report.problems]
    return "\n".join(lines)
