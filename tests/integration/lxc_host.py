"""Real liblxc on this machine for the lxc topology's integration tests: a systemd Debian rootfs
built offline with mmdebstrap, NVIDIA-like device nodes made with mknod, and containers run with
lxc-start / lxc-attach in a private lxcpath.

No GPU and no NVIDIA driver here: the nodes carry NVIDIA's majors (195, and a free dynamic
major standing in for nvidia-uvm's), so opening one fails with ENXIO ("No such device or
address") when the container's device cgroup lets it through and EPERM when it does not.

Also the simulated Proxmox node of test_lxc.py's pve_node (a testbed container with TEST
FIXTURES, create_pve_node), and a command line for Molecule's lxc scenario, whose deploy.py
host side is that node:
    python -m tests.integration.lxc_host image|create NAME|destroy NAME
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.integration import testbed
from tests.integration.testbed import ROOT, sh

MIRROR = "http://deb.debian.org/debian"
PACKAGES = ["systemd", "systemd-sysv", "dbus", "procps"]
NVIDIA_MAJOR = 195
# Where the kernel hands out dynamic character majors (FACTS.md 7: 234.., 487, 507-511 seen).
DYNAMIC_MAJORS = [*range(511, 383, -1), *range(254, 233, -1)]


def lxc_available() -> str | None:
    """None when lxc-start can be tried here, else why not."""
    missing = [t for t in ("lxc-start", "lxc-attach", "lxc-stop", "mknod") if not shutil.which(t)]
    if missing:
        return f"{', '.join(missing)} not installed (apt-get install lxc)"
    if os.geteuid() != 0:
        return "not root: lxc-start of a privileged container and mknod need root"
    if not shutil.which("mmdebstrap"):
        return "mmdebstrap not installed (scripts/testbed-engine.sh installs it)"
    return None


def cgroup_layout() -> str:
    """ "unified" (cgroup2 only), "hybrid" (v1 controllers + a v2 mount) or "legacy"."""
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    types = {(line.split()[1], line.split()[2]) for line in mounts}
    if ("/sys/fs/cgroup", "cgroup2") in types:
        return "unified"
    return "hybrid" if any(t == "cgroup2" for _, t in types) else "legacy"


def build_rootfs(cache: Path) -> Path:
    """A bookworm root file system with systemd (cached: minutes the first time)."""
    rootfs = cache / "rootfs"
    if (rootfs / "lib" / "systemd" / "systemd").exists():
        return rootfs
    partial = cache / "rootfs.partial"
    shutil.rmtree(partial, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "mmdebstrap",
            "--variant=apt",
            f"--include={','.join(PACKAGES)}",
            "bookworm",
            str(partial),
            MIRROR,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    partial.rename(rootfs)
    return rootfs


def free_major(taken: dict[str, int]) -> int:
    """A dynamic major no driver holds now, to stand in for nvidia-uvm's."""
    used = set(taken.values())
    return next(m for m in DYNAMIC_MAJORS if m not in used)


@contextlib.contextmanager
def device_nodes(nodes: dict[str, tuple[int, int]], directory: str = "/dev") -> Iterator[None]:
    """mknod each {name: (major, minor)} in directory; remove exactly those afterwards.

    Refuses to touch a path that exists (a real driver's node is never replaced).
    """
    made: list[Path] = []
    try:
        for name, (major, minor) in nodes.items():
            path = Path(directory) / name
            if path.exists() or path.is_symlink():
                raise FileExistsError(f"{path} exists: not replacing a node this test did not make")
            os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
            made.append(path)
        yield
    finally:
        for path in made:
            path.unlink(missing_ok=True)


