"""The lxc topology wired in: lxc_guest, preflight on the host and in the guest, the manifest."""

from __future__ import annotations

import ast
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import jinja2
import pytest

from roles.lxc import lxc_manifest
from roles.lxc.driver import guest_refusal
from roles.lxc.plan import proxmox_refusals
from roles.preflight.check import HostFacts, check_host
from settings import SettingsError, settings_from_data
from templates import template_path

ROOT = Path(__file__).resolve().parents[2]
RTX3070 = {
    "index": 0,
    "name": "NVIDIA GeForce RTX 3070",
    "memory_total_mib": 8192,
    "driver_version": "550.54.14",
    "pci_bus_id": "00000000:01:00.0",
}
HOST = HostFacts(
    os_id="debian",
    os_version="12",
    machine="x86_64",
    init="systemd",
    cpu_flags=["avx", "avx2"],
    nvidia_smi={"gpus": [RTX3070], "error": None, "message": None},
    pci_functions=[
        {"address": "0000:01:00.0", "vendor_device": "10de:2484", "class": "0300", "gpu": True}
    ],
)
# A fresh LXC guest: sysfs shows no PCI function, no NVIDIA libraries yet.
GUEST = replace(
    HOST,
    nvidia_smi={"gpus": [], "error": "not-found", "message": "nvidia-smi: not found"},
    pci_functions=[],
)
GUEST_DATA: dict[str, Any] = {"topology": "native", "lxc_guest": True}


def test_lxc_guest_defaults_off_and_needs_native() -> None:
    assert settings_from_data({}).lxc_guest is False
    assert settings_from_data(GUEST_DATA).lxc_guest is True
    with pytest.raises(SettingsError, match="set topology='native' on it"):
        settings_from_data({"topology": "docker", "lxc_guest": True})


def test_lxc_host_passes_preflight() -> None:
    verdict = check_host(settings_from_data({"topology": "lxc", "lxc_vmid": 101}), HOST)
    assert verdict.refusals == []
    assert "topology lxc" in verdict.lines[0]


def test_lxc_host_without_gpu_use_is_refused() -> None:
    settings = settings_from_data({"topology": "lxc", "lxc_vmid": 101, "gpu": "none"})
    refusals = check_host(settings, HOST).refusals
    assert any("gpu='none' leaves nothing to pass" in r for r in refusals), refusals


@pytest.mark.parametrize("error", ["not-found", "no-nvml-library"])
def test_guest_without_libraries_goes_on(error: str) -> None:
    facts = replace(GUEST, nvidia_smi={"gpus": [], "error": error, "message": "..."})
    verdict = check_host(settings_from_data(GUEST_DATA), facts)
    assert verdict.refusals == []
    assert any("LXC guest without NVIDIA libraries" in line for line in verdict.lines)


def test_same_facts_without_lxc_guest_still_refused() -> None:
    refusals = check_host(settings_from_data({"topology": "native"}), GUEST).refusals
    assert any("no NVIDIA GPU on this host" in r for r in refusals)


def test_guest_with_other_library_version_is_refused_without_reboot_advice() -> None:
    facts = replace(GUEST, nvidia_smi={"gpus": [], "error": "version-mismatch", "message": ""})
    refusals = check_host(settings_from_data(GUEST_DATA), facts).refusals
    assert len(refusals) == 1
    assert "another version than the host's driver" in refusals[0]
    assert "reboot" not in refusals[0]


def test_guest_with_working_driver_is_a_normal_gpu_host() -> None:
    verdict = check_host(settings_from_data(GUEST_DATA), replace(HOST, pci_functions=[]))
    assert verdict.refusals == [] and verdict.gpus == [RTX3070]


def _render(manifest: dict[str, object]) -> Any:
    text = Path(template_path("lxc/lxc.json.j2")).read_text()
    return json.loads(jinja2.Template(text).render(lxc=manifest))


def test_host_manifest_round_trips() -> None:
    settings = settings_from_data(
        {"topology": "lxc", "lxc_vmid": 101, "lxc_gpus": ["0"], "lxc_device_style": "mount"}
    )
    assert _render(lxc_manifest(settings, "host")) == {
        "side": "host",
        "platform": "proxmox",
        "vmid": 101,
        "instance": None,
        "device_style": "mount",
        "gpus": ["0"],
        "mig": False,
        "dev_gid": None,
    }


def test_guest_manifest() -> None:
    assert _render(lxc_manifest(settings_from_data(GUEST_DATA), "guest")) == {
        "side": "guest",
        "gpu": "auto",
    }


def test_deploy_dispatches_lxc() -> None:
    from roles.topology import TOPOLOGIES

    tree = ast.parse((ROOT / "deploy.py").read_text())
    source = (ROOT / "roles/topology.py").read_text()
    assert "lxc_host(settings=checked.settings)" in source
    assert "lxc_guest_userspace(settings=settings)" in source
    # No models or Ollama manifest on the container's host: the table says no Ollama there.
    guards = [
        ast.unparse(node.test)
        for node in tree.body
        if isinstance(node, ast.If) and any("ensure_models" in ast.unparse(b) for b in node.body)
    ]
    assert guards == ["topology.ollama_cli is not None"], guards
    assert not TOPOLOGIES["lxc"].ollama_here and TOPOLOGIES["native"].ollama_here


def test_lab_inventory_shows_the_lxc_shape() -> None:
    namespace: dict[str, Any] = {}
    exec(compile((ROOT / "inventory" / "lab.py").read_text(), "lab.py", "exec"), namespace)
    entries = [
        entry
        for value in namespace.values()
        if isinstance(value, list)
        for entry in value
        if isinstance(entry, tuple)
    ]
    by_topology: dict[str, list[dict[str, Any]]] = {}
    for _name, data in entries:
        clean = {k: v for k, v in data.items() if not k.startswith(("ssh_", "_"))}
        settings_from_data(clean)  # every example is valid settings
        by_topology.setdefault(data["topology"], []).append(data)
    assert any(d.get("lxc_vmid") for d in by_topology["lxc"])
    assert any(d.get("lxc_guest") for d in by_topology["native"])


SHA = "0" * 64


@pytest.mark.parametrize(
    ("module", "installed", "sha256", "expected"),
    [
        (None, [], SHA, "/proc/driver/nvidia/version is not readable"),
        ("550.54.14", ["535.183.01"], SHA, "535.183.01 but the host driver is 550.54.14"),
        ("550.54.14", [], None, "NVIDIA-Linux-x86_64-550.54.14.run"),
    ],
)
def test_guest_refusals(
    module: str | None, installed: list[str], sha256: str | None, expected: str
) -> None:
    refusal = guest_refusal(module, installed, sha256)
    assert refusal is not None and expected in refusal


@pytest.mark.parametrize(
    ("installed", "sha256"), [(["550.54.14"], None), ([], SHA), (["550.54.14"], SHA)]
)
def test_guest_goes_on(installed: list[str], sha256: str | None) -> None:
    assert guest_refusal("550.54.14", installed, sha256) is None


CONF = "arch: amd64\nhostname: ollama\nmemory: 8192\n"


def test_proxmox_refusals() -> None:
    missing = proxmox_refusals(101, None, None, None)
    assert len(missing) == 1 and "container 101 does not exist" in missing[0]
    assert proxmox_refusals(101, None, None, "local:vztmpl/debian.tar.zst") == []
    assert proxmox_refusals(101, "running", CONF, None) == []
    locked = proxmox_refusals(101, "stopped", CONF + "lock: backup\n", None)
    assert len(locked) == 1 and "locked (backup)" in locked[0] and "pct unlock 101" in locked[0]
