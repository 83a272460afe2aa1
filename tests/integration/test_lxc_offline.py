"""Tier 2, lxc topology, the container's side offline: NVIDIA's .run from the pyinfra machine.

deploy.py (topology native, lxc_guest=True) against a Docker testbed host playing the LXC
container. Testbed hosts have no network (`--network none`), as an offline container: the
download from download.nvidia.com cannot work there, and lxc_driver_run_path copies a .run
from this machine instead, its sha256 checked before and after the copy.

TEST FIXTURES, for this machine has no GPU:
- /proc/driver/nvidia/version: a container reads its host's file there; here a tmpfs is
  mounted over /proc/driver with the line a 550.54.14 kernel module writes;
- the .run: a shell script named as NVIDIA names the installer, that leaves what the real one
  leaves for the NvidiaLibraryVersions fact (libnvidia-ml.so.<version>) and logs its arguments.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from roles.lxc import LXC_MANIFEST
from roles.lxc.driver import CACHE_DIR
from tests.integration import testbed
from tests.integration.deployer import DeployRun, run_deploy, sh, standin_data

VERSION = "550.54.14"
RUN_NAME = f"NVIDIA-Linux-x86_64-{VERSION}.run"
LIBRARY = f"/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.{VERSION}"
RUN_LOG = "/var/log/rig-run-fixture.log"
# What /proc/driver/nvidia/version says with the proprietary 550.54.14 module loaded.
MODULE_LINE = (
    f"NVRM version: NVIDIA UNIX x86_64 Kernel Module  {VERSION}  Thu Feb 22 01:44:30 UTC 2024"
)
RUN_FIXTURE = f"""#!/bin/sh
# TEST FIXTURE standing in for {RUN_NAME} (no GPU here): what the installer leaves with
# --no-kernel-module for ollama-rig to see (libnvidia-ml.so.<version>); its arguments logged.
echo "$*" >> {RUN_LOG}
[ "$*" = "--no-kernel-module --silent" ] || exit 2
mkdir -p {os.path.dirname(LIBRARY)}
: > {LIBRARY}
"""


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("nvidia") / RUN_NAME
    path.write_text(RUN_FIXTURE)
    return path


@pytest.fixture(scope="module")
def guest(test_image: str) -> Iterator[str]:
    """A testbed host that sees the host driver's version, as an LXC container does."""
    name = f"ollama-rig-it-lxc-offline-{os.getpid()}"
    node = testbed.create(name)
    try:
        sh(
            node,
            "mount -t tmpfs -o size=1m rig-driver /proc/driver && mkdir /proc/driver/nvidia"
            f" && echo '{MODULE_LINE}' > /proc/driver/nvidia/version",
        )
        yield node
    finally:
        testbed.destroy(name)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def guest_data(archive: Path, **overrides: object) -> dict[str, object]:
    data = standin_data(
        archive, topology="native", lxc_guest=True, gpu="nvidia", ollama_model_variants={}
    )
    data.update(overrides)
    return data


def _refused(run: DeployRun, line: str) -> None:
    assert run.returncode != 0
    assert line in run.output, run.output[-3000:]
    assert "Traceback" not in run.output


def test_missing_local_run_stops_before_any_change(
    guest: str, archives: dict[str, Path], tmp_path: Path
) -> None:
    gone = tmp_path / RUN_NAME
    before = testbed.tree(guest)
    run = run_deploy(
        guest,
        guest_data(
            archives["0.32.7"], lxc_driver_run_path=str(gone), lxc_driver_run_sha256="0" * 64
        ),
    )
    _refused(run, f"lxc_driver_run_path='{gone}': no such file on the machine running pyinfra")
    assert testbed.tree(guest) == before


def test_local_run_of_another_checksum_stops_before_any_change(
    guest: str, archives: dict[str, Path], local_run: Path
) -> None:
    before = testbed.tree(guest)
    wrong = "f" * 64
    run = run_deploy(
        guest,
        guest_data(
            archives["0.32.7"], lxc_driver_run_path=str(local_run), lxc_driver_run_sha256=wrong
        ),
    )
    _refused(run, f"has sha256 {sha256(local_run)}, expected {wrong} (lxc_driver_run_sha256)")
    assert testbed.tree(guest) == before


def test_without_the_local_run_the_offline_download_fails_naming_it(
    guest: str, archives: dict[str, Path], local_run: Path
) -> None:
    run = run_deploy(guest, guest_data(archives["0.32.7"], lxc_driver_run_sha256=sha256(local_run)))
    assert run.returncode != 0
    assert f"cannot download https://download.nvidia.com/XFree86/Linux-x86_64/{VERSION}/" in (
        run.output
    ), run.output[-3000:]
    assert "or lxc_driver_run_path to a downloaded one on the machine running pyinfra" in (
        run.output
    )
    assert sh(guest, f"ls {CACHE_DIR}") == ""  # nothing half-downloaded kept


def test_local_run_installs_the_libraries_offline(
    guest: str, archives: dict[str, Path], local_run: Path
) -> None:
    data = guest_data(
        archives["0.32.7"],
        lxc_driver_run_path=str(local_run),
        lxc_driver_run_sha256=sha256(local_run),
    )
    run = run_deploy(guest, data)
    assert run.returncode == 0, run.output[-5000:]
    assert "NVIDIA user-space libraries (host driver's version)" in " ".join(
        run.changed_operations()
    )
    assert sh(guest, f"cat {RUN_LOG}") == "--no-kernel-module --silent\n"
    assert sh(guest, f"ls {LIBRARY}").strip() == LIBRARY
    # The copy was checked and renamed (no .part left); the native role's unpack then clears
    # the cache of everything but Ollama's archive (roles/native/operations.py unpack_release).
    assert sh(guest, f"ls {CACHE_DIR}/{RUN_NAME}.part 2>/dev/null || true") == ""
    assert '"side": "guest"' in sh(guest, f"cat {LXC_MANIFEST}")


def test_second_run_changes_nothing(guest: str, archives: dict[str, Path], local_run: Path) -> None:
    data = guest_data(
        archives["0.32.7"],
        lxc_driver_run_path=str(local_run),
        lxc_driver_run_sha256=sha256(local_run),
    )
    run = run_deploy(guest, data)
    assert run.returncode == 0, run.output[-5000:]
    assert run.totals["success"] == 0, run.changed_operations()
    assert sh(guest, f"cat {RUN_LOG}") == "--no-kernel-module --silent\n"  # not run again
