"""Harness plan: inventory defaults, the endpoint, models and context, one-line refusals."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest

from roles.harness.plan import HarnessPlan, Server, plan_harness, resolve_server, served_context
from settings import Settings, SettingsError, settings_from_data

ROOT = Path(__file__).resolve().parents[2]
LAB_BOX = "rtx3070.lab.example"


def inventory_data(name: str) -> dict[str, Any]:
    """Host data of the shipped inventories: home's only host, lab's GPU box."""
    hosts = runpy.run_path(str(ROOT / "inventory" / f"{name}.py"))
    return dict((hosts.get("hosts") or hosts["gpu_boxes"])[0][1])


def lab_lookup(name: str) -> tuple[Settings, str] | None:
    return (settings_from_data(inventory_data("lab")), name) if name == LAB_BOX else None


def plan_for(data: dict[str, Any], own_name: str = "@local") -> HarnessPlan | None:
    settings = settings_from_data({"harness_user": "dev", **data})
    return plan_harness(settings, resolve_server(settings, own_name, lab_lookup))


def error_for(data: dict[str, Any], own_name: str = "@local") -> str:
    with pytest.raises(SettingsError) as caught:
        plan_for(data, own_name)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("settings: ")
    return message


def test_nothing_is_planned_without_a_harness_user() -> None:
    settings = settings_from_data({})
    assert plan_harness(settings, Server(settings.api_url, settings, "this host")) is None


def test_home_inventory_chats_and_completes_with_its_one_model_at_its_trained_context() -> None:
    plan = plan_for(inventory_data("home"))
    assert plan is not None
    assert (plan.chat_model, plan.autocomplete_model) == ("qwen2.5-coder:7b", "qwen2.5-coder:7b")
    # ollama_context_length is 65536, but Ollama caps qwen2.5-coder at its trained 32768.
    assert plan.context_length == 32768 and plan.output_tokens == 8192
    assert plan.endpoint == "http://127.0.0.1:11434"
    assert plan.tools == ("opencode", "continue", "aider", "cline")


def test_lab_box_pairs_the_large_chat_model_with_the_small_fim_model() -> None:
    plan = plan_for(inventory_data("lab"), own_name=LAB_BOX)
    assert plan is not None
    assert (plan.chat_model, plan.autocomplete_model) == ("qwen2.5-coder:7b", "qwen2.5-coder:1.5b")
    # It listens on 0.0.0.0: on the box itself the harnesses use loopback.
    assert plan.endpoint == "http://127.0.0.1:11434"


def test_a_laptop_names_the_gpu_box_and_gets_its_address_models_and_context() -> None:
    plan = plan_for({"harness_endpoint": LAB_BOX, "ollama_models": []}, own_name="laptop")
    assert plan is not None
    assert plan.endpoint == f"http://{LAB_BOX}:11434"
    assert plan.autocomplete_model == "qwen2.5-coder:1.5b"


def test_a_url_endpoint_is_described_by_this_hosts_settings() -> None:
    plan = plan_for({"harness_endpoint": "http://10.0.0.5:11434/", "gpu": "none"})
    assert plan is not None and plan.endpoint == "http://10.0.0.5:11434"


def test_a_variant_gives_a_v1_harness_more_than_the_server_default() -> None:
    data = {
        "ollama_models": ["phi4-mini:3.8b", "qwen2.5-coder:1.5b"],
        "ollama_context_length": 16384,
        "ollama_model_variants": {"phi4-mini-64k": {"from": "phi4-mini:3.8b", "num_ctx": 65536}},
        "harness_chat_model": "phi4-mini-64k",
        "harness_context_length": 65536,
    }
    plan = plan_for(data)
    assert plan is not None and plan.context_length == 65536
    assert plan.autocomplete_context == 16384  # what /v1 gives the small model


def test_served_context_is_capped_at_the_trained_context() -> None:
    settings = settings_from_data({"ollama_models": ["qwen2.5-coder:7b", "llama3.1:8b"]})
    assert served_context(settings, "qwen2.5-coder:7b") == 32768
    assert served_context(settings, "llama3.1:8b") == 65536
    assert served_context(settings, "not-in-catalog:1b") == 65536


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {
                "ollama_models": ["llama3.1:8b", "qwen2.5-coder:1.5b"],
                "harness_context_length": 131072,
            },
            "harness_context_length=131072 is more than this host gives llama3.1:8b (65536 tokens",
        ),
        ({"harness_context_length": 65536}, "OpenCode's /v1 requests cannot ask for more"),
        (
            {"harness_chat_model": "llama3.1:8b"},
            "harness_chat_model='llama3.1:8b' is not among the models of this host"
            " (qwen2.5-coder:7b): add it to ollama_models there",
        ),
        (
            {
                "ollama_models": ["qwen2.5-coder:7b", "llama3.1:8b"],
                "harness_autocomplete_model": "llama3.1:8b",
            },
            "harness_autocomplete_model='llama3.1:8b' cannot fill in the middle",
        ),
        (
            {"ollama_models": ["llama3.1:8b"]},
            "no fill-in-the-middle model among the ollama_models of this host",
        ),
        ({"ollama_models": []}, "harness_chat_model: this host lists no ollama_models"),
        ({"harness_endpoint": "gpu9"}, "harness_endpoint='gpu9' is neither a URL nor a host"),
    ],
)
def test_inconsistent_settings_are_refused(data: dict[str, Any], expected: str) -> None:
    assert expected in error_for(data)


def test_a_gpu_box_listening_on_loopback_only_cannot_serve_a_laptop() -> None:
    def loopback_box(name: str) -> tuple[Settings, str]:
        return settings_from_data({}), name

    settings = settings_from_data({"harness_user": "dev", "harness_endpoint": "box"})
    with pytest.raises(SettingsError, match="its Ollama listens on 127.0.0.1:11434 only"):
        resolve_server(settings, "laptop", loopback_box)


def test_without_continue_no_fim_model_is_needed() -> None:
    plan = plan_for({"ollama_models": ["llama3.1:8b"], "harness_tools": ["aider", "opencode"]})
    assert plan is not None and plan.autocomplete_model == "llama3.1:8b"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"harness_endpoint": "http://gpu:11434/v1"}, "no path: /v1 is added for OpenCode"),
        ({"harness_endpoint": "ftp://gpu"}, "must be the server's base URL"),
        ({"harness_tools": ["aider", "aider"]}, "lists a harness twice"),
        ({"harness_tools": ["cursor"]}, "harness_tools.0='cursor'"),
        ({"harness_user": "Dev User"}, "must be a login name"),
        ({"harness_home": "home/dev"}, "must be an absolute path"),
        ({"harness_chat_model": "Qwen Coder"}, "is not an Ollama model name"),
        ({"harness_context_length": 1000}, "greater than or equal to 2048"),
    ],
)
def test_bad_harness_settings_are_refused_in_one_line(data: dict[str, Any], expected: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings_from_data(data)
    assert expected in str(caught.value) and "\n" not in str(caught.value)
