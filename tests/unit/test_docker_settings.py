"""The docker_* settings: defaults, and one clear line for each kind of bad input."""

from __future__ import annotations

from typing import Any

import pytest

from settings import SettingsError, settings_from_data


def error_for(data: dict[str, Any]) -> str:
    with pytest.raises(SettingsError) as caught:
        settings_from_data(data)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("settings: ")
    return message


def test_defaults_are_the_official_run_on_loopback() -> None:
    settings = settings_from_data({"topology": "docker"})
    assert settings.docker_image == "ollama/ollama:{version}"
    assert settings.docker_container == "ollama" and settings.docker_models == "ollama"
    assert settings.docker_gpus == "all" and settings.docker_gpu_mode == "runtime"
    assert settings.docker_restart == "unless-stopped" and settings.listen_host == "127.0.0.1"


@pytest.mark.parametrize(
    "data",
    [
        {"docker_image": "ollama/ollama@sha256:" + "0" * 64},
        {"docker_image": "registry.lan:5000/mirror/ollama:0.32.7"},
        {"docker_gpus": ["0", "GPU-3c1b7e2e-97f5-4b6c-9d3f-4e1c0d9a8b7f", "MIG-1a2b"]},
        {"docker_models": "/srv/ollama"},
        {"docker_engine_version": "5:27.5.1-1~debian.12~bookworm"},
        {"docker_nvidia_toolkit_version": "1.17.8-1"},
        {"docker_env": {"HTTPS_PROXY": "http://proxy.lan:3128", "OLLAMA_DEBUG": "1"}},
        {"ollama_listen": "0.0.0.0:11434", "ollama_allow_from": ["192.168.1.0/24"]},
    ],
    ids=["digest", "registry", "gpu-ids", "host-path", "engine-pin", "toolkit-pin", "env", "lan"],
)
def test_good_values_are_accepted(data: dict[str, Any]) -> None:
    settings_from_data({"topology": "docker", **data})


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"docker_image": "ollama/ollama:latest"}, "must be pinned"),
        ({"docker_image": "ollama/ollama"}, "must be pinned"),
        ({"docker_image": "Ollama/Ollama:1"}, "must be an image reference"),
        ({"docker_gpus": []}, 'must be "all" or a list'),
        ({"docker_gpus": ["0", "0"]}, 'must be "all" or a list'),
        ({"docker_gpus": ["first"]}, "is not a GPU index"),
        ({"docker_gpus": "some"}, "docker_gpus='some': must be \"all\" or a list"),
        ({"docker_gpu_mode": "legacy"}, "docker_gpu_mode='legacy'"),
        ({"docker_container": "-x"}, "must be a container name"),
        ({"docker_models": "my volume"}, "must be a volume name"),
        ({"docker_models": "/"}, "absolute path other than /"),
        ({"docker_restart": "sometimes"}, "docker_restart='sometimes'"),
        (
            {"docker_env": {"OLLAMA_HOST": "0.0.0.0"}},
            "OLLAMA_HOST comes from the ollama_* settings",
        ),
        ({"docker_env": {"BAD NAME": "1"}}, "is not an environment variable name"),
        ({"docker_env": {"N": 1}}, "Input should be a valid string"),
        ({"docker_engine_version": "latest"}, "must be an apt version"),
        ({"docker_engine_source": "snap"}, "docker_engine_source='snap'"),
    ],
)
def test_bad_values_name_the_key_and_the_fix(data: dict[str, Any], expected: str) -> None:
    assert expected in error_for({"topology": "docker", **data})


def test_docker_needs_an_ip_address_to_publish_on() -> None:
    message = error_for({"topology": "docker", "ollama_listen": "localhost:11434"})
    assert "Docker publishes ports on an IP address" in message
    settings_from_data({"ollama_listen": "localhost:11434"})  # native takes a name


def test_ufw_cannot_guard_a_docker_port() -> None:
    data = {
        "topology": "docker",
        "ollama_listen": "0.0.0.0:11434",
        "ollama_allow_from": ["192.168.1.0/24"],
        "ollama_firewall": "ufw",
    }
    assert "does not filter ports Docker publishes" in error_for(data)


def test_a_digest_cannot_come_from_an_archive(tmp_path: Any) -> None:
    archive = tmp_path / "ollama.tar"
    archive.write_bytes(b"")
    data = {
        "topology": "docker",
        "docker_image": "ollama/ollama@sha256:" + "0" * 64,
        "docker_image_archive": str(archive),
    }
    assert "`docker load` does not restore" in error_for(data)
