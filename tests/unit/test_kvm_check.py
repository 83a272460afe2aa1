"""kvm checks on recorded outputs (tests/fixtures/outputs): every refusal, and the go-ahead."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from facts.parsers.kernel import parse_cmdline, parse_dmesg_iommu
from facts.parsers.pci import parse_iommu_groups, parse_lspci
from roles.kvm.check import KvmHostFacts, check_kvm_host, gpu_functions, group_intruders
from roles.kvm.vfio import GRUB_DEFAULT, BootLoader, decide_boot_loader
from settings import Settings, settings_from_data

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "outputs"
GRUB = BootLoader("grub", GRUB_DEFAULT, "update-grub")
INTEL_FLAGS = ["avx", "avx2", "vmx"]


def fixture(kind: str, name: str) -> str:
    return (FIXTURES / kind / name).read_text(encoding="utf-8")


def settings(**data: Any) -> Settings:
    return settings_from_data({"topology": "kvm", **data})


def loop_as_lspci(text: str) -> list[dict[str, Any]]:
    """The IOMMU loop's lines without their "IOMMU Group N " prefix: `lspci -nn` lines."""
    return parse_lspci(re.sub(r"(?m)^IOMMU Group \d+ ", "", text))["devices"]


def gtx1660_host(**changes: Any) -> KvmHostFacts:
    """An Intel desktop with IOMMU on and a GTX 1660 SUPER (four functions) in group 1."""
    groups_text = fixture("iommu-groups", "loop-1660-super-four-functions.txt")
    base = KvmHostFacts(
        cpu_flags=INTEL_FLAGS,
        iommu_log=parse_dmesg_iommu(fixture("dmesg-iommu", "intel-enabled-cmdline.txt")),
        iommu_group_count=7,
        iommu_groups=parse_iommu_groups(groups_text)["groups"],
        pci_devices=loop_as_lspci(groups_text),
        boot_vga={"0000:00:02.0": True, "0000:01:00.0": False},
        proc_cmdline=parse_cmdline(fixture("cmdline", "proc-cmdline-fedora-efi-stub.txt")),
        boot_loader=GRUB,
        boot_config=fixture("cmdline", "grub-default-commented-old-line.txt"),
        kernel_release="6.1.0-18-amd64",
    )
    return replace(base, **changes)


def test_isolated_gpu_goes_ahead_with_all_four_functions() -> None:
    verdict = check_kvm_host(settings(), gtx1660_host())
    assert verdict.refusals == []
    assert verdict.iommu_active
    assert [f["address"] for f in verdict.functions] == [
        "0000:01:00.0",
        "0000:01:00.1",
        "0000:01:00.2",
        "0000:01:00.3",
    ]
    assert "IOMMU group 1: only the GPU's functions and PCI bridges" in verdict.lines
    # The GRUB file already has both parameters: nothing to change.
    assert verdict.boot_config == fixture("cmdline", "grub-default-commented-old-line.txt")


def test_no_virtualization_flag_is_refused() -> None:
    verdict = check_kvm_host(settings(), gtx1660_host(cpu_flags=["avx", "avx2"]))
    assert any("no vmx or svm flag" in r and "VT-x" in r for r in verdict.refusals)


def test_iommu_off_in_the_log_is_not_active_and_the_group_waits() -> None:
    log = parse_dmesg_iommu(fixture("dmesg-iommu", "intel-table-present-not-enabled.txt"))
    verdict = check_kvm_host(settings(), gtx1660_host(iommu_log=log, iommu_group_count=0))
    assert not verdict.iommu_active
    assert verdict.refusals == []
    assert any(
        line.startswith("IOMMU group: unknown until the IOMMU is on") for line in verdict.lines
    )


def test_groups_in_sysfs_but_log_says_disabled_is_not_active() -> None:
    log = {"iommu_enabled": False, "evidence": ["DMAR: IOMMU disabled"]}
    assert not check_kvm_host(settings(), gtx1660_host(iommu_log=log)).iommu_active


def test_group_with_another_device_is_refused_naming_it() -> None:
    # Derived from the same recorded loop: the SATA controller of group 5 moved into group 1.
    text = fixture("iommu-groups", "loop-1660-super-four-functions.txt").replace(
        "IOMMU Group 5 00:17.0", "IOMMU Group 1 00:17.0"
    )
    verdict = check_kvm_host(
        settings(), gtx1660_host(iommu_groups=parse_iommu_groups(text)["groups"])
    )
    (refusal,) = verdict.refusals
    assert refusal.startswith("IOMMU group 1 of 0000:01:00.0 also holds 0000:00:17.0")
    assert "SATA AHCI Controller [8086:a382]" in refusal
    assert "00:01.0" not in refusal  # the PCI bridge is allowed


