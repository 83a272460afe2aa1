"""Tier 2, docker topology: deploy.py applied for real to a systemd container running its own
Docker engine (tests/integration/docker_host.py), twice, then tests/verify against it.

The Ollama image is the stand-in (tests/standin/docker_image.py, a test fixture) loaded from a
`docker save` archive, the air-gapped path. The host has no GPU (gpu='none'): the NVIDIA
Container Toolkit's apt install and the `nvidia-ctk` steps are tested at the operation level
(tests/unit/pyinfra_cases), the `100% GPU` verdict through the container with the stand-in's
simulated VRAM. Tests run in file order and build on each other.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration import docker_host, testbed
from tests.integration.deployer import (
    MODEL,
    ROOT,
    VARIANT,
    DeployRun,
    api_version,
    changed,
    ran_in_order,
    run_deploy,
    run_verify,
    sh,
    wait_http,
)
from tests.standin.docker_image import build_image_archive, build_rootfs, image_name

VERSION = "0.32.7"
# Directories whose listing must not move under a refused run.
# A user's daemon.json: every key must survive the merge.
USER_DAEMON_JSON = {"log-driver": "json-file", "log-opts": {"max-size": "10m"}, "debug": False}
# The stand-in's simulated GPU (a fixture knob), set through the container's environment.
VRAM = {"OLLAMA_STANDIN_VRAM_BYTES": str(80 * 1024**3)}


@pytest.fixture(scope="module")
def host_id(test_image: str) -> Iterator[str]:
    """A fresh Docker-in-Docker host (test_image: the integration tier's engine check)."""
    docker_host.build_image()
    name = f"ollama-rig-it-docker-{os.getpid()}"
    container = docker_host.create(name)
    yield container
    docker_host.destroy(name)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in image as a `docker save` archive (its root file system cached in build/)."""
    rootfs = build_rootfs(ROOT / "build" / "standin-image")
    out = tmp_path_factory.mktemp("image") / f"ollama-standin-{VERSION}.tar"
    return build_image_archive(VERSION, rootfs, out)


def host_data(archive: Path, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "topology": "docker",
        "gpu": "none",  # no GPU here: GPU checks run with --rig-gpu and the stand-in's VRAM knob
        "docker_image": "ollama-rig/ollama-standin:{version}",
        "docker_image_archive": str(archive),
        "docker_cgroupfs": True,
        "ollama_models": [MODEL],
        "ollama_model_variants": {VARIANT: {"from": MODEL, "num_ctx": 65536}},
        "ollama_start_timeout": 30,
    }
    data.update(overrides)
    return data


def containers(host: str) -> str:
    return sh(host, "docker ps -a --format '{{.Names}} {{.Image}} {{.Status}}'")


def refused(run: DeployRun, *expected: str) -> None:
    assert run.returncode != 0, run.output[-3000:]
    assert "Traceback" not in run.output, run.output[-3000:]
    for text in expected:
        assert text in run.output, run.output[-3000:]


def test_invalid_daemon_json_is_refused_and_left_alone(host_id: str, archive: Path) -> None:
    broken = '{"log-driver": "json-file",\n "debug": true,\n}\n'
    testbed.exec_in(host_id, "sh", "-c", f"printf '%s' '{broken}' > /etc/docker/daemon.json")
    before = testbed.tree(host_id)
    try:
        run = run_deploy(host_id, host_data(archive))
        refused(run, "/etc/docker/daemon.json: daemon.json is invalid JSON at line 3", "by hand")
        assert testbed.tree(host_id) == before
        assert sh(host_id, "cat /etc/docker/daemon.json") == broken
        assert containers(host_id) == ""
    finally:
        testbed.exec_in(host_id, "rm", "-f", "/etc/docker/daemon.json")


def test_archive_without_the_image_is_refused(host_id: str, archive: Path) -> None:
    before = testbed.tree(host_id)
    run = run_deploy(host_id, host_data(archive, docker_image="ollama/ollama:{version}"))
    refused(run, f"holds {image_name(VERSION)}, not ollama/ollama:{VERSION}", "docker save")
    assert testbed.tree(host_id) == before and containers(host_id) == ""


def test_port_in_use_is_refused(host_id: str, archive: Path) -> None:
    testbed.docker(
        "exec", "-d", host_id, "python3", "-m", "http.server", "11434", "--bind", "127.0.0.1"
    )
    wait_http(host_id, "http://127.0.0.1:11434/")
    before = testbed.tree(host_id)
    try:
        run = run_deploy(host_id, host_data(archive))
        refused(run, "port 11434 is already in use on the host: 127.0.0.1:11434 listens")
        assert testbed.tree(host_id) == before and containers(host_id) == ""
    finally:
        sh(host_id, "pkill -f 'http.server 11434'", check=False)


def test_first_converge_runs_the_container(host_id: str, archive: Path) -> None:
    testbed.exec_in(
        host_id, "sh", "-c", f"echo '{json.dumps(USER_DAEMON_JSON)}' > /etc/docker/daemon.json"
    )
    run = run_deploy(host_id, host_data(archive))
    assert run.returncode == 0, run.output[-5000:]
    assert run.totals["error"] == 0 and run.totals["success"] > 0, run.totals
    assert f'"version":"{VERSION}"' in api_version(host_id)
    daemon = json.loads(sh(host_id, "cat /etc/docker/daemon.json"))
    assert daemon == {**USER_DAEMON_JSON, "exec-opts": ["native.cgroupdriver=cgroupfs"]}
    assert "Restart Docker for the new daemon.json" in " ".join(run.changed_operations())
    assert "Docker 20.10" in run.output and "works: kept" in run.output


def test_second_converge_changes_nothing(host_id: str, archive: Path) -> None:
    run = run_deploy(host_id, host_data(archive))
    assert run.returncode == 0, run.output[-5000:]
    assert run.totals["success"] == 0, changed(run)
    assert run.totals["no_change"] == run.operations


def test_verify_suite_passes_and_skips_gpu_checks_without_gpu(host_id: str) -> None:
    result = run_verify(host_id)
    assert result.returncode == 0, result.stdout[-5000:]
    for test in ("test_port_published_only_where_configured", "test_models_outlive_the_container"):
        assert f"PASSED tests/verify/test_docker.py::{test}" in result.stdout
    assert "topology 'docker': Ollama is not ollama.service" in result.stdout


def test_verify_suite_fails_on_cpu_and_names_the_docker_causes(host_id: str) -> None:
    result = run_verify(host_id, "--rig-gpu=nvidia", "-k", "gpu or nvidia")
    assert result.returncode == 1, result.stdout[-5000:]
    assert f"{MODEL} is not 100% GPU" in result.stdout and "100%/0% CPU/GPU" in result.stdout
    assert "[docker-toolkit-missing]" in result.stdout
    assert "[container-without-gpu-request]" in result.stdout


def test_changed_setting_recreates_the_container_and_keeps_the_models(
    host_id: str, archive: Path
) -> None:
    sh(host_id, "docker exec ollama sh -c ': > /root/.ollama/kept-across-recreate'")
    old = sh(host_id, "docker inspect -f '{{.Id}}' ollama")
    run = run_deploy(host_id, host_data(archive, docker_env=VRAM))
    assert run.returncode == 0, run.output[-5000:]
    assert run.changed_operations() == [
        "Ollama (docker) | Container ollama",
        "Ollama (docker) | Ollama answers version 0.32.7",
    ], changed(run)
    assert "recreating ollama: environment OLLAMA_STANDIN_VRAM_BYTES" in run.output
    assert sh(host_id, "docker inspect -f '{{.Id}}' ollama") != old
    sh(host_id, "docker exec ollama sh -c 'test -f /root/.ollama/kept-across-recreate'")
    result = run_verify(host_id, "--rig-gpu=nvidia", "-k", "test_model_loads_fully_on_gpu")
    assert result.returncode == 0, result.stdout[-5000:]
    assert result.stdout.count("PASSED tests/verify/test_models.py::test_model_loads_fully") == 2
    assert run_deploy(host_id, host_data(archive, docker_env=VRAM)).totals["success"] == 0


def test_stopped_container_is_started_not_recreated(host_id: str, archive: Path) -> None:
    old = sh(host_id, "docker inspect -f '{{.Id}}' ollama")
    sh(host_id, "docker stop ollama >/dev/null")
    run = run_deploy(host_id, host_data(archive, docker_env=VRAM))
    assert run.returncode == 0, run.output[-5000:]
    assert sh(host_id, "docker inspect -f '{{.Id}} {{.State.Running}}' ollama").split() == [
        old.strip(),
        "true",
    ]


def test_an_engine_that_is_down_is_started_not_reinstalled(host_id: str, archive: Path) -> None:
    sh(host_id, "systemctl stop docker.socket docker.service")
    run = run_deploy(host_id, host_data(archive, docker_env=VRAM))
    assert run.returncode == 0, run.output[-5000:]
    assert "Ollama (docker) | Docker running and enabled" in run.changed_operations()
    assert not any("Docker engine" in op for op in run.changed_operations()), changed(run)
    assert f'"version":"{VERSION}"' in api_version(host_id)  # the restart policy brought it back


# The allow-list is in place before the port is published beyond loopback, and goes only once
# the container published on loopback answers (--json lists operations in the order run).
def test_exposed_listen_publishes_behind_an_allow_list(host_id: str, archive: Path) -> None:
    data = host_data(archive, ollama_listen="0.0.0.0:11434", ollama_allow_from=["192.168.77.0/24"])
    run = run_deploy(host_id, data)
    assert run.returncode == 0, run.output[-5000:]
    ran_in_order(run, "nftables allow-list for Ollama", "Container ollama")
    ruleset = sh(host_id, "nft list table inet ollama_rig")
    assert "chain forward" in ruleset and "192.168.77.0/24" in ruleset
    assert "0.0.0.0:11434->11434/tcp" in sh(host_id, "docker ps --format '{{.Ports}}'")
    assert run_deploy(host_id, data).totals["success"] == 0
    result = run_verify(host_id)
    assert result.returncode == 0, result.stdout[-5000:]


# A port change: the rules file filters both ports (input and forward chains) until the container
# published on the new port answers, then only the new one.
def test_a_port_change_keeps_the_old_port_filtered_until_the_new_container_answers(
    host_id: str, archive: Path
) -> None:
    data = host_data(archive, ollama_listen="0.0.0.0:11500", ollama_allow_from=["192.168.77.0/24"])
    run = run_deploy(host_id, data)
    assert run.returncode == 0, run.output[-5000:]
    ran_in_order(
        run,
        "nftables allow-list for Ollama",
        "Container ollama",
        "nftables rules: drop the old port",
    )
    ruleset = sh(host_id, "nft list table inet ollama_rig")
    assert "proto-dst 11500" in ruleset and "11434" not in ruleset, ruleset
    assert "0.0.0.0:11500->11434/tcp" in sh(host_id, "docker ps --format '{{.Ports}}'")
    assert run_deploy(host_id, data).totals["success"] == 0


def test_back_to_loopback_removes_the_allow_list(host_id: str, archive: Path) -> None:
    run = run_deploy(host_id, host_data(archive))
    assert run.returncode == 0, run.output[-5000:]
    ran_in_order(run, "Container ollama", "Stop the firewall unit")
    assert "ollama_rig" not in sh(host_id, "nft list tables")
    assert "127.0.0.1:11434->11434/tcp" in sh(host_id, "docker ps --format '{{.Ports}}'")
    result = run_verify(host_id)
    assert result.returncode == 0, result.stdout[-5000:]
