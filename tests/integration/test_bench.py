"""Tier 2: bench.decode's live part against the stand-in in a deployed testbed container.

The benchmark runs here with `--hosts docker://ID`: testinfra's docker backend makes every
HTTP call with the container's own curl (`docker exec ... curl`), so the traffic stays on the
container's loopback (it has no network) and the same code path serves `ssh://` GPU boxes.
Running the module inside the container instead would need the project and PyYAML there.
The stand-in's durations are simulated from SIM_GPU_BANDWIDTH (900 GB/s) and the model's
weights, so the ratio to a 936 GB/s RTX 3090 ceiling is known in advance: 900/936.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.deployer import (
    MODEL,
    ROOT,
    VARIANT,
    run_deploy,
    set_standin_vram,
    standin_data,
)

SIM_GPU_BANDWIDTH_GB_S = 900  # tests/standin/ollama_standin.py
RTX_3090_GB_S = 936  # sizing/bandwidth.py, FACTS.md section 4


@pytest.fixture(scope="module")
def deployed(container: str, archives: dict) -> str:
    run = run_deploy(container, standin_data(archives["0.32.7"]))
    assert run.returncode == 0, run.output[-5000:]
    return container


def bench(*args: str, host: str = "") -> subprocess.CompletedProcess[str]:
    """`python -m bench.decode`, against the container host when given (testinfra's docker://)."""
    command = [sys.executable, "-m", "bench.decode", *args]
    command += [f"--hosts=docker://{host}"] if host else []
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_decode_bench_on_the_gpu_matches_the_simulated_bandwidth(
    deployed: str, tmp_path: Path
) -> None:
    set_standin_vram(deployed, 80 * 1024**3)
    try:
        result = bench(
            "--gpu=NVIDIA GeForce RTX 3090",
            "--runs=3",
            "--num-predict=16",
            f"--out={tmp_path / 'native'}",
            host=deployed,
        )
    finally:
        set_standin_vram(deployed, None)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads((tmp_path / "native.json").read_text())
    (host,) = data["results"]
    assert host["topology"] == "native" and host["bandwidth_gb_s"] == RTX_3090_GB_S
    by_model = {m["model"]: m for m in host["models"]}
    assert set(by_model) == {MODEL, f"{VARIANT}:latest"}
    for row in by_model.values():
        assert row["runs"] == 3 and row["processor"] == "100% GPU", row
        assert row["bytes_source"] == "/api/tags size"
        assert row["ratio"] == pytest.approx(SIM_GPU_BANDWIDTH_GB_S / RTX_3090_GB_S, rel=0.01)
        assert row["prompt_tok_s"] > row["decode_tok_s"] > 0
    assert f"{MODEL}" in result.stdout and "100% GPU" in result.stdout
    print(result.stdout)


def test_decode_bench_compares_runs_and_charts_them(deployed: str, tmp_path: Path) -> None:
    """Two runs on the same box (full VRAM, then a split), combined with --results."""
    common = ["--gpu=RTX 3090", "--runs=2", "--num-predict=8", f"--model={MODEL}", "--no-chart"]
    set_standin_vram(deployed, 80 * 1024**3)
    try:
        full = bench(*common, f"--out={tmp_path / 'native'}", host=deployed)
        set_standin_vram(deployed, 2 * 1024**3)
        split = bench(
            *common, "--topology=split-vram", f"--out={tmp_path / 'split'}", host=deployed
        )
    finally:
        set_standin_vram(deployed, None)
    assert full.returncode == 0 and split.returncode == 0, full.stderr + split.stderr
    combined = bench(
        "--results",
        str(tmp_path / "native.json"),
        str(tmp_path / "split.json"),
        f"--out={tmp_path / 'all'}",
    )
    assert combined.returncode == 0, combined.stdout + combined.stderr
    (row,) = json.loads((tmp_path / "all.json").read_text())["overhead"]
    assert row["topology"] == "split-vram" and row["model"] == MODEL
    assert row["overhead_pct"] > 10  # part of the model is on the (simulated) CPU
    assert "overhead vs native" in combined.stdout
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return  # the chart is checked by the unit tests where matplotlib is installed
    assert (tmp_path / "all.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
