"""Pure checks of the kvm topology: can this host hand its GPU to a VM, and which functions?

Every rule comes from FACTS.md section 8: CPU virtualization, an active IOMMU, an isolated
IOMMU group (the GPU's own functions and PCI bridges only), never the boot VGA GPU without an
override. The facts come in as a KvmHostFacts (facts/kvm.py reads them); the verdict lists
what was found, what stops the run, and whether vfio-pci can be bound now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from roles.kvm.vfio import (
    INITRAMFS_UPDATE,
    BootLoader,
    merge_kernel_params,
    vfio_ids,
    wanted_kernel_params,
)
from settings import Settings

# PCI class 0x0604 is a PCI-to-PCI bridge (a root port): it may share the GPU's group.
BRIDGE_CLASS = "0604"
# lspci's class names of a display controller, for output without the [03xx] class id.
DISPLAY_CLASSES = ("VGA compatible controller", "3D controller", "Display controller")
# What installs each tool the preparation runs (Debian / Proxmox package names).
TOOL_FIXES = {
    "update-grub": "install grub2-common (it has update-grub)",
    "update-initramfs": "install initramfs-tools, which rebuilds the initramfs with the vfio"
    " modules",
    "proxmox-boot-tool": "install proxmox-kernel-helper (Proxmox VE)",
    "virsh": "install libvirt-clients and libvirt-daemon-system (or set kvm_define_vm=False"
    " to prepare the host only)",
    "qm": "kvm_vm_manager='proxmox' runs on a Proxmox VE node (or set kvm_vm_manager='libvirt',"
    " or kvm_define_vm=False to prepare the host only)",
}
# Drivers that mean "nobody holds this function for the host": vfio-pci (ours) or none yet.
PASSTHROUGH_DRIVERS = {None, "vfio-pci"}


@dataclass(frozen=True)
class KvmHostFacts:
    """What the kvm checks read from a host (facts/kvm.py, facts/host.py)."""

    cpu_flags: list[str]
    # parse_dmesg_iommu's dict ({"iommu_enabled", "vendor", ...}), or None when no kernel log.
    iommu_log: dict[str, Any] | None
    # Number of entries in /sys/kernel/iommu_groups (0: the IOMMU is off).
    iommu_group_count: int
    # parse_iommu_groups(...)["groups"]: {"1": [device, ...]}; {} when there are none.
    iommu_groups: dict[str, list[dict[str, Any]]]
    # parse_lspci(`lspci -Dnnk`)["devices"].
    pci_devices: list[dict[str, Any]]
    # sysfs boot_vga per PCI address ("0000:01:00.0": True).
    boot_vga: dict[str, bool]
    # The running kernel's parameters (/proc/cmdline).
    proc_cmdline: list[str]
    boot_loader: BootLoader
    # The boot loader configuration's text (/etc/default/grub or /etc/kernel/cmdline); None: absent.
    boot_config: str | None
    # `uname -r`, e.g. "6.8.12-4-pve".
    kernel_release: str
    # Tools the preparation runs that the host lacks (update-grub, update-initramfs, ...).
    missing_tools: list[str] = field(default_factory=list)


@dataclass
class KvmVerdict:
    """Lines to show, reasons to stop (empty: go ahead), and what was decided."""

    lines: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    # The GPU's PCI functions (lspci device dicts, full addresses), GPU first.
    functions: list[dict[str, Any]] = field(default_factory=list)
    iommu_active: bool = False
    # True when every function already runs vfio-pci (verified after a reboot).
    bound: bool = False
    # The boot loader configuration with the kernel parameters merged in (None: refused).
    boot_config: str | None = None


def full_address(address: str) -> str:
    """ "01:00.0" -> "0000:01:00.0" (lspci without -D omits PCI domain 0000)."""
    address = address.lower()
    return address if address.count(":") == 2 else f"0000:{address}"


def slot_of(address: str) -> str:
    """ "0000:01:00.1" -> "0000:01:00": the functions of one card share the slot."""
    return full_address(address).rsplit(".", 1)[0]


def cpu_vendor(cpu_flags: list[str]) -> str | None:
    """ "intel" (VT-x: vmx), "amd" (AMD-V: svm), or None when neither is on."""
    if "vmx" in cpu_flags:
        return "intel"
    if "svm" in cpu_flags:
        return "amd"
    return None


def iommu_active(facts: KvmHostFacts) -> bool:
    """Active when /sys/kernel/iommu_groups has groups and the kernel log does not say off."""
    log_says = (facts.iommu_log or {}).get("iommu_enabled")
    return facts.iommu_group_count > 0 and log_says is not False


def is_display(device: dict[str, Any]) -> bool:
    """PCI class 0x03xx (display controller), by id or, without -nn, by name."""
    class_id = device.get("class_id")
    return class_id.startswith("03") if class_id else device.get("class") in DISPLAY_CLASSES


def gpu_functions(devices: list[dict[str, Any]], address: str | None) -> list[dict[str, Any]]:
    """Every function of the chosen NVIDIA GPU, GPU first; [] when there is not exactly one.

    address None: the only NVIDIA display controller (class 03xx) on the host.
    """
    if address is None:
        gpus = [d for d in devices if d["nvidia"] and is_display(d)]
        if len(gpus) != 1:
            return []
        address = gpus[0]["address"]
    slot = slot_of(address)
    found = [dict(d, address=full_address(d["address"])) for d in devices]
    functions = [d for d in found if slot_of(d["address"]) == slot]
    return sorted(functions, key=lambda d: d["address"])


def group_of(groups: dict[str, list[dict[str, Any]]], address: str) -> str | None:
    """The IOMMU group number holding the PCI address, or None."""
    for number, members in groups.items():
        if any(full_address(d["address"]) == full_address(address) for d in members):
            return number
    return None


def group_intruders(members: list[dict[str, Any]], functions: list[dict[str, Any]]) -> list[str]:
    """Devices in the group other than the GPU's functions and PCI bridges, as text."""
    own = {f["address"] for f in functions}
    return [
        f"{full_address(d['address'])} {d['description']} [{d['vendor_device']}]"
        for d in members
        if full_address(d["address"]) not in own and d.get("class_id") != BRIDGE_CLASS
    ]


