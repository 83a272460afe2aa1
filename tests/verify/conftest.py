"""Verify a provisioned host, live: `pytest tests/verify --hosts=ssh://box` (or docker://, local://).

What a host must satisfy comes from the manifest the deploy wrote on it
(/etc/ollama-rig/expected.json, roles/verify_manifest.py), so the suite needs no inventory.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import testinfra

MANIFEST = "/etc/ollama-rig/expected.json"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ollama-rig")
    group.addoption("--rig-manifest", default=MANIFEST, help="manifest path on the host")
    group.addoption(
        "--rig-gpu",
        choices=["auto", "nvidia", "none"],
        default=None,
        help="override the manifest's gpu setting (e.g. check a stand-in as if it had a GPU)",
    )


def read_manifest(host: Any, config: pytest.Config) -> dict[str, Any]:
    path = config.getoption("--rig-manifest")
    manifest_file = host.file(path)
    if not manifest_file.exists:
        raise LookupError(f"{path} is missing on the host: run deploy.py against it first")
    manifest: dict[str, Any] = json.loads(manifest_file.content_string)
    if config.getoption("--rig-gpu"):
        manifest["gpu"] = config.getoption("--rig-gpu")
    return manifest


def json_or_skip(host: Any, path: str, why_not: str) -> dict[str, Any]:
    """The JSON file a deploy left at path on the host; without it the test skips: `no <path>:
    <why_not>` (a topology's checks on a host of another topology)."""
    found = host.file(path)
    if not found.exists:
        pytest.skip(f"no {path}: {why_not}")
    result: dict[str, Any] = json.loads(found.content_string)
    return result


def _hosts(config: pytest.Config) -> list[Any]:
    """The same hosts testinfra's own plugin parametrizes (its get_hosts is cached)."""
    option = config.option
    return testinfra.get_hosts(
        option.hosts.split(",") if option.hosts else [None],
        connection=option.connection,
        ssh_config=option.ssh_config,
        ssh_identity_file=option.ssh_identity_file,
        sudo=option.sudo,
        sudo_user=option.sudo_user,
        ansible_inventory=option.ansible_inventory,
        force_ansible=option.force_ansible,
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One test per model, so each model passes or fails on its own."""
    if "model" not in metafunc.fixturenames:
        return
    models: set[str] = set()
    for host in _hosts(metafunc.config):
        try:
            models.update(read_manifest(host, metafunc.config)["models"])
        except LookupError:
            continue  # the `manifest` fixture fails those tests with the reason
    metafunc.parametrize("model", sorted(models) or ["(no models configured)"])


# Hosts that run no Ollama themselves write these instead (roles/lxc, roles/kvm).
NO_OLLAMA_MANIFESTS = {
    "/etc/ollama-rig/lxc.json": "tests/verify/test_lxc.py",
    "/etc/ollama-rig/kvm.json": "tests/verify/test_kvm.py",
}


@pytest.fixture(scope="module")
def manifest(host: Any, pytestconfig: pytest.Config) -> dict[str, Any]:
    try:
        return read_manifest(host, pytestconfig)
    except LookupError as exc:
        for path, checks in NO_OLLAMA_MANIFESTS.items():
            if host.file(path).exists:
                pytest.skip(f"this host runs no Ollama ({path}): its checks are in {checks}")
        pytest.fail(str(exc))


@pytest.fixture
def configured_model(manifest: dict[str, Any], model: str) -> str:
    if model not in manifest["models"]:
        pytest.skip(f"{model} is not configured on this host")
    return model


@pytest.fixture
def gpu_expected(manifest: dict[str, Any]) -> None:
    if manifest["gpu"] == "none":
        pytest.skip("gpu='none' on this host: a CPU-only install, GPU offload is not checked")
