"""Pure: what ollama-rig adds to /etc/docker/daemon.json, merged into what is there.

Relied on (FACTS.md section 6; moby daemon/config): dockerd reads one JSON object and refuses
to start on invalid JSON; `nvidia-ctk runtime configure --runtime=docker` adds
"runtimes": {"nvidia": {"path": "nvidia-container-runtime", "args": []}} and, with
--set-as-default, "default-runtime": "nvidia"; the cgroup driver is the exec-opt
"native.cgroupdriver=cgroupfs"; Docker 25-27 need "features": {"cdi": true} for CDI devices.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from facts.parsers import ParseError
from facts.parsers.docker import parse_daemon_json
from settings import Settings

DAEMON_JSON = "/etc/docker/daemon.json"
NVIDIA_RUNTIME = {"path": "nvidia-container-runtime", "args": []}
CGROUP_DRIVER_OPT = "native.cgroupdriver"
CGROUPFS_OPT = f"{CGROUP_DRIVER_OPT}=cgroupfs"


class DaemonJsonError(ValueError):
    """daemon.json cannot be merged into (invalid JSON, wrong types); the message is one line."""


@dataclass(frozen=True)
class DaemonWants:
    """The keys the settings ask of daemon.json; False leaves a key as the host has it."""

    nvidia_runtime: bool = False
    default_runtime_nvidia: bool = False
    cgroupfs: bool = False
    cdi: bool = False

    @property
    def anything(self) -> bool:
        return self.nvidia_runtime or self.default_runtime_nvidia or self.cgroupfs or self.cdi


def daemon_wants(settings: Settings) -> DaemonWants:
    """What this host's daemon.json must hold (nothing GPU-related on a gpu='none' host)."""
    gpu = settings.gpu != "none"
    return DaemonWants(
        nvidia_runtime=gpu and (settings.docker_gpu_mode == "runtime"),
        default_runtime_nvidia=gpu and settings.docker_default_runtime_nvidia,
        cgroupfs=settings.docker_cgroupfs,
        cdi=gpu and settings.docker_gpu_mode == "cdi",
    )


def read_daemon_json(text: str, path: str = DAEMON_JSON) -> dict[str, Any]:
    """The config object of daemon.json text; DaemonJsonError naming the fault otherwise."""
    try:
        return dict(parse_daemon_json(text)["config"])
    except ParseError as exc:
        raise DaemonJsonError(
            f"{path}: {exc}. Docker cannot start with it either: fix or remove it by hand"
            " (ollama-rig never overwrites a file it cannot read); nothing was changed"
        ) from None


def _with_exec_opt(opts: list[str]) -> list[str]:
    """exec-opts with the cgroup driver set to cgroupfs, in place of any other driver."""
    result: list[str] = []
    placed = False
    for opt in opts:
        if opt.partition("=")[0].strip() == CGROUP_DRIVER_OPT:
            if not placed:
                result.append(CGROUPFS_OPT)
                placed = True
            continue
        result.append(opt)
    return result if placed else [*result, CGROUPFS_OPT]


def merge_daemon_json(
    current: str | None, wants: DaemonWants, path: str = DAEMON_JSON
) -> str | None:
    """The new daemon.json text with wants merged into current, or None when nothing changes.

    current: the file's text, None when there is no file. Every key already there is kept
    (registries, log options, a user's default-runtime, an nvidia runtime of their own). A file
    that is not valid JSON raises DaemonJsonError: it is never overwritten. The result is
    parsed again before it is returned, so what is written is always valid.

    Example: merge_daemon_json('{"log-driver": "local"}', DaemonWants(nvidia_runtime=True))
    """
    config = read_daemon_json(current, path) if current is not None else {}
    merged = copy.deepcopy(config)
    if wants.nvidia_runtime or wants.default_runtime_nvidia:
        runtimes = merged.setdefault("runtimes", {})
        runtimes.setdefault("nvidia", copy.deepcopy(NVIDIA_RUNTIME))
    if wants.default_runtime_nvidia:
        merged["default-runtime"] = "nvidia"
    if wants.cgroupfs:
        merged["exec-opts"] = _with_exec_opt(list(merged.get("exec-opts", [])))
    if wants.cdi:
        features = merged.setdefault("features", {})
        if not isinstance(features, dict):
            raise DaemonJsonError(
                f'{path}: "features" must be a JSON object; fix it by hand; nothing was changed'
            )
        features["cdi"] = True
    if merged == config:
        return None
    text = json.dumps(merged, indent=2) + "\n"
    read_daemon_json(text, path)  # validated before it is written
    return text
