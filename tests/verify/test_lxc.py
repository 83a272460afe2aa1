"""The lxc topology: the GPU's device nodes and config lines on the host, the nodes and a
driver of the host's version in the container.

Skipped unless the deploy wrote /etc/ollama-rig/lxc.json (roles/lxc): "side" "host" on the
Proxmox node or LXD/Incus host (topology lxc), "guest" in the container (topology native with
lxc_guest=True). On the host run only this file (`pytest tests/verify/test_lxc.py
--hosts=ssh://root@pve`): Ollama is not on it. In the container the whole suite runs, the
`100% GPU` check included (test_models.py).

The wanted lines are recomputed from the host's live /proc/devices and /dev/nvidia* with the
same pure functions the operation used (roles/lxc/plan.py), so a uvm major that moved since the
deploy (a driver update) fails here, with the fix: run the deploy again.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from doctor.parsers import parse_dev_nvidia
from facts.lxc import (
    NvidiaKernelModuleVersion,
    NvidiaLibraryVersions,
    pve_config_path,
    pve_manager_version,
)
from facts.parsers import ParseError
from facts.parsers.kernel import parse_proc_devices
from facts.parsers.lxc import parse_pve_lxc_conf
from facts.parsers.nvidia import parse_nvidia_smi
from roles.lxc import LXC_MANIFEST, UVM_UNIT
from roles.lxc.lxd import NVIDIA_CONFIG, gpu_devices
from roles.lxc.plan import NVIDIA_MAJOR, LxcPlanError, device_style, wanted_lines, wanted_nodes
from tests.verify.conftest import json_or_skip

FIX = "run deploy.py against this host again"


@pytest.fixture(scope="module")
def lxc(host: Any) -> dict[str, Any]:
    return json_or_skip(host, LXC_MANIFEST, "neither an lxc topology host nor an LXC guest")


@pytest.fixture(scope="module")
def lxc_host(lxc: dict[str, Any]) -> dict[str, Any]:
    if lxc["side"] != "host":
        pytest.skip("the LXC guest: host-side checks run against the Proxmox node / LXD host")
    return lxc


@pytest.fixture(scope="module")
def lxc_guest(lxc: dict[str, Any]) -> dict[str, Any]:
    if lxc["side"] != "guest":
        pytest.skip("the container's host: guest-side checks run against the container")
    if lxc.get("gpu") == "none":
        pytest.skip("gpu='none' in this container: no GPU device nodes are expected")
    return lxc


@pytest.fixture(scope="module")
def majors(host: Any, lxc: dict[str, Any]) -> dict[str, int]:
    """Character majors of the host's kernel (a container reads the same /proc/devices)."""
    parsed: dict[str, int] = parse_proc_devices(host.check_output("cat /proc/devices"))["majors"]
    if "nvidia-uvm" not in parsed:
        pytest.fail(
            "nvidia-uvm is not in /proc/devices: the uvm module is not loaded on the host;"
            f" run `nvidia-modprobe -u -c=0` there (the {UVM_UNIT} unit does it at boot)"
        )
    return parsed


@pytest.fixture(scope="module")
def nodes(host: Any, lxc: dict[str, Any]) -> dict[str, dict[str, int]]:
    out = host.run("ls -ld /dev/nvidia* 2>&1")
    try:
        found: dict[str, dict[str, int]] = parse_dev_nvidia(out.stdout)["devices"]
    except ParseError:
        found = {}
    return found


def check_nodes(nodes: dict[str, dict[str, int]], majors: dict[str, int], where: str) -> None:
    gpus = [n for n in nodes if n[6:].isdigit() and n.startswith("nvidia")]
    missing = [n for n in ("nvidiactl", "nvidia-uvm") if n not in nodes]
    assert gpus and not missing, (
        f"{where}: /dev/nvidia* lacks {', '.join(missing + ([] if gpus else ['nvidiaN']))}"
        f" (has {sorted(nodes) or 'none'})"
    )
    wrong = {
        name: node["major"]
        for name, node in nodes.items()
        if (name == "nvidia-uvm" and node["major"] != majors["nvidia-uvm"])
        or ((name in gpus or name == "nvidiactl") and node["major"] != NVIDIA_MAJOR)
    }
    assert not wrong, (
        f"{where}: device nodes with majors the driver does not hold: {wrong} (nvidia-uvm is"
        f" {majors['nvidia-uvm']} in /proc/devices, nvidia {NVIDIA_MAJOR}); a stale node"
        " from an older driver: reboot, or remove it and run `nvidia-modprobe -u -c=0`"
    )


# --- host side --------------------------------------------------------------------------------


def test_host_device_nodes(
    lxc_host: dict[str, Any], nodes: dict[str, dict[str, int]], majors: dict[str, int]
) -> None:
    check_nodes(nodes, majors, "host")


