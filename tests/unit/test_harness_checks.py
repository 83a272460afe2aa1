"""Each harness's own code reads the configs ollama-rig generates, offline, and keeps every key.

HARNESSES.md: every one of these harnesses drops unknown keys silently, so each check compares
what the harness parsed with what was written, key by key, not only the exit status. Configs
are generated from the shipped inventories: inventory/home.py into an empty home, and
inventory/lab.py's GPU box over a home that already has the user's own configs
(tests/harness_checks/seeds.py), so the merged files are what gets checked there.

Tier `harness_check`: the harnesses come from scripts/harness-checks.sh (npm packages into
tests/harness_checks/node_modules, Aider into build/aider-venv). Without them these tests skip
and say so; CI installs them and sets RIG_REQUIRE_HARNESS_CHECKS=1, which turns a skip into a
failure.
"""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from roles.harness.configs import harness_files, merge_config, parse, render_managed
from roles.harness.plan import HarnessPlan, plan_harness, resolve_server
from settings import settings_from_data
from tests.harness_checks.seeds import SEEDS

pytestmark = pytest.mark.harness_check

ROOT = Path(__file__).resolve().parents[2]
CHECKS = ROOT / "tests" / "harness_checks"
OPENCODE = CHECKS / "node_modules" / "opencode-linux-x64" / "bin" / "opencode"
CONTINUE = CHECKS / "node_modules" / "@continuedev" / "config-yaml"
CLINE = CHECKS / "node_modules" / "@cline" / "core"
AIDER_PYTHON = ROOT / "build" / "aider-venv" / "bin" / "python"
REQUIRED = os.environ.get("RIG_REQUIRE_HARNESS_CHECKS") == "1"
NOW = "2026-11-01T10:00:00Z"


def require(path: Path, what: str) -> None:
    if path.exists() and (what != "node" or shutil.which("node")):
        return
    message = f"{what} is not installed ({path}): run scripts/harness-checks.sh"
    if REQUIRED:
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Generated:
    home: Path
    plan: HarnessPlan

    def path(self, kind: str) -> Path:
        return self.home / next(f.path for f in harness_files(self.plan) if f.kind == kind)

    def data(self, kind: str) -> Any:
        return parse(self.path(kind).read_text(), kind)


def generate(inventory: str, home: Path, seeded: bool) -> Generated:
    """Write every harness file for user dev from an inventory's first host, as the role would."""
    hosts = runpy.run_path(str(ROOT / "inventory" / f"{inventory}.py"))
    name, data = (hosts.get("hosts") or hosts["gpu_boxes"])[0]
    extra = {"harness_user": "dev", "harness_home": str(home), "harness_cline_legacy": True}
    settings = settings_from_data({**data, **extra})
    plan = plan_harness(settings, resolve_server(settings, name, lambda _: None))
    assert plan is not None
    for file in harness_files(plan):
        target = home / file.path
        target.parent.mkdir(parents=True, exist_ok=True)
        existing = SEEDS[file.path] if seeded else None
        target.write_text(
            merge_config(file.kind, existing, render_managed(file.kind, plan), NOW) or ""
        )
    return Generated(home, plan)


@pytest.fixture(
    scope="module",
    params=[("home", False), ("lab", True)],
    ids=["home-inventory-fresh", "lab-inventory-over-user-configs"],
)
def generated(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Generated:
    inventory, seeded = request.param
    return generate(inventory, tmp_path_factory.mktemp(inventory), seeded)


@pytest.fixture
def fresh(tmp_path: Path) -> Generated:
    return generate("home", tmp_path, seeded=False)


def dropped(written: Any, parsed: Any, at: str = "", masked: str | None = None) -> list[str]:
    """Every leaf written that the harness's parsed view lacks or holds differently.

    masked: what the harness shows instead of a secret (OpenCode prints API keys as "***").
    """
    if isinstance(written, dict):
        if not isinstance(parsed, dict):
            return [f"{at or '.'}: wrote a mapping, harness has {parsed!r}"]
        return [
            d for k, v in written.items() for d in dropped(v, parsed.get(k), f"{at}.{k}", masked)
        ]
    if isinstance(written, list) and isinstance(parsed, list) and len(written) == len(parsed):
        pairs = enumerate(zip(written, parsed, strict=True))
        return [d for i, (w, p) in pairs for d in dropped(w, p, f"{at}[{i}]", masked)]
    if written == parsed or (masked is not None and parsed == masked):
        return []
    return [f"{at}: wrote {written!r}, harness has {parsed!r}"]


def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=180, **kwargs)


