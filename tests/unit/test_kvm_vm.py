"""The VM: the domain XML checked by libvirt itself, the CPU correction, and Proxmox qm options."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from facts.parsers.pci import parse_lspci
from roles.kvm.check import gpu_functions
from roles.kvm.vm import (
    compare_domain,
    domain_xml,
    hostdev_address,
    parse_qm_config,
    qm_differences,
    qm_set_command,
    qm_wanted,
)
from settings import Settings, settings_from_data

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "outputs"


def settings(**data: Any) -> Settings:
    return settings_from_data({"topology": "kvm", **data})


def functions() -> list[dict[str, Any]]:
    text = (FIXTURES / "lspci" / "nnk-spaces-laptop-1650.txt").read_text(encoding="utf-8")
    return gpu_functions(parse_lspci(text)["devices"], None)


# A domain as virt-manager defines it by default: a named CPU model, no GPU (the shape of
# `virsh dumpxml`, cut to what matters here).
OLD_DOMAIN = """<domain type='kvm'>
  <name>ollama</name>
  <uuid>5e4d3a4c-9a57-4e2a-8b0c-1f2e3d4c5b6a</uuid>
  <memory unit='KiB'>16777216</memory>
  <currentMemory unit='KiB'>16777216</currentMemory>
  <vcpu placement='static'>8</vcpu>
  <os firmware='efi'><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>
  <features><acpi/><apic/></features>
  <cpu mode='custom' match='exact' check='partial'><model fallback='allow'>qemu64</model></cpu>
  <devices><disk type='file' device='disk'><source file='/var/lib/libvirt/images/ollama.qcow2'/>
  <target dev='vda' bus='virtio'/></disk></devices>
