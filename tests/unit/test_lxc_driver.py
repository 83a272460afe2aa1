"""LXC container side: the container's NVIDIA libraries must be the host driver's version."""

from __future__ import annotations

import pytest

from roles.lxc.driver import DriverMismatch, libraries_needed


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
