"""Pure decisions of the docker topology: the container wanted, how it differs from the one
running (`docker container inspect`), and what on the host stops the deploy before any change.

Relied on (FACTS.md sections 3 and 6; moby api/types/container): inspect's Config.Image is the
reference the container was created from and .Image the image id; Config.Env holds the image's
ENV overlaid with `-e`; HostConfig.PortBindings {"11434/tcp": [{"HostIp", "HostPort"}]};
HostConfig.RestartPolicy.Name; HostConfig.DeviceRequests [{"Driver", "Count", "DeviceIDs",
"Capabilities"}] (`--gpus all` is Count -1 with [["gpu"]]; a CDI `--device` is Driver "cdi");
Mounts [{"Type": "volume"|"bind", "Name", "Source", "Destination"}].
"""

from __future__ import annotations

import json
import re
import shlex
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roles.docker.daemon import DaemonJsonError, read_daemon_json
from roles.native.plan import ollama_environment
from settings import Settings, SettingsError

CONTAINER_PORT = 11434
# The official image's home: models under models/, and Ollama's key pair.
STATE_DIR = "/root/.ollama"
CDI_GPU = "nvidia.com/gpu"
# Docker 25 is the first engine that takes CDI device names (moby v25.0.0 release notes).
CDI_MIN_DOCKER = (25, 0)


def image_ref(settings: Settings) -> str:
    """docker_image with "{version}" filled in: ollama/ollama:0.32.7."""
    return settings.docker_image.replace("{version}", settings.ollama_version)


def container_environment(settings: Settings) -> dict[str, str]:
    """Native's OLLAMA_* variables, as seen inside the container, plus docker_env."""
    env = ollama_environment(settings)
    # Inside, Ollama listens on every container address; the host side is the published port.
    env["OLLAMA_HOST"] = f"0.0.0.0:{CONTAINER_PORT}"
    env["OLLAMA_MODELS"] = f"{STATE_DIR}/models"
    env.update(settings.docker_env)
    return env


@dataclass(frozen=True)
class GpuRequest:
    """How the container asks for GPUs: mode "runtime" (a device request) or "cdi"."""

    mode: str
    devices: list[str] = field(default_factory=list)  # empty: all GPUs

    def flags(self) -> list[str]:
        if self.mode == "cdi":
            names = self.devices or ["all"]
            return [arg for name in names for arg in ("--device", f"{CDI_GPU}={name}")]
        if not self.devices:
            return ["--gpus", "all"]
        # --gpus takes CSV: a list of devices must be one quoted field.
        return ["--gpus", f'"device={",".join(self.devices)}"']

    def normalized(self) -> list[str]:
        """The request as inspect shows it, reduced to comparable strings."""
        if self.mode == "cdi":
            return sorted(f"cdi:{CDI_GPU}={name}" for name in (self.devices or ["all"]))
        return ["gpu:all"] if not self.devices else [f"gpu:{d}" for d in sorted(self.devices)]


@dataclass(frozen=True)
class ContainerSpec:
    """The Ollama container the settings ask for."""

    name: str
    image: str
    env: dict[str, str]
    host_ip: str
    host_port: int
    models: str  # a volume name, or an absolute host path
    restart: str
    gpu: GpuRequest | None = None

    @property
    def models_is_path(self) -> bool:
        return self.models.startswith("/")

    def run_args(self) -> list[str]:
        """`docker run` arguments that create and start it."""
        host_ip = f"[{self.host_ip}]" if ":" in self.host_ip else self.host_ip
        args = [
            "docker",
            "run",
            "--detach",
            "--name",
            self.name,
            "--restart",
            self.restart,
            "--publish",
            f"{host_ip}:{self.host_port}:{CONTAINER_PORT}",
            "--volume",
            f"{self.models}:{STATE_DIR}",
            "--label",
            "ollama-rig.managed=true",
        ]
        if self.gpu is not None:
            args += self.gpu.flags()
        for key, value in self.env.items():
            args += ["--env", f"{key}={value}"]
        return [*args, self.image]

    def run_command(self) -> str:
        return " ".join(shlex.quote(arg) for arg in self.run_args())


def container_spec(settings: Settings) -> ContainerSpec:
    """The container wanted on this host."""
    gpu = None
    if settings.gpu != "none":
        devices = [] if settings.docker_gpus == "all" else list(settings.docker_gpus)
        gpu = GpuRequest(mode=settings.docker_gpu_mode, devices=devices)
    return ContainerSpec(
        name=settings.docker_container,
        image=image_ref(settings),
        env=container_environment(settings),
        host_ip=settings.listen_host,
        host_port=settings.listen_port,
        models=settings.docker_models,
        restart=settings.docker_restart,
        gpu=gpu,
    )


