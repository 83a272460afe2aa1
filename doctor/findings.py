"""A finding: one cause of a CPU fallback (or a risk of one), the evidence, and the fix."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# error: explains a fallback seen in the captures; warning: will cause one or may have;
# info: worth knowing (e.g. the context was silently capped), not a fallback.
SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    """What the doctor concluded, in plain words, with the lines that show it."""

    code: str  # stable id scripts may match on, e.g. "docker-no-nvidia-runtime"
    cause: str
    fix: str
    evidence: tuple[str, ...] = field(default_factory=tuple)
    severity: str = "error"

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["evidence"] = list(self.evidence)
        return data
