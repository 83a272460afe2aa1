"""Tier 2: the harness role applied for real to a systemd container whose user `dev` already
has configs of their own (tests/harness_checks/seeds.py), twice, then tests/verify against it.

Tests run in file order and build on each other (converge, converge again, verify, break).
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness_checks.seeds import SEEDS
from tests.integration.deployer import (
    DeployRun,
    changed,
    run_deploy,
    run_verify,
    sh,
    standin_data,
)

USER, HOME = "dev", "/home/dev"
CHAT, FIM = "phi4-mini:3.8b", "qwen2.5-coder:1.5b"
PROVIDERS = f"{HOME}/.cline/data/settings/providers.json"
HARNESS_OPS = 6  # OpenCode, Continue, 2 Aider, Cline providers and legacy state


def host_data(archive: Path, **overrides: Any) -> dict[str, Any]:
    data = standin_data(archive, ollama_models=[CHAT, FIM], ollama_model_variants={})
    data.update(harness_user=USER, harness_cline_legacy=True, **overrides)
    return data


def read(container: str, path: str) -> str:
    return sh(container, f"cat {shlex.quote(path)}")


def parsed(container: str, relative: str) -> Any:
    text = read(container, f"{HOME}/{relative}")
    return json.loads(text) if relative.endswith(".json") else yaml.safe_load(text)


def home_listing(container: str) -> str:
    return sh(container, f"find {HOME} -printf '%p %s %m %u %T@\\n' | sort")


@pytest.fixture(scope="module")
def seeded(container: str) -> str:
    """The user dev with configs of their own; one of them readable by everyone."""
    sh(container, f"useradd --create-home --shell /bin/bash {USER}")
    for relative, text in SEEDS.items():
        path = f"{HOME}/{relative}"
        sh(container, f"mkdir -p {shlex.quote(os.path.dirname(path))}")
        sh(container, f"printf %s {shlex.quote(text)} > {shlex.quote(path)}")
    sh(container, f"chown -R {USER}:{USER} {HOME} && chmod 0600 {HOME}/.aider.conf.yml")
    sh(container, f"chmod 0644 {PROVIDERS}")
    return container


def test_first_converge_merges_every_harness_config(seeded: str, archives: dict) -> None:
    run = run_deploy(seeded, host_data(archives["0.32.7"]))
    assert run.returncode == 0, run.output[-5000:]
    ours = [op for op in run.changed_operations() if op.startswith("Coding harnesses |")]
    assert len(ours) == HARNESS_OPS, changed(run)


def test_second_converge_changes_nothing(seeded: str, archives: dict) -> None:
    run = run_deploy(seeded, host_data(archives["0.32.7"]))
    assert run.returncode == 0, run.output[-5000:]
    assert run.totals["success"] == 0, changed(run)


def test_the_users_own_settings_survive(seeded: str) -> None:
    opencode = parsed(seeded, ".config/opencode/opencode.json")
    assert opencode["provider"]["anthropic"] == {"options": {"apiKey": "{env:ANTHROPIC_API_KEY}"}}
    assert opencode["provider"]["ollama"]["models"]["llama3.1:8b"] == {"name": "Llama 3.1 (mine)"}
    assert opencode["share"] == "disabled" and opencode["model"] == f"ollama/{CHAT}"
    cont = parsed(seeded, ".continue/config.yaml")
    assert cont["name"] == "My config" and cont["models"][0]["name"] == "GPT-4o"
    assert [m["name"] for m in cont["models"][1:]] == [
        "Ollama chat (ollama-rig)",
        "Ollama autocomplete (ollama-rig)",
    ]
    aider = parsed(seeded, ".aider.conf.yml")
    assert aider["dark-mode"] is True and aider["openai-api-key"] == "sk-test-not-a-real-key"
    assert parsed(seeded, ".aider.model.settings.yml")[0]["name"] == "gpt-4o"
    cline = parsed(seeded, ".cline/data/settings/providers.json")
    seed = json.loads(SEEDS[".cline/data/settings/providers.json"])
    assert cline["providers"]["anthropic"] == seed["providers"]["anthropic"]
    assert parsed(seeded, ".cline/data/globalState.json")["welcomeViewCompleted"] is True
    # The file as it was is kept beside it; every file is now dev's and private.
    assert (
        read(seeded, PROVIDERS + ".ollama-rig.bak") == SEEDS[".cline/data/settings/providers.json"]
    )
    modes = sh(
        seeded, f"find {HOME} -type f -name '*.json' -newer {HOME}/.bashrc -printf '%m %u\\n'"
    )
    assert set(modes.split("\n")) - {""} == {f"600 {USER}"}


def test_verify_suite_passes_for_every_harness_file(seeded: str) -> None:
    result = run_verify(seeded, "-k", "harness")
    assert result.returncode == 0, result.stdout[-5000:]
    passed = [line for line in result.stdout.splitlines() if line.startswith("PASSED")]
    # 6 files x 4 checks, less the two Aider files' skips (one names no server, one no context).
    assert len(passed) == 6 * 4 - 2, result.stdout[-5000:]


def test_a_drifted_file_fails_verify_and_the_next_run_repairs_it(
    seeded: str, archives: dict
) -> None:
    good = read(seeded, PROVIDERS)
    drifted = good.replace('"baseUrl": "http://127.0.0.1:11434"', '"baseUrl": "http://127.0.0.1:9"')
    assert drifted != good
    sh(seeded, f"printf %s {shlex.quote(drifted)} > {PROVIDERS}")
    result = run_verify(seeded, "-k", "harness and providers.json")
    assert result.returncode == 1, result.stdout[-5000:]
    assert "it calls http://127.0.0.1:9, not http://127.0.0.1:11434" in result.stdout
    run = run_deploy(seeded, host_data(archives["0.32.7"]))
    assert run.changed_operations() == [
        "Coding harnesses | Cline ~/.cline/data/settings/providers.json"
    ], changed(run)
    repaired = json.loads(read(seeded, PROVIDERS))
    assert repaired["providers"]["ollama"]["settings"]["baseUrl"] == "http://127.0.0.1:11434"


def test_an_invalid_file_is_refused_and_left_as_it_is(seeded: str, archives: dict) -> None:
    good = read(seeded, PROVIDERS)
    broken = good.rstrip().rstrip("}")  # cut short, as an editor crash would leave it
    sh(seeded, f"printf %s {shlex.quote(broken)} > {PROVIDERS}")
    before = home_listing(seeded)
    run = run_deploy(seeded, host_data(archives["0.32.7"]))
    assert run.returncode != 0
    assert f"ollama-rig: {PROVIDERS} is refused and left as it is: not valid JSON, line" in (
        run.output
    )
    assert "; fix or move it, then run again" in run.output
    assert "Traceback" not in run.output
    assert read(seeded, PROVIDERS) == broken and home_listing(seeded) == before
    sh(seeded, f"printf %s {shlex.quote(good)} > {PROVIDERS}")


def test_a_context_the_server_does_not_give_is_refused_before_any_change(
    seeded: str, archives: dict
) -> None:
    before = home_listing(seeded)
    run = run_deploy(seeded, host_data(archives["0.32.7"], harness_context_length=131072))
    assert run.returncode != 0
    assert "harness_context_length=131072 is more than this host gives phi4-mini:3.8b" in run.output
    assert "Traceback" not in run.output
    assert home_listing(seeded) == before


def run_client(container: str, data: dict[str, Any]) -> DeployRun:
    """roles/harness/client.py: only the harness role, as for a machine without Ollama."""
    return run_deploy(container, data, deploy="roles/harness/client.py")


def test_a_harness_only_host_points_at_the_given_url(seeded: str) -> None:
    sh(seeded, "useradd --create-home ana")
    data = {
        "harness_user": "ana",
        "harness_endpoint": "http://localhost:11434",
        "harness_tools": ["continue", "cline"],
        "ollama_models": [CHAT, FIM],  # they describe the server at that URL
    }
    run = run_client(seeded, data)
    assert run.returncode == 0, run.output[-5000:]
    assert run.totals["success"] == 2, run.changed_operations()
    settings = json.loads(read(seeded, "/home/ana/.cline/data/settings/providers.json"))
    assert settings["providers"]["ollama"]["settings"]["baseUrl"] == "http://localhost:11434"
    assert sh(seeded, "stat -c '%U %a' /home/ana/.continue /home/ana/.continue/config.yaml") == (
        "ana 700\nana 600\n"
    )
    assert run_client(seeded, data).totals["success"] == 0
