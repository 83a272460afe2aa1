"""Tier 2, lxc topology on LXD: deploy.py's LXD/Incus path against a real LXD on this machine.

LXD (Debian 12's 5.0.2) runs here, started by scripts/lxd-engine.sh: a `dir` pool, no network,
the mmdebstrap'd bookworm rootfs imported as an image (tests/integration/lxd_host.py). An
instance is made from it with an unrelated disk device and config key, and deploy.py with
topology "lxc", lxc_platform "lxd" sets its `gpu` device and nvidia.runtime through pylxd.

Two stand-ins, both TEST FIXTURES, for this machine has no GPU:
- pyinfra's host is a Docker testbed host made to look like an LXD host with a loaded driver
  (an `nvidia-smi` script, NVIDIA's major 195 in a /proc/devices bind-mounted over the real
  one) and an `nvidia-modprobe` script that does what the real one does for the
  nvidia-uvm-init unit: `-c=N` makes /dev/nvidiaN and /dev/nvidiactl, `-u` "loads" nvidia-uvm
  (its major appears in /proc/devices) and makes /dev/nvidia-uvm{,-tools}. Preflight on this
  machine itself would refuse it (no systemd as PID 1, no GPU). pylxd runs in the pyinfra
  process either way and reaches this machine's real LXD through lxc_lxd_endpoint (its unix
  socket), as it would reach a remote LXD by https:// URL;
- LXD accepts nvidia.runtime only with nvidia-container-cli on its PATH: lxd-engine.sh puts a
  stand-in there that fails if run. With the `gpu` device and nvidia.runtime the instance
  cannot start here ("Failed to detect requested GPU device"): it stays stopped, and what is
  tested is what LXD stores (`lxc config show`), not a GPU inside it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from roles.lxc import LXC_MANIFEST, LXD_STARTERS, UVM_UNIT
from tests.integration import lxd_host, testbed
from tests.integration.deployer import INVENTORY, ROOT, DeployRun, run_deploy, unavailable
from tests.integration.deployer import sh as node_sh
from tests.verify.test_lxc import test_lxd_instance_has_the_gpu as verify_lxd_instance

NVIDIA_SMI = (
    "#!/bin/sh\n# TEST FIXTURE\n"
    "echo '0, NVIDIA GeForce RTX 3070, 8192, 410, 550.54.14, 00000000:01:00.0, GPU-0a1b2c3d'\n"
)
# nvidia-smi's words when the kernel module is not loaded.
NO_DRIVER = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure"
    " that the latest NVIDIA driver is installed and running."
)
UVM_MAJOR = 508  # a dynamic major (FACTS.md 7); the deploy reads it, never assumes it
# /proc/devices with the driver loaded, nvidia-uvm not yet: the real file's lines plus NVIDIA's.
FAKE_PROC_DEVICES = (
    "umount /proc/devices 2>/dev/null; grep -v -e nvidia -e '^Character devices:' /proc/devices"
    " > /run/devices.base; { echo 'Character devices:'; printf '195 nvidia\\n195 nvidiactl\\n';"
    " cat /run/devices.base; } > /run/devices.fake && mount --bind /run/devices.fake /proc/devices"
)
NVIDIA_MODPROBE = f"""#!/bin/sh
# TEST FIXTURE standing in for nvidia-modprobe (no GPU here): the nodes it makes, and for -u
# the nvidia-uvm major that loading the module registers in /proc/devices.
echo "$*" >> /run/nvidia-modprobe.log
for arg; do
  case "$arg" in
    -u) uvm=1 ;;
    -c=*) n="${{arg#-c=}}"; [ -e "/dev/nvidia$n" ] || mknod "/dev/nvidia$n" c 195 "$n"
          [ -e /dev/nvidiactl ] || mknod /dev/nvidiactl c 195 255 ;;
  esac
