"""Operations of the LXC topology, Proxmox side: the GPU lines in a container's config, and
the optional `pct create`."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from io import StringIO
from typing import Literal

from pyinfra import host
from pyinfra.api import FileUploadCommand, operation
from pyinfra.api.exceptions import OperationError

from facts.lxc import (
    NvidiaDeviceNodes,
    PctStatus,
    ProcDevices,
    PveVersion,
    TextFile,
    pve_config_path,
)
from facts.parsers.lxc import parse_pve_lxc_conf
from roles.commands import fail_command
from roles.lxc.plan import (
    DeviceStyle,
    LxcPlanError,
    check_host_nodes,
    device_style,
    managed_lines,
    merge_config,
    wanted_lines,
    wanted_nodes,
)

STATE_DIR = "/etc/ollama-rig/lxc"  # node-local: the lines written last time, per container


def state_path(vmid: int) -> str:
    return f"{STATE_DIR}/{int(vmid)}.lines"


@operation()
def proxmox_container_devices(
    vmid: int,
    style: DeviceStyle = "auto",
    gpus: Literal["all"] | Sequence[str] = "all",
    mig: bool = False,
    gid: int | None = None,
):
    """
    Pass the host's NVIDIA GPU into Proxmox container vmid; reboot it only when that changed.

    + vmid: the container id
    + style: "mount" (cgroup rules + lxc.mount.entry), "dev" (devN, Proxmox VE 8.1+), "auto"
    + gpus: "all" or GPU indexes (["0"]) as /dev/nvidiaN numbers them
    + mig: also pass /dev/nvidia-caps (MIG)
    + gid: group id set on devN nodes (style "dev"); None leaves the host's

    The uvm major comes from /proc/devices. Every other line of the config, its comments and
    snapshot sections are kept; a missing container, missing device nodes or a locked config
    stop the host before anything changes. A running container gets `pct reboot` (a clean
    shutdown and start, which applies the new config); a stopped one is left stopped.

    .. code:: python

        proxmox_container_devices(name="GPU into CT 101", vmid=101)
    """
    path = pve_config_path(vmid)
    status = host.get_fact(PctStatus, vmid=vmid)
    text = host.get_fact(TextFile, path=path)
    # What this run makes before it (the container by pct create, the nodes by the
    # nvidia-uvm-init unit) fails as a command, not an exception: pyinfra runs this when
    # preparing too (without -y), before those exist.
    if status is None or text is None:
        yield fail_command(
            f"container {vmid} does not exist on this Proxmox node (no {path}): create it"
            " (lxc_create_template) or set lxc_vmid to an existing container"
        )
        return
    conf = parse_pve_lxc_conf(text)
    lock = next((e["value"] for e in conf["entries"] if e.get("key") == "lock"), None)
    if lock:
        raise OperationError(
            f"container {vmid} is locked ({lock}): wait for the backup/migration to end, or"
            f" `pct unlock {vmid}` if it is stale, then run again"
        )
    majors = host.get_fact(ProcDevices)["majors"]
    nodes = host.get_fact(NvidiaDeviceNodes)
    try:
        check_host_nodes(nodes["devices"], majors)
    except LxcPlanError as exc:
        yield fail_command(f"container {vmid}: {exc}")
        return
    previous_text = host.get_fact(TextFile, path=state_path(vmid)) or ""
    try:
        version = host.get_fact(PveVersion)["version"]
        chosen = device_style(style, (version[0], version[1]) if version else None)
        wanted = wanted_lines(
            wanted_nodes(nodes["devices"], gpus, chosen), majors, chosen, mig=mig, gid=gid
        )
        merged = merge_config(text, wanted, majors, previous_text.splitlines())
    except LxcPlanError as exc:
        raise OperationError(f"container {vmid}: {exc}") from exc
    state = "".join(f"{line}\n" for line in managed_lines(merged, wanted))

    if merged == text and state == previous_text:
        host.noop(f"container {vmid} already gets the GPU ({chosen} style)")
        return
    if merged != text:
        # Stage beside the config and rename, as Proxmox itself writes into pmxcfs.
        staged = f"{path}.tmp.ollama-rig"
        yield FileUploadCommand(StringIO(merged), staged)
        yield f"mv -f {shlex.quote(staged)} {shlex.quote(path)}"
    if state != previous_text:
        q_state = shlex.quote(state_path(vmid))
        yield f"mkdir -p {STATE_DIR}"
        yield FileUploadCommand(StringIO(state), state_path(vmid) + ".tmp")
        yield f"chmod 0644 {q_state}.tmp && mv -f {q_state}.tmp {q_state}"
    if merged != text and status == "running":
        yield f"pct reboot {int(vmid)}"


@operation()
def proxmox_create_container(vmid: int, template: str, options: dict[str, str]):
    """
    Create Proxmox container vmid from a template the user names, unless it exists.

    + vmid: the container id
    + template: the template volume, e.g. "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"
    + options: further `pct create` options without the dashes ({"hostname": "ollama", ...})

    An existing container is never changed here (its GPU lines: proxmox_container_devices).
    """
    if host.get_fact(PctStatus, vmid=vmid) is not None:
        host.noop(f"container {vmid} exists")
        return
    args = " ".join(f"--{k} {shlex.quote(str(v))}" for k, v in sorted(options.items()))
    yield f"pct create {int(vmid)} {shlex.quote(template)} {args}".rstrip()