def docker_cli(settings: Settings) -> str:
    """The ollama CLI on the host: inside the container, which points it at its own server."""
    return f"docker exec {shlex.quote(settings.docker_container)} ollama"


# --- the running container against the spec ------------------------------------------------


def env_dict(entries: list[str] | None) -> dict[str, str]:
    """["K=V", ...] (inspect's Config.Env) -> {"K": "V"}."""
    result = {}
    for entry in entries or []:
        key, _, value = entry.partition("=")
        result[key] = value
    return result


def gpu_requests(container: dict[str, Any]) -> list[str]:
    """The GPU requests of an inspected container, in GpuRequest.normalized() form."""
    host_config = container.get("HostConfig") or {}
    found = []
    for request in host_config.get("DeviceRequests") or []:
        ids = request.get("DeviceIDs") or []
        if request.get("Driver") == "cdi":
            found += [f"cdi:{name}" for name in ids]
            continue
        capabilities = request.get("Capabilities") or []
        if ["gpu"] in capabilities or request.get("Driver") == "nvidia":
            if request.get("Count") == -1:
                found.append("gpu:all")
            found += [f"gpu:{device}" for device in ids]
    # Engines that keep a CDI name among the plain device mappings.
    for device in host_config.get("Devices") or []:
        if str(device.get("PathOnHost", "")).startswith(f"{CDI_GPU}="):
            found.append(f"cdi:{device['PathOnHost']}")
    return sorted(found)


def port_bindings(container: dict[str, Any]) -> list[str]:
    """The published ports of an inspected container as "hostip:hostport->port/proto"."""
    bindings = (container.get("HostConfig") or {}).get("PortBindings") or {}
    return sorted(
        f"{b.get('HostIp') or '0.0.0.0'}:{b.get('HostPort')}->{port}"
        for port, entries in bindings.items()
        for b in entries or []
    )


def _state_mount(container: dict[str, Any]) -> str | None:
    for mount in container.get("Mounts") or []:
        if mount.get("Destination") == STATE_DIR:
            return mount.get("Source") if mount.get("Type") == "bind" else mount.get("Name")
    return None


def spec_changes(
    spec: ContainerSpec, container: dict[str, Any], image: dict[str, Any] | None
) -> list[str]:
    """What differs between the spec and the inspected container (empty: nothing).

    image: `docker image inspect` of spec.image, so a tag moved to a new image and the image's
    own ENV are seen. Environment values are not shown (docker_env may hold a proxy password).
    """
    changes = []
    config = container.get("Config") or {}
    host_config = container.get("HostConfig") or {}
    if config.get("Image") != spec.image:
        changes.append(f"image {config.get('Image')} -> {spec.image}")
    elif image is not None and container.get("Image") != image.get("Id"):
        changes.append(f"image {spec.image} now points to {str(image.get('Id'))[:19]}")
    image_env = env_dict((image or {}).get("Config", {}).get("Env"))
    have = env_dict(config.get("Env"))
    want = {**image_env, **spec.env} if image is not None else {**have, **spec.env}
    keys = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
    if keys:
        changes.append("environment " + ", ".join(keys))
    published = port_bindings(container)
    wanted_port = [f"{spec.host_ip}:{spec.host_port}->{CONTAINER_PORT}/tcp"]
    if published != wanted_port:
        changes.append(f"published {', '.join(published) or 'nothing'} -> {wanted_port[0]}")
    mounted = _state_mount(container)
    if mounted != spec.models:
        changes.append(f"{STATE_DIR} from {mounted} -> {spec.models}")
    restart = (host_config.get("RestartPolicy") or {}).get("Name") or "no"
    if restart != spec.restart:
        changes.append(f"restart policy {restart} -> {spec.restart}")
    requested = gpu_requests(container)
    wanted_gpu = spec.gpu.normalized() if spec.gpu else []
    if requested != wanted_gpu:
        changes.append(f"GPU request {requested or 'none'} -> {wanted_gpu or 'none'}")
    return changes


def is_running(container: dict[str, Any]) -> bool:
    return bool((container.get("State") or {}).get("Running"))


# --- what stops the deploy before any change ------------------------------------------------


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _overlaps(a: str, b: str) -> bool:
    wildcards = ("0.0.0.0", "::")
    return a == b or a in wildcards or b in wildcards


