"""Pure decisions for the VM that owns the GPU: the libvirt domain, or Proxmox `qm` options.

libvirt (https://libvirt.org/formatdomain.html): q35 machine, OVMF (UEFI) firmware,
`<cpu mode='host-passthrough' check='none' migratable='on'/>` and one
`<hostdev mode='subsystem' type='pci' managed='yes'>` per GPU function. Proxmox (qm(1),
"PCI(e) Passthrough" in the admin guide): `-cpu host -machine q35 -bios ovmf
-hostpci0 0000:01:00,pcie=1` (a slot without function passes all its functions; pcie=1 needs
q35). The default CPU models (kvm64, x86-64-v2-AES) have no AVX: FACTS.md section 8.
"""

from __future__ import annotations

import re
import shlex
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from pyinfra.api.util import get_template

from roles.kvm.check import full_address, slot_of
from settings import Settings
from templates import template_path

HOST_PASSTHROUGH = "host-passthrough"


def hostdev_address(address: str) -> dict[str, str]:
    """ "0000:01:00.1" -> libvirt's {"domain": "0x0000", "bus": "0x01", "slot": "0x00",
    "function": "0x1"}."""
    domain, bus, rest = full_address(address).split(":")
    slot, function = rest.split(".")
    return {
        "domain": f"0x{domain}",
        "bus": f"0x{bus}",
        "slot": f"0x{slot}",
        "function": f"0x{function}",
    }


def domain_xml(settings: Settings, functions: list[dict[str, Any]]) -> str:
    """The libvirt domain XML for the VM (templates/kvm/domain.xml.j2)."""
    template = get_template(template_path("kvm/domain.xml.j2"))
    return template.render(
        name=settings.kvm_vm_name,
        memory_mib=settings.kvm_vm_memory_mib,
        vcpus=settings.kvm_vm_vcpus,
        loader=settings.kvm_ovmf_loader,
        disk=settings.kvm_vm_disk,
        network=settings.kvm_vm_network,
        hostdevs=[hostdev_address(f["address"]) for f in functions],
    )


def _hostdevs(root: ET.Element) -> set[str]:
    """PCI addresses of a domain's `<hostdev type='pci'>` entries, as "0000:01:00.0"."""
    found = set()
    for source in root.findall("./devices/hostdev[@type='pci']/source/address"):
        parts = [int(source.get(k, "0"), 16) for k in ("domain", "bus", "slot", "function")]
        found.add(f"{parts[0]:04x}:{parts[1]:02x}:{parts[2]:02x}.{parts[3]:x}")
    return found


@dataclass
class DomainChanges:
    """What differs from the wanted domain: corrected (applied to xml) and only reported."""

    corrected: list[str] = field(default_factory=list)
    not_changed: list[str] = field(default_factory=list)
    xml: str = ""


def compare_domain(existing: str, wanted: str) -> DomainChanges:
    """Compare a defined domain (`virsh dumpxml`) with the wanted one.

    Corrected in the returned xml, the rest of the user's domain kept: the CPU (another model
    becomes host-passthrough), missing GPU hostdevs, memory and vCPUs. Reported only: the
    machine type and firmware, since changing them re-addresses the guest's devices.
    """
    old, new = ET.fromstring(existing), ET.fromstring(wanted)
    changes = DomainChanges()
    cpu, wanted_cpu = old.find("cpu"), new.find("cpu")
    assert wanted_cpu is not None
    if cpu is None or cpu.get("mode") != HOST_PASSTHROUGH:
        model = "none" if cpu is None else cpu.findtext("model") or cpu.get("mode", "custom")
        changes.corrected.append(f"CPU {model} -> {HOST_PASSTHROUGH} (AVX/AVX2 in the guest)")
        if cpu is not None:
            old.remove(cpu)
        old.insert(_index_after(old, ("features", "os", "vcpu")), wanted_cpu)
    for tag in ("memory", "currentMemory", "vcpu"):
        have, want = old.find(tag), new.find(tag)
        if want is None:
            continue
        if have is None or _amount(have) != _amount(want):
            was = "none" if have is None else f"{have.text} {have.get('unit', '')}".strip()
            changes.corrected.append(f"{tag} {was} -> {want.text} {want.get('unit', '')}".strip())
            if have is not None:
                old.remove(have)
            old.insert(_index_after(old, ("name", "uuid", "memory", "currentMemory")), want)
    devices = old.find("devices")
    if devices is None:
        devices = ET.SubElement(old, "devices")
    present = _hostdevs(old)
    for hostdev in new.findall("./devices/hostdev"):
        address = next(iter(_hostdevs(_wrap(hostdev))))
        if address not in present:
            changes.corrected.append(f"hostdev {address} added")
            devices.append(hostdev)
    os_type, os_element = old.find("./os/type"), old.find("os")
    machine = "" if os_type is None else os_type.get("machine", "")
    if "q35" not in machine:
        changes.not_changed.append(
            f"machine {machine or 'default'} is not q35: define the VM anew to change it"
        )
    firmware = None if os_element is None else os_element.get("firmware")
    if old.find("./os/loader") is None and firmware != "efi":
        changes.not_changed.append("firmware is BIOS, not OVMF: define the VM anew to change it")
    changes.xml = ET.tostring(old, encoding="unicode")
    return changes


