"""Is there a usable GPU for this Ollama: driver, CPU features, Ollama and driver versions.

Requirements relied on (cite when changing):
- docs/gpu.mdx (ollama/ollama): "compute capability 5.0+ and driver version 550 and newer.
  Nvidia GPUs with compute capability 5.0 through 6.2 require driver version 570 or newer."
  550 since v0.30.11 (commit f22ec2ec4, PR #16895; 531 before, docs since v0.7.0); the 570 rule
  since v0.30.0 (commit 9db4bdbad, llama-server only). FACTS.md section 5.
- CC 12.x (RTX 50xx) kernels first in v0.5.13 (commit a14912858, PR #9426);
  CC 5.x first in v0.1.23 (commit a447a083f; v0.1.18-v0.1.22 required CC 6.0, ollama#1992).
- No AVX: v0.1.23-v0.5.7 disable or skip the GPU (FACTS.md 8; gpu/gpu.go commit 667a2ba18;
  issues #2187, #8606); a no-AVX VM not using its GPU was still reported in 2025 (#12194).
"""

from __future__ import annotations

from doctor.captures import Captures
from doctor.findings import Finding
from doctor.parsers import version_tuple
from doctor.view import Gpu, cc_tuple, gpus, ollama_version, server_sees_no_gpu
from roles.preflight.check import DRIVER_FIXES

VersionTuple = tuple[int, int, int]


def _sentence(text: str) -> str:
    """DRIVER_FIXES are clauses ("the driver ..."): capitalise the first letter only."""
    return text[:1].upper() + text[1:]


def _nvidia_on_pci(c: Captures) -> list[str] | None:
    """NVIDIA GPUs seen on the PCI bus as evidence lines; [] none seen; None: not captured."""
    lspci = c.get("lspci")
    sysfs = c.get("pci-sysfs")
    if lspci is None and sysfs is None:
        return None
    lines: list[str] = []
    for dev in (lspci or {}).get("devices") or []:
        if dev.get("nvidia") and str(dev.get("class_id", "")).startswith("03"):
            driver = f", driver {dev['driver']}" if dev.get("driver") else ", no driver bound"
            lines.append(f"lspci: {dev['address']} {dev['description']}{driver}")
    for fn in (sysfs or {}).get("functions") or []:
        if fn.get("gpu"):
            lines.append(f"pci-sysfs: {fn['address']} {fn['vendor_device']} (NVIDIA display)")
    return lines


def _no_device_nodes(c: Captures) -> bool:
    dev = c.get("dev-nvidia") or {}
    return dev.get("error") == "no-device-nodes"


def _missing_tool(c: Captures, quote: str | None) -> list[Finding]:
    pci = _nvidia_on_pci(c)
    evidence = [x for x in (quote, c.quote("dev-nvidia", "cannot access")) if x]
    if pci == [] or (pci is None and _no_device_nodes(c)):
        return [
            Finding(
                "no-nvidia-gpu",
                "No NVIDIA GPU on this machine: nvidia-smi is not installed and no NVIDIA"
                " GPU or device node is visible, so Ollama can only use the CPU.",
                "Run the doctor where the GPU is (the host, or the VM or container it is passed"
                " to); for a CPU-only install on purpose set gpu = 'none'.",
                tuple(evidence + ["pci: no NVIDIA display device"] if pci == [] else evidence),
            )
        ]
    if pci:
        fix = DRIVER_FIXES["not-found"]
        cause = f"An NVIDIA GPU is present but {fix}."
        return [Finding("no-driver", cause, _sentence(fix) + ".", tuple(evidence + pci))]
    return [
        Finding(
            "nvidia-smi-not-found",
            "nvidia-smi is not installed here: there is no NVIDIA driver, or no NVIDIA GPU.",
            "If the box has an NVIDIA GPU, install the driver (550+) and reboot; capture lspci"
            " (or pci-sysfs) too so the doctor can tell which.",
            tuple(evidence),
        )
    ]


def driver_problems(c: Captures) -> list[Finding]:
    """What nvidia-smi's failure says, on the host or inside the Ollama container.

    Inside a container only driver faults count here; a container with no GPU at all
    ("not found", "no driver") is the Docker rules' case (devices.docker_gpu).
    """
    found = _smi_failure(c, "nvidia-smi")
    inside = c.get("container-nvidia-smi") or {}
    if not found and inside.get("error") in ("version-mismatch", "nvml-unknown-error"):
        found = _smi_failure(c, "container-nvidia-smi")
    return found


