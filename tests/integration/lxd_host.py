"""Real LXD on this machine for the lxc topology's LXD/Incus path: the test image and instances.

scripts/lxd-engine.sh installs and starts LXD (`lxd --group root`, a `dir` pool, no network)
and runs `python -m tests.integration.lxd_host image`, which imports the systemd bookworm rootfs
that tests/integration/lxc_host.py builds with mmdebstrap, with the metadata.yaml LXD wants
beside it (LXD docs, "Image format": a metadata tarball and a rootfs tarball, split format).

No GPU here: an instance with a `gpu` device and nvidia.runtime cannot start ("Failed to detect
requested GPU device"), so the instances stay stopped; what is tested is what LXD stores.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.integration import lxc_host

ALIAS = "ollama-rig-test-bookworm"
ROOT = Path(__file__).resolve().parents[2]
# Where LXD from a Debian package listens; pylxd looks there too (LXD_DIR overrides it).
SOCKET = os.path.join(os.environ.get("LXD_DIR", "/var/lib/lxd"), "unix.socket")


def lxc(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The `lxc` client (LXD's, not liblxc's lxc-* tools)."""
    return subprocess.run(
        ["lxc", *args], check=check, capture_output=True, text=True, timeout=timeout
    )


def lxd_available() -> str | None:
    """None when the LXD daemon answers here, else why not (and what to run)."""
    if not shutil.which("lxc") or not shutil.which("lxd"):
        return "LXD is not installed: run scripts/lxd-engine.sh (apt-get install lxd)"
    if os.geteuid() != 0:
        return "not root: the LXD socket is root's (lxd --group root)"
    if not os.path.exists(SOCKET):
        return f"no LXD socket at {SOCKET}: run scripts/lxd-engine.sh (starts lxd)"
    answer = lxc("query", "/1.0", check=False, timeout=30)
    if answer.returncode != 0:
        return f"LXD does not answer ({answer.stderr.strip()}): run scripts/lxd-engine.sh"
    if lxc("image", "info", ALIAS, check=False).returncode != 0:
        return f"no LXD image {ALIAS}: run scripts/lxd-engine.sh (imports it)"
    return None


def import_image() -> str:
    """Import the cached mmdebstrap rootfs as ALIAS unless it is there; returns what it did."""
    if lxc("image", "info", ALIAS, check=False).returncode == 0:
        return f"image {ALIAS} already imported"
    started = time.monotonic()
    rootfs = lxc_host.build_rootfs(ROOT / "build" / "lxc-rootfs")
    metadata = {
        "architecture": os.uname().machine,
        "creation_date": int(time.time()),
        "properties": {"description": "ollama-rig test bookworm", "os": "debian"},
    }
    with tempfile.TemporaryDirectory() as tmp:
        meta_yaml = Path(tmp) / "metadata.yaml"
        meta_yaml.write_text(json.dumps(metadata))  # JSON is YAML: no PyYAML needed here
        with tarfile.open(Path(tmp) / "meta.tar", "w") as meta:
            meta.add(meta_yaml, arcname="metadata.yaml")
        subprocess.run(
            ["tar", "-C", str(rootfs), "-czf", f"{tmp}/rootfs.tar.gz", "."],
            check=True,
            capture_output=True,
        )
        lxc("image", "import", f"{tmp}/meta.tar", f"{tmp}/rootfs.tar.gz", "--alias", ALIAS)
    return f"image {ALIAS} imported in {time.monotonic() - started:.1f} s"


def config_show(name: str) -> dict[str, Any]:
    """`lxc config show NAME`, parsed: LXD's own view of the instance (not pylxd's)."""
    import yaml  # the test virtualenv's; `python -m ... image` runs without it

    shown: dict[str, Any] = yaml.safe_load(lxc("config", "show", name).stdout)
    return shown


@contextlib.contextmanager
def instance(
    name: str, devices: dict[str, dict[str, str]], config: dict[str, str]
) -> Iterator[str]:
    """A stopped instance from the test image with these devices and config; deleted after."""
    lxc("init", ALIAS, name)
    try:
        for device, options in devices.items():
            pairs = [f"{k}={v}" for k, v in options.items() if k != "type"]
            lxc("config", "device", "add", name, device, options["type"], *pairs)
        for key, value in config.items():
            lxc("config", "set", name, key, value)
        yield name
    finally:
        lxc("delete", "--force", name, check=False)


if __name__ == "__main__":
    if sys.argv[1:] != ["image"]:
        sys.exit("usage: python -m tests.integration.lxd_host image")
    print(f"lxd_host: {import_image()}")
