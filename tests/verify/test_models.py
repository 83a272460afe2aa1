"""Every configured model is present and, on a GPU host, loads 100% on the GPU at full context."""

from __future__ import annotations

from typing import Any

from facts.parsers.ollama import parse_api_ps, parse_ollama_ps
from tests.verify.api import api_get, api_post


def _loaded(rows: list[dict[str, Any]], model: str) -> dict[str, Any] | None:
    return next((row for row in rows if row["name"] == model), None)


def test_model_present(host: Any, manifest: dict[str, Any], configured_model: str) -> None:
    names = [m["name"] for m in api_get(host, manifest, "/api/tags").get("models", [])]
    assert configured_model in names, f"{configured_model} is not on the server (has {names})"


def test_model_loads_fully_on_gpu(
    host: Any, manifest: dict[str, Any], configured_model: str, gpu_expected: None
) -> None:
    model = configured_model
    # An empty prompt only loads the model, at the server's context length.
    api_post(host, manifest, "/api/generate", {"model": model, "prompt": "", "keep_alive": "10m"})

    api_row = _loaded(
        parse_api_ps(host.check_output("curl -fsS %s", f"{manifest['api_url']}/api/ps"))["models"],
        model,
    )
    cli_out = host.check_output(f"{manifest['ollama_cli']} ps")
    cli_row = _loaded(parse_ollama_ps(cli_out)["models"], model)
    assert api_row is not None and cli_row is not None, f"{model} is not loaded after a generate"

    for view, row in (("/api/ps", api_row), ("ollama ps", cli_row)):
        assert row["gpu_percent"] == 100 and row["cpu_percent"] == 0, (
            f"{model} is not 100% GPU: {view} shows {row['cpu_percent']}%/{row['gpu_percent']}%"
            f" CPU/GPU ({row.get('processor') or ''}); it does not fit the VRAM at context"
            f" {row.get('context') or manifest['context_length']}: `python -m sizing` or"
            " `python -m doctor` say what fits"
        )
    wanted = manifest.get("model_contexts", {}).get(model, manifest["context_length"])
    context = api_row["context"]
    assert context is not None and context >= wanted, (
        f"{model} loaded with context {context}, below the {wanted} configured for it"
    )
