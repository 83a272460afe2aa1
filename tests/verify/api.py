"""Talking to the Ollama API on the host under test, with the host's own curl."""

from __future__ import annotations

import json
from typing import Any


def api_get(host: Any, manifest: dict[str, Any], path: str) -> Any:
    out = host.check_output("curl -fsS --max-time 20 %s", f"{manifest['api_url']}{path}")
    return json.loads(out)


def api_post(host: Any, manifest: dict[str, Any], path: str, body: dict[str, Any]) -> Any:
    out = host.check_output(
        "curl -fsS --max-time 600 -d %s %s", json.dumps(body), f"{manifest['api_url']}{path}"
    )
    return json.loads(out)
