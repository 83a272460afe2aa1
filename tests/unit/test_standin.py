"""Tests of the Ollama TEST STAND-IN (tests/standin), the fixture the integration tier installs.

These check the fixture itself: that it speaks Ollama's formats and reports raw numbers
consistent with its knobs. Each server runs as a subprocess on 127.0.0.1 (a free port, a
temporary OLLAMA_MODELS); all traffic is loopback and every wait is bounded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sizing.processor import processor_string
from tests.standin import ollama_standin as standin
from tests.standin.build_archive import build_archive, render_standin

VERSION = "0.32.7"
SMALL = "qwen2.5-coder:1.5b"
SMALL_MANIFEST = ("registry.ollama.ai", "library", "qwen2.5-coder", "1.5b")
# qwen2.5-coder:1.5b per FACTS.md section 4: 28 layers x 2 KV heads x (K 128 + V 128).
SMALL_KV_ELEMENTS_PER_TOKEN = 28 * 2 * (128 + 128)
HTTP_TIMEOUT = 20
START_TIMEOUT = 15
PS_HEADER = ["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(home: Path, port: int) -> dict[str, str]:
    """A clean environment: no inherited OLLAMA_* or CUDA variables, no proxies."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "OLLAMA_HOST": f"127.0.0.1:{port}",
        "OLLAMA_MODELS": str(home / "models"),
        "OLLAMA_STANDIN_PULL_DELAY": "0",
    }


@dataclass
class Standin:
    """A running stand-in server and ways to talk to it."""

    binary: Path
    env: dict[str, str]
    models: Path
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def base(self) -> str:
        return "http://" + self.env["OLLAMA_HOST"]

    def _open(self, method: str, path: str, body: Any) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        return opener.open(request, timeout=HTTP_TIMEOUT)

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any, Any]:
        """(status, decoded JSON or text, headers)."""
        try:
            with self._open(method, path, body) as response:
                raw, status, headers = response.read(), response.status, response.headers
        except urllib.error.HTTPError as err:
            raw, status, headers = err.read(), err.code, err.headers
        try:
            return status, json.loads(raw), headers
        except ValueError:
            return status, raw.decode(), headers

    def stream(self, path: str, body: Any) -> list[dict[str, Any]]:
        with self._open("POST", path, body) as response:
            assert response.headers["Content-Type"] == "application/x-ndjson"
            return [json.loads(line) for line in response if line.strip()]

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_cli(self.binary, self.env, *args, stdin=stdin)

    def load(self, model: str, **extra: Any) -> dict[str, Any]:
        status, body, _ = self.api(
            "POST", "/api/generate", {"model": model, "stream": False, **extra}
        )
        assert status == 200, body
        return body

    def running(self) -> list[dict[str, Any]]:
        status, body, _ = self.api("GET", "/api/ps")
        assert status == 200
        return body["models"]


def run_cli(
    binary: Path, env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(binary), *args],
        env=env,
        input=stdin or "",
        capture_output=True,
        text=True,
        timeout=HTTP_TIMEOUT,
    )


@pytest.fixture
def binary(tmp_path: Path) -> Path:
    """bin/ollama as the archive installs it (version filled in)."""
    path = tmp_path / "bin" / "ollama"
    path.parent.mkdir()
    path.write_bytes(render_standin(VERSION))
    path.chmod(0o755)
    return path


