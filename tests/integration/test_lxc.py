"""Tier 2, lxc topology: the config lines roles/lxc/plan.py writes, given to real liblxc.

The lines are made as on a Proxmox node: from this machine's /proc/devices and `ls -ld
/dev/nvidia*` (the NvidiaDeviceNodes fact's command), merged by merge_config into a real
Proxmox container config (tests/fixtures/outputs/pve-lxc-conf/), and their `lxc.*` lines
handed to liblxc as `key = value`, which is how pve-container writes a config's raw `lxc.*`
keys into the config lxc-start reads. A container from an mmdebstrap'd bookworm rootfs then boots
systemd under lxc-start, and the nodes must be inside with the host's majors (the check of
tests/verify/test_lxc.py), and the device cgroup must let them through.

This machine has no GPU: unless real /dev/nvidia* nodes exist (then those are used, untouched),
the nodes are made with mknod in /dev (major 195, and a free dynamic major as nvidia-uvm's) and
removed afterwards. Opening such a node gives ENXIO when the cgroup allows it, EPERM when not;
a control node whose major no rule allows must give EPERM.

Proxmox VE 7+ runs cgroup v2 only, and its lines are `lxc.cgroup2.devices.allow`. liblxc ignores
cgroup2 limits where the devices controller is cgroup v1 ("Ignoring cgroup2 limits on legacy
cgroup system"): on such a machine the same values are also given as `lxc.cgroup.devices.allow`
(plan.py's ALLOW_KEYS[1], the pre-v2 spelling) to prove the rules themselves.

The `devN:` style is not liblxc's: pve-container turns it into its own mount hook, so only a
Proxmox node can test it (tests/verify/test_lxc.py there).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from doctor.parsers import parse_dev_nvidia
from facts.parsers.kernel import parse_proc_devices
from roles.lxc import LXC_MANIFEST
from roles.lxc.plan import ALLOW_KEYS, NVIDIA_MAJOR, merge_config, wanted_lines, wanted_nodes
from tests.integration import lxc_host, testbed
from tests.integration.deployer import ROOT, run_deploy, run_verify, sh, standin_data, unavailable
from tests.integration.lxc_host import PVE_CONFIG, UVM_MAJOR, VMID, set_uvm_major
from tests.verify.test_lxc import check_nodes

CONTROL = "rig-control"  # a node whose major no rule allows
ENXIO = "No such device or address"
EPERM = "Operation not permitted"


@dataclass
class Booted:
    container: lxc_host.Container
    started: subprocess.CompletedProcess[str]
    state: str
    seconds: float
    lines: list[str]


@pytest.fixture(scope="module")
def rootfs() -> Path:
    reason = lxc_host.lxc_available()
    if reason:
        unavailable(f"lxc integration: {reason}")
    return lxc_host.build_rootfs(ROOT / "build" / "lxc-rootfs")


@pytest.fixture(scope="module")
def host_nodes(rootfs: Path) -> Iterator[tuple[dict[str, int], dict[str, dict[str, int]]]]:
    """(majors, nodes) as the host facts read them; fake nodes made (and removed) if needed."""
    majors: dict[str, int] = parse_proc_devices(Path("/proc/devices").read_text())["majors"]
    real = "nvidia-uvm" in majors and Path("/dev/nvidia-uvm").exists()
    fake: dict[str, tuple[int, int]] = {}
    if not real:
        uvm = lxc_host.free_major(majors)
        control = lxc_host.free_major({**majors, "nvidia-uvm": uvm})
        majors = {**majors, "nvidia": NVIDIA_MAJOR, "nvidiactl": NVIDIA_MAJOR, "nvidia-uvm": uvm}
        fake = {
            "nvidia0": (NVIDIA_MAJOR, 0),
            "nvidiactl": (NVIDIA_MAJOR, 255),
            "nvidia-uvm": (uvm, 0),
            "nvidia-uvm-tools": (uvm, 1),
            CONTROL: (control, 0),
        }
    with lxc_host.device_nodes(fake):
        listing = subprocess.run(
            "ls -ld /dev/nvidia* 2>&1 || true", shell=True, capture_output=True, text=True
        ).stdout
        yield majors, parse_dev_nvidia(listing)["devices"]


def liblxc_lines(majors: dict[str, int], nodes: dict[str, dict[str, int]]) -> list[str]:
    """The merged Proxmox config's `lxc.*` lines, as pve-container passes them to liblxc."""
    wanted = wanted_lines(wanted_nodes(nodes, "all", "mount"), majors, "mount")
    merged = merge_config(PVE_CONFIG.read_text(), wanted, majors)
    main = merged.split("\n[", 1)[0]
    lines = [raw for raw in main.splitlines() if raw.startswith("lxc.")]
    return [re.sub(r"^([^:]+):\s*", r"\1 = ", raw) for raw in lines]