</domain>"""


def test_hostdev_address() -> None:
    assert hostdev_address("0000:3e:00.1") == {
        "domain": "0x0000",
        "bus": "0x3e",
        "slot": "0x00",
        "function": "0x1",
    }


def test_domain_has_q35_ovmf_host_passthrough_and_every_function() -> None:
    root = ET.fromstring(domain_xml(settings(), functions()))
    assert root.find("./os/type").get("machine") == "q35"  # type: ignore[union-attr]
    assert root.find("os").get("firmware") == "efi"  # type: ignore[union-attr]
    assert root.find("cpu").attrib == {  # type: ignore[union-attr]
        "mode": "host-passthrough",
        "check": "none",
        "migratable": "on",
    }
    sources = [
        e.attrib
        for e in root.findall(
            "./devices/hostdev[@mode='subsystem'][@type='pci'][@managed='yes']/source/address"
        )
    ]
    assert sources == [hostdev_address("0000:01:00.0"), hostdev_address("0000:01:00.1")]
    assert root.findtext("memory") == "16384" and root.findtext("vcpu") == "8"


def test_domain_with_an_explicit_ovmf_loader() -> None:
    xml = domain_xml(settings(kvm_ovmf_loader="/usr/share/OVMF/OVMF_CODE_4M.fd"), functions())
    root = ET.fromstring(xml)
    assert root.find("os").get("firmware") is None  # type: ignore[union-attr]
    assert root.findtext("./os/loader") == "/usr/share/OVMF/OVMF_CODE_4M.fd"


@pytest.mark.parametrize("loader", [None, "/usr/share/OVMF/OVMF_CODE_4M.fd"])
def test_domain_passes_virt_xml_validate(tmp_path: Path, loader: str | None) -> None:
    if shutil.which("virt-xml-validate") is None:
        pytest.skip("virt-xml-validate not installed (apt-get install libvirt-clients)")
    path = tmp_path / "domain.xml"
    path.write_text(domain_xml(settings(kvm_ovmf_loader=loader), functions()))
    result = subprocess.run(
        ["virt-xml-validate", str(path), "domain"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr + result.stdout


def test_domain_defines_on_libvirt_test_driver() -> None:
    libvirt = pytest.importorskip("libvirt", reason="libvirt-python not installed")
    conn = libvirt.open("test:///default")  # one shared in-memory host per process
    wanted = domain_xml(settings(kvm_vm_name="ollama-define"), functions())
    try:
        domain = conn.defineXML(wanted)
        defined = domain.XMLDesc(0)
        root = ET.fromstring(defined)
        assert root.find("cpu").get("mode") == "host-passthrough"  # type: ignore[union-attr]
        assert len(root.findall("./devices/hostdev")) == 2
        # libvirt's own dump of it compares equal: a second run defines nothing.
        again = compare_domain(defined, wanted)
        assert again.corrected == [] and again.not_changed == []
    finally:
        conn.close()


def test_virsh_defines_it_on_the_test_driver(tmp_path: Path) -> None:
    if shutil.which("virsh") is None:
        pytest.skip("virsh not installed (apt-get install libvirt-clients)")
    path = tmp_path / "domain.xml"
    path.write_text(domain_xml(settings(kvm_vm_name="ollama-virsh"), functions()))
    result = subprocess.run(
        ["virsh", "-c", "test:///default", "define", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and "Domain 'ollama-virsh' defined" in result.stdout, (
        result.stderr
    )


def test_other_cpu_model_is_corrected_and_reported() -> None:
    changes = compare_domain(OLD_DOMAIN, domain_xml(settings(), functions()))
    assert changes.corrected == [
        "CPU qemu64 -> host-passthrough (AVX/AVX2 in the guest)",
        "hostdev 0000:01:00.0 added",
        "hostdev 0000:01:00.1 added",
    ]
    assert changes.not_changed == []
    root = ET.fromstring(changes.xml)
    assert root.find("cpu").attrib["mode"] == "host-passthrough"  # type: ignore[union-attr]
    assert root.findtext("uuid") == "5e4d3a4c-9a57-4e2a-8b0c-1f2e3d4c5b6a"  # the user's kept
    # Comparing the corrected domain again finds nothing to do.
    again = compare_domain(changes.xml, domain_xml(settings(), functions()))
    assert again.corrected == [] and again.not_changed == []


def test_size_changes_and_machine_type_reported_not_changed() -> None:
    old = OLD_DOMAIN.replace("pc-q35-7.2", "pc-i440fx-7.2").replace(" firmware='efi'", "")
    changes = compare_domain(old, domain_xml(settings(kvm_vm_memory_mib=8192), functions()))
    assert "memory 16777216 KiB -> 8192 MiB" in changes.corrected
    assert any(n.startswith("machine pc-i440fx-7.2 is not q35") for n in changes.not_changed)
    assert any(n.startswith("firmware is BIOS") for n in changes.not_changed)


def test_corrected_domain_still_defines_on_the_test_driver() -> None:
    libvirt = pytest.importorskip("libvirt", reason="libvirt-python not installed")
    conn = libvirt.open("test:///default")
    try:
        conn.defineXML(OLD_DOMAIN.replace("<name>ollama<", "<name>ollama-old<"))
        old = conn.lookupByName("ollama-old").XMLDesc(0)
        fixed = compare_domain(old, domain_xml(settings(kvm_vm_name="ollama-old"), functions()))
        assert fixed.corrected[0].endswith("-> host-passthrough (AVX/AVX2 in the guest)")
        domain = conn.defineXML(fixed.xml)
        assert ET.fromstring(domain.XMLDesc(0)).find("cpu").get("mode") == "host-passthrough"  # type: ignore[union-attr]
    finally:
        conn.close()


# `qm config 101` of a VM made with Proxmox's defaults (CPU x86-64-v2-AES, SeaBIOS, i440fx),
# in qm's "key: value" form (Proxmox admin guide, "Virtual Machines" / qm.conf(5)).
QM_DEFAULT = """boot: order=scsi0;ide2;net0
cores: 8
cpu: x86-64-v2-AES
memory: 16384
name: ollama
net0: virtio=BC:24:11:5A:6B:7C,bridge=vmbr0,firewall=1
scsi0: local-lvm:vm-101-disk-0,iothread=1,size=64G
scsihw: virtio-scsi-single
smbios1: uuid=5e4d3a4c-9a57-4e2a-8b0c-1f2e3d4c5b6a
"""


def test_qm_wanted_options() -> None:
    assert qm_wanted(settings(), functions()) == {
        "cpu": "host",
        "machine": "q35",
        "bios": "ovmf",
        "memory": "16384",
        "cores": "8",
        "hostpci0": "0000:01:00,pcie=1",
    }


def test_qm_default_vm_gets_cpu_host_q35_ovmf_and_the_gpu() -> None:
    changes = qm_differences(parse_qm_config(QM_DEFAULT), qm_wanted(settings(), functions()))
    assert changes == {
        "cpu": "host",
        "machine": "q35",
        "bios": "ovmf",
        "hostpci0": "0000:01:00,pcie=1",
    }
    assert qm_set_command(101, changes) == (
        "qm set 101 -cpu host -machine q35 -bios ovmf -hostpci0 0000:01:00,pcie=1"
    )


def test_qm_configured_vm_changes_nothing() -> None:
    done = QM_DEFAULT.replace("cpu: x86-64-v2-AES", "cpu: cputype=host,flags=+aes") + (
        "bios: ovmf\nmachine: pc-q35-8.1\nhostpci1: 01:00,pcie=1,x-vga=1\n[snapshot]\ncpu: kvm64\n"
    )
    assert qm_differences(parse_qm_config(done), qm_wanted(settings(), functions())) == {}


def test_qm_gpu_without_pcie_is_set_in_its_own_slot_and_busy_slots_are_kept() -> None:
    config = parse_qm_config(QM_DEFAULT + "hostpci0: 0000:02:00\nhostpci1: 0000:01:00\n")
    changes = qm_differences(config, qm_wanted(settings(), functions()))
    assert changes["hostpci1"] == "0000:01:00,pcie=1" and "hostpci0" not in changes
