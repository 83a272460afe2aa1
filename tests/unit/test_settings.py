"""Settings: defaults, and one clear line for every kind of bad input."""

from __future__ import annotations

import re
import runpy
from pathlib import Path
from typing import Any

import pytest

from settings import Settings, SettingsError, settings_from_data
from settings.load import DEFAULTS_FILE, defaults


def error_for(data: dict[str, Any]) -> str:
    with pytest.raises(SettingsError) as caught:
        settings_from_data(data)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_defaults_are_valid_and_secure() -> None:
    settings = settings_from_data({})
    assert settings.topology == "native"
    assert settings.ollama_listen == "127.0.0.1:11434"
    assert settings.ollama_context_length == 65536
    assert settings.exposed is False
    assert settings.api_url == "http://127.0.0.1:11434"


def test_every_setting_has_a_documented_default() -> None:
    values = runpy.run_path(str(DEFAULTS_FILE))
    documented = {k for k in values if not k.startswith("_")}
    assert documented == set(Settings.model_fields)
    assert set(defaults()) == set(Settings.model_fields)
    text = DEFAULTS_FILE.read_text()
    for key in Settings.model_fields:
        before = re.split(rf"\n{key}(: [^=]+)? =", text)[0].rstrip().splitlines()[-1]
        assert before.startswith("#"), f"{key} has no comment line above it in group_data/all.py"


def test_every_setting_is_in_the_readme_table() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for key in Settings.model_fields:
        assert f"| `{key}` |" in readme, f"{key} is missing from README.md's settings table"


def test_misspelled_key_is_named_with_a_suggestion() -> None:
    message = error_for({"topolgy": "docker"})
    assert "unknown key 'topolgy'" in message and "did you mean 'topology'" in message


def test_connector_and_global_argument_keys_are_not_settings() -> None:
    settings = settings_from_data({"ssh_user": "admin", "ssh_port": 2222, "_sudo": True})
    assert settings.topology == "native"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"topology": "podman"},
            "topology='podman': Input should be 'native', 'docker', 'lxc' or 'kvm'",
        ),
        ({"gpu": "amd"}, "gpu='amd'"),
        (
            {"ollama_context_length": "65536"},
            "ollama_context_length='65536': Input should be a valid integer",
        ),
        ({"ollama_context_length": 1024}, "greater than or equal to 2048"),
        ({"ollama_listen": "127.0.0.1:99999"}, "port must be between 1 and 65535"),
        ({"ollama_listen": "localhost"}, "must be host:port"),
        ({"ollama_version": "v0.32.7"}, "must be a release number like 0.32.7"),
        ({"ollama_archive_sha256": "abc"}, "must be 64 lowercase hex digits"),
        ({"ollama_keep_alive": "forever"}, "ollama_keep_alive='forever'"),
        ({"ollama_models": ["Qwen Coder"]}, "is not an Ollama model name"),
        ({"ollama_models": ["a:1", "a:1"]}, "lists a model twice"),
        ({"ollama_origins": ["*"]}, "list the origins you trust"),
        ({"ollama_allow_from": ["192.168.1.0/33"]}, "is not a network"),
        ({"ollama_prefix": "usr/local"}, "must be an absolute path"),
        (
            {"ollama_kv_cache_type": "q4_0", "ollama_flash_attention": False},
            "needs flash attention",
        ),
        (
            {"ollama_model_variants": {"x-64k": {"from": "x:1", "num_ctx": 65536}}},
            "which is not in ollama_models",
        ),
        ({"ollama_model_variants": {"x-64k": {"from": "qwen2.5-coder:7b", "ctx": 1}}}, "ctx"),
        ({"ollama_archive_path": "/nonexistent/ollama.tar.zst"}, "no such file on this machine"),
    ],
)
def test_bad_values_name_the_key_and_the_fix(data: dict[str, Any], expected: str) -> None:
    message = error_for(data)
    assert message.startswith("settings: ")
    assert expected in message


def test_exposing_without_allow_list_is_refused_with_the_reason() -> None:
    message = error_for({"ollama_listen": "0.0.0.0:11434"})
    assert "no authentication" in message and "ollama_allow_from" in message


def test_exposing_with_allow_list_is_accepted() -> None:
    settings = settings_from_data(
        {"ollama_listen": "0.0.0.0:11434", "ollama_allow_from": ["192.168.1.0/24"]}
    )
    assert settings.exposed and settings.api_url == "http://127.0.0.1:11434"


def test_ipv6_listen_address() -> None:
    settings = settings_from_data({"ollama_listen": "[::1]:11434"})
    assert settings.listen_host == "::1" and settings.api_url == "http://[::1]:11434"
