"""Facts about the installed Ollama and its API, read with curl on the host itself."""

from __future__ import annotations

import json
import shlex
from typing import Any

from pyinfra.api import FactBase

# Written by roles/native when it unpacks a release: "<version> <sha256>".
RELEASE_MARKER = "lib/ollama/.ollama-rig-release"


def _curl(url: str, body: dict[str, Any] | None = None) -> str:
    data = f" -d {shlex.quote(json.dumps(body))}" if body is not None else ""
    # Failure (server down, 404) prints nothing: the fact then reads None.
    return f"curl -fsS --max-time 10{data} {shlex.quote(url)} 2>/dev/null || true"


def _json(output: list[str]) -> Any:
    try:
        return json.loads("\n".join(output)) if output else None
    except json.JSONDecodeError:
        return None


class OllamaRelease(FactBase[str | None]):
    """The "<version> <sha256>" of the release roles/native installed under prefix, or None."""

    def command(self, prefix: str) -> str:
        return f"cat {shlex.quote(f'{prefix}/{RELEASE_MARKER}')} 2>/dev/null || true"

    def process(self, output: list[str]) -> str | None:
        return output[0].strip() if output else None


class OllamaApiVersion(FactBase[str | None]):
    """The version GET /api/version answers, or None when nothing answers."""

    def command(self, api_url: str) -> str:
        return _curl(f"{api_url}/api/version")

    def process(self, output: list[str]) -> str | None:
        answer = _json(output)
        return answer.get("version") if isinstance(answer, dict) else None


class OllamaModels(FactBase[list[str] | None]):
    """Names of the models on disk (GET /api/tags), or None when the API does not answer."""

    def command(self, api_url: str) -> str:
        return _curl(f"{api_url}/api/tags")

    def process(self, output: list[str]) -> list[str] | None:
        answer = _json(output)
        if not isinstance(answer, dict):
            return None
        return sorted(model["name"] for model in answer.get("models") or [])


class OllamaModelParameters(FactBase[dict[str, str] | None]):
    """A model's Modelfile PARAMETERs (POST /api/show), or None when it is not there."""

    def command(self, api_url: str, model: str) -> str:
        return _curl(f"{api_url}/api/show", {"model": model})

    def process(self, output: list[str]) -> dict[str, str] | None:
        answer = _json(output)
        if not isinstance(answer, dict):
            return None
        params = {}
        for line in str(answer.get("parameters") or "").splitlines():
            key, _, value = line.strip().partition(" ")
            if key:
                params[key] = value.strip().strip('"')
        return params
