"""Preflight: read the host, print one summary, and stop before any change if it cannot work."""

from __future__ import annotations

from dataclasses import dataclass

from pyinfra import host, logger
from pyinfra.api.exceptions import DeployError
from pyinfra.facts.server import Arch, LinuxDistribution

from facts.host import CpuFlags, InitSystem, NvidiaPciFunctions, UfwStatus
from facts.nvidia import NvidiaSmi
from roles.kvm.check import check_kvm_host
from roles.kvm.deploy import read_kvm_facts
from roles.kvm.guest import guest_summary
from roles.preflight.check import HostFacts, check_host, needs_ufw
from roles.preflight.fit import fit_models
from settings import Settings


class PreflightError(DeployError):
    """The host cannot be provisioned as configured; the message says why and what to do."""


def read_host_facts(settings: Settings) -> HostFacts:
    distro = host.get_fact(LinuxDistribution) or {}
    meta = distro.get("release_meta") or {}
    return HostFacts(
        os_id=str(meta.get("ID") or distro.get("name") or "unknown").lower(),
        os_version=str(meta.get("VERSION_ID") or distro.get("major") or "?"),
        machine=host.get_fact(Arch),
        init=host.get_fact(InitSystem),
        cpu_flags=host.get_fact(CpuFlags),
        nvidia_smi=host.get_fact(NvidiaSmi),
        pci_functions=host.get_fact(NvidiaPciFunctions),
        ufw=host.get_fact(UfwStatus) if needs_ufw(settings) else None,
    )


@dataclass(frozen=True)
class Preflight:
    """What the roles go on with: the host's facts and the settings after fitting the VRAM."""

    facts: HostFacts
    settings: Settings
    model_contexts: dict[str, int]


def preflight(settings: Settings) -> Preflight:
    """Print the summary for this host; raise PreflightError listing every refusal."""
    facts = read_host_facts(settings)
    verdict = check_host(settings, facts)
    fitted = fit_models(settings, verdict.gpus)
    logger.info(f"{host.print_prefix}preflight:")
    for line in verdict.lines + fitted.lines:
        logger.info(f"{host.print_prefix}  {line}")
    refusals = verdict.refusals + fitted.refusals
    if settings.topology == "kvm":
        # The passthrough checks (roles/kvm/check.py), refused here before any change.
        kvm = check_kvm_host(settings, read_kvm_facts(settings))
        for line in kvm.lines:
            logger.info(f"{host.print_prefix}  kvm: {line}")
        refusals += kvm.refusals
    if settings.kvm_guest:
        # The guest's driver install (roles/kvm/guest.py): release, APT sources, branch.
        lines, guest_refusals = guest_summary(settings)
        for line in lines:
            logger.info(f"{host.print_prefix}  kvm: {line}")
        refusals += guest_refusals
    if refusals:
        raise PreflightError(f"preflight stopped {host.name}: " + "; ".join(refusals))
    return Preflight(facts, fitted.settings, fitted.model_contexts)
