""".github/workflows/gpu.yml: it parses, runs on the `gpu` runner, and has the steps it promises."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "gpu.yml"


@pytest.fixture(scope="module")
def workflow() -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    return data


def steps(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s.get("name", s.get("uses", "")): s for s in workflow["jobs"]["gpu"]["steps"]}


def test_runs_on_a_self_hosted_gpu_runner_on_push(workflow: dict[Any, Any]) -> None:
    # YAML 1.1 reads the bare key `on` as True; GitHub and Gitea read it as "on".
    triggers = workflow.get("on", workflow.get(True)) or {}
    assert "push" in triggers and "workflow_dispatch" in triggers
    assert workflow["jobs"]["gpu"]["runs-on"] == ["self-hosted", "gpu"]


def test_deploys_verifies_and_benchmarks_in_that_order(workflow: dict[str, Any]) -> None:
    names = list(steps(workflow))
    order = ["Deploy", "Verify", "Decode benchmark", "Every model 100% GPU"]
    assert [n for n in names if n in order] == order
    by_name = steps(workflow)
    assert "pyinfra -y" in by_name["Deploy"]["run"] and "deploy.py" in by_name["Deploy"]["run"]
    assert "tests/verify" in by_name["Verify"]["run"]
    assert "--junitxml=build/gpu/verify.xml" in by_name["Verify"]["run"]
    assert "-m bench.decode" in by_name["Decode benchmark"]["run"]
    assert "--out build/gpu/decode" in by_name["Decode benchmark"]["run"]


def test_fails_on_a_model_not_fully_on_the_gpu(workflow: dict[str, Any]) -> None:
    gate = steps(workflow)["Every model 100% GPU"]["run"]
    assert '"100% GPU"' in gate and "sys.exit(1 if bad else 0)" in gate
    # The inline script compiles (the heredoc body, as the shell passes it to python).
    body = gate.split("<<'PY'\n", 1)[1].rsplit("PY\n", 1)[0]
    compile(body, "gate", "exec")


def test_uploads_the_verify_report_and_the_benchmark_even_after_a_failure(
    workflow: dict[str, Any],
) -> None:
    upload = next(
        s for s in workflow["jobs"]["gpu"]["steps"] if "upload-artifact" in s.get("uses", "")
    )
    assert "!cancelled()" in upload["if"]
    paths = upload["with"]["path"].split()
    assert paths == ["build/gpu/verify.xml", "build/gpu/decode.json", "build/gpu/decode.png"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash to check the run scripts")
def test_every_run_script_is_valid_bash(workflow: dict[str, Any]) -> None:
    for step in workflow["jobs"]["gpu"]["steps"]:
        if "run" in step:
            script = re.sub(r"\$\{\{.*?\}\}", "x", step["run"])
            proc = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
            assert proc.returncode == 0, f"{step.get('name')}: {proc.stderr}"


MOLECULE = WORKFLOW.parents[2] / "molecule"


@pytest.mark.parametrize("scenario", ["native"])
def test_molecule_scenario_delegates_the_instance_lifecycle_to_the_testbed(scenario: str) -> None:
    config = yaml.safe_load((MOLECULE / scenario / "molecule.yml").read_text())
    assert config["driver"]["name"] == "default" and config["driver"]["options"]["managed"]
    playbooks = config["provisioner"]["playbooks"]
    for step, command in (("create", "testbed create"), ("destroy", "testbed destroy")):
        (play,) = yaml.safe_load((MOLECULE / scenario / playbooks[step]).read_text())
        assert (
            f"-m tests.integration.{command} {{{{ item.name }}}}"
            in play["tasks"][0]["ansible.builtin.command"]["cmd"]
        )
    (converge,) = yaml.safe_load((MOLECULE / scenario / playbooks["converge"]).read_text())
    deploy = converge["tasks"][-1]
    assert "-m pyinfra -y --json" in deploy["ansible.builtin.command"]["cmd"]
    assert "totals.success > 0" in deploy["changed_when"]  # what Molecule's idempotence reads
    (verify,) = yaml.safe_load((MOLECULE / scenario / playbooks["verify"]).read_text())
    assert (
        "-m pytest tests/verify --hosts=docker://"
        in verify["tasks"][0]["ansible.builtin.command"]["cmd"]
    )
    assert config["scenario"]["test_sequence"][-3:] == ["idempotence", "verify", "destroy"]
