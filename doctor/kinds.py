"""Every output the doctor reads: its KIND (the file name in a captured folder), the command
that captures it by hand, the read-only command diagnose.py runs on a live host, and its parser.

Keep doctor/README.md and the doctor package docstring in step with CAPTURE (a unit test
checks that every command below appears in both).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from doctor.parsers import (
    NO_IOMMU_GROUPS,
    parse_compute_apps,
    parse_cpuinfo,
    parse_dev_nvidia_access,
    parse_iommu_listing,
    parse_lxd_config,
    parse_modprobe,
    parse_nvidia_libs,
    parse_nvidia_version,
    parse_ollama_version,
    parse_pci_sysfs,
)
from doctor.serverlog import parse_server_log
from facts.host import NvidiaPciFunctions
from facts.kvm import IommuGroups, KernelIommuLog
from facts.parsers import PARSERS

Parser = Callable[[str], dict[str, Any]]

# compute_cap exists since driver 510; an older driver refuses the whole query, so ask again
# without it (such a driver is too old for Ollama anyway, which the doctor then says).
_SMI_FIELDS = "index,name,memory.total,memory.used,memory.free,driver_version"
_SMI_LIVE = (
    f'out=$(nvidia-smi --query-gpu={_SMI_FIELDS},compute_cap --format=csv 2>&1); case "$out" in '
    f'*"not a valid field"*) out=$(nvidia-smi --query-gpu={_SMI_FIELDS} --format=csv 2>&1);; esac; '
    'printf "%s\\n" "$out"'
)


# The IommuGroups loop prints nothing when the IOMMU is off: say so, so that "off" is a result.
_IOMMU_GROUPS = (
    '[ -n "$(ls -A /sys/kernel/iommu_groups 2>/dev/null)" ] || echo '
    f"'{NO_IOMMU_GROUPS}'; {IommuGroups().command()}"
)
# modprobe.d lines that bind or hold the GPU (vfio-pci ids, softdep, blacklist, NVreg options).
_MODPROBE = "grep -sHE 'vfio|nvidia|nouveau' /etc/modprobe.d/*.conf /lib/modprobe.d/*.conf"
# Where distributions and the .run installer put libnvidia-ml.so.<version> (facts/lxc.py).
_NVIDIA_LIBS = (
    "ls -1 /usr/lib/*/libnvidia-ml.so.* /usr/lib*/libnvidia-ml.so.*"
    " /usr/local/lib/libnvidia-ml.so.*"
)


def _if_found(tool: str, command: str) -> str:
    """Run `command` only where `tool` exists: a missing tool then leaves no capture at all."""
    return f"if command -v {tool} >/dev/null 2>&1; then {command}; fi"


@dataclass(frozen=True)
class Kind:
    """One captured output."""

    name: str
    capture: str  # the command a user runs on the box, output into DIR/<name>.txt
    live: str | None  # what diagnose.py runs (read-only); None: captured by hand only
    parse: Parser
    about: str


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "nvidia-smi",
            f"nvidia-smi --query-gpu={_SMI_FIELDS},compute_cap --format=csv",
            _SMI_LIVE,
            PARSERS["nvidia-smi"],
            "GPUs, VRAM, driver, compute capability (plain `nvidia-smi` works too)",
        ),
        Kind(
            "nvidia-smi-apps",
            "nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv",
            _if_found(
                "nvidia-smi",
                "nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv",
            ),
            parse_compute_apps,
            "processes holding VRAM (the Processes table of `nvidia-smi` works too)",
        ),
        Kind(
            "ollama-ps",
            "ollama ps",
            _if_found("ollama", "ollama ps"),
            PARSERS["ollama-ps"],
            "loaded models, SIZE, PROCESSOR, CONTEXT",
        ),
        Kind(
            "api-ps",
            "curl -s http://127.0.0.1:11434/api/ps",
            None,
            PARSERS["api-ps"],
            "the same as JSON, with exact size and size_vram",
        ),
        Kind(
            "ollama-version",
            "ollama -v",
            _if_found("ollama", "ollama -v"),
            parse_ollama_version,
            "server and client version",
        ),
        Kind(
            "journal",
            "journalctl -u ollama -b --no-pager -n 5000",
            "if systemctl cat ollama >/dev/null 2>&1; then journalctl -u ollama -b --no-pager "
            "-n 5000; fi",
            parse_server_log,
            "the server log (Docker: `docker logs --tail 5000 ollama`)",
        ),
        Kind(
            "cpuinfo",
            "head -n 40 /proc/cpuinfo",
            "head -n 40 /proc/cpuinfo",
            parse_cpuinfo,
            "CPU flags of the first core (AVX in a VM)",
        ),
        Kind(
            "dev-nvidia",
            "ls -l /dev/nvidia*",
            "ls -l /dev/nvidia* 2>&1",
            parse_dev_nvidia_access,
            "NVIDIA device nodes (run inside the container or VM that runs Ollama)",
        ),
        Kind(
            "proc-devices",
            "cat /proc/devices",
            "cat /proc/devices",
            PARSERS["proc-devices"],
            "device majors, incl. the dynamic nvidia-uvm one (on the host)",
        ),
        Kind(
            "lspci",
            "lspci -nnk",
            _if_found("lspci", "lspci -nnk"),
            PARSERS["lspci"],
            "PCI devices: is there an NVIDIA GPU at all, which driver is bound",
        ),
        Kind(
            "pci-sysfs",
            NvidiaPciFunctions().command(),
            NvidiaPciFunctions().command(),
            parse_pci_sysfs,
            "NVIDIA PCI functions from sysfs (when lspci is not installed)",
        ),
        Kind(
            "docker-info",
            "docker info",
            _if_found("docker", "docker info"),
            PARSERS["docker-info"],
            "Docker runtimes: is the nvidia runtime registered",
        ),
        Kind(
            "daemon-json",
            "cat /etc/docker/daemon.json",
            "if [ -r /etc/docker/daemon.json ]; then cat /etc/docker/daemon.json; fi",
            PARSERS["daemon-json"],
            "Docker daemon config: runtimes, default runtime, cgroup driver",
        ),
        Kind(
            "container-nvidia-smi",
            "docker exec ollama nvidia-smi",
            _if_found(
                "docker",
                "if docker inspect ollama >/dev/null 2>&1; then docker exec ollama nvidia-smi; fi",
            ),
            PARSERS["nvidia-smi"],
            "nvidia-smi inside the Ollama container: does the container see the GPU",
        ),
        Kind(
            "pve-lxc-conf",
            "cat /etc/pve/lxc/<id>.conf",
            None,
            PARSERS["pve-lxc-conf"],
            "Proxmox container config: device bind-mounts and cgroup rules (on the host)",
        ),
        Kind(
            "nvidia-version",
            "cat /proc/driver/nvidia/version",
            "cat /proc/driver/nvidia/version",
            parse_nvidia_version,
            "the loaded NVIDIA kernel module's version (a container sees the host's)",
        ),
        Kind(
            "nvidia-libs",
            _NVIDIA_LIBS,
            f"{_NVIDIA_LIBS} 2>/dev/null",
            parse_nvidia_libs,
            "versions of the NVIDIA user-space libraries installed (inside a container: its own)",
        ),
        Kind(
            "iommu-groups",
            _IOMMU_GROUPS,
            _IOMMU_GROUPS,
            parse_iommu_listing,
            "IOMMU groups and their devices (KVM host; none: the IOMMU is off)",
        ),
        Kind(
            "dmesg-iommu",
            "dmesg | grep -E 'DMAR|IOMMU|iommu|AMD-Vi|Directed I/O|Command line'",
            KernelIommuLog().command(),
            PARSERS["dmesg-iommu"],
            "the kernel's IOMMU lines (KVM host; run as root)",
        ),
        Kind(
            "cmdline",
            "cat /proc/cmdline",
            "cat /proc/cmdline",
            PARSERS["cmdline"],
            "the running kernel's parameters (intel_iommu=on, vfio-pci.ids=)",
        ),
        Kind(
            "modprobe",
            _MODPROBE,
            _MODPROBE,
            parse_modprobe,
            "modprobe.d lines for vfio-pci, nvidia, nouveau (KVM host: what should bind the GPU)",
        ),
        Kind(
            "lxd-config",
            "lxc config show <instance> --expanded",
            None,
            parse_lxd_config,
            "LXD/Incus instance config: gpu devices, nvidia.runtime, raw.lxc (on the host)",
        ),
    )
}

# Names a captured folder may also use for a KIND (file stem -> KIND).
ALIASES = {"ollama-log": "journal", "server-log": "journal", "server": "journal"}