def _smi_failure(c: Captures, kind: str) -> list[Finding]:
    smi = c.get(kind)
    if not smi or not smi.get("error"):
        return []
    error = smi["error"]
    quote = c.quote(kind, str(smi.get("message") or "NVIDIA"))
    evidence = [x for x in (quote,) if x]
    if error == "not-found":
        return _missing_tool(c, quote)
    if error == "version-mismatch":
        nvml = smi.get("nvml_library_version")
        lib = f" (user-space library {nvml})" if nvml else ""
        return [
            Finding(
                "driver-library-mismatch",
                f"The loaded NVIDIA kernel module and the user-space driver library{lib} have"
                " different versions, so CUDA cannot start and Ollama uses the CPU.",
                f"On a host: {DRIVER_FIXES['version-mismatch']}. In an LXC container: install"
                " the user-space libraries of exactly the host's driver version"
                " (NVIDIA-Linux-x86_64-<version>.run --no-kernel-module).",
                tuple(evidence),
            )
        ]
    if error == "nvml-unknown-error":
        cgroup = c.quote("docker-info", "Cgroup Driver")
        return [
            Finding(
                "gpu-lost-in-container",
                "The container lost its GPU (NVML: Unknown Error), the known fault after"
                " `systemctl daemon-reload` on a host using the systemd cgroup driver.",
                'Set "exec-opts": ["native.cgroupdriver=cgroupfs"] in /etc/docker/daemon.json,'
                " restart docker, then restart the Ollama container (FACTS.md 6;"
                " NVIDIA/nvidia-docker#1671).",
                tuple(evidence + ([cgroup] if cgroup else [])),
            )
        ]
    if error == "no-driver":
        pci = _nvidia_on_pci(c) or []
        bound = [line for line in pci if "driver vfio-pci" in line or "driver nouveau" in line]
        why = " (the GPU is bound to another driver)" if bound else ""
        return [
            Finding(
                "no-driver",
                f"The NVIDIA driver is not loaded{why}, so nvidia-smi and Ollama cannot use"
                " the GPU.",
                _sentence(DRIVER_FIXES["no-driver"])
                + (" (unbind it from vfio-pci or nouveau unless a VM needs it)" if bound else "")
                + ".",
                tuple(evidence + pci),
            )
        ]
    fix = DRIVER_FIXES.get(error, "install the NVIDIA driver (550+) and its user-space libraries")
    cause = f"nvidia-smi fails ({error}), so Ollama cannot use the GPU."
    return [Finding(f"nvidia-smi-{error}", cause, _sentence(fix) + ".", tuple(evidence))]


def cpu_without_avx(c: Captures) -> list[Finding]:
    """A CPU (usually a VM's default CPU model) without AVX."""
    cpu = c.get("cpuinfo")
    log = c.get("journal") or {}
    said = c.quote("journal", "CPU does not have") if log.get("no_avx") else None
    if not said and not (cpu and cpu["x86"] and not cpu["avx"]):
        return []
    evidence = [x for x in (said,) if x]
    if cpu and not cpu["avx"]:
        vm = ", a virtual machine (hypervisor flag)" if cpu["hypervisor"] else ""
        evidence.append(f"cpuinfo: {cpu.get('model_name') or 'CPU'}{vm}: no avx, no avx2 flag")
    version = version_tuple(ollama_version(c))
    old = version is not None and version < (0, 5, 8)
    severity = "error" if said or old or server_sees_no_gpu(c) else "warning"
    upgrade = " and upgrade Ollama to 0.5.8 or newer" if old else ""
    if cpu and not cpu["hypervisor"]:
        # Bare metal: no CPU type to change; only a newer Ollama (or CPU) helps.
        return [
            Finding(
                "cpu-without-avx",
                "This CPU has no AVX (it is not a VM): Ollama v0.1.23 to v0.5.7 turn the GPU off"
                " without it (ollama#2187, #8606), and CPU work is slow as well.",
                "Upgrade Ollama to 0.5.8 or newer, which uses the GPU without AVX; whatever"
                " runs on the CPU needs a CPU with AVX/AVX2 to be fast.",
                tuple(evidence),
                severity,
            )
        ]
    return [
        Finding(
            "cpu-without-avx",
            "The CPU has no AVX (a VM with a default CPU model such as kvm64 or"
            " x86-64-v2-AES): Ollama v0.1.23 to v0.5.7 turn the GPU off without it and newer"
            " releases were still seen not to use the GPU in such a VM (ollama#2187, #8606,"
            " #12194); CPU work is slow as well.",
            "Give the VM the host's CPU type: Proxmox `qm set <vmid> -cpu host` (the line"
            " `cpu: host` in /etc/pve/qemu-server/<vmid>.conf), libvirt"
            " `<cpu mode='host-passthrough'/>` (`virsh edit <vm>`); ollama-rig's kvm topology"
            f" sets both. Then stop and start the VM{upgrade}.",
            tuple(evidence),
            severity,
        )
    ]


def _log_compute_findings(c: Captures) -> list[Finding]:
    log = c.get("journal") or {}
    found = []
    if log.get("cc_too_old"):
        cc = log["cc_too_old"]["cc"]
        quote = c.quote("journal", "CUDA GPU is too old")
        if (cc_tuple(cc) or (0, 0)) >= (5, 0):
            found.append(_too_old_ollama(cc, "0.1.23 (commit a447a083f)", quote))
        else:
            found.append(_gpu_too_old(cc, quote))
    if log.get("cc_skipped"):
        cc = log["cc_skipped"]["cc"]
        found.append(
            Finding(
                "ollama-build-lacks-gpu-arch",
                f"This Ollama build has no CUDA kernels for the GPU's compute capability {cc}"
                " and skipped the GPU.",
                "Install an Ollama release whose CUDA libraries cover this GPU (check the"
                f" release notes for CC {cc}; such a regression was ollama#17841 in 0.32.14).",
                tuple(x for x in (c.quote("journal", "not in compiled architectures"),) if x),
            )
        )
    return found


