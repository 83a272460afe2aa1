"""The NVIDIA GPUs as the driver reports them (nvidia-smi's CSV query form)."""

from __future__ import annotations

from typing import Any

from pyinfra.api import FactBase

from facts.parsers import ParseError
from facts.parsers.nvidia import NOHEADER_7, parse_nvidia_smi_query

# The parser's 7-column noheader form is exactly what this fact asks for.
QUERY_FIELDS = NOHEADER_7


class NvidiaSmi(FactBase[dict[str, Any]]):
    """GPUs from nvidia-smi, or the driver failure it printed (no-driver, version-mismatch, ...).

    .. code:: python

        {"gpus": [{"name": "NVIDIA GeForce RTX 3070", "memory_total_mib": 8192,
                   "driver_version": "550.54.14", "pci_bus_id": "00000000:01:00.0", ...}],
         "error": None, "message": None}
    """

    def command(self) -> str:
        # Always exit 0: a missing or broken driver is a fact to report, not a failed fact.
        return (
            f"nvidia-smi --query-gpu={','.join(QUERY_FIELDS)} --format=csv,noheader,nounits 2>&1"
            " || true"
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        text = "\n".join(output)
        try:
            return parse_nvidia_smi_query(text, QUERY_FIELDS)
        except ParseError:
            # Output we do not know is reported as such, never taken for "no GPU".
            return {"gpus": [], "error": "unparseable", "message": text.strip()[:200]}
