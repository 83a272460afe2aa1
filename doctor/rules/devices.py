"""Can the process that runs Ollama reach the GPU: Docker runtime and device request, the
/dev/nvidia* nodes (nvidia-uvm above all), Proxmox LXC bind-mounts and cgroup rules.

Relied on: FACTS.md 6 (nvidia-ctk runtime configure; --gpus all is a device request) and
FACTS.md 7 (/dev/nvidia-uvm exists only after `nvidia-modprobe -u -c=0` or a first CUDA call;
its major is dynamic, read from /proc/devices; the LXC mount and cgroup lines).
"""

from __future__ import annotations

import re
from typing import Any

from doctor.captures import Captures
from doctor.findings import Finding
from doctor.view import server_sees_no_gpu

_NODE = re.compile(r"/dev/nvidia(?:\d+|ctl)")  # major 195 (FACTS.md 7)
_CONTAINER_NO_GPU = ("not-found", "no-driver", "no-devices")
_DOCKER_GPU_FIX = (
    "Recreate the container with the GPU: `docker run --gpus=all ...` (Compose:"
    " deploy.resources.reservations.devices with driver nvidia, count all, capabilities [gpu]),"
    ' or make nvidia the default runtime ("default-runtime": "nvidia" in /etc/docker/daemon.json).'
)
_UVM_FIX = (
    "On the host, create /dev/nvidia-uvm at every boot with `nvidia-modprobe -u -c=0` (e.g. a"
    " oneshot systemd unit), then pass it to the container: LXC `lxc.mount.entry:"
    " /dev/nvidia-uvm dev/nvidia-uvm none bind,optional,create=file` and `lxc.cgroup2.devices"
    ".allow: c <nvidia-uvm major from /proc/devices>:* rwm`; Docker `--gpus=all`. Restart Ollama."
)


def _inside_container(c: Captures) -> list[str]:
    """Evidence that nvidia-smi inside the Ollama container finds no GPU."""
    inside = c.get("container-nvidia-smi")
    if inside and inside.get("error") in _CONTAINER_NO_GPU:
        quote = c.quote("container-nvidia-smi", str(inside.get("message") or ""))
        return [quote] if quote else []
    return []


def docker_gpu(c: Captures) -> list[Finding]:
    """Docker without the NVIDIA runtime, or an Ollama container started without a GPU."""
    info = c.get("docker-info")
    inside = _inside_container(c)
    no_gpu = inside + server_sees_no_gpu(c)
    if info is None or info.get("error"):
        return [_no_gpu_in_container("container-without-gpu", no_gpu)] if inside else []
    default = info.get("default_runtime") or "?"
    runtimes = f"docker-info: runtimes {', '.join(info['runtimes']) or 'none'} (default {default})"
    if info["nvidia_runtime"] or info.get("cdi_devices"):
        return [_no_gpu_in_container("container-without-gpu-request", no_gpu)] if no_gpu else []
    # Docker may be there for other things: an error only when Ollama's container is there
    # (its nvidia-smi was captured) or the server shows it found no GPU.
    severity = "error" if c.items.get("container-nvidia-smi") or no_gpu else "warning"
    daemon = c.get("daemon-json")
    if daemon and daemon.get("nvidia_runtime"):
        return [
            Finding(
                "docker-runtime-not-loaded",
                "daemon.json configures the nvidia runtime, but the running Docker daemon does"
                " not list it: dockerd was not restarted (or failed to read the file), so an"
                " Ollama container cannot get the GPU.",
                "Restart Docker (`systemctl restart docker`), check that `docker info | grep -i"
                " runtime` lists nvidia, then restart the Ollama container.",
                tuple(x for x in (runtimes, c.quote("daemon-json", "nvidia")) if x),
                severity,
            )
        ]
    return [
        Finding(
            "docker-no-nvidia-runtime",
            "Docker has no NVIDIA runtime, so no container can get the GPU: Ollama in Docker"
            " runs on the CPU.",
            "Install nvidia-container-toolkit, run `nvidia-ctk runtime configure"
            " --runtime=docker`, restart Docker, then start Ollama with `--gpus=all`"
            " (FACTS.md 6).",
            tuple(x for x in [runtimes, *no_gpu] if x),
            severity,
        )
    ]


def _no_gpu_in_container(code: str, evidence: list[str]) -> Finding:
    known = code == "container-without-gpu-request"
    runtime = "The NVIDIA runtime is there, but the" if known else "The"
    fix = _DOCKER_GPU_FIX
    if not known:
        fix = "Make sure `docker info` lists the nvidia runtime (nvidia-container-toolkit). " + fix
    return Finding(
        code,
        f"{runtime} Ollama container was started without a GPU (no --gpus / device request),"
        " so inside it there is no GPU and Ollama uses the CPU.",
        fix,
        tuple(evidence),
    )


def _uvm_evidence(c: Captures) -> list[str]:
    dev = c.get("dev-nvidia")
    proc = c.get("proc-devices")
    evidence = []
    if dev and dev.get("devices") and not dev.get("has_uvm"):
        names = ", ".join(sorted(dev["devices"]))
        evidence.append(f"dev-nvidia: {names}; no nvidia-uvm")
    if proc and proc.get("nvidia_major") and not proc.get("uvm_major"):
        evidence.append("proc-devices: nvidia is registered, nvidia-uvm is not (module not loaded)")
    return evidence


def nvidia_uvm(c: Captures) -> list[Finding]:
    """/dev/nvidia-uvm missing where Ollama runs, or the uvm module not loaded on the host."""
    evidence = _uvm_evidence(c)
    if not evidence:
        return []
    return [
        Finding(
            "missing-nvidia-uvm",
            "/dev/nvidia-uvm is missing, and CUDA cannot start without it, so Ollama falls"
            " back to the CPU although the GPU and driver are there.",
            _UVM_FIX,
            tuple(evidence),
        )
    ]


