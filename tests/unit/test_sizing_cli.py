"""`python -m sizing` as a script sees it: the DESIGN.md interface, JSON output, error paths."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sizing", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_estimate_explicit_numbers_json() -> None:
    out = run(
        "estimate",
        "--weights-bytes",
        "4.7GB",
        "--layers",
        "28",
        "--kv-heads",
        "4",
        "--head-dim",
        "128",
        "--ctx",
        "65536",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["weights_bytes"] == 4_700_000_000
    assert data["kv_bytes"] == 3_758_096_384
    assert data["total_bytes"] == data["weights_bytes"] + data["kv_bytes"] + data["compute_bytes"]
    assert "processor" not in data


@pytest.mark.parametrize(("kv", "processor"), [("f16", "22%/78% CPU/GPU"), ("q8_0", "100% GPU")])
def test_estimate_predicts_processor_with_free_vram(kv: str, processor: str) -> None:
    out = run(
        "estimate",
        "--weights-bytes",
        "4700000000",
        "--layers",
        "28",
        "--kv-heads",
        "4",
        "--head-dim",
        "128",
        "--embedding-length",
        "3584",
        "--vocab-size",
        "152064",
        "--ctx",
        "65536",
        "--kv-cache",
        kv,
        "--vram-free",
        "8GiB",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["processor"] == processor


def test_estimate_by_catalog_tag_and_sliding_window_flags() -> None:
    by_tag = json.loads(run("estimate", "--model", "gemma3:4b", "--ctx", "8192", "--json").stdout)
    explicit = run(
        "estimate",
        "--weights-bytes",
        "3.3GB",
        "--layers",
        "34",
        "--kv-heads",
        "4",
        "--head-dim",
        "256",
        "--sliding-window",
        "1024",
        "--sliding-layers",
        "29",
        "--ctx",
        "8192",
        "--json",
    )
    assert json.loads(explicit.stdout)["kv_bytes"] == by_tag["kv_bytes"]


def test_plan_default_and_plan_subcommand_agree() -> None:
    a = run("--vram", "8GiB", "--ctx", "65536", "--model", "llama3.1:8b", "--json")
    b = run("plan", "--vram", "8GiB", "--ctx", "65536", "--model", "llama3.1:8b", "--json")
    assert a.returncode == b.returncode == 0
    assert json.loads(a.stdout) == json.loads(b.stdout)
    model = json.loads(a.stdout)["models"][0]
    assert (model["kv_cache"], model["num_ctx"], model["processor"]) == ("q4_0", 32768, "100% GPU")
    assert model["changes"]


def test_plan_table_lists_the_whole_catalog() -> None:
    out = run("--vram", "8GiB", "--ctx", "65536", "--gpu", "RTX 3070")
    assert out.returncode == 0, out.stderr
    assert "AS ASKED" in out.stdout and "TO STAY 100% GPU" in out.stdout
    for tag in ("qwen2.5-coder:7b", "llama3.1:8b", "gemma3:27b", "deepseek-coder-v2:16b"):
        assert tag in out.stdout
    assert "kv cache f16 -> q4_0" in out.stdout


def test_plan_json_marks_unknown_models() -> None:
    out = run("--vram", "8GiB", "--ctx", "8192", "--model", "no-such:1b", "--json")
    assert out.returncode == 0
    data = json.loads(out.stdout)
    assert data["unpredicted"] == ["no-such:1b"]
    assert data["models"][0]["note"] == "unknown to the catalog; size not predicted"


def test_pinned_plan_keeps_settings() -> None:
    out = run("--vram", "8GiB", "--ctx", "65536", "--model", "llama3.1:8b", "--pinned", "--json")
    model = json.loads(out.stdout)["models"][0]
    assert (model["kv_cache"], model["on_gpu"], model["changes"]) == ("f16", False, [])


@pytest.mark.parametrize(
    "args",
    [
        ("--vram", "8XB", "--ctx", "65536"),
        ("--vram", "8GiB", "--ctx", "lots"),
        ("--vram", "8GiB", "--ctx", "65536", "--kv-cache", "q5_0"),
        ("--ctx", "65536"),  # no VRAM given
        ("--vram", "8GiB", "--vram-free", "9GiB", "--ctx", "8192"),
        ("estimate", "--ctx", "8192"),  # neither --model nor numbers
        ("estimate", "--model", "no-such:1b", "--ctx", "8192"),
        ("estimate", "--model", "gemma3:4b", "--layers", "3", "--ctx", "8192"),
        (
            "estimate",
            "--weights-bytes",
            "1GB",
            "--layers",
            "2",
            "--kv-heads",
            "1",
            "--head-dim",
            "64",
            "--sliding-window",
            "512",
            "--ctx",
            "8192",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(args: tuple[str, ...]) -> None:
    out = run(*args)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "error:" in out.stderr
    assert out.stdout == ""
