"""The docker topology: the engine, the NVIDIA runtime, and the Ollama container with its GPU.

Skipped unless the manifest says topology docker. What the container must look like comes from
/etc/ollama-rig/docker.json (roles/docker). A failure names the Docker-specific cause of a
CPU fallback and its fix (roles/docker/diagnose.py). The `100% GPU` check of every model
through the container is test_models.py's, with the manifest's ollama_cli (`docker exec`).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from facts.docker import NvidiaCtkVersion
from facts.parsers import ParseError
from facts.parsers.docker import parse_docker_info
from facts.parsers.nvidia import parse_nvidia_smi
from roles.docker.diagnose import diagnose_docker
from roles.docker.plan import CONTAINER_PORT, STATE_DIR, gpu_requests, port_bindings

DOCKER_MANIFEST = "/etc/ollama-rig/docker.json"


@pytest.fixture(scope="module")
def docker(host: Any, manifest: dict[str, Any]) -> dict[str, Any]:
    if manifest["topology"] != "docker":
        pytest.skip(f"topology {manifest['topology']!r}: no Docker container to check")
    found = host.file(DOCKER_MANIFEST)
    if not found.exists:
        pytest.fail(f"{DOCKER_MANIFEST} is missing on the host: run deploy.py against it first")
    result: dict[str, Any] = json.loads(found.content_string)
    return result


@pytest.fixture(scope="module")
def engine(host: Any, docker: dict[str, Any]) -> dict[str, Any]:
    out = host.run("docker info --format '{{json .}}'")
    json_line = next((line for line in out.stdout.splitlines() if line.startswith("{")), "")
    try:
        info = parse_docker_info(json_line or out.stdout + out.stderr)
    except ParseError as exc:
        pytest.fail(f"`docker info` gave nothing readable: {exc}")
    if info["error"]:
        pytest.fail(f"the Docker engine does not answer ({info['error']}): {info['message']}")
    return info


@pytest.fixture(scope="module")
def container(host: Any, docker: dict[str, Any]) -> dict[str, Any]:
    out = host.run("docker container inspect %s", docker["container"])
    if out.rc != 0:
        pytest.fail(f"no container {docker['container']}: {out.stderr.strip()}")
    inspected: dict[str, Any] = json.loads(out.stdout)[0]
    return inspected


def _diagnosis(host: Any, engine: dict[str, Any], container: dict[str, Any], **more: Any) -> str:
    """The Docker-specific causes found on the host, for a failure message."""
    daemon = host.file("/etc/docker/daemon.json")
    toolkit = host.run("nvidia-ctk --version")
    version = NvidiaCtkVersion().process(toolkit.stdout.splitlines()) if toolkit.rc == 0 else None
    findings = diagnose_docker(
        info=engine,
        daemon_json=daemon.content_string if daemon.exists else None,
        toolkit_version=version,
        container=container,
        **more,
    )
    return " ".join(f"[{f.code}] {f}" for f in findings) or "no Docker-specific cause found"


def test_container_runs_the_pinned_image(container: dict[str, Any], docker: dict[str, Any]) -> None:
    state = container["State"]
    assert state.get("Running"), (
        f"container {docker['container']} is {state.get('Status')}: see"
        f" `docker logs {docker['container']}`"
    )
    assert container["Config"]["Image"] == docker["image"], (
        f"container runs {container['Config']['Image']}, pinned {docker['image']}"
    )
    policy = container["HostConfig"]["RestartPolicy"]["Name"] or "no"
    assert policy == docker["restart"], f"restart policy {policy}, configured {docker['restart']}"


def test_port_published_only_where_configured(
    container: dict[str, Any], docker: dict[str, Any]
) -> None:
    published = port_bindings(container)
    wanted = [f"{docker['publish']}->{CONTAINER_PORT}/tcp"]
    assert published == wanted, f"the container publishes {published}, configured {wanted}"


def test_models_outlive_the_container(container: dict[str, Any], docker: dict[str, Any]) -> None:
    mounts = {m.get("Destination"): m for m in container.get("Mounts") or []}
    mount = mounts.get(STATE_DIR)
    assert mount is not None, f"{STATE_DIR} is not mounted: models are lost with the container"
    source = mount.get("Source") if mount.get("Type") == "bind" else mount.get("Name")
    assert source == docker["models"], f"{STATE_DIR} comes from {source}, not {docker['models']}"


def test_cgroup_driver_as_configured(engine: dict[str, Any], docker: dict[str, Any]) -> None:
    if not docker["cgroupfs"]:
        pytest.skip("docker_cgroupfs is off: the cgroup driver is the host's choice")
    assert engine["cgroup_driver"] == "cgroupfs", (
        f"Docker runs the {engine['cgroup_driver']} cgroup driver, docker_cgroupfs asks cgroupfs:"
        " restart Docker (`systemctl restart docker`)"
    )


def test_nvidia_runtime_registered(
    host: Any,
    engine: dict[str, Any],
    container: dict[str, Any],
    docker: dict[str, Any],
    gpu_expected: None,
) -> None:
    if docker["gpu_mode"] == "cdi":
        spec = host.file("/etc/cdi/nvidia.yaml")
        assert spec.exists, "CDI mode but no /etc/cdi/nvidia.yaml: " + _diagnosis(
            host, engine, container, cdi=True
        )
        return
    assert engine["nvidia_runtime"], (
        f"`docker info` lists runtimes {engine['runtimes']}, no nvidia: "
        + _diagnosis(host, engine, container)
    )


def test_container_requests_the_gpu(
    host: Any,
    engine: dict[str, Any],
    container: dict[str, Any],
    docker: dict[str, Any],
    gpu_expected: None,
) -> None:
    requested = gpu_requests(container)
    assert requested and requested == docker["gpu_request"], (
        f"the container requests {requested or 'no GPU'},"
        f" configured {docker['gpu_request'] or 'none (deployed with gpu=none)'}: "
        + _diagnosis(host, engine, container)
    )


def test_nvidia_smi_works_in_container(
    host: Any,
    engine: dict[str, Any],
    container: dict[str, Any],
    docker: dict[str, Any],
    gpu_expected: None,
) -> None:
    out = host.run("docker exec %s nvidia-smi -L", docker["container"])
    text = out.stdout + out.stderr
    try:
        smi = parse_nvidia_smi(text)
    except ParseError:
        smi = {"gpus": [], "error": "unparseable", "message": text.strip()[:200]}
    assert out.rc == 0 and smi.get("gpus"), (
        f"nvidia-smi in {docker['container']} fails ({smi.get('error')}: {text.strip()[:200]}): "
        + _diagnosis(host, engine, container, container_smi=smi, cdi=docker["gpu_mode"] == "cdi")
    )
