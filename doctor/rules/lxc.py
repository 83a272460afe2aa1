"""The LXC container: a driver of the host's exact version, and device nodes it may open.

Relied on (FACTS.md 7): a container shares the host's kernel module (/proc/driver/nvidia/version
is the host's), so its NVIDIA user-space libraries must be that exact version, or NVML and CUDA
refuse ("Driver/library version mismatch"). Bind-mounted nodes keep the host's owner and mode;
in an unprivileged container the host's root shows as nobody:nogroup (ids outside the idmap),
so only the "other" bits count there (the NVIDIA default is 0666; `NVreg_DeviceFileMode`
changes it). Proxmox devN entries create the node inside with the uid, gid and mode given
(pve-devel "Add a dev[n] argument to the container config", roles/lxc/plan.py). Ollama's
install.sh runs the server as user `ollama` in the groups video and render (FACTS.md 5).
"""

from __future__ import annotations

from doctor.captures import Captures
from doctor.findings import Finding
from doctor.view import server_sees_no_gpu

# Nodes CUDA opens: /dev/nvidiaN, /dev/nvidiactl, /dev/nvidia-uvm.
_CUDA_NODES = ("nvidiactl", "nvidia-uvm")
# How ls shows ids outside an unprivileged container's idmap (the kernel's overflow id 65534).
_UNMAPPED = {"nobody", "nogroup", "65534"}
# Groups Ollama's install.sh adds the `ollama` user to.
_OLLAMA_GROUPS = {"video", "render"}
# nvidia-smi's NVML message when /dev/nvidiactl or /dev/nvidiaN cannot be opened
# (NVIDIA/nvidia-container-toolkit#210, nvidia-docker#284).
_NVML_DENIED = "Insufficient Permissions"


def _host_module(c: Captures) -> str | None:
    return (c.get("nvidia-version") or {}).get("version")


def driver_version_mismatch(c: Captures) -> list[Finding]:
    """The user-space libraries here are not the loaded kernel module's version."""
    module = _host_module(c)
    libs = c.get("nvidia-libs")
    if not module or libs is None:
        return []
    versions = list(libs["versions"])
    smi = c.get("nvidia-smi") or {}
    said = c.quote("nvidia-smi", "mismatch") if smi.get("error") == "version-mismatch" else None
    evidence = [
        x
        for x in (
            c.quote("nvidia-version", "Kernel Module"),
            f"nvidia-libs: libnvidia-ml.so.{', libnvidia-ml.so.'.join(versions)}"
            if versions
            else None,
            said,
        )
        if x
    ]
    install = (
        f"install the user-space libraries of exactly {module}:"
        f" `NVIDIA-Linux-x86_64-{module}.run --no-kernel-module` (ollama-rig: lxc_guest = True"
        " with lxc_driver_run_sha256 set does it)"
    )
    if not versions:
        if smi.get("error") not in ("not-found", "no-nvml-library"):
            return []
        return [
            Finding(
                "driver-libraries-missing",
                f"The NVIDIA kernel module {module} is loaded (this is a container sharing the"
                " host's, or a host without the user-space driver), but no NVIDIA user-space"
                " libraries are installed here, so CUDA cannot start and Ollama uses the CPU.",
                f"In an LXC container: {install}; LXD/Incus: or `lxc config set <instance>"
                " nvidia.runtime true`, which mounts the host's libraries in. On a host: install"
                f" the full driver package of version {module}.",
                tuple([*evidence, "nvidia-libs: no libnvidia-ml.so.<version>"]),
            )
        ]
    if versions == [module]:  # the rule of roles/lxc/driver.py libraries_needed
        return []
    return [
        Finding(
            "driver-version-mismatch",
            f"The loaded NVIDIA kernel module is {module} but the user-space libraries here are"
            f" {', '.join(versions)}: NVML and CUDA refuse to work across versions, so Ollama"
            " uses the CPU.",
            f"In an LXC container: remove the container's NVIDIA packages (or run"
            f" `nvidia-uninstall`), then {install}; or update the host driver to"
            f" {versions[-1]}. On a host after a driver update: reboot to load the new module.",
            tuple(evidence),
        )
    ]


def _blocked(c: Captures) -> list[str]:
    """`ls -l` lines of CUDA nodes the `ollama` user may not open (mode, owner:group)."""
    dev = c.get("dev-nvidia") or {}
    access = dev.get("access") or {}
    names = [*dev.get("gpus", []), *_CUDA_NODES]
    lines = []
    for name in names:
        node = access.get(name)
        if not node or node["mode"][7:9] == "rw":
            continue  # others may read and write: anyone can open it
        if node["group"] in _OLLAMA_GROUPS and node["mode"][4:6] == "rw":
            continue
        lines.append(f"{node['mode']} {node['owner']}:{node['group']} /dev/{name}")
    return lines


