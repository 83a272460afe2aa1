"""Pure generation for the host side of passthrough: boot loader, kernel parameters, vfio files.

FACTS.md section 8: `intel_iommu=on` (Intel; AMD's IOMMU is on by default) and `iommu=pt` on
the kernel command line, in GRUB_CMDLINE_LINUX_DEFAULT + `update-grub`, or in
/etc/kernel/cmdline + `proxmox-boot-tool refresh` (Proxmox admin guide, "Host Bootloader" /
"Editing the Kernel Commandline"); the vfio modules at boot (`vfio_virqfd` only before 6.2,
when it was folded into `vfio`); `options vfio-pci ids=...` and `softdep <driver> pre: vfio-pci`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from facts.parsers import ParseError
from facts.parsers.kernel import parse_cmdline_info

GRUB_DEFAULT = "/etc/default/grub"
KERNEL_CMDLINE = "/etc/kernel/cmdline"
MODULES_LOAD = "/etc/modules-load.d/vfio.conf"
MODPROBE = "/etc/modprobe.d/vfio.conf"
INITRAMFS_UPDATE = "update-initramfs -u -k all"
# Drivers that claim an NVIDIA GPU on the host; vfio-pci must load before each (softdep).
GPU_HOST_DRIVERS = ("nvidia", "nouveau")
# `proxmox-boot-tool status`: "<ESP UUID> is configured with: uefi (versions: ...)".
_PBT_ESP = re.compile(r"is configured with:\s*(uefi|grub)\b")


@dataclass(frozen=True)
class BootLoader:
    """Where the kernel command line lives and what applies a change to it."""

    kind: str  # "grub" or "systemd-boot"
    config: str  # the file holding the parameters
    refresh: str  # the command that applies it
    refusal: str | None = None


def decide_boot_loader(
    grub_default: bool, kernel_cmdline: bool, proxmox_boot_tool: str | None
) -> BootLoader:
    """Pick the boot loader from what the host shows.

    + grub_default: /etc/default/grub exists
    + kernel_cmdline: /etc/kernel/cmdline exists
    + proxmox_boot_tool: the output of `proxmox-boot-tool status`, None where it is missing

    Proxmox on ZFS with UEFI (no Secure Boot) boots systemd-boot from ESPs that
    proxmox-boot-tool keeps in sync ("configured with: uefi"); ESPs "configured with: grub"
    still read /etc/default/grub and are refreshed by the same tool.
    """
    modes = set(_PBT_ESP.findall(proxmox_boot_tool or ""))
    if "uefi" in modes:
        if not kernel_cmdline:
            return BootLoader(
                "systemd-boot",
                KERNEL_CMDLINE,
                "proxmox-boot-tool refresh",
                refusal=f"proxmox-boot-tool boots systemd-boot but {KERNEL_CMDLINE} is missing:"
                " write the current command line there first (see `cat /proc/cmdline`)",
            )
        return BootLoader("systemd-boot", KERNEL_CMDLINE, "proxmox-boot-tool refresh")
    if grub_default:
        refresh = "proxmox-boot-tool refresh" if "grub" in modes else "update-grub"
        return BootLoader("grub", GRUB_DEFAULT, refresh)
    if kernel_cmdline:
        return BootLoader(
            "systemd-boot",
            KERNEL_CMDLINE,
            "kernel-install",
            refusal=f"{KERNEL_CMDLINE} without proxmox-boot-tool or GRUB: this boot setup"
            " (kernel-install, UKI) is not supported yet; add intel_iommu=on iommu=pt by hand",
        )
    return BootLoader(
        "unknown",
        "",
        "",
        refusal=f"no {GRUB_DEFAULT} and no {KERNEL_CMDLINE}: cannot tell where the kernel"
        " command line lives; add intel_iommu=on iommu=pt by hand",
    )


def wanted_kernel_params(cpu_vendor: str) -> list[str]:
    """`intel_iommu=on` on Intel (default-on only from 6.8), `iommu=pt` everywhere."""
    return (["intel_iommu=on"] if cpu_vendor == "intel" else []) + ["iommu=pt"]


@dataclass(frozen=True)
class MergedCmdline:
    """The configuration text with the parameters merged in, or why not."""

    text: str
    added: list[str] = field(default_factory=list)
    refusal: str | None = None


def _conflicts(params: list[str], wanted: list[str]) -> list[str]:
    """Parameters the user set to another value than wanted (never overwritten)."""
    have: dict[str, list[str]] = {}
    for param in params:
        key, _, value = param.partition("=")
        have.setdefault(key, []).append(value)
    bad = []
    for want in wanted:
        key, _, value = want.partition("=")
        bad += [f"{key}={v}" for v in have.get(key, []) if value not in v.split(",")]
    # amd_iommu=off turns the AMD IOMMU off whatever else is set.
    bad += [f"amd_iommu={v}" for v in have.get("amd_iommu", []) if "off" in v.split(",")]
    return bad


def _missing(params: list[str], wanted: list[str]) -> list[str]:
    present = {(p.partition("=")[0], v) for p in params for v in p.partition("=")[2].split(",")}
    return [w for w in wanted if (w.partition("=")[0], w.partition("=")[2]) not in present]


def merge_kernel_params(text: str, kind: str, wanted: list[str]) -> MergedCmdline:
    """Add the wanted parameters to /etc/default/grub or /etc/kernel/cmdline text.

    Every existing line and parameter is kept; nothing is added twice (a second run returns
    the text unchanged); a parameter the user set to another value (`intel_iommu=off`,
    `iommu=soft`) is refused, not overwritten.
    """
    if kind != "grub" and not [x for x in text.splitlines() if x.strip() and x.strip()[0] != "#"]:
        return MergedCmdline(
            text, refusal="the file is empty: it must hold the whole command line (root=...)"
        )
    try:
        info = parse_cmdline_info(text) if text.strip() else None
    except ParseError as exc:
        return MergedCmdline(text, refusal=f"cannot read the kernel command line: {exc}")
    params: list[str] = info["params"] if info else []
    if bad := _conflicts(params, wanted):
        return MergedCmdline(
            text,
            refusal=f"{' '.join(bad)} is set: it contradicts {' '.join(wanted)} that passthrough"
            " needs; remove it yourself if you mean to use passthrough",
        )
    missing = _missing(params, wanted)
    if not missing:
        return MergedCmdline(text)
    if kind == "grub":
        return MergedCmdline(_merge_grub(text, missing), added=missing)
    lines = text.splitlines()
    index = next(i for i, x in enumerate(lines) if x.strip() and x.strip()[0] != "#")
    lines[index] = " ".join([lines[index].rstrip(), *missing])
    return MergedCmdline("\n".join(lines) + "\n", added=missing)


_GRUB_DEFAULT_LINE = re.compile(r"^\s*GRUB_CMDLINE_LINUX_DEFAULT=(.*)$")


def _merge_grub(text: str, missing: list[str]) -> str:
    """Rewrite the last GRUB_CMDLINE_LINUX_DEFAULT in place, or append one that extends it."""
    lines = text.splitlines()
    index = max((i for i, x in enumerate(lines) if _GRUB_DEFAULT_LINE.match(x)), default=None)
    if index is not None:
        raw = _GRUB_DEFAULT_LINE.match(lines[index]).group(1)  # type: ignore[union-attr]
        words = " ".join(shlex.split(raw, comments=True)).split()
        # Plain words only: anything with $ or quotes inside keeps its line, extended below.
        if not re.search(r"[$`\\]", raw) and all(re.fullmatch(r"[^\"']+", w) for w in words):
            lines[index] = f'GRUB_CMDLINE_LINUX_DEFAULT="{" ".join([*words, *missing])}"'
            return "\n".join(lines) + "\n"
    lines.append(f'GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT {" ".join(missing)}"')
    return "\n".join(lines) + "\n"


def kernel_at_least(release: str, major: int, minor: int) -> bool:
    """ "6.8.12-4-pve" >= (6, 2)? An unreadable release counts as new."""
    found = re.match(r"^(\d+)\.(\d+)", release)
    return not found or (int(found.group(1)), int(found.group(2))) >= (major, minor)


def vfio_modules(kernel_release: str) -> list[str]:
    """Modules for /etc/modules-load.d/vfio.conf; vfio_virqfd is part of vfio from 6.2."""
    modules = ["vfio", "vfio_iommu_type1", "vfio_pci"]
    return modules if kernel_at_least(kernel_release, 6, 2) else [*modules, "vfio_virqfd"]


def vfio_ids(functions: list[dict[str, Any]]) -> list[str]:
    """vendor:device of every GPU function, each once, in address order."""
    return list(dict.fromkeys(f["vendor_device"] for f in functions))


def softdep_drivers(functions: list[dict[str, Any]]) -> list[str]:
    """Host drivers vfio-pci must load before: nvidia, nouveau, and what lspci -k names for
    each function (snd_hda_intel for the audio function, xhci_pci for a USB-C one)."""
    found: list[str] = list(GPU_HOST_DRIVERS)
    for function in functions:
        for name in [function.get("driver"), *function.get("modules", [])]:
            if name and name != "vfio-pci":
                found.append(name.replace("-", "_"))
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class WayBack:
    """What restores the host driver: files to remove, then the commands to run."""

    remove: list[str]
    commands: list[str]
    kept_params: list[str]


def way_back(cpu_vendor: str, boot_loader: BootLoader) -> WayBack:
    """Undo the vfio binding: remove our two files, rebuild the initramfs, reboot.

    The IOMMU parameters stay: they do not take the GPU from its driver, and any other
    passthrough needs them (remove them from the boot loader configuration by hand).
    """
    return WayBack(
        remove=[MODPROBE, MODULES_LOAD],
        commands=[INITRAMFS_UPDATE],
        kept_params=[f"{p} ({boot_loader.config})" for p in wanted_kernel_params(cpu_vendor)],
    )
