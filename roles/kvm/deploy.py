"""Host preparation of the kvm topology, as one pyinfra deploy.

facts -> checks (any refusal stops before a change) -> kernel parameters -> vfio files ->
initramfs / boot loader refreshed only when those changed -> reboot only when allowed ->
vfio-pci verified. With kvm_restore_host_driver the vfio files go instead (the way back).
Then the VM is defined (roles/kvm/vm.py). The guest is an inventory host of its own
(topology native, kvm_guest=True: roles/kvm/guest.py).
"""

from __future__ import annotations

from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.api.operation import OperationMeta
from pyinfra.facts.files import FileContents
from pyinfra.facts.server import KernelVersion
from pyinfra.operations import files, server
from pyinfra.operations.util import any_changed

from facts.host import CpuFlags
from facts.kvm import (
    BootLoaderKind,
    IommuGroupCount,
    IommuGroups,
    KernelIommuLog,
    MissingCommands,
    PciBootVga,
    PciDevices,
    ProcCmdline,
)
from roles.kvm.check import (
    KvmHostFacts,
    KvmVerdict,
    check_kvm_host,
    cpu_vendor,
    required_tools,
)
from roles.kvm.operations import (
    kernel_params,
    libvirt_domain,
    proxmox_vm,
    reboot_gate,
    vfio_bound,
    write_manifest,
)
from roles.kvm.vfio import (
    INITRAMFS_UPDATE,
    MODPROBE,
    MODULES_LOAD,
    softdep_drivers,
    vfio_ids,
    vfio_modules,
    wanted_kernel_params,
)
from roles.kvm.vm import domain_xml, qm_wanted
from settings import Settings
from templates import template_path

# The verify suite's manifest of a kvm host (tests/verify/test_kvm.py reads it).
KVM_MANIFEST = "/etc/ollama-rig/kvm.json"
# Where the defined domain's XML is kept (what `virsh define` read).
VM_DIR = "/etc/ollama-rig/kvm"


class KvmPreflightError(DeployError):
    """The host cannot hand its GPU to a VM as configured; the message says why and what to do."""


def vm_manager(settings: Settings) -> str | None:
    """What defines the VM in this run: "libvirt", "proxmox", or None (no VM step)."""
    defining = settings.kvm_define_vm and not settings.kvm_restore_host_driver
    return settings.kvm_vm_manager if defining else None


def read_kvm_facts(settings: Settings) -> KvmHostFacts:
    """Everything check_kvm_host reads, from the current host."""
    loader = host.get_fact(BootLoaderKind)
    config = host.get_fact(FileContents, path=loader.config) if loader.config else None
    return KvmHostFacts(
        cpu_flags=host.get_fact(CpuFlags),
        iommu_log=host.get_fact(KernelIommuLog),
        iommu_group_count=host.get_fact(IommuGroupCount),
        iommu_groups=host.get_fact(IommuGroups),
        pci_devices=host.get_fact(PciDevices),
        boot_vga=host.get_fact(PciBootVga),
        proc_cmdline=host.get_fact(ProcCmdline),
        boot_loader=loader,
        boot_config=None if config is None else "\n".join(config) + "\n",
        kernel_release=host.get_fact(KernelVersion) or "",
        missing_tools=host.get_fact(
            MissingCommands, commands=required_tools(loader, vm_manager(settings))
        ),
    )


