"""Tier 2, GPU paths: preflight reading nvidia-smi, the sizing planner's changes reaching the
server, and the verify suite agreeing with the planner.

The container has no GPU. A test fixture stands in for nvidia-smi: a script that prints a
recorded output chosen by the test (never installed by the deploy); the stand-in Ollama gets
the same VRAM through its fixture knob.
"""

from __future__ import annotations

from pathlib import Path

from tests.integration import testbed
from tests.integration.deployer import (
    fake_nvidia_smi,
    run_deploy,
    run_verify,
    set_standin_vram,
    standin_data,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "outputs" / "nvidia-smi"
# `nvidia-smi --query-gpu=index,name,memory.total,memory.used,driver_version,pci.bus_id,uuid
#  --format=csv,noheader,nounits` on an RTX 3070 (constructed from that CSV format).
RTX3070 = "0, NVIDIA GeForce RTX 3070, 8192, 410, 550.54.14, 00000000:01:00.0, GPU-0a1b2c3d\n"


def gpu_data(archives: dict, **overrides: object) -> dict:
    data = standin_data(
        archives["0.32.7"], gpu="nvidia", ollama_models=["llama3.1:8b"], ollama_model_variants={}
    )
    data.update(overrides)
    return data


def test_driver_mismatch_stops_with_the_fix(container: str, archives: dict) -> None:
    fake_nvidia_smi(container, (FIXTURES / "fail-version-mismatch-nvml-version.txt").read_text())
    run = run_deploy(container, gpu_data(archives), "--dry")
    assert run.returncode != 0
    assert "nvidia-smi" in run.output and "reboot" in run.output
    assert "Traceback" not in run.output


def test_preflight_shows_the_plan_and_the_changes(container: str, archives: dict) -> None:
    fake_nvidia_smi(container, RTX3070)
    run = run_deploy(container, gpu_data(archives), "--dry")
    assert run.returncode == 0, run.output[-4000:]
    assert "GPU 0: NVIDIA GeForce RTX 3070, 8192 MiB, driver 550.54.14" in run.output
    assert "model llama3.1:8b:" in run.output and "tok/s" in run.output
    assert "change: llama3.1:8b: kv cache q8_0 -> q4_0" in run.output


def test_planned_settings_reach_the_server_and_verify_passes_on_gpu(
    container: str, archives: dict
) -> None:
    fake_nvidia_smi(container, RTX3070)
    run = run_deploy(container, gpu_data(archives))
    assert run.returncode == 0, run.output[-4000:]
    dropin = testbed.exec_in(
        container, "cat", "/etc/systemd/system/ollama.service.d/ollama-rig.conf"
    ).stdout
    assert 'OLLAMA_KV_CACHE_TYPE=q4_0"' in dropin and 'OLLAMA_CONTEXT_LENGTH=32768"' in dropin
    assert run_deploy(container, gpu_data(archives)).totals["success"] == 0
    set_standin_vram(container, 8192 * 1024**2)
    try:
        result = run_verify(container)
    finally:
        set_standin_vram(container, None)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "PASSED tests/verify/test_models.py::test_model_loads_fully_on_gpu" in result.stdout


def test_pinned_settings_that_do_not_fit_stop_before_any_change(
    container: str, archives: dict
) -> None:
    fake_nvidia_smi(container, RTX3070)
    data = gpu_data(archives, ollama_pinned=True, ollama_models=["qwen2.5-coder:14b"])
    run = run_deploy(container, data)
    assert run.returncode != 0
    assert "not 100% GPU: qwen2.5-coder:14b" in run.output and "settings are pinned" in run.output