def _wrap(hostdev: ET.Element) -> ET.Element:
    root = ET.Element("domain")
    ET.SubElement(root, "devices").append(hostdev)
    return root


def _amount(element: ET.Element) -> int:
    """An element's size in KiB (memory) or count (vcpu), units as libvirt reads them."""
    units = {"KiB": 1, "k": 1, "MiB": 1024, "M": 1024, "GiB": 1024**2, "G": 1024**2}
    return int(element.text or 0) * units.get(element.get("unit", "KiB"), 1)


def _index_after(root: ET.Element, tags: tuple[str, ...]) -> int:
    """Position just after the last child with one of these tags (keeps libvirt's order)."""
    positions = [i for i, child in enumerate(root) if child.tag in tags]
    return max(positions) + 1 if positions else len(root)


# --- Proxmox qm ------------------------------------------------------------------------------


def qm_wanted(settings: Settings, functions: list[dict[str, Any]]) -> dict[str, str]:
    """The `qm set` options for the VM: CPU host, q35, OVMF, the GPU slot as PCIe, size."""
    return {
        "cpu": "host",
        "machine": "q35",
        "bios": "ovmf",
        "memory": str(settings.kvm_vm_memory_mib),
        "cores": str(settings.kvm_vm_vcpus),
        "hostpci0": f"{slot_of(functions[0]['address'])},pcie=1",
    }


def parse_qm_config(text: str) -> dict[str, str]:
    """`qm config <id>` (or /etc/pve/qemu-server/<id>.conf) -> {key: value}; snapshots
    ("[name]" sections) and comments are left out."""
    config: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("["):
            break
        key, sep, value = line.partition(":")
        if sep and key.strip() and not key.startswith("#"):
            config[key.strip()] = value.strip()
    return config


def _options(value: str, first: str) -> dict[str, str]:
    """ "host,flags=+aes" -> {"cputype": "host", "flags": "+aes"} (first: the default key)."""
    parsed = {}
    for i, part in enumerate(value.split(",")):
        key, sep, item = part.partition("=")
        parsed[key if sep else first if i == 0 else key] = item if sep else part
    return parsed


def _pci_id(value: str) -> str:
    host = _options(value, "host").get("host", "")
    return host if host.count(":") == 2 else f"0000:{host}"


def qm_differences(config: dict[str, str], wanted: dict[str, str]) -> dict[str, str]:
    """The options of `wanted` that `qm config` does not already show (as qm set takes them).

    Equal in effect counts as equal: "pc-q35-8.1" is q35, "cputype=host,flags=..." is host,
    "01:00,pcie=1" in any hostpciN is the same GPU slot.
    """
    changes: dict[str, str] = {}
    for key, value in wanted.items():
        if key == "cpu":
            same = _options(config.get("cpu", "kvm64"), "cputype").get("cputype") == value
        elif key == "machine":
            same = (
                re.search(r"(^|-)q35(-|$)", _options(config.get(key, ""), "type")["type"])
                is not None
            )
        elif key.startswith("hostpci"):
            slot = _pci_id(value)
            same = any(
                k.startswith("hostpci")
                and _pci_id(v) == slot
                and _options(v, "host").get("pcie") == "1"
                for k, v in config.items()
            )
            if not same:
                key = next(
                    (
                        k
                        for k, v in config.items()
                        if k.startswith("hostpci") and _pci_id(v) == slot
                    ),
                    next(f"hostpci{i}" for i in range(16) if f"hostpci{i}" not in config),
                )
        else:
            same = config.get(key) == value
        if not same:
            changes[key] = value
    return changes


def qm_set_command(vmid: int, changes: dict[str, str]) -> str:
    """ "qm set 101 -cpu host -hostpci0 0000:01:00,pcie=1" for the differences only."""
    args = " ".join(f"-{key} {shlex.quote(value)}" for key, value in changes.items())
    return f"qm set {int(vmid)} {args}"
