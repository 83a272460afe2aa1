"""The kvm topology: on the hypervisor, IOMMU on and vfio-pci on every GPU function, the VM's
CPU mode host-passthrough (`cpu: host` on Proxmox); in the guest, AVX/AVX2 and a working
NVIDIA driver of the branch Ollama needs.

The hypervisor runs no Ollama: its promises are /etc/ollama-rig/kvm.json (roles/kvm/deploy.py),
so run this file alone against it: `pytest tests/verify/test_kvm.py --hosts=ssh://hypervisor`.
The guest is a native host: the whole suite runs there (the `100% GPU` check is
test_models.py's), and the guest checks here on top; their promises are
/etc/ollama-rig/kvm-guest.json (roles/kvm/guest.py).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from facts.nvidia import NvidiaSmi
from facts.parsers import ParseError
from facts.parsers.pci import parse_lspci
from roles.kvm.driver import GUEST_MANIFEST
from roles.kvm.vfio import MODPROBE
from roles.kvm.vm import HOST_PASSTHROUGH, parse_qm_config
from tests.verify.conftest import json_or_skip

KVM_MANIFEST = "/etc/ollama-rig/kvm.json"
VFIO = "vfio-pci"
VM_KINDS = {"kvm", "qemu"}


@pytest.fixture(scope="module")
def kvm_host(host: Any) -> dict[str, Any]:
    return json_or_skip(host, KVM_MANIFEST, "not a kvm hypervisor prepared by ollama-rig")


def driver_in_use(host: Any, address: str) -> str | None:
    out = host.run(f"lspci -nnk -s {address}")
    if out.rc != 0:
        pytest.fail(f"`lspci -nnk -s {address}` failed: {out.stderr.strip()}")
    try:
        devices = parse_lspci(out.stdout)["devices"]
    except ParseError as exc:
        pytest.fail(f"{address}: no PCI function there ({exc})")
    driver: str | None = devices[0]["driver"]
    return driver


def test_iommu_active(host: Any, kvm_host: dict[str, Any]) -> None:
    groups = host.run("ls /sys/kernel/iommu_groups 2>/dev/null | wc -l").stdout.strip()
    assert int(groups or 0) > 0, (
        "/sys/kernel/iommu_groups is empty: the IOMMU is off. Check the kernel command line"
        " (intel_iommu=on iommu=pt in `cat /proc/cmdline`) and VT-d / AMD-Vi in the firmware"
    )


def test_every_gpu_function_on_vfio_pci(host: Any, kvm_host: dict[str, Any]) -> None:
    drivers = {a: driver_in_use(host, a) for a in kvm_host["functions"]}
    if kvm_host["restore_host_driver"]:
        held = [a for a, d in drivers.items() if d == VFIO]
        assert not held, f"the way back was asked for, but {VFIO} still holds {held}: reboot"
        return
    wrong = {a: d for a, d in drivers.items() if d != VFIO}
    assert not wrong, (
        f"not on {VFIO}: {wrong}. Check {MODPROBE} (`options vfio-pci ids=`), that the initramfs"
        " was rebuilt, and that the host was rebooted since"
    )


def test_vfio_files_match_the_way_chosen(host: Any, kvm_host: dict[str, Any]) -> None:
    modprobe = host.file(MODPROBE)
    if kvm_host["restore_host_driver"]:
        assert not modprobe.exists, f"{MODPROBE} is still there after the way back"
    else:
        assert modprobe.exists and "options vfio-pci ids=" in modprobe.content_string


def test_vm_cpu_is_host(host: Any, kvm_host: dict[str, Any]) -> None:
    if kvm_host["vm_manager"] == "proxmox":
        if not host.exists("qm"):
            pytest.skip("no `qm` here: not a Proxmox node")
        out = host.run(f"qm config {int(kvm_host['vm_id'])}")
        if out.rc != 0:
            pytest.skip(f"VM {kvm_host['vm_id']} is not defined yet: {out.stderr.strip()}")
        cpu = parse_qm_config(out.stdout).get("cpu", "kvm64 (default)")
        assert cpu.split(",")[0] in ("host", "cputype=host"), (
            f"VM {kvm_host['vm_id']} has cpu: {cpu}, without AVX/AVX2: `qm set"
            f" {kvm_host['vm_id']} -cpu host`"
        )
        return
    if not host.exists("virsh"):
        pytest.skip("no `virsh` here: libvirt is not installed, no domain to check")
    out = host.run(f"virsh -c qemu:///system dumpxml {kvm_host['vm_name']}")
    if out.rc != 0:
        pytest.skip(f"domain {kvm_host['vm_name']!r} is not defined yet: {out.stderr.strip()}")
    element = ET.fromstring(out.stdout).find("cpu")
    mode = "none" if element is None else element.get("mode", "custom")
    assert mode == HOST_PASSTHROUGH, (
        f"domain {kvm_host['vm_name']} has CPU mode {mode}: set <cpu mode='{HOST_PASSTHROUGH}'/>"
        " (`virsh edit`) so the guest sees AVX/AVX2"
    )


@pytest.fixture(scope="module")
def kvm_guest(host: Any) -> dict[str, Any]:
    return json_or_skip(host, GUEST_MANIFEST, "not a kvm guest prepared by ollama-rig")


def test_guest_cpu_has_avx(host: Any) -> None:
    if host.file(KVM_MANIFEST).exists:
        pytest.skip("this is the kvm hypervisor: the AVX check is for its guest")
    # A guest ollama-rig prepared is checked whatever systemd-detect-virt says; others when
    # they are KVM/QEMU VMs.
    if not host.file(GUEST_MANIFEST).exists:
        virt = host.run("systemd-detect-virt --vm").stdout.strip()
        if virt not in VM_KINDS:
            pytest.skip(f"not a KVM guest (systemd-detect-virt --vm: {virt or 'none'})")
    flags = set(host.file("/proc/cpuinfo").content_string.split())
    missing = [f for f in ("avx", "avx2") if f not in flags]
    assert not missing, (
        f"the guest CPU lacks {', '.join(missing)}: its CPU model is not host. Set CPU mode"
        " host-passthrough (libvirt) or `qm set <id> -cpu host` (Proxmox), then restart the VM"
    )


def test_guest_nvidia_driver_works(host: Any, kvm_guest: dict[str, Any]) -> None:
    out = host.run(NvidiaSmi().command())
    smi = NvidiaSmi().process(out.stdout.splitlines())
    assert smi["error"] is None and smi["gpus"], (
        f"nvidia-smi fails in the guest ({smi['error']}): {smi.get('message')}. After the driver"
        " install the VM must reboot; then check `dkms status`, `dmesg | grep -i nvrm` and"
        " Secure Boot (`mokutil --sb-state`)"
    )


def test_guest_driver_branch_is_what_ollama_needs(host: Any, kvm_guest: dict[str, Any]) -> None:
    out = host.run(NvidiaSmi().command())
    gpus = NvidiaSmi().process(out.stdout.splitlines())["gpus"]
    if not gpus:
        pytest.fail("nvidia-smi reports no GPU (see test_guest_nvidia_driver_works)")
    wanted = int(kvm_guest["min_driver"])
    old = [g for g in gpus if int(str(g["driver_version"]).split(".")[0]) < wanted]
    assert not old, (
        f"driver {old[0]['driver_version']} is older than the {wanted} this Ollama needs"
        " (docs/gpu.mdx): Ollama runs on the CPU. Install a newer branch (kvm_guest_driver_branch"
        " on Ubuntu), or a release with one"
    )
