"""ollama-rig: `pyinfra inventory/home.py deploy.py` (add --dry to only look).

preflight -> topology role -> models -> verification manifest. Settings are validated and the
host is checked before any operation is queued, so bad input changes nothing anywhere.
"""

from pyinfra import host

from roles.docker import docker_cli, install_docker_ollama
from roles.harness import configure_harnesses
from roles.kvm.deploy import prepare_kvm_host
from roles.lxc import lxc_guest_userspace, lxc_host
from roles.models import ensure_models
from roles.native import install_ollama, native_cli
from roles.preflight import preflight
from roles.verify_manifest import write_manifest
from settings import load_settings

checked = preflight(load_settings(host))
# From here on the effective settings: the sizing planner's changes, if any, are applied.
settings = checked.settings

if settings.topology == "lxc":
    # The container's host (Proxmox node, LXD/Incus host): device lines only, no Ollama here.
    # The container is an inventory host of its own: topology native, lxc_guest=True.
    lxc_host(settings=settings)
elif settings.topology == "native":
    if settings.lxc_guest:
        lxc_guest_userspace(settings=settings)
    install_ollama(settings=settings, machine=checked.facts.machine)
    ollama_cli = native_cli(settings)
elif settings.topology == "docker":
    install_docker_ollama(settings=settings, facts=checked.facts)
    ollama_cli = docker_cli(settings)
elif settings.topology == "kvm":
    # The hypervisor: IOMMU + vfio-pci for the GPU, no Ollama here. The VM is an inventory
    # host of its own with topology native (README, "KVM topology").
    prepare_kvm_host(settings=settings)
if settings.topology not in ("lxc", "kvm"):
    ensure_models(settings=settings)
    configure_harnesses(settings=settings)
    write_manifest(settings=settings, model_contexts=checked.model_contexts, ollama_cli=ollama_cli)
