"""kvm host generation: boot loader, kernel parameters merged idempotently, vfio files, way back."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyinfra.api.util import get_template

from facts.parsers.kernel import parse_cmdline_info
from facts.parsers.pci import parse_lspci
from roles.kvm.check import gpu_functions
from roles.kvm.vfio import (
    KERNEL_CMDLINE,
    MODPROBE,
    MODULES_LOAD,
    decide_boot_loader,
    merge_kernel_params,
    softdep_drivers,
    vfio_ids,
    vfio_modules,
    wanted_kernel_params,
    way_back,
)
from templates import template_path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "outputs"
WANTED = ["intel_iommu=on", "iommu=pt"]
# `proxmox-boot-tool status` on a ZFS/UEFI node (pve-kernel-helper's format; shape unverified
# on a live node here: "<ESP UUID> is configured with: uefi (versions: ...)").
PBT_UEFI = """Re-executing '/usr/sbin/proxmox-boot-tool' in new private mount namespace..
System currently booted with uefi
4A2B-1C3D is configured with: uefi (versions: 6.8.12-4-pve, 6.8.12-5-pve)
"""


def fixture(kind: str, name: str) -> str:
    return (FIXTURES / kind / name).read_text(encoding="utf-8")


def without_iommu(text: str) -> str:
    """A recorded command line with the IOMMU parameters taken out (the state before)."""
    return text.replace(" intel_iommu=on iommu=pt", "")


@pytest.mark.parametrize(
    ("grub", "cmdline", "pbt", "kind", "config", "refresh"),
    [
        (True, False, None, "grub", "/etc/default/grub", "update-grub"),
        (False, True, PBT_UEFI, "systemd-boot", KERNEL_CMDLINE, "proxmox-boot-tool refresh"),
        (True, True, PBT_UEFI, "systemd-boot", KERNEL_CMDLINE, "proxmox-boot-tool refresh"),
        (
            True,
            False,
            "4A2B-1C3D is configured with: grub (versions: 6.8.12-4-pve)",
            "grub",
            "/etc/default/grub",
            "proxmox-boot-tool refresh",
        ),
    ],
)
def test_boot_loader(
    grub: bool, cmdline: bool, pbt: str | None, kind: str, config: str, refresh: str
) -> None:
    loader = decide_boot_loader(grub, cmdline, pbt)
    assert (loader.kind, loader.config, loader.refresh, loader.refusal) == (
        kind,
        config,
        refresh,
        None,
    )


def test_boot_loader_refusals() -> None:
    assert "is missing" in str(decide_boot_loader(True, False, PBT_UEFI).refusal)
    assert "not supported yet" in str(decide_boot_loader(False, True, None).refusal)


def test_wanted_params_per_vendor() -> None:
    assert wanted_kernel_params("intel") == WANTED
    assert wanted_kernel_params("amd") == ["iommu=pt"]


def test_grub_merge_keeps_everything_and_is_idempotent() -> None:
    recorded = fixture("cmdline", "grub-default-commented-old-line.txt")
    before = without_iommu(recorded)
    merged = merge_kernel_params(before, "grub", WANTED)
    assert merged.added == WANTED and merged.refusal is None
    # The commented old line and every other line are untouched; the live line gains both.
    assert merged.text.replace("i915.enable_guc=3 i915.max_vfs=7 intel_iommu=on iommu=pt", "X") == (
        before.replace("i915.enable_guc=3 i915.max_vfs=7", "X")
    )
    assert parse_cmdline_info(merged.text)["grub"]["GRUB_CMDLINE_LINUX_DEFAULT"] == [
        "quiet",
        "i915.enable_guc=3",
        "i915.max_vfs=7",
        *WANTED,
    ]
    again = merge_kernel_params(merged.text, "grub", WANTED)
    assert again.added == [] and again.text == merged.text
    # The recorded file already has both: nothing changes.
    assert merge_kernel_params(recorded, "grub", WANTED).text == recorded


def test_grub_with_a_reference_gets_an_extending_line() -> None:
    text = 'GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT quiet"\n'
    merged = merge_kernel_params(text, "grub", WANTED)
    assert merged.text.splitlines()[-1] == (
        'GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT intel_iommu=on iommu=pt"'
    )
    assert merge_kernel_params(merged.text, "grub", WANTED).added == []


def test_grub_param_in_cmdline_linux_counts() -> None:
    text = 'GRUB_CMDLINE_LINUX="iommu=pt"\nGRUB_CMDLINE_LINUX_DEFAULT="quiet"\n'
    merged = merge_kernel_params(text, "grub", WANTED)
    assert merged.added == ["intel_iommu=on"]
    assert 'GRUB_CMDLINE_LINUX_DEFAULT="quiet intel_iommu=on"' in merged.text


def test_systemd_boot_cmdline_merge_is_idempotent() -> None:
    recorded = fixture("cmdline", "kernel-cmdline-zfs-systemd-boot.txt")
    before = without_iommu(recorded)
    merged = merge_kernel_params(before, "systemd-boot", WANTED)
    assert merged.text == (
        "root=ZFS=rpool/ROOT/pve-1 boot=zfs i915.enable_guc=3 i915.max_vfs=3"
        " intel_iommu=on iommu=pt\n"
    )
    assert merge_kernel_params(merged.text, "systemd-boot", WANTED).added == []
    assert merge_kernel_params(recorded, "systemd-boot", WANTED).added == []


@pytest.mark.parametrize(
    ("param", "named"),
    [
        ("intel_iommu=off", "intel_iommu=off"),
        ("iommu=soft", "iommu=soft"),
        ("amd_iommu=off", "amd_iommu=off"),
    ],
)
def test_contrary_values_are_refused(param: str, named: str) -> None:
    text = f"root=ZFS=rpool/ROOT/pve-1 boot=zfs {param}\n"
    merged = merge_kernel_params(text, "systemd-boot", WANTED)
    assert merged.refusal is not None and merged.refusal.startswith(f"{named} is set")
    assert merged.text == text


def test_option_lists_count_as_set() -> None:
    merged = merge_kernel_params("root=/dev/sda1 intel_iommu=on,igfx_off iommu=pt\n", "c", WANTED)
    assert merged.added == [] and merged.refusal is None


def test_empty_kernel_cmdline_is_refused() -> None:
    assert "must hold the whole command line" in str(
        merge_kernel_params("# nothing\n", "systemd-boot", WANTED).refusal
    )


@pytest.mark.parametrize(
    ("release", "virqfd"),
    [
        ("5.15.0-91-generic", True),
        ("6.1.0-18-amd64", True),
        ("6.2.16-3-pve", False),
        ("6.8.12-4-pve", False),
    ],
)
def test_vfio_virqfd_only_before_6_2(release: str, virqfd: bool) -> None:
    assert ("vfio_virqfd" in vfio_modules(release)) is virqfd


def _functions(name: str) -> list[dict[str, object]]:
    return gpu_functions(parse_lspci(fixture("lspci", name))["devices"], None)


def test_vfio_files_for_the_3080_from_lspci_nnk() -> None:
    functions = _functions("nnk-lost-indent-3080.txt")
    modprobe = get_template(template_path("kvm/vfio-modprobe.conf.j2")).render(
        gpu_address=functions[0]["address"],
        ids=vfio_ids(functions),
        softdeps=softdep_drivers(functions),
    )
    body = [line for line in modprobe.splitlines() if not line.startswith("#")]
    assert body == [
        "options vfio-pci ids=10de:2206,10de:1aef",
        "softdep nvidia pre: vfio-pci",
        "softdep nouveau pre: vfio-pci",
        "softdep nvidia_drm pre: vfio-pci",
        "softdep snd_hda_intel pre: vfio-pci",
    ]
    assert "0000:3e:00.0" in modprobe and modprobe.endswith("vfio-pci\n")
    modules = get_template(template_path("kvm/vfio-modules.conf.j2")).render(
        modules=vfio_modules("6.1.0-18-amd64")
    )
    assert [x for x in modules.splitlines() if not x.startswith("#")] == [
        "vfio",
        "vfio_iommu_type1",
        "vfio_pci",
        "vfio_virqfd",
    ]


def test_way_back_removes_our_files_and_keeps_the_iommu_params() -> None:
    back = way_back("intel", decide_boot_loader(True, False, None))
    assert back.remove == [MODPROBE, MODULES_LOAD]
    assert back.commands == ["update-initramfs -u -k all"]
    assert back.kept_params == [
        "intel_iommu=on (/etc/default/grub)",
        "iommu=pt (/etc/default/grub)",
    ]