class Container:
    """One liblxc container in a private lxcpath, its rootfs an overlay over the cached one."""

    def __init__(self, lxcpath: Path, name: str, rootfs: Path, lines: list[str]) -> None:
        self.lxcpath, self.name = lxcpath, name
        self.dir = lxcpath / name
        self.log = self.dir / "lxc.log"
        upper = self.dir / "delta"
        upper.mkdir(parents=True)
        base = [
            "lxc.include = /usr/share/lxc/config/common.conf",
            f"lxc.uts.name = {name}",
            f"lxc.rootfs.path = overlay:{rootfs}:{upper}",
            "lxc.net.0.type = empty",
            "lxc.apparmor.profile = unconfined",
            "lxc.autodev = 1",
        ]
        (self.dir / "config").write_text("\n".join([*base, *lines]) + "\n")

    def lxc(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [tool, "-n", self.name, "-P", str(self.lxcpath), *args]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)

    def start(self) -> subprocess.CompletedProcess[str]:
        return self.lxc("lxc-start", "-d", "-l", "DEBUG", "-o", str(self.log), check=False)

    def sh(self, command: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        return self.lxc("lxc-attach", "--clear-env", "--", "sh", "-c", command, check=check)

    def wait_booted(self, timeout: float = 60.0) -> str:
        """systemd's state once it settles ("running" / "degraded"), or the last one seen."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.sh("systemctl is-system-running").stdout.strip()
            if state in ("running", "degraded"):
                return state
            time.sleep(0.5)
        return state or "unknown"

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        wanted = [x for x in text.splitlines() if " ERROR " in x or " WARN " in x]
        return "\n".join((wanted or text.splitlines())[-lines:])

    def stop(self) -> None:
        self.lxc("lxc-stop", "-k", check=False)


# --- a simulated Proxmox node (test_lxc.py's pve_node, Molecule's lxc scenario) --------------
# A Docker testbed host made to look like a Proxmox node with a GPU, by TEST FIXTURES only:
# scripts standing in for nvidia-smi, pveversion (8.0: the bind-mount style), pct and
# nvidia-modprobe; /proc/devices bind-mounted over with NVIDIA's entries; /dev/nvidia* made
# with mknod; /etc/pve/lxc/101.conf a real Proxmox config.

PVE_CONFIG = ROOT / "tests/fixtures/outputs/pve-lxc-conf/description-comment-then-keys.txt"
VMID = 101
PVE_STANDINS = {
    "nvidia-smi": "echo '0, NVIDIA GeForce RTX 3070, 8192, 410, 550.54.14, 00000000:01:00.0,"
    " GPU-0a1b2c3d'",
    "pveversion": "echo 'pve-manager/8.0.4/d258a813cfa6b390 (running kernel: 6.2.16-3-pve)'",
    "pct": (
        'case "$1" in\n'
        '  status) if [ -f "/etc/pve/lxc/$2.conf" ]; then echo "status: running"; else\n'
        "    echo \"Configuration file 'nodes/pve/lxc/$2.conf' does not exist\"; exit 2; fi ;;\n"
        '  *) echo "$*" >> /etc/ollama-rig-test/pct.log ;;\n'
        "esac"
    ),
}
UVM_MAJOR = 508


def set_uvm_major(node: str, major: int) -> None:
    """The fixture's nvidia-uvm major: /proc/devices and the nodes (a driver update moves it)."""
    sh(
        node,
        "umount /proc/devices 2>/dev/null; grep -v -e nvidia -e '^Character devices:'"
        " /proc/devices > /run/devices.base; { echo 'Character devices:';"
        f" printf '195 nvidia-frontend\\n195 nvidia\\n195 nvidiactl\\n{major} nvidia-uvm\\n';"
        " cat /run/devices.base; } > /run/devices.fake && mount --bind /run/devices.fake"
        " /proc/devices; rm -f /dev/nvidia*; mknod /dev/nvidia0 c 195 0;"
        f" mknod /dev/nvidiactl c 195 255; mknod /dev/nvidia-uvm c {major} 0;"
        f" mknod /dev/nvidia-uvm-tools c {major} 1",
    )


def put(node: str, path: str, text: str, mode: str = "0644") -> None:
    """Write text to path in the container, with mode."""
    subprocess.run(
        ["docker", "exec", "-i", node, "sh", "-c", f"cat > {path} && chmod {mode} {path}"],
        input=text,
        text=True,
        check=True,
        capture_output=True,
    )


def create_pve_node(name: str) -> str:
    """A testbed host called name made to look like a Proxmox node with a GPU."""
    node = testbed.create(name)
    sh(node, "mkdir -p /etc/ollama-rig-test /etc/pve/lxc")
    for tool, body in PVE_STANDINS.items():
        put(node, f"/usr/local/bin/{tool}", f"#!/bin/sh\n# TEST FIXTURE\n{body}\n", "0755")
    put(node, "/usr/bin/nvidia-modprobe", "#!/bin/sh\n# TEST FIXTURE\nexit 0\n", "0755")
    put(node, f"/etc/pve/lxc/{VMID}.conf", PVE_CONFIG.read_text())
    set_uvm_major(node, UVM_MAJOR)
    return node


def main(argv: list[str]) -> int:
    return testbed.cli(
        argv,
        "tests.integration.lxc_host",
        testbed.IMAGE,
        testbed.build_image,
        create_pve_node,
        testbed.destroy,
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
