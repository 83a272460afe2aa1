"""The Docker-specific causes of `100% CPU`, named from recorded outputs, each with its fix."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from facts.parsers.docker import parse_docker_info
from facts.parsers.nvidia import parse_nvidia_smi
from roles.docker.diagnose import (
    DockerFinding,
    cdi_spec_missing,
    cgroup_driver_fault,
    daemon_json_invalid,
    diagnose_docker,
    no_device_request,
    runtime_missing,
)

OUTPUTS = Path(__file__).parents[1] / "fixtures" / "outputs"
DOCKER = Path(__file__).parents[1] / "fixtures" / "docker"
RUNTIME_JSON = '{"runtimes": {"nvidia": {"path": "nvidia-container-runtime", "args": []}}}'


def info(name: str) -> dict[str, Any]:
    return parse_docker_info((OUTPUTS / "docker-info" / name).read_text())


def container(name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = json.loads((DOCKER / f"{name}.json").read_text())
    return copy.deepcopy(found[0])


def codes(findings: list[DockerFinding]) -> list[str]:
    return [f.code for f in findings]


NO_NVIDIA = "json-no-nvidia-2020.json"  # Runtimes: runc only, cgroupfs
WITH_NVIDIA = "nvidia-runtime-systemd-cgroup.txt"  # nvidia runtime, systemd cgroup driver


def test_healthy_runtime_setup_has_no_error() -> None:
    found = diagnose_docker(
        info=info(WITH_NVIDIA),
        daemon_json=RUNTIME_JSON,
        toolkit_version="1.17.8",
        container=container("container-gpus-all"),
    )
    assert [f.severity for f in found] == ["warning"]  # only the systemd driver risk


def test_no_toolkit() -> None:
    found = runtime_missing(info(NO_NVIDIA), None, None)
    assert codes(found) == ["docker-toolkit-missing"]
    assert found[0].evidence == ("docker info: Runtimes: runc", "nvidia-ctk: not found")


def test_toolkit_installed_but_docker_not_restarted() -> None:
    found = runtime_missing(info(NO_NVIDIA), RUNTIME_JSON, "1.17.8")
    assert codes(found) == ["docker-runtime-not-loaded"]
    assert "systemctl restart docker" in found[0].fix


def test_toolkit_installed_but_runtime_not_registered() -> None:
    found = runtime_missing(info(NO_NVIDIA), '{"log-driver": "local"}', "1.17.8")
    assert codes(found) == ["docker-no-nvidia-runtime"]
    assert "nvidia-ctk runtime configure --runtime=docker" in found[0].fix


def test_cdi_mode_needs_no_runtime_but_a_current_spec() -> None:
    assert runtime_missing(info(NO_NVIDIA), None, "1.17.8", cdi=True) == []
    assert cdi_spec_missing(True, ["550.54.14"], "550.54.14") == []
    assert codes(cdi_spec_missing(True, None, "550.54.14")) == ["docker-cdi-spec-stale"]
    stale = cdi_spec_missing(True, ["535.183.01"], "550.54.14")
    assert "names driver 535.183.01, the host runs 550.54.14" in stale[0].cause
    assert cdi_spec_missing(False, None, None) == []


def test_invalid_daemon_json_is_named_once() -> None:
    text = (OUTPUTS / "daemon-json" / "invalid-trailing-comma-nvidia-default.json").read_text()
    found = diagnose_docker(info=info(WITH_NVIDIA), daemon_json=text, toolkit_version="1.17.8")
    assert codes(found)[0] == "docker-daemon-json-invalid"
    assert "invalid JSON at line" in found[0].evidence[0]
    assert daemon_json_invalid(None) == [] and daemon_json_invalid("{}") == []


def test_container_without_gpu_request() -> None:
    plain = container("container-gpus-all")
    plain["HostConfig"]["DeviceRequests"] = None
    found = no_device_request(plain, info(WITH_NVIDIA))
    assert codes(found) == ["container-without-gpu-request"]
    assert "rec-gpus-all" in found[0].cause and "--gpus=all" in found[0].fix
    assert no_device_request(container("container-cdi-all")) == []
    assert no_device_request(container("container-gpus-devices")) == []
    assert no_device_request(None) == []


def test_nvidia_default_runtime_hands_out_gpus_without_a_request() -> None:
    plain = container("container-gpus-all")
    plain["HostConfig"]["DeviceRequests"] = None
    default_nvidia = {**info(WITH_NVIDIA), "default_runtime": "nvidia"}
    assert no_device_request(plain, default_nvidia) == []  # the image sets NVIDIA_VISIBLE_DEVICES


def test_gpu_lost_under_the_systemd_cgroup_driver() -> None:
    smi = parse_nvidia_smi((OUTPUTS / "nvidia-smi" / "fail-nvml-unknown-error.txt").read_text())
    found = cgroup_driver_fault(info(WITH_NVIDIA), smi)
    assert codes(found) == ["gpu-lost-in-container"]
    assert "docker info: Cgroup Driver: systemd" in found[0].evidence
    assert "docker_cgroupfs=True" in found[0].fix
    assert codes(cgroup_driver_fault(info(WITH_NVIDIA), None)) == ["docker-systemd-cgroup-driver"]
    assert cgroup_driver_fault(info(NO_NVIDIA), None) == []


def test_everything_wrong_at_once_errors_first() -> None:
    plain = container("container-gpus-all")
    plain["HostConfig"]["DeviceRequests"] = []
    found = diagnose_docker(
        info=info(WITH_NVIDIA) | {"nvidia_runtime": False, "runtimes": ["runc"]},
        daemon_json=None,
        toolkit_version=None,
        container=plain,
    )
    assert codes(found) == [
        "docker-toolkit-missing",
        "container-without-gpu-request",
        "docker-systemd-cgroup-driver",
    ]


@pytest.mark.parametrize("engine_error", ["daemon-unreachable", "not-found"])
def test_an_engine_that_does_not_answer_says_nothing_about_runtimes(engine_error: str) -> None:
    assert runtime_missing({"error": engine_error}, None, None) == []


def test_findings_convert_to_the_doctors_shape() -> None:
    finding = runtime_missing(info(NO_NVIDIA), None, None)[0]
    data = finding.to_dict()
    assert set(data) == {"code", "cause", "fix", "evidence", "severity"}
    assert isinstance(data["evidence"], list) and str(finding).startswith(finding.cause)