def port_conflict(
    host_ip: str, port: int, listeners: list[str], container: dict[str, Any] | None
) -> str | None:
    """Why the port cannot be published (something else listens there), or None.

    listeners: the host's listening TCP addresses ("127.0.0.1:11434", "[::]:22"); those that
    the running Ollama container publishes itself are not in the way.
    """
    ours: set[str] = set()
    if container is not None and is_running(container):
        for binding in port_bindings(container):
            ip = binding.split("->")[0].rpartition(":")[0]
            ours.add(ip)
            if ip == "0.0.0.0":
                ours.add("::")  # docker-proxy listens on both families for a wildcard
    others = []
    for listener in listeners:
        ip, listen_port = _split_address(listener)
        if listen_port == port and ip not in ours and _overlaps(ip, host_ip):
            others.append(listener)
    if not others:
        return None
    hint = " (another container? `docker ps` shows it)"
    if port == CONTAINER_PORT:
        hint = (
            " (a native Ollama? `systemctl disable --now ollama` stops it; another container?"
            " `docker ps` shows it)"
        )
    return (
        f"port {port} is already in use on the host: {', '.join(sorted(others))} listens"
        f"{hint}; stop it (`ss -ltnp 'sport = :{port}'` names it) or set ollama_listen to a"
        " free port; nothing was changed"
    )


def docker_version(server_version: str | None) -> tuple[int, int] | None:
    match = re.match(r"(\d+)\.(\d+)", server_version or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


@dataclass(frozen=True)
class DockerHostFacts:
    """What the docker role reads before it changes anything."""

    engine: dict[str, Any]  # facts.docker.DockerEngine
    daemon_json: str | None  # the file's text
    listeners: list[str]
    container: dict[str, Any] | None  # inspect of docker_container, None if there is none


def check_docker_host(settings: Settings, facts: DockerHostFacts) -> list[str]:
    """Every reason to stop before any change (empty: go ahead)."""
    refusals = []
    if facts.daemon_json is not None:
        try:
            read_daemon_json(facts.daemon_json)
        except DaemonJsonError as exc:
            refusals.append(str(exc))
    conflict = port_conflict(
        settings.listen_host, settings.listen_port, facts.listeners, facts.container
    )
    if conflict:
        refusals.append(conflict)
    error = facts.engine.get("error")
    if error == "permission-denied":
        refusals.append(
            "this user may not use Docker: run the deploy as root (pyinfra --sudo) or add the"
            " user to the docker group"
        )
    version = docker_version(facts.engine.get("server_version"))
    wants_cdi = settings.gpu != "none" and settings.docker_gpu_mode == "cdi"
    if wants_cdi and version is not None and version < CDI_MIN_DOCKER:
        refusals.append(
            f"docker_gpu_mode='cdi' needs Docker 25 or newer, this host runs"
            f" {facts.engine.get('server_version')}: upgrade Docker or use docker_gpu_mode="
            "'runtime'"
        )
    return refusals


# --- the image archive for hosts that cannot pull -------------------------------------------


def normal_image_name(ref: str) -> str:
    """docker.io/library/x:1 and x:1 are the same image name to Docker."""
    for prefix in ("docker.io/", "index.docker.io/"):
        ref = ref.removeprefix(prefix)
    return ref.removeprefix("library/")


def archive_tags(path: str) -> list[str]:
    """The image names a `docker save` archive (plain or gzip tar) holds.

    Reads manifest.json's RepoTags (every Docker release writes it) and, for OCI layouts
    without one, index.json's image name annotations.
    """
    tags: list[str] = []
    with tarfile.open(path, "r:*") as archive:
        names = archive.getnames()
        if "manifest.json" in names:
            member = archive.extractfile("manifest.json")
            manifest = json.load(member) if member else []
            for entry in manifest:
                tags += entry.get("RepoTags") or []
        elif "index.json" in names:
            member = archive.extractfile("index.json")
            index = json.load(member) if member else {}
            for entry in index.get("manifests") or []:
                annotations = entry.get("annotations") or {}
                name = annotations.get("io.containerd.image.name")
                if name:
                    tags.append(name)
    return sorted({normal_image_name(tag) for tag in tags})


def check_image_archive(settings: Settings) -> str | None:
    """The local archive to load (None without one); SettingsError if it lacks the image."""
    path = settings.docker_image_archive
    if path is None:
        return None
    ref = image_ref(settings)
    if not Path(path).is_file():
        raise SettingsError(
            f"settings: docker_image_archive={path!r}: no such file on this machine; make it"
            f" with `docker save -o FILE {ref}` where the image can be pulled"
        )
    try:
        tags = archive_tags(path)
    except (tarfile.TarError, OSError, ValueError) as exc:
        raise SettingsError(
            f"settings: docker_image_archive={path!r} is not a `docker save` archive ({exc})"
        ) from None
    if normal_image_name(ref) not in tags:
        raise SettingsError(
            f"settings: docker_image_archive={path!r} holds {', '.join(tags) or 'no tagged image'},"
            f" not {ref}: save that image (`docker save -o FILE {ref}`) or set docker_image to"
            " one it holds; nothing was changed"
        )
    return path
