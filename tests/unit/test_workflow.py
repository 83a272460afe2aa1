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


def test_converges_verifies_and_benchmarks_in_that_order(workflow: dict[str, Any]) -> None:
    names = list(steps(workflow))
    order = ["Converge", "Idempotence", "Verify", "Decode benchmark", "Every model 100% GPU"]
    assert [n for n in names if n in order] == order
    by_name = steps(workflow)
    # Molecule's gpu-host scenario (molecule/gpu-host), one step per stage of its cycle.
    for stage in ("Converge", "Idempotence", "Verify"):
        assert by_name[stage]["run"].split("#")[0].split() == [
            "molecule",
            stage.lower(),
            "-s",
            "gpu-host",
        ]
    assert "-m bench.decode" in by_name["Decode benchmark"]["run"]
    assert "--out build/gpu/decode" in by_name["Decode benchmark"]["run"]


def test_verify_and_benchmark_run_when_only_idempotence_failed(workflow: dict[str, Any]) -> None:
    by_name = steps(workflow)
    for name in ("Verify", "Decode benchmark"):
        assert by_name[name]["if"] == "${{ !cancelled() && steps.converge.outcome == 'success' }}"
    assert by_name["Converge"]["id"] == "converge"
    assert by_name["Every model 100% GPU"]["if"] == (
        "${{ !cancelled() && steps.bench.outcome == 'success' }}"
    )


def test_molecule_in_a_virtualenv_of_its_own_on_path(workflow: dict[str, Any]) -> None:
    setup = steps(workflow)["Virtualenvs"]["run"]
    assert "python3 -m venv build/molecule-venv" in setup
    assert (
        "build/molecule-venv/bin/pip install" in setup and "-r requirements-molecule.txt" in setup
    )
    assert 'echo "$PWD/build/molecule-venv/bin" >> "$GITHUB_PATH"' in setup
    assert "requirements-molecule.txt" not in setup.split("build/molecule-venv", 1)[0]
    assert "mkdir -p build/gpu" in setup


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