def _choose_gpu(settings: Settings, facts: KvmHostFacts, verdict: KvmVerdict) -> None:
    functions = gpu_functions(facts.pci_devices, settings.kvm_gpu_address)
    if not functions:
        gpus = [d["address"] for d in facts.pci_devices if d["nvidia"]]
        if settings.kvm_gpu_address:
            why = f"no PCI device at kvm_gpu_address={settings.kvm_gpu_address!r}"
        elif gpus:
            why = f"several NVIDIA functions ({', '.join(gpus)}): set kvm_gpu_address"
        else:
            why = "no NVIDIA GPU in `lspci -Dnnk`"
        verdict.refusals.append(f"no GPU to pass through: {why}")
        return
    verdict.functions = functions
    for f in functions:
        verdict.lines.append(
            f"GPU function {f['address']} [{f['vendor_device']}] {f['description']},"
            f" driver {f['driver'] or 'none'}"
        )
    # vfio-pci ids= claims every device with those IDs: a second identical card goes too.
    ids = vfio_ids(functions)
    own = {f["address"] for f in functions}
    twins = [
        full_address(d["address"])
        for d in facts.pci_devices
        if d["vendor_device"] in ids and full_address(d["address"]) not in own
    ]
    if twins:
        verdict.refusals.append(
            f"`options vfio-pci ids={','.join(ids)}` would also take {', '.join(twins)}"
            " (same vendor:device IDs): binding one of two identical cards by ID is not supported"
        )
    gpu = functions[0]["address"]
    if facts.boot_vga.get(gpu) and not settings.kvm_allow_boot_vga:
        verdict.refusals.append(
            f"{gpu} is the boot VGA device (sysfs boot_vga=1): it drives the host console, and"
            " binding it to vfio-pci leaves the host without a display. Move the console to"
            " another GPU (firmware setting), or set kvm_allow_boot_vga=True to do it anyway"
        )
    held = [
        f"{f['address']} ({f['driver']})"
        for f in functions
        if f["driver"] not in PASSTHROUGH_DRIVERS
    ]
    if held:
        verdict.lines.append(
            f"in use by host drivers: {', '.join(held)}; vfio-pci takes them at the next boot,"
            " so stop what uses the GPU (Ollama, a display server) before that reboot"
        )
    verdict.bound = not held and all(f["driver"] == "vfio-pci" for f in functions)


