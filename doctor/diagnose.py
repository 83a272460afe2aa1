"""Run the rules in order: first "can Ollama reach a GPU at all", then "does the model fit"."""

from __future__ import annotations

from collections.abc import Callable

from doctor.captures import Captures
from doctor.findings import SEVERITIES, Finding
from doctor.rules import devices, gpu, kvm, lxc, memory

Rule = Callable[[Captures], list[Finding]]

# Each names a reason the server cannot use the GPU at all.
VISIBILITY_RULES: tuple[Rule, ...] = (
    gpu.driver_problems,
    lxc.driver_version_mismatch,
    devices.docker_gpu,
    devices.no_device_nodes,
    devices.nvidia_uvm,
    devices.lxc_config,
    lxc.lxd_gpu_device,
    lxc.unprivileged_permissions,
    kvm.iommu_off,
    kvm.iommu_group_shared,
    kvm.gpu_not_on_vfio,
    kvm.gpu_on_vfio,
    gpu.disabled_by_config,
    gpu.cpu_without_avx,
    gpu.versions_against_gpu,
)
# Only meaningful once the GPU is reachable (else every model is on the CPU anyway).
FIT_RULES: tuple[Rule, ...] = (memory.model_too_large,)
ALWAYS_RULES: tuple[Rule, ...] = (
    memory.vram_held_by_others,
    memory.context_capped,
    memory.server_unreachable,
)
# A specific finding makes a vaguer one redundant.
SUPPRESSED_BY = {
    "no-nvidia-gpu": {
        "no-device-nodes",
        "nvidia-smi-not-found",
        "missing-nvidia-uvm",
        "driver-too-old",
        "docker-no-nvidia-runtime",
        "docker-runtime-not-loaded",
        "container-without-gpu",
        "container-without-gpu-request",
    },
    # The versions named beat nvidia-smi's bare "Driver/library version mismatch".
    "driver-version-mismatch": {"driver-library-mismatch"},
    "driver-libraries-missing": {"no-driver", "nvidia-smi-not-found", "no-nvidia-gpu"},
    "device-permission-denied": {"nvidia-smi-nvml-init-failed"},
    # A KVM host whose GPU went to a VM has no NVIDIA driver on purpose.
    "gpu-on-vfio": {"no-driver", "nvidia-smi-not-found", "no-nvidia-gpu"},
}


def _blocking(findings: list[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)


def diagnose(captures: Captures) -> list[Finding]:
    """All findings for one box, errors first, one per code."""
    findings = [f for rule in VISIBILITY_RULES for f in rule(captures)]
    if not _blocking(findings):
        generic = gpu.server_without_gpu(captures)
        findings += generic or [f for rule in FIT_RULES for f in rule(captures)]
    findings += [f for rule in ALWAYS_RULES for f in rule(captures)]
    codes = {f.code for f in findings}
    hidden = set().union(*(SUPPRESSED_BY.get(code, set()) for code in codes))
    unique: dict[str, Finding] = {}
    for finding in findings:
        if finding.code not in hidden and finding.code not in unique:
            unique[finding.code] = finding
    return sorted(unique.values(), key=lambda f: SEVERITIES.index(f.severity))
