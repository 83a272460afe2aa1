"""Facts of the kvm topology: IOMMU state and groups, PCI devices with drivers, boot VGA, the
boot loader and the running kernel command line (FACTS.md section 8). Parsing is done by
facts.parsers.pci and facts.parsers.kernel; files' text comes from pyinfra's FileContents.
"""

from __future__ import annotations

import shlex
from typing import Any

from pyinfra.api import FactBase

from facts.parsers import ParseError
from facts.parsers.kernel import parse_cmdline, parse_dmesg_iommu
from facts.parsers.pci import parse_iommu_groups, parse_lspci
from roles.kvm.vfio import GRUB_DEFAULT, KERNEL_CMDLINE, BootLoader, decide_boot_loader

# Kernel log lines the IOMMU verdict reads (facts/parsers/kernel.py names each).
_IOMMU_LINES = "DMAR|IOMMU|iommu|AMD-Vi|Directed I/O|Command line"


class KernelIommuLog(FactBase[dict[str, Any] | None]):
    """The IOMMU verdict of the kernel log (dmesg, else journalctl -k), or None without one.

    .. code:: python

        {"iommu_enabled": True, "vendor": "intel", "evidence": ["DMAR: IOMMU enabled"], ...}
    """

    def command(self) -> str:
        pattern = shlex.quote(_IOMMU_LINES)
        return (
            f"{{ dmesg 2>/dev/null || journalctl -k -b --no-pager 2>/dev/null; }}"
            f" | grep -E {pattern} || true"
        )

    def process(self, output: list[str]) -> dict[str, Any] | None:
        try:
            return parse_dmesg_iommu("\n".join(output))
        except ParseError:
            return None


class IommuGroupCount(FactBase[int]):
    """How many groups /sys/kernel/iommu_groups holds (0: the IOMMU is off)."""

    def command(self) -> str:
        return "ls /sys/kernel/iommu_groups 2>/dev/null | wc -l"

    def process(self, output: list[str]) -> int:
        return int(output[0].strip()) if output and output[0].strip().isdigit() else 0


class IommuGroups(FactBase[dict[str, list[dict[str, Any]]]]):
    """Every IOMMU group and its devices, from sysfs and `lspci -Dnns` (the usual loop).

    .. code:: python

        {"1": [{"address": "0000:01:00.0", "vendor_device": "10de:2484", "class_id": "0300",
                "description": "NVIDIA Corporation GA104 ...", "driver": None, ...}]}
    """

    default = dict

    def requires_command(self) -> str:
        return "lspci"

    def command(self) -> str:
        return (
            'for d in /sys/kernel/iommu_groups/*/devices/*; do [ -e "$d" ] || continue; '
            "g=${d%/devices/*}; printf 'IOMMU group %s %s\\n' \"${g##*/}\""
            ' "$(lspci -Dnns "${d##*/}")"; done'
        )

    def process(self, output: list[str]) -> dict[str, list[dict[str, Any]]]:
        try:
            groups: dict[str, list[dict[str, Any]]] = parse_iommu_groups("\n".join(output))[
                "groups"
            ]
        except ParseError:
            return {}
        return groups


class PciDevices(FactBase[list[dict[str, Any]]]):
    """`lspci -Dnnk` parsed: every PCI function with IDs, class and the driver in use."""

    default = list

    def requires_command(self) -> str:
        return "lspci"

    def command(self) -> str:
        return "lspci -Dnnk"

    def process(self, output: list[str]) -> list[dict[str, Any]]:
        try:
            devices: list[dict[str, Any]] = parse_lspci("\n".join(output))["devices"]
        except ParseError:
            return []
        return devices


class PciBootVga(FactBase[dict[str, bool]]):
    """sysfs boot_vga of each display function: True for the one the firmware used."""

    default = dict

    def command(self) -> str:
        return (
            'for f in /sys/bus/pci/devices/*/boot_vga; do [ -r "$f" ] || continue; '
            'd=${f%/boot_vga}; echo "${d##*/} $(cat "$f")"; done'
        )

    def process(self, output: list[str]) -> dict[str, bool]:
        found = {}
        for line in output:
            parts = line.split()
            if len(parts) == 2:
                found[parts[0].lower()] = parts[1] == "1"
        return found


