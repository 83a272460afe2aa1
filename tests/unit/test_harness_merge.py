"""Harness config merges: the user's other providers and keys survive, a re-run is a no-op,
and a file that does not parse is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from roles.harness.configs import (
    InvalidConfig,
    harness_files,
    merge_config,
    parse,
    render_managed,
)
from roles.harness.plan import HarnessPlan
from tests.harness_checks.seeds import SEEDS

NOW = "2026-11-01T10:00:00Z"
LATER = "2026-11-02T11:00:00Z"
PLAN = HarnessPlan(
    user="dev",
    home=None,
    tools=("opencode", "continue", "aider", "cline"),
    endpoint="http://gpu.lan:11434",
    chat_model="qwen2.5-coder:7b",
    autocomplete_model="qwen2.5-coder:1.5b",
    context_length=32768,
    autocomplete_context=32768,
    cline_legacy=True,
)
PATHS = {f.kind: f.path for f in harness_files(PLAN)}


def merged(kind: str, existing: str | None, plan: HarnessPlan = PLAN, now: str = NOW) -> Any:
    text = merge_config(kind, existing, render_managed(kind, plan), now)
    assert text is not None
    return parse(text, kind)


def seed(kind: str) -> str:
    return SEEDS[PATHS[kind]]


def seeded(kind: str) -> Any:
    return parse(seed(kind), kind)


@pytest.mark.parametrize("kind", sorted(PATHS))
@pytest.mark.parametrize("start", ["absent", "seeded"])
def test_second_merge_changes_nothing(kind: str, start: str) -> None:
    existing = None if start == "absent" else seed(kind)
    first = merge_config(kind, existing, render_managed(kind, PLAN), NOW)
    assert first is not None
    assert merge_config(kind, first, render_managed(kind, PLAN), LATER) is None


@pytest.mark.parametrize("kind", sorted(PATHS))
def test_formatting_alone_is_no_reason_to_rewrite(kind: str) -> None:
    data = merged(kind, seed(kind))
    other_format = json.dumps(data) if kind.startswith(("opencode", "cline")) else yaml.dump(data)
    assert merge_config(kind, other_format, render_managed(kind, PLAN), LATER) is None


def test_opencode_keeps_other_providers_models_and_keys() -> None:
    user, data = seeded("opencode"), merged("opencode", seed("opencode"))
    assert data["provider"]["anthropic"] == user["provider"]["anthropic"]
    assert data["share"] == "disabled" and data["autoupdate"] is False
    assert data["instructions"] == ["CONTRIBUTING.md"]
    ollama = data["provider"]["ollama"]
    assert ollama["models"]["llama3.1:8b"] == {"name": "Llama 3.1 (mine)"}
    assert ollama["npm"] == "@ai-sdk/openai-compatible"
    assert ollama["options"] == {"baseURL": "http://gpu.lan:11434/v1"}
    assert ollama["models"]["qwen2.5-coder:7b"]["limit"] == {"context": 32768, "output": 8192}
    assert ollama["models"]["qwen2.5-coder:1.5b"]["limit"] == {"context": 32768, "output": 8192}
    assert data["model"] == "ollama/qwen2.5-coder:7b"
    assert data["small_model"] == "ollama/qwen2.5-coder:1.5b"


def test_continue_appends_its_models_and_keeps_the_users() -> None:
    user, data = seeded("continue"), merged("continue", seed("continue"))
    assert (data["name"], data["version"]) == ("My config", "0.0.1")  # the user's own
    assert data["context"] == user["context"]
    assert data["models"][0] == user["models"][0]
    assert data["models"][0]["apiKey"] == "${{ secrets.OPENAI_API_KEY }}"
    chat, autocomplete = data["models"][1:]
    assert chat["roles"] == ["chat", "edit", "apply"]
    assert chat["defaultCompletionOptions"] == {"contextLength": 32768, "maxTokens": 8192}
    assert autocomplete["model"] == "qwen2.5-coder:1.5b" and autocomplete["roles"] == [
        "autocomplete"
    ]
    assert {m["apiBase"] for m in (chat, autocomplete)} == {"http://gpu.lan:11434"}


def test_continue_updates_its_entry_in_place_and_keeps_keys_the_user_added() -> None:
    first = merge_config("continue", seed("continue"), render_managed("continue", PLAN), NOW)
    data = parse(first or "", "continue")
    data["models"][1]["requestOptions"] = {"timeout": 600}
    moved = HarnessPlan(**{**PLAN.__dict__, "endpoint": "http://other:11434"})
    again = parse(
        merge_config("continue", yaml.dump(data), render_managed("continue", moved), NOW) or "",
        "continue",
    )
    assert len(again["models"]) == 3
    assert again["models"][1]["apiBase"] == "http://other:11434"
    assert again["models"][1]["requestOptions"] == {"timeout": 600}


def test_aider_conf_replaces_the_model_and_keeps_the_rest() -> None:
    data = merged("aider-conf", seed("aider-conf"))
    assert data["model"] == "ollama_chat/qwen2.5-coder:7b"
    assert data["weak-model"] == "ollama_chat/qwen2.5-coder:1.5b"
    assert data["dark-mode"] is True and data["auto-commits"] is False
    assert data["openai-api-key"] == "sk-test-not-a-real-key"
    assert data["set-env"] == ["AIDER_TEST_MARKER=1", "OLLAMA_API_BASE=http://gpu.lan:11434"]


def test_aider_set_env_replaces_an_old_endpoint_in_place() -> None:
    old = "set-env: OLLAMA_API_BASE=http://old:11434\n"
    assert merged("aider-conf", old)["set-env"] == ["OLLAMA_API_BASE=http://gpu.lan:11434"]


def test_aider_model_settings_keep_other_models() -> None:
    data = merged("aider-models", seed("aider-models"))
    assert data[0] == {"name": "gpt-4o", "edit_format": "diff", "use_repo_map": True}
    assert data[1:] == [
        {"name": "ollama_chat/qwen2.5-coder:7b", "extra_params": {"num_ctx": 32768}},
        {"name": "ollama_chat/qwen2.5-coder:1.5b", "extra_params": {"num_ctx": 32768}},
    ]


def test_aider_model_settings_keep_keys_the_user_added_to_ours() -> None:
    mine = (
        "- name: ollama_chat/qwen2.5-coder:7b\n  edit_format: diff\n"
        "  extra_params: {num_ctx: 2048}\n"
    )
    data = merged("aider-models", mine)
    assert data[0] == {
        "name": "ollama_chat/qwen2.5-coder:7b",
        "edit_format": "diff",
        "extra_params": {"num_ctx": 32768},
    }


def test_cline_keeps_other_providers_and_stamps_only_a_change() -> None:
    user, data = seeded("cline-providers"), merged("cline-providers", seed("cline-providers"))
    assert data["providers"]["anthropic"] == user["providers"]["anthropic"]
    assert data["lastUsedProvider"] == "ollama"
    entry = data["providers"]["ollama"]
    assert entry["settings"] == {
        "provider": "ollama",
        "model": "qwen2.5-coder:7b",
        "baseUrl": "http://gpu.lan:11434",
        "contextWindow": 32768,
        "maxTokens": 8192,
    }
    assert (entry["updatedAt"], entry["tokenSource"]) == (NOW, "manual")
    text = json.dumps(data)
    assert (
        merge_config("cline-providers", text, render_managed("cline-providers", PLAN), LATER)
        is None
    )
    bigger = HarnessPlan(**{**PLAN.__dict__, "context_length": 16384})
    changed = merged("cline-providers", text, bigger, now=LATER)["providers"]["ollama"]
    assert changed["updatedAt"] == LATER and changed["settings"]["contextWindow"] == 16384


def test_cline_legacy_state_keeps_other_keys() -> None:
    data = merged("cline-state", seed("cline-state"))
    assert data["welcomeViewCompleted"] is True
    assert data["actModeApiProvider"] == "ollama" and data["ollamaApiOptionsCtxNum"] == "32768"


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        ("opencode", '{"model": "x",}\n', "not valid JSON, line 1: Expecting property name"),
        ("opencode", '{\n  // mine\n  "model": "x"\n}\n', "(comments are not accepted either)"),
        ("cline-providers", '{\n  "version": 1\n', "not valid JSON, line 3"),
        ("cline-providers", "[1, 2]", "holds a list, not a mapping"),
        ("continue", "models:\n  - name: a\n bad: [\n", "not valid YAML, line 3"),
        ("continue", "models: {a: 1}\n", "its 'models' is not a list"),
        ("aider-models", "name: x\n", "holds no list of model settings"),
    ],
)
def test_an_invalid_file_is_refused_in_one_line(kind: str, text: str, message: str) -> None:
    with pytest.raises(InvalidConfig) as caught:
        merge_config(kind, text, render_managed(kind, PLAN), NOW)
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("kind", sorted(PATHS))
def test_an_empty_file_is_filled(kind: str) -> None:
    assert merged(kind, "  \n") == merged(kind, None)
