"""Pure: the Docker-specific causes of Ollama running `100% CPU`, each with its fix.

For the doctor and the verify suite: every function takes what was read on the host
(parsed `docker info`, the daemon.json text, `docker container inspect`, nvidia-smi run inside
the container) and returns findings; none reads a host. DockerFinding has the fields of
doctor.findings.Finding (code, cause, fix, evidence, severity), so
`Finding(**finding.to_dict())` turns one into the other; the codes that the doctor's own
rules also use (docker-no-nvidia-runtime, docker-runtime-not-loaded,
container-without-gpu-request, gpu-lost-in-container) mean the same there.

Relied on: FACTS.md section 6 (runtime registration, `--gpus all` is a device request, the
cgroupfs fix for NVML "Unknown Error" under the systemd cgroup driver).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from roles.docker.daemon import DAEMON_JSON, DaemonJsonError, read_daemon_json
from roles.docker.plan import CDI_GPU, env_dict, gpu_requests


@dataclass(frozen=True)
class DockerFinding:
    """One cause, the evidence for it, and the fix."""

    code: str
    cause: str
    fix: str
    evidence: tuple[str, ...] = field(default_factory=tuple)
    severity: str = "error"  # "error", "warning" or "info", as doctor.findings

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["evidence"] = list(self.evidence)
        return data

    def __str__(self) -> str:
        return f"{self.cause} Fix: {self.fix}"


def daemon_json_invalid(daemon_json: str | None) -> list[DockerFinding]:
    """daemon.json that dockerd cannot read: Docker will not (re)start, so no runtime loads."""
    if daemon_json is None:
        return []
    try:
        read_daemon_json(daemon_json)
    except DaemonJsonError as exc:
        return [
            DockerFinding(
                "docker-daemon-json-invalid",
                f"{DAEMON_JSON} is not valid: dockerd refuses to start with it, so after the"
                " next restart no container runs, and the nvidia runtime in it is never loaded.",
                f"Correct the file (`python3 -m json.tool {DAEMON_JSON}` shows where), restart"
                " Docker, then run the deploy again.",
                (str(exc).split(". Docker cannot")[0],),
            )
        ]
    return []


def runtime_missing(
    info: dict[str, Any] | None,
    daemon_json: str | None,
    toolkit_version: str | None,
    cdi: bool = False,
) -> list[DockerFinding]:
    """No NVIDIA runtime in the running Docker: not installed, not registered, or not loaded.

    info: parsed `docker info`; toolkit_version: `nvidia-ctk --version` (None: not installed);
    cdi: the container gets the GPU as a CDI device, which needs no runtime.
    """
    if info is None or info.get("error") or cdi or info.get("nvidia_runtime"):
        return []
    runtimes = f"docker info: Runtimes: {' '.join(info.get('runtimes') or []) or 'none'}"
    if toolkit_version is None:
        return [
            DockerFinding(
                "docker-toolkit-missing",
                "The NVIDIA Container Toolkit is not installed, so Docker cannot give any"
                " container the GPU and Ollama in Docker runs on the CPU.",
                "Install nvidia-container-toolkit from NVIDIA's apt repo (topology='docker' does"
                " it), register the runtime, restart Docker, recreate the Ollama container.",
                (runtimes, "nvidia-ctk: not found"),
            )
        ]
    try:
        registered = daemon_json is not None and "nvidia" in (
            read_daemon_json(daemon_json).get("runtimes") or {}
        )
    except DaemonJsonError:
        return []  # daemon_json_invalid() names that cause
    if registered:
        return [
            DockerFinding(
                "docker-runtime-not-loaded",
                f"{DAEMON_JSON} registers the nvidia runtime, but the running Docker does not"
                " list it: Docker was not restarted after the toolkit was configured.",
                "Restart Docker (`systemctl restart docker`), check that `docker info` lists the"
                " nvidia runtime, then recreate the Ollama container.",
                (runtimes, f"{DAEMON_JSON}: runtimes.nvidia present"),
            )
        ]
    return [
        DockerFinding(
            "docker-no-nvidia-runtime",
            f"The toolkit (nvidia-ctk {toolkit_version}) is installed, but the nvidia runtime is"
            f" not registered in {DAEMON_JSON}, so Docker does not use it.",
            "Run `nvidia-ctk runtime configure --runtime=docker` (or the deploy, which merges it"
            " into daemon.json), restart Docker, recreate the Ollama container.",
            (runtimes,),
        )
    ]


def _default_runtime_gives_gpus(info: dict[str, Any] | None, container: dict[str, Any]) -> bool:
    """nvidia as the default runtime with NVIDIA_VISIBLE_DEVICES set also hands out GPUs."""
    runtime = (container.get("HostConfig") or {}).get("Runtime")
    if runtime in (None, "", "runc") and info:
        runtime = info.get("default_runtime")
    visible = env_dict((container.get("Config") or {}).get("Env")).get("NVIDIA_VISIBLE_DEVICES")
    return runtime == "nvidia" and visible not in (None, "", "void", "none")


def no_device_request(
    container: dict[str, Any] | None, info: dict[str, Any] | None = None
) -> list[DockerFinding]:
    """The Ollama container was created without asking for a GPU."""
    if container is None or gpu_requests(container):
        return []
    if _default_runtime_gives_gpus(info, container):
        return []
    name = str(container.get("Name") or "ollama").lstrip("/")
    return [
        DockerFinding(
            "container-without-gpu-request",
            f"The container {name} was started without a GPU request (no --gpus, no"
            f" {CDI_GPU} device), so there is no GPU inside it and Ollama uses the CPU.",
            "Recreate it with the GPU: the deploy does (docker_gpus, docker_gpu_mode), or by"
            f" hand `docker run --gpus=all ...` / `--device {CDI_GPU}=all`.",
            (f"docker inspect {name}: HostConfig.DeviceRequests is empty",),
        )
    ]


def cdi_spec_missing(
    cdi: bool, spec_drivers: list[str] | None, driver: str | None
) -> list[DockerFinding]:
    """CDI mode with no spec, or a spec generated for another driver version."""
    if not cdi or (spec_drivers is not None and (driver is None or driver in spec_drivers)):
        return []
    why = (
        "there is no CDI spec (/etc/cdi/nvidia.yaml)"
        if spec_drivers is None
        else f"the CDI spec names driver {', '.join(spec_drivers) or '?'}, the host runs {driver}"
    )
    return [
        DockerFinding(
            "docker-cdi-spec-stale",
            f"CDI mode, but {why}: the container cannot get the GPU.",
            "Run `nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml` (the deploy does),"
            " then recreate the Ollama container.",
            (why,),
        )
    ]


def cgroup_driver_fault(
    info: dict[str, Any] | None, container_smi: dict[str, Any] | None
) -> list[DockerFinding]:
    """NVML "Unknown Error" inside the container: the GPU was lost (systemd cgroup driver).

    container_smi: facts.parsers.nvidia.parse_nvidia_smi of `docker exec <name> nvidia-smi`.
    Without that symptom, the systemd driver is only named as a risk (a warning).
    """
    driver = (info or {}).get("cgroup_driver")
    evidence = (f"docker info: Cgroup Driver: {driver}",) if driver else ()
    fix = (
        'Set docker_cgroupfs=True (or "exec-opts": ["native.cgroupdriver=cgroupfs"] in'
        " /etc/docker/daemon.json), restart Docker, then restart the Ollama container."
    )
    if container_smi and container_smi.get("error") == "nvml-unknown-error":
        return [
            DockerFinding(
                "gpu-lost-in-container",
                "The container lost its GPU (NVML: Unknown Error): the known fault after a"
                " `systemctl daemon-reload` on hosts whose Docker uses the systemd cgroup driver.",
                fix,
                (*evidence, f"nvidia-smi in the container: {container_smi.get('message')}"),
            )
        ]
    if driver == "systemd":
        return [
            DockerFinding(
                "docker-systemd-cgroup-driver",
                "Docker uses the systemd cgroup driver: containers can lose the GPU after a"
                " `systemctl daemon-reload` (NVML: Unknown Error).",
                fix,
                evidence,
                severity="warning",
            )
        ]
    return []


def diagnose_docker(
    *,
    info: dict[str, Any] | None,
    daemon_json: str | None = None,
    toolkit_version: str | None = None,
    container: dict[str, Any] | None = None,
    container_smi: dict[str, Any] | None = None,
    cdi: bool = False,
    cdi_spec_drivers: list[str] | None = None,
    driver_version: str | None = None,
) -> list[DockerFinding]:
    """Every Docker-specific cause found, errors first."""
    findings = [
        *daemon_json_invalid(daemon_json),
        *runtime_missing(info, daemon_json, toolkit_version, cdi),
        *cdi_spec_missing(cdi, cdi_spec_drivers, driver_version),
        *no_device_request(container, info),
        *cgroup_driver_fault(info, container_smi),
    ]
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(findings, key=lambda f: order.get(f.severity, 3))
