"""Tier 2: the kvm topology's host preparation applied for real to a systemd container.

The container is made to look like a passthrough host by test fixtures (tests/integration/
kvm_host.py: a recorded `lspci` with an RTX 3070, vmx in /proc/cpuinfo, /proc/cmdline,
/sys/kernel/iommu_groups, /etc/default/grub, recording update-grub/update-initramfs). The
role itself is unchanged: deploy.py with topology "kvm". "Rebooting" is rewriting the fixtures.
Tests run in file order and build on each other: refusals first (nothing changed), then the
first boot without IOMMU, the second with IOMMU and the host driver, the third with vfio-pci,
the verify suite, and the way back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from roles.kvm.deploy import KVM_MANIFEST
from roles.kvm.vfio import MODPROBE, MODULES_LOAD
from tests.integration import kvm_host
from tests.integration.deployer import DeployRun, changed, run_deploy, run_verify
from tests.integration.kvm_host import AUDIO, GPU, GRUB_TEXT, OTHER, calls, cat

PARAMS = "intel_iommu=on iommu=pt"
MERGED_LINE = f'GRUB_CMDLINE_LINUX_DEFAULT="quiet splash mitigations=auto {PARAMS}"'
SUITE = "tests/verify/test_kvm.py"


@pytest.fixture(scope="module")
def host(container: str) -> Iterator[str]:
    kvm_host.install(container)
    yield container


def data(**overrides: Any) -> dict[str, Any]:
    # The container has no libvirt (and no /dev/kvm): the host preparation only, the VM step
    # (virsh define / qm set) is covered by the operation cases in tests/unit/pyinfra_cases.
    return {"topology": "kvm", "kvm_define_vm": False, **overrides}


def manifest_only(run: DeployRun) -> bool:
    """The one change of a converged run after a reboot: the verify manifest written."""
    names = run.changed_operations()
    return len(names) == 1 and names[0].endswith(f"Write {KVM_MANIFEST}")


def vfio_files(host: str) -> tuple[str, str]:
    return cat(host, MODPROBE), cat(host, MODULES_LOAD)


@pytest.mark.parametrize(
    ("missing", "fix"),
    [("update-grub", "install grub2-common"), ("update-initramfs", "install initramfs-tools")],
)
def test_missing_tool_is_refused_before_any_change(host: str, missing: str, fix: str) -> None:
    kvm_host.set_tools(
        host, update_grub=missing != "update-grub", update_initramfs=missing != "update-initramfs"
    )
    try:
        run = run_deploy(host, data())
    finally:
        kvm_host.set_tools(host, update_grub=True, update_initramfs=True)
    assert run.returncode != 0
    assert f"`{missing}` is missing on the host: {fix}" in run.output
    assert "Traceback" not in run.output
    assert cat(host, "/etc/default/grub") == GRUB_TEXT
    assert calls(host) == [] and vfio_files(host) == ("", "")


def test_contrary_kernel_parameter_is_refused_not_overwritten(host: str) -> None:
    contrary = GRUB_TEXT.replace("quiet splash", "quiet intel_iommu=off splash")
    kvm_host.write(host, "/etc/default/grub", contrary)
    try:
        run = run_deploy(host, data())
        assert run.returncode != 0
        assert "intel_iommu=off is set: it contradicts intel_iommu=on iommu=pt" in run.output
        assert cat(host, "/etc/default/grub") == contrary and calls(host) == []
    finally:
        kvm_host.write(host, "/etc/default/grub", GRUB_TEXT)


def test_boot_vga_gpu_is_refused_unless_allowed(host: str) -> None:
    kvm_host.set_boot_vga(host, GPU)
    try:
        run = run_deploy(host, data())
        allowed = run_deploy(host, data(kvm_allow_boot_vga=True), "--dry")
    finally:
        kvm_host.set_boot_vga(host, None)
    assert run.returncode != 0
    assert f"{GPU} is the boot VGA device (sysfs boot_vga=1)" in run.output
    assert "set kvm_allow_boot_vga=True" in run.output
    assert cat(host, "/etc/default/grub") == GRUB_TEXT and calls(host) == []
    assert allowed.returncode == 0, allowed.output[-3000:]
    assert "boot VGA" not in allowed.output


def test_defining_the_vm_without_libvirt_is_refused_before_any_change(host: str) -> None:
    run = run_deploy(host, {"topology": "kvm"})  # kvm_define_vm defaults to True
    assert run.returncode != 0
    assert "`virsh` is missing on the host: install libvirt-clients" in run.output
    assert "kvm_define_vm=False" in run.output
    assert cat(host, "/etc/default/grub") == GRUB_TEXT and calls(host) == []


def test_iommu_absent_parameters_merged_then_reboot_required(host: str) -> None:
    run = run_deploy(host, data())
    assert run.returncode != 0
    assert "IOMMU: not active (0 groups" in run.output
    assert f"reboot required (running kernel lacks {PARAMS})" in run.output
    assert "set kvm_allow_reboot=True" in run.output
    grub = cat(host, "/etc/default/grub")
    # Every other line and parameter kept; only the two parameters added.
    assert grub == GRUB_TEXT.replace(
        'GRUB_CMDLINE_LINUX_DEFAULT="quiet splash mitigations=auto"', MERGED_LINE
    )
    assert cat(host, "/etc/default/grub.ollama-rig.bak") == GRUB_TEXT
    assert calls(host) == ["update-grub"]
    # The group is unknown until the IOMMU is on: nothing is bound yet.
    assert vfio_files(host) == ("", "")


def test_iommu_absent_second_run_changes_nothing_and_still_stops(host: str) -> None:
    run = run_deploy(host, data())
    assert run.returncode != 0 and "reboot required" in run.output
    assert MERGED_LINE in cat(host, "/etc/default/grub")
    assert cat(host, "/etc/default/grub").count("intel_iommu=on") == 1
    assert calls(host) == ["update-grub"]  # not run again: the file did not change


def test_group_holding_another_device_is_refused_before_binding(host: str) -> None:
    kvm_host.set_cmdline(host, f"{kvm_host.BOOT_CMDLINE} {PARAMS}")  # rebooted: parameters on
    kvm_host.set_iommu_groups(host, {"1": [GPU, AUDIO, OTHER]})
    run = run_deploy(host, data())
    assert run.returncode != 0
    assert f"IOMMU group 1 of {GPU} also holds {OTHER}" in run.output
    assert vfio_files(host) == ("", "") and calls(host) == ["update-grub"]


def test_isolated_group_binds_then_reboot_required(host: str) -> None:
    kvm_host.set_iommu_groups(host, {"0": [OTHER], "1": [GPU, AUDIO]})
    run = run_deploy(host, data())
    assert run.returncode != 0
    assert f"not on vfio-pci: {GPU} (nvidia), {AUDIO} (snd_hda_intel)" in run.output
    modprobe, modules = vfio_files(host)
    assert "options vfio-pci ids=10de:2484,10de:228b" in modprobe
    for driver in ("nvidia", "nouveau", "snd_hda_intel"):
        assert f"softdep {driver} pre: vfio-pci" in modprobe
    loaded = [line for line in modules.splitlines() if line and not line.startswith("#")]
    assert loaded[:3] == ["vfio", "vfio_iommu_type1", "vfio_pci"], modules
    assert calls(host) == ["update-grub", "update-initramfs -u -k all"]


def test_after_the_reboot_vfio_pci_is_verified(host: str) -> None:
    kvm_host.set_drivers(host, "vfio-pci", "vfio-pci")  # rebooted: vfio-pci took both
    run = run_deploy(host, data())
    assert run.returncode == 0, run.output[-5000:]
    assert manifest_only(run), changed(run)
    assert calls(host) == ["update-grub", "update-initramfs -u -k all"]


def test_second_converge_changes_nothing(host: str) -> None:
    run = run_deploy(host, data())
    assert run.returncode == 0, run.output[-5000:]
    assert run.totals["error"] == 0
    assert run.totals["success"] == 0, changed(run)
    assert run.totals["no_change"] == run.operations
    assert calls(host) == ["update-grub", "update-initramfs -u -k all"]


def test_verify_suite_passes_on_the_host(host: str) -> None:
    result = run_verify(host, suite=SUITE)
    assert result.returncode == 0, result.stdout[-5000:]
    for test in ("test_iommu_active", "test_every_gpu_function_on_vfio_pci"):
        assert f"PASSED tests/verify/test_kvm.py::{test}" in result.stdout
    assert "no `virsh` here: libvirt is not installed" in result.stdout
    assert "this is the kvm hypervisor: the AVX check is for its guest" in result.stdout


def test_verify_suite_fails_when_the_gpu_is_back_on_nvidia(host: str) -> None:
    kvm_host.set_drivers(host, "nvidia", "vfio-pci")
    try:
        result = run_verify(host, suite=SUITE)
    finally:
        kvm_host.set_drivers(host, "vfio-pci", "vfio-pci")
    assert result.returncode == 1, result.stdout[-5000:]
    assert "FAILED tests/verify/test_kvm.py::test_every_gpu_function_on_vfio_pci" in result.stdout
    assert f"'{GPU}': 'nvidia'" in result.stdout


def test_way_back_removes_the_binding_then_reboot_required(host: str) -> None:
    run = run_deploy(host, data(kvm_restore_host_driver=True))
    assert run.returncode != 0
    assert f"reboot required (not on the host driver: {GPU} (vfio-pci)" in run.output
    assert vfio_files(host) == ("", "")
    assert calls(host)[-1] == "update-initramfs -u -k all" and len(calls(host)) == 3
    # The IOMMU parameters stay (README: they do not take the GPU from its driver).
    assert MERGED_LINE in cat(host, "/etc/default/grub")


def test_way_back_after_the_reboot_converges_and_verifies(host: str) -> None:
    kvm_host.set_drivers(host, "nvidia", "snd_hda_intel")
    first = run_deploy(host, data(kvm_restore_host_driver=True))
    assert first.returncode == 0, first.output[-5000:]
    assert manifest_only(first), changed(first)
    second = run_deploy(host, data(kvm_restore_host_driver=True))
    assert second.returncode == 0 and second.totals["success"] == 0, changed(second)
    result = run_verify(host, suite=SUITE)
    assert result.returncode == 0, result.stdout[-5000:]
    assert "PASSED tests/verify/test_kvm.py::test_vfio_files_match_the_way_chosen" in (
        result.stdout
    )