def node(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run(["node", str(CHECKS / script), *args], cwd=CHECKS)


# --- OpenCode: its own binary (npm opencode-linux-x64) -------------------------------------


def opencode(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The opencode binary with HOME and XDG_* in home, in a git repository there."""
    repo = home / "repo"
    if not (repo / ".git").exists():
        repo.mkdir(exist_ok=True)
        run(["git", "init", "-q", str(repo)], check=True)
    xdg = {
        "XDG_CONFIG_HOME": ".config",
        "XDG_DATA_HOME": ".local/share",
        "XDG_CACHE_HOME": ".cache",
        "XDG_STATE_HOME": ".local/state",
    }
    env = {"PATH": os.environ["PATH"], "HOME": str(home)}
    env |= {key: str(home / sub) for key, sub in xdg.items()}
    return run([str(OPENCODE), *args], cwd=repo, env=env)


def test_opencode_takes_every_key_written(generated: Generated) -> None:
    require(OPENCODE, "opencode (npm opencode-linux-x64)")
    result = opencode(generated.home, "debug", "config")
    assert result.returncode == 0, result.stderr
    assert dropped(generated.data("opencode"), json.loads(result.stdout), masked="***") == []


def test_opencode_lists_the_configured_models(generated: Generated) -> None:
    require(OPENCODE, "opencode (npm opencode-linux-x64)")
    result = opencode(generated.home, "models", "ollama")
    assert result.returncode == 0, result.stderr
    plan = generated.plan
    wanted = {f"ollama/{plan.chat_model}", f"ollama/{plan.autocomplete_model}"}
    assert wanted <= set(result.stdout.split()), result.stdout


def test_opencode_refuses_a_limit_without_output(fresh: Generated) -> None:
    require(OPENCODE, "opencode (npm opencode-linux-x64)")
    path = fresh.path("opencode")
    data = json.loads(path.read_text())
    del data["provider"]["ollama"]["models"][fresh.plan.chat_model]["limit"]["output"]
    path.write_text(json.dumps(data))
    result = opencode(fresh.home, "debug", "config")
    assert result.returncode == 1
    assert f"Missing key provider.ollama.models.{fresh.plan.chat_model}.limit.output" in (
        result.stderr + result.stdout
    )


# --- Continue: @continuedev/config-yaml's loader and validation ----------------------------


def test_continue_takes_every_key_written(generated: Generated) -> None:
    require(CONTINUE, "node")
    result = node("continue.mjs", str(generated.path("continue")))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["problems"] == []
    assert dropped(generated.data("continue"), out["parsed"]) == []


def test_continue_check_catches_a_silently_dropped_key(fresh: Generated) -> None:
    require(CONTINUE, "node")
    path = fresh.path("continue")
    path.write_text(path.read_text().replace("contextLength:", "contextLenght:", 1))
    result = node("continue.mjs", str(path))
    assert result.returncode == 0  # the schema alone says nothing
    missing = dropped(parse(path.read_text(), "continue"), json.loads(result.stdout)["parsed"])
    assert missing == [
        f".models[0].defaultCompletionOptions.contextLenght: wrote {fresh.plan.context_length},"
        " harness has None"
    ]


# --- Aider: its option parser and model settings loader, in build/aider-venv ---------------


def aider(home: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "HOME": str(home)}
    return run([str(AIDER_PYTHON), str(CHECKS / "aider_check.py"), str(home)], env=env)


def test_aider_takes_every_key_written(generated: Generated) -> None:
    require(AIDER_PYTHON, "Aider's virtualenv")
    result = aider(generated.home)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["unknown"] == []
    options = {k.replace("-", "_"): v for k, v in generated.data("aider-conf").items()}
    assert dropped(options, out["options"]) == []
    settings_file = str(generated.path("aider-models"))
    assert out["loaded"] == [settings_file] and out["searched"][0] == settings_file
    for entry in generated.data("aider-models"):
        assert dropped(entry, out["settings"][entry["name"]]) == []


def test_aider_reports_an_unknown_option_and_refuses_an_unknown_setting(fresh: Generated) -> None:
    require(AIDER_PYTHON, "Aider's virtualenv")
    conf, models = fresh.path("aider-conf"), fresh.path("aider-models")
    conf.write_text(conf.read_text() + "num-ctx: 65536\n")
    result = aider(fresh.home)
    assert json.loads(result.stdout)["unknown"] == ["--num-ctx=65536"]
    models.write_text(models.read_text().replace("extra_params:", "extra_parameters:"))
    result = aider(fresh.home)
    assert result.returncode == 1
    assert "unexpected keyword argument 'extra_parameters'" in result.stderr


# --- Cline: @cline/core's schema, settings reader and legacy migration ---------------------


def test_cline_takes_every_key_written(generated: Generated) -> None:
    require(CLINE, "node")
    providers, state = generated.path("cline-providers"), generated.path("cline-state")
    result = node("cline.mjs", str(providers), str(state))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    written = generated.data("cline-providers")
    assert dropped(written, out["parsed"]) == [] and dropped(written, out["read"]) == []
    plan = generated.plan
    config = out["config"]
    assert (config["baseUrl"], config["modelId"]) == (plan.endpoint, plan.chat_model)
    assert config["maxInputTokens"] == plan.context_length
    # The legacy keys, as Cline migrates them (it carries no context length over).
    assert out["legacy"]["providers"]["ollama"]["settings"] == {
        "provider": "ollama",
        "model": plan.chat_model,
        "baseUrl": plan.endpoint,
    }


def test_cline_refuses_a_context_window_that_is_not_a_number(fresh: Generated) -> None:
    require(CLINE, "node")
    path = fresh.path("cline-providers")
    data = json.loads(path.read_text())
    data["providers"]["ollama"]["settings"]["contextWindow"] = "32768"
    path.write_text(json.dumps(data))
    result = node("cline.mjs", str(path))
    assert result.returncode == 1
    assert '"contextWindow"' in result.stderr and "expected number" in result.stderr