def _check_group(facts: KvmHostFacts, verdict: KvmVerdict) -> None:
    if not verdict.functions:
        return
    if not verdict.iommu_active:
        verdict.lines.append(
            "IOMMU group: unknown until the IOMMU is on (kernel parameters, then a reboot);"
            " vfio-pci is bound only after the group is checked"
        )
        return
    gpu = verdict.functions[0]["address"]
    number = group_of(facts.iommu_groups, gpu)
    if number is None:
        verdict.refusals.append(f"{gpu} is in no IOMMU group: the IOMMU does not cover it")
        return
    intruders = group_intruders(facts.iommu_groups[number], verdict.functions)
    if intruders:
        verdict.refusals.append(
            f"IOMMU group {number} of {gpu} also holds {'; '.join(intruders)}: a VM must take"
            " the whole group, so these would leave the host too. Move the GPU to another slot"
            " (often the first x16 slot has its own group), or check the firmware's ACS setting"
        )
    else:
        verdict.lines.append(f"IOMMU group {number}: only the GPU's functions and PCI bridges")


def check_kvm_host(settings: Settings, facts: KvmHostFacts) -> KvmVerdict:
    """Summarise the host for passthrough and list every reason not to prepare it."""
    verdict = KvmVerdict()
    vendor = cpu_vendor(facts.cpu_flags)
    if vendor is None:
        verdict.refusals.append(
            "the CPU shows no virtualization extension (no vmx or svm flag): enable Intel VT-x"
            " or AMD-V (SVM) in the firmware setup"
        )
    verdict.lines.append(f"CPU virtualization: {vendor or 'none'}")
    verdict.iommu_active = iommu_active(facts)
    log = facts.iommu_log or {}
    verdict.lines.append(
        f"IOMMU: {'active' if verdict.iommu_active else 'not active'}"
        f" ({facts.iommu_group_count} groups in /sys/kernel/iommu_groups;"
        f" kernel log: {log.get('evidence', ['nothing'])[:1] or ['nothing']})"
    )
    loader = facts.boot_loader
    if loader.refusal:
        verdict.refusals.append(loader.refusal)
    else:
        verdict.lines.append(f"boot loader: {loader.kind} ({loader.config}, `{loader.refresh}`)")
        wanted = wanted_kernel_params(vendor or "amd")
        merged = merge_kernel_params(facts.boot_config or "", loader.kind, wanted)
        if merged.refusal:
            verdict.refusals.append(f"{loader.config}: {merged.refusal}")
        else:
            verdict.boot_config = merged.text
        running = [p for p in wanted if p not in facts.proc_cmdline]
        if running:
            verdict.lines.append(f"running kernel lacks {' '.join(running)}: a reboot is needed")
    for tool in facts.missing_tools:
        verdict.refusals.append(
            f"`{tool}` is missing on the host: {TOOL_FIXES.get(tool, 'install it')}; ollama-rig"
            " changes nothing it could not apply"
        )
    _choose_gpu(settings, facts, verdict)
    _check_group(facts, verdict)
    return verdict


def required_tools(boot_loader: BootLoader, vm_manager: str | None = None) -> list[str]:
    """Commands the preparation runs: the boot loader's refresh, update-initramfs, and what
    defines the VM (virsh for libvirt, qm for proxmox; vm_manager None: no VM defined)."""
    tools = [boot_loader.refresh.split()[0]] if boot_loader.refresh else []
    vm = {"libvirt": ["virsh"], "proxmox": ["qm"]}.get(vm_manager or "", [])
    return [*tools, INITRAMFS_UPDATE.split()[0], *vm]