done
[ -n "$uvm" ] || exit 0
if ! grep -q ' nvidia-uvm$' /proc/devices; then
  sed '/^Character devices:/a {UVM_MAJOR} nvidia-uvm' /proc/devices > /run/devices.uvm
  umount /proc/devices; mount --bind /run/devices.uvm /proc/devices
fi
[ -e /dev/nvidia-uvm ] || mknod /dev/nvidia-uvm c {UVM_MAJOR} 0
[ -e /dev/nvidia-uvm-tools ] || mknod /dev/nvidia-uvm-tools c {UVM_MAJOR} 1
"""
# What the instance has before the deploy, which the deploy must keep.
DATA_DEVICE = {"data": {"type": "disk", "source": "/srv", "path": "/mnt/data"}}
USER_KEY = {"user.rig-note": "kept by ollama-rig"}
GPU_OP = "GPU into LXD/Incus instance"


@pytest.fixture(scope="module")
def lxd() -> None:
    reason = lxd_host.lxd_available()
    if reason:
        unavailable(f"lxd integration: {reason}")


@pytest.fixture(scope="module")
def name(lxd: None) -> Iterator[str]:
    with lxd_host.instance(f"rig-lxd-{os.getpid()}", DATA_DEVICE, USER_KEY) as made:
        yield made


def put_script(node: str, path: str, text: str) -> None:
    """An executable file in the testbed host."""
    subprocess.run(
        ["docker", "exec", "-i", node, "sh", "-c", f"cat > {path} && chmod 0755 {path}"],
        input=text,
        text=True,
        check=True,
    )


@pytest.fixture(scope="module")
def lxd_node(lxd: None, test_image: str) -> Iterator[str]:
    node_name = f"ollama-rig-it-lxd-{os.getpid()}"
    node = testbed.create(node_name)
    try:
        put_script(node, "/usr/local/bin/nvidia-smi", NVIDIA_SMI)
        put_script(node, "/usr/bin/nvidia-modprobe", NVIDIA_MODPROBE)
        node_sh(node, FAKE_PROC_DEVICES)
        yield node
    finally:
        testbed.destroy(node_name)


def lxd_data(instance: str, **overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "topology": "lxc",
        "gpu": "nvidia",
        "lxc_platform": "lxd",
        "lxc_instance": instance,
        "lxc_lxd_endpoint": lxd_host.SOCKET,
        "ollama_models": ["qwen2.5-coder:7b"],
    }
    data.update(overrides)
    return data


def deploy(node: str, data: dict[str, object], *extra: str) -> DeployRun:
    run = run_deploy(node, data, *extra)
    assert "Traceback" not in run.output, run.output[-3000:]
    return run


def _refused(run: DeployRun, line: str) -> None:
    assert run.returncode != 0
    assert line in run.output, run.output[-3000:]


def test_unrelated_host_without_endpoint_stops_before_any_change(lxd_node: str, name: str) -> None:
    before, config = testbed.tree(lxd_node), lxd_host.config_show(name)
    run = deploy(lxd_node, lxd_data(name, lxc_lxd_endpoint=None))
    _refused(run, "run this host as @local on the LXD host, or set lxc_lxd_endpoint")
    assert testbed.tree(lxd_node) == before and lxd_host.config_show(name) == config


def test_missing_instance_stops_before_any_change(lxd_node: str, name: str) -> None:
    before, config = testbed.tree(lxd_node), lxd_host.config_show(name)
    run = deploy(lxd_node, lxd_data("rig-absent"))
    _refused(run, "LXD/Incus instance 'rig-absent' does not exist at")
    assert "set lxc_instance to one of [" in run.output and name in run.output
    assert testbed.tree(lxd_node) == before and lxd_host.config_show(name) == config


def test_unreachable_lxd_stops_before_any_change(lxd_node: str, tmp_path: Path) -> None:
    dead = tmp_path / "unix.socket"  # a socket nobody listens on: LXD stopped
    with socket.socket(socket.AF_UNIX) as bound:
        bound.bind(str(dead))
    before = testbed.tree(lxd_node)
    run = deploy(lxd_node, lxd_data("ollama", lxc_lxd_endpoint=str(dead)))
    _refused(run, f"LXD/Incus is not reachable at {dead} (ClientConnectionFailed:")
    assert "start it (`lxd waitready`)" in run.output
    assert testbed.tree(lxd_node) == before


def test_host_without_nvidia_modprobe_stops_before_any_change(lxd_node: str, name: str) -> None:
    node_sh(lxd_node, "mv /usr/bin/nvidia-modprobe /run/")
    try:
        before, config = testbed.tree(lxd_node), lxd_host.config_show(name)
        run = deploy(lxd_node, lxd_data(name))
        _refused(run, "/usr/bin/nvidia-modprobe is missing on this host; the nvidia-uvm-init unit")
        assert testbed.tree(lxd_node) == before and lxd_host.config_show(name) == config
    finally:
        node_sh(lxd_node, "mv /run/nvidia-modprobe /usr/bin/")


def test_host_without_a_loaded_driver_stops_before_any_change(lxd_node: str, name: str) -> None:
    # nvidia-smi as it answers with the driver not loaded (its exit status 9): preflight's
    # check, the same one a Proxmox node gets.
    smi = "/usr/local/bin/nvidia-smi"
    node_sh(lxd_node, f"mv {smi} /run/nvidia-smi.ok")
    put_script(lxd_node, smi, f'#!/bin/sh\n# TEST FIXTURE\necho "{NO_DRIVER}"\nexit 9\n')
    try:
        before, config = testbed.tree(lxd_node), lxd_host.config_show(name)
        run = deploy(lxd_node, lxd_data(name))
        _refused(run, "but the NVIDIA kernel module is not loaded: install the driver")
        assert testbed.tree(lxd_node) == before and lxd_host.config_show(name) == config
    finally:
        node_sh(lxd_node, f"mv -f /run/nvidia-smi.ok {smi}")


def test_dry_run_changes_nothing(lxd_node: str, name: str) -> None:
    before, config = testbed.tree(lxd_node), lxd_host.config_show(name)
    run = deploy(lxd_node, lxd_data(name), "--dry")
    assert run.returncode == 0, run.output[-3000:]
    assert testbed.tree(lxd_node) == before and lxd_host.config_show(name) == config


def dry_run_without_yes(node: str, data: dict[str, object]) -> subprocess.CompletedProcess[str]:
    """`pyinfra --dry` without -y: pyinfra then runs each operation's checks while preparing
    (its State(check_for_changes=not yes)), as a user's first look at a run does."""
    env = {**os.environ, "RIG_TEST_HOST": node, "RIG_TEST_DATA": json.dumps(data)}
    return subprocess.run(
        [sys.executable, "-m", "pyinfra", "--dry", INVENTORY, "deploy.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_dry_run_without_yes_diffs_before_the_nodes_exist(lxd_node: str, name: str) -> None:
    # Without -y pyinfra runs every operation's checks when preparing, before the unit made the
    # nodes: the node check must not stop a run that the unit would make work.
    assert "No such file" in node_sh(lxd_node, "ls /dev/nvidia-uvm 2>&1 || true")
    before, config = testbed.tree(lxd_node), lxd_host.config_show(name)
    proc = dry_run_without_yes(lxd_node, lxd_data(name))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{GPU_OP} {name}" in proc.stderr and "Traceback" not in proc.stderr
    assert testbed.tree(lxd_node) == before and lxd_host.config_show(name) == config


def _verify(manifest: dict[str, Any]) -> None:
    """tests/verify/test_lxc.py's LXD check, against this machine's LXD (`lxc query`)."""
    import testinfra

    verify_lxd_instance(testinfra.get_host("local://"), manifest)


def test_first_run_sets_the_gpu_and_keeps_the_rest(lxd_node: str, name: str) -> None:
    manifest = {"side": "host", "platform": "lxd", "instance": name, "gpus": "all"}
    with pytest.raises(AssertionError, match=f"instance {name} lacks the GPU devices"):
        _verify(manifest)  # the verify check fails before the deploy
    assert node_sh(lxd_node, "ls /dev/nvidia-uvm 2>&1 || true").endswith(
        "No such file or directory\n"
    )
    before = lxd_host.config_show(name)
    run = deploy(lxd_node, lxd_data(name))
    assert run.returncode == 0, run.output[-5000:]
    assert any(f"{GPU_OP} {name}" in op for op in run.changed_operations())
    # The boot unit ran before the GPU was given: it made the nodes LXD passes at start.
    assert node_sh(lxd_node, f"systemctl is-enabled {UVM_UNIT}").strip() == "enabled"
    unit_text = node_sh(lxd_node, f"cat /etc/systemd/system/{UVM_UNIT}")
    assert f"Before={' '.join(LXD_STARTERS)}\n" in unit_text
    assert node_sh(lxd_node, "cat /run/nvidia-modprobe.log") == "-u -c=0\n"
    assert node_sh(lxd_node, "stat -c '%t %T' /dev/nvidia-uvm").split() == [
        format(UVM_MAJOR, "x"),
        "0",
    ]
    assert "GPU set (stopped, applies at its next start)" in run.output
    after = lxd_host.config_show(name)
    assert after["devices"] == {**DATA_DEVICE, "gpu": {"type": "gpu", "gputype": "physical"}}
    assert after["config"] == {**before["config"], "nvidia.runtime": "true"}
    assert lxd_host.lxc("info", name).stdout.count("Status: STOPPED") == 1  # not started
    _verify(manifest)
    written = testbed.exec_in(lxd_node, "cat", LXC_MANIFEST).stdout
    assert f'"instance": "{name}"' in written and '"platform": "lxd"' in written


def test_pylxd_sees_what_lxc_config_show_shows(name: str) -> None:
    from pylxd import Client

    found = Client(endpoint=lxd_host.SOCKET).instances.get(name)
    shown = lxd_host.config_show(name)
    assert (found.devices, found.config) == (shown["devices"], shown["config"])


def test_second_run_changes_nothing(lxd_node: str, name: str) -> None:
    before = lxd_host.config_show(name)
    run = deploy(lxd_node, lxd_data(name))
    assert run.returncode == 0, run.output[-5000:]
    assert run.totals["success"] == 0, run.changed_operations()
    assert run.totals["no_change"] > 0
    assert lxd_host.config_show(name) == before


def test_missing_uvm_node_stops_before_the_instance_changes(lxd_node: str, name: str) -> None:
    # /dev/nvidia-uvm gone after the unit ran (it only runs again at boot or on change).
    node_sh(lxd_node, "rm -f /dev/nvidia-uvm /dev/nvidia-uvm-tools")
    config = lxd_host.config_show(name)
    run = deploy(lxd_node, lxd_data(name, lxc_gpus=["0000:01:00.0"]))
    _refused(run, f"LXD/Incus instance {name}: /dev/nvidia-uvm does not exist on the host: run")
    assert lxd_host.config_show(name) == config
    node_sh(lxd_node, f"systemctl restart {UVM_UNIT}")  # what the next boot does
    assert node_sh(lxd_node, "ls /dev/nvidia-uvm").strip() == "/dev/nvidia-uvm"


def test_chosen_gpus_replace_the_gpu_device_only(lxd_node: str, name: str) -> None:
    before = lxd_host.config_show(name)
    run = deploy(lxd_node, lxd_data(name, lxc_gpus=["0000:01:00.0"]))
    assert run.returncode == 0, run.output[-5000:]
    assert sum(GPU_OP in op for op in run.changed_operations()) == 1
    after = lxd_host.config_show(name)
    gpu0 = {"type": "gpu", "gputype": "physical", "pci": "0000:01:00.0"}
    assert after["devices"] == {**DATA_DEVICE, "gpu0": gpu0}
    assert after["config"] == before["config"]