def test_host_creates_nodes_at_boot(host: Any, lxc_host: dict[str, Any]) -> None:
    # Both platforms: LXD's gpu device passes only nodes that exist when the instance starts,
    # and nvidia-container-cli skips a missing /dev/nvidia-uvm (roles/lxc nvidia_boot_nodes).
    unit = host.service(UVM_UNIT)
    assert unit.is_enabled, f"{UVM_UNIT} is not enabled: /dev/nvidia-uvm races a boot; {FIX}"


def test_proxmox_config_has_the_gpu_lines(
    host: Any,
    lxc_host: dict[str, Any],
    nodes: dict[str, dict[str, int]],
    majors: dict[str, int],
) -> None:
    if lxc_host["platform"] != "proxmox":
        pytest.skip("LXD/Incus: the gpu device is checked by test_lxd_instance_has_the_gpu")
    path = pve_config_path(lxc_host["vmid"])
    config = host.file(path)
    assert config.exists, f"{path} is missing: container {lxc_host['vmid']} is gone"
    text = config.content_string
    pve = pve_manager_version(host.run("pveversion").stdout)
    try:
        style = device_style(lxc_host["device_style"], pve)
        wanted = wanted_lines(
            wanted_nodes(nodes, lxc_host["gpus"], style),
            majors,
            style,
            mig=lxc_host["mig"],
            gid=lxc_host["dev_gid"],
        )
    except LxcPlanError as exc:
        pytest.fail(f"the host cannot pass its GPU as configured: {exc}")
    try:
        parse_pve_lxc_conf(text)
    except ParseError as exc:
        pytest.fail(f"{path} does not parse as a Proxmox container config: {exc}")
    main = text.split("\n[", 1)[0]  # the main section: snapshots keep their own lines
    lines = {raw.strip() for raw in main.splitlines()}
    missing = []
    for line in wanted:
        if line.key == "dev":
            if not any(
                raw.split(":", 1)[0].startswith("dev") and raw.split(": ", 1)[-1] == line.value
                for raw in lines
            ):
                missing.append(f"devN: {line.value}")
        elif line.render() not in lines:
            missing.append(line.render())
    assert not missing, (
        f"{path} lacks {missing} ({style} style, nvidia-uvm major {majors['nvidia-uvm']}"
        f" from /proc/devices): {FIX}"
    )


def test_lxd_instance_has_the_gpu(host: Any, lxc_host: dict[str, Any]) -> None:
    if lxc_host["platform"] != "lxd":
        pytest.skip(
            "Proxmox: the config lines are checked by test_proxmox_config_has_the_gpu_lines"
        )
    name = lxc_host["instance"]
    for client in ("lxc", "incus"):
        out = host.run(f"{client} query /1.0/instances/{name}")
        if out.rc == 0:
            break
    else:
        pytest.fail(f"neither `lxc query` nor `incus query` shows instance {name}: {out.stderr}")
    instance = json.loads(out.stdout)
    wanted = gpu_devices(lxc_host["gpus"])
    devices = instance.get("devices", {})
    missing = {k: v for k, v in wanted.items() if devices.get(k) != v}
    assert not missing, f"instance {name} lacks the GPU devices {missing}: {FIX}"
    config = instance.get("config", {})
    for key, value in NVIDIA_CONFIG.items():
        assert config.get(key) == value, f"instance {name}: {key} is {config.get(key)!r}; {FIX}"


# --- guest side -------------------------------------------------------------------------------


def test_guest_device_nodes_with_host_majors(
    lxc_guest: dict[str, Any], nodes: dict[str, dict[str, int]], majors: dict[str, int]
) -> None:
    check_nodes(nodes, majors, "container")


def test_guest_driver_matches_host(host: Any, lxc_guest: dict[str, Any]) -> None:
    module_out = host.run("cat /proc/driver/nvidia/version").stdout.splitlines()
    module = NvidiaKernelModuleVersion().process(module_out)["version"]
    assert module, "/proc/driver/nvidia/version is unreadable: the host driver is not loaded"
    libs_out = host.run(NvidiaLibraryVersions().command()).stdout.splitlines()
    libraries = NvidiaLibraryVersions().process(libs_out)
    assert libraries == [module], (
        f"the container's NVIDIA libraries are {libraries or 'missing'}, the host driver is"
        f" {module}: they must be equal; {FIX} (it installs the host's version)"
    )


def test_guest_nvidia_smi_works(host: Any, lxc_guest: dict[str, Any]) -> None:
    out = host.run("nvidia-smi")
    smi = parse_nvidia_smi(out.stdout + out.stderr)
    assert smi["error"] is None and smi["gpus"], (
        f"nvidia-smi fails in the container ({smi['error']}): {smi.get('message')}"
        " (`python -m doctor` names the cause: missing nvidia-uvm, wrong major, mismatch)"
    )
