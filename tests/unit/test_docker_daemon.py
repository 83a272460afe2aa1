"""daemon.json merge: what ollama-rig adds, every key already there kept, bad files refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facts.parsers.docker import parse_daemon_json
from roles.docker.daemon import (
    DaemonJsonError,
    DaemonWants,
    daemon_wants,
    merge_daemon_json,
)
from settings import settings_from_data

FIXTURES = Path(__file__).parents[1] / "fixtures" / "outputs" / "daemon-json"
RUNTIME = DaemonWants(nvidia_runtime=True)
NVIDIA = {"path": "nvidia-container-runtime", "args": []}


def merged(current: dict | str | None, wants: DaemonWants) -> dict | None:
    text = json.dumps(current) if isinstance(current, dict) else current
    result = merge_daemon_json(text, wants)
    return None if result is None else json.loads(result)


def test_no_file_and_nothing_wanted_writes_nothing() -> None:
    assert merge_daemon_json(None, DaemonWants()) is None


def test_no_file_gets_just_the_runtime() -> None:
    assert merged(None, RUNTIME) == {"runtimes": {"nvidia": NVIDIA}}


def test_existing_keys_are_kept_in_their_order() -> None:
    current = {
        "registry-mirrors": ["https://mirror.lan"],
        "log-driver": "local",
        "log-opts": {"max-size": "10m"},
        "runtimes": {"crun": {"path": "/usr/bin/crun"}},
        "default-runtime": "crun",
    }
    result = merged(current, RUNTIME)
    assert result == {**current, "runtimes": {"crun": {"path": "/usr/bin/crun"}, "nvidia": NVIDIA}}
    assert list(result) == list(current)  # the user's default-runtime is left alone too


def test_a_users_own_nvidia_runtime_is_left_as_it_is() -> None:
    text = (FIXTURES / "nvidia-default-runtime.json").read_text()
    assert merge_daemon_json(text, RUNTIME) is None
    assert merge_daemon_json(text, DaemonWants(default_runtime_nvidia=True)) is None


def test_default_runtime_is_set_only_when_asked() -> None:
    result = merged({"default-runtime": "runc"}, DaemonWants(True, True))
    assert result == {"default-runtime": "nvidia", "runtimes": {"nvidia": NVIDIA}}


@pytest.mark.parametrize(
    ("opts", "expected"),
    [
        ([], ["native.cgroupdriver=cgroupfs"]),
        (["native.cgroupdriver=systemd"], ["native.cgroupdriver=cgroupfs"]),
        (
            ["isolation=default", "native.cgroupdriver = systemd"],
            ["isolation=default", "native.cgroupdriver=cgroupfs"],
        ),
    ],
    ids=["none", "systemd", "systemd-among-others"],
)
def test_cgroupfs_replaces_another_driver(opts: list[str], expected: list[str]) -> None:
    result = merged({"exec-opts": opts}, DaemonWants(cgroupfs=True))
    assert result == {"exec-opts": expected}


def test_cdi_feature_is_added_beside_other_features() -> None:
    result = merged({"features": {"buildkit": True}}, DaemonWants(cdi=True))
    assert result == {"features": {"buildkit": True, "cdi": True}}


def test_what_is_there_already_is_no_change_whatever_the_formatting() -> None:
    text = (
        '{"runtimes":{"nvidia":{"path":"nvidia-container-runtime","args":[]}},\n'
        '"exec-opts":["native.cgroupdriver=cgroupfs"]}'
    )
    assert merge_daemon_json(text, DaemonWants(nvidia_runtime=True, cgroupfs=True)) is None


def test_written_text_is_valid_and_ends_with_a_newline() -> None:
    text = merge_daemon_json('{"debug": true}', DaemonWants(True, True, True, False))
    assert text is not None and text.endswith("}\n")
    assert parse_daemon_json(text)["nvidia_runtime"] is True


@pytest.mark.parametrize(
    ("fixture", "where"),
    [
        ("invalid-trailing-comma.json", "line 9 column"),
        ("invalid-missing-comma-three-objects.json", "line 3 column"),
        ("invalid-trailing-comma-nvidia-default.json", "line"),
    ],
)
def test_invalid_json_is_refused_in_one_line_naming_the_place(fixture: str, where: str) -> None:
    with pytest.raises(DaemonJsonError) as caught:
        merge_daemon_json((FIXTURES / fixture).read_text(), RUNTIME)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("/etc/docker/daemon.json: daemon.json is invalid JSON at " + where)
    assert "by hand" in message and "nothing was changed" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "daemon.json is empty"),
        ("[]", "must be a JSON object"),
        ('{"runtimes": {"nvidia": "nvidia-container-runtime"}}', '"runtimes" must map names'),
        ('{"exec-opts": "native.cgroupdriver=cgroupfs"}', '"exec-opts" must be a list'),
    ],
    ids=["empty", "array", "runtime-not-object", "exec-opts-string"],
)
def test_wrong_shapes_are_refused(text: str, expected: str) -> None:
    with pytest.raises(DaemonJsonError, match=expected):
        merge_daemon_json(text, DaemonWants(nvidia_runtime=True, cgroupfs=True))


def test_features_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(DaemonJsonError, match='"features" must be a JSON object'):
        merge_daemon_json('{"features": ["cdi"]}', DaemonWants(cdi=True))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, DaemonWants(nvidia_runtime=True)),
        ({"gpu": "none", "docker_cgroupfs": True}, DaemonWants(cgroupfs=True)),
        ({"gpu": "none", "docker_default_runtime_nvidia": True}, DaemonWants()),
        ({"docker_gpu_mode": "cdi"}, DaemonWants(cdi=True)),
        (
            {"docker_default_runtime_nvidia": True, "docker_cgroupfs": True},
            DaemonWants(True, True, True, False),
        ),
    ],
    ids=["default", "cpu-only-cgroupfs", "cpu-only-no-runtime", "cdi", "everything"],
)
def test_wants_follow_the_settings(data: dict, expected: DaemonWants) -> None:
    assert daemon_wants(settings_from_data({"topology": "docker", **data})) == expected
