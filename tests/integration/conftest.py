"""Fixtures of the integration tier: the test image, a container, the stand-in archives."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration import testbed
from tests.integration.deployer import unavailable


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def test_image() -> str:
    if not testbed.engine_available():
        unavailable("no Docker engine: run scripts/testbed-engine.sh (as root) first")
    testbed.build_image()
    return testbed.IMAGE


@pytest.fixture(scope="module")
def container(test_image: str, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"ollama-rig-it-{request.module.__name__.rsplit('.', 1)[-1]}-{os.getpid()}"
    container_id = testbed.create(name)
    yield container_id
    testbed.destroy(name)


@pytest.fixture(scope="session")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Stand-in release archives (tests/standin) of two versions, for install and upgrade."""
    from tests.standin.build_archive import build_archive

    out = tmp_path_factory.mktemp("archives")
    return {version: build_archive(version, out / version) for version in ("0.32.7", "0.32.8")}
