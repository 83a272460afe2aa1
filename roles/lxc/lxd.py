"""LXD/Incus: the NVIDIA GPU device and instance config, applied through pylxd on change.

LXD's `gpu` device with `gputype: physical` passes whole GPUs (all of them without `id`/`pci`;
`id` is the DRM card id, `pci` the PCI address), and `nvidia.runtime: "true"` makes LXD pass
the host's NVIDIA user-space libraries in through libnvidia-container (FACTS.md 7; LXD docs,
"Type: gpu" and "nvidia.runtime"). pylxd: `instance.devices[...] = {...}; instance.save()`.

pylxd runs in the pyinfra process, so it talks to the LXD/Incus of the machine running pyinfra
(its unix socket) unless lxc_lxd_endpoint names another one. The instance is read when the
deploy is prepared: a missing instance or an unreachable LXD stops the run before any change,
and the operation is a change only when the GPU devices or nvidia.runtime differ.
pylxd is imported lazily: only LXD/Incus controllers need it (requirements.txt pins it).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any, Literal, Protocol

from pyinfra import host, logger
from pyinfra.api import FunctionCommand, operation
from pyinfra.api.exceptions import OperationError
from pyinfra.connectors.local import LocalConnector

from facts.lxc import NvidiaDeviceNodes, ProcDevices
from roles.commands import fail_command
from roles.lxc.plan import LxcPlanError, check_host_nodes

PCI_ADDRESS = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
NVIDIA_CONFIG = {"nvidia.runtime": "true"}
# Where LXD itself says why it refused nvidia.runtime (lxd/instance/drivers/driver_lxc.go:
# "The NVIDIA container tools couldn't be found" when nvidia-container-cli is not on its PATH).
NVIDIA_TOOLS_FIX = (
    "nvidia.runtime needs NVIDIA's nvidia-container-cli on the LXD host"
    " (libnvidia-container-tools; the LXD snap bundles it)"
)


class LxdError(Exception):
    """LXD/Incus cannot be used as configured; the message is one line with the fix."""


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


def wanted_state(
    devices: dict[str, dict[str, str]], config: dict[str, str], gpus: dict[str, dict[str, str]]
) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """(devices, config) with exactly these GPU devices and the NVIDIA config: other devices
    and keys kept, GPU devices not asked for any more removed."""
    kept = {k: v for k, v in devices.items() if v.get("type") != "gpu"}
    return {**kept, **gpus}, {**config, **NVIDIA_CONFIG}


def gpu_changes(instance: Instance, gpus: dict[str, dict[str, str]]) -> list[str]:
    """What apply_gpu would change on instance, one short phrase each; empty: nothing."""
    devices, config = wanted_state(instance.devices, instance.config, gpus)
    changes = [f"remove device {k}" for k in sorted(instance.devices) if k not in devices]
    for name in sorted(devices):
        if name not in instance.devices:
            changes.append(f"add device {name}")
        elif instance.devices[name] != devices[name]:
            changes.append(f"change device {name}")
    changes += [f"set {k}={v}" for k, v in config.items() if instance.config.get(k) != v]
    return changes


def apply_gpu(instance: Instance, devices: dict[str, dict[str, str]]) -> bool:
    """Give instance exactly these GPU devices and the NVIDIA config; save and restart a
    running instance only when something changed. Other devices and keys are kept; GPU
    devices not asked for any more are removed. Returns whether it changed."""
    if not gpu_changes(instance, devices):
        return False
    instance.devices, instance.config = wanted_state(instance.devices, instance.config, devices)
    instance.save(wait=True)
    if instance.status == "Running":
        instance.restart(wait=True)  # nvidia.runtime and gpu devices apply at start
    return True


def where(endpoint: str | None) -> str:
    return endpoint or "this machine's LXD socket"


def lxd_client(endpoint: str | None) -> Any:
    """A pylxd Client for endpoint (a unix socket path or https:// URL), or the local socket
    ($LXD_DIR, the snap's, /var/lib/lxd's, as pylxd looks them up). Raises LxdError."""
    try:
        from pylxd import Client  # lazy: only LXD/Incus controllers need pylxd
    except ImportError:
        raise LxdError(
            "lxc_platform='lxd' needs pylxd where pyinfra runs: pip install -r requirements.txt"
        ) from None
    if endpoint and endpoint.startswith("/") and not os.path.exists(endpoint):
        raise LxdError(f"no LXD/Incus socket at lxc_lxd_endpoint={endpoint!r}: start LXD or fix it")
    try:
        return Client(endpoint=endpoint) if endpoint else Client()
    except Exception as exc:  # pylxd's ClientConnectionFailed, requests' errors, OSError
        raise LxdError(
            f"LXD/Incus is not reachable at {where(endpoint)} ({type(exc).__name__}: {exc}):"
            " start it (`lxd waitready`), or set lxc_lxd_endpoint to its socket or https:// URL"
        ) from None


def read_instance(name: str, endpoint: str | None) -> Instance:
    """The pylxd Instance name; LxdError naming lxc_instance when it does not exist."""
    from pylxd.exceptions import NotFound

    client = lxd_client(endpoint)
    try:
        instance: Instance = client.instances.get(name)
    except NotFound:
        names = sorted(i.name for i in client.instances.all())
        raise LxdError(
            f"LXD/Incus instance {name!r} does not exist at {where(endpoint)}: create it"
            f" (`lxc init <image> {name}`) or set lxc_instance to one of {names or 'none yet'}"
        ) from None
    return instance


def runs_here(target: Any) -> bool:
    """Whether pyinfra's host target is the machine running pyinfra (@local): then pylxd's
    default, this machine's socket, is that host's LXD."""
    return issubclass(target.connector_cls, LocalConnector)


def lxd_refusal(name: str, endpoint: str | None, pyinfra_is_local: bool) -> str | None:
    """Why the deploy must stop before any change (None: go on): pylxd would talk to the
    wrong LXD, LXD is unreachable, or the instance does not exist."""
    if not pyinfra_is_local and endpoint is None:
        return (
            "lxc_platform='lxd' reaches LXD through pylxd from the machine running pyinfra:"
            " run this host as @local on the LXD host, or set lxc_lxd_endpoint (its https://"
            " URL, with a trusted client certificate in ~/.config/lxc/)"
        )
    try:
        found = read_instance(name, endpoint)
    except LxdError as exc:
        return str(exc)
    kind = getattr(found, "type", "container")
    if kind != "container":
        # LXD docs, instance options: nvidia.runtime has "Condition: container".
        return (
            f"LXD/Incus instance {name!r} is a {kind}: the lxc topology's nvidia.runtime is for"
            " containers; set lxc_instance to a container (`lxc init <image> NAME`)"
        )
    return None


def _apply(name: str, gpus: Literal["all"] | Sequence[str], endpoint: str | None) -> None:
    from pylxd.exceptions import LXDAPIException

    instance = read_instance(name, endpoint)
    running = instance.status == "Running"
    try:
        apply_gpu(instance, gpu_devices(gpus))
    except LXDAPIException as exc:
        fix = f": {NVIDIA_TOOLS_FIX}" if "NVIDIA" in str(exc) else ""
        raise OperationError(f"LXD/Incus refused the GPU config of {name}: {exc}{fix}") from None
    state = "restarted" if running else "stopped, applies at its next start"
    logger.info(f"{host.print_prefix}  LXD/Incus instance {name}: GPU set ({state})")


@operation()
def instance_gpu(
    instance: str, gpus: Literal["all"] | Sequence[str] = "all", endpoint: str | None = None
):  # type: ignore[no-untyped-def]
    """Give an LXD/Incus instance the GPU devices and nvidia.runtime; save, and restart it
    when running, only when they differ. Its other devices and config keys are kept.

    + instance: the instance's name
    + gpus: "all", or DRM card ids / PCI addresses
    + endpoint: LXD's unix socket path or https:// URL; None: this machine's socket

    Fails before any change to the instance when pyinfra's host (the LXD host) lacks
    /dev/nvidiaN, /dev/nvidiactl, /dev/nvidia-uvm or nvidia-uvm's major: LXD would start it
    without them (the nvidia-uvm-init unit, run before this, makes them).

    .. code:: python

        instance_gpu(name="GPU into ollama", instance="ollama", gpus="all")
    """
    try:
        check_host_nodes(
            host.get_fact(NvidiaDeviceNodes)["devices"], host.get_fact(ProcDevices)["majors"]
        )
    except LxcPlanError as exc:
        # A failing command, not an exception: this runs after the unit (at execution), where
        # pyinfra prints an exception with a traceback; the instance is not touched.
        yield fail_command(f"LXD/Incus instance {instance}: {exc}")
        return
    try:
        found = read_instance(instance, endpoint)
    except LxdError as exc:
        raise OperationError(str(exc)) from None
    changes = gpu_changes(found, gpu_devices(gpus))
    if not changes:
        host.noop(f"LXD/Incus instance {instance} already has its GPU and nvidia.runtime")
        return
    yield FunctionCommand(_apply, (instance, gpus, endpoint), {})