@deploy("KVM host: IOMMU and vfio-pci for the GPU")
def prepare_kvm_host(settings: Settings) -> KvmVerdict:
    """Prepare the host for GPU passthrough (or undo it), after checking it can be done."""
    facts = read_kvm_facts(settings)
    verdict = check_kvm_host(settings, facts)
    if verdict.refusals:
        raise KvmPreflightError(f"kvm topology on {host.name}: " + "; ".join(verdict.refusals))
    loader = facts.boot_loader
    wanted = wanted_kernel_params(cpu_vendor(facts.cpu_flags) or "amd")
    addresses = [f["address"] for f in verdict.functions]
    restore = settings.kvm_restore_host_driver

    params = kernel_params(
        name=f"Kernel parameters {' '.join(wanted)} in {loader.config}",
        path=loader.config,
        kind=loader.kind,
        wanted=wanted,
    )
    server.shell(
        name=f"Apply the kernel command line ({loader.refresh})",
        commands=[loader.refresh],
        _if=params.did_change,
    )
    modules: OperationMeta | None
    modprobe: OperationMeta | None
    if restore:
        modules = files.file(name=f"Remove {MODULES_LOAD}", path=MODULES_LOAD, present=False)
        modprobe = files.file(name=f"Remove {MODPROBE}", path=MODPROBE, present=False)
    elif not verdict.iommu_active:
        # The group is checked only once the IOMMU is on: bind after the reboot, in the next run.
        modules = modprobe = None
    else:
        modules = files.template(
            name=f"Load vfio modules at boot ({MODULES_LOAD})",
            src=template_path("kvm/vfio-modules.conf.j2"),
            dest=MODULES_LOAD,
            mode="0644",
            modules=vfio_modules(facts.kernel_release),
        )
        modprobe = files.template(
            name=f"vfio-pci claims {', '.join(addresses)} ({MODPROBE})",
            src=template_path("kvm/vfio-modprobe.conf.j2"),
            dest=MODPROBE,
            mode="0644",
            gpu_address=addresses[0],
            ids=vfio_ids(verdict.functions),
            softdeps=softdep_drivers(verdict.functions),
        )
    if modules is not None and modprobe is not None:
        server.shell(
            name="Rebuild the initramfs with the vfio configuration",
            commands=[INITRAMFS_UPDATE],
            _if=any_changed(modules, modprobe),
        )
    binding = not restore and verdict.iommu_active
    gate = reboot_gate(
        name="Reboot needed?",
        addresses=addresses if (binding or restore) else [],
        params=wanted,
        vfio=not restore,
        allow=settings.kvm_allow_reboot,
    )
    server.reboot(name="Reboot the host", _if=gate.did_change)
    if binding:
        vfio_bound(name="vfio-pci in use for every GPU function", addresses=addresses)
        define_vm(settings, verdict.functions)
    if binding or restore:
        write_manifest(KVM_MANIFEST, kvm_manifest(settings, addresses))
    return verdict


def define_vm(settings: Settings, functions: list[dict[str, Any]]) -> None:
    """The VM that owns the GPU, once vfio-pci holds it: libvirt domain or Proxmox options."""
    manager = vm_manager(settings)
    if manager == "libvirt":
        path = f"{VM_DIR}/{settings.kvm_vm_name}.xml"
        files.directory(name=f"Directory {VM_DIR}", path=VM_DIR, mode="0755")
        libvirt_domain(
            name=f"libvirt domain {settings.kvm_vm_name} (CPU host-passthrough, GPU hostdevs)",
            domain=settings.kvm_vm_name,
            xml=domain_xml(settings, functions),
            path=path,
        )
    elif manager == "proxmox":
        assert settings.kvm_vm_id is not None  # the settings schema requires it with proxmox
        proxmox_vm(
            name=f"Proxmox VM {settings.kvm_vm_id} (cpu host, q35, OVMF, GPU as PCIe)",
            vmid=settings.kvm_vm_id,
            wanted=qm_wanted(settings, functions),
        )


def kvm_manifest(settings: Settings, addresses: list[str]) -> dict[str, Any]:
    """What tests/verify/test_kvm.py holds the host to (the host runs no Ollama itself)."""
    return {
        "topology": "kvm",
        "functions": addresses,
        "restore_host_driver": settings.kvm_restore_host_driver,
        "vm_manager": settings.kvm_vm_manager,
        "vm_name": settings.kvm_vm_name,
        "vm_id": settings.kvm_vm_id,
    }
