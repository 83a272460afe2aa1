"""kvm wiring: the tools the preparation needs, the host preflight, the verify manifest."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from facts.kvm import MissingCommands
from roles.kvm.check import TOOL_FIXES, check_kvm_host, required_tools
from roles.kvm.deploy import kvm_manifest, vm_manager
from roles.kvm.vfio import GRUB_DEFAULT, KERNEL_CMDLINE, BootLoader
from roles.preflight.check import HostFacts, check_host
from settings import settings_from_data
from tests.unit.test_kvm_check import gtx1660_host, settings

ROOT = Path(__file__).resolve().parents[2]
NO_SMI: dict[str, Any] = {"gpus": [], "error": "not-found", "message": "nvidia-smi: not found"}
HYPERVISOR = HostFacts(
    os_id="debian",
    os_version="12",
    machine="x86_64",
    init="systemd",
    cpu_flags=["avx", "avx2", "vmx"],
    nvidia_smi=NO_SMI,
    pci_functions=[
        {"address": "0000:01:00.0", "vendor_device": "10de:21c4", "class": "0300", "gpu": True}
    ],
)


@pytest.mark.parametrize(
    ("loader", "expected"),
    [
        (BootLoader("grub", GRUB_DEFAULT, "update-grub"), ["update-grub", "update-initramfs"]),
        (
            BootLoader("systemd-boot", KERNEL_CMDLINE, "proxmox-boot-tool refresh"),
            ["proxmox-boot-tool", "update-initramfs"],
        ),
        (BootLoader("unknown", "", "", refusal="?"), ["update-initramfs"]),
    ],
)
def test_required_tools_follow_the_boot_loader(loader: BootLoader, expected: list[str]) -> None:
    assert required_tools(loader) == expected


@pytest.mark.parametrize("tool", ["update-grub", "update-initramfs", "proxmox-boot-tool"])
def test_a_missing_tool_is_refused_with_what_installs_it(tool: str) -> None:
    verdict = check_kvm_host(settings(), gtx1660_host(missing_tools=[tool]))
    assert len(verdict.refusals) == 1
    assert f"`{tool}` is missing" in verdict.refusals[0]
    assert TOOL_FIXES[tool] in verdict.refusals[0]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, ["update-grub", "update-initramfs", "virsh"]),
        (
            {"kvm_vm_manager": "proxmox", "kvm_vm_id": 101},
            ["update-grub", "update-initramfs", "qm"],
        ),
        ({"kvm_define_vm": False}, ["update-grub", "update-initramfs"]),
        ({"kvm_restore_host_driver": True}, ["update-grub", "update-initramfs"]),
    ],
)
def test_the_vm_tool_is_required_only_when_the_vm_is_defined(
    data: dict[str, Any], expected: list[str]
) -> None:
    loader = BootLoader("grub", GRUB_DEFAULT, "update-grub")
    assert required_tools(loader, vm_manager(settings(**data))) == expected


def test_all_tools_present_goes_ahead() -> None:
    assert check_kvm_host(settings(), gtx1660_host(missing_tools=[])).refusals == []


def test_missing_commands_fact_lists_what_command_v_did_not_find() -> None:
    fact = MissingCommands()
    command = fact.command(["update-grub", "update-initramfs"])
    assert "command -v" in command and "update-grub update-initramfs" in command
    assert fact.process(["update-grub", ""]) == ["update-grub"]
    assert fact.process([]) == []


def test_kvm_host_needs_no_nvidia_driver() -> None:
    verdict = check_host(settings_from_data({"topology": "kvm"}), HYPERVISOR)
    assert verdict.refusals == []
    assert any("vfio-pci takes the GPU" in line for line in verdict.lines)


def test_native_host_without_driver_is_still_refused() -> None:
    verdict = check_host(settings_from_data({"topology": "native"}), HYPERVISOR)
    assert verdict.refusals and "nvidia-smi" in " ".join(verdict.lines)


def test_kvm_manifest_names_the_functions_and_the_vm() -> None:
    data = {"topology": "kvm", "kvm_vm_name": "gpu-vm"}
    manifest = kvm_manifest(settings_from_data(data), ["0000:01:00.0", "0000:01:00.1"])
    assert manifest == {
        "topology": "kvm",
        "functions": ["0000:01:00.0", "0000:01:00.1"],
        "restore_host_driver": False,
        "vm_manager": "libvirt",
        "vm_name": "gpu-vm",
        "vm_id": None,
    }


def test_lab_inventory_shows_the_kvm_shape() -> None:
    namespace: dict[str, Any] = {}
    lab = ROOT / "inventory" / "lab.py"
    exec(compile(lab.read_text(), "lab.py", "exec"), namespace)
    hypervisors, guests = namespace["kvm_hypervisors"], namespace["kvm_guests"]
    for _name, data in [*hypervisors, *guests]:
        settings_from_data({k: v for k, v in data.items() if not k.startswith(("ssh_", "_"))})
    assert all(data["topology"] == "kvm" for _name, data in hypervisors)
    assert all(data["topology"] == "native" for _name, data in guests)


def test_deploy_runs_no_ollama_role_on_the_kvm_hypervisor() -> None:
    from roles.topology import TOPOLOGIES

    tree = ast.parse((ROOT / "deploy.py").read_text())
    guards = [
        ast.unparse(node.test)
        for node in tree.body
        if isinstance(node, ast.If) and any("ensure_models" in ast.unparse(b) for b in node.body)
    ]
    # Models, harnesses and the manifest follow only where the topology table says Ollama runs.
    assert guards == ["topology.ollama_cli is not None"], guards
    assert not TOPOLOGIES["kvm"].ollama_here
    assert "prepare_kvm_host(settings=checked.settings)" in (ROOT / "roles/topology.py").read_text()
