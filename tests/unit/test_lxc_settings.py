"""The lxc_* settings: defaults valid, and one clear line for each kind of bad input."""

from __future__ import annotations

from typing import Any

import pytest

from settings import SettingsError, settings_from_data


def test_defaults() -> None:
    settings = settings_from_data({})
    assert settings.lxc_platform == "proxmox" and settings.lxc_device_style == "auto"
    assert settings.lxc_gpus == "all" and settings.lxc_driver_run_sha256 is None


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"topology": "lxc"}, "needs lxc_vmid"),
        ({"topology": "lxc", "lxc_platform": "lxd"}, "needs lxc_instance"),
        ({"topology": "lxc", "lxc_vmid": 101, "lxc_gpus": ["0000:01:00.0"]}, "indexes"),
        ({"lxc_gpus": []}, "non-empty"),
        ({"lxc_gpus": ["GPU-1"]}, "neither a GPU index nor a PCI address"),
        ({"lxc_vmid": 99}, "greater than or equal to 100"),
        ({"lxc_instance": "1bad"}, "instance name"),
        ({"lxc_create_options": {"--memory": "1"}}, "not a `pct create` option"),
        ({"lxc_driver_run_url": "http://x/{version}.run"}, "https://"),
        ({"lxc_driver_run_sha256": "abc"}, "64 lowercase hex"),
        ({"lxc_device_style": "bind"}, "lxc_device_style='bind'"),
    ],
)
def test_bad_lxc_settings(data: dict[str, Any], expected: str) -> None:
    with pytest.raises(SettingsError, match=expected):
        settings_from_data(data)


def test_lxd_takes_pci_addresses() -> None:
    settings = settings_from_data(
        {
            "topology": "lxc",
            "lxc_platform": "lxd",
            "lxc_instance": "ollama",
            "lxc_gpus": ["0000:01:00.0"],
        }
    )
    assert settings.lxc_gpus == ["0000:01:00.0"]
