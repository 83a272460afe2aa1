"""The KVM host: can it hand its GPU to the VM that runs Ollama (FACTS.md 8)?

A VM without its GPU runs every model on the CPU; the host shows why: the IOMMU is off, the
GPU's IOMMU group holds devices the VM cannot take, or a host driver (nvidia, nouveau) holds the
GPU although vfio-pci is configured to. These rules only speak where the captures show that
passthrough is wanted (vfio-pci configured or bound, or IOMMU parameters on the kernel command
line): on a native Ollama host the IOMMU does not matter. The group and binding decisions are
roles/kvm/check.py's and roles/kvm/vfio.py's, so the doctor and the deploy agree.
"""

from __future__ import annotations

from typing import Any

from doctor.captures import Captures
from doctor.findings import Finding
from roles.kvm.check import (
    cpu_vendor,
    full_address,
    gpu_functions,
    group_intruders,
    group_of,
    is_display,
)
from roles.kvm.vfio import INITRAMFS_UPDATE, softdep_drivers, vfio_ids, wanted_kernel_params

VFIO = "vfio_pci"
# Kernel parameters that ask for an IOMMU (or bind vfio-pci) on the command line.
_IOMMU_ON = ("intel_iommu=on", "amd_iommu=on", "iommu=pt")
_IOMMU_OFF = ("intel_iommu=off", "amd_iommu=off", "iommu=off")
_CMDLINE_IDS = ("vfio-pci.ids=", "vfio_pci.ids=")
_BOOT_FIX = (
    "GRUB: add them to GRUB_CMDLINE_LINUX_DEFAULT in /etc/default/grub and run `update-grub`;"
    " Proxmox on ZFS/UEFI (systemd-boot): add them to /etc/kernel/cmdline and run"
    " `proxmox-boot-tool refresh`; then reboot (ollama-rig's kvm topology does both)"
)


def _params(c: Captures) -> list[str] | None:
    """The running kernel's parameters: /proc/cmdline, else the kernel log's command line."""
    cmdline = c.get("cmdline")
    if cmdline is not None:
        return list(cmdline["params"])
    log = c.get("dmesg-iommu") or {}
    return list(log["cmdline"]) if log.get("cmdline") else None


def _cmdline_ids(params: list[str]) -> list[str]:
    return [
        i.lower()
        for p in params
        if p.startswith(_CMDLINE_IDS)
        for i in p.split("=", 1)[1].split(",")
        if i
    ]


def _cmdline_blacklist(c: Captures) -> set[str]:
    """Modules the kernel command line keeps from loading (`modprobe.blacklist=a,b`)."""
    return {
        m.replace("-", "_")
        for p in _params(c) or []
        if p.startswith("modprobe.blacklist=")
        for m in p.split("=", 1)[1].split(",")
        if m
    }


def _devices(c: Captures) -> list[dict[str, Any]]:
    """PCI functions with their drivers: lspci -nnk, else the IOMMU group listing's."""
    lspci = c.get("lspci")
    if lspci:
        return list(lspci["devices"])
    groups = (c.get("iommu-groups") or {}).get("groups") or {}
    return [dict(d, modules=[]) for members in groups.values() for d in members]


def _configured_ids(c: Captures) -> list[str]:
    modprobe = c.get("modprobe") or {}
    return list(dict.fromkeys([*modprobe.get("vfio_ids", []), *_cmdline_ids(_params(c) or [])]))


def passthrough_wanted(c: Captures) -> list[str]:
    """Evidence that this host is meant to pass a device through; [] when nothing shows it."""
    evidence = []
    modprobe = c.get("modprobe") or {}
    if modprobe.get("vfio_ids") or any(
        VFIO in pre for pre in modprobe.get("softdeps", {}).values()
    ):
        evidence.append(c.quote("modprobe", "vfio"))
    params = _params(c) or []
    asked = [p for p in params if p.startswith(_IOMMU_ON + _CMDLINE_IDS)]
    if asked:
        evidence.append(f"cmdline: {' '.join(asked)}")
    bound = [d for d in _devices(c) if d.get("driver") == "vfio-pci"]
    if bound:
        evidence.append(f"lspci: {full_address(bound[0]['address'])} uses vfio-pci")
    return [line for line in evidence if line]


