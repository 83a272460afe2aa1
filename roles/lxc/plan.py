"""Pure decisions of the LXC topology (Proxmox side): which config lines pass the NVIDIA GPU
into a container, and how they are merged into /etc/pve/lxc/<id>.conf.

Upstream behaviour relied on (FACTS.md 7):
- `c 195:* rwm` covers /dev/nvidia0..N and /dev/nvidiactl (major 195, NVIDIA's fixed major);
  nvidia-uvm (and nvidia-caps) get dynamic majors: read from /proc/devices, never hard-coded.
- `lxc.mount.entry: /dev/X dev/X none bind,optional,create=file` bind-mounts a node; "optional"
  lets the container start when the node is missing.
- `devN: <path>[,gid=N]` passthrough exists since Proxmox VE 8.1 (CLI/API; GUI in 8.2): the
  pve-devel patch "Add a dev[n] argument to the container config"
  (https://www.mail-archive.com/pve-devel@lists.proxmox.com/msg15649.html), and
  https://github.com/bpg/terraform-provider-proxmox/issues/1530 ("API and CLI already supported
  device passthrough since Proxmox VE 8.1"). pve-container then adds the cgroup rule for the
  node itself, and refuses to start the container when the node does not exist.
- LXC takes no "#" comment after a value; "#" lines in the main section are Proxmox's
  description, "[name]" starts a snapshot or the pending section (pve-container
  src/PVE/LXC/Config.pm parse_pct_config).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from facts.parsers import ParseError
from facts.parsers.lxc import parse_pve_lxc_conf

NVIDIA_MAJOR = 195  # nvidia0..N and nvidiactl: fixed by the driver (FACTS.md 7)
DEV_STYLE_SINCE = (8, 1)  # Proxmox VE version with devN passthrough (sources in the docstring)
ALLOW_KEYS = ("lxc.cgroup2.devices.allow", "lxc.cgroup.devices.allow")
# /proc/devices names whose majors belong to the NVIDIA driver (>= 550 and older names).
NVIDIA_DEVICE_NAMES = (
    "nvidia",
    "nvidiactl",
    "nvidia-frontend",
    "nvidia-uvm",
    "nvidia-caps",
    "nvidia-nvlink",
    "nvidia-nvswitch",
    "nvidia-caps-imex-channels",
)
_DEV_KEY = re.compile(r"^dev(\d+)$")

DeviceStyle = Literal["auto", "mount", "dev"]


class LxcPlanError(ValueError):
    """The host cannot give the container its GPU as asked; the message says why and the fix."""


@dataclass(frozen=True)
class ConfigLine:
    """One `key: value` line of /etc/pve/lxc/<id>.conf."""

    key: str
    value: str

    def render(self) -> str:
        return f"{self.key}: {self.value}"


def device_style(setting: DeviceStyle, pve_version: tuple[int, int] | None) -> str:
    """ "mount" or "dev": "auto" picks devN entries on Proxmox VE 8.1+, bind-mounts before."""
    if setting != "auto":
        if setting == "dev" and pve_version is not None and pve_version < DEV_STYLE_SINCE:
            have = ".".join(map(str, pve_version))
            raise LxcPlanError(
                f"lxc_device_style='dev' needs Proxmox VE 8.1 or newer, this node runs {have}:"
                " set lxc_device_style to 'mount' or 'auto'"
            )
        return setting
    return "dev" if pve_version is not None and pve_version >= DEV_STYLE_SINCE else "mount"


def wanted_nodes(
    devices: dict[str, dict[str, int]], gpus: Literal["all"] | Sequence[str], style: str
) -> list[str]:
    """The /dev names to pass in: nvidiaN (all or the chosen indexes), nvidiactl, nvidia-uvm,
    nvidia-uvm-tools. devices: `{"nvidia0": {"major", "minor"}, ...}` as `ls -l /dev/nvidia*`
    shows them (doctor.parsers.parse_dev_nvidia). Refuses when a node CUDA needs is missing."""
    present = sorted(
        (n for n in devices if re.fullmatch(r"nvidia\d+", n)), key=lambda n: int(n[6:])
    )
    if gpus == "all":
        chosen = present
    else:
        chosen = [f"nvidia{index}" for index in gpus]
        missing = [n for n in chosen if n not in devices]
        if missing:
            raise LxcPlanError(
                f"lxc_gpus asks for /dev/{', /dev/'.join(missing)}, which the host does not"
                f" have (it has: {', '.join(present) or 'no /dev/nvidiaN'})"
            )
    if not chosen:
        raise LxcPlanError(
            "the host has no /dev/nvidiaN device node: load the NVIDIA driver (nvidia-smi must"
            " work on the host) before passing the GPU to a container"
        )
    for needed in ("nvidiactl", "nvidia-uvm"):
        if needed not in devices:
            raise LxcPlanError(
                f"/dev/{needed} does not exist on the host: run `nvidia-modprobe -u -c=0` (the"
                " nvidia-uvm-init unit does it at boot), then run again"
            )
    tools = ["nvidia-uvm-tools"]
    if style == "dev" and "nvidia-uvm-tools" not in devices:
        tools = []  # Proxmox refuses to start a container whose devN node is missing
    return [*chosen, "nvidiactl", "nvidia-uvm", *tools]


def uvm_major(majors: dict[str, int]) -> int:
    """nvidia-uvm's major from /proc/devices (dynamic: never hard-coded). Refuses when the
    module is not loaded."""
    uvm = majors.get("nvidia-uvm")
    if uvm is None:
        raise LxcPlanError(
            "nvidia-uvm is not in the host's /proc/devices (module not loaded): run"
            " `nvidia-modprobe -u -c=0` on the host, then run again"
        )
    return uvm


def check_host_nodes(devices: dict[str, dict[str, int]], majors: dict[str, int]) -> None:
    """Refuses (LxcPlanError) a host without what CUDA in any container needs: a /dev/nvidiaN,
    /dev/nvidiactl, /dev/nvidia-uvm and nvidia-uvm's major. The same checks as wanted_nodes
    and wanted_lines make for Proxmox, for hosts (LXD/Incus) that write no lines."""
    wanted_nodes(devices, "all", "mount")
    uvm_major(majors)


def host_refusals(nvidia_modprobe: bool) -> list[str]:
    """What stops the host side (Proxmox or LXD/Incus) before any change, beyond preflight
    (which wants nvidia-smi working, so the driver loaded, on both): no nvidia-modprobe for the
    nvidia-uvm-init unit to run. The nodes it makes are checked after it ran
    (check_host_nodes, wanted_nodes)."""
    if nvidia_modprobe:
        return []
    return [
        "/usr/bin/nvidia-modprobe is missing on this host; the nvidia-uvm-init unit needs it to"
        " make /dev/nvidia-uvm: install it (Debian/Ubuntu package nvidia-modprobe; NVIDIA's .run"
        " installs it too), then run again"
    ]


def wanted_lines(
    nodes: Sequence[str],
    majors: dict[str, int],
    style: str,
    mig: bool = False,
    gid: int | None = None,
) -> list[ConfigLine]:
    """The config lines that pass `nodes` in, in the order they are written.

    majors: /proc/devices character majors (facts.parsers.kernel.parse_proc_devices "majors").
    style "mount": cgroup rules for 195 and the uvm major + one bind-mount per node; style
    "dev": one devN line per node (keys numbered later, by merge_config). mig: also the
    /dev/nvidia-caps directory and its major, as a bind-mount in either style (devN takes
    device nodes, not directories).
    """
    uvm = uvm_major(majors)
    lines: list[ConfigLine] = []
    if style == "mount":
        lines += [
            ConfigLine(ALLOW_KEYS[0], f"c {NVIDIA_MAJOR}:* rwm"),
            ConfigLine(ALLOW_KEYS[0], f"c {uvm}:* rwm"),
        ]
    if mig:
        caps = majors.get("nvidia-caps")
        if caps is None:
            raise LxcPlanError(
                "lxc_mig is set but nvidia-caps is not in the host's /proc/devices: enable MIG"
                " on the host (nvidia-smi -mig 1) or set lxc_mig to False"
            )
        lines.append(ConfigLine(ALLOW_KEYS[0], f"c {caps}:* rwm"))
    if style == "mount":
        lines += [
            ConfigLine("lxc.mount.entry", f"/dev/{n} dev/{n} none bind,optional,create=file")
            for n in nodes
        ]
    else:
        suffix = f",gid={gid}" if gid is not None else ""
        lines += [ConfigLine("dev", f"/dev/{n}{suffix}") for n in nodes]
    if mig:
        lines.append(
            ConfigLine(
                "lxc.mount.entry", "/dev/nvidia-caps dev/nvidia-caps none bind,optional,create=dir"
            )
        )
    for line in lines:
        if "#" in line.value:  # LXC reads a "#" after a value as part of it (FACTS.md 7)
            raise LxcPlanError(f"refusing to write '#' into a config value: {line.render()}")
    return lines


def _nvidia_majors(majors: dict[str, int]) -> set[int]:
    return {NVIDIA_MAJOR} | {majors[n] for n in NVIDIA_DEVICE_NAMES if n in majors}


def _is_managed(raw: str, nvidia_majors: set[int], previous: set[str]) -> bool:
    """A main-section line that passes NVIDIA devices in: ours to replace.

    Besides what ollama-rig wrote last time (previous), that is any bind-mount from or onto
    /dev/nvidia*, any devN of /dev/nvidia*, and any cgroup rule for a major the NVIDIA driver
    holds now. A rule for a major nobody holds any more (an old uvm major) is only recognised
    through previous: it could belong to another device whose module is not loaded.
    """
    line = raw.strip()
    if line in previous:
        return True
    if not line or line.startswith("#"):
        return False
    entry = parse_pve_lxc_conf(line)
    if entry["mount_entries"]:
        mount = entry["mount_entries"][0]
        source, target = mount.get("source", ""), mount.get("target", "").lstrip("/")
        return source.startswith("/dev/nvidia") or target.startswith("dev/nvidia")
    if entry["dev_entries"]:
        return bool(entry["dev_entries"][0]["path"].startswith("/dev/nvidia"))
    for rule in entry["cgroup_allow"]:
        if rule.get("type") == "c" and rule.get("major") in nvidia_majors:
            return True
    return False


def merge_config(
    text: str,
    wanted: Sequence[ConfigLine],
    majors: dict[str, int],
    previous: Sequence[str] = (),
) -> str:
    """The container config with exactly `wanted` as its NVIDIA lines.

    Only the main section changes: managed lines (see _is_managed) are dropped and `wanted`
    goes where the first of them was (else after the main section's last line). Every other
    line, comment, blank line and snapshot/pending section is kept byte for byte, so merging
    the result again gives the same text. devN keys are numbered from the lowest index no
    other devN line of the main section uses. previous: the lines written last time.
    """
    parse_pve_lxc_conf(text)  # refuses what Proxmox could not read, before any change
    lines = text.splitlines()
    end = next((i for i, raw in enumerate(lines) if raw.strip().startswith("[")), len(lines))
    main, rest = lines[:end], lines[end:]
    nvidia = _nvidia_majors(majors)
    prior = {line.strip() for line in previous}
    managed = [i for i, raw in enumerate(main) if _is_managed(raw, nvidia, prior)]
    kept = [raw for i, raw in enumerate(main) if i not in managed]
    used = {int(m.group(1)) for raw in kept if (m := _DEV_KEY.match(raw.split(":", 1)[0]))}
    rendered: list[str] = []
    index = 0
    for line in wanted:
        if line.key == "dev":
            while index in used:
                index += 1
            rendered.append(f"dev{index}: {line.value}")
            index += 1
        else:
            rendered.append(line.render())
    if managed:
        at = managed[0]  # where the first NVIDIA line was: nothing before it was dropped
    else:
        at = len(kept)
        while at > 0 and not kept[at - 1].strip():
            at -= 1  # before the blank line(s) that separate the snapshot sections
    merged = kept[:at] + rendered + kept[at:] + rest
    result = "\n".join(merged) + "\n"
    try:
        parse_pve_lxc_conf(result)
    except ParseError as exc:  # a bug here must never reach /etc/pve
        raise LxcPlanError(f"merged config would not parse: {exc}") from exc
    return result


def managed_lines(text: str, wanted: Sequence[ConfigLine]) -> list[str]:
    """The lines of a merged config that merge_config put there (kept as `previous`)."""
    values = {line.value for line in wanted}
    out = []
    for raw in text.splitlines():
        if raw.strip().startswith("["):
            break
        key, _, value = raw.partition(": ")
        if value in values and (key in (*ALLOW_KEYS, "lxc.mount.entry") or _DEV_KEY.match(key)):
            out.append(raw)
    return out


def proxmox_refusals(
    vmid: int, status: str | None, config: str | None, create_template: str | None
) -> list[str]:
    """What stops the Proxmox host side before any change (the operation checks again, with the
    device nodes the boot unit has made by then). status: `pct status`; config: the file."""
    if status is None or config is None:
        if create_template:
            return []  # created by this run, from the template
        return [
            f"container {vmid} does not exist on this Proxmox node (no /etc/pve/lxc/{vmid}.conf):"
            " create it (lxc_create_template) or set lxc_vmid to an existing container (pct list)"
        ]
    try:
        conf = parse_pve_lxc_conf(config)
    except ParseError as exc:
        return [f"/etc/pve/lxc/{vmid}.conf does not parse: {exc}"]
    lock = next((e["value"] for e in conf["entries"] if e.get("key") == "lock"), None)
    if lock:
        return [
            f"container {vmid} is locked ({lock}): wait for the backup/migration to end, or"
            f" `pct unlock {vmid}` if it is stale, then run again"
        ]
    return []
