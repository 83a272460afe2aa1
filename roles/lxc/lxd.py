"""LXD/Incus: the NVIDIA GPU device and instance config, applied through pylxd on change.

LXD's `gpu` device with `gputype: physical` passes whole GPUs (all of them without `id`/`pci`;
`id` is the DRM card id, `pci` the PCI address), and `nvidia.runtime: "true"` makes LXD pass
the host's NVIDIA user-space libraries in through libnvidia-container (FACTS.md 7; LXD docs,
"Type: gpu" and "nvidia.runtime"). pylxd: `instance.devices[...] = {...}; instance.save()`.
pylxd is imported lazily: only LXD/Incus hosts need it (`pip install pylxd==2.4.2`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal, Protocol

PCI_ADDRESS = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
NVIDIA_CONFIG = {"nvidia.runtime": "true"}


def gpu_devices(gpus: Literal["all"] | Sequence[str]) -> dict[str, dict[str, str]]:
    """The instance's GPU devices: one `gpu` for all GPUs, else `gpuN` per chosen GPU, each by
    DRM card id ("0") or PCI address ("0000:01:00.0")."""
    if gpus == "all":
        return {"gpu": {"type": "gpu", "gputype": "physical"}}
    devices = {}
    for number, gpu in enumerate(gpus):
        key = "pci" if PCI_ADDRESS.match(gpu) else "id"
        if key == "id" and not gpu.isdigit():
            raise ValueError(f"{gpu!r} is neither a DRM card id nor a PCI address")
        devices[f"gpu{number}"] = {"type": "gpu", "gputype": "physical", key: gpu}
    return devices


class Instance(Protocol):
    """What apply_gpu uses of a pylxd Instance."""

    name: str
    status: str
    devices: dict[str, dict[str, str]]
    config: dict[str, str]

    def save(self, wait: bool = ...) -> Any: ...

    def restart(self, wait: bool = ...) -> Any: ...


def apply_gpu(instance: Instance, devices: dict[str, dict[str, str]]) -> bool:
    """Give instance exactly these GPU devices and the NVIDIA config; save and restart a
    running instance only when something changed. Other devices and keys are kept; GPU
    devices not asked for any more are removed. Returns whether it changed."""
    current = {k: v for k, v in instance.devices.items() if v.get("type") != "gpu"}
    wanted_devices = {**current, **devices}
    wanted_config = {**instance.config, **NVIDIA_CONFIG}
    if instance.devices == wanted_devices and instance.config == wanted_config:
        return False
    instance.devices = wanted_devices
    instance.config = wanted_config
    instance.save(wait=True)
    if instance.status == "Running":
        instance.restart(wait=True)  # nvidia.runtime and gpu devices apply at start
    return True


def lxd_gpu(name: str, gpus: Literal["all"] | Sequence[str], endpoint: str | None = None) -> bool:
    """apply_gpu on LXD/Incus instance name, through the local socket or endpoint."""
    from pylxd import Client  # lazy: only LXD/Incus hosts need pylxd

    client = Client(endpoint=endpoint) if endpoint else Client()
    return apply_gpu(client.instances.get(name), gpu_devices(gpus))
