"""Each coding harness config the deploy wrote: the user's, private, parses, points at a
reachable Ollama, names models that server has, and carries the context length.

The manifest's "harness" entry (roles/harness harness_manifest) says which files and what they
must say; how each harness spells it is read here independently of the templates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from tests.verify.conftest import _hosts, read_manifest

CHAT, AUTOCOMPLETE = "Ollama chat (ollama-rig)", "Ollama autocomplete (ollama-rig)"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One test per harness file, so each file passes or fails on its own."""
    if "harness_path" not in metafunc.fixturenames:
        return
    paths: set[str] = set()
    for host in _hosts(metafunc.config):
        try:
            harness = read_manifest(host, metafunc.config).get("harness") or {}
        except LookupError:
            continue
        paths.update(f["path"] for f in harness.get("files", []))
    metafunc.parametrize("harness_path", sorted(paths) or ["(no harness configured)"])


@dataclass
class Said:
    """What a file tells its harness: the URL it calls, the models and their contexts."""

    endpoint: str | None
    models: dict[str, int | None]


def _ollama_chat(name: str) -> str:
    return name.removeprefix("ollama_chat/")


def _opencode(data: dict[str, Any]) -> Said:
    ollama = data["provider"]["ollama"]
    names = [data[key].removeprefix("ollama/") for key in ("model", "small_model")]
    return Said(
        ollama["options"]["baseURL"],
        {n: ollama["models"][n]["limit"]["context"] for n in names},
    )


def _continue(data: dict[str, Any]) -> Said:
    ours = [m for m in data["models"] if m["name"] in (CHAT, AUTOCOMPLETE)]
    assert len(ours) == 2, f"expected the entries {CHAT!r} and {AUTOCOMPLETE!r}"
    bases = {m["apiBase"] for m in ours}
    assert len(bases) == 1, f"the two entries call different servers: {bases}"
    return Said(
        bases.pop(), {m["model"]: m["defaultCompletionOptions"]["contextLength"] for m in ours}
    )


def _aider_conf(data: dict[str, Any]) -> Said:
    env = dict(e.split("=", 1) for e in data["set-env"])
    names = [_ollama_chat(data[key]) for key in ("model", "weak-model")]
    return Said(env["OLLAMA_API_BASE"], dict.fromkeys(names))


def _aider_models(data: list[dict[str, Any]], manifest: dict[str, Any]) -> Said:
    ours = {f"ollama_chat/{manifest[key]}" for key in ("chat_model", "autocomplete_model")}
    found = {e["name"]: e for e in data if e.get("name") in ours}
    return Said(None, {_ollama_chat(n): e["extra_params"]["num_ctx"] for n, e in found.items()})


def _cline_providers(data: dict[str, Any]) -> Said:
    settings = data["providers"]["ollama"]["settings"]
    assert data["lastUsedProvider"] == "ollama"
    return Said(settings["baseUrl"], {settings["model"]: settings["contextWindow"]})


def _cline_state(data: dict[str, Any]) -> Said:
    context = int(data["ollamaApiOptionsCtxNum"])
    models: dict[str, int | None] = {
        data[f"{mode}ModeOllamaModelId"]: context for mode in ("act", "plan")
    }
    return Said(data["ollamaBaseUrl"], models)


def said_by(kind: str, data: Any, manifest: dict[str, Any]) -> Said:
    if kind == "aider-models":
        return _aider_models(data, manifest)
    readers = {
        "opencode": _opencode,
        "continue": _continue,
        "aider-conf": _aider_conf,
        "cline-providers": _cline_providers,
        "cline-state": _cline_state,
    }
    return readers[kind](data)


@pytest.fixture
def harness(manifest: dict[str, Any]) -> dict[str, Any]:
    if not manifest.get("harness"):
        pytest.skip("no coding harness is configured on this host (harness_user is None)")
    return dict(manifest["harness"])


@pytest.fixture
def harness_file(host: Any, harness: dict[str, Any], harness_path: str) -> dict[str, Any]:
    entry = next((f for f in harness["files"] if f["path"] == harness_path), None)
    if entry is None:
        pytest.skip(f"~/{harness_path} is not configured on this host")
    home = harness["home"] or host.user(harness["user"]).home
    return {**entry, "abs": f"{home}/{harness_path}"}


@pytest.fixture
def data(host: Any, harness_file: dict[str, Any]) -> Any:
    text = host.file(harness_file["abs"]).content_string
    try:
        if harness_file["path"].endswith(".json"):
            return json.loads(text)
        return yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        pytest.fail(f"{harness_file['abs']} does not parse: {exc}")


@pytest.fixture
def said(harness: dict[str, Any], harness_file: dict[str, Any], data: Any) -> Said:
    return said_by(harness_file["kind"], data, harness)


def _tags(host: Any, endpoint: str) -> list[str]:
    answer = json.loads(host.check_output("curl -fsS --max-time 10 %s", f"{endpoint}/api/tags"))
    return [m["name"] for m in answer.get("models", [])]


def _normal(model: str) -> str:
    return model if ":" in model.rsplit("/", 1)[-1] else f"{model}:latest"


def test_harness_file_is_the_users_and_private(
    host: Any, harness: dict[str, Any], harness_file: dict[str, Any]
) -> None:
    file = host.file(harness_file["abs"])
    assert file.is_file, f"{harness_file['abs']} is missing"
    assert file.user == harness["user"], f"{harness_file['abs']} belongs to {file.user}"
    assert file.mode == 0o600, f"{harness_file['abs']} has mode {oct(file.mode)}, not 0600"


def test_harness_file_points_at_a_reachable_server(
    host: Any, harness: dict[str, Any], harness_file: dict[str, Any], said: Said
) -> None:
    if said.endpoint is None:
        pytest.skip(f"~/{harness_file['path']} names no server (the other Aider file does)")
    v1 = harness_file["kind"] == "opencode"
    wanted = harness["endpoint"] + ("/v1" if v1 else "")
    assert said.endpoint.rstrip("/") == wanted, f"it calls {said.endpoint}, not {wanted}"
    probe = f"{wanted}/models" if v1 else f"{wanted}/api/version"
    answer = host.run("curl -fsS --max-time 10 %s", probe)
    assert answer.rc == 0, f"{probe} does not answer from this host: {answer.stderr.strip()}"


def test_harness_file_names_models_the_server_has(
    host: Any, harness: dict[str, Any], said: Said
) -> None:
    present = _tags(host, harness["endpoint"])
    missing = [m for m in said.models if _normal(m) not in present]
    assert not missing, f"{missing} not on the server at {harness['endpoint']} (has {present})"
    assert harness["chat_model"] in said.models, f"it does not name {harness['chat_model']}"


def test_harness_file_carries_the_context_length(
    harness: dict[str, Any], harness_file: dict[str, Any], said: Said
) -> None:
    if all(context is None for context in said.models.values()):
        pytest.skip(f"~/{harness_file['path']} carries no context (the other Aider file does)")
    wanted = {
        harness["chat_model"]: harness["context_length"],
        harness["autocomplete_model"]: harness["autocomplete_context"],
    }
    wrong = {m: c for m, c in said.models.items() if c != wanted.get(m)}
    assert not wrong, f"contexts {wrong}, configured {wanted}"
