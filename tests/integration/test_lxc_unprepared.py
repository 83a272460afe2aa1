"""Tier 2, lxc topology on a simulated Proxmox node before anything made its GPU nodes.

The nvidia-uvm-init unit makes /dev/nvidia-uvm during the run, and pyinfra without -y runs
every operation's checks while preparing, before that unit ran: the node check of
proxmox_container_devices must then show a change, not stop the run (the node is Docker's
testbed host with the test fixtures of tests/integration/lxc_host.py create_pve_node, its
nvidia-uvm module "not loaded": no /dev/nvidia-uvm and no nvidia-uvm in /proc/devices).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.integration import lxc_host, testbed
from tests.integration.deployer import sh
from tests.integration.test_lxd import dry_run_without_yes

DEVICES_WITHOUT_UVM = (
    "sed '/ nvidia-uvm$/d' /proc/devices > /run/devices.nouvm && umount /proc/devices"
    " && mount --bind /run/devices.nouvm /proc/devices && rm -f /dev/nvidia-uvm*"
)


@pytest.fixture(scope="module")
def bare_pve_node(test_image: str) -> Iterator[str]:
    name = f"ollama-rig-it-lxc-unprepared-{os.getpid()}"
    node = lxc_host.create_pve_node(name)
    try:
        sh(node, DEVICES_WITHOUT_UVM)
        yield node
    finally:
        testbed.destroy(name)


def test_dry_run_without_yes_before_the_unit_made_the_nodes(bare_pve_node: str) -> None:
    assert "nvidia-uvm" not in sh(bare_pve_node, "cat /proc/devices; ls /dev")
    before = testbed.tree(bare_pve_node)
    data = {"topology": "lxc", "gpu": "nvidia", "lxc_vmid": lxc_host.VMID}
    proc = dry_run_without_yes(bare_pve_node, {**data, "ollama_models": ["qwen2.5-coder:7b"]})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"GPU into container {lxc_host.VMID}" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert testbed.tree(bare_pve_node) == before
