"""Operations of the kvm topology's host preparation that pyinfra has no ready operation for,
and the write of the JSON manifests its verify checks read (host and guest)."""

from __future__ import annotations

import json
import shlex
from io import StringIO
from typing import Any

from pyinfra import host
from pyinfra.api import FileUploadCommand, operation
from pyinfra.api.operation import OperationMeta
from pyinfra.facts.files import FileContents
from pyinfra.operations import files

from facts.kvm import LibvirtDomainXml, PciDriverInUse, ProcCmdline, QmConfig
from roles.kvm.vfio import merge_kernel_params
from roles.kvm.vm import compare_domain, qm_differences, qm_set_command

VFIO = "vfio-pci"


def write_manifest(path: str, manifest: dict[str, Any]) -> OperationMeta:
    """The JSON tests/verify/test_kvm.py reads on this host (kvm.json, kvm-guest.json)."""
    return files.put(
        name=f"Write {path}",
        src=StringIO(json.dumps(manifest, indent=2) + "\n"),
        dest=path,
        mode="0644",
        create_remote_dir=True,
    )


def _fail(message: str) -> str:
    """Shell that prints one ollama-rig error line on stderr and fails."""
    return f"echo {shlex.quote('ollama-rig: ' + message)} >&2; exit 1"


@operation()
def kernel_params(path: str, kind: str, wanted: list[str]):
    """
    Add kernel parameters to the boot loader configuration, keeping every existing one.

    + path: /etc/default/grub or /etc/kernel/cmdline
    + kind: "grub" or "systemd-boot"
    + wanted: the parameters, e.g. ["intel_iommu=on", "iommu=pt"]

    A contrary value the user set (intel_iommu=off) stops the run; the first change keeps a
    copy of the file as PATH.ollama-rig.bak.
    """
    lines = host.get_fact(FileContents, path=path)
    if lines is None:
        yield _fail(f"{path} does not exist: cannot add {' '.join(wanted)}")
        return
    text = "\n".join(lines) + "\n"
    merged = merge_kernel_params(text, kind, wanted)
    if merged.refusal:
        yield _fail(f"{path}: {merged.refusal}")
        return
    if not merged.added:
        host.noop(f"{path} has {' '.join(wanted)}")
        return
    q_path, q_backup = shlex.quote(path), shlex.quote(path + ".ollama-rig.bak")
    yield f"[ -e {q_backup} ] || cp -p {q_path} {q_backup}"
    yield FileUploadCommand(StringIO(merged.text), path)


@operation()
def reboot_gate(addresses: list[str], params: list[str], vfio: bool, allow: bool):
    """
    Decide whether the host must reboot for the binding; refuse unless allowed.

    + addresses: the GPU's PCI functions
    + params: kernel parameters the running kernel must have (when vfio)
    + vfio: True: every function must run vfio-pci; False (the way back): none may
    + allow: kvm_allow_reboot; the operation changes (so a chained server.reboot runs) only then
    """
    drivers = {a: host.get_fact(PciDriverInUse, address=a) for a in addresses}
    wrong = [f"{a} ({d or 'no driver'})" for a, d in drivers.items() if (d == VFIO) != vfio]
    running = host.get_fact(ProcCmdline)
    missing = [p for p in params if p not in running] if vfio else []
    if not wrong and not missing:
        host.noop("the running kernel already has the wanted binding")
        return
    why = "; ".join(
        ([f"not on {VFIO if vfio else 'the host driver'}: {', '.join(wrong)}"] if wrong else [])
        + ([f"running kernel lacks {' '.join(missing)}"] if missing else [])
    )
    if not allow:
        yield _fail(
            f"reboot required ({why}): reboot the host, then run again, or set"
            " kvm_allow_reboot=True to let ollama-rig reboot it"
        )
        return
    yield f"echo {shlex.quote(f'ollama-rig: rebooting ({why})')}"


@operation()
def vfio_bound(addresses: list[str]):
    """
    Verify after the reboot that every GPU function runs vfio-pci (`Kernel driver in use`).

    + addresses: the GPU's PCI functions
    """
    drivers = {a: host.get_fact(PciDriverInUse, address=a) for a in addresses}
    wrong = [f"{a} ({d or 'no driver'})" for a, d in drivers.items() if d != VFIO]
    if not wrong:
        host.noop(f"{VFIO} is in use for {', '.join(addresses)}")
        return
    yield _fail(
        f"after the reboot {', '.join(wrong)} still not on {VFIO}: check"
        " `lspci -nnk`, `cat /etc/modprobe.d/vfio.conf` and that the initramfs was rebuilt"
    )


def _report(lines: list[str]) -> str:
    return f"echo {shlex.quote('ollama-rig: ' + '; '.join(lines))}"


@operation()
def libvirt_domain(domain: str, xml: str, path: str):
    """
    Define the VM on qemu:///system from the rendered domain, compare first.

    + domain: the domain name
    + xml: the wanted domain XML (roles.kvm.vm.domain_xml)
    + path: where the XML defined is kept on the host (virsh define reads it)

    No domain: defined from xml. A domain: compared (roles.kvm.vm.compare_domain); the CPU
    mode, memory, vCPUs and missing GPU hostdevs are corrected in the user's own definition and
    each correction reported; machine type and firmware differences are reported only.
    """
    existing = host.get_fact(LibvirtDomainXml, domain=domain)
    if existing is None:
        wanted, notes = xml, [f"domain {domain} defined (q35, OVMF, CPU host-passthrough)"]
    else:
        changes = compare_domain(existing, xml)
        if not changes.corrected:
            host.noop(
                f"domain {domain} is as wanted"
                + (
                    f" (not changed: {'; '.join(changes.not_changed)})"
                    if changes.not_changed
                    else ""
                )
            )
            return
        wanted = changes.xml
        notes = [f"domain {domain} corrected: {', '.join(changes.corrected)}", *changes.not_changed]
    yield FileUploadCommand(StringIO(wanted), path)
    yield f"virsh -c qemu:///system define {shlex.quote(path)}"
    yield _report(notes)


@operation()
def proxmox_vm(vmid: int, wanted: dict[str, str]):
    """
    Set the Proxmox VM's options (`qm set`) where `qm config` differs; report each change.

    + vmid: the VM id (it must exist: `qm create` is the user's, disks and OS install included)
    + wanted: roles.kvm.vm.qm_wanted (cpu host, q35, ovmf, memory, cores, hostpci0 ...,pcie=1)
    """
    config = host.get_fact(QmConfig, vmid=vmid)
    if config is None:
        yield _fail(
            f"Proxmox VM {vmid} does not exist (`qm config {vmid}` failed): create it first"
            " (`qm create`, or the web UI) with its disk and network, then run again"
        )
        return
    changes = qm_differences(config, wanted)
    if not changes:
        host.noop(f"VM {vmid} has {', '.join(f'{k} {v}' for k, v in wanted.items())}")
        return
    was = [f"{k} {config.get(k, 'unset')} -> {v}" for k, v in changes.items()]
    yield qm_set_command(vmid, changes)
    yield _report([f"VM {vmid} corrected: {', '.join(was)}"])
