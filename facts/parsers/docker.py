"""Parsers for `docker info` (human and `--format '{{json .}}'`) and /etc/docker/daemon.json.

Relied on (docker/cli cli/command/system/info.go, moby api/types/system.Info): the human form
prints " Runtimes: a b c", " Default Runtime: x", " Cgroup Driver: x", " Server Version: x";
the JSON form has Runtimes (object), DefaultRuntime, CgroupDriver, CgroupVersion,
ServerVersion, Warnings and, when the daemon is unreachable, ServerErrors.
"""

from __future__ import annotations

import json
import re
from typing import Any

from facts.parsers import ParseError

_ERRORS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"Cannot connect to the Docker daemon"), "daemon-unreachable"),
    (
        re.compile(r"permission denied while trying to connect to the Docker daemon", re.I),
        "permission-denied",
    ),
    (re.compile(r"docker: (?:command )?not found|command not found: docker"), "not-found"),
]
_FIELDS = {
    "Server Version": "server_version",
    "Default Runtime": "default_runtime",
    "Cgroup Driver": "cgroup_driver",
    "Cgroup Version": "cgroup_version",
}


def _empty() -> dict[str, Any]:
    return {
        "server_version": None,
        "runtimes": [],
        "default_runtime": None,
        "cgroup_driver": None,
        "cgroup_version": None,
        "nvidia_runtime": False,
        "cdi_devices": [],
        "warnings": [],
        "error": None,
        "message": None,
    }


def _error_of(lines: list[str]) -> tuple[str, str] | None:
    for pattern, code in _ERRORS:
        for line in lines:
            if pattern.search(line):
                return code, line.strip().removeprefix("ERROR: ")
    return None


def _from_json(data: dict[str, Any]) -> dict[str, Any]:
    info = _empty()
    runtimes = data.get("Runtimes") or {}
    info["server_version"] = data.get("ServerVersion") or None
    info["runtimes"] = sorted(runtimes) if isinstance(runtimes, dict) else []
    info["default_runtime"] = data.get("DefaultRuntime") or None
    info["cgroup_driver"] = data.get("CgroupDriver") or None
    info["cgroup_version"] = data.get("CgroupVersion") or None
    info["cdi_devices"] = [
        d.get("ID")
        for d in data.get("DiscoveredDevices") or []
        if isinstance(d, dict) and d.get("Source") == "cdi"
    ]
    info["warnings"] = [w for w in data.get("Warnings") or [] if isinstance(w, str)]
    server_errors = [e for e in data.get("ServerErrors") or [] if isinstance(e, str)]
    if server_errors:
        found = _error_of(server_errors)
        info["error"], info["message"] = found if found else ("server-error", server_errors[0])
    return info


def parse_docker_info(text: str) -> dict[str, Any]:
    """`docker info` (either form) -> {"server_version", "runtimes", "default_runtime",
    "cgroup_driver", "cgroup_version", "nvidia_runtime", "cdi_devices", "warnings",
    "error", "message"}.

    error: null, "daemon-unreachable", "permission-denied", "not-found" (a valid result: the
    client part may still print). Text that is neither form is a ParseError.
    """
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ParseError(
                f"docker info JSON is invalid at line {exc.lineno} column {exc.colno}: {exc.msg}"
            ) from exc
        if not isinstance(data, dict):
            raise ParseError("docker info JSON is not an object")
        info = _from_json(data)
    else:
        info = _empty()
        lines = text.splitlines()
        recognised = False
        in_cdi = False
        for line in lines:
            key, sep, value = line.strip().partition(":")
            if line.startswith("WARNING:"):
                info["warnings"].append(line.strip())
                continue
            if key == "Discovered Devices" and sep:
                in_cdi, recognised = True, True
                continue
            if in_cdi and line.startswith("  ") and key == "cdi":
                info["cdi_devices"].append(value.strip())
                continue
            in_cdi = False
            if not sep:
                continue
            if key == "Runtimes":
                info["runtimes"] = sorted(value.split())
                recognised = True
            elif key in _FIELDS:
                info[_FIELDS[key]] = value.strip() or None
                recognised = True
            elif key in ("Server", "Client", "Containers", "Storage Driver"):
                recognised = True
        found = _error_of(lines)
        if found:
            info["error"], info["message"] = found
        elif not recognised:
            raise ParseError("not docker info output (no Runtimes/Server Version/... lines)")
    info["nvidia_runtime"] = "nvidia" in info["runtimes"]
    return info


def parse_daemon_json(text: str) -> dict[str, Any]:
    """/etc/docker/daemon.json -> {"config", "runtimes", "default_runtime", "exec_opts",
    "cgroup_driver", "nvidia_runtime", "problems"}.

    Invalid JSON is a ParseError naming line and column (dockerd refuses to start on it);
    wrong types for the keys this project writes (runtimes, default-runtime, exec-opts) are
    ParseErrors too. problems: "default-runtime-unknown" when default-runtime names no
    configured or built-in runtime.
    """
    if not text.strip():
        raise ParseError("daemon.json is empty (dockerd fails with EOF); write {} instead")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(
            f"daemon.json is invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    if not isinstance(config, dict):
        raise ParseError("daemon.json must be a JSON object")
    runtimes = config.get("runtimes", {})
    if not isinstance(runtimes, dict) or not all(
        isinstance(r, dict) and isinstance(r.get("path"), str) for r in runtimes.values()
    ):
        raise ParseError('daemon.json "runtimes" must map names to objects with a "path" string')
    default = config.get("default-runtime")
    if default is not None and not isinstance(default, str):
        raise ParseError('daemon.json "default-runtime" must be a string')
    exec_opts = config.get("exec-opts", [])
    if not isinstance(exec_opts, list) or not all(isinstance(o, str) for o in exec_opts):
        raise ParseError('daemon.json "exec-opts" must be a list of strings')
    driver = None
    for opt in exec_opts:
        name, _, value = opt.partition("=")
        if name.strip() == "native.cgroupdriver":
            driver = value.strip()
    problems = []
    if default and default not in runtimes and default not in ("runc", "io.containerd.runc.v2"):
        problems.append("default-runtime-unknown")
    return {
        "config": config,
        "runtimes": {name: r["path"] for name, r in runtimes.items()},
        "default_runtime": default,
        "exec_opts": exec_opts,
        "cgroup_driver": driver,
        "nvidia_runtime": "nvidia" in runtimes,
        "problems": problems,
    }
