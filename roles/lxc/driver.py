"""LXC topology, container side: NVIDIA user-space libraries of exactly the host's driver
version (FACTS.md 7). A container shares the host's kernel module, and NVML/CUDA refuse to
work when the libraries' version differs from it ("Driver/library version mismatch")."""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Sequence
from pathlib import Path

from pyinfra import host
from pyinfra.api import FileUploadCommand, operation
from pyinfra.api.exceptions import OperationError
from pyinfra.facts.files import Sha256File

from facts.lxc import NvidiaKernelModuleVersion, NvidiaLibraryVersions
from roles.native.operations import fetch_archive
from roles.native.plan import sha256_of

RUN_URL = (
    "https://download.nvidia.com/XFree86/Linux-x86_64/{version}/NVIDIA-Linux-x86_64-{version}.run"
)
CACHE_DIR = "/var/cache/ollama-rig"
# NVIDIA names its installers NVIDIA-Linux-<arch>-<version>.run (download.nvidia.com/XFree86/).
RUN_NAME = re.compile(r"NVIDIA-Linux-[A-Za-z0-9_]+-(\d+(?:\.\d+)+)")
KEPT = "no NVIDIA libraries were installed"


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


def no_checksum(version: str) -> str:
    """The refusal when lxc_driver_run_sha256 is unset (nothing is installed unpinned)."""
    return (
        f"set lxc_driver_run_sha256 to the sha256 of NVIDIA-Linux-x86_64-{version}.run"
        " (sha256sum of the file from download.nvidia.com, or of lxc_driver_run_path's copy)"
        " to install the libraries"
    )


def run_name_refusal(path: str, version: str) -> str | None:
    """Why the .run at path is not the host's version by its name (None: it is)."""
    named = RUN_NAME.search(Path(path).name)
    if named is not None and named.group(1) == version:
        return None
    what = f"the {named.group(1)} installer" if named else "not named by its version"
    return (
        f"lxc_driver_run_path={path!r} is {what} but the host driver is {version}: give"
        f" NVIDIA-Linux-x86_64-{version}.run, under NVIDIA's file name"
    )


def local_run_refusal(path: str, version: str, sha256: str) -> str | None:
    """Why lxc_driver_run_path cannot give the container the host's version (None: it can):
    the file is missing on the machine running pyinfra, its name is another version's (or
    none), or its sha256 is not lxc_driver_run_sha256."""
    if not Path(path).is_file():
        return (
            f"lxc_driver_run_path={path!r}: no such file on the machine running pyinfra: give"
            f" the path of a downloaded NVIDIA-Linux-x86_64-{version}.run, or None to download it"
        )
    wrong_name = run_name_refusal(path, version)
    if wrong_name:
        return wrong_name
    actual = sha256_of(path)
    if actual != sha256:
        return (
            f"lxc_driver_run_path={path!r} has sha256 {actual}, expected {sha256}"
            f" (lxc_driver_run_sha256): installer refused, {KEPT}"
        )
    return None


def guest_refusal(
    module: str | None, installed: Sequence[str], sha256: str | None, run_path: str | None = None
) -> str | None:
    """Why the container cannot get its libraries (None: it can, or has them): checked when the
    deploy is prepared, so the run stops before any change. module: the host's loaded driver
    (/proc/driver/nvidia/version, shared with the container); installed: the container's;
    run_path: lxc_driver_run_path, a local .run used instead of the download."""
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
    if not needed:
        return None
    if sha256 is None:
        return no_checksum(module)
    if run_path is not None:
        return local_run_refusal(run_path, module, sha256)
    return None


@operation()
def nvidia_userspace(
    sha256: str | None,
    host_version: str | None = None,
    url: str = RUN_URL,
    cache_dir: str = CACHE_DIR,
    local_path: str | None = None,
):
    """
    Install the NVIDIA user-space libraries of the host driver's version in a container.

    + sha256: checksum of NVIDIA-Linux-x86_64-<version>.run (required to install)
    + host_version: the host driver's version; None reads /proc/driver/nvidia/version, which
      a container shares with its host
    + url: where the .run comes from; "{version}" is filled in
    + cache_dir: where the .run is kept in the container
    + local_path: a .run on the machine running pyinfra, copied instead of downloading url;
      the copy's sha256 is checked in the container before it runs

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
        raise OperationError(no_checksum(version))
    dest = posixpath.join(cache_dir, f"NVIDIA-Linux-x86_64-{version}.run")
    if local_path is not None:
        wrong_name = run_name_refusal(local_path, version)  # its content: checked below
        if wrong_name:
            raise OperationError(wrong_name)
        yield from _copy_checked(local_path, dest, sha256)
    else:
        yield from fetch_archive._inner(
            url=url.format(version=version),
            sha256=sha256,
            dest=dest,
            offline_hint=(
                "set lxc_driver_run_url to a reachable copy of the .run installer, or"
                " lxc_driver_run_path to a downloaded one on the machine running pyinfra"
            ),
            kept=KEPT,
        )
    yield f"sh {shlex.quote(dest)} --no-kernel-module --silent"


def _copy_checked(local_path: str, dest: str, sha256: str):  # type: ignore[no-untyped-def]
    """Commands copying local_path to dest unless dest has sha256; the copy is checked in the
    container (a truncated upload never reaches dest, so it never runs)."""
    if host.get_fact(Sha256File, path=dest) == sha256:
        host.noop(f"{dest} is already there with the expected sha256")
        return
    part = dest + ".part"
    q_part = shlex.quote(part)
    yield f"mkdir -p {shlex.quote(posixpath.dirname(dest))}"
    yield FileUploadCommand(local_path, part)
    yield (
        f'actual=$(sha256sum {q_part} | cut -d" " -f1); '
        f'if [ "$actual" != {sha256} ]; then rm -f {q_part}; '
        f'echo "ollama-rig: checksum mismatch for the copy of {local_path}: expected {sha256},'
        f' got $actual; installer refused, {KEPT}" >&2; exit 1; fi; '
        f"mv -f {q_part} {shlex.quote(dest)}"
    )
