"""Host facts the preflight reads: CPU flags, init system, NVIDIA PCI functions, ufw."""

from __future__ import annotations

from typing import Any

from pyinfra.api import FactBase


class CpuFlags(FactBase[list[str]]):
    """The CPU feature flags of the first core in /proc/cpuinfo (x86 "flags", Arm "Features").

    .. code:: python

        ["fpu", "avx", "avx2", ...]
    """

    default = list

    def command(self) -> str:
        return "grep -m1 -E '^(flags|Features)[[:space:]]*:' /proc/cpuinfo || true"

    def process(self, output: list[str]) -> list[str]:
        for line in output:
            _, _, flags = line.partition(":")
            return sorted(set(flags.split()))
        return []


class InitSystem(FactBase[str]):
    """The init system: "systemd" when /run/systemd/system exists (sd_booted(3)), else PID 1."""

    def command(self) -> str:
        return "if [ -d /run/systemd/system ]; then echo systemd; else cat /proc/1/comm; fi"

    def process(self, output: list[str]) -> str:
        return output[0].strip() if output else "unknown"


# Vendor 0x10de is NVIDIA; PCI class 0x03 is a display controller (the GPU), 0x0403 its audio.
NVIDIA_VENDOR = "0x10de"
_SYSFS_LOOP = (
    'for d in /sys/bus/pci/devices/*; do [ -r "$d/vendor" ] || continue; '
    'printf \'%s %s %s %s\\n\' "${d##*/}" "$(cat "$d/vendor")" "$(cat "$d/device")" '
    '"$(cat "$d/class")"; done'
)


class NvidiaPciFunctions(FactBase[list[dict[str, Any]]]):
    """NVIDIA PCI functions read from sysfs, so they show without a driver or pciutils.

    .. code:: python

        [{"address": "0000:01:00.0", "vendor_device": "10de:2484", "class": "0300", "gpu": True}]
    """

    default = list

    def command(self) -> str:
        return _SYSFS_LOOP

    def process(self, output: list[str]) -> list[dict[str, Any]]:
        functions = []
        for line in output:
            parts = line.split()
            if len(parts) != 4 or parts[1] != NVIDIA_VENDOR:
                continue
            address, vendor, device, pci_class = parts
            class_hex = pci_class.removeprefix("0x")[:4]
            functions.append(
                {
                    "address": address,
                    "vendor_device": f"{vendor[2:]}:{device[2:]}",
                    "class": class_hex,
                    "gpu": class_hex.startswith("03"),
                }
            )
        return functions


class UfwStatus(FactBase[str]):
    """ufw's state: "active", "inactive", "not-installed", or what `ufw status` said instead.

    `ufw status` starts with "Status: active" or "Status: inactive" (ufw(8)).
    """

    def command(self) -> str:
        return (
            "command -v ufw >/dev/null 2>&1 || { echo not-installed; exit 0; };"
            " ufw status 2>&1 | head -n 1"
        )

    def process(self, output: list[str]) -> str:
        first = output[0].strip() if output else ""
        if first.startswith("Status: "):
            return first.removeprefix("Status: ").strip()
        return first or "unknown"
