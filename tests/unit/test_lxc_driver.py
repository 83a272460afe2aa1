"""LXC container side: the container's NVIDIA libraries must be the host driver's version."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from roles.lxc.driver import DriverMismatch, guest_refusal, libraries_needed, run_name_refusal
from settings import settings_from_data


def test_no_libraries_means_install() -> None:
    assert libraries_needed("550.54.14", []) is True


def test_same_version_means_nothing_to_do() -> None:
    assert libraries_needed("550.54.14", ["550.54.14"]) is False


@pytest.mark.parametrize("installed", [["535.183.01"], ["535.183.01", "550.54.14"]])
def test_other_version_refused_naming_both(installed: list[str]) -> None:
    with pytest.raises(DriverMismatch) as caught:
        libraries_needed("550.54.14", installed)
    message = str(caught.value)
    assert "535.183.01" in message and "host driver is 550.54.14" in message


# --- lxc_driver_run_path: a local .run instead of the download --------------------------------

VERSION = "550.54.14"
RUN_BYTES = b"#!/bin/sh\n# a stand-in .run: only its bytes matter here\n"
RUN_SHA = hashlib.sha256(RUN_BYTES).hexdigest()


@pytest.fixture
def local_run(tmp_path: Path) -> Path:
    path = tmp_path / f"NVIDIA-Linux-x86_64-{VERSION}.run"
    path.write_bytes(RUN_BYTES)
    return path


def test_local_run_of_the_hosts_version_goes_on(local_run: Path) -> None:
    assert guest_refusal(VERSION, [], RUN_SHA, str(local_run)) is None


def test_local_run_is_not_read_when_the_libraries_are_there(tmp_path: Path) -> None:
    assert guest_refusal(VERSION, [VERSION], None, str(tmp_path / "gone.run")) is None


def test_missing_local_run_is_refused_naming_the_setting(tmp_path: Path) -> None:
    refusal = guest_refusal(VERSION, [], RUN_SHA, str(tmp_path / "gone.run"))
    assert refusal is not None
    assert refusal.startswith(f"lxc_driver_run_path='{tmp_path / 'gone.run'}': no such file")
    assert f"NVIDIA-Linux-x86_64-{VERSION}.run, or None to download it" in refusal


def test_local_run_of_another_version_is_refused_naming_both(tmp_path: Path) -> None:
    other = tmp_path / "NVIDIA-Linux-x86_64-535.183.01.run"
    other.write_bytes(RUN_BYTES)
    refusal = guest_refusal(VERSION, [], RUN_SHA, str(other))
    assert refusal is not None
    assert f"is the 535.183.01 installer but the host driver is {VERSION}" in refusal


def test_local_run_without_a_version_in_its_name_is_refused(tmp_path: Path) -> None:
    renamed = tmp_path / "driver.run"
    renamed.write_bytes(RUN_BYTES)
    refusal = guest_refusal(VERSION, [], RUN_SHA, str(renamed))
    assert refusal is not None and "is not named by its version" in refusal


def test_local_run_with_another_checksum_is_refused_with_both(local_run: Path) -> None:
    refusal = guest_refusal(VERSION, [], "f" * 64, str(local_run))
    assert refusal is not None
    assert f"has sha256 {RUN_SHA}, expected {'f' * 64} (lxc_driver_run_sha256)" in refusal
    assert "no NVIDIA libraries were installed" in refusal


def test_local_run_still_needs_the_checksum(local_run: Path) -> None:
    refusal = guest_refusal(VERSION, [], None, str(local_run))
    assert refusal is not None
    assert "set lxc_driver_run_sha256" in refusal and "lxc_driver_run_path's copy" in refusal


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("NVIDIA-Linux-x86_64-550.54.14.run", "550.54.14"),
        ("NVIDIA-Linux-aarch64-570.148.08.run", "570.148.08"),
        ("NVIDIA-Linux-x86_64-535.183.01-no-compat32.run", "535.183.01"),
    ],
)
def test_version_read_from_nvidias_file_names(name: str, version: str) -> None:
    assert run_name_refusal(f"/srv/{name}", version) is None
    assert run_name_refusal(f"/srv/{name}", "1.2.3") is not None


def test_setting_defaults_to_download() -> None:
    assert settings_from_data({}).lxc_driver_run_path is None
    chosen = settings_from_data({"lxc_driver_run_path": "/srv/NVIDIA-Linux-x86_64-1.2.run"})
    assert chosen.lxc_driver_run_path == "/srv/NVIDIA-Linux-x86_64-1.2.run"