def _severity(wanted: list[str]) -> str:
    """error where vfio-pci is configured or bound; warning on IOMMU parameters alone (iommu=pt
    is also set for other reasons than passthrough)."""
    return (
        "warning"
        if all(line.startswith("cmdline: ") for line in wanted)
        and not any(p in line for line in wanted for p in _CMDLINE_IDS)
        else "error"
    )


def _iommu_off(c: Captures) -> list[str]:
    """Evidence that the IOMMU is off (the rule of roles.kvm.check.iommu_active: groups exist
    and the kernel log does not say it is off)."""
    groups = c.get("iommu-groups")
    log = c.get("dmesg-iommu")
    evidence = []
    if groups is not None and groups["count"] == 0:
        evidence.append("iommu-groups: /sys/kernel/iommu_groups is empty")
    if log is not None and log["iommu_enabled"] is False:
        evidence += [f"dmesg-iommu: {line}" for line in log["evidence"][:2]]
    return evidence


def _vendor(c: Captures) -> str | None:
    log = c.get("dmesg-iommu") or {}
    cpu = c.get("cpuinfo") or {}
    return log.get("vendor") or cpu.get("vendor") or cpu_vendor(cpu.get("flags") or [])


def iommu_off(c: Captures) -> list[Finding]:
    """Passthrough is wanted but the IOMMU is off: kernel parameters, or the firmware."""
    off = _iommu_off(c)
    wanted = passthrough_wanted(c)
    if not off or not wanted:
        return []
    vendor = _vendor(c)
    params = _params(c)
    evidence = off + wanted
    switched_off = [p for p in params or [] if p in _IOMMU_OFF]
    intel_params = " ".join(wanted_kernel_params("intel"))
    if switched_off:
        fix = f"Remove {' '.join(switched_off)} from the kernel command line ({_BOOT_FIX})."
    elif vendor == "intel" and "intel_iommu=on" not in (params or []):
        # Off by default before kernel 6.8 (FACTS.md 8): the parameter is the usual cause.
        if params is not None:
            evidence.append(f"cmdline: no intel_iommu=on ({' '.join(params)[:160]})")
        fix = (
            f"Add {intel_params} to the kernel command line ({_BOOT_FIX})."
            " If the IOMMU stays off, enable VT-d in the firmware (BIOS/UEFI) setup."
        )
    else:
        where = {"intel": "VT-d", "amd": "IOMMU (AMD-Vi)"}.get(vendor or "", "VT-d / AMD IOMMU")
        fix = (
            f"Enable {where} in the firmware (BIOS/UEFI) setup and reboot; the kernel command"
            f" line should have {' '.join(wanted_kernel_params(vendor or 'intel'))}"
            f" ({_BOOT_FIX})."
        )
    return [
        Finding(
            "iommu-off",
            "The IOMMU is off on this host, so vfio-pci cannot hand the GPU to a VM: the VM"
            " gets no GPU and Ollama in it runs on the CPU.",
            fix,
            tuple(evidence),
            _severity(wanted),
        )
    ]


def _gpus(devices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in devices if d.get("nvidia") and is_display(d)]


def iommu_group_shared(c: Captures) -> list[Finding]:
    """The GPU's IOMMU group holds devices other than its own functions and PCI bridges."""
    groups = (c.get("iommu-groups") or {}).get("groups") or {}
    wanted = passthrough_wanted(c)
    if not groups or not wanted:
        return []
    devices = _devices(c)
    found = []
    for gpu in _gpus(devices):
        address = full_address(gpu["address"])
        number = group_of(groups, address)
        if number is None:
            continue
        intruders = group_intruders(groups[number], gpu_functions(devices, address))
        if intruders:
            found.append(
                Finding(
                    "iommu-group-not-isolated",
                    f"IOMMU group {number} of the GPU {address} also holds other devices, and a"
                    " VM must take the whole group: passthrough fails (or takes those devices"
                    " from the host), so the VM gets no GPU.",
                    "Move the GPU to another slot (often the first x16 slot, wired to the CPU,"
                    " has a group of its own), or enable ACS in the firmware if it offers it;"
                    " `pcie_acs_override` (a kernel patch) only hides the sharing, it does not"
                    " isolate the devices.",
                    (f"iommu-groups: group {number}: {gpu['description']} with", *intruders),
                    _severity(wanted),
                )
            )
    return found[:1]


