"""molecule/: what can be checked without Molecule, a Docker engine or a GPU.

Each scenario's instances come from the integration tier's lifecycle code (its `main`), its
playbooks are the shared ones, its host data is valid settings, and the gpu-host scenario
creates and destroys nothing and writes the report the GPU workflow uploads. The scenarios
themselves run with `molecule test -s NAME` (README, "Molecule"; CI runs some).
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from settings import settings_from_data

ROOT = Path(__file__).resolve().parents[2]
MOLECULE = ROOT / "molecule"
SHARED = MOLECULE / "shared"
TESTBED_SCENARIOS = ["native", "docker", "lxc", "kvm-host"]
PLAYS = ("create", "converge", "verify", "destroy")


def config(scenario: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((MOLECULE / scenario / "molecule.yml").read_text())
    return data


def play(name: str) -> dict[str, Any]:
    (only,) = yaml.safe_load((SHARED / f"{name}.yml").read_text())
    data: dict[str, Any] = only
    return data


def host_vars(scenario: str, platform: str) -> dict[str, Any]:
    """What a platform's host sees: group_vars `all` under its host_vars."""
    inventory = config(scenario)["provisioner"]["inventory"]
    return {**inventory["group_vars"]["all"], **inventory.get("host_vars", {}).get(platform, {})}


def platforms(scenario: str) -> list[str]:
    return [p["name"] for p in config(scenario)["platforms"]]


def test_the_scenarios_and_no_playbook_copies() -> None:
    scenarios = sorted(p.parent.name for p in MOLECULE.glob("*/molecule.yml"))
    assert scenarios == sorted([*TESTBED_SCENARIOS, "gpu-host"])
    for scenario in scenarios:
        assert [p.name for p in (MOLECULE / scenario).iterdir()] == ["molecule.yml"]
        for step, path in config(scenario)["provisioner"]["playbooks"].items():
            assert path == f"../shared/{step}.yml", (scenario, step)


@pytest.mark.parametrize("scenario", TESTBED_SCENARIOS)
def test_testbed_scenario_runs_the_whole_cycle_on_disposable_hosts(scenario: str) -> None:
    data = config(scenario)
    assert data["driver"]["name"] == "default" and data["driver"]["options"]["managed"] is True
    assert set(data["provisioner"]["playbooks"]) == set(PLAYS)
    sequence = data["scenario"]["test_sequence"]
    assert sequence == ["destroy", "syntax", "create", "converge", "idempotence", "verify"] + [
        "destroy"
    ]


@pytest.mark.parametrize(
    ("scenario", "platform"),
    [(s, p) for s in TESTBED_SCENARIOS for p in platforms(s)],
)
def test_instances_come_from_the_integration_tiers_lifecycle(
    scenario: str, platform: str, capsys: pytest.CaptureFixture[str]
) -> None:
    module = host_vars(scenario, platform)["rig_testbed"]
    assert re.fullmatch(r"tests\.integration\.\w+", module), module
    # Its command line is testbed.cli's, under its own name (a wrong usage touches no engine).
    assert importlib.import_module(module).main(["no-such-verb"]) == 2
    assert f"usage: python -m {module} image|create NAME|destroy NAME" in capsys.readouterr().err


@pytest.mark.parametrize(
    "module",
    sorted({host_vars(s, p)["rig_testbed"] for s in TESTBED_SCENARIOS for p in platforms(s)})
    + ["tests.integration.lxd_host"],
)
def test_lifecycle_modules_import_without_pytest(module: str) -> None:
    """Molecule and scripts/lxd-engine.sh run them before the test packages are installed."""
    code = f"import sys; sys.modules['pytest'] = None; import {module}"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize(
    ("scenario", "platform"),
    [(s, p) for s in TESTBED_SCENARIOS for p in platforms(s)],
)
def test_host_data_is_valid_settings(scenario: str, platform: str, tmp_path: Path) -> None:
    values = host_vars(scenario, platform)
    data = dict(values["rig_host_data"])
    archive = tmp_path / "archive"
    archive.write_bytes(b"")
    for key, value in data.items():
        if isinstance(value, str) and "{{" in value:  # filled from the stand-in build's output
            assert "rig_standin_built.stdout" in value and "rig_standin" in values, (key, value)
            data[key] = "0" * 64 if key.endswith("_sha256") else str(archive)
    settings = settings_from_data(data)
    assert settings.topology == data["topology"]


