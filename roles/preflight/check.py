"""Pure preflight decisions: is this host one we can provision, and with which GPU?"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from roles.native.releases import ARCHES
from settings import Settings

# Releases with systemd that the native role is written and tested for.
SUPPORTED_OS = {"debian": 12, "ubuntu": 22}
# kvm here is the hypervisor: vfio-pci takes its GPU, so no NVIDIA driver is required there (the
# guest, its own inventory host with topology native, has one); its checks are roles/kvm/check.py's,
# run by roles/preflight/__init__.py.
NO_HOST_DRIVER_TOPOLOGIES = {"kvm"}
# nvidia-smi states of an LXC guest before its libraries are installed (roles/lxc/driver.py).
LXC_GUEST_NO_LIBRARIES = ("not-found", "no-nvml-library")
# nvidia-smi states of a KVM guest whose driver is not installed, or installed but not loaded
# until the reboot (roles/kvm/guest.py installs it, then reboots or asks for the reboot).
KVM_GUEST_NO_DRIVER = ("not-found", "no-driver", "no-nvml-library", "version-mismatch")
# Why a broken driver matters, and what fixes it (nvidia-smi error codes from facts.parsers.nvidia).
DRIVER_FIXES = {
    "no-driver": "the NVIDIA kernel module is not loaded: install the driver (550+) and reboot",
    "version-mismatch": "the driver was upgraded but the old kernel module is loaded: reboot",
    "not-found": "nvidia-smi is missing: install the NVIDIA driver (550+)",
    "no-devices": "the driver sees no GPU: check `dmesg | grep -i nvrm` and the PCIe slot",
    "no-nvml-library": "libnvidia-ml is missing: install the driver's user-space libraries",
    "nvml-unknown-error": "NVML failed (in containers often device access lost after a"
    " systemd daemon-reload): restart the container or reboot",
    "nvml-init-failed": "NVML could not start: check `dmesg | grep -i nvrm`, then reboot",
}


@dataclass(frozen=True)
class HostFacts:
    """What preflight reads from a host (facts/ and pyinfra's own server facts)."""

    os_id: str
    os_version: str
    machine: str
    init: str
    cpu_flags: list[str]
    nvidia_smi: dict[str, Any]
    pci_functions: list[dict[str, Any]]
    # facts.host.UfwStatus, read only where ollama_firewall='ufw' filters an exposed Ollama.
    ufw: str | None = None


@dataclass
class Verdict:
    """The summary lines to show, and the reasons to stop (empty: go ahead)."""

    lines: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    gpus: list[dict[str, Any]] = field(default_factory=list)


def _os_supported(facts: HostFacts) -> bool:
    minimum = SUPPORTED_OS.get(facts.os_id)
    major = facts.os_version.split(".")[0]
    return minimum is not None and major.isdigit() and int(major) >= minimum


def _gpu_lines(settings: Settings, facts: HostFacts, verdict: Verdict) -> None:
    smi = facts.nvidia_smi
    gpus = smi.get("gpus") or []
    pci_gpus = [f for f in facts.pci_functions if f.get("gpu")]
    for gpu in gpus:
        verdict.lines.append(
            f"GPU {gpu.get('index', '?')}: {gpu['name']}, {gpu['memory_total_mib']} MiB,"
            f" driver {gpu['driver_version']}, PCI {gpu.get('pci_bus_id')}"
        )
    verdict.gpus = gpus
    if settings.gpu == "none":
        verdict.lines.append("GPU: not used (gpu='none': CPU-only install, GPU checks skipped)")
        return
    if gpus:
        return
    error = smi.get("error")
    if settings.lxc_guest and _lxc_guest_gpu(str(error), verdict):
        return
    if settings.kvm_guest and _kvm_guest_gpu(str(error), pci_gpus, verdict):
        return
    # A driver that answers with an error is evidence of a GPU even where sysfs hides the PCI
    # functions (containers, some VMs); "not found" and "no devices" alone are not.
    if pci_gpus or error not in (None, "not-found", "no-devices"):
        where = ", ".join(f"{f['vendor_device']} at {f['address']}" for f in pci_gpus)
        where = where or "PCI functions not visible here"
        fix = DRIVER_FIXES.get(str(error), f"nvidia-smi said: {smi.get('message')}")
        verdict.lines.append(f"GPU: NVIDIA ({where}), but nvidia-smi fails ({error})")
        verdict.refusals.append(f"NVIDIA GPU ({where}) but {fix}")
        return
    verdict.lines.append("GPU: no NVIDIA GPU (no PCI display function of vendor 10de)")
    verdict.refusals.append(
        f"no NVIDIA GPU on this host and gpu={settings.gpu!r}: set gpu='none' for a"
        " CPU-only install, or run against the machine that has the GPU"
    )


def _lxc_guest_gpu(error: str, verdict: Verdict) -> bool:
    """An LXC guest sees no PCI function and has no nvidia-smi until the libraries of the host's
    driver version are installed: go on (the install step checks the host's driver). True when
    the GPU question is settled here."""
    if error in LXC_GUEST_NO_LIBRARIES:
        verdict.lines.append(
            "GPU: LXC guest without NVIDIA libraries yet: those of the host driver's version"
            " are installed next (the host's /proc/driver/nvidia/version is read then)"
        )
        return True
    if error == "version-mismatch":
        verdict.lines.append("GPU: LXC guest, NVIDIA libraries of another version than the host")
        verdict.refusals.append(
            "this LXC guest's NVIDIA libraries are another version than the host's driver:"
            " remove them (nvidia-uninstall, or the distribution packages), then run again to"
            " install the host's version"
        )
        return True
    return False


def _kvm_guest_gpu(error: str, pci_gpus: list[dict[str, Any]], verdict: Verdict) -> bool:
    """A KVM guest sees the passed-through GPU's PCI functions but has no working driver until
    the guest role installs it and the VM reboots: go on when that is all that is missing. True
    when the GPU question is settled here."""
    if error not in KVM_GUEST_NO_DRIVER:
        return False
    if not pci_gpus:
        verdict.lines.append("GPU: KVM guest, but no NVIDIA PCI function in this VM")
        verdict.refusals.append(
            "kvm_guest=True but this VM sees no NVIDIA GPU on its PCI bus: the GPU is not"
            " passed through. Run the hypervisor's deploy (topology 'kvm') until vfio-pci holds"
            " the GPU and the VM is defined with it, start the VM, then run again"
        )
        return True
    where = ", ".join(f"{f['vendor_device']} at {f['address']}" for f in pci_gpus)
    verdict.lines.append(
        f"GPU: NVIDIA ({where}) passed through, driver not in use yet ({error}): the"
        " distribution's driver is installed next, then the VM reboots (kvm_allow_reboot) or"
        " the run stops with 'reboot required'"
    )
    return True


def needs_ufw(settings: Settings) -> bool:
    """Ollama is exposed behind ufw: the native role adds its rules (roles/native/firewall.py);
    docker refuses ufw in settings, the other topologies run no Ollama on this host."""
    return settings.topology == "native" and settings.exposed and settings.ollama_firewall == "ufw"


def check_host(settings: Settings, facts: HostFacts) -> Verdict:
    """Summarise the host and list every reason not to provision it."""
    verdict = Verdict()
    verdict.lines.append(
        f"OS {facts.os_id} {facts.os_version}, {facts.machine}, init {facts.init};"
        f" topology {settings.topology}"
    )
    if not _os_supported(facts):
        verdict.refusals.append(
            f"{facts.os_id} {facts.os_version} is not supported: ollama-rig provisions"
            " Debian 12+ and Ubuntu 22.04+"
        )
    if facts.machine not in ARCHES:
        verdict.refusals.append(
            f"architecture {facts.machine} is not supported: Ollama ships x86_64 and aarch64"
        )
    if facts.init != "systemd":
        verdict.refusals.append(f"init is {facts.init!r}: the native role needs systemd as PID 1")
    if needs_ufw(settings) and facts.ufw != "active":
        verdict.refusals.append(
            f"ollama_firewall='ufw' but ufw is {facts.ufw or 'not read'} on this host, so the"
            " allow-list would filter nothing: enable ufw (`ufw allow OpenSSH`, then `ufw"
            " enable`), or set ollama_firewall='nftables'"
        )
    if settings.topology == "lxc" and settings.gpu == "none":
        verdict.refusals.append(
            "topology='lxc' passes the host's GPU into a container, and gpu='none' leaves"
            " nothing to pass: set gpu='auto' (or run the container alone, topology native)"
        )
    if settings.topology in NO_HOST_DRIVER_TOPOLOGIES:
        verdict.lines.append(
            f"GPU: no host driver needed (topology {settings.topology}: vfio-pci takes the GPU,"
            " the guest's NVIDIA driver uses it)"
        )
        return verdict
    avx = [flag for flag in ("avx", "avx2") if flag in facts.cpu_flags]
    if facts.machine == "x86_64":
        verdict.lines.append(f"CPU flags: {', '.join(avx) or 'no AVX'}")
        if "avx" not in avx:
            verdict.lines.append(
                "warning: no AVX: CPU inference is slow, and old Ollama releases skipped the"
                " GPU too (FACTS.md section 8); in a VM use CPU type host"
            )
    _gpu_lines(settings, facts, verdict)
    return verdict