def _unprivileged(c: Captures) -> bool:
    conf = c.get("pve-lxc-conf") or {}
    return any(
        e.get("key") == "unprivileged" and e.get("value") == "1" for e in conf.get("entries", [])
    )


def _denied(c: Captures) -> list[str]:
    """nvidia-smi's "Insufficient Permissions", or a server log line denied a /dev/nvidia node."""
    found = [c.quote("nvidia-smi", _NVML_DENIED)]
    log = c.items.get("journal")
    if log and log.parsed is not None:
        found += [
            f"journal: {' '.join(line.split())[:240]}"
            for line in log.text.splitlines()
            if "/dev/nvidia" in line and "ermission denied" in line
        ][-1:]
    return [line for line in found if line]


def unprivileged_permissions(c: Captures) -> list[Finding]:
    """CUDA device nodes are there but the server's user may not open them."""
    blocked = _blocked(c)
    denied = _denied(c)
    if not blocked and not denied:
        return []
    # owner:group seen through the idmap
    unmapped = any(set(line.split()[1].split(":")) & _UNMAPPED for line in blocked)
    unprivileged = _unprivileged(c)
    evidence = [f"dev-nvidia: {line}" for line in blocked] + denied
    mode_option = c.quote("modprobe", "NVreg_DeviceFile")
    if mode_option:
        evidence.append(mode_option)
    if unprivileged:
        evidence.append("pve-lxc-conf: unprivileged: 1")
    severity = "error" if unmapped or unprivileged or denied else "warning"
    if unmapped or unprivileged:
        where = (
            "the unprivileged container maps the host's owner and group to nobody:nogroup, so"
            ' only the nodes\' "other" bits count, and they do not allow read and write'
        )
    elif blocked:
        where = (
            "they are not open to others, and the server runs as user `ollama` (groups video,"
            " render)"
        )
    else:
        where = "the driver refuses this user (capture dev-nvidia to see the nodes' modes)"
    return [
        Finding(
            "device-permission-denied",
            f"The NVIDIA device nodes are there but cannot be opened: {where}. CUDA then finds"
            " no GPU and Ollama uses the CPU.",
            "On the host, one of: pass the nodes as Proxmox devN entries, which are created"
            " inside the container with the group and mode given (`dev0: /dev/nvidia0,gid=<gid"
            " of video in the container>,mode=0666`; ollama-rig: lxc_device_style = 'dev' and"
            " lxc_dev_gid); give the host nodes the NVIDIA default mode 0666 (drop"
            " `NVreg_DeviceFileMode`/`NVreg_DeviceFileGID` from /etc/modprobe.d and reload the"
            ' driver, or a udev rule MODE="0666"); or map the host group into the container'
            " (lxc.idmap lines and `root:<gid>:1` in /etc/subgid). Then restart the container.",
            tuple(evidence),
            severity,
        )
    ]


def lxd_gpu_device(c: Captures) -> list[Finding]:
    """An LXD/Incus instance without a `gpu` device (nor NVIDIA nodes passed by hand)."""
    lxd = c.get("lxd-config")
    if lxd is None or lxd["gpu_devices"]:
        return []
    raw = lxd.get("raw_lxc") or {}
    by_hand = [
        m
        for m in raw.get("mount_entries") or []
        if str(m.get("source", "")).startswith("/dev/nvidia")
    ]
    nodes = [p for p in lxd["unix_char"] if p.startswith("/dev/nvidia")]
    if by_hand:
        return []  # passed by hand: devices.lxc_config checks those lines
    dev = c.get("dev-nvidia") or {}
    smi = c.get("nvidia-smi") or {}
    no_gpu = (
        dev.get("error") == "no-device-nodes"
        or (dev and not dev.get("gpus"))
        or smi.get("error") in ("no-devices", "no-driver")
        or bool(server_sees_no_gpu(c))
    )
    evidence = ["lxd-config: no device of type gpu"]
    if nodes:
        evidence.append(f"lxd-config: unix-char {', '.join(nodes)} only")
    if lxd["privileged"]:
        evidence.append('lxd-config: security.privileged: "true"')
    return [
        Finding(
            "lxd-no-gpu-device",
            "The LXD/Incus instance has no `gpu` device, so LXD does not pass the GPU's"
            " /dev/nvidia* nodes into it and Ollama there finds no GPU.",
            "`lxc config device add <instance> gpu gpu` (all GPUs; `id=` or `pci=` for one) and"
            " `lxc config set <instance> nvidia.runtime true`, then `lxc restart <instance>`"
            " (ollama-rig: lxc_platform = 'lxd' with lxc_instance does both).",
            tuple(evidence),
            "error" if no_gpu else "warning",
        )
    ]
