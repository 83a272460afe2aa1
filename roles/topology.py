"""What each topology installs on an inventory host, and whether Ollama runs there.

deploy.py reads this table after preflight: the row's install step, then (only where Ollama
runs on this host) models, harness configs and the verify manifest. lxc and kvm prepare the
host of a guest that is an inventory host of its own, topology native (lxc_guest / kvm_guest).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from roles.docker import docker_cli, install_docker_ollama
from roles.kvm.deploy import prepare_kvm_host
from roles.kvm.guest import kvm_guest_driver
from roles.lxc import lxc_guest_userspace, lxc_host
from roles.native import install_ollama, native_cli
from roles.preflight import Preflight
from settings import Settings


@dataclass(frozen=True)
class Topology:
    """One topology: its install step, and the Ollama CLI on this host (None: no Ollama here)."""

    installs: str
    install: Callable[[Preflight], object]
    ollama_cli: Callable[[Settings], str] | None

    @property
    def ollama_here(self) -> bool:
        return self.ollama_cli is not None


def install_native(checked: Preflight) -> None:
    """A GPU box, an LXC container (host-version libraries first) or a KVM guest (the driver
    from the distribution's packages first)."""
    settings = checked.settings
    if settings.lxc_guest:
        lxc_guest_userspace(settings=settings)
    if settings.kvm_guest:
        kvm_guest_driver(settings=settings)
    install_ollama(settings=settings, machine=checked.facts.machine)


TOPOLOGIES: dict[str, Topology] = {
    "native": Topology(
        "Ollama as a systemd service (with lxc_guest / kvm_guest: the guest's NVIDIA driver first)",
        install_native,
        native_cli,
    ),
    "docker": Topology(
        "Docker engine, NVIDIA Container Toolkit, the Ollama container",
        lambda checked: install_docker_ollama(settings=checked.settings, facts=checked.facts),
        docker_cli,
    ),
    "lxc": Topology(
        "the container's host: NVIDIA device lines for the container (Ollama runs in it)",
        lambda checked: lxc_host(settings=checked.settings),
        None,
    ),
    "kvm": Topology(
        "the hypervisor: IOMMU, vfio-pci for the GPU, the VM definition (Ollama runs in the VM)",
        lambda checked: prepare_kvm_host(settings=checked.settings),
        None,
    ),
}
