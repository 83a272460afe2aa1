"""LXD/Incus: the GPU device dict, and applying it through a pylxd-like instance only on change."""

from __future__ import annotations

from typing import Any

import pytest

from roles.lxc.lxd import apply_gpu, gpu_devices


class FakeInstance:
    """The part of pylxd's Instance that apply_gpu uses, recording saves and restarts."""

    def __init__(self, status: str, devices: dict[str, dict[str, str]], config: dict[str, str]):
        self.name = "ollama"
        self.status = status
        self.devices = devices
        self.config = config
        self.calls: list[str] = []

    def save(self, wait: bool = False) -> Any:
        self.calls.append("save")

    def restart(self, wait: bool = False) -> Any:
        self.calls.append("restart")


ROOT = {"root": {"type": "disk", "path": "/", "pool": "default"}}


def test_all_gpus_is_one_device_without_id() -> None:
    assert gpu_devices("all") == {"gpu": {"type": "gpu", "gputype": "physical"}}


def test_chosen_gpus_by_card_id_or_pci_address() -> None:
    assert gpu_devices(["0", "0000:02:00.0"]) == {
        "gpu0": {"type": "gpu", "gputype": "physical", "id": "0"},
        "gpu1": {"type": "gpu", "gputype": "physical", "pci": "0000:02:00.0"},
    }
    with pytest.raises(ValueError, match="neither"):
        gpu_devices(["GPU-1234"])


def test_first_apply_saves_and_restarts_a_running_instance() -> None:
    instance = FakeInstance("Running", dict(ROOT), {"limits.cpu": "4"})
    assert apply_gpu(instance, gpu_devices("all")) is True
    assert instance.devices == {**ROOT, "gpu": {"type": "gpu", "gputype": "physical"}}
    assert instance.config == {"limits.cpu": "4", "nvidia.runtime": "true"}
    assert instance.calls == ["save", "restart"]
    # Second run: nothing to do, no save, no restart.
    instance.calls.clear()
    assert apply_gpu(instance, gpu_devices("all")) is False and instance.calls == []


def test_stopped_instance_is_not_started() -> None:
    instance = FakeInstance("Stopped", dict(ROOT), {})
    assert apply_gpu(instance, gpu_devices(["0"])) is True
    assert instance.calls == ["save"]


def test_gpu_devices_no_longer_wanted_are_removed() -> None:
    old = {"gpu": {"type": "gpu", "gputype": "physical"}}
    instance = FakeInstance("Stopped", {**ROOT, **old}, {"nvidia.runtime": "true"})
    assert apply_gpu(instance, gpu_devices(["1"])) is True
    assert instance.devices == {**ROOT, "gpu0": {"type": "gpu", "gputype": "physical", "id": "1"}}
