"""Facts of the LXC topology: device majors and nodes on the host, the Proxmox version, a
container's config and state, and the NVIDIA driver version inside a container."""

from __future__ import annotations

import re
import shlex
from typing import Any

from pyinfra.api import FactBase

from doctor.parsers import parse_dev_nvidia
from facts.parsers import ParseError
from facts.parsers.kernel import parse_proc_devices

PVE_LXC_DIR = "/etc/pve/lxc"
_MISSING = "__ollama_rig_missing__"
_PVE_VERSION = re.compile(r"pve-manager/(\d+)\.(\d+)")
_MODULE = re.compile(r"Kernel Module(?: for \S+)?\s+(\d+\.\d+(?:\.\d+)?)\b")
_LIBRARY = re.compile(r"libnvidia-ml\.so\.(\d+\.\d+(?:\.\d+)?)$")
# Where the .run installer and Debian/Ubuntu/Fedora packages put the libraries.
_LIB_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib")


def pve_manager_version(pveversion: str) -> tuple[int, int] | None:
    """`pveversion` output ("pve-manager/8.2.4/faa83925 (running kernel: ...)") -> (8, 2)."""
    match = _PVE_VERSION.search(pveversion)
    return (int(match.group(1)), int(match.group(2))) if match else None


def pve_config_path(vmid: int) -> str:
    """Where Proxmox keeps container vmid's config (a pmxcfs path)."""
    return f"{PVE_LXC_DIR}/{int(vmid)}.conf"


class ProcDevices(FactBase[dict[str, Any]]):
    """Character and block device majors from /proc/devices (parse_proc_devices).

    .. code:: python

        {"majors": {"nvidia": 195, "nvidia-uvm": 509, ...}, "uvm_major": 509, ...}
    """

    def command(self) -> str:
        return "cat /proc/devices"

    def process(self, output: list[str]) -> dict[str, Any]:
        return parse_proc_devices("\n".join(output))


class NvidiaDeviceNodes(FactBase[dict[str, Any]]):
    """The /dev/nvidia* nodes (`ls -ld`, parsed by doctor.parsers.parse_dev_nvidia).

    .. code:: python

        {"devices": {"nvidia0": {"major": 195, "minor": 0}, ...}, "gpus": ["nvidia0"],
         "has_ctl": True, "has_uvm": True, "error": None}
    """

    def command(self) -> str:
        # -d: /dev/nvidia-caps is a directory; list it, not its contents. Exit 0 when none.
        return "ls -ld /dev/nvidia* 2>&1 || true"

    def process(self, output: list[str]) -> dict[str, Any]:
        try:
            return parse_dev_nvidia("\n".join(output))
        except ParseError:
            return {
                "devices": {},
                "gpus": [],
                "has_ctl": False,
                "has_uvm": False,
                "error": "unparseable",
            }


class PveVersion(FactBase[dict[str, Any]]):
    """`pveversion`'s line and its pve-manager (major, minor); both None off Proxmox VE.

    .. code:: python

        {"line": "pve-manager/8.2.4/faa83925 (running kernel: 6.8.8-2-pve)", "version": [8, 2]}
    """

    @staticmethod
    def default() -> dict[str, Any]:  # pyinfra's value for an empty output (not Proxmox)
        return {"line": None, "version": None}

    def command(self) -> str:
        return "pveversion 2>/dev/null || true"

    def process(self, output: list[str]) -> dict[str, Any]:
        line = next((x.strip() for x in output if x.startswith("pve-manager/")), None)
        version = pve_manager_version(line) if line else None
        return {"line": line, "version": list(version) if version else None}


class TextFile(FactBase[str | None]):
    """A text file exactly as it is (blank lines and trailing spaces kept, one final newline),
    or None when it does not exist."""

    def command(self, path: str) -> str:
        q_path = shlex.quote(path)
        return f"if [ -f {q_path} ]; then cat {q_path}; else echo {_MISSING}; fi"

    def process(self, output: list[str]) -> str | None:
        if output == [_MISSING]:
            return None
        return "\n".join(output) + "\n" if output else ""


class PctStatus(FactBase[str | None]):
    """`pct status <vmid>`: "running", "stopped", ..., or None when there is no such container."""

    def command(self, vmid: int) -> str:
        return f"pct status {int(vmid)} 2>&1 || true"

    def process(self, output: list[str]) -> str | None:
        for line in output:
            key, _, value = line.partition(":")
            if key.strip() == "status" and value.strip():
                return value.strip()
        return None


class NvidiaKernelModuleVersion(FactBase[dict[str, Any]]):
    """The loaded NVIDIA kernel module's version from /proc/driver/nvidia/version, version None
    without one. A container sees the host's file, so this is the host driver's version in both.

    Lines read: "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 ..." and,
    for the open modules, "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.86.15 ...".

    .. code:: python

        {"version": "550.54.14"}
    """

    @staticmethod
    def default() -> dict[str, Any]:  # pyinfra's value for an empty output (no driver loaded)
        return {"version": None}

    def command(self) -> str:
        return "cat /proc/driver/nvidia/version 2>/dev/null || true"

    def process(self, output: list[str]) -> dict[str, Any]:
        for line in output:
            if match := _MODULE.search(line):
                return {"version": match.group(1)}
        return {"version": None}


class NvidiaLibraryVersions(FactBase[list[str]]):
    """Versions of the NVIDIA user-space libraries installed (from libnvidia-ml.so.<version>,
    which every driver install ships), sorted; [] when there are none."""

    default = list

    def command(self) -> str:
        dirs = " ".join(f"{d}/libnvidia-ml.so.*" for d in _LIB_DIRS)
        return f"ls -1 {dirs} 2>/dev/null || true"

    def process(self, output: list[str]) -> list[str]:
        found = {m.group(1) for line in output if (m := _LIBRARY.search(line.strip()))}
        return sorted(found)
