"""LXC topology, host side: device nodes at boot and the GPU lines of a Proxmox container.

The container side (NVIDIA user-space libraries of the host's exact version, then the native
role) is roles/lxc/driver.py; LXD/Incus through pylxd is roles/lxc/lxd.py.

Inventory shape: the host has topology "lxc" (lxc_host here: no Ollama on it); the container is
an inventory host of its own with topology "native" and lxc_guest=True (lxc_guest_userspace
here, then deploy.py's native role). Each writes /etc/ollama-rig/lxc.json for
tests/verify/test_lxc.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.facts.files import File
from pyinfra.operations import files, systemd

from facts.host import NvidiaPciFunctions
from facts.lxc import (
    NvidiaKernelModuleVersion,
    NvidiaLibraryVersions,
    PctStatus,
    TextFile,
    pve_config_path,
)
from roles.lxc.driver import guest_refusal, nvidia_userspace
from roles.lxc.lxd import instance_gpu, lxd_refusal, runs_here
from roles.lxc.operations import proxmox_container_devices, proxmox_create_container
from roles.lxc.plan import host_refusals, proxmox_refusals
from settings import Settings
from templates import template_path

UVM_UNIT = "nvidia-uvm-init.service"
UVM_UNIT_FILE = f"/etc/systemd/system/{UVM_UNIT}"
NVIDIA_MODPROBE = "/usr/bin/nvidia-modprobe"  # the Debian package's and the .run's path
# The units that start a host's containers at boot, which the nvidia-uvm-init unit precedes.
# Proxmox: pve-guests.service (onboot containers); plain LXC's lxc.service (autostart ones).
PROXMOX_STARTERS = ("pve-guests.service", "lxc.service")
# LXD/Incus start their boot.autostart instances from the daemon's own start: Debian's lxd
# package (lxd.service, lxd-containers.service `lxd activateifneeded`: `dpkg -L lxd` on Debian
# 12), the snap (snap.lxd.daemon.service), Incus (incus.service, incus-startup.service: Incus
# docs, "Packaging" - systemd units). Ordering against a unit that is not installed is ignored.
LXD_STARTERS = (
    "lxd.service",
    "lxd-containers.service",
    "snap.lxd.daemon.service",
    "incus.service",
    "incus-startup.service",
)
LXC_MANIFEST = "/etc/ollama-rig/lxc.json"  # what tests/verify/test_lxc.py checks, both sides


class LxcPreflightError(DeployError):
    """The lxc topology cannot go on as configured; the message says why and what to do."""


def device_minors(gpu_count: int) -> list[int]:
    """Minors of /dev/nvidia0..N for nvidia-modprobe -c (at least 0: nvidia-uvm needs one)."""
    return list(range(max(gpu_count, 1)))


def _host_refusals() -> list[str]:
    """The host checks both platforms make before any change (plan.host_refusals)."""
    # The driver itself: preflight wants nvidia-smi working on the host, for both platforms.
    return host_refusals(bool(host.get_fact(File, path=NVIDIA_MODPROBE)))


def nvidia_boot_nodes(before: Sequence[str]) -> None:
    """The nvidia-uvm-init unit: the NVIDIA device nodes, /dev/nvidia-uvm included, made now
    and at every boot before the units in `before` start containers. Written, reloaded and
    restarted only when it changed.

    Needed on Proxmox and on LXD/Incus alike: /dev/nvidia-uvm exists only after a first CUDA
    call or `nvidia-modprobe -u` (FACTS.md 7), and neither manager makes it. LXD passes only
    the nodes that exist when the instance starts (lxd/device/gpu_physical.go startContainer),
    with nvidia.runtime it leaves the non-card nodes to nvidia-container-cli, which LXC's
    nvidia hook (lxc/lxc hooks/nvidia) runs without --load-kmods in an unprivileged container
    ("Kernel module nvidia_uvm is not loaded, nvidia-container-cli might fail"), and
    libnvidia-container skips a missing /dev/nvidia-uvm with a warning (src/nvc_info.c
    lookup_devices, "missing device"): the instance starts without it and CUDA fails inside.
    """
    # A unit, not a udev RUN rule: it is ordered before the units that start the containers,
    # and udev(7) kills RUN programs that take long (a module load may).
    gpus = [f for f in host.get_fact(NvidiaPciFunctions) if f["gpu"]]
    unit = files.template(
        name="Unit creating /dev/nvidia-uvm at boot",
        src=template_path("lxc/nvidia-uvm-init.service.j2"),
        dest=UVM_UNIT_FILE,
        mode="0644",
        minors=device_minors(len(gpus)),
        nvidia_modprobe=NVIDIA_MODPROBE,
        before=list(before),
    )
    systemd.daemon_reload(name="Reload systemd units (nvidia-uvm-init)", _if=unit.did_change)
    # A changed unit (another GPU count) runs again now: a oneshot does not rerun on its own.
    systemd.service(
        name="Re-run the changed nvidia-uvm-init unit",
        service=UVM_UNIT,
        restarted=True,
        _if=unit.did_change,
    )
    systemd.service(
        name="NVIDIA device nodes now and at boot", service=UVM_UNIT, running=True, enabled=True
    )


@deploy("LXC GPU host (Proxmox)")
def proxmox_gpu_host(settings: Settings) -> None:
    """Device nodes at every boot, the container (if asked), then its GPU lines."""
    assert settings.lxc_vmid is not None  # settings refuse topology lxc on proxmox without it
    vmid = settings.lxc_vmid
    refusals = _host_refusals() + proxmox_refusals(
        vmid,
        host.get_fact(PctStatus, vmid=vmid),
        host.get_fact(TextFile, path=pve_config_path(vmid)),
        settings.lxc_create_template,
    )
    if refusals:
        raise LxcPreflightError(f"lxc topology on {host.name}: " + "; ".join(refusals))
    nvidia_boot_nodes(before=PROXMOX_STARTERS)
    if settings.lxc_create_template:
        proxmox_create_container(
            name=f"Container {settings.lxc_vmid}",
            vmid=settings.lxc_vmid,
            template=settings.lxc_create_template,
            options=settings.lxc_create_options,
        )
    proxmox_container_devices(
        name=f"GPU into container {settings.lxc_vmid}",
        vmid=settings.lxc_vmid,
        style=settings.lxc_device_style,
        gpus=settings.lxc_gpus,
        mig=settings.lxc_mig,
        gid=settings.lxc_dev_gid,
    )


def lxc_manifest(settings: Settings, side: str) -> dict[str, object]:
    """What tests/verify/test_lxc.py holds this host to: side "host" (the Proxmox node or LXD
    host) or "guest" (the container). The lines themselves are recomputed there from the
    host's live /proc/devices and /dev/nvidia*, as the operation computed them."""
    if side == "guest":
        return {"side": "guest", "gpu": settings.gpu}
    return {
        "side": "host",
        "platform": settings.lxc_platform,
        "vmid": settings.lxc_vmid,
        "instance": settings.lxc_instance,
        "device_style": settings.lxc_device_style,
        "gpus": settings.lxc_gpus,
        "mig": settings.lxc_mig,
        "dev_gid": settings.lxc_dev_gid,
    }


