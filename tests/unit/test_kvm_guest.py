"""The kvm guest (kvm_guest=True): settings, the driver plan on recorded /etc/os-release and APT
sources, the reboot decision on recorded lsmod and nvidia-smi failures, preflight, the wiring."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pyinfra.facts.server import LinuxDistribution

from facts.kvm import LoadedKernelModules
from facts.parsers.nvidia import parse_nvidia_smi
from roles.kvm.driver import (
    WANTED_COMPONENTS,
    GuestOs,
    driver_kept,
    driver_packages,
    guest_os,
    guest_refusals,
    headers_package,
    install_branch,
    merge_sources,
    reboot_reason,
)
from roles.kvm.guest import guest_manifest
from roles.preflight.check import HostFacts, check_host
from settings import SettingsError, settings_from_data

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "kvm-guest"
SMI = ROOT / "tests" / "fixtures" / "outputs" / "nvidia-smi"
KERNEL = "6.1.0-28-amd64"
GUEST: dict[str, Any] = {"topology": "native", "kvm_guest": True, "gpu": "nvidia"}
# Debian 12's nvidia-driver (535) is below what Ollama 0.30.11+ needs: an older release here.
OLD_OLLAMA = "0.30.10"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def recorded_os(name: str, kernel: str = KERNEL) -> GuestOs:
    """GuestOs through pyinfra's own LinuxDistribution parsing of a recorded /etc/os-release."""
    output = ["/etc/os-release", *fixture(name).splitlines(), "---"]
    return guest_os(LinuxDistribution().process(output)["release_meta"], kernel)


DEBIAN = recorded_os("os-release-debian-12.txt")
UBUNTU = recorded_os("os-release-ubuntu-24.04.txt", "6.8.0-49-generic")


def settings(**data: Any) -> Any:
    return settings_from_data({**GUEST, **data})


# --- settings --------------------------------------------------------------------------


