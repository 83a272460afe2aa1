"""LXC topology, container side: NVIDIA user-space libraries of exactly the host's driver
version (FACTS.md 7). A container shares the host's kernel module, and NVML/CUDA refuse to
work when the libraries' version differs from it ("Driver/library version mismatch")."""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Sequence

from pyinfra import host
from pyinfra.api import operation
from pyinfra.api.exceptions import OperationError

from facts.lxc import NvidiaKernelModuleVersion, NvidiaLibraryVersions
from roles.native.operations import fetch_archive

RUN_URL = (
    "https://download.nvidia.com/XFree86/Linux-x86_64/{version}/NVIDIA-Linux-x86_64-{version}.run"
)
CACHE_DIR = "/var/cache/ollama-rig"


class DriverMismatch(ValueError):
    """The container's NVIDIA libraries are another version than the host's driver."""


def libraries_needed(host_version: str, installed: Sequence[str]) -> bool:
    """True when the libraries must be installed, False when exactly host_version is there.

    Refuses (DriverMismatch, both versions named) when another version is installed: the
    .run installer would replace it, and that is the user's decision, not a side effect.
    """
    if not installed:
        return True
    if list(installed) == [host_version]:
        return False
    raise DriverMismatch(
        f"the container has NVIDIA libraries {', '.join(installed)} but the host driver is"
        f" {host_version}: remove the container's NVIDIA packages (or run"
        " `nvidia-uninstall`), then run again to install "
        f"{host_version}; or update the host driver to match"
    )


def guest_refusal(module: str | None, installed: Sequence[str], sha256: str | None) -> str | None:
    """Why the container cannot get its libraries (None: it can, or has them): checked when the
    deploy is prepared, so the run stops before any change. module: the host's loaded driver
    (/proc/driver/nvidia/version, shared with the container); installed: the container's."""
    if module is None:
        return (
            "cannot tell the host's NVIDIA driver version: /proc/driver/nvidia/version is not"
            " readable in this container: load the driver on the host (nvidia-smi must work"
            " there) and pass its devices in (topology='lxc' on the host), or set gpu='none'"
        )
    try:
        needed = libraries_needed(module, installed)
    except DriverMismatch as exc:
        return str(exc)
    if needed and sha256 is None:
        return (
            f"set lxc_driver_run_sha256 to the sha256 of NVIDIA-Linux-x86_64-{module}.run"
            " (sha256sum of the file from download.nvidia.com) to install the libraries"
        )
    return None


@operation()
def nvidia_userspace(
    sha256: str | None,
    host_version: str | None = None,
    url: str = RUN_URL,
    cache_dir: str = CACHE_DIR,
):
    """
    Install the NVIDIA user-space libraries of the host driver's version in a container.

    + sha256: checksum of NVIDIA-Linux-x86_64-<version>.run (required to install)
    + host_version: the host driver's version; None reads /proc/driver/nvidia/version, which
      a container shares with its host
    + url: where the .run comes from; "{version}" is filled in
    + cache_dir: where the .run is kept in the container

    `--no-kernel-module`: the container uses the host's module, and cannot load one.

    .. code:: python

        nvidia_userspace(name="NVIDIA libraries", sha256="...")
    """
    module = host.get_fact(NvidiaKernelModuleVersion)["version"]
    version = host_version or module
    if version is None:
        raise OperationError(
            "cannot tell the host's NVIDIA driver version: /proc/driver/nvidia/version is not"
            " readable here (is the driver loaded on the host?); pass host_version"
        )
    if host_version and module and module != host_version:
        raise OperationError(
            f"the host driver is {host_version} but the loaded kernel module is {module}:"
            " reboot the host after its driver update, then run again"
        )
    found: list[str] = host.get_fact(NvidiaLibraryVersions)
    installed = list(found)  # a plain list, whatever sequence the fact came as
    try:
        needed = libraries_needed(version, installed)
    except DriverMismatch as exc:
        raise OperationError(str(exc)) from exc
    if not needed:
        host.noop(f"NVIDIA libraries {version} are installed")
        return
    if sha256 is None:
        raise OperationError(
            f"set lxc_driver_run_sha256 to the sha256 of NVIDIA-Linux-x86_64-{version}.run"
            " (sha256sum of the file from download.nvidia.com) to install the libraries"
        )
    source = url.format(version=version)
    dest = posixpath.join(cache_dir, f"NVIDIA-Linux-x86_64-{version}.run")
    yield from fetch_archive._inner(
        url=source,
        sha256=sha256,
        dest=dest,
        offline_hint="set lxc_driver_run_url to a reachable copy of the .run installer",
        kept="no NVIDIA libraries were installed",
    )
    yield f"sh {shlex.quote(dest)} --no-kernel-module --silent"