def test_boot_vga_gpu_is_refused_unless_overridden() -> None:
    facts = gtx1660_host(boot_vga={"0000:01:00.0": True})
    (refusal,) = check_kvm_host(settings(), facts).refusals
    assert "boot VGA device" in refusal and "kvm_allow_boot_vga=True" in refusal
    assert check_kvm_host(settings(kvm_allow_boot_vga=True), facts).refusals == []


def test_two_identical_cards_are_refused_because_ids_would_take_both() -> None:
    devices = parse_lspci(fixture("lspci", "nnk-grep-two-3090-tabs.txt"))["devices"]
    facts = gtx1660_host(pci_devices=devices, iommu_groups={})
    verdict = check_kvm_host(settings(), facts)
    assert any("several NVIDIA functions" in r for r in verdict.refusals)
    verdict = check_kvm_host(settings(kvm_gpu_address="0000:05:00.0"), facts)
    assert any(
        "ids=10de:2204,10de:1aef` would also take 0000:0a:00.0, 0000:0a:00.1" in r
        for r in verdict.refusals
    )


def test_driver_in_use_is_named_and_vfio_bound_is_recognised() -> None:
    devices = parse_lspci(fixture("lspci", "nnk-spaces-laptop-1650.txt"))["devices"]
    verdict = check_kvm_host(settings(), gtx1660_host(pci_devices=devices, iommu_groups={}))
    assert any(
        "in use by host drivers: 0000:01:00.0 (nvidia), 0000:01:00.1 (snd_hda_intel)" in line
        for line in verdict.lines
    )
    assert not verdict.bound
    bound = parse_lspci(fixture("lspci", "k-vfio-bound-no-ids.txt"))["devices"]
    functions = gpu_functions(bound, None)
    assert [f["driver"] for f in functions] == ["vfio-pci", None]


def test_helper_listing_chooses_the_addressed_gpu_in_its_own_group() -> None:
    text = fixture("iommu-groups", "helper-driver-suffix.txt")
    groups = parse_iommu_groups(text)["groups"]
    devices = [d for members in groups.values() for d in members]
    facts = gtx1660_host(iommu_groups=groups, pci_devices=[{**d, "modules": []} for d in devices])
    assert any("several NVIDIA functions" in r for r in check_kvm_host(settings(), facts).refusals)
    verdict = check_kvm_host(settings(kvm_gpu_address="0000:0a:00.0"), facts)
    assert verdict.refusals == []
    assert len(verdict.functions) == 4 and verdict.bound


def test_gpu_address_not_present_is_refused() -> None:
    (refusal,) = check_kvm_host(settings(kvm_gpu_address="0000:09:00.0"), gtx1660_host()).refusals
    assert "no PCI device at kvm_gpu_address='0000:09:00.0'" in refusal


def test_no_nvidia_gpu_is_refused() -> None:
    facts = gtx1660_host(pci_devices=[d for d in gtx1660_host().pci_devices if not d["nvidia"]])
    (refusal,) = check_kvm_host(settings(), facts).refusals
    assert refusal == "no GPU to pass through: no NVIDIA GPU in `lspci -Dnnk`"


def test_contrary_kernel_parameter_is_refused_not_overwritten() -> None:
    grub = fixture("cmdline", "grub-default-commented-old-line.txt").replace(
        '"quiet intel_iommu=on', '"quiet intel_iommu=off'
    )
    verdict = check_kvm_host(settings(), gtx1660_host(boot_config=grub))
    (refusal,) = verdict.refusals
    assert refusal.startswith("/etc/default/grub: intel_iommu=off is set")
    assert verdict.boot_config is None


def test_unknown_boot_loader_is_refused() -> None:
    loader = decide_boot_loader(grub_default=False, kernel_cmdline=False, proxmox_boot_tool=None)
    (refusal,) = check_kvm_host(settings(), gtx1660_host(boot_loader=loader)).refusals
    assert "cannot tell where the kernel command line lives" in refusal


def test_running_kernel_without_the_parameters_needs_a_reboot() -> None:
    verdict = check_kvm_host(settings(), gtx1660_host(proc_cmdline=["quiet"]))
    assert "running kernel lacks intel_iommu=on iommu=pt: a reboot is needed" in verdict.lines


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        (
            [
                {
                    "address": "00:01.0",
                    "class_id": "0604",
                    "description": "bridge",
                    "vendor_device": "8086:1901",
                }
            ],
            [],
        ),
        (
            [
                {
                    "address": "00:14.0",
                    "class_id": "0c03",
                    "description": "USB",
                    "vendor_device": "8086:a3af",
                }
            ],
            ["0000:00:14.0 USB [8086:a3af]"],
        ),
    ],
)
def test_group_intruders(members: list[dict[str, Any]], expected: list[str]) -> None:
    assert group_intruders(members, [{"address": "0000:01:00.0"}]) == expected
