"""Tier 2, lxc topology on LXD: deploy.py's LXD/Incus path against a real LXD on this machine.

LXD (Debian 12's 5.0.2) runs here, started by scripts/lxd-engine.sh: a `dir` pool, no network,
the mmdebstrap'd bookworm rootfs imported as an image (tests/integration/lxd_host.py). An
instance is made from it with an unrelated disk device and config key, and deploy.py with
topology "lxc", lxc_platform "lxd" sets its `gpu` device and nvidia.runtime through pylxd.

Two stand-ins, both TEST FIXTURES, for this machine has no GPU:
- pyinfra's host is a Docker testbed host made to look like an LXD host with a GPU (an
  `nvidia-smi` script): preflight on this machine itself would refuse it (no systemd as PID 1,
  no GPU). pylxd runs in the pyinfra process either way and reaches this machine's real LXD
  through lxc_lxd_endpoint (its unix socket), as it would reach a remote LXD by https:// URL;
- LXD accepts nvidia.runtime only with nvidia-container-cli on its PATH: lxd-engine.sh puts a
  stand-in there that fails if run. With the `gpu` device and nvidia.runtime the instance
  cannot start here ("Failed to detect requested GPU device"): it stays stopped, and what is
  tested is what LXD stores (`lxc config show`), not a GPU inside it.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from roles.lxc import LXC_MANIFEST
from tests.integration import lxd_host, testbed
from tests.integration.deployer import DeployRun, run_deploy
from tests.verify.test_lxc import test_lxd_instance_has_the_gpu as verify_lxd_instance

REQUIRED = os.environ.get("RIG_REQUIRE_INTEGRATION") == "1"
NVIDIA_SMI = (
    "#!/bin/sh\n# TEST FIXTURE\n"
    "echo '0, NVIDIA GeForce RTX 3070, 8192, 410, 550.54.14, 00000000:01:00.0, GPU-0a1b2c3d'\n"
)
# What the instance has before the deploy, which the deploy must keep.
DATA_DEVICE = {"data": {"type": "disk", "source": "/srv", "path": "/mnt/data"}}
USER_KEY = {"user.rig-note": "kept by ollama-rig"}
GPU_OP = "GPU into LXD/Incus instance"


@pytest.fixture(scope="module")
def lxd() -> None:
    reason = lxd_host.lxd_available()
    if reason:
        if REQUIRED:
            pytest.fail(f"lxd integration: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def name(lxd: None) -> Iterator[str]:
    with lxd_host.instance(f"rig-lxd-{os.getpid()}", DATA_DEVICE, USER_KEY) as made:
        yield made


@pytest.fixture(scope="module")
def lxd_node(lxd: None, test_image: str) -> Iterator[str]:
    node_name = f"ollama-rig-it-lxd-{os.getpid()}"
    node = testbed.create(node_name)
    try:
        subprocess.run(
            ["docker", "exec", "-i", node, "sh", "-c", "cat > /usr/local/bin/nvidia-smi"],
            input=NVIDIA_SMI,
            text=True,
            check=True,
        )
        testbed.exec_in(node, "chmod", "0755", "/usr/local/bin/nvidia-smi")
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


def test_dry_run_changes_nothing(lxd_node: str, name: str) -> None:
    before, config = testbed.tree(lxd_node), lxd_host.config_show(name)
    run = deploy(lxd_node, lxd_data(name), "--dry")
    assert run.returncode == 0, run.output[-3000:]
    assert testbed.tree(lxd_node) == before and lxd_host.config_show(name) == config


def _verify(manifest: dict[str, Any]) -> None:
    """tests/verify/test_lxc.py's LXD check, against this machine's LXD (`lxc query`)."""
    import testinfra

    verify_lxd_instance(testinfra.get_host("local://"), manifest)


def test_first_run_sets_the_gpu_and_keeps_the_rest(lxd_node: str, name: str) -> None:
    manifest = {"side": "host", "platform": "lxd", "instance": name, "gpus": "all"}
    with pytest.raises(AssertionError, match=f"instance {name} lacks the GPU devices"):
        _verify(manifest)  # the verify check fails before the deploy
    before = lxd_host.config_show(name)
    run = deploy(lxd_node, lxd_data(name))
    assert run.returncode == 0, run.output[-5000:]
    assert any(f"{GPU_OP} {name}" in op for op in run.changed_operations())
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


def test_chosen_gpus_replace_the_gpu_device_only(lxd_node: str, name: str) -> None:
    before = lxd_host.config_show(name)
    run = deploy(lxd_node, lxd_data(name, lxc_gpus=["0000:01:00.0"]))
    assert run.returncode == 0, run.output[-5000:]
    assert sum(GPU_OP in op for op in run.changed_operations()) == 1
    after = lxd_host.config_show(name)
    gpu0 = {"type": "gpu", "gputype": "physical", "pci": "0000:01:00.0"}
    assert after["devices"] == {**DATA_DEVICE, "gpu0": gpu0}
    assert after["config"] == before["config"]