def boot(tmp: Path, name: str, rootfs: Path, lines: list[str]) -> Booted:
    container = lxc_host.Container(tmp, name, rootfs, lines)
    started_at = time.monotonic()
    started = container.start()
    state = container.wait_booted() if started.returncode == 0 else "not started"
    return Booted(container, started, state, time.monotonic() - started_at, lines)


def _control_line() -> list[str]:
    control = Path("/dev") / CONTROL
    if not control.exists():
        return []
    return [f"lxc.mount.entry = {control} dev/{CONTROL} none bind,optional,create=file"]


@pytest.fixture(scope="module")
def generated(
    rootfs: Path,
    host_nodes: tuple[dict[str, int], dict[str, dict[str, int]]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Booted]:
    """A container given exactly the generated lines (and the control node)."""
    lines = liblxc_lines(*host_nodes) + _control_line()
    booted = boot(tmp_path_factory.mktemp("lxc"), f"rig-gen-{os.getpid()}", rootfs, lines)
    yield booted
    booted.container.stop()


@pytest.fixture(scope="module")
def legacy_keys(
    rootfs: Path,
    host_nodes: tuple[dict[str, int], dict[str, dict[str, int]]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Booted]:
    """On a cgroup v1 devices controller: the same rules in the pre-v2 key."""
    if lxc_host.cgroup_layout() == "unified":
        pytest.skip("cgroup2-only machine: the generated cgroup2 rules are tested as they are")
    lines = [
        line.replace(ALLOW_KEYS[0], ALLOW_KEYS[1], 1) for line in liblxc_lines(*host_nodes)
    ] + _control_line()
    booted = boot(tmp_path_factory.mktemp("lxc"), f"rig-v1-{os.getpid()}", rootfs, lines)
    yield booted
    booted.container.stop()


def _started(booted: Booted) -> lxc_host.Container:
    assert booted.started.returncode == 0, (
        f"lxc-start refused the config ({booted.started.stderr.strip()}):\n"
        + "\n".join(booted.lines)
        + f"\n{booted.container.log_tail()}"
    )
    assert booted.state in ("running", "degraded"), (
        f"systemd in the container did not finish booting ({booted.state}):"
        f" {booted.container.log_tail()}"
    )
    return booted.container


def _open_errors(container: lxc_host.Container, names: list[str]) -> dict[str, str]:
    """What opening each /dev/NAME for reading says inside the container ("" when it opens)."""
    result = {}
    for name in names:
        out = container.sh(f"exec 3</dev/{name}")
        result[name] = out.stderr.strip().rsplit(": ", 1)[-1] if out.returncode else ""
    return result


def _nvidia(nodes: dict[str, dict[str, int]]) -> list[str]:
    return sorted(n for n in nodes if n.startswith("nvidia") and n != "nvidia-caps")


def test_generated_lines_are_the_mount_style(generated: Booted) -> None:
    keys = {line.split(" = ", 1)[0] for line in generated.lines}
    assert keys <= {ALLOW_KEYS[0], "lxc.mount.entry"}, keys
    assert f"{ALLOW_KEYS[0]} = c {NVIDIA_MAJOR}:* rwm" in generated.lines


def test_liblxc_boots_systemd_with_the_generated_lines(generated: Booted) -> None:
    _started(generated)
    assert generated.seconds < 60


def test_nodes_inside_with_the_hosts_majors(
    generated: Booted, host_nodes: tuple[dict[str, int], dict[str, dict[str, int]]]
) -> None:
    container = _started(generated)
    majors, nodes = host_nodes
    inside = parse_dev_nvidia(container.sh("ls -ld /dev/nvidia* 2>&1").stdout)["devices"]
    check_nodes(inside, majors, "container")  # the verify suite's own check
    assert {n: inside.get(n) for n in _nvidia(nodes)} == {n: nodes[n] for n in _nvidia(nodes)}


def test_cgroup2_rules_on_this_machine(
    generated: Booted, host_nodes: tuple[dict[str, int], dict[str, dict[str, int]]]
) -> None:
    container = _started(generated)
    errors = _open_errors(container, _nvidia(host_nodes[1]))
    if lxc_host.cgroup_layout() == "unified":
        assert all(e in ("", ENXIO) for e in errors.values()), errors
    else:
        # Documented liblxc behaviour, asserted so a change in it is noticed.
        assert "Ignoring cgroup2 limits on legacy cgroup system" in container.log_tail(200)
        assert set(errors.values()) == {EPERM}, errors


def test_allow_rules_let_the_nodes_through(
    legacy_keys: Booted, host_nodes: tuple[dict[str, int], dict[str, dict[str, int]]]
) -> None:
    container = _started(legacy_keys)
    errors = _open_errors(container, _nvidia(host_nodes[1]))
    # ENXIO: the cgroup let the open reach the kernel, which has no driver for the major.
    assert all(e in ("", ENXIO) for e in errors.values()), errors


def test_a_major_no_rule_allows_is_refused(legacy_keys: Booted) -> None:
    if not (Path("/dev") / CONTROL).exists():
        pytest.skip("real NVIDIA nodes here: no control node was made")
    container = _started(legacy_keys)
    assert _open_errors(container, [CONTROL]) == {CONTROL: EPERM}


# --- the container's side through deploy.py: topology native, lxc_guest=True ----------------
# The Docker testbed host (conftest's `container`) plays the LXC guest: pyinfra cannot reach a
# liblxc container here (no network in it, and pyinfra has no lxc-attach connector).


def guest_data(archive: Path, **overrides: object) -> dict[str, object]:
    data = standin_data(archive, topology="native", lxc_guest=True, ollama_model_variants={})
    data.update(overrides)
    return data


def test_guest_without_host_driver_stops_before_any_change(
    container: str, archives: dict[str, Path]
) -> None:
    before = testbed.tree(container)
    run = run_deploy(container, guest_data(archives["0.32.7"], gpu="auto"))
    assert run.returncode != 0
    assert "LXC guest without NVIDIA libraries" in run.output  # preflight let it through
    assert "/proc/driver/nvidia/version is not readable in this" in run.output, run.output[-3000:]
    assert "Traceback" not in run.output
    assert testbed.tree(container) == before


def test_guest_converges_then_changes_nothing(container: str, archives: dict[str, Path]) -> None:
    first = run_deploy(container, guest_data(archives["0.32.7"]))
    assert first.returncode == 0, first.output[-5000:]
    assert any(op.endswith(f"Write {LXC_MANIFEST}") for op in first.changed_operations())
    second = run_deploy(container, guest_data(archives["0.32.7"]))
    assert second.returncode == 0, second.output[-5000:]
    assert second.totals["success"] == 0, second.changed_operations()


def test_verify_suite_on_the_guest(container: str) -> None:
    result = run_verify(container)
    assert result.returncode == 0, result.stdout[-5000:]
    assert "gpu='none' in this container: no GPU device nodes are expected" in result.stdout


# --- the host's side through deploy.py: topology lxc on a simulated Proxmox node -------------
# lxc_host.create_pve_node: a Docker testbed host made to look like a Proxmox node with a GPU,
# by TEST FIXTURES only. What runs for real: preflight, the facts, the unit, the merge and its
# write, the state file, re-runs, and the verify suite.


@pytest.fixture(scope="module")
def pve_node(test_image: str) -> Iterator[str]:
    name = f"ollama-rig-it-lxc-pve-{os.getpid()}"
    try:
        yield lxc_host.create_pve_node(name)
    finally:
        testbed.destroy(name)


def pve_data(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "topology": "lxc",
        "gpu": "nvidia",
        "lxc_vmid": VMID,
        "ollama_models": ["qwen2.5-coder:7b"],
    }
    data.update(overrides)
    return data


def _config(node: str) -> str:
    return sh(node, f"cat /etc/pve/lxc/{VMID}.conf")


def test_missing_container_stops_before_any_change(pve_node: str) -> None:
    before = testbed.tree(pve_node)
    run = run_deploy(pve_node, pve_data(lxc_vmid=999))
    assert run.returncode != 0
    assert "container 999 does not exist on this Proxmox node" in run.output, run.output[-3000:]
    assert "Traceback" not in run.output
    assert testbed.tree(pve_node) == before


def test_host_converges_keeping_every_line(pve_node: str) -> None:
    original = _config(pve_node).splitlines()
    run = run_deploy(pve_node, pve_data())
    assert run.returncode == 0, run.output[-5000:]
    merged = _config(pve_node).splitlines()
    added = [line for line in merged if line not in original]
    assert [line for line in merged if line in original] == original  # all kept, in order
    assert f"lxc.cgroup2.devices.allow: c {UVM_MAJOR}:* rwm" in added
    assert "lxc.mount.entry: /dev/nvidia-uvm dev/nvidia-uvm none bind,optional,create=file" in added
    assert sh(pve_node, "cat /etc/ollama-rig-test/pct.log") == f"reboot {VMID}\n"
    assert sh(pve_node, "systemctl is-enabled nvidia-uvm-init.service").strip() == "enabled"


def test_host_second_run_changes_nothing(pve_node: str) -> None:
    before = _config(pve_node)
    run = run_deploy(pve_node, pve_data())
    assert run.returncode == 0, run.output[-5000:]
    assert run.totals["success"] == 0, run.changed_operations()
    assert _config(pve_node) == before
    assert sh(pve_node, "cat /etc/ollama-rig-test/pct.log") == f"reboot {VMID}\n"


def run_verify_lxc(node: str) -> subprocess.CompletedProcess[str]:
    return run_verify(node, suite="tests/verify/test_lxc.py")


def test_verify_suite_on_the_host(pve_node: str) -> None:
    result = run_verify_lxc(pve_node)
    assert result.returncode == 0, result.stdout[-5000:]
    for passed in ("test_host_device_nodes", "test_proxmox_config_has_the_gpu_lines"):
        assert f"PASSED tests/verify/test_lxc.py::{passed}" in result.stdout, result.stdout


def test_moved_uvm_major_fails_verify_then_the_deploy_follows_it(pve_node: str) -> None:
    set_uvm_major(pve_node, UVM_MAJOR + 1)
    failed = run_verify_lxc(pve_node)
    assert failed.returncode != 0
    assert f"lxc.cgroup2.devices.allow: c {UVM_MAJOR + 1}:* rwm" in failed.stdout
    run = run_deploy(pve_node, pve_data())
    assert run.returncode == 0, run.output[-5000:]
    config = _config(pve_node)
    assert f"c {UVM_MAJOR + 1}:* rwm" in config and f"c {UVM_MAJOR}:* rwm" not in config
    assert run_verify_lxc(pve_node).returncode == 0