def _too_old_ollama(cc: str, since: str, *evidence: str | None) -> Finding:
    return Finding(
        "ollama-too-old-for-gpu",
        f"This Ollama release is too old for the GPU's compute capability {cc}, so it runs"
        " on the CPU.",
        f"Upgrade Ollama to {since} or newer.",
        tuple(x for x in evidence if x),
    )


def _gpu_too_old(cc: str, *evidence: str | None) -> Finding:
    return Finding(
        "gpu-too-old",
        f"The GPU's compute capability {cc} is below Ollama's minimum 5.0 (docs/gpu.mdx).",
        "Use a GPU with compute capability 5.0 or newer (Maxwell or later), or run on the CPU.",
        tuple(x for x in evidence if x),
    )


def required_driver(cc: tuple[int, int] | None, version: VersionTuple | None) -> int:
    """Minimum driver branch Ollama documents (docs/gpu.mdx; see the module docstring)."""
    if cc is not None and (5, 0) <= cc <= (6, 2) and (version is None or version >= (0, 30, 0)):
        return 570
    if version is None or version >= (0, 30, 11):
        return 550
    return 531


def versions_against_gpu(c: Captures) -> list[Finding]:
    """Ollama and driver versions against the GPU's compute capability."""
    found = _log_compute_findings(c)
    if found:
        return found
    version_text = ollama_version(c)
    version = version_tuple(version_text)
    unused = bool(server_sees_no_gpu(c))
    for gpu in gpus(c):
        cc = cc_tuple(gpu.compute_capability)
        where = f"nvidia-smi: {gpu.name}, compute capability {gpu.compute_capability}"
        if cc is not None and cc < (5, 0):
            found.append(_gpu_too_old(str(gpu.compute_capability), where))
        elif cc is not None and version is not None:
            ver = f"ollama: version {version_text}"
            if cc[0] >= 12 and version < (0, 5, 13):
                found.append(_too_old_ollama(f"{cc[0]}.{cc[1]}", "0.5.13 (PR #9426)", where, ver))
            elif cc[0] == 5 and version < (0, 1, 23):
                found.append(_too_old_ollama(f"{cc[0]}.{cc[1]}", "0.1.23", where, ver))
        found.extend(_driver_too_old(gpu, cc, version, unused))
    return found


def _driver_too_old(
    gpu: Gpu, cc: tuple[int, int] | None, version: VersionTuple | None, unused: bool
) -> list[Finding]:
    driver = gpu.driver
    major = str(driver or "").split(".")[0]
    if not major.isdigit():
        return []
    need = required_driver(cc, version)
    if int(major) >= need:
        return []
    return [
        Finding(
            "driver-too-old",
            f"NVIDIA driver {driver} is older than the {need}+ Ollama documents for this GPU"
            " (docs/gpu.mdx), so the GPU may be skipped.",
            f"Install NVIDIA driver {need} or newer and reboot.",
            (f"nvidia-smi: {gpu.name}, driver {driver}",),
            "error" if unused else "warning",
        )
    ]


def disabled_by_config(c: Captures) -> list[Finding]:
    """The server's own environment hides the GPU (docs/gpu.mdx: an invalid GPU id forces CPU)."""
    env = (c.get("journal") or {}).get("env") or {}
    visible = env.get("CUDA_VISIBLE_DEVICES", "")
    library = env.get("OLLAMA_LLM_LIBRARY", "")
    if visible.strip() != "-1" and not library.startswith("cpu"):
        return []
    if visible.strip() == "-1":
        setting = f"CUDA_VISIBLE_DEVICES={visible}"
    else:
        setting = f"OLLAMA_LLM_LIBRARY={library}"
    return [
        Finding(
            "gpu-disabled-by-config",
            f"The server runs with {setting}, which hides the GPU on purpose.",
            "Remove it from the service environment (`systemctl edit ollama`, or the container's"
            " -e options) and restart Ollama.",
            tuple(x for x in (c.quote("journal", "server config"),) if x),
        )
    ]


def server_without_gpu(c: Captures) -> list[Finding]:
    """The server found no GPU, and no more specific cause was seen in the captures."""
    evidence = server_sees_no_gpu(c)
    if not evidence:
        return []
    return [
        Finding(
            "server-sees-no-gpu",
            "The Ollama server found no usable GPU and runs every model on the CPU; the"
            " captures do not show why.",
            "Check, where Ollama runs: `nvidia-smi` works; /dev/nvidia0, /dev/nvidiactl and"
            " /dev/nvidia-uvm exist; Docker has --gpus=all; CUDA_VISIBLE_DEVICES is not -1."
            " After a suspend/resume reload the UVM driver: `sudo rmmod nvidia_uvm && sudo"
            " modprobe nvidia_uvm` (docs/gpu.mdx). Capture nvidia-smi, dev-nvidia and cpuinfo"
            " too so the doctor can tell.",
            tuple(evidence),
        )
    ]
