"""Preflight decisions on host facts: who may be provisioned, and what is said when not."""

from __future__ import annotations

import inspect
import re
from dataclasses import replace
from typing import Any

import pytest

from roles.preflight.check import DRIVER_FIXES, HostFacts, check_host, needs_ufw
from settings import settings_from_data

RTX3070 = {
    "index": 0,
    "name": "NVIDIA GeForce RTX 3070",
    "memory_total_mib": 8192,
    "driver_version": "550.54.14",
    "pci_bus_id": "00000000:01:00.0",
}
PCI_3070 = [
    {"address": "0000:01:00.0", "vendor_device": "10de:2484", "class": "0300", "gpu": True},
    {"address": "0000:01:00.1", "vendor_device": "10de:228b", "class": "0403", "gpu": False},
]
GOOD = HostFacts(
    os_id="debian",
    os_version="12",
    machine="x86_64",
    init="systemd",
    cpu_flags=["avx", "avx2", "fpu"],
    nvidia_smi={"gpus": [RTX3070], "error": None, "message": None},
    pci_functions=PCI_3070,
)
NO_SMI: dict[str, Any] = {"gpus": [], "error": "not-found", "message": "nvidia-smi: not found"}


def check(facts: HostFacts = GOOD, **data: Any):
    return check_host(settings_from_data(data), facts)


def test_gpu_host_passes_with_a_summary() -> None:
    verdict = check()
    assert verdict.refusals == []
    assert "GPU 0: NVIDIA GeForce RTX 3070, 8192 MiB, driver 550.54.14" in verdict.lines[-1]
    assert verdict.gpus == [RTX3070]


def test_no_gpu_with_auto_stops_plainly() -> None:
    verdict = check(replace(GOOD, nvidia_smi=NO_SMI, pci_functions=[]))
    assert len(verdict.refusals) == 1
    assert "no NVIDIA GPU on this host and gpu='auto'" in verdict.refusals[0]
    assert "gpu='none'" in verdict.refusals[0]


def test_no_gpu_with_none_is_a_cpu_only_install() -> None:
    verdict = check(replace(GOOD, nvidia_smi=NO_SMI, pci_functions=[]), gpu="none")
    assert verdict.refusals == []
    assert any("CPU-only install" in line for line in verdict.lines)


@pytest.mark.parametrize(
    ("error", "fix"),
    [
        ("no-driver", "kernel module is not loaded"),
        ("version-mismatch", "reboot"),
        ("not-found", "install the NVIDIA driver"),
    ],
)
def test_gpu_with_broken_driver_names_the_fix(error: str, fix: str) -> None:
    smi = {"gpus": [], "error": error, "message": "..."}
    verdict = check(replace(GOOD, nvidia_smi=smi), gpu="nvidia")
    assert len(verdict.refusals) == 1
    assert "10de:2484 at 0000:01:00.0" in verdict.refusals[0] and fix in verdict.refusals[0]


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (replace(GOOD, os_id="fedora", os_version="40"), "fedora 40 is not supported"),
        (replace(GOOD, os_id="debian", os_version="11"), "debian 11 is not supported"),
        (replace(GOOD, os_id="ubuntu", os_version="20.04"), "ubuntu 20.04 is not supported"),
        (replace(GOOD, machine="armv7l"), "architecture armv7l is not supported"),
        (replace(GOOD, init="init"), "needs systemd"),
    ],
)
def test_unsupported_hosts_are_refused(facts: HostFacts, expected: str) -> None:
    refusals = check(facts).refusals
    assert any(expected in r for r in refusals), refusals


def test_ubuntu_2404_is_supported() -> None:
    assert check(replace(GOOD, os_id="ubuntu", os_version="24.04")).refusals == []


def test_missing_avx_is_a_warning_not_a_refusal() -> None:
    verdict = check(replace(GOOD, cpu_flags=["fpu", "sse4_2"]))
    assert verdict.refusals == []
    assert any(line.startswith("warning: no AVX") for line in verdict.lines)


def test_driver_error_without_visible_pci_functions_is_still_a_driver_problem() -> None:
    smi = {"gpus": [], "error": "version-mismatch", "message": "Failed to initialize NVML"}
    verdict = check(replace(GOOD, nvidia_smi=smi, pci_functions=[]), gpu="nvidia")
    assert verdict.refusals == [
        "NVIDIA GPU (PCI functions not visible here) but the driver"
        " was upgraded but the old kernel module is loaded: reboot"
    ]


def test_every_driver_error_code_of_the_parser_has_a_fix() -> None:
    from facts.parsers import nvidia

    codes = set(re.findall(r'"((?:no|not|version|nvml)-[a-z-]+)"', inspect.getsource(nvidia)))
    assert codes and codes <= set(DRIVER_FIXES), codes - set(DRIVER_FIXES)


UFW = {"ollama_listen": "0.0.0.0:11434", "ollama_allow_from": ["192.168.1.0/24"]}


@pytest.mark.parametrize("status", ["inactive", "not-installed", None])
def test_exposing_behind_a_ufw_that_is_not_active_is_refused_in_preflight(
    status: str | None,
) -> None:
    verdict = check(replace(GOOD, ufw=status), ollama_firewall="ufw", **UFW)
    assert len(verdict.refusals) == 1, verdict.refusals
    refusal = verdict.refusals[0]
    assert refusal.startswith(f"ollama_firewall='ufw' but ufw is {status or 'not read'}")
    assert "ufw enable" in refusal and "ollama_firewall='nftables'" in refusal


@pytest.mark.parametrize(
    ("data", "status"),
    [
        ({"ollama_firewall": "ufw", **UFW}, "active"),
        ({"ollama_firewall": "nftables", **UFW}, None),  # nftables needs no ufw
        ({"ollama_firewall": "ufw"}, None),  # loopback: no allow-list at all
    ],
    ids=["ufw-active", "nftables", "loopback"],
)
def test_ufw_is_asked_for_only_where_it_filters_an_exposed_ollama(
    data: dict[str, Any], status: str | None
) -> None:
    assert check(replace(GOOD, ufw=status), **data).refusals == []


def test_preflight_reads_ufw_only_where_it_is_needed() -> None:
    assert needs_ufw(settings_from_data({"ollama_firewall": "ufw", **UFW}))
    assert not needs_ufw(settings_from_data({"ollama_firewall": "ufw"}))
    assert not needs_ufw(settings_from_data({"ollama_firewall": "nftables", **UFW}))
