"""Can the process that runs Ollama reach the GPU: Docker runtime and device request, the
/dev/nvidia* nodes (nvidia-uvm above all), Proxmox LXC bind-mounts and cgroup rules.

Relied on: FACTS.md 6 (nvidia-ctk runtime configure; --gpus all is a device request) and
FACTS.md 7 (/dev/nvidia-uvm exists only after `nvidia-modprobe -u -c=0` or a first CUDA call;
its major is dynamic, read from /proc/devices; the LXC mount and cgroup lines).
"""

from __future__ import annotations

from typing import Any

from doctor.captures import Captures
from doctor.findings import Finding
from doctor.view import server_sees_no_gpu

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


def lxc_config(c: Captures) -> list[Finding]:
    """Proxmox LXC: nvidia-uvm not passed in, or its dynamic major not allowed."""
    conf = c.get("pve-lxc-conf")
    proc = c.get("proc-devices") or {}
    if not conf:
        return []
    mounted, as_dev = _passed(conf, "nvidia-uvm")
    uvm = proc.get("uvm_major")
    allow = conf.get("cgroup_allow") or []
    if not (mounted or as_dev):
        return [
            Finding(
                "lxc-uvm-not-passed",
                "The container config does not pass /dev/nvidia-uvm in, so CUDA inside it"
                " cannot start.",
                "Add `lxc.mount.entry: /dev/nvidia-uvm dev/nvidia-uvm none"
                " bind,optional,create=file` (or `devN: /dev/nvidia-uvm`) to"
                " /etc/pve/lxc/<id>.conf and restart the container.",
                ("pve-lxc-conf: no lxc.mount.entry or devN for /dev/nvidia-uvm",),
            )
        ]
    if mounted and not as_dev and uvm and not _allowed(allow, uvm):
        majors = ", ".join(str(r.get("major")) for r in allow if "major" in r) or "none"
        return [
            Finding(
                "lxc-uvm-major-not-allowed",
                f"nvidia-uvm has major {uvm} on this host, but the container's cgroup rules"
                f" allow only majors {majors}: opening /dev/nvidia-uvm is refused.",
                f"Add `lxc.cgroup2.devices.allow: c {uvm}:* rwm` to /etc/pve/lxc/<id>.conf (the"
                " major can change after a driver update: read it from /proc/devices).",
                (f"proc-devices: {uvm} nvidia-uvm", f"pve-lxc-conf: allowed majors {majors}"),
            )
        ]
    return []