def _bound_by_host(
    c: Captures, ids: list[str]
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(GPU, its functions) for each NVIDIA GPU vfio-pci should hold but a host driver does."""
    devices = _devices(c)
    held = []
    for gpu in _gpus(devices):
        functions = gpu_functions(devices, gpu["address"])
        if not any(f["vendor_device"] in ids for f in functions):
            continue  # vfio-pci is configured for some other device
        gpu_address = full_address(gpu["address"])
        if any(
            f.get("driver") not in (None, "vfio-pci")
            and (f["address"] == gpu_address or f["vendor_device"] in ids)
            for f in functions
        ):
            held.append((gpu, functions))
    return held


def gpu_not_on_vfio(c: Captures) -> list[Finding]:
    """vfio-pci is configured for the GPU, but nvidia (or nouveau, ...) is bound to it."""
    ids = _configured_ids(c)
    if not ids:
        return []
    found = []
    modprobe = c.get("modprobe") or {}
    softdeps = modprobe.get("softdeps") or {}
    for gpu, functions in _bound_by_host(c, ids):
        wanted = vfio_ids(functions)
        drivers = [
            f"{full_address(f['address'])} {f['driver']}" for f in functions if f.get("driver")
        ]
        evidence = [f"lspci: Kernel driver in use: {', '.join(drivers)}"]
        evidence.append(c.quote("modprobe", "ids=") or f"cmdline: vfio-pci ids {','.join(ids)}")
        missing_ids = [i for i in wanted if i not in ids]
        missing_deps = [d for d in softdep_drivers(functions) if VFIO not in softdeps.get(d, [])]
        steps = []
        if missing_ids:
            steps.append(f"`options vfio-pci ids={','.join(wanted)}` (every function of the GPU)")
        in_use = {f["driver"].replace("-", "_") for f in functions if f.get("driver")}
        blacklisted = set(modprobe.get("blacklisted") or []) | _cmdline_blacklist(c)
        needed = [
            d
            for d in missing_deps
            if (d in in_use or d in ("nvidia", "nouveau")) and d not in blacklisted
        ]
        if needed and c.get("modprobe") is not None:
            steps += [f"`softdep {d} pre: vfio-pci`" for d in needed]
        add = f"add {' and '.join(steps)} to /etc/modprobe.d/vfio.conf, then " if steps else ""
        found.append(
            Finding(
                "gpu-not-on-vfio",
                f"vfio-pci is configured for the GPU {full_address(gpu['address'])}, but a host"
                " driver still holds it, so it cannot be passed to the VM (which then runs"
                " Ollama on the CPU).",
                f"On the host {add}rebuild the initramfs (`{INITRAMFS_UPDATE}`) and reboot, so"
                " vfio-pci claims the GPU before nvidia or nouveau load; check with `lspci -nnk`"
                " that every function shows `Kernel driver in use: vfio-pci`.",
                tuple(x for x in evidence if x),
            )
        )
    return found[:1]


def gpu_on_vfio(c: Captures) -> list[Finding]:
    """Every function of an NVIDIA GPU is on vfio-pci: it belongs to a VM, not to this host."""
    devices = _devices(c)
    passed = [
        full_address(gpu["address"])
        for gpu in _gpus(devices)
        if all(f.get("driver") == "vfio-pci" for f in gpu_functions(devices, gpu["address"]))
    ]
    if not passed:
        return []
    return [
        Finding(
            "gpu-on-vfio",
            f"The GPU {', '.join(passed)} is bound to vfio-pci, ready for a VM: this host itself"
            " has no NVIDIA driver on it, which is as it should be on a KVM host.",
            "Run the doctor inside the VM that owns the GPU (pyinfra with the guest's inventory"
            " entry, or captures taken in the guest). To use the GPU on this host instead, undo"
            " the binding (ollama-rig: kvm_restore_host_driver = True).",
            (f"lspci: {passed[0]} Kernel driver in use: vfio-pci",),
            "info",
        )
    ]
