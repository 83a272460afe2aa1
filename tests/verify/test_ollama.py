"""The Ollama service: running, where it should listen and nowhere else, the pinned version."""

from __future__ import annotations

from typing import Any

import pytest

from tests.verify.api import api_get

UNIT = "ollama.service"


def test_service_enabled_and_running(host: Any, manifest: dict[str, Any]) -> None:
    if manifest["topology"] != "native":
        pytest.skip(f"topology {manifest['topology']!r}: Ollama is not {UNIT} on this host")
    service = host.service(UNIT)
    assert service.is_enabled, f"{UNIT} is not enabled: it will not come back after a reboot"
    assert service.is_running, f"{UNIT} is not running: see journalctl -u {UNIT}"


def test_listens_where_configured_and_nowhere_else(host: Any, manifest: dict[str, Any]) -> None:
    port = manifest["listen"].rsplit(":", 1)[1]
    listening = {s for s in host.socket.get_listening_sockets() if s.rsplit(":", 1)[-1] == port}
    assert listening == {f"tcp://{manifest['listen']}"}, (
        f"port {port} is open on {sorted(listening)}, expected only {manifest['listen']}"
    )


def test_api_answers_pinned_version(host: Any, manifest: dict[str, Any]) -> None:
    answer = api_get(host, manifest, "/api/version")
    assert answer.get("version") == manifest["ollama_version"], (
        f"/api/version says {answer.get('version')}, pinned {manifest['ollama_version']}"
    )
