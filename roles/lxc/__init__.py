"""LXC topology, host side: device nodes at boot and the GPU lines of a Proxmox container.

The container side (NVIDIA user-space libraries of the host's exact version, then the native
role) is roles/lxc/driver.py; LXD/Incus through pylxd is roles/lxc/lxd.py.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files, systemd

from facts.host import NvidiaPciFunctions
from roles.lxc.operations import proxmox_container_devices, proxmox_create_container
from settings import Settings
from templates import template_path

UVM_UNIT = "nvidia-uvm-init.service"
UVM_UNIT_FILE = f"/etc/systemd/system/{UVM_UNIT}"
NVIDIA_MODPROBE = "/usr/bin/nvidia-modprobe"  # the Debian package's and the .run's path


def device_minors(gpu_count: int) -> list[int]:
    """Minors of /dev/nvidia0..N for nvidia-modprobe -c (at least 0: nvidia-uvm needs one)."""
    return list(range(max(gpu_count, 1)))


@deploy("LXC GPU host (Proxmox)")
def proxmox_gpu_host(settings: Settings) -> None:
    """Device nodes at every boot, the container (if asked), then its GPU lines."""
    # A unit, not a udev RUN rule: it is ordered before pve-guests.service, which starts the
    # onboot containers, and udev(7) kills RUN programs that take long (a module load may).
    gpus = [f for f in host.get_fact(NvidiaPciFunctions) if f["gpu"]]
    unit = files.template(
        name="Unit creating /dev/nvidia-uvm at boot",
        src=template_path("lxc/nvidia-uvm-init.service.j2"),
        dest=UVM_UNIT_FILE,
        mode="0644",
        minors=device_minors(len(gpus)),
        nvidia_modprobe=NVIDIA_MODPROBE,
    )
    systemd.daemon_reload(name="Reload systemd units (nvidia-uvm-init)", _if=unit.did_change)
    systemd.service(
        name="NVIDIA device nodes now and at boot", service=UVM_UNIT, running=True, enabled=True
    )
    assert settings.lxc_vmid is not None  # settings refuse topology lxc on proxmox without it
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
