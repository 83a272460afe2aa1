"""Disposable Debian bookworm containers running systemd: the hosts of the integration tier.

Built offline (DESIGN.md, tier 2): mmdebstrap makes a root file system from Debian's own
packages, `docker import` turns it into an image, and each test host is a container of it
started with what systemd needs without --privileged. The containers have no network
(--network none): every byte of test traffic stays on their own loopback.

Also a command line for the shell and Molecule (one lifecycle, not two):
    python -m tests.integration.testbed image|create NAME|destroy NAME
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
MIRROR = "http://deb.debian.org/debian"
# What the hosts need besides systemd: python3 runs the Ollama stand-in (tests/standin), curl
# and zstd are what the native role expects, iproute2 gives testinfra `ss`, nftables and ufw the
# firewalls.
PACKAGES = [
    "systemd",
    "systemd-sysv",
    "dbus",
    "procps",
    "iproute2",
    "python3",
    "curl",
    "ca-certificates",
    "zstd",
    "nftables",
    "ufw",
]
# systemd as PID 1 without --privileged (DESIGN.md tier 2): host cgroup namespace, the cgroup
# file system, CAP_SYS_ADMIN and a tmpfs /run; CAP_NET_ADMIN lets nftables load its rules.
RUN_FLAGS = [
    "--cgroupns=host",
    "-v",
    "/sys/fs/cgroup:/sys/fs/cgroup",
    "--cap-add",
    "SYS_ADMIN",
    "--cap-add",
    "NET_ADMIN",
    "--tmpfs",
    "/run",
    "--tmpfs",
    "/run/lock",
    "--network",
    "none",
]
LABEL = "ollama-rig.testbed=1"


def image_tag(packages: list[str], flavour: str = "") -> str:
    """The tag names the package list, so a changed list builds a new image, not a stale one."""
    digest = hashlib.sha256(" ".join(packages).encode()).hexdigest()[:8]
    return f"ollama-rig-test:bookworm-{flavour}{digest}"


IMAGE = image_tag(PACKAGES)


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], check=check, capture_output=True, text=True)


def engine_available() -> bool:
    try:
        return docker("info", check=False).returncode == 0
    except FileNotFoundError:
        return False


def image_present(image: str = IMAGE) -> bool:
    return docker("image", "inspect", image, check=False).returncode == 0


def build_image(packages: list[str] = PACKAGES, image: str = IMAGE) -> None:
    """Make the image with mmdebstrap + docker import (a few minutes the first time)."""
    if image_present(image):
        return
    with tempfile.TemporaryDirectory() as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        subprocess.run(
            [
                "mmdebstrap",
                "--variant=apt",
                f"--include={','.join(packages)}",
                "--format=tar",
                "bookworm",
                str(rootfs),
                MIRROR,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        docker("import", "-c", 'CMD ["/lib/systemd/systemd"]', str(rootfs), image)


def create(name: str, image: str = IMAGE, flags: list[str] = RUN_FLAGS) -> str:
    """Start a fresh host called name (an old one of that name is removed); return its id."""
    destroy(name)
    result = docker("run", "-d", "--name", name, "--label", LABEL, *flags, image)
    container = result.stdout.strip()
    wait_booted(container)
    return container


def wait_booted(container: str, timeout: float = 60.0) -> None:
    """Wait until systemd has finished booting, so units can be started right away."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = docker("exec", container, "systemctl", "is-system-running", check=False)
        if state.stdout.strip() in ("running", "degraded"):
            return
        time.sleep(0.5)
    raise RuntimeError(f"systemd in {container[:12]} did not finish booting in {timeout}s")


def destroy(name: str) -> None:
    docker("rm", "-f", "-v", name, check=False)


def exec_in(container: str, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return docker("exec", container, *command, check=check)


def sh(container: str, script: str, check: bool = True) -> str:
    """Output of a shell script run in the container."""
    return exec_in(container, "sh", "-c", script, check=check).stdout


# Directories whose listing must not move under --dry or a refused run.
WATCHED = "/etc /usr /opt /srv /root /var/cache /var/lib/dpkg"


def tree(container: str) -> str:
    """A listing of the watched directories: path, size, mode and mtime of everything."""
    return exec_in(
        container, "sh", "-c", f"find {WATCHED} -xdev -printf '%p %s %m %T@\\n' | sort"
    ).stdout


def cli(
    argv: list[str],
    prog: str,
    image: str,
    build: Callable[[], None],
    make: Callable[[str], str],
    remove: Callable[[str], None],
) -> int:
    """`image|create NAME|destroy NAME` for a flavour of test host (this one, docker_host)."""
    if argv[:1] == ["image"]:
        build()
        print(image)
    elif argv[:1] == ["create"] and len(argv) == 2:
        build()
        print(make(argv[1]))
    elif argv[:1] == ["destroy"] and len(argv) == 2:
        remove(argv[1])
    else:
        print(f"usage: python -m {prog} image|create NAME|destroy NAME", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str]) -> int:
    return cli(argv, "tests.integration.testbed", IMAGE, build_image, create, destroy)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
