"""Operations of the docker topology that pyinfra has no ready operation for.

pyinfra's docker.container cannot ask for a GPU and never recreates a container whose
settings changed (its ContainerSpec.diff_from_inspect is a stub in pyinfra 3.10), so the
Ollama container is managed here: `docker container inspect` compared with the spec of the
settings (roles/docker/plan.py), through the docker CLI on the host, like every other
operation (the docker SDK would talk to an engine from the machine running pyinfra instead).
"""

from __future__ import annotations

import shlex
from pathlib import Path

from pyinfra import host, logger
from pyinfra.api import FileUploadCommand, operation
from pyinfra.api.exceptions import OperationError
from pyinfra.facts.docker import DockerContainer, DockerImage

from facts.docker import CDI_SPEC, DAEMON_JSON, CdiSpecDrivers, DockerDaemonConfig, DockerEngine
from roles.commands import fail_command
from roles.docker.daemon import DaemonJsonError, DaemonWants, merge_daemon_json
from roles.docker.plan import ContainerSpec, is_running, spec_changes
from roles.native.operations import wait_for_api


def _first(found: list | None) -> dict | None:
    """pyinfra's Docker*(object_id) facts are inspect's list; [] or None when there is none."""
    return found[0] if found else None


@operation()
def daemon_config(
    nvidia_runtime: bool = False,
    default_runtime_nvidia: bool = False,
    cgroupfs: bool = False,
    cdi: bool = False,
    path: str = DAEMON_JSON,
):
    """
    Merge what ollama-rig needs into Docker's daemon.json, keeping every key already there.

    + nvidia_runtime: register the nvidia runtime ("runtimes": {"nvidia": ...})
    + default_runtime_nvidia: make it the default runtime
    + cgroupfs: the cgroupfs cgroup driver ("exec-opts")
    + cdi: enable CDI devices ("features": {"cdi": true})
    + path: the daemon.json

    A file that is not valid JSON is refused and left as it is. The new text is validated
    (and by `dockerd --validate` where the engine has it) before it replaces the old file,
    which is kept as daemon.json.ollama-rig.bak. Docker is not restarted here: chain a restart
    with ``_if=<this op>.did_change``.
    """
    wants = DaemonWants(nvidia_runtime, default_runtime_nvidia, cgroupfs, cdi)
    try:
        text = merge_daemon_json(host.get_fact(DockerDaemonConfig, path=path), wants, path)
    except DaemonJsonError as exc:
        raise OperationError(str(exc)) from None
    if text is None:
        host.noop(f"{path} has what is needed")
        return
    q_path, q_new = shlex.quote(path), shlex.quote(path + ".ollama-rig.new")
    yield (
        f"mkdir -p {shlex.quote(str(Path(path).parent))} && "
        f"printf '%s' {shlex.quote(text)} > {q_new} && "
        "{ ! dockerd --help 2>/dev/null | grep -q -- --validate || "
        f"dockerd --validate --config-file={q_new} >/dev/null || "
        f"{{ rm -f {q_new}; "
        + fail_command(f"dockerd refused the merged {path}; it was not changed")
        + "; }; } && "
        f"{{ [ ! -e {q_path} ] || cp -p {q_path} {shlex.quote(path + '.ollama-rig.bak')}; }} && "
        f"mv -f {q_new} {q_path}"
    )


@operation()
def engine_has_config(
    nvidia_runtime: bool = False, default_runtime_nvidia: bool = False, cgroupfs: bool = False
):
    """
    Restart Docker when the running engine lacks what daemon.json gives it.

    + nvidia_runtime: the nvidia runtime must be loaded
    + default_runtime_nvidia: it must be the default runtime
    + cgroupfs: the cgroup driver must be cgroupfs

    Catches the restart that a run before this one (or a hand install of the toolkit) did not do:
    "toolkit installed, Docker not restarted" is a classic cause of `100% CPU`.
    """
    info = host.get_fact(DockerEngine)
    missing = []
    if nvidia_runtime and not info.get("nvidia_runtime"):
        missing.append("the nvidia runtime")
    if default_runtime_nvidia and info.get("default_runtime") != "nvidia":
        missing.append("nvidia as default runtime")
    if cgroupfs and info.get("cgroup_driver") != "cgroupfs":
        missing.append("the cgroupfs driver")
    if not missing:
        host.noop("the running Docker has the daemon.json settings")
        return
    logger.info(f"{host.print_prefix}Docker runs without {', '.join(missing)}: restarting it")
    yield "systemctl restart docker.service"