def no_device_nodes(c: Captures) -> list[Finding]:
    """No /dev/nvidia* at all where Ollama runs (a container without the GPU passed in)."""
    dev = c.get("dev-nvidia")
    if not dev or dev.get("error") != "no-device-nodes":
        return []
    return [
        Finding(
            "no-device-nodes",
            "There are no /dev/nvidia* device nodes where Ollama runs, so it cannot reach a GPU.",
            "Pass the GPU in: LXC bind-mounts of /dev/nvidia0, /dev/nvidiactl, /dev/nvidia-uvm"
            " (FACTS.md 7); Docker `--gpus=all`; a VM needs the GPU passed through and the"
            " driver installed inside it.",
            tuple(x for x in (c.quote("dev-nvidia", "cannot access"),) if x),
        )
    ]


def _allowed(rules: list[dict[str, Any]], major: int) -> bool:
    return any(
        rule.get("type") in ("c", "a") and rule.get("major") in (major, "*") for rule in rules
    )


def _passed(conf: dict[str, Any], node: str) -> tuple[bool, bool]:
    """(bind-mounted, passed as a devN entry) for /dev/<node>."""
    mounted = any(m.get("source") == f"/dev/{node}" for m in conf.get("mount_entries") or [])
    dev = any(d.get("path") == f"/dev/{node}" for d in conf.get("dev_entries") or [])
    return mounted, dev


def _stale(allow: list[dict[str, Any]], proc: dict[str, Any]) -> list[str]:
    """Allowed character majors that no device holds now (an old nvidia-uvm major, say)."""
    held = set((proc.get("majors") or {}).values())
    return [
        str(r["major"])
        for r in allow
        if r.get("type") == "c" and isinstance(r.get("major"), int) and r["major"] not in held
    ]


def _container_conf(c: Captures) -> tuple[dict[str, Any], str, str, str] | None:
    """The container config that passes NVIDIA nodes by hand: (parsed, KIND, where it lives,
    key separator). Proxmox's config; or an LXD/Incus raw.lxc that bind-mounts /dev/nvidia* (a
    `gpu` device instead gets its cgroup rules from LXD itself)."""
    pve = c.get("pve-lxc-conf")
    if pve:
        return pve, "pve-lxc-conf", "/etc/pve/lxc/<id>.conf", ": "
    lxd = c.get("lxd-config") or {}
    raw = lxd.get("raw_lxc") or {}
    by_hand = any(
        str(m.get("source", "")).startswith("/dev/nvidia") for m in raw.get("mount_entries") or []
    )
    if by_hand and not lxd.get("gpu_devices"):
        return raw, "lxd-config", "raw.lxc (`lxc config edit <instance>`)", " = "
    return None


def lxc_config(c: Captures) -> list[Finding]:
    """LXC (Proxmox, or raw.lxc on LXD): nvidia-uvm not passed in, or a bind-mounted node's
    major not allowed by the cgroup rules."""
    found = _container_conf(c)
    if not found:
        return []
    conf, kind, where, sep = found
    proc = c.get("proc-devices") or {}
    mounted, as_dev = _passed(conf, "nvidia-uvm")
    uvm = proc.get("uvm_major")
    allow = conf.get("cgroup_allow") or []
    if not (mounted or as_dev):
        dev = " (or `devN: /dev/nvidia-uvm`)" if kind == "pve-lxc-conf" else ""
        return [
            Finding(
                "lxc-uvm-not-passed",
                "The container config does not pass /dev/nvidia-uvm in, so CUDA inside it"
                " cannot start.",
                f"Add `lxc.mount.entry{sep}/dev/nvidia-uvm dev/nvidia-uvm none"
                f" bind,optional,create=file`{dev} to {where} and restart the container.",
                (f"{kind}: no lxc.mount.entry or devN for /dev/nvidia-uvm",),
            )
        ]
    majors = ", ".join(str(r.get("major")) for r in allow if "major" in r) or "none"
    # Only a whole /proc/devices (with its block section) shows that no device has a major.
    stale = _stale(allow, proc) if proc.get("block_majors") else []
    old = f" ({', '.join(stale)}: no device has that major now)" if stale else ""
    allow_key = f"lxc.cgroup2.devices.allow{sep}"
    if mounted and not as_dev and uvm and not _allowed(allow, uvm):
        return [
            Finding(
                "lxc-uvm-major-not-allowed",
                f"nvidia-uvm has major {uvm} on this host, but the container's cgroup rules"
                f" allow only majors {majors}: opening /dev/nvidia-uvm is refused.",
                f"Add `{allow_key}c {uvm}:* rwm` to {where}"
                + (" in place of " + ", ".join(f"`c {m}:* rwm`" for m in stale) if stale else "")
                + " (the major can change after a driver update: read it from /proc/devices),"
                " then restart the container.",
                (f"proc-devices: {uvm} nvidia-uvm", f"{kind}: allowed majors {majors}{old}"),
            )
        ]
    nvidia = proc.get("nvidia_major")
    gpus = [m for m in conf.get("mount_entries") or [] if _NODE.fullmatch(m.get("source", ""))]
    if gpus and nvidia and not _allowed(allow, nvidia):
        return [
            Finding(
                "lxc-nvidia-major-not-allowed",
                f"/dev/nvidia0..N and /dev/nvidiactl have major {nvidia} on this host, but the"
                f" container's cgroup rules allow only majors {majors}: opening them is refused.",
                f"Add `{allow_key}c {nvidia}:* rwm` to {where} and restart the container.",
                (f"proc-devices: {nvidia} nvidia", f"{kind}: allowed majors {majors}{old}"),
            )
        ]
    return []
