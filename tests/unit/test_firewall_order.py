"""The allow-list and the listening address change in a safe order (roles/native/firewall.py).

Ollama has no authentication: at no point may it listen beyond loopback without the allow-list.
Exposing: the rules go in before Ollama (re)starts on the exposed address. Back to loopback: the
rules go only after Ollama was restarted there and answers. These tests queue a whole deploy in
a pyinfra State (facts stubbed, no host reached) and read the order pyinfra would run it in.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from jinja2 import Environment
from pyinfra.api import Config, Inventory, State
from pyinfra.api import host as api_host
from pyinfra.api.deploy import add_deploy

from roles.docker import install_docker_ollama
from roles.native import install_ollama
from roles.native.firewall import (
    RULES,
    UFW_PORTS,
    UNIT_FILE,
    exposed_listeners,
    nft_ports,
    record_ports,
    rules_ports,
)
from roles.preflight.check import HostFacts
from settings import Settings, settings_from_data
from templates import template_path

EXPOSED = {"ollama_listen": "0.0.0.0:11434", "ollama_allow_from": ["192.168.77.0/24"]}
FIREWALL = "Ollama firewall | "
# What the deploys read in Python (operations are not run: check_for_changes=False).
FACTS: dict[str, Any] = {
    "Groups": [],
    "File": True,
    "DockerContainer": [],
    "DockerEngine": {"error": None, "server_version": "27.5.1"},
    "DockerDaemonConfig": None,
    "TcpListeners": [],
}
# FindInFile by path: what the last exposed run left (nftables rules for port 11434, no ufw record).
NFT_11434 = {RULES: ["    tcp dport 11434 drop"], UFW_PORTS: None}
UFW_11434 = {RULES: None, UFW_PORTS: ["11434"]}
NOTHING: dict[str, list[str] | None] = {RULES: None, UFW_PORTS: None}
DOCKER_HOST = HostFacts(
    os_id="debian",
    os_version="12",
    machine="x86_64",
    init="systemd",
    cpu_flags=["avx", "avx2"],
    nvidia_smi={"gpus": [], "error": "not-found", "message": "nvidia-smi: not found"},
    pci_functions=[],
)


def queued(
    deploy: Callable[..., Any], found: dict[str, list[str] | None], **kwargs: Any
) -> list[str]:
    """The names of the operations deploy queues, in the order pyinfra runs them."""

    def stub_fact(
        state: State, host: Any, cls: type, args: Any = None, kwargs: Any = None, **_: Any
    ) -> Any:
        path = str((kwargs or {}).get("path"))
        if cls.__name__ == "FindInFile":
            return found[path]
        if cls.__name__ == "File" and path == UNIT_FILE:  # the nftables unit comes with its rules
            return found[RULES] is not None
        return FACTS[cls.__name__]

    inventory = Inventory((["rig-host"], {}))
    state = State(inventory, Config(), check_for_changes=False)
    with patch.object(api_host, "get_fact", stub_fact):
        add_deploy(state, deploy, host=inventory.get_host("rig-host"), **kwargs)
    return [sorted(state.op_meta[op].names)[0] for op in state.get_op_order()]


def run_native(settings: Settings, found: dict[str, list[str] | None] = NFT_11434) -> list[str]:
    return queued(install_ollama, found, settings=settings, machine="x86_64")


def run_docker(settings: Settings, found: dict[str, list[str] | None] = NFT_11434) -> list[str]:
    return queued(install_docker_ollama, found, settings=settings, facts=DOCKER_HOST)


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
    run: Callable[..., list[str]], topology: str, extra: dict[str, Any], listens: str
) -> None:
    names = run(settings_from_data({"topology": topology, **EXPOSED, **extra}), NOTHING)
    rules = firewall_ops(names)
    assert max(rules) < position(names, listens), names
    assert not any("Remove" in names[i] or "Stop" in names[i] for i in rules), names


@pytest.mark.parametrize(
    ("run", "topology", "listens"),
    [(run_native, "native", NATIVE_LISTENS), (run_docker, "docker", DOCKER_LISTENS)],
    ids=["native", "docker"],
)
def test_back_to_loopback_removes_the_allow_list_only_once_ollama_answers_there(
    run: Callable[..., list[str]], topology: str, listens: str
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


MOVED = {"ollama_listen": "0.0.0.0:11500", "ollama_allow_from": ["192.168.77.0/24"]}


def split_at(names: list[str], ending: str) -> tuple[list[str], list[str]]:
    """The firewall operations queued before the one named by ending, and those after it."""
    at = position(names, ending)
    ops = [(i, names[i].split(FIREWALL)[1]) for i in firewall_ops(names)]
    return [name for i, name in ops if i < at], [name for i, name in ops if i > at]


@pytest.mark.parametrize(
    ("run", "topology", "listens"),
    [(run_native, "native", NATIVE_WRITES), (run_docker, "docker", DOCKER_LISTENS)],
    ids=["native", "docker"],
)
def test_a_port_change_filters_the_old_port_until_the_new_server_answers(
    run: Callable[..., list[str]], topology: str, listens: str
) -> None:
    names = run(settings_from_data({"topology": topology, **MOVED}), NFT_11434)
    before, _ = split_at(names, listens)
    _, after = split_at(names, ANSWERS)
    assert before[0] == "nftables allow-list for Ollama"  # rendered for 11434 and 11500
    assert after == [
        "Nothing listens beyond loopback on the ports Ollama left",
        "nftables rules: drop the old port",
        "Reload the allow-list without the old port",
    ]


def test_a_port_change_with_ufw_removes_the_old_ports_rules_after_the_restart() -> None:
    names = run_native(settings_from_data({"ollama_firewall": "ufw", **MOVED}), UFW_11434)
    before, _ = split_at(names, NATIVE_WRITES)
    _, after = split_at(names, ANSWERS)
    assert before == ["Record the ufw ports", "ufw allow-list for Ollama"]
    assert after == [
        "Nothing listens beyond loopback on the ports Ollama left",
        "Remove ufw rules of the old port",
        "Record the ufw ports",
    ]


@pytest.mark.parametrize(
    ("firewall", "found", "removed"),
    [
        (
            "ufw",
            NFT_11434,
            ["Stop the firewall unit", "Remove the firewall unit", "Remove the firewall rules"],
        ),
        ("nftables", UFW_11434, ["Remove ufw rules for Ollama", "Remove the ufw record"]),
    ],
    ids=["nftables-to-ufw", "ufw-to-nftables"],
)
def test_switching_firewall_removes_the_other_ones_rules_once_ollama_answers(
    firewall: str, found: dict[str, list[str] | None], removed: list[str]
) -> None:
    names = run_native(settings_from_data({"ollama_firewall": firewall, **EXPOSED}), found)
    before, _ = split_at(names, NATIVE_WRITES)
    _, after = split_at(names, ANSWERS)
    assert before and not any("Remove" in name or "Stop" in name for name in before), before
    assert after == removed


@pytest.mark.parametrize(
    ("firewall", "found"), [("nftables", NFT_11434), ("ufw", UFW_11434)], ids=["nftables", "ufw"]
)
def test_an_unchanged_exposed_port_removes_nothing(
    firewall: str, found: dict[str, list[str] | None]
) -> None:
    names = run_native(settings_from_data({"ollama_firewall": firewall, **EXPOSED}), found)
    assert split_at(names, ANSWERS)[1] == []


def test_the_rules_file_names_every_port_it_filters_and_is_read_back() -> None:
    assert nft_ports([11434]) == "11434"
    assert nft_ports([11434, 11500]) == "{ 11434, 11500 }"
    rules = Environment().from_string(Path(template_path("ollama-firewall.nft.j2")).read_text())
    text = rules.render(port=nft_ports([11434, 11500]), ipv4=["10.0.0.0/8"], ipv6=[])
    drops = [line for line in text.splitlines() if line.strip().endswith("drop")]
    assert drops == ["        tcp dport { 11434, 11500 } drop"]
    assert rules_ports(drops) == [11434, 11500]
    assert rules_ports(None) == [] and record_ports(["11434", "11500", ""]) == [11434, 11500]
