"""LXD/Incus: the GPU device dict, applying it through a pylxd-like instance only on change, and
the refusals made before any change (wrong LXD, unreachable LXD, missing instance)."""

from __future__ import annotations

from typing import Any

import pylxd
import pytest
from pyinfra.api import Config, Inventory, State
from pyinfra.api.exceptions import OperationError
from pylxd.exceptions import ClientConnectionFailed, LXDAPIException, NotFound

from roles.lxc.lxd import (
    LxdError,
    _apply,
    apply_gpu,
    gpu_changes,
    gpu_devices,
    lxd_refusal,
    read_instance,
    runs_here,
)
from settings import SettingsError, settings_from_data


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


def test_changes_are_named_and_empty_when_in_place() -> None:
    old = {"gpu": {"type": "gpu", "gputype": "physical"}, "gpu1": {"type": "gpu", "id": "1"}}
    instance = FakeInstance("Stopped", {**ROOT, **old}, {"nvidia.runtime": "false"})
    assert gpu_changes(instance, gpu_devices(["0000:01:00.0"])) == [
        "remove device gpu",
        "remove device gpu1",
        "add device gpu0",
        "set nvidia.runtime=true",
    ]
    instance = FakeInstance("Running", {**ROOT, "gpu": old["gpu"]}, {"nvidia.runtime": "true"})
    assert gpu_changes(instance, gpu_devices("all")) == []


def test_a_non_gpu_device_named_gpu_is_replaced_by_the_gpu() -> None:
    instance = FakeInstance("Stopped", {"gpu": {"type": "disk", "path": "/x"}}, {})
    assert gpu_changes(instance, gpu_devices("all"))[0] == "change device gpu"


class FakeInstances:
    def __init__(self, names: list[str]) -> None:
        self.names = names

    def get(self, name: str) -> FakeInstance:
        if name not in self.names:
            raise NotFound("Instance not found")
        return FakeInstance("Stopped", dict(ROOT), {})

    def all(self) -> list[FakeInstance]:
        return [FakeInstance("Stopped", {}, {}) for _ in self.names]


def fake_client(names: list[str] | None) -> type:
    """A pylxd.Client stand-in: None means the daemon does not answer."""

    class Client:
        def __init__(self, endpoint: str | None = None) -> None:
            if names is None:
                raise ClientConnectionFailed("Connection aborted")
            self.instances = FakeInstances(names)

    return Client


def test_missing_instance_is_refused_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pylxd, "Client", fake_client(["ollama"]))
    assert read_instance("ollama", None).devices == ROOT
    refusal = lxd_refusal("olama", None, pyinfra_is_local=True)
    assert refusal is not None
    assert "instance 'olama' does not exist at this machine's LXD socket" in refusal
    assert "set lxc_instance to one of ['ollama']" in refusal


def test_unreachable_lxd_is_refused_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pylxd, "Client", fake_client(None))
    with pytest.raises(LxdError, match="not reachable at this machine's LXD socket.*lxd waitready"):
        read_instance("ollama", None)
    refusal = lxd_refusal("ollama", "/nonexistent/unix.socket", pyinfra_is_local=False)
    assert refusal == (
        "no LXD/Incus socket at lxc_lxd_endpoint='/nonexistent/unix.socket': start LXD or fix it"
    )


def test_remote_host_without_endpoint_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pylxd, "Client", fake_client(["ollama"]))
    refusal = lxd_refusal("ollama", None, pyinfra_is_local=False)
    assert refusal is not None and "run this host as @local" in refusal
    assert lxd_refusal("ollama", None, pyinfra_is_local=True) is None


@pytest.mark.parametrize(
    ("endpoint", "ok"),
    [("/var/lib/incus/unix.socket", True), ("https://lxd.lab:8443", True), ("lxd.lab", False)],
)
def test_endpoint_setting(endpoint: str, ok: bool) -> None:
    data = {"topology": "lxc", "lxc_platform": "lxd", "lxc_instance": "ollama"}
    if ok:
        assert settings_from_data({**data, "lxc_lxd_endpoint": endpoint}).lxc_lxd_endpoint
    else:
        with pytest.raises(SettingsError, match="lxc_lxd_endpoint.*socket path.*https://"):
            settings_from_data({**data, "lxc_lxd_endpoint": endpoint})


def test_only_local_targets_run_here() -> None:
    inventory = Inventory((["@local", "@docker/abc", "lxd.lab.example"], {}))
    State(inventory, Config())
    assert [runs_here(target) for target in inventory] == [True, False, False]


class RefusingResponse:
    """LXD's refusal of nvidia.runtime=true without nvidia-container-cli on its PATH (the text
    LXD 5.0.2 gave here to `lxc config set <instance> nvidia.runtime true`)."""

    status_code = 400

    def json(self) -> dict[str, str]:
        return {"error": "Initialize LXC: The NVIDIA container tools couldn't be found"}


def test_lxd_refusing_nvidia_runtime_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    class Refusing(FakeInstance):
        def save(self, wait: bool = False) -> Any:
            raise LXDAPIException(RefusingResponse())

    client = fake_client(["ollama"])
    monkeypatch.setattr(FakeInstances, "get", lambda self, name: Refusing("Stopped", {}, {}))
    monkeypatch.setattr(pylxd, "Client", client)
    with pytest.raises(OperationError, match="refused the GPU config of ollama: Initialize LXC"):
        _apply("ollama", "all", None)
    with pytest.raises(OperationError, match="libnvidia-container-tools"):
        _apply("ollama", "all", None)


def test_a_virtual_machine_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    vm = FakeInstance("Stopped", dict(ROOT), {})
    vm.type = "virtual-machine"  # type: ignore[attr-defined]
    monkeypatch.setattr(FakeInstances, "get", lambda self, name: vm)
    monkeypatch.setattr(pylxd, "Client", fake_client(["ollama"]))
    refusal = lxd_refusal("ollama", None, pyinfra_is_local=True)
    assert refusal is not None and "'ollama' is a virtual-machine" in refusal