def _write_lxc_manifest(settings: Settings, side: str) -> None:
    files.template(
        name=f"Write {LXC_MANIFEST}",
        src=template_path("lxc/lxc.json.j2"),
        dest=LXC_MANIFEST,
        mode="0644",
        lxc=lxc_manifest(settings, side),
    )


@deploy("LXC GPU host (LXD/Incus)")
def lxd_gpu_host(settings: Settings) -> None:
    """The instance read through pylxd now (refused before any change when LXD or it is not
    there, or the host has no nvidia-modprobe), the nvidia-uvm-init unit as on Proxmox, then
    the instance's GPU devices and nvidia.runtime, set only when they differ and only when the
    host has the nodes the unit makes."""
    assert settings.lxc_instance is not None  # settings refuse lxd without it
    refusals = _host_refusals()
    refusal = lxd_refusal(settings.lxc_instance, settings.lxc_lxd_endpoint, runs_here(host))
    if refusals or refusal:
        reasons = refusals + ([refusal] if refusal else [])
        raise LxcPreflightError(f"lxc topology on {host.name}: " + "; ".join(reasons))
    nvidia_boot_nodes(before=LXD_STARTERS)
    instance_gpu(
        name=f"GPU into LXD/Incus instance {settings.lxc_instance}",
        instance=settings.lxc_instance,
        gpus=settings.lxc_gpus,
        endpoint=settings.lxc_lxd_endpoint,
    )


@deploy("LXC GPU host")
def lxc_host(settings: Settings) -> None:
    """topology "lxc": the host side only (Ollama runs in the container, its own host)."""
    if settings.lxc_platform == "proxmox":
        proxmox_gpu_host(settings=settings)
    else:
        lxd_gpu_host(settings=settings)
    _write_lxc_manifest(settings, "host")


@deploy("LXC guest: NVIDIA libraries of the host's driver")
def lxc_guest_userspace(settings: Settings) -> None:
    """lxc_guest=True: the libraries of exactly the host driver's version, before Ollama."""
    if settings.gpu != "none":
        installed: list[str] = host.get_fact(NvidiaLibraryVersions)
        refusal = guest_refusal(
            host.get_fact(NvidiaKernelModuleVersion)["version"],
            installed,
            settings.lxc_driver_run_sha256,
            settings.lxc_driver_run_path,
        )
        if refusal:
            raise LxcPreflightError(f"LXC guest {host.name}: {refusal}")
        nvidia_userspace(
            name="NVIDIA user-space libraries (host driver's version)",
            sha256=settings.lxc_driver_run_sha256,
            url=settings.lxc_driver_run_url,
            local_path=settings.lxc_driver_run_path,
        )
    _write_lxc_manifest(settings, "guest")