def test_lifecycle_plays_call_the_named_module_per_instance() -> None:
    for step in ("create", "destroy"):
        (task,) = play(step)["tasks"]
        assert play(step)["hosts"] == "all" and play(step)["connection"] == "local"
        command = task["ansible.builtin.command"]["cmd"]
        assert (
            command
            == f"{{{{ rig_python }}}} -m {{{{ rig_testbed }}}} {step} {{{{ inventory_hostname }}}}"
        )


def test_converge_maps_pyinfras_changed_count_to_ansibles() -> None:
    tasks = {t["name"]: t for t in play("converge")["tasks"]}
    deploy = tasks["Apply deploy.py with pyinfra"]
    assert "-m pyinfra -y --json" in deploy["ansible.builtin.command"]["cmd"]
    assert "deploy.py" in deploy["ansible.builtin.command"]["cmd"]
    assert "totals.success > 0" in deploy["changed_when"]  # what Molecule's idempotence reads
    standin = tasks["Build the Ollama stand-in (tests/standin, a test fixture)"]
    assert standin["changed_when"] is False and standin["run_once"] is True


def test_verify_runs_the_testinfra_suite_with_a_junit_report() -> None:
    tasks = {t["name"]: t for t in play("verify")["tasks"]}
    command = tasks["Run tests/verify"]["ansible.builtin.command"]["cmd"]
    assert "-m pytest {{ rig_verify_paths | default('tests/verify') }}" in command
    assert "--hosts={{ rig_verify_hosts | default('docker://' ~ inventory_hostname) }}" in command
    assert "--junitxml={{ report }}" in command


def test_gpu_host_neither_creates_nor_destroys() -> None:
    data = config("gpu-host")
    assert data["driver"]["options"]["managed"] is False
    assert set(data["provisioner"]["playbooks"]) == {"converge", "verify"}
    sequence = data["scenario"]["test_sequence"]
    assert "create" not in sequence and "destroy" not in sequence
    assert sequence[-3:] == ["converge", "idempotence", "verify"]
    assert data["scenario"]["converge_sequence"] == ["converge"]


def test_gpu_host_is_the_runner_unless_the_environment_names_another() -> None:
    values = config("gpu-host")["provisioner"]["inventory"]["group_vars"]["all"]
    # Molecule's interpolation: ${VAR:-default} when unset or empty, ${VAR-default} when unset.
    assert values["rig_inventory"] == "${RIG_INVENTORY:-inventory/home.py}"
    assert values["rig_pyinfra_args"] == "${RIG_PYINFRA_ARGS---sudo}"
    assert values["rig_verify_hosts"] == "${RIG_VERIFY_HOSTS:-local://}"
    assert (ROOT / "inventory" / "home.py").is_file()
    assert "rig_host_data" not in values and "rig_testbed" not in values


def test_gpu_host_writes_the_report_the_workflow_uploads() -> None:
    values = config("gpu-host")["provisioner"]["inventory"]["group_vars"]["all"]
    report = values["rig_verify_report"].removeprefix("${MOLECULE_PROJECT_DIRECTORY}/")
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "gpu.yml").read_text())
    upload = next(
        s for s in workflow["jobs"]["gpu"]["steps"] if "upload-artifact" in s.get("uses", "")
    )
    assert report in upload["with"]["path"].split()
    # The variables the workflow sets are the ones the scenario reads.
    for variable in workflow["jobs"]["gpu"]["env"]:
        assert f"${{{variable}" in yaml.safe_dump(values), variable