@pytest.fixture
def start(tmp_path: Path, binary: Path) -> Iterator[Callable[..., Standin]]:
    """Start `ollama serve` with the given extra environment; always stopped afterwards."""
    started: list[subprocess.Popen[bytes]] = []

    def _start(**extra_env: str) -> Standin:
        home = tmp_path / f"home{len(started)}"
        home.mkdir()
        env = {**base_env(home, free_port()), **extra_env}
        log = home / "serve.log"
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                [sys.executable, str(binary), "serve"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
            )
        started.append(process)
        server = Standin(binary, env, home / "models", process, log)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if server.api("GET", "/api/version")[0] == 200:
                    return server
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"stand-in did not start:\n{log.read_text()}")
            time.sleep(0.05)

    yield _start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def table(text: str) -> list[dict[str, str]]:
    """Rows of an `ollama ps`/`list` table, cut at the header's column positions."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = lines[0]
    names = header.split()
    starts = [header.index(name) for name in names]
    ends = starts[1:] + [None]
    return [
        {name: line[s:e].strip() for name, s, e in zip(names, starts, ends, strict=True)}
        for line in lines[1:]
    ]


def manifest_path(models: Path) -> Path:
    return models.joinpath("manifests", *SMALL_MANIFEST)


# -- version, identity --------------------------------------------------------------------


def test_version_api_cli_and_standin_headers(start: Callable[..., Standin]) -> None:
    server = start()
    status, body, headers = server.api("GET", "/api/version")
    assert (status, body) == (200, {"version": VERSION})
    assert headers["X-Ollama-Standin"] == "1"
    assert "not Ollama" in headers["Server"]
    assert server.api("GET", "/")[:2] == (200, "Ollama is running")
    result = server.cli("--version")
    assert (result.returncode, result.stdout) == (0, f"ollama version is {VERSION}\n")
    assert server.cli("-v").stdout == result.stdout


def test_version_without_server_warns_like_ollama(binary: Path, tmp_path: Path) -> None:
    result = run_cli(binary, base_env(tmp_path, free_port()), "--version")
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "Warning: could not connect to a running Ollama instance",
        f"Warning: client version is {VERSION}",
    ]


def test_help_says_it_is_a_stand_in(binary: Path, tmp_path: Path) -> None:
    result = run_cli(binary, base_env(tmp_path, free_port()), "--help")
    assert result.returncode == 0
    assert "test stand-in" in result.stdout and "not Ollama" in result.stdout


def test_client_command_without_server_fails(binary: Path, tmp_path: Path) -> None:
    result = run_cli(binary, base_env(tmp_path, free_port()), "ps")
    assert result.returncode == 1
    assert "could not connect to ollama server" in result.stderr


# -- pull -----------------------------------------------------------------------------------


def test_pull_streams_progress_and_lists_the_model(start: Callable[..., Standin]) -> None:
    server = start()
    events = server.stream("/api/pull", {"model": SMALL})
    statuses = [event["status"] for event in events]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    layer_events = [e for e in events if "digest" in e]
    assert layer_events and all(e["status"] == f"pulling {e['digest'][7:19]}" for e in layer_events)

    manifest = json.loads(manifest_path(server.models).read_text())
    assert manifest["config"]["digest"].startswith("sha256:")
    assert manifest["layers"]
    blobs = list((server.models / "blobs").iterdir())
    assert blobs and all(blob.stat().st_size < 10_000 for blob in blobs)

    status, tags, _ = server.api("GET", "/api/tags")
    assert status == 200
    (entry,) = tags["models"]
    assert entry["name"] == entry["model"] == SMALL
    assert entry["size"] == standin.CATALOG[SMALL].size
    assert entry["details"]["family"] == "qwen2"
    listed = table(server.cli("list").stdout)
    assert [(r["NAME"], r["ID"], r["SIZE"]) for r in listed] == [
        (SMALL, entry["digest"][:12], "986 MB")
    ]


def test_pull_without_tag_means_latest(start: Callable[..., Standin]) -> None:
    server = start()
    status, body, _ = server.api("POST", "/api/pull", {"name": "qwen2.5-coder", "stream": False})
    assert (status, body) == (200, {"status": "success"})
    names = [m["name"] for m in server.api("GET", "/api/tags")[1]["models"]]
    assert names == ["qwen2.5-coder:latest"]


def test_pull_of_unknown_model_fails(start: Callable[..., Standin]) -> None:
    server = start()
    status, body, _ = server.api("POST", "/api/pull", {"model": "nosuch:1b", "stream": False})
    assert (status, body) == (500, {"error": "pull model manifest: file does not exist"})
    events = server.stream("/api/pull", {"model": "nosuch:1b"})
    assert events[-1] == {"error": "pull model manifest: file does not exist"}
    result = server.cli("pull", "nosuch:1b")
    assert result.returncode == 1
    assert "Error: pull model manifest: file does not exist" in result.stderr


def test_interrupted_pull_leaves_no_manifest_and_resumes(start: Callable[..., Standin]) -> None:
    server = start(OLLAMA_STANDIN_FAIL_PULL_ONCE="1")
    first = server.stream("/api/pull", {"model": SMALL})
    assert "connection reset" in first[-1]["error"]
    assert not manifest_path(server.models).exists()
    assert any(p.name.endswith("-partial") for p in (server.models / "blobs").iterdir())
    assert server.api("GET", "/api/tags")[1] == {"models": []}

    second = server.stream("/api/pull", {"model": SMALL})
    assert second[-1] == {"status": "success"}
    resumed = next(e for e in second if "digest" in e)  # the model layer comes first
    assert resumed["total"] > 900_000_000
    assert resumed["completed"] >= resumed["total"] // 2
    assert manifest_path(server.models).exists()
    assert not any("partial" in p.name for p in (server.models / "blobs").iterdir())


def test_interrupted_pull_through_the_cli(start: Callable[..., Standin]) -> None:
    server = start(OLLAMA_STANDIN_FAIL_PULL_ONCE="1")
    failed = server.cli("pull", SMALL)
    assert failed.returncode == 1 and "connection reset" in failed.stderr
    retried = server.cli("pull", SMALL)
    assert retried.returncode == 0, retried.stderr
    assert retried.stderr.splitlines()[-1] == "success"


# -- loading: size, size_vram, PROCESSOR -------------------------------------------------


@pytest.mark.parametrize(
    ("vram", "placement"),
    [("0", "cpu"), ("1TB", "gpu"), ("500000000", "split")],
)
def test_vram_knob_sets_size_vram(start: Callable[..., Standin], vram: str, placement: str) -> None:
    server = start(OLLAMA_STANDIN_VRAM_BYTES=vram)
    server.api("POST", "/api/pull", {"model": SMALL, "stream": False})
    loaded = server.load(SMALL)
    assert (loaded["done"], loaded["done_reason"]) == (True, "load")

    (model,) = server.running()
    size, size_vram = model["size"], model["size_vram"]
    assert model["name"] == SMALL and model["digest"]
    if placement == "cpu":
        assert size_vram == 0
    elif placement == "gpu":
        assert size_vram == size > 0
    else:
        assert 0 < size_vram < size

    result = server.cli("ps")
    assert result.returncode == 0
    assert result.stdout.splitlines()[0].split() == PS_HEADER
    (row,) = table(result.stdout)
    assert row["PROCESSOR"] == processor_string(size, size_vram)  # the project's formula
    assert row["NAME"] == SMALL and row["ID"] == model["digest"][:12]
    assert row["CONTEXT"] == str(model["context_length"])
    assert row["UNTIL"] == "4 minutes from now"


def test_loaded_size_is_weights_plus_kv_cache(start: Callable[..., Standin]) -> None:
    server = start(OLLAMA_STANDIN_VRAM_BYTES="1TB")
    server.api("POST", "/api/pull", {"model": SMALL, "stream": False})
    weights = json.loads(manifest_path(server.models).read_text())["layers"][0]["size"]
    server.load(SMALL, options={"num_ctx": 4096})
    (model,) = server.running()
    assert model["context_length"] == 4096
    assert model["size"] == weights + 4096 * SMALL_KV_ELEMENTS_PER_TOKEN * 2  # f16: 2 bytes


def test_context_length_and_kv_cache_type_from_environment(
    start: Callable[..., Standin],
) -> None:
    server = start(
        OLLAMA_STANDIN_VRAM_BYTES="1TB",
        OLLAMA_CONTEXT_LENGTH="8192",
        OLLAMA_KV_CACHE_TYPE="q8_0",
        OLLAMA_NUM_PARALLEL="2",
    )
    server.api("POST", "/api/pull", {"model": SMALL, "stream": False})
    weights = json.loads(manifest_path(server.models).read_text())["layers"][0]["size"]
    server.load(SMALL)
    (model,) = server.running()
    assert model["context_length"] == 8192
    # The cache holds num_ctx x parallel tokens; q8_0 stores 34 bytes per 32 elements.
    kv = 8192 * 2 * SMALL_KV_ELEMENTS_PER_TOKEN * 34 // 32
    assert model["size"] == weights + kv


def test_sliding_window_layers_keep_window_plus_batch(start: Callable[..., Standin]) -> None:
    server = start(OLLAMA_STANDIN_VRAM_BYTES="1TB")
    server.api("POST", "/api/pull", {"model": "gemma3:4b", "stream": False})
    manifest = server.models.joinpath("manifests", "registry.ollama.ai", "library", "gemma3", "4b")
    weights = json.loads(manifest.read_text())["layers"][0]["size"]
    server.load("gemma3:4b", options={"num_ctx": 8192})
    (model,) = server.running()
    # gemma3:4b: 34 layers, every 6th global (5), 29 sliding with window 1024; batch 1024
    # over 4096 tokens (fs/ggml/ggml.go GraphSize); 4 KV heads x (256 + 256) x 2 bytes.
    tokens = 5 * 8192 + 29 * (1024 + 1024)
    assert model["size"] == weights + tokens * 4 * 512 * 2


def test_second_model_gets_only_the_vram_left(start: Callable[..., Standin]) -> None:
    server = start(OLLAMA_STANDIN_VRAM_BYTES="5.5GB")
    for name in (SMALL, "qwen2.5-coder:7b"):
        server.api("POST", "/api/pull", {"model": name, "stream": False})
        server.load(name, options={"num_ctx": 4096})
    models = {m["name"]: m for m in server.running()}
    small, big = models[SMALL], models["qwen2.5-coder:7b"]
    assert small["size_vram"] == small["size"]
    assert big["size_vram"] == 5_500_000_000 - small["size_vram"] < big["size"]


# -- create, show ----------------------------------------------------------------------------


def test_create_with_num_ctx_shows_in_parameters_and_loaded_context(
    start: Callable[..., Standin],
) -> None:
    server = start(OLLAMA_STANDIN_VRAM_BYTES="1TB")
    request = {"model": "coder-8k", "from": SMALL, "parameters": {"num_ctx": 8192}, "stream": False}
    status, body, _ = server.api("POST", "/api/create", request)  # pulls the missing base
    assert (status, body) == (200, {"status": "success"})

    status, info, _ = server.api("POST", "/api/show", {"model": "coder-8k"})
    assert status == 200
    assert re.search(r"^num_ctx +8192$", info["parameters"], re.M)
    assert info["details"]["family"] == "qwen2"
    assert {
        "qwen2.block_count": 28,
        "qwen2.attention.head_count": 12,
        "qwen2.attention.head_count_kv": 2,
        "qwen2.context_length": 32768,
        "qwen2.embedding_length": 1536,
    }.items() <= info["model_info"].items()

    server.load("coder-8k")
    assert [m["context_length"] for m in server.running()] == [8192]
    server.load("coder-8k", options={"num_ctx": 2048})  # the request wins, as in Ollama
    assert [m["context_length"] for m in server.running()] == [2048]


def test_create_from_modelfile_through_the_cli(
    start: Callable[..., Standin], tmp_path: Path
) -> None:
    server = start()
    modelfile = tmp_path / "Modelfile"
    modelfile.write_text(f"FROM {SMALL}\nPARAMETER num_ctx 16384\n")
    result = server.cli("create", "coder-16k", "-f", str(modelfile))
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[-1] == "success"
    params = server.cli("show", "coder-16k", "--parameters").stdout
    assert params.split() == ["num_ctx", "16384"]
    names = [row["NAME"] for row in table(server.cli("list").stdout)]
    assert sorted(names) == ["coder-16k:latest", SMALL]


def test_show_of_unknown_model_is_404(start: Callable[..., Standin]) -> None:
    status, body, _ = start().api("POST", "/api/show", {"model": "nosuch"})
    assert (status, body) == (404, {"error": "model 'nosuch' not found"})


# -- generate, chat, keep_alive, stop, delete ------------------------------------------------


def test_generate_reports_metrics(start: Callable[..., Standin]) -> None:
    server = start(OLLAMA_STANDIN_VRAM_BYTES="1TB")
    server.api("POST", "/api/pull", {"model": SMALL, "stream": False})
    final = server.load(SMALL, prompt="write hello world")
    assert final["done"] and final["response"]
    for key in (
        "total_duration",
        "load_duration",
        "prompt_eval_count",
        "prompt_eval_duration",
        "eval_count",
        "eval_duration",
    ):
        assert isinstance(final[key], int) and final[key] > 0, key

    events = server.stream("/api/generate", {"model": SMALL, "prompt": "hi"})
    assert all(not e["done"] for e in events[:-1]) and events[-1]["done"]
    assert "".join(e["response"] for e in events) == final["response"]

    chat = server.stream(
        "/api/chat", {"model": SMALL, "messages": [{"role": "user", "content": "hi"}]}
    )
    assert chat[-1]["done"] and chat[-1]["eval_count"] > 0
    assert "".join(e["message"]["content"] for e in chat) == final["response"]


def test_run_cli_prints_an_answer(start: Callable[..., Standin]) -> None:
    server = start()
    result = server.cli("run", SMALL, "say hi")  # pulls first, as `ollama run` does
    assert result.returncode == 0, result.stderr
    assert "stand-in" in result.stdout
    assert [m["name"] for m in server.running()] == [SMALL]


def test_keep_alive_forever_zero_and_stop(start: Callable[..., Standin]) -> None:
    server = start()
    server.api("POST", "/api/pull", {"model": SMALL, "stream": False})
    server.load(SMALL, keep_alive=-1)
    (model,) = server.running()
    assert int(model["expires_at"][:4]) > 2200
    assert table(server.cli("ps").stdout)[0]["UNTIL"] == "Forever"

    assert server.cli("stop", SMALL).returncode == 0
    assert server.running() == []

    server.load(SMALL, prompt="hi", keep_alive=0)  # answer, then unload at once
    assert server.running() == []
    assert server.load(SMALL, keep_alive="10m")["done_reason"] == "load"
    unloaded = server.load(SMALL, keep_alive=0)
    assert unloaded["done_reason"] == "unload" and server.running() == []


def test_delete_removes_model_and_blobs(start: Callable[..., Standin]) -> None:
    server = start()
    server.api("POST", "/api/pull", {"model": SMALL, "stream": False})
    assert server.api("DELETE", "/api/delete", {"model": SMALL})[0] == 200
    assert server.api("GET", "/api/tags")[1] == {"models": []}
    assert list((server.models / "blobs").iterdir()) == []
    assert server.api("DELETE", "/api/delete", {"model": SMALL})[0] == 404


def test_openai_models_list(start: Callable[..., Standin]) -> None:
    server = start()
    server.api("POST", "/api/pull", {"model": SMALL, "stream": False})
    status, body, _ = server.api("GET", "/v1/models")
    assert status == 200 and body["object"] == "list"
    assert [(m["id"], m["owned_by"]) for m in body["data"]] == [(SMALL, "library")]


def test_sigterm_stops_the_server_cleanly(start: Callable[..., Standin]) -> None:
    server = start()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=10) == 0


# -- pure helpers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (4683087332, "4.7 GB"),
        (19_851_349_856, "19 GB"),
        (986061892, "986 MB"),
        (2_000_000_000, "2 GB"),
        (999, "999 B"),
        (1000, "1 KB"),
    ],
)
def test_human_bytes_like_ollama(count: int, text: str) -> None:
    assert standin.human_bytes(count) == text


def test_human_time_like_ollama() -> None:
    now = 10**18
    assert standin.human_time(now + 299 * 10**9, "Never", now) == "4 minutes from now"
    assert standin.human_time(now + standin.FOREVER_NS, "Never", now) == "Forever"
    assert standin.human_time(now - 3 * 3600 * 10**9, "Never", now) == "3 hours ago"
    assert standin.human_time(0, "Never", now) == "Never"


@pytest.mark.parametrize(
    ("size", "size_vram"),
    [(100, 0), (100, 100), (100, 150), (0, 5), (1000, 875), (200, 101), (200, 99)],
)
def test_processor_copy_matches_the_project(size: int, size_vram: int) -> None:
    assert standin.processor_string(size, size_vram) == processor_string(size, size_vram)


@pytest.mark.parametrize(
    ("value", "expected", "client"),
    [
        ("", ("http", "127.0.0.1", 11434), "http://127.0.0.1:11434"),
        ("0.0.0.0", ("http", "0.0.0.0", 11434), "http://127.0.0.1:11434"),
        (":8080", ("http", "", 8080), "http://127.0.0.1:8080"),
        ("10.0.0.5:11434", ("http", "10.0.0.5", 11434), "http://10.0.0.5:11434"),
        ("http://ollama.lan", ("http", "ollama.lan", 80), "http://ollama.lan:80"),
        ("http://0.0.0.0:9000", ("http", "0.0.0.0", 9000), "http://127.0.0.1:9000"),
        ("[::1]:11434", ("http", "::1", 11434), "http://[::1]:11434"),
    ],
)
def test_ollama_host_parsing(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: tuple[str, str, int], client: str
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", value)
    assert standin.ollama_host() == expected
    assert standin.client_base_url() == client


# -- the archive ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["tgz", "tar.zst"])
def test_archive_is_deterministic_and_installs_bin_ollama(tmp_path: Path, fmt: str) -> None:
    if fmt == "tar.zst" and not shutil.which("zstd"):
        pytest.skip("zstd command not installed")
    first = build_archive(VERSION, tmp_path / "a", fmt)
    second = build_archive(VERSION, tmp_path / "b", fmt)
    assert first.name == f"ollama-linux-amd64.{fmt}"
    assert first.read_bytes() == second.read_bytes()

    root = tmp_path / "usr-local"
    root.mkdir()
    if fmt == "tgz":
        with tarfile.open(first, "r:gz") as tar:
            names = tar.getnames()
            mode = tar.getmember("bin/ollama").mode
            tar.extractall(root, filter="data")
    else:
        tar_bytes = subprocess.run(
            ["zstd", "-dc", str(first)], capture_output=True, check=True, timeout=60
        ).stdout
        listing = subprocess.run(
            ["tar", "-tvf", "-"], input=tar_bytes, capture_output=True, check=True, timeout=60
        ).stdout.decode()
        names = [line.split()[-1] for line in listing.splitlines()]
        mode = 0o755 if listing.splitlines()[0].startswith("-rwxr-xr-x") else 0
        subprocess.run(
            ["tar", "-xf", "-", "-C", str(root)], input=tar_bytes, check=True, timeout=60
        )
    assert names == ["bin/ollama", "lib/ollama/STANDIN-README.txt", "lib/ollama/libggml-base.so"]
    assert mode == 0o755
    assert "NOT Ollama" in (root / "lib/ollama/STANDIN-README.txt").read_text()
    installed = root / "bin" / "ollama"
    assert installed.read_text().startswith("#!/usr/bin/python3\n")
    assert f'STANDIN_VERSION = "{VERSION}"' in installed.read_text()
    result = run_cli(installed, base_env(tmp_path, free_port()), "-v")
    assert result.stdout.splitlines()[-1] == f"Warning: client version is {VERSION}"


def test_archive_rejects_bad_version_and_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="release version"):
        build_archive("latest", tmp_path)
    with pytest.raises(ValueError, match="format"):
        build_archive(VERSION, tmp_path, "zip")
