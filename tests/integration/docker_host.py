"""Hosts of the docker topology's integration tests: testbed containers with their own Docker.

Each host is the integration tier's systemd Debian bookworm container (tests/integration/
testbed.py) with the distribution's docker.io installed in the image, so the role under test
drives a real engine of its own (Docker-in-Docker) and may write its daemon.json and restart it
without touching the machine's engine or anyone else's containers. Without --privileged:

- the testbed's flags (host cgroup namespace and cgroup file system, CAP_SYS_ADMIN,
  CAP_NET_ADMIN, tmpfs /run, --network none: the inner bridge and published ports live in
  the host container's own network namespace, so all test traffic stays inside it);
- seccomp=unconfined: Docker's default seccomp profile denies keyctl(2), and runc inside fails
  with "unable to join session keyring: unable to create session key: operation not permitted";
- an anonymous volume on /var/lib/docker, so the inner engine's layers are not on the
  container's own overlay (`docker rm -v` removes it with the host).

    python -m tests.integration.docker_host image|create NAME|destroy NAME
"""

from __future__ import annotations

import sys
import time

from tests.integration import testbed

PACKAGES = [*testbed.PACKAGES, "docker.io"]
IMAGE = testbed.image_tag(PACKAGES, flavour="docker-")
RUN_FLAGS = [
    *testbed.RUN_FLAGS,
    "--security-opt",
    "seccomp=unconfined",
    "--volume",
    "/var/lib/docker",
]


def image_present() -> bool:
    return testbed.image_present(IMAGE)


def build_image() -> None:
    """The testbed's packages plus docker.io, made the testbed's way (about a minute)."""
    testbed.build_image(PACKAGES, IMAGE)


def wait_engine(container: str, timeout: float = 60.0) -> None:
    """Wait until the inner Docker engine answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if testbed.exec_in(container, "docker", "info", check=False).returncode == 0:
            return
        time.sleep(0.5)
    raise RuntimeError(f"the Docker engine in {container[:12]} did not start in {timeout}s")


def create(name: str) -> str:
    """Start a fresh host called name (an old one of that name is removed); return its id."""
    destroy(name)
    container = testbed.create(name, IMAGE, RUN_FLAGS)
    wait_engine(container)
    return container


def destroy(name: str) -> None:
    """Remove the inner containers first (their cgroups are in the machine's tree), then it."""
    testbed.docker(
        "exec",
        name,
        "sh",
        "-c",
        "docker ps -aq | xargs -r docker rm -f >/dev/null 2>&1",
        check=False,
    )
    testbed.destroy(name)


def main(argv: list[str]) -> int:
    return testbed.cli(argv, "tests.integration.docker_host", IMAGE, build_image, create, destroy)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
