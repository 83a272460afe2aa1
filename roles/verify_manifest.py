"""What tests/verify checks on a host, written there by the deploy: the suite needs no inventory."""

from __future__ import annotations

from typing import Any

from pyinfra.api import deploy
from pyinfra.operations import files

from roles.harness import harness_manifest
from roles.models.plan import wanted_models
from settings import Settings
from templates import template_path

MANIFEST = "/etc/ollama-rig/expected.json"


def expected_state(
    settings: Settings, model_contexts: dict[str, int], ollama_cli: str
) -> dict[str, Any]:
    """The promises the verify suite holds the host to.

    model_contexts: the context each model really gets (capped at its trained context).
    ollama_cli: how to run the ollama CLI on the host (it differs by topology).
    """
    return {
        "topology": settings.topology,
        "gpu": settings.gpu,
        "ollama_version": settings.ollama_version,
        "listen": settings.ollama_listen,
        "api_url": settings.api_url,
        "context_length": settings.ollama_context_length,
        "models": wanted_models(settings),
        "model_contexts": model_contexts,
        "ollama_cli": ollama_cli,
        "harness": harness_manifest(settings),
    }


@deploy("Verification manifest")
def write_manifest(settings: Settings, model_contexts: dict[str, int], ollama_cli: str) -> None:
    files.template(
        name=f"Write {MANIFEST}",
        src=template_path("expected.json.j2"),
        dest=MANIFEST,
        mode="0644",
        expected=expected_state(settings, model_contexts, ollama_cli),
    )
