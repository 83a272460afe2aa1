"""The native role's pure decisions: environment, release source, and the files it renders."""

from __future__ import annotations

import hashlib
from pathlib import Path

import jinja2
import pytest

from roles.native.plan import ollama_environment, release_source
from roles.native.releases import KNOWN_ARCHIVES
from settings import SettingsError, settings_from_data
from templates import TEMPLATES


def render(name: str, **data: object) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string((TEMPLATES / name).read_text()).render(**data)


def test_environment_carries_every_server_setting() -> None:
    env = ollama_environment(settings_from_data({}))
    assert env == {
        "OLLAMA_HOST": "127.0.0.1:11434",
        "OLLAMA_CONTEXT_LENGTH": "65536",
        "OLLAMA_KEEP_ALIVE": "30m",
        "OLLAMA_KV_CACHE_TYPE": "q8_0",
        "OLLAMA_NUM_PARALLEL": "1",
        "OLLAMA_MODELS": "/usr/share/ollama/.ollama/models",
        "OLLAMA_FLASH_ATTENTION": "1",
    }


def test_environment_leaves_flash_attention_to_ollama_when_none() -> None:
    env = ollama_environment(
        settings_from_data({"ollama_flash_attention": None, "ollama_kv_cache_type": "f16"})
    )
    assert "OLLAMA_FLASH_ATTENTION" not in env and env["OLLAMA_KV_CACHE_TYPE"] == "f16"


def test_origins_are_joined_never_star() -> None:
    env = ollama_environment(settings_from_data({"ollama_origins": ["http://a", "http://b"]}))
    assert env["OLLAMA_ORIGINS"] == "http://a,http://b"


def test_environment_dropin_renders_one_line_per_variable() -> None:
    text = render(
        "ollama-env.conf.j2",
        environment={"OLLAMA_HOST": "127.0.0.1:11434", "OLLAMA_KEEP_ALIVE": "-1"},
    )
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines == [
        "[Service]",
        'Environment="OLLAMA_HOST=127.0.0.1:11434"',
        'Environment="OLLAMA_KEEP_ALIVE=-1"',
    ]


def test_unit_runs_the_prefix_binary_as_ollama() -> None:
    text = render("ollama.service.j2", prefix="/opt/ollama")
    assert "ExecStart=/opt/ollama/bin/ollama serve" in text
    assert "User=ollama" in text and "Restart=always" in text


def test_default_release_is_pinned_with_a_known_checksum() -> None:
    source = release_source(settings_from_data({}), "x86_64")
    assert source.arch == "amd64"
    assert source.sha256 == KNOWN_ARCHIVES[("0.32.7", "amd64")]
    assert source.url == (
        "https://github.com/ollama/ollama/releases/download/v0.32.7/ollama-linux-amd64.tar.zst"
    )
    assert source.marker == f"0.32.7 {source.sha256}"


def test_unknown_release_without_checksum_is_refused() -> None:
    with pytest.raises(SettingsError, match="ollama_archive_sha256 is not set"):
        release_source(settings_from_data({"ollama_version": "0.1.0"}), "x86_64")


def test_unknown_arch_is_refused() -> None:
    with pytest.raises(SettingsError, match="architecture 'riscv64'"):
        release_source(settings_from_data({}), "riscv64")


def test_local_archive_checked_before_anything(tmp_path: Path) -> None:
    archive = tmp_path / "ollama-linux-amd64.tar.zst"
    archive.write_bytes(b"not really an archive")
    good = hashlib.sha256(archive.read_bytes()).hexdigest()
    data = {"ollama_archive_path": str(archive), "ollama_archive_sha256": good}
    source = release_source(settings_from_data(data), "x86_64")
    assert source.url is None and source.local_path == str(archive)
    data["ollama_archive_sha256"] = "0" * 64
    with pytest.raises(SettingsError, match=f"has sha256 {good}, expected 0000"):
        release_source(settings_from_data(data), "x86_64")