@operation()
def cdi_spec(driver_version: str | None = None, uuid_names: bool = False, path: str = CDI_SPEC):
    """
    Generate the NVIDIA CDI spec, again when it was made for another driver version.

    + driver_version: the driver the host runs (nvidia-smi); None: only make a missing spec
    + uuid_names: also name devices by UUID (nvidia.com/gpu=GPU-...), not only by index
    + path: where the spec goes
    """
    drivers = host.get_fact(CdiSpecDrivers, path=path)
    if drivers is not None and (driver_version is None or driver_version in drivers):
        host.noop(f"{path} is there for driver {driver_version or ', '.join(drivers)}")
        return
    names = " --device-name-strategy=index --device-name-strategy=uuid" if uuid_names else ""
    yield f"nvidia-ctk cdi generate --output={shlex.quote(path)}{names}"


@operation()
def image_present(image: str, archive: str | None = None, cache_dir: str = "/var/cache/ollama-rig"):
    """
    Make the pinned image present: `docker pull`, or `docker load` from a local archive.

    + image: the reference, pinned by tag or digest
    + archive: a `docker save` archive on the machine running pyinfra (hosts that cannot pull)
    + cache_dir: where the archive is copied on the host (removed again after the load)
    """
    if host.get_fact(DockerImage, object_id=image):
        host.noop(f"image {image} is present")
        return
    q_image = shlex.quote(image)
    if archive is None:
        yield f"docker pull {q_image} || " + fail_command(
            f"cannot pull {image}; for a host without internet set docker_image_archive to a"
            f" `docker save` archive of it"
        )
        return
    remote = f"{cache_dir}/{Path(archive).name}"
    q_remote = shlex.quote(remote)
    yield f"mkdir -p {shlex.quote(cache_dir)}"
    yield FileUploadCommand(archive, remote, remote_temp_filename=host.get_temp_filename(remote))
    yield (
        f"docker load --input {q_remote} && rm -f {q_remote} && "
        f"docker image inspect {q_image} >/dev/null 2>&1 || "
        + fail_command(f"{archive} loaded, but it does not hold {image}")
    )


@operation()
def ollama_container(spec: ContainerSpec):
    """
    Run the Ollama container as spec says; recreate it when anything in it differs.

    + spec: the container wanted (roles/docker/plan.py container_spec)

    The models volume (or host path) outlives the container: a recreate keeps every model.
    A stopped container that matches is started, not recreated.
    """
    current = _first(host.get_fact(DockerContainer, object_id=spec.name))
    run = spec.run_command() + " >/dev/null"
    if current is None:
        yield run
        return
    changes = spec_changes(spec, current, _first(host.get_fact(DockerImage, object_id=spec.image)))
    if changes:
        logger.info(f"{host.print_prefix}recreating {spec.name}: {'; '.join(changes)}")
        yield f"docker rm --force {shlex.quote(spec.name)} >/dev/null"
        yield run
        return
    if not is_running(current):
        yield f"docker start {shlex.quote(spec.name)} >/dev/null"
        return
    host.noop(f"container {spec.name} runs as configured")


@operation()
def wait_for_container_api(api_url: str, version: str, timeout: int, container: str):
    """
    Wait until GET /api/version answers the pinned version; on timeout quote the container log.

    + api_url: base URL of the published API on the host
    + version: the version it must answer
    + timeout: seconds to wait
    + container: the container whose log is shown on failure
    """
    yield from wait_for_api._inner(
        api_url=api_url,
        version=version,
        timeout=timeout,
        who=f"container {container}",
        logs=f"docker logs --tail 20 {shlex.quote(container)}",
        log_title="last log lines",
        hint="; a digest pin must match ollama_version",
    )