class BootLoaderKind(FactBase[BootLoader]):
    """Where the kernel command line is configured: GRUB, or systemd-boot via proxmox-boot-tool."""

    def command(self) -> str:
        return (
            f"[ -e {GRUB_DEFAULT} ] && echo has-grub-default; "
            f"[ -e {KERNEL_CMDLINE} ] && echo has-kernel-cmdline; "
            "if command -v proxmox-boot-tool >/dev/null 2>&1; then echo has-proxmox-boot-tool;"
            " proxmox-boot-tool status 2>&1; fi; true"
        )

    def process(self, output: list[str]) -> BootLoader:
        markers = {line.strip() for line in output}
        return decide_boot_loader(
            grub_default="has-grub-default" in markers,
            kernel_cmdline="has-kernel-cmdline" in markers,
            proxmox_boot_tool="\n".join(output) if "has-proxmox-boot-tool" in markers else None,
        )


class ProcCmdline(FactBase[list[str]]):
    """The running kernel's parameters (/proc/cmdline)."""

    default = list

    def command(self) -> str:
        return "cat /proc/cmdline"

    def process(self, output: list[str]) -> list[str]:
        try:
            return parse_cmdline("\n".join(output))
        except ParseError:
            return []


class PciDriverInUse(FactBase[str | None]):
    """The driver bound to one PCI function (`lspci -nnk -s ADDRESS`), None when none is."""

    def requires_command(self, address: str) -> str:
        return "lspci"

    def command(self, address: str) -> str:
        return f"lspci -nnk -s {shlex.quote(address)}"

    def process(self, output: list[str]) -> str | None:
        try:
            devices = parse_lspci("\n".join(output))["devices"]
        except ParseError:
            return None
        driver: str | None = devices[0]["driver"]
        return driver


class MissingCommands(FactBase[list[str]]):
    """Which of these commands the host lacks (`command -v`), e.g. ["update-grub"]."""

    default = list

    def command(self, commands: list[str]) -> str:
        checks = " ".join(shlex.quote(c) for c in commands)
        return f'for c in {checks}; do command -v "$c" >/dev/null 2>&1 || echo "$c"; done; true'

    def process(self, output: list[str]) -> list[str]:
        return [line.strip() for line in output if line.strip()]


class LibvirtDomainXml(FactBase[str | None]):
    """The persistent definition of a libvirt domain (`virsh dumpxml --inactive`), None if
    there is no such domain on qemu:///system."""

    def requires_command(self, domain: str) -> str:
        return "virsh"

    def command(self, domain: str) -> str:
        quoted = shlex.quote(domain)
        return f"virsh -c qemu:///system dumpxml --inactive {quoted} 2>/dev/null || true"

    def process(self, output: list[str]) -> str | None:
        text = "\n".join(output).strip()
        return text if text.startswith("<domain") else None


class QmConfig(FactBase[dict[str, str] | None]):
    """`qm config <vmid>` as {key: value} (roles.kvm.vm.parse_qm_config), None if no such VM."""

    def requires_command(self, vmid: int) -> str:
        return "qm"

    def command(self, vmid: int) -> str:
        return f"qm config {int(vmid)} 2>/dev/null || true"

    def process(self, output: list[str]) -> dict[str, str] | None:
        from roles.kvm.vm import parse_qm_config

        config = parse_qm_config("\n".join(output))
        return config or None


class AptSourceFiles(FactBase[list[str]]):
    """The APT source files: /etc/apt/sources.list and sources.list.d's *.list and *.sources
    (one-line and deb822 formats, sources.list(5)); read each with FileContents."""

    default = list

    def command(self) -> str:
        return (
            "for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list"
            ' /etc/apt/sources.list.d/*.sources; do [ -f "$f" ] && echo "$f"; done; true'
        )

    def process(self, output: list[str]) -> list[str]:
        return [line.strip() for line in output if line.strip().startswith("/")]


class LoadedKernelModules(FactBase[list[str]]):
    """Names of the loaded kernel modules (/proc/modules, what lsmod lists), e.g. ["nouveau"]."""

    default = list

    def command(self) -> str:
        return "cat /proc/modules 2>/dev/null || true"

    def process(self, output: list[str]) -> list[str]:
        names = [line.split()[0] for line in output if line.strip()]
        return [name for name in names if name != "Module"]  # lsmod's header, in recordings
