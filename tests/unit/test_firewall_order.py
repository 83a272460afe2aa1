"""The allow-list and the listening address change in a safe order (roles/native/firewall.py).

Ollama has no authentication: at no point may it listen beyond loopback without the allow-list.
Exposing: the rules go in before Ollama (re)starts on the exposed address. Back to loopback: the
rules go only after Ollama was restarted there and answers. These tests queue a whole deploy in
a pyinfra State (facts stubbed, no host reached) and read the order pyinfra would run it in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from unittest.mock import patch

import pytest
from pyinfra.api import Config, Inventory, State
from pyinfra.api import host as api_host
from pyinfra.api.deploy import add_deploy

from roles.docker import install_docker_ollama
from roles.native import install_ollama
from roles.native.firewall import exposed_listeners
from roles.preflight.check import HostFacts
from settings import Settings, settings_from_data

EXPOSED = {"ollama_listen": "0.0.0.0:11434", "ollama_allow_from": ["192.168.77.0/24"]}
FIREWALL = "Ollama firewall | "
# What the deploys read in Python (operations are not run: check_for_changes=False).
FACTS: dict[str, Any] = {
    "Groups": [],
    "File": True,  # a firewall unit from an exposed run is there
    "DockerContainer": [],
    "DockerEngine": {"error": None, "server_version": "27.5.1"},
    "DockerDaemonConfig": None,
    "TcpListeners": [],
}
DOCKER_HOST = HostFacts(
    os_id="debian",
    os_version="12",
    machine="x86_64",
    init="systemd",
    cpu_flags=["avx", "avx2"],
    nvidia_smi={"gpus": [], "error": "not-found", "message": "nvidia-smi: not found"},
    pci_functions=[],
)


def stub_fact(
    state: State, host: Any, cls: type, args: Any = None, kwargs: Any = None, **_: Any
) -> Any:
    return FACTS[cls.__name__]


def queued(deploy: Callable[..., Any], **kwargs: Any) -> list[str]:
    """The names of the operations deploy queues, in the order pyinfra runs them."""
    inventory = Inventory((["rig-host"], {}))
    state = State(inventory, Config(), check_for_changes=False)
    with patch.object(api_host, "get_fact", stub_fact):
        add_deploy(state, deploy, host=inventory.get_host("rig-host"), **kwargs)
    return [sorted(state.op_meta[op].names)[0] for op in state.get_op_order()]


def run_native(settings: Settings) -> list[str]:
    return queued(install_ollama, settings=settings, machine="x86_64")


def run_docker(settings: Settings) -> list[str]:
    return queued(install_docker_ollama, settings=settings, facts=DOCKER_HOST)


def position(names: list[str], ending: str) -> int:
    found = [i for i, name in enumerate(names) if name.endswith(ending)]
    assert len(found) == 1, f"{ending!r} in {names}"
    return found[0]


def firewall_ops(names: list[str]) -> list[int]:
    found = [i for i, name in enumerate(names) if FIREWALL in name]
    assert found, f"no firewall operation in {names}"
    return found


NATIVE_LISTENS = "Restart Ollama on change"
# Exposing, the rules come even before the new address is written: a refused allow-list (ufw
# not active) then leaves nothing that a later run would not restart for.
NATIVE_WRITES = "ollama.service environment"
DOCKER_LISTENS = "Container ollama"
ANSWERS = "Ollama answers version 0.32.7"


@pytest.mark.parametrize(
    ("run", "topology", "extra", "listens"),
    [
        (run_native, "native", {}, NATIVE_WRITES),
        (run_native, "native", {"ollama_firewall": "ufw"}, NATIVE_WRITES),
        (run_docker, "docker", {}, DOCKER_LISTENS),
    ],
    ids=["native-nftables", "native-ufw", "docker"],
)
def test_exposing_puts_the_allow_list_in_before_ollama_listens(
    run: Callable[[Settings], list[str]], topology: str, extra: dict[str, Any], listens: str
) -> None:
    names = run(settings_from_data({"topology": topology, **EXPOSED, **extra}))
    rules = firewall_ops(names)
    assert max(rules) < position(names, listens), names
    assert not any("Remove" in names[i] or "Stop" in names[i] for i in rules), names


@pytest.mark.parametrize(
    ("run", "topology", "listens"),
    [(run_native, "native", NATIVE_LISTENS), (run_docker, "docker", DOCKER_LISTENS)],
    ids=["native", "docker"],
)
def test_back_to_loopback_removes_the_allow_list_only_once_ollama_answers_there(
    run: Callable[[Settings], list[str]], topology: str, listens: str
) -> None:
    names = run(settings_from_data({"topology": topology}))
    removals = firewall_ops(names)
    assert [names[i].split(FIREWALL)[1] for i in removals] == [
        "Ollama listens on loopback only",
        "Remove ufw rules for Ollama",
        "Stop the firewall unit",
        "Remove the firewall unit",
        "Remove the firewall rules",
    ]
    assert min(removals) > position(names, ANSWERS) > position(names, listens), names


@pytest.mark.parametrize(
    ("listeners", "expected"),
    [
        (["127.0.0.1:11434", "[::1]:11434", "0.0.0.0:22"], []),
        (["0.0.0.0:11434", "127.0.0.1:11435"], ["0.0.0.0:11434"]),
        (["[::]:11434", "192.168.1.7:11434"], ["[::]:11434", "192.168.1.7:11434"]),
        (["0.0.0.0:114340"], []),
    ],
    ids=["loopback", "wildcard", "v6-and-lan", "other-port"],
)
def test_exposed_listeners_are_those_on_the_port_beyond_loopback(
    listeners: list[str], expected: list[str]
) -> None:
    assert exposed_listeners(listeners, 11434) == expected
