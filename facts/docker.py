"""Facts of the docker topology: the engine, its daemon.json, listening ports, the NVIDIA
Container Toolkit and its CDI spec. Containers and images: pyinfra's own DockerContainer and
DockerImage facts (`docker <type> inspect`).
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from typing import Any

from pyinfra.api import FactBase

from facts.parsers import ParseError
from facts.parsers.docker import parse_docker_info

DAEMON_JSON = "/etc/docker/daemon.json"
CDI_SPEC = "/etc/cdi/nvidia.yaml"


class DockerEngine(FactBase[dict[str, Any]]):
    """`docker info` parsed by facts.parsers.docker, or the reason it failed.

    .. code:: python

        {"server_version": "27.5.1", "runtimes": ["io.containerd.runc.v2", "nvidia", "runc"],
         "nvidia_runtime": True, "cgroup_driver": "systemd", ..., "error": None}

    error: None (the engine answers), "not-found" (no docker command), "daemon-unreachable",
    "permission-denied", or "unparseable".
    """

    def command(self) -> str:
        # Always exit 0: no engine, or one that is down, is a fact to act on, not a failure.
        return (
            "command -v docker >/dev/null 2>&1 || { echo 'docker: command not found'; exit 0; }; "
            "docker info --format '{{json .}}' 2>&1 || true"
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        # The JSON is one line; newer clients print a daemon error on stderr beside it.
        json_lines = [line for line in output if line.lstrip().startswith("{")]
        others = "\n".join(line for line in output if not line.lstrip().startswith("{"))
        info: dict[str, Any] | None = None
        if json_lines:
            try:
                info = parse_docker_info(json_lines[0])
            except ParseError:
                info = None
        if info is not None and (info["server_version"] or info["error"]):
            return info
        base = info or parse_docker_info("{}")
        try:
            found = parse_docker_info(others) if others.strip() else None
        except ParseError:
            found = None
        if found and found["error"]:
            base.update(error=found["error"], message=found["message"])
        else:
            base.update(error="unparseable", message=" ".join(others.split())[:200] or None)
        return base


class DockerDaemonConfig(FactBase[str | None]):
    """The text of Docker's daemon.json, or None when the file does not exist."""

    def command(self, path: str = DAEMON_JSON) -> str:
        quoted = shlex.quote(path)
        return f"if [ -e {quoted} ]; then echo present; cat {quoted}; else echo absent; fi"

    def process(self, output: list[str]) -> str | None:
        if not output or output[0].strip() != "present":
            return None
        return "\n".join(output[1:])


def _proc_net_address(hex_address: str) -> str:
    """ "0100007F:2CAA" (/proc/net/tcp) -> "127.0.0.1:11434"; IPv6 as "[::1]:11434"."""
    address, _, port = hex_address.partition(":")
    number = int(port, 16)
    if len(address) == 8:
        octets = bytes.fromhex(address)[::-1]
        return f"{'.'.join(str(b) for b in octets)}:{number}"
    # IPv6: four 32-bit words, each in host (little-endian) byte order.
    raw = b"".join(bytes.fromhex(address[i : i + 8])[::-1] for i in range(0, 32, 8))
    return f"[{ipaddress.IPv6Address(raw).compressed}]:{number}"


class TcpListeners(FactBase[list[str]]):
    """Local addresses with a listening TCP socket, from /proc/net/tcp and tcp6 (no `ss` needed).

    .. code:: python

        ["0.0.0.0:22", "127.0.0.1:11434", "[::]:22"]
    """

    default = list

    def command(self) -> str:
        return "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null || true"

    def process(self, output: list[str]) -> list[str]:
        listening = set()
        for line in output:
            fields = line.split()
            # sl local_address rem_address st ...; state 0A is TCP_LISTEN.
            if len(fields) > 3 and fields[3] == "0A" and ":" in fields[1]:
                listening.add(_proc_net_address(fields[1]))
        return sorted(listening)


class NvidiaCtkVersion(FactBase[str | None]):
    """The NVIDIA Container Toolkit's version (`nvidia-ctk --version`), or None without it."""

    def command(self) -> str:
        return "nvidia-ctk --version 2>/dev/null || true"

    def process(self, output: list[str]) -> str | None:
        for line in output:
            match = re.search(r"version\s+v?(\d+\.\d+\.\d+\S*)", line)
            if match:
                return match.group(1)
        return None


class CdiSpecDrivers(FactBase[list[str] | None]):
    """Driver versions an NVIDIA CDI spec mounts (its libcuda.so.<version>), or None if absent.

    A spec generated before a driver update names the old libraries: containers then fail to
    start, so a version missing here means the spec must be generated again.
    """

    def command(self, path: str = CDI_SPEC) -> str:
        quoted = shlex.quote(path)
        return f"if [ -e {quoted} ]; then echo present; cat {quoted}; else echo absent; fi"

    def process(self, output: list[str]) -> list[str] | None:
        if not output or output[0].strip() != "present":
            return None
        found = set()
        for line in output[1:]:
            found.update(re.findall(r"libcuda\.so\.(\d+\.\d+(?:\.\d+)?)", line))
        return sorted(found)
