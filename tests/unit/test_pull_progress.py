"""The awk filter that shows /api/pull progress and decides whether the pull succeeded."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from roles.models.operations import PULL_PROGRESS_AWK

pytestmark = pytest.mark.skipif(shutil.which("awk") is None, reason="no awk on this machine")

DIGEST = "sha256:6a0746a1ec1aef3e7ec53868f220ff6e389f6f8ef87a01d77c96807de94ca2aa"


def stream(*objects: dict) -> str:
    # Go's encoder writes no spaces; the filter must also take Python's ", " / ": " form.
    return "\n".join(json.dumps(o, separators=(",", ":")) for o in objects) + "\n"


def run(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["awk", PULL_PROGRESS_AWK], input=text, capture_output=True, text=True)


def layer(completed: int, total: int = 1000) -> dict:
    return {
        "status": "pulling 6a0746a1ec1a",
        "digest": DIGEST,
        "total": total,
        "completed": completed,
    }


def test_a_successful_pull_prints_statuses_and_every_tenth_and_exits_0() -> None:
    result = run(
        stream(
            {"status": "pulling manifest"},
            *(layer(c) for c in range(0, 1001, 25)),
            {"status": "verifying sha256 digest"},
            {"status": "writing manifest"},
            {"status": "success"},
        )
    )
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "pulling manifest"
    progress = [line for line in lines if line.startswith("pulling 6a07")]
    assert progress == [f"pulling 6a0746a1ec1a {p}%" for p in range(0, 101, 10)]
    assert lines[-3:] == ["verifying sha256 digest", "writing manifest", "success"]


def test_an_error_line_fails_even_with_http_200() -> None:
    result = run(
        stream(
            {"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}
        )
    )
    assert result.returncode == 1
    assert "error: pull model manifest: file does not exist" in result.stdout


def test_a_stream_cut_before_success_fails() -> None:
    assert run(stream({"status": "pulling manifest"}, layer(500))).returncode == 1


def test_spaces_after_colons_are_read_too() -> None:
    text = json.dumps({"status": "pulling 6a0746a1ec1a", "total": 10, "completed": 5}) + "\n"
    text += json.dumps({"status": "success"}) + "\n"
    result = run(text)
    assert result.returncode == 0 and "pulling 6a0746a1ec1a 50%" in result.stdout