def test_kvm_guest_defaults() -> None:
    plain = settings_from_data({})
    assert plain.kvm_guest is False
    assert plain.kvm_guest_driver_branch == "580" and plain.kvm_guest_driver_version is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"topology": "kvm"}, "set topology='native' on it"),
        ({"lxc_guest": True}, "a host is one or the other"),
        ({"gpu": "none"}, "set gpu='nvidia'"),
        ({"kvm_guest_driver_branch": "58"}, "three digits"),
        ({"kvm_guest_driver_version": "latest"}, "apt version"),
    ],
)
def test_bad_guest_settings_are_refused(data: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        settings(**data)


# --- the release, from recorded /etc/os-release ----------------------------------------


def test_os_release_gives_id_version_and_codename() -> None:
    assert (DEBIAN.os_id, DEBIAN.version_id, DEBIAN.codename) == ("debian", "12", "bookworm")
    assert (UBUNTU.os_id, UBUNTU.major, UBUNTU.codename) == ("ubuntu", "24", "noble")


def test_debian_packages_with_the_running_kernels_headers() -> None:
    assert driver_packages(settings(), DEBIAN) == ["nvidia-driver", "firmware-misc-nonfree"]
    assert headers_package(DEBIAN) == f"linux-headers-{KERNEL}"
    pinned = driver_packages(settings(kvm_guest_driver_version="535.261.03-1"), DEBIAN)
    assert pinned[0] == "nvidia-driver=535.261.03-1"


def test_ubuntu_server_packages_of_the_branch() -> None:
    assert driver_packages(settings(), UBUNTU) == [
        "nvidia-headless-580-server",
        "nvidia-utils-580-server",
    ]
    assert headers_package(UBUNTU) == "linux-headers-6.8.0-49-generic"
    version = "580.95.05-0ubuntu0.24.04.2"
    assert driver_packages(settings(kvm_guest_driver_version=version), UBUNTU) == [
        f"nvidia-headless-580-server={version}",
        f"nvidia-utils-580-server={version}",
    ]


def test_other_os_is_refused_in_one_line() -> None:
    fedora = recorded_os("os-release-fedora-40.txt")
    refusals = guest_refusals(settings(), fedora, {})
    assert len(refusals) == 1 and "runs fedora 40" in refusals[0]
    assert "set kvm_guest=False" in refusals[0]


def test_debian_12_driver_is_too_old_for_current_ollama() -> None:
    sources = {"/etc/apt/sources.list": fixture("debian-12-installer.list")}
    assert install_branch(settings(), DEBIAN) == 535
    refusals = guest_refusals(settings(), DEBIAN, sources)
    assert len(refusals) == 1
    assert "debian 12's nvidia-driver is the 535 branch" in refusals[0]
    assert "needs driver 550+" in refusals[0] and "Debian 13 or Ubuntu" in refusals[0]
    assert guest_refusals(settings(ollama_version=OLD_OLLAMA), DEBIAN, sources) == []


def test_ubuntu_branch_below_ollamas_minimum_is_refused() -> None:
    sources = {"/etc/apt/sources.list.d/ubuntu.sources": fixture("ubuntu-24.04-cloud.sources")}
    assert guest_refusals(settings(), UBUNTU, sources) == []
    refusals = guest_refusals(settings(kvm_guest_driver_branch="535"), UBUNTU, sources)
    assert len(refusals) == 1 and "kvm_guest_driver_branch='535', and Ollama" in refusals[0]
    assert "Set kvm_guest_driver_branch to 550 or newer" in refusals[0]


def test_ubuntu_pin_of_another_branch_is_refused() -> None:
    sources = {"/etc/apt/sources.list.d/ubuntu.sources": fixture("ubuntu-24.04-cloud.sources")}
    pin = settings(kvm_guest_driver_version="570.195.03-0ubuntu0.24.04.1")
    refusals = guest_refusals(pin, UBUNTU, sources)
    assert len(refusals) == 1
    assert "is of branch 570, not kvm_guest_driver_branch='580'" in refusals[0]


def test_no_release_source_is_refused_before_any_change() -> None:
    only_docker = (
        "deb [signed-by=/etc/apt/keyrings/docker.asc]"
        " https://download.docker.com/linux/debian bookworm stable\n"
    )
    refusals = guest_refusals(
        settings(ollama_version=OLD_OLLAMA), DEBIAN, {"/etc/apt/sources.list": only_docker}
    )
    assert len(refusals) == 1 and "no APT source of debian bookworm with the main" in refusals[0]


def test_no_codename_is_refused() -> None:
    refusals = guest_refusals(settings(ollama_version=OLD_OLLAMA), replace(DEBIAN, codename=""), {})
    assert any("no VERSION_CODENAME" in r for r in refusals)


# --- APT sources merged ----------------------------------------------------------------


def test_one_line_sources_get_the_components_and_keep_everything_else() -> None:
    text = fixture("debian-12-installer.list")
    merge = merge_sources({"/etc/apt/sources.list": text}, "bookworm", WANTED_COMPONENTS["debian"])
    assert merge.matched == 6  # deb and deb-src of bookworm, -security, -updates
    merged = merge.changed["/etc/apt/sources.list"]
    added = " contrib non-free"
    expected = [
        line + added if line.startswith("deb") and "docker.com" not in line else line
        for line in text.splitlines()
    ]
    assert merged.splitlines() == expected
    # The cdrom comment, blank lines, comments and Docker's line are kept byte for byte.
    assert "download.docker.com/linux/debian bookworm stable\n" in merged
    again = merge_sources({"p": merged}, "bookworm", WANTED_COMPONENTS["debian"])
    assert again.changed == {} and again.matched == 6


def test_deb822_sources_get_the_components_in_their_stanzas() -> None:
    text = fixture("debian-12-image.sources")
    merge = merge_sources({"/x/debian.sources": text}, "bookworm", WANTED_COMPONENTS["debian"])
    assert merge.matched == 2
    merged = merge.changed["/x/debian.sources"]
    assert merged.count("Components: main contrib non-free non-free-firmware\n") == 2
    # Only the Components lines differ; the comment lines inside the stanzas are kept.
    assert len(text.splitlines()) == len(merged.splitlines())
    pairs = zip(text.splitlines(), merged.splitlines(), strict=True)
    diff = [(a, b) for a, b in pairs if a != b]
    assert len(diff) == 2 and all(a == "Components: main" for a, _ in diff)
    assert merge_sources({"/x/debian.sources": merged}, "bookworm", ["contrib"]).changed == {}


def test_ubuntu_restricted_already_there_changes_nothing() -> None:
    text = fixture("ubuntu-24.04-cloud.sources")
    merge = merge_sources({"/u.sources": text}, "noble", WANTED_COMPONENTS["ubuntu"])
    assert merge.matched == 2 and merge.changed == {}


def test_ubuntu_without_restricted_gets_it() -> None:
    text = fixture("ubuntu-24.04-minimal.sources")
    merge = merge_sources({"/u.sources": text}, "noble", WANTED_COMPONENTS["ubuntu"])
    assert merge.changed["/u.sources"].count("Components: main universe restricted\n") == 2


def test_disabled_stanza_and_other_release_are_left_alone() -> None:
    text = (
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\n\n"
        "Enabled: no\nTypes: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\n"
        "Components: main\n"
    )
    merge = merge_sources({"/x.sources": text}, "bookworm", ["contrib"])
    assert merge.matched == 0 and merge.changed == {}


# --- reboot needed? on recorded lsmod and nvidia-smi failures ---------------------------


def smi(name: str) -> dict[str, Any]:
    return parse_nvidia_smi((SMI / name).read_text())


def modules(name: str) -> list[str]:
    return LoadedKernelModules().process(fixture(name).splitlines())


def test_loaded_modules_from_lsmod_and_proc_modules() -> None:
    assert "nouveau" in modules("lsmod-nouveau.txt")
    assert "Module" not in modules("lsmod-nouveau.txt")
    assert {"nvidia", "nvidia_uvm"} <= set(modules("proc-modules-nvidia.txt"))


def test_nouveau_loaded_after_install_needs_a_reboot() -> None:
    reason = reboot_reason(smi("fail-no-driver.txt"), modules("lsmod-nouveau.txt"))
    assert reason is not None and "nouveau holds the GPU" in reason


def test_not_installed_yet_needs_the_module_loaded() -> None:
    reason = reboot_reason(smi("fail-not-found-bash.txt"), [])
    assert reason == "the nvidia kernel module is not loaded yet"


def test_version_mismatch_after_an_upgrade_needs_a_reboot() -> None:
    reason = reboot_reason(smi("fail-version-mismatch-old.txt"), modules("proc-modules-nvidia.txt"))
    assert reason is not None and "another version" in reason


def test_working_driver_needs_no_reboot() -> None:
    working = {"gpus": [{"name": "NVIDIA GeForce RTX 3070"}], "error": None}
    assert reboot_reason(working, modules("proc-modules-nvidia.txt")) is None


# --- preflight ---------------------------------------------------------------------------


VM = HostFacts(
    os_id="debian",
    os_version="12",
    machine="x86_64",
    init="systemd",
    cpu_flags=["avx", "avx2"],
    nvidia_smi={"gpus": [], "error": "not-found", "message": "nvidia-smi: not found"},
    pci_functions=[
        {"address": "0000:06:10.0", "vendor_device": "10de:2484", "class": "0300", "gpu": True}
    ],
)


@pytest.mark.parametrize("error", ["not-found", "no-driver", "version-mismatch"])
def test_guest_without_driver_goes_on_to_the_install(error: str) -> None:
    facts = replace(VM, nvidia_smi={"gpus": [], "error": error, "message": "..."})
    verdict = check_host(settings(), facts)
    assert verdict.refusals == []
    assert any("driver not in use yet" in line for line in verdict.lines)


def test_same_facts_without_kvm_guest_are_refused() -> None:
    refusals = check_host(settings_from_data({"gpu": "nvidia"}), VM).refusals
    assert refusals and "nvidia-smi is missing" in refusals[0]


def test_guest_without_a_passed_through_gpu_is_refused() -> None:
    refusals = check_host(settings(), replace(VM, pci_functions=[])).refusals
    assert len(refusals) == 1 and "the GPU is not passed through" in refusals[0]


def test_guest_with_no_devices_is_still_a_driver_problem() -> None:
    facts = replace(VM, nvidia_smi={"gpus": [], "error": "no-devices", "message": "..."})
    refusals = check_host(settings(), facts).refusals
    assert refusals and "the driver sees no GPU" in refusals[0]


def test_manifest_names_ollamas_minimum_driver() -> None:
    assert guest_manifest(settings(), UBUNTU) == {
        "side": "guest",
        "os": "ubuntu 24.04",
        "min_driver": 550,
    }
    assert guest_manifest(settings(ollama_version=OLD_OLLAMA), DEBIAN)["min_driver"] == 531


def test_a_driver_in_use_is_kept_unless_a_version_is_pinned() -> None:
    working = {"gpus": [{"name": "RTX 3070", "driver_version": "550.163.01"}], "error": None}
    assert driver_kept(settings(), working) == "550.163.01"
    assert driver_kept(settings(kvm_guest_driver_version="535.261.03-1"), working) is None
    assert driver_kept(settings(), smi("fail-no-driver.txt")) is None


def test_lab_inventory_guest_is_marked() -> None:
    namespace: dict[str, Any] = {}
    exec(compile((ROOT / "inventory" / "lab.py").read_text(), "lab.py", "exec"), namespace)
    guests = [data for _name, data in namespace["kvm_guests"]]
    assert guests and all(data.get("kvm_guest") is True for data in guests)


def test_topology_table_runs_the_guest_driver_in_the_native_row() -> None:
    from roles.topology import TOPOLOGIES, install_native

    assert TOPOLOGIES["native"].install is install_native
    source = (ROOT / "roles" / "topology.py").read_text()
    guest = source.index("kvm_guest_driver(settings=settings)")
    assert guest < source.index("install_ollama(settings=settings")
    assert {name: t.ollama_here for name, t in TOPOLOGIES.items()} == {
        "native": True,
        "docker": True,
        "lxc": False,
        "kvm": False,
    }
