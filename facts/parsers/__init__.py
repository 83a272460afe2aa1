"""Pure parsers for command output seen on GPU hosts (DESIGN.md, `python -m facts.parse`).

Every parser takes the captured text and returns a JSON-serialisable dict, or raises
ParseError with one human-readable line.
"""

from __future__ import annotations


class ParseError(ValueError):
    """The input is not the output this parser understands; the message is one line."""


# The registry sits below ParseError: every parser module imports ParseError from here.
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

from facts.parsers import docker, kernel, lxc, nvidia, ollama, pci  # noqa: E402

PARSERS: dict[str, Callable[[str], dict[str, Any]]] = {
    "ollama-ps": ollama.parse_ollama_ps,
    "api-ps": ollama.parse_api_ps,
    "ollama-list": ollama.parse_ollama_list,
    "ollama-log": ollama.parse_ollama_log,
    "nvidia-smi": nvidia.parse_nvidia_smi,
    "lspci": pci.parse_lspci,
    "iommu-groups": pci.parse_iommu_groups,
    "dmesg-iommu": kernel.parse_dmesg_iommu,
    "proc-devices": kernel.parse_proc_devices,
    "cmdline": kernel.parse_cmdline_info,
    "pve-lxc-conf": lxc.parse_pve_lxc_conf,
    "docker-info": docker.parse_docker_info,
    "daemon-json": docker.parse_daemon_json,
}
"""KIND (as `python -m facts.parse KIND` takes it) -> parser of the captured text."""
