"""Docker topology: Docker engine, NVIDIA Container Toolkit, and Ollama as a container with the GPU.

engine (kept when it works) -> toolkit -> daemon.json merged -> Docker restarted only if that
changed -> CDI spec (cdi mode) -> pinned image (pull, or load from an archive) -> models volume ->
allow-list when exposed -> container (recreated when its spec changed) -> pinned version answers
-> allow-list removed when back on loopback.
The host is read and checked first: bad input stops the run before any change.
"""

from __future__ import annotations

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.facts.docker import DockerContainer
from pyinfra.facts.server import LinuxDistribution
from pyinfra.operations import docker, files, systemd

from facts.docker import DockerDaemonConfig, DockerEngine, TcpListeners
from roles.docker.daemon import daemon_wants
from roles.docker.operations import (
    cdi_spec,
    daemon_config,
    engine_has_config,
    image_present,
    ollama_container,
    wait_for_container_api,
)
from roles.docker.plan import (
    DockerHostFacts,
    check_docker_host,
    check_image_archive,
    container_spec,
    docker_cli,
    image_ref,
)
from roles.docker.repos import docker_engine, nvidia_toolkit
from roles.native.firewall import allow_list, remove_allow_list
from roles.native.releases import ARCHES
from roles.preflight.check import HostFacts
from settings import Settings
from templates import template_path

__all__ = ["docker_cli", "install_docker_ollama"]

DOCKER_MANIFEST = "/etc/ollama-rig/docker.json"


class DockerPreflightError(DeployError):
    """The host cannot run the container as configured; the message says why and what to do."""


def read_docker_facts(settings: Settings) -> DockerHostFacts:
    found = host.get_fact(DockerContainer, object_id=settings.docker_container)
    return DockerHostFacts(
        engine=host.get_fact(DockerEngine),
        daemon_json=host.get_fact(DockerDaemonConfig),
        listeners=host.get_fact(TcpListeners),
        container=found[0] if found else None,
    )


def docker_manifest(settings: Settings) -> dict[str, object]:
    """What tests/verify/test_docker.py holds the container to."""
    spec = container_spec(settings)
    return {
        "container": spec.name,
        "image": spec.image,
        "gpu_mode": settings.docker_gpu_mode if spec.gpu else "none",
        "gpu_request": spec.gpu.normalized() if spec.gpu else [],
        "models": spec.models,
        "restart": spec.restart,
        "publish": f"{spec.host_ip}:{spec.host_port}",
        "cgroupfs": settings.docker_cgroupfs,
    }


@deploy("Ollama (docker)")
def install_docker_ollama(settings: Settings, facts: HostFacts) -> None:
    """Set up Docker and the toolkit, run the Ollama container, wait for the pinned version."""
    archive = check_image_archive(settings)
    state = read_docker_facts(settings)
    refusals = check_docker_host(settings, state)
    if refusals:
        raise DockerPreflightError(f"docker topology on {host.name}: " + "; ".join(refusals))
    engine = state.engine
    gpu = settings.gpu != "none"
    wants = daemon_wants(settings)

    if engine.get("error") is None:
        logger.info(f"{host.print_prefix}  Docker {engine.get('server_version')} works: kept")
    else:
        # Installed but not answering: only start it, the installation is left alone.
        if engine.get("error") == "not-found":
            distro = host.get_fact(LinuxDistribution) or {}
            codename = str((distro.get("release_meta") or {}).get("VERSION_CODENAME") or "")
            docker_engine(
                name=f"Docker engine ({settings.docker_engine_source})",
                source=settings.docker_engine_source,
                version=settings.docker_engine_version,
                distro=facts.os_id,
                codename=codename,
                arch=ARCHES.get(facts.machine, "amd64"),
            )
        systemd.service(
            name="Docker running and enabled", service="docker.service", running=True, enabled=True
        )

    if gpu:
        nvidia_toolkit(
            name="NVIDIA Container Toolkit", version=settings.docker_nvidia_toolkit_version
        )
    daemon = daemon_config(
        name="Docker daemon.json (merged)",
        nvidia_runtime=wants.nvidia_runtime,
        default_runtime_nvidia=wants.default_runtime_nvidia,
        cgroupfs=wants.cgroupfs,
        cdi=wants.cdi,
    )
    systemd.service(
        name="Restart Docker for the new daemon.json",
        service="docker.service",
        running=True,
        restarted=True,
        _if=daemon.did_change,
    )
    engine_has_config(
        name="Docker runs with its daemon.json",
        nvidia_runtime=wants.nvidia_runtime,
        default_runtime_nvidia=wants.default_runtime_nvidia,
        cgroupfs=wants.cgroupfs,
    )
    if wants.cdi:
        gpus = facts.nvidia_smi.get("gpus") or []
        cdi_spec(
            name="NVIDIA CDI spec",
            driver_version=gpus[0].get("driver_version") if gpus else None,
            uuid_names=isinstance(settings.docker_gpus, list)
            and any(not g.isdigit() for g in settings.docker_gpus),
        )

    image = image_ref(settings)
    image_present(name=f"Image {image}", image=image, archive=archive)
    spec = container_spec(settings)
    if spec.models_is_path:
        files.directory(name="Models directory", path=spec.models, mode="0755")
    else:
        docker.volume(name=f"Models volume {spec.models}", volume=spec.models, present=True)
    # Exposed: the allow-list is in place before the port is published beyond loopback.
    # Same table, rules file and unit as native: switching topology replaces the rules.
    allow_list(settings=settings, published=True)
    ollama_container(name=f"Container {spec.name}", spec=spec)
    wait_for_container_api(
        name=f"Ollama answers version {settings.ollama_version}",
        api_url=settings.api_url,
        version=settings.ollama_version,
        timeout=settings.ollama_start_timeout,
        container=spec.name,
    )
    # Back on loopback: the allow-list goes only now that the recreated container answers there
    # (the old one was published on every address until then; a failed start keeps the rules).
    # Still exposed: the rules of a port it left go now.
    remove_allow_list(settings=settings, published=True)
    files.template(
        name=f"Write {DOCKER_MANIFEST}",
        src=template_path("docker/docker.json.j2"),
        dest=DOCKER_MANIFEST,
        mode="0644",
        docker=docker_manifest(settings),
    )
