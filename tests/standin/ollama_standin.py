#!/usr/bin/python3
"""OLLAMA TEST STAND-IN: a test fixture for ollama-rig, NOT Ollama.

ollama-rig's integration tests (DESIGN.md "Testing tiers", tier 2) cannot download Ollama or
any model, so they install this script as `bin/ollama` (build_archive.py builds an archive
laid out like Ollama's release). It speaks the CLI and HTTP surface of FACTS.md sections 1-3
so that the install, service, model, config and verify flows run end to end. It loads no
model and touches no GPU: what only real hardware can show is tier 3 (live).

It reports raw numbers the way Ollama reports them (size, size_vram, context length,
durations) and never decides a test's verdict; the project's verify suite does. Sizes and
GPU placement are simulated from the catalog below and the knobs. Comments name the upstream
behaviour copied (github.com/ollama/ollama at v0.33.0-rc2, stable v0.32.x).

Fixture knobs: environment of the `ollama serve` process, read at each request.

  OLLAMA_STANDIN_VRAM_BYTES      Free VRAM of the simulated GPU in bytes ("24GiB", "8GB" also
                                 accepted). Default 0 = no GPU. A model is placed wholly in
                                 what other loaded models leave free (size_vram == size),
                                 else the part that fits (a CPU/GPU split), else 0 (CPU).
                                 It is also the "total VRAM" that picks Ollama's default
                                 context (FACTS.md section 3).
  OLLAMA_STANDIN_FAIL_PULL_ONCE  "1": the first pull of each model in this server process
                                 breaks halfway with a "connection reset" error, leaving a
                                 partial blob and no manifest; the next pull resumes.
  OLLAMA_STANDIN_PULL_DELAY      Seconds between pull progress lines (default 0.05).

Ollama variables honoured: OLLAMA_HOST, OLLAMA_MODELS, OLLAMA_CONTEXT_LENGTH,
OLLAMA_KV_CACHE_TYPE, OLLAMA_FLASH_ATTENTION, OLLAMA_NUM_PARALLEL, OLLAMA_KEEP_ALIVE, and
CUDA_VISIBLE_DEVICES=-1 (hides the simulated GPU).

Python 3.11 standard library only: it runs as /usr/bin/python3 in a Debian bookworm image.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

# build_archive.py replaces this placeholder with the release version being imitated.
STANDIN_VERSION = "@VERSION@"
_PLACEHOLDER = "@" + "VERSION@"  # split so the archive build rewrites only the line above

STANDIN_BANNER = "Ollama test stand-in (a test fixture for ollama-rig, not Ollama)"
DEFAULT_PORT = 11434
DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
MIB = 1024**2
GIB = 1024**3
# Ollama keeps a model "forever" with a math.MaxInt64 duration (envconfig.KeepAlive).
FOREVER_NS = 2**63 - 1
CANNED_ANSWER = (
    "This is a canned reply from the Ollama test stand-in, a test fixture: no model ran, "
    "so nothing here says anything about a real GPU."
)
# Made-up bandwidths for the simulated timings only: decode is memory-bandwidth bound
# (FACTS.md section 4), so seconds per token ~ weight bytes / bandwidth.
SIM_GPU_BANDWIDTH = 900e9
SIM_CPU_BANDWIDTH = 60e9


def version() -> str:
    """The Ollama version this stand-in imitates ("0.0.0" when run unbuilt from source)."""
    return "0.0.0" if STANDIN_VERSION == _PLACEHOLDER else STANDIN_VERSION


# --------------------------------------------------------------------------------------------
# Environment: Ollama's variables and the fixture knobs
# --------------------------------------------------------------------------------------------


def env(key: str) -> str:
    """A variable as Ollama's envconfig.Var reads it: trimmed of spaces, then of quotes."""
    return os.environ.get(key, "").strip().strip("\"'")


def env_uint(key: str, default: int) -> int:
    """envconfig.Uint: an unsigned integer, the default when unset or invalid."""
    raw = env(key)
    return int(raw) if raw.isdigit() else default


def go_parse_bool(text: str) -> bool | None:
    """strconv.ParseBool; None where Go would return an error."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return None


_BYTE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_bytes(text: str) -> int:
    """A byte count: "8589934592", "24GiB", "7.5 GB"."""
    match = re.fullmatch(r"\s*(\d+)(\.\d+)?\s*([A-Za-z]*)\s*", text)
    if not match or match.group(3).lower() not in _BYTE_UNITS:
        raise ValueError(f"not a byte count: {text!r}")
    unit = _BYTE_UNITS[match.group(3).lower()]
    # Integers stay exact (a float would round counts above 2**53).
    whole = int(match.group(1)) * unit
    fraction = float("0" + match.group(2)) * unit if match.group(2) else 0.0
    return whole + int(fraction)


def knob_vram_bytes() -> int:
    """OLLAMA_STANDIN_VRAM_BYTES, or 0 where CUDA_VISIBLE_DEVICES=-1 hides the GPU."""
    if env("CUDA_VISIBLE_DEVICES") == "-1":  # FACTS.md section 3: -1 forces CPU
        return 0
    raw = env("OLLAMA_STANDIN_VRAM_BYTES")
    if not raw:
        return 0
    try:
        return parse_bytes(raw)
    except ValueError:
        log_info("invalid OLLAMA_STANDIN_VRAM_BYTES, simulating no GPU", "WARN", value=raw)
        return 0


def knob_fail_pull_once() -> bool:
    return go_parse_bool(env("OLLAMA_STANDIN_FAIL_PULL_ONCE")) is True


def knob_pull_delay() -> float:
    try:
        return max(float(env("OLLAMA_STANDIN_PULL_DELAY") or "0.05"), 0.0)
    except ValueError:
        return 0.05


def num_parallel() -> int:
    # envconfig.NumParallel defaults to 1; the scheduler treats 0 as 1.
    return max(env_uint("OLLAMA_NUM_PARALLEL", 1), 1)


BYTES_PER_KV_ELEMENT = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}  # FACTS.md section 4


def kv_cache_type() -> str:
    """OLLAMA_KV_CACHE_TYPE; quantized caches need flash attention, so FA=0 means f16."""
    kind = env("OLLAMA_KV_CACHE_TYPE").lower() or "f16"
    if kind not in BYTES_PER_KV_ELEMENT:
        return "f16"
    if kind != "f16" and go_parse_bool(env("OLLAMA_FLASH_ATTENTION")) is False:
        return "f16"
    return kind


def default_num_ctx(total_vram: int) -> int:
    """Context when neither request, Modelfile nor OLLAMA_CONTEXT_LENGTH sets one.

    server/routes.go (Serve): total VRAM >= 47 GiB -> 262144, >= 23 GiB -> 32768, else 4096.
    """
    if total_vram >= 47 * GIB:
        return 262144
    if total_vram >= 23 * GIB:
        return 32768
    return 4096


_DURATION_UNITS = {
    "ns": 1,
    "us": 10**3,
    "\u00b5s": 10**3,
    "\u03bcs": 10**3,
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")


def parse_go_duration(text: str) -> int:
    """time.ParseDuration in nanoseconds: "5m", "1h30m", "-1s", "0"."""
    rest, sign = text, 1
    if rest and rest[0] in "+-":
        sign = -1 if rest[0] == "-" else 1
        rest = rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise ValueError(f'time: invalid duration "{text}"')
    total, pos = 0.0, 0
    while pos < len(rest):
        part = _DURATION_PART.match(rest, pos)
        if part is None:
            raise ValueError(f'time: invalid duration "{text}"')
        total += float(part.group(1)) * _DURATION_UNITS[part.group(2)]
        pos = part.end()
    return sign * int(total)


def default_keep_alive_ns() -> int:
    """envconfig.KeepAlive: OLLAMA_KEEP_ALIVE as a duration or seconds; negative = forever."""
    raw = env("OLLAMA_KEEP_ALIVE")
    keep = 5 * 60 * 10**9
    if raw:
        try:
            keep = parse_go_duration(raw)
        except ValueError:
            if re.fullmatch(r"[+-]?\d+", raw):
                keep = int(raw) * 10**9
    return FOREVER_NS if keep < 0 else keep


def keep_alive_ns(value: Any) -> int:
    """api.Duration.UnmarshalJSON: numbers are seconds, strings Go durations; < 0 = forever."""
    if value is None:
        return default_keep_alive_ns()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return FOREVER_NS if value < 0 else int(value * 10**9)
    if isinstance(value, str):
        ns = parse_go_duration(value)
        return FOREVER_NS if ns < 0 else ns
    raise ValueError(f"Unsupported type: '{type(value).__name__}'")


# --------------------------------------------------------------------------------------------
# Logging: the service journal
# --------------------------------------------------------------------------------------------

_log_lock = threading.Lock()


def log_line(text: str) -> None:
    with _log_lock:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def log_info(msg: str, level: str = "INFO", **fields: Any) -> None:
    """A line shaped like Ollama's slog text output (time=... level=INFO msg=...)."""
    stamp = datetime.now().astimezone().isoformat(timespec="milliseconds")
    extra = "".join(
        f" {key}={json.dumps(val) if isinstance(val, str) and ' ' in val else val}"
        for key, val in fields.items()
    )
    log_line(f"time={stamp} level={level} source=standin msg={json.dumps(msg)}{extra}")


# --------------------------------------------------------------------------------------------
# The model catalog: what the stand-in's fake registry offers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogEntry:
    """One library tag with the numbers `ollama list` and `ollama show` report.

    Architecture numbers per FACTS.md section 4 and the project's sizing/catalog.yaml. `size`
    is what `ollama list` shows (the sum of the manifest's layers): exact bytes where known,
    otherwise a value that prints the same. key_length/value_length are only in model_info
    where the real GGUF has them (`explicit_head_dim`); elsewhere they default to
    embedding_length / head_count.
    """

    key: str
    arch: str
    size: int
    parameter_size: str
    parameter_count: int
    block_count: int
    head_count: int
    head_count_kv: int
    head_dim: int
    embedding_length: int
    context_length: int
    capabilities: tuple[str, ...]
    explicit_head_dim: bool = False
    sliding_window: int = 0
    # Gemma 3 makes every 6th layer global and the others sliding-window (its config.json).
    sliding_window_pattern: int = 0
    quantization: str = "Q4_K_M"


_QWEN_CAPS = ("completion", "tools", "insert")
_GEMMA: dict[str, Any] = {
    "explicit_head_dim": True,
    "sliding_window": 1024,
    "sliding_window_pattern": 6,
}

CATALOG: dict[str, CatalogEntry] = {
    entry.key: entry
    for entry in (
        CatalogEntry(
            "qwen2.5-coder:0.5b",
            "qwen2",
            398106112,
            "494.03M",
            494032768,
            24,
            14,
            2,
            64,
            896,
            32768,
            _QWEN_CAPS,
        ),
        CatalogEntry(
            "qwen2.5-coder:1.5b",
            "qwen2",
            986061892,
            "1.5B",
            1543714304,
            28,
            12,
            2,
            128,
            1536,
            32768,
            _QWEN_CAPS,
        ),
        CatalogEntry(
            "qwen2.5-coder:3b",
            "qwen2",
            1929912432,
            "3.1B",
            3085938688,
            36,
            16,
            2,
            128,
            2048,
            32768,
            _QWEN_CAPS,
        ),
        CatalogEntry(
            "qwen2.5-coder:7b",
            "qwen2",
            4683087332,
            "7.6B",
            7615616512,
            28,
            28,
            4,
            128,
            3584,
            32768,
            _QWEN_CAPS,
        ),
        CatalogEntry(
            "qwen2.5-coder:14b",
            "qwen2",
            8988124069,
            "14.8B",
            14770033664,
            48,
            40,
            8,
            128,
            5120,
            32768,
            _QWEN_CAPS,
        ),
        CatalogEntry(
            "qwen2.5-coder:32b",
            "qwen2",
            19851349856,
            "32.8B",
            32763876352,
            64,
            40,
            8,
            128,
            5120,
            32768,
            _QWEN_CAPS,
        ),
        CatalogEntry(
            "phi4-mini:3.8b",
            "phi3",
            2491876774,
            "3.8B",
            3836021856,
            32,
            24,
            8,
            128,
            3072,
            131072,
            ("completion", "tools"),
        ),
        CatalogEntry(
            "deepseek-r1:8b",
            "qwen3",
            5225376047,
            "8.2B",
            8190735360,
            36,
            32,
            8,
            128,
            4096,
            131072,
            ("completion", "tools", "thinking"),
            explicit_head_dim=True,
        ),
        CatalogEntry(
            "llama3.1:8b",
            "llama",
            4920753328,
            "8.0B",
            8030261312,
            32,
            32,
            8,
            128,
            4096,
            131072,
            ("completion", "tools"),
        ),
        CatalogEntry(
            "llama3.2:1b",
            "llama",
            1321098329,
            "1.2B",
            1235814432,
            16,
            32,
            8,
            64,
            2048,
            131072,
            ("completion", "tools"),
        ),
        CatalogEntry(
            "llama3.2:3b",
            "llama",
            2019393189,
            "3.2B",
            3212749888,
            28,
            24,
            8,
            128,
            3072,
            131072,
            ("completion", "tools"),
        ),
        CatalogEntry(
            "mistral:7b",
            "llama",
            4113301824,
            "7.2B",
            7248023552,
            32,
            32,
            8,
            128,
            4096,
            32768,
            ("completion", "tools"),
        ),
        CatalogEntry(
            "starcoder2:3b",
            "starcoder2",
            1708595200,
            "3B",
            3030371328,
            30,
            24,
            2,
            128,
            3072,
            16384,
            ("completion", "insert"),
        ),
        CatalogEntry(
            "gemma3:1b",
            "gemma3",
            815319791,
            "999.89M",
            999885952,
            26,
            4,
            1,
            256,
            1152,
            32768,
            ("completion",),
            **{**_GEMMA, "sliding_window": 512},
        ),
        CatalogEntry(
            "gemma3:4b",
            "gemma3",
            3338801804,
            "4.3B",
            4300079472,
            34,
            8,
            4,
            256,
            2560,
            131072,
            ("completion", "vision"),
            **_GEMMA,
        ),
        CatalogEntry(
            "gemma3:12b",
            "gemma3",
            8149190253,
            "12.2B",
            12187079280,
            48,
            16,
            8,
            256,
            3840,
            131072,
            ("completion", "vision"),
            **_GEMMA,
        ),
        CatalogEntry(
            "gemma3:27b",
            "gemma3",
            17396936941,
            "27.4B",
            27432406640,
            62,
            32,
            16,
            128,
            5376,
            131072,
            ("completion", "vision"),
            **_GEMMA,
        ),
    )
}
# Library tags that name the same model as another tag (same blobs, same ID).
CATALOG_ALIASES = {
    "qwen2.5-coder:latest": "qwen2.5-coder:7b",
    "phi4-mini:latest": "phi4-mini:3.8b",
    "deepseek-r1:latest": "deepseek-r1:8b",
    "llama3.1:latest": "llama3.1:8b",
    "llama3.2:latest": "llama3.2:3b",
    "mistral:latest": "mistral:7b",
    "starcoder2:latest": "starcoder2:3b",
    "gemma3:latest": "gemma3:4b",
}


def catalog_lookup(name: ModelName) -> CatalogEntry | None:
    if name.host != DEFAULT_HOST or name.namespace != DEFAULT_NAMESPACE:
        return None
    key = f"{name.model}:{name.tag}"
    return CATALOG.get(CATALOG_ALIASES.get(key, key))


# --------------------------------------------------------------------------------------------
# Model names: types/model.ParseName
# --------------------------------------------------------------------------------------------

_NAME_PART = re.compile(r"[a-z0-9_][a-z0-9._-]{0,79}")
_HOST_PART = re.compile(r"[a-z0-9_][a-z0-9._:-]{0,349}")


@dataclass(frozen=True)
class ModelName:
    """[host/][namespace/]model[:tag], defaulting to registry.ollama.ai/library/...:latest."""

    host: str
    namespace: str
    model: str
    tag: str

    @classmethod
    def parse(cls, text: str) -> ModelName:
        raw = text.strip().lower().split("@", 1)[0]  # "@sha256:..." pins are ignored here
        for scheme in ("https://", "http://"):
            raw = raw.removeprefix(scheme)
        tag = DEFAULT_TAG
        slash, colon = raw.rfind("/"), raw.rfind(":")
        if colon > slash:
            raw, tag = raw[:colon], raw[colon + 1 :]
        parts = raw.split("/")
        if len(parts) > 3:
            raise ValueError("invalid model name")
        parts = [DEFAULT_HOST, DEFAULT_NAMESPACE][: 3 - len(parts)] + parts
        host, namespace, model = parts
        if not (
            _HOST_PART.fullmatch(host)
            and _NAME_PART.fullmatch(namespace)
            and _NAME_PART.fullmatch(model)
            and _NAME_PART.fullmatch(tag)
        ):
            raise ValueError("invalid model name")
        return cls(host, namespace, model, tag)

    def display(self) -> str:
        """Name.DisplayShortest: what /api/tags, /api/ps and the CLI tables print."""
        if self.host != DEFAULT_HOST:
            return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"
        if self.namespace != DEFAULT_NAMESPACE:
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.model}:{self.tag}"

    def manifest_parts(self) -> tuple[str, str, str, str]:
        return (self.host, self.namespace, self.model, self.tag)


def parse_name_or_400(text: Any) -> ModelName:
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, "model is required")
    try:
        return ModelName.parse(text)
    except ValueError:
        raise ApiError(400, "invalid model name") from None


# --------------------------------------------------------------------------------------------
# Ollama's output formats (format/bytes.go, format/time.go, cmd/cmd.go)
# --------------------------------------------------------------------------------------------


def go_round(value: float) -> int:
    """Go's math.Round: half away from zero (Python's round() goes half to even)."""
    return int(math.floor(abs(value) + 0.5)) * (1 if value >= 0 else -1)


def human_bytes(count: int) -> str:
    """format.HumanBytes: decimal units, an integer from 10 units up ("19.8 GB" -> "19 GB")."""
    units = ((10**12, "TB"), (10**9, "GB"), (10**6, "MB"), (10**3, "KB"))
    limit, unit = next(((lim, name) for lim, name in units if count >= lim), (1, "B"))
    if unit == "B":
        return f"{count} B"
    value = count / limit
    if value >= 10 or value == math.trunc(value):
        return f"{int(value)} {unit}"
    return f"{value:.1f} {unit}"


def human_duration(seconds: float) -> str:
    """format.humanDuration for a non-negative duration."""
    whole = int(seconds)
    if whole < 1:
        return "Less than a second"
    if whole == 1:
        return "1 second"
    if whole < 60:
        return f"{whole} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = go_round(seconds / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def human_time(when_ns: int, zero_value: str, now_ns: int | None = None) -> str:
    """format.HumanTime: "4 minutes from now", "2 hours ago", "Forever" (> 20 years ahead)."""
    if when_ns == 0:
        return zero_value
    delta = ((time.time_ns() if now_ns is None else now_ns) - when_ns) / 1e9
    if math.trunc(delta / 3600 / (24 * 365)) < -20:
        return "Forever"
    if delta < 0:
        return human_duration(-delta) + " from now"
    return human_duration(delta) + " ago"


def go_time(ns: int) -> str:
    """A time as Go's encoding/json writes it: RFC 3339, nanoseconds, the local zone."""
    seconds, fraction = divmod(ns, 10**9)
    moment = datetime.fromtimestamp(seconds).astimezone()
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    sign = "+" if minutes > 0 else "-"
    zone = "Z" if minutes == 0 else f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    frac = f".{fraction:09d}".rstrip("0") if fraction else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + frac + zone


def parse_go_time(text: str) -> int:
    """Nanoseconds since the epoch from a Go JSON time; 0 for Go's zero time."""
    # Trim to microseconds and spell out UTC so that any Python 3 fromisoformat accepts it.
    cleaned = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))
    moment = datetime.fromisoformat(cleaned)
    if moment.year <= 1:
        return 0
    return int(moment.timestamp()) * 10**9 + moment.microsecond * 1000


def render_table(header: list[str] | None, rows: list[list[str]], padding: str = "    ") -> str:
    """olekukonko/tablewriter v0.0.5 as cmd/cmd.go sets it up for `ollama list`/`ps`/`show`.

    No borders, left aligned, SetNoWhiteSpace(true), SetTablePadding("    "): every cell is
    padded to its column's width and followed by the padding, except the header's last cell,
    which gets one space. (tablewriter also wraps cells over 30 characters at spaces; no cell
    printed here has spaces and that length.)
    """
    columns = max([len(header or [])] + [len(row) for row in rows])
    widths = [0] * columns
    for row in ([header] if header else []) + rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    if header:
        lines.append(
            "".join(
                cell.ljust(widths[i]) + (" " if i == columns - 1 else padding)
                for i, cell in enumerate(header)
            )
        )
    for row in rows:
        lines.append("".join(cell.ljust(widths[i]) + padding for i, cell in enumerate(row)))
    return "".join(line + "\n" for line in lines)


def processor_string(size: int, size_vram: int) -> str:
    """The PROCESSOR column: cmd/cmd.go ListRunningHandler (FACTS.md section 1).

    Copied, not imported, because this script must stand alone; the project's own copy is
    sizing/processor.py.
    """
    if size_vram == 0:
        return "100% CPU"
    if size_vram == size:
        return "100% GPU"
    if size_vram > size or size == 0:
        return "Unknown"
    cpu_percent = go_round((size - size_vram) / size * 100)
    return f"{cpu_percent}%/{100 - cpu_percent}% CPU/GPU"


# --------------------------------------------------------------------------------------------
# Memory model (FACTS.md section 4)
# --------------------------------------------------------------------------------------------


def generation_batch(total_tokens: int) -> int:
    """server/sched.go generationBatchForContext: 512; 1024 over 4096 tokens; 2048 over 32768.

    (Ollama steps a large batch back down when VRAM is tight; the stand-in does not.)
    """
    if total_tokens > 32768:
        return 2048
    if total_tokens > 4096:
        return 1024
    return 512


def kv_cache_bytes(entry: CatalogEntry, num_ctx: int, parallel: int, cache_type: str) -> int:
    """KV cache = tokens kept x n_head_kv x (key_length + value_length) x bytes per element.

    Every attention layer keeps num_ctx * parallel tokens, except sliding-window layers, which
    keep parallel * window + batch (fs/ggml/ggml.go GraphSize, gemma3 case), at most the
    context. FACTS.md section 4 marks the sliding-window part unverified.
    """
    total_tokens = num_ctx * parallel
    window_tokens = min(
        total_tokens, parallel * entry.sliding_window + generation_batch(total_tokens)
    )
    per_token = entry.head_count_kv * 2 * entry.head_dim * BYTES_PER_KV_ELEMENT[cache_type]
    tokens = 0
    for layer in range(entry.block_count):
        is_global = not entry.sliding_window or (layer + 1) % entry.sliding_window_pattern == 0
        tokens += total_tokens if is_global else window_tokens
    return int(tokens * per_token)


# --------------------------------------------------------------------------------------------
# On-disk store: $OLLAMA_MODELS/manifests/<host>/<namespace>/<model>/<tag> and blobs/
# --------------------------------------------------------------------------------------------

MEDIA_MODEL = "application/vnd.ollama.image.model"
MEDIA_TEMPLATE = "application/vnd.ollama.image.template"
MEDIA_PARAMS = "application/vnd.ollama.image.params"
MEDIA_SYSTEM = "application/vnd.ollama.image.system"
MEDIA_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
FAKE_BLOB_BYTES = 4096


def compact_json(value: Any) -> bytes:
    """JSON as Go's encoding/json writes it: no spaces."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Blob:
    """A layer: its manifest entry and the bytes the stand-in stores for it."""

    media_type: str
    data: bytes
    # The size the manifest declares. Only the model layer differs from len(data): its
    # stored bytes are a few KB of placeholder text, its declared size the catalog's.
    declared_size: int

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.declared_size}


def fake_weights(entry: CatalogEntry) -> bytes:
    """Placeholder bytes for a model layer: deterministic, so every pull yields one ID."""
    text = (
        "OLLAMA TEST STAND-IN BLOB: this is not a model.\n"
        f"It stands for the weights of {entry.key} ({entry.quantization}). The size Ollama\n"
        "would report comes from the stand-in's catalog, not from this file.\n"
    ).encode()
    return (text * (FAKE_BLOB_BYTES // len(text) + 1))[:FAKE_BLOB_BYTES]


def config_blob(entry: CatalogEntry, layers: list[Blob], parent: str = "") -> Blob:
    """The image config (model.ConfigV2); `x_ollama_standin` ties it to the catalog."""
    config = {
        "model_format": "gguf",
        "model_family": entry.arch,
        "model_families": [entry.arch],
        "model_type": entry.parameter_size,
        "file_type": entry.quantization,
        "capabilities": list(entry.capabilities),
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer.digest for layer in layers]},
        "x_ollama_standin": {"catalog": entry.key, "parent_model": parent},
    }
    data = compact_json(config)
    return Blob(MEDIA_CONFIG, data, len(data))


def library_layers(entry: CatalogEntry) -> tuple[list[Blob], Blob]:
    """Layers and config of a library tag, sized so that they add up to the catalog size."""
    template = Blob(MEDIA_TEMPLATE, b"{{ .Prompt }}", len(b"{{ .Prompt }}"))
    weights_data = fake_weights(entry)
    probe = config_blob(entry, [Blob(MEDIA_MODEL, weights_data, 0), template])
    weights = Blob(
        MEDIA_MODEL, weights_data, entry.size - template.declared_size - probe.declared_size
    )
    return [weights, template], probe


def manifest_bytes(layers: list[Blob], config: Blob) -> bytes:
    return compact_json(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": config.descriptor(),
            "layers": [layer.descriptor() for layer in layers],
        }
    )


@dataclass
class LocalModel:
    """A model present in $OLLAMA_MODELS, read back from its manifest."""

    name: ModelName
    digest: str  # hex sha256 of the manifest file: the ID `ollama list` shows
    size: int  # sum of layers and config, as /api/tags reports it
    weights: int  # declared size of the model layer (the GGUF)
    entry: CatalogEntry
    params: dict[str, Any]
    system: str
    template: str
    parent: str
    modified_ns: int
    manifest: dict[str, Any]
    config: dict[str, Any]


class Store:
    """Manifests and blobs laid out as Ollama lays them out."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs"
        self.manifests = root / "manifests"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.manifests.mkdir(parents=True, exist_ok=True)

    def blob_path(self, digest: str) -> Path:
        return self.blobs / digest.replace(":", "-")  # manifest.BlobsPath: sha256-<hex>

    def manifest_path(self, name: ModelName) -> Path:
        return self.manifests.joinpath(*name.manifest_parts())

    def put_blob(self, data: bytes) -> str:
        digest = sha256_digest(data)
        path = self.blob_path(digest)
        if not path.exists():
            write_atomic(path, data)
        return digest

    def read_blob(self, digest: str) -> bytes:
        return self.blob_path(digest).read_bytes()

    def write_manifest(self, name: ModelName, data: bytes) -> None:
        path = self.manifest_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)

    def read(self, name: ModelName) -> LocalModel | None:
        path = self.manifest_path(name)
        try:
            raw = path.read_bytes()
            manifest = json.loads(raw)
            config = json.loads(self.read_blob(manifest["config"]["digest"]))
            entry = CATALOG[config["x_ollama_standin"]["catalog"]]
            layers = manifest["layers"]
            by_type: dict[str, dict[str, Any]] = {layer["mediaType"]: layer for layer in layers}
            weights = by_type[MEDIA_MODEL]["size"]
        except (OSError, ValueError, KeyError, TypeError):
            return None  # absent, or not written by this stand-in

        def text_of(media_type: str) -> str:
            layer = by_type.get(media_type)
            return self.read_blob(layer["digest"]).decode() if layer else ""

        params_text = text_of(MEDIA_PARAMS)
        return LocalModel(
            name=name,
            digest=hashlib.sha256(raw).hexdigest(),
            size=sum(layer["size"] for layer in layers) + manifest["config"]["size"],
            weights=weights,
            entry=entry,
            params=json.loads(params_text) if params_text else {},
            system=text_of(MEDIA_SYSTEM),
            template=text_of(MEDIA_TEMPLATE),
            parent=config["x_ollama_standin"].get("parent_model", ""),
            modified_ns=path.stat().st_mtime_ns,
            manifest=manifest,
            config=config,
        )

    def names(self) -> list[ModelName]:
        found = []
        for path in sorted(self.manifests.glob("*/*/*/*")):
            if path.is_file():
                host, namespace, model, tag = path.relative_to(self.manifests).parts
                found.append(ModelName(host, namespace, model, tag))
        return found

    def delete(self, name: ModelName) -> None:
        """Remove the manifest, then the blobs no other manifest uses (Manifest.Remove)."""
        model = self.read(name)
        path = self.manifest_path(name)
        path.unlink()
        for directory in (path.parent, path.parent.parent):
            try:
                directory.rmdir()
            except OSError:
                break
        if model is None:
            return
        still_used = set()
        for other in self.names():
            other_model = self.read(other)
            if other_model:
                still_used |= digests_of(other_model.manifest)
        for digest in digests_of(model.manifest) - still_used:
            self.blob_path(digest).unlink(missing_ok=True)


def digests_of(manifest: dict[str, Any]) -> set[str]:
    return {layer["digest"] for layer in manifest["layers"]} | {manifest["config"]["digest"]}


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------
# The server's state: pulls, creates, loaded models
# --------------------------------------------------------------------------------------------


class ApiError(Exception):
    """An error answered as Ollama answers errors: {"error": message} with a status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Runner:
    """A loaded model as /api/ps reports it."""

    model: LocalModel
    num_ctx: int
    size: int
    size_vram: int
    expires_ns: int


class App:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.lock = threading.RLock()
        self.pull_lock = threading.Lock()
        self.runners: dict[str, Runner] = {}
        self.failed_once: set[str] = set()

    # -- pull --------------------------------------------------------------------------------

    def pull(self, name: ModelName) -> Iterator[dict[str, Any]]:
        """server/images.go PullModel: the progress messages in Ollama's order."""
        yield {"status": "pulling manifest"}
        entry = catalog_lookup(name)
        if entry is None:
            # What Ollama says when the registry has no such manifest.
            raise ApiError(500, "pull model manifest: file does not exist")
        layers, config = library_layers(entry)
        with self.pull_lock:
            for blob in [*layers, config]:
                yield from self._download(name, blob)
            yield {"status": "verifying sha256 digest"}
            yield {"status": "writing manifest"}
            self.store.write_manifest(name, manifest_bytes(layers, config))
        yield {"status": "success"}

    def _download(self, name: ModelName, blob: Blob) -> Iterator[dict[str, Any]]:
        """Simulated transfer of one blob; resumes from a partial file like downloadBlob."""
        path = self.store.blob_path(blob.digest)
        total = blob.declared_size
        status = f"pulling {blob.digest[7:19]}"
        if path.exists():
            yield progress(status, blob.digest, total, total)
            return
        partial = path.with_name(path.name + "-partial")
        part_info = path.with_name(path.name + "-partial-0")
        completed = 0
        try:
            completed = int(json.loads(part_info.read_text())["completed"])
        except (OSError, ValueError, KeyError, TypeError):
            completed = 0
        fail_at = None
        if blob.media_type == MEDIA_MODEL and knob_fail_pull_once():
            if name.display() not in self.failed_once and completed < total // 2:
                fail_at = total // 2
        steps = 8 if blob.media_type == MEDIA_MODEL else 1
        chunk = max(math.ceil(total / steps), 1)
        delay = knob_pull_delay()
        yield progress(status, blob.digest, total, completed)
        while completed < total:
            time.sleep(delay)
            completed = min(total, completed + chunk)
            if fail_at is not None and completed >= fail_at:
                # Keep the bytes "received" so far, as Ollama keeps <blob>-partial files.
                kept = len(blob.data) * fail_at // total
                write_atomic(partial, blob.data[:kept])
                write_atomic(part_info, compact_json({"completed": fail_at, "total": total}))
                self.failed_once.add(name.display())
                raise ApiError(
                    500,
                    "max retries exceeded: read tcp 127.0.0.1:0->registry.ollama.ai:443: "
                    "read: connection reset by peer "
                    "(simulated by the Ollama test stand-in: OLLAMA_STANDIN_FAIL_PULL_ONCE)",
                )
            yield progress(status, blob.digest, total, completed)
        write_atomic(path, blob.data)
        partial.unlink(missing_ok=True)
        part_info.unlink(missing_ok=True)

    # -- create ------------------------------------------------------------------------------

    def create(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """POST /api/create as current Ollama takes it: {"model", "from", "parameters", ...}."""
        name = parse_name_or_400(request.get("model") or request.get("name"))
        source = request.get("from")
        parameters = dict(request.get("parameters") or {})
        system = request.get("system")
        if isinstance(request.get("modelfile"), str):  # the pre-0.5 request shape
            parsed = parse_modelfile(request["modelfile"])
            source = source or parsed.source
            parameters = {**parsed.parameters, **parameters}
            system = system or parsed.system
        if request.get("files") or request.get("adapters"):
            raise ApiError(
                400, "the Ollama test stand-in cannot import model files; use FROM <library model>"
            )
        if not source:
            raise ApiError(400, "neither 'from' or 'files' was specified")
        base_name = parse_name_or_400(source)
        base = self.store.read(base_name)
        if base is None:
            # server/create.go parseFromModel pulls a FROM model that is not present.
            yield from self.pull(base_name)
            base = self.store.read(base_name)
            if base is None:
                raise ApiError(500, f"model '{source}' not found")

        kept = [
            layer
            for layer in base.manifest["layers"]
            if layer["mediaType"] not in (MEDIA_PARAMS, MEDIA_SYSTEM)
        ]
        for layer in kept:
            yield {"status": f"using existing layer {layer['digest']}"}
        new_layers = []
        merged = {**base.params, **parameters}
        if "num_ctx" in merged:
            merged["num_ctx"] = int(merged["num_ctx"])
        if merged:
            new_layers.append((MEDIA_PARAMS, compact_json(merged)))
        if system or base.system:
            new_layers.append((MEDIA_SYSTEM, str(system or base.system).encode()))
        descriptors = list(kept)
        for media_type, data in new_layers:
            existed = self.store.blob_path(sha256_digest(data)).exists()
            digest = self.store.put_blob(data)
            word = "using existing" if existed else "creating new"
            yield {"status": f"{word} layer {digest}"}
            descriptors.append({"mediaType": media_type, "digest": digest, "size": len(data)})
        config = dict(base.config)
        config["rootfs"] = {"type": "layers", "diff_ids": [d["digest"] for d in descriptors]}
        config["x_ollama_standin"] = {
            "catalog": base.entry.key,
            "parent_model": base.parent or base.name.display(),
        }
        config_data = compact_json(config)
        config_digest = self.store.put_blob(config_data)
        yield {"status": "writing manifest"}
        self.store.write_manifest(
            name,
            compact_json(
                {
                    "schemaVersion": 2,
                    "mediaType": MEDIA_MANIFEST,
                    "config": {
                        "mediaType": MEDIA_CONFIG,
                        "digest": config_digest,
                        "size": len(config_data),
                    },
                    "layers": descriptors,
                }
            ),
        )
        yield {"status": "success"}

    # -- scheduling --------------------------------------------------------------------------

    def _expire(self, now_ns: int) -> None:
        for key, runner in list(self.runners.items()):
            if runner.expires_ns <= now_ns:
                log_info("model unloaded (keep_alive expired)", model=key)
                del self.runners[key]

    def running(self) -> list[Runner]:
        with self.lock:
            self._expire(time.time_ns())
            # PsHandler: the longest time left first.
            return sorted(self.runners.values(), key=lambda r: r.expires_ns, reverse=True)

    def unload(self, model: LocalModel) -> None:
        with self.lock:
            if self.runners.pop(model.name.display(), None):
                log_info("model unloaded", model=model.name.display())

    def schedule(
        self, model: LocalModel, options: dict[str, Any], keep_ns: int
    ) -> tuple[Runner, int]:
        """Load (or reuse) a model; returns the runner and the simulated load time in ns."""
        with self.lock:
            now = time.time_ns()
            self._expire(now)
            vram = knob_vram_bytes()
            num_ctx = resolve_num_ctx(model, options, vram)
            key = model.name.display()
            expires = now + (FOREVER_NS if keep_ns == FOREVER_NS else keep_ns)
            existing = self.runners.get(key)
            if existing and existing.num_ctx == num_ctx and existing.model.digest == model.digest:
                existing.expires_ns = expires
                return existing, 2_000_000
            if existing:
                # A different context needs a new runner, as Ollama reloads on option changes.
                del self.runners[key]
            parallel, cache_type = num_parallel(), kv_cache_type()
            kv = kv_cache_bytes(model.entry, num_ctx, parallel, cache_type)
            size = model.weights + kv
            free = vram - sum(r.size_vram for r in self.runners.values())
            size_vram = size if size <= free else max(free, 0)
            runner = Runner(model, num_ctx, size, size_vram, expires)
            self.runners[key] = runner
            log_load(runner, kv, parallel, cache_type, vram)
            # Simulated: reading the GGUF at ~2 GB/s.
            return runner, int(model.weights / 2e9 * 1e9)


def resolve_num_ctx(model: LocalModel, options: dict[str, Any], total_vram: int) -> int:
    """Request > Modelfile PARAMETER > OLLAMA_CONTEXT_LENGTH > VRAM-based default.

    server/routes.go modelOptions; then llm/server.go caps it at the trained context.
    """
    chosen = 0
    for candidate in (options.get("num_ctx"), model.params.get("num_ctx")):
        if (
            isinstance(candidate, (int, float))
            and not isinstance(candidate, bool)
            and candidate > 0
        ):
            chosen = int(candidate)
            break
    if not chosen:
        chosen = env_uint("OLLAMA_CONTEXT_LENGTH", 0) or default_num_ctx(total_vram)
    if chosen > model.entry.context_length:
        log_info(
            "requested context size too large for model",
            "WARN",
            num_ctx=chosen,
            n_ctx_train=model.entry.context_length,
        )
        chosen = model.entry.context_length
    return chosen


def log_load(runner: Runner, kv: int, parallel: int, cache_type: str, vram: int) -> None:
    """Journal lines shaped like llama-server's (FACTS.md section 2), values simulated."""
    entry = runner.model.entry
    gpu_share = runner.size_vram / runner.size if runner.size else 0.0
    layers = entry.block_count + 1  # llama.cpp counts the output layer too
    offloaded = layers if runner.size_vram == runner.size else int(layers * gpu_share)
    log_info(
        "loading model (simulated by the Ollama test stand-in)",
        model=runner.model.name.display(),
        num_ctx=runner.num_ctx,
        parallel=parallel,
        kv_cache_type=cache_type,
        simulated_vram=vram,
    )
    log_line(f"load_tensors: offloaded {offloaded}/{layers} layers to GPU")
    if gpu_share > 0:
        log_line(
            f"load_tensors:        CUDA0 model buffer size = "
            f"{runner.model.weights * gpu_share / MIB:8.2f} MiB"
        )
    if gpu_share < 1:
        log_line(
            f"load_tensors:   CPU_Mapped model buffer size = "
            f"{runner.model.weights * (1 - gpu_share) / MIB:8.2f} MiB"
        )
    device = "CUDA0" if gpu_share > 0 else "CPU"
    log_line(f"llama_kv_cache: {device:>12} KV buffer size = {kv / MIB:8.2f} MiB")


def progress(status: str, digest: str, total: int, completed: int) -> dict[str, Any]:
    """api.ProgressResponse; zero total/completed are omitted (omitempty), as Ollama does."""
    event: dict[str, Any] = {"status": status, "digest": digest}
    if total:
        event["total"] = total
    if completed:
        event["completed"] = completed
    return event


def details_of(model: LocalModel) -> dict[str, Any]:
    entry = model.entry
    return {
        "parent_model": model.parent,
        "format": "gguf",
        "family": entry.arch,
        "families": [entry.arch],
        "parameter_size": entry.parameter_size,
        "quantization_level": entry.quantization,
    }


def model_info(entry: CatalogEntry) -> dict[str, Any]:
    """GGUF key/values as /api/show returns them (FACTS.md section 2); Go sorts map keys."""
    arch = entry.arch
    info: dict[str, Any] = {
        "general.architecture": arch,
        "general.file_type": 15,  # Q4_K_M
        "general.parameter_count": entry.parameter_count,
        "general.quantization_version": 2,
        f"{arch}.block_count": entry.block_count,
        f"{arch}.context_length": entry.context_length,
        f"{arch}.embedding_length": entry.embedding_length,
        f"{arch}.attention.head_count": entry.head_count,
        f"{arch}.attention.head_count_kv": entry.head_count_kv,
    }
    if entry.explicit_head_dim:
        info[f"{arch}.attention.key_length"] = entry.head_dim
        info[f"{arch}.attention.value_length"] = entry.head_dim
    if entry.sliding_window:
        info[f"{arch}.attention.sliding_window"] = entry.sliding_window
    return dict(sorted(info.items()))


def go_value(value: Any) -> str:
    """fmt's %#v for the JSON values a params layer holds."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parameters_text(params: dict[str, Any]) -> str:
    """ShowResponse.parameters: one `%-30s %#v` line per value (sorted here for stability)."""
    lines: list[str] = []
    for key in sorted(params):
        values = params[key] if isinstance(params[key], list) else [params[key]]
        lines.extend(f"{key:<30} {go_value(value)}" for value in values)
    return "\n".join(lines)


def words_of(text: str) -> list[str]:
    return re.findall(r"\S+\s*", text)


# --------------------------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: StandinServer

    def version_string(self) -> str:
        # The Server header says plainly that this is not Ollama.
        return f"ollama-test-standin/{version()} (test fixture, not Ollama)"

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: one gin-style line per request is written in _dispatch instead."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    @property
    def app(self) -> App:
        return self.server.app

    # -- plumbing ----------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        started = time.monotonic()
        self._status = 0
        self._headers_done = False
        path = urlsplit(self.path).path
        route = ROUTES.get((method, path))
        try:
            if route is None:
                self.close_connection = True  # its body, if any, was not read
                self._send(404, b"404 page not found", "text/plain")  # gin's default
            else:
                route(self)
        except ApiError as err:
            self._fail(err.status, err.message)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as err:  # a fixture must answer, not hang the test that called it
            log_info("internal error", "ERROR", error=repr(err))
            self._fail(500, f"ollama test stand-in: {err!r}")
        finally:
            elapsed = time.monotonic() - started
            stamp = datetime.now().strftime("%Y/%m/%d - %H:%M:%S")
            log_line(
                f"[GIN] {stamp} | {self._status:3d} | {elapsed * 1000:10.3f}ms | "
                f"{self.client_address[0]:>15} | {method:<7} {json.dumps(path)}"
            )

    def _fail(self, status: int, message: str) -> None:
        if self._headers_done:
            self.close_connection = True
            return
        self._send_json(status, {"error": message})

    def _begin(self, status: int, content_type: str, length: int | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("X-Ollama-Standin", "1")
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        self._status = status
        self._headers_done = True

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self._begin(status, content_type, len(body))
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, value: Any) -> None:
        self._send(status, compact_json(value), "application/json; charset=utf-8")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _json_body(self) -> dict[str, Any]:
        raw = self._read_body()
        if not raw.strip():
            raise ApiError(400, "missing request body")
        try:
            value = json.loads(raw)
        except ValueError as err:
            raise ApiError(400, str(err)) from None
        if not isinstance(value, dict):
            raise ApiError(400, "json: cannot unmarshal request body into an object")
        return value

    def _respond(self, events: Iterator[dict[str, Any]], stream: bool) -> None:
        """Ollama's streamResponse / waitForStream.

        Streaming: an error before the first line gets its own status code; after that it
        is a last {"error": ...} line of a 200 response. Not streaming: the last message, or
        the error with its status.
        """
        if not stream:
            latest: dict[str, Any] = {}
            for event in events:
                latest = event
            self._send_json(200, latest)
            return
        iterator = iter(events)
        first = next(iterator, None)
        self._begin(200, "application/x-ndjson", None)
        try:
            if first is not None:
                self._chunk(compact_json(first) + b"\n")
            for event in iterator:
                self._chunk(compact_json(event) + b"\n")
        except ApiError as err:
            self._chunk(compact_json({"error": err.message}) + b"\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _model_or_404(self, text: Any) -> LocalModel:
        name = parse_name_or_400(text)
        model = self.app.store.read(name)
        if model is None:
            raise ApiError(404, f"model '{text}' not found")
        return model

    # -- routes ------------------------------------------------------------------------------

    def root(self) -> None:
        self._send(200, b"Ollama is running", "text/plain; charset=utf-8")

    def api_version(self) -> None:
        self._send_json(200, {"version": version()})

    def api_tags(self) -> None:
        models = [m for m in map(self.app.store.read, self.app.store.names()) if m]
        models.sort(key=lambda m: m.modified_ns, reverse=True)
        self._send_json(
            200,
            {
                "models": [
                    {
                        "name": m.name.display(),
                        "model": m.name.display(),
                        "modified_at": go_time(m.modified_ns),
                        "size": m.size,
                        "digest": m.digest,
                        "details": details_of(m),
                    }
                    for m in models
                ]
            },
        )

    def openai_models(self) -> None:
        models = [m for m in map(self.app.store.read, self.app.store.names()) if m]
        self._send_json(
            200,
            {
                "object": "list",
                "data": [
                    {
                        "id": m.name.display(),
                        "object": "model",
                        "created": m.modified_ns // 10**9,
                        "owned_by": m.name.namespace,
                    }
                    for m in models
                ],
            },
        )

    def api_ps(self) -> None:
        self._send_json(
            200,
            {
                "models": [
                    {
                        "name": r.model.name.display(),
                        "model": r.model.name.display(),
                        "size": r.size,
                        "digest": r.model.digest,
                        "details": details_of(r.model),
                        "expires_at": go_time(r.expires_ns),
                        "size_vram": r.size_vram,
                        "context_length": r.num_ctx,
                    }
                    for r in self.app.running()
                ]
            },
        )

    def api_pull(self) -> None:
        body = self._json_body()
        name = parse_name_or_400(body.get("model") or body.get("name"))
        self._respond(self.app.pull(name), body.get("stream") is not False)

    def api_create(self) -> None:
        body = self._json_body()
        self._respond(self.app.create(body), body.get("stream") is not False)

    def api_delete(self) -> None:
        body = self._json_body()
        text = body.get("model") or body.get("name")
        model = self._model_or_404(text)
        self.app.store.delete(model.name)
        self._send(200, b"", "text/plain")

    def api_show(self) -> None:
        body = self._json_body()
        model = self._model_or_404(body.get("model") or body.get("name"))
        blob = model.manifest["layers"][0]["digest"].replace(":", "-")
        modelfile = [
            '# Modelfile generated by "ollama show"',
            "# To build a new Modelfile based on this, replace FROM with:",
            f"# FROM {model.name.display()}",
            "",
            f"FROM {self.app.store.blobs / blob}",
            f'TEMPLATE """{model.template}"""',
        ]
        if model.system:
            modelfile.append(f'SYSTEM """{model.system}"""')
        for key in sorted(model.params):
            values = model.params[key]
            for value in values if isinstance(values, list) else [values]:
                modelfile.append(f"PARAMETER {key} {go_value(value)}")
        response: dict[str, Any] = {"modelfile": "\n".join(modelfile) + "\n"}
        if model.params:
            response["parameters"] = parameters_text(model.params)
        response["template"] = model.template
        if model.system:
            response["system"] = model.system
        response.update(
            {
                "details": details_of(model),
                "model_info": model_info(model.entry),
                "capabilities": list(model.entry.capabilities),
                "modified_at": go_time(model.modified_ns),
            }
        )
        self._send_json(200, response)

    def api_generate(self) -> None:
        self._generate(chat=False)

    def api_chat(self) -> None:
        self._generate(chat=True)

    def _generate(self, chat: bool) -> None:
        """/api/generate and /api/chat: load the model, then answer with canned text."""
        body = self._json_body()
        requested = body.get("model")
        model = self._model_or_404(requested) if requested else None
        if model is None:
            raise ApiError(400, "model is required")
        try:
            keep_ns = keep_alive_ns(body.get("keep_alive"))
        except ValueError as err:
            raise ApiError(400, str(err)) from None
        if chat:
            messages = body.get("messages") or []
            prompt = " ".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
            empty = not messages
        else:
            prompt = str(body.get("prompt") or "")
            empty = not prompt
        now = go_time(time.time_ns())

        def message(text: str, done: bool) -> dict[str, Any]:
            base: dict[str, Any] = {"model": requested, "created_at": now}
            if chat:
                base["message"] = {"role": "assistant", "content": text}
            else:
                base["response"] = text
            base["done"] = done
            return base

        # routes.go: an empty prompt with keep_alive 0 unloads, with any other value loads.
        if empty and body.get("keep_alive") is not None and keep_ns == 0:
            self.app.unload(model)
            self._send_json(200, {**message("", True), "done_reason": "unload"})
            return
        runner, load_ns = self.app.schedule(model, body.get("options") or {}, keep_ns)
        if empty:
            self._send_json(200, {**message("", True), "done_reason": "load"})
            return
        pieces = words_of(CANNED_ANSWER)
        prompt_tokens = max(len(words_of(prompt)), 1)
        final = {
            **message("" if body.get("stream") is not False else CANNED_ANSWER, True),
            "done_reason": "stop",
            **simulated_metrics(runner, load_ns, prompt_tokens, len(pieces)),
        }
        if keep_ns == 0:
            self.app.unload(model)  # keep_alive 0: answer, then unload at once

        def events() -> Iterator[dict[str, Any]]:
            for piece in pieces:
                yield message(piece, False)
            yield final

        if body.get("stream") is False:
            self._send_json(200, final)
        else:
            self._respond(events(), stream=True)


def simulated_metrics(
    runner: Runner, load_ns: int, prompt_tokens: int, eval_tokens: int
) -> dict[str, int]:
    """Durations in ns, made up from the GPU share (see SIM_*_BANDWIDTH): not measurements."""
    gpu = runner.size_vram / runner.size if runner.size else 0.0
    per_token = runner.model.weights * (gpu / SIM_GPU_BANDWIDTH + (1 - gpu) / SIM_CPU_BANDWIDTH)
    eval_ns = int(eval_tokens * per_token * 1e9)
    prompt_ns = int(prompt_tokens * per_token * 1e9 / 20)  # prompts are processed in batches
    return {
        "total_duration": load_ns + prompt_ns + eval_ns + 1_000_000,
        "load_duration": load_ns,
        "prompt_eval_count": prompt_tokens,
        "prompt_eval_duration": prompt_ns,
        "eval_count": eval_tokens,
        "eval_duration": eval_ns,
    }


ROUTES: dict[tuple[str, str], Callable[[Handler], None]] = {
    ("GET", "/"): Handler.root,
    ("HEAD", "/"): Handler.root,
    ("GET", "/api/version"): Handler.api_version,
    ("HEAD", "/api/version"): Handler.api_version,
    ("GET", "/api/tags"): Handler.api_tags,
    ("GET", "/api/ps"): Handler.api_ps,
    ("POST", "/api/pull"): Handler.api_pull,
    ("POST", "/api/create"): Handler.api_create,
    ("DELETE", "/api/delete"): Handler.api_delete,
    ("POST", "/api/show"): Handler.api_show,
    ("POST", "/api/generate"): Handler.api_generate,
    ("POST", "/api/chat"): Handler.api_chat,
    ("GET", "/v1/models"): Handler.openai_models,
}


class StandinServer(ThreadingHTTPServer):
    daemon_threads = True  # streaming clients must not keep a SIGTERM'd server alive
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: App, family: int) -> None:
        self.address_family = family
        self.app = app
        super().__init__(address, Handler)


# --------------------------------------------------------------------------------------------
# OLLAMA_HOST (envconfig.Host / ConnectableHost)
# --------------------------------------------------------------------------------------------


def _split_host_port(hostport: str) -> tuple[str, str] | None:
    """net.SplitHostPort, None where Go returns an error."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0 or hostport[end + 1 : end + 2] != ":":
            return None
        return hostport[1:end], hostport[end + 2 :]
    if hostport.count(":") != 1:
        return None
    host, port = hostport.split(":")
    return host, port


def ollama_host() -> tuple[str, str, int]:
    """(scheme, host, port) of OLLAMA_HOST: "host:port", ":port", "http://host:port", "0.0.0.0"."""
    text = env("OLLAMA_HOST")
    default_port = DEFAULT_PORT
    scheme, sep, hostport = text.partition("://")
    if not sep:
        scheme, hostport = "http", text
    elif scheme == "http":
        default_port = 80
    elif scheme == "https":
        default_port = 443
    hostport = hostport.split("/", 1)[0]
    split = _split_host_port(hostport)
    if split is None:
        host, port_text = (hostport.strip("[]") or "127.0.0.1"), str(default_port)
    else:
        host, port_text = split
    port = int(port_text) if port_text.isdigit() and int(port_text) <= 65535 else default_port
    return scheme, host, port


def client_base_url() -> str:
    scheme, host, port = ollama_host()
    # ConnectableHost: a bind-all address is reached through loopback.
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


# --------------------------------------------------------------------------------------------
# `ollama serve`
# --------------------------------------------------------------------------------------------


def models_dir() -> Path:
    return Path(env("OLLAMA_MODELS") or Path.home() / ".ollama" / "models")


def cmd_serve() -> int:
    _, host, port = ollama_host()
    bind = host or "0.0.0.0"
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    try:
        app = App(Store(models_dir()))
    except OSError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    try:
        server = StandinServer((bind, port), app, family)
    except OSError as err:
        reason = (err.strerror or str(err)).lower()
        print(f"Error: listen tcp {bind}:{port}: bind: {reason}", file=sys.stderr)
        return 1

    def stop(signum: int, _frame: Any) -> None:
        log_info("received signal, shutting down", signal=signal.Signals(signum).name)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    vram = knob_vram_bytes()
    log_info(STANDIN_BANNER, version=version(), models=str(app.store.root))
    log_info(f"Listening on {bind}:{port} (version {version()})")
    if vram:
        log_info(
            "inference compute",
            id="GPU-00000000-0000-0000-0000-standin00000",
            library="CUDA",
            name="simulated-by-ollama-test-standin",
            total=f"{vram / GIB:.1f} GiB",
            available=f"{vram / GIB:.1f} GiB",
        )
    else:
        log_info(
            "inference compute",
            id="cpu",
            library="cpu",
            note="no simulated GPU (OLLAMA_STANDIN_VRAM_BYTES unset or 0)",
        )
    log_info("vram-based default context", default_num_ctx=default_num_ctx(vram))
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    log_info("server stopped")
    return 0


# --------------------------------------------------------------------------------------------
# The client commands
# --------------------------------------------------------------------------------------------


class NotRunning(Exception):
    """No server answers on OLLAMA_HOST."""


class ClientError(Exception):
    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class Client:
    """api.Client: JSON over HTTP to OLLAMA_HOST (proxies ignored: the server is local)."""

    def __init__(self) -> None:
        self.base = client_base_url()
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _open(self, method: str, path: str, body: Any, timeout: float) -> Any:
        data = None if body is None else compact_json(body)
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            return self.opener.open(request, timeout=timeout)
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                message = json.loads(raw)["error"]
            except (ValueError, KeyError, TypeError):
                message = raw.decode(errors="replace").strip() or err.reason
            raise ClientError(str(message), err.code) from None
        except (urllib.error.URLError, OSError) as err:
            raise NotRunning(str(err)) from None

    def heartbeat(self) -> None:
        self._open("HEAD", "/", None, 10).close()

    def call(self, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
        with self._open(method, path, body, timeout) as response:
            raw = response.read()
        return json.loads(raw) if raw.strip() else None

    def stream(self, path: str, body: Any, timeout: float = 600) -> Iterator[dict[str, Any]]:
        with self._open("POST", path, body, timeout) as response:
            for line in response:
                if not line.strip():
                    continue
                event = json.loads(line)
                if "error" in event:
                    raise ClientError(str(event["error"]))
                yield event


def print_progress(events: Iterator[dict[str, Any]]) -> None:
    """Progress on stderr, as Ollama's CLI writes it; one plain line per update (no bars)."""
    last_status = None
    for event in events:
        status = event.get("status", "")
        if event.get("digest"):
            total, done = event.get("total", 0), event.get("completed", 0)
            percent = int(done * 100 / total) if total else 100
            amount = (
                human_bytes(total) if done >= total else f"{human_bytes(done)}/{human_bytes(total)}"
            )
            print(f"{status}: {percent:3d}% {amount}", file=sys.stderr, flush=True)
        elif status != last_status:
            print(status, file=sys.stderr, flush=True)
        last_status = status


def cmd_version() -> int:
    """cmd.versionHandler: the server's version, and a warning where the client's differs."""
    server_version = ""
    try:
        server_version = Client().call("GET", "/api/version", timeout=10)["version"]
    except (NotRunning, ClientError, ValueError, KeyError, TypeError):
        print("Warning: could not connect to a running Ollama instance")
    if server_version:
        print(f"ollama version is {server_version}")
    if server_version != version():
        print(f"Warning: client version is {version()}")
    return 0


def cmd_list(client: Client, prefix: str | None) -> int:
    models = client.call("GET", "/api/tags")["models"]
    rows = [
        [
            m["name"],
            m["digest"][:12],
            human_bytes(m["size"]),
            human_time(parse_go_time(m["modified_at"]), "Never"),
        ]
        for m in models
        if not prefix or m["name"].lower().startswith(prefix.lower())
    ]
    sys.stdout.write(render_table(["NAME", "ID", "SIZE", "MODIFIED"], rows))
    return 0


def cmd_ps(client: Client, prefix: str | None) -> int:
    now = time.time_ns()
    rows = []
    for m in client.call("GET", "/api/ps")["models"]:
        if prefix and not m["name"].startswith(prefix):
            continue
        expires = parse_go_time(m["expires_at"])
        until = "Stopping..." if now > expires else human_time(expires, "Never", now)
        rows.append(
            [
                m["name"],
                m["digest"][:12],
                human_bytes(m["size"]),
                processor_string(m["size"], m["size_vram"]),
                str(m.get("context_length", 0)),
                until,
            ]
        )
    header = ["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]
    sys.stdout.write(render_table(header, rows))
    return 0


def cmd_pull(client: Client, name: str) -> int:
    print_progress(client.stream("/api/pull", {"model": name, "stream": True}))
    return 0


@dataclass
class Modelfile:
    source: str
    parameters: dict[str, Any]
    system: str | None
    template: str | None


def _param_value(text: str) -> Any:
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_modelfile(text: str) -> Modelfile:
    """FROM, PARAMETER, SYSTEM and TEMPLATE of a Modelfile (values may be in triple quotes)."""
    commands: list[tuple[str, str]] = []
    pattern = re.compile(r'^\s*(\w+)\s+("""(.*?)"""|"([^"\n]*)"|([^\n]*))', re.S | re.M)
    pos = 0
    while pos < len(text):
        line_end = text.find("\n", pos)
        line = text[pos : line_end if line_end >= 0 else len(text)]
        if not line.strip() or line.lstrip().startswith("#"):
            pos = (line_end + 1) if line_end >= 0 else len(text)
            continue
        match = pattern.match(text, pos)
        if not match:
            raise ValueError(f"invalid Modelfile line: {line.strip()!r}")
        value = next(g for g in match.groups()[2:] if g is not None)
        commands.append((match.group(1).lower(), value.strip()))
        pos = match.end()
    source, system, template = "", None, None
    params: dict[str, Any] = {}
    for command, value in commands:
        if command == "from":
            source = value
        elif command == "parameter":
            key, _, raw = value.partition(" ")
            raw = raw.strip().strip('"')
            if key == "stop":
                params.setdefault("stop", []).append(raw)
            else:
                params[key] = _param_value(raw)
        elif command == "system":
            system = value
        elif command == "template":
            template = value
    if not source:
        raise ValueError("no FROM line")
    return Modelfile(source, params, system, template)


def cmd_create(client: Client, name: str, path: str) -> int:
    file = Path(path).absolute()
    try:
        modelfile = parse_modelfile(file.read_text())
    except FileNotFoundError:
        raise ClientError(f"open {file}: no such file or directory") from None
    except ValueError as err:
        raise ClientError(str(err)) from None
    request: dict[str, Any] = {"model": name, "from": modelfile.source, "stream": True}
    if modelfile.parameters:
        request["parameters"] = modelfile.parameters
    if modelfile.system is not None:
        request["system"] = modelfile.system
    if modelfile.template is not None:
        request["template"] = modelfile.template
    print("gathering model components", file=sys.stderr, flush=True)
    print_progress(client.stream("/api/create", request))
    return 0


def cmd_show(client: Client, name: str, field: str | None) -> int:
    info = client.call("POST", "/api/show", {"model": name})
    if field:
        print(info.get(field, ""))
        return 0
    out = []
    arch = info["model_info"].get("general.architecture", "")
    rows = [["", "architecture", arch], ["", "parameters", info["details"]["parameter_size"]]]
    for label, key in (
        ("context length", "context_length"),
        ("embedding length", "embedding_length"),
    ):
        if f"{arch}.{key}" in info["model_info"]:
            rows.append(["", label, str(info["model_info"][f"{arch}.{key}"])])
    rows.append(["", "quantization", info["details"]["quantization_level"]])
    out.append(("Model", rows))
    if info.get("capabilities"):
        out.append(("Capabilities", [["", c] for c in info["capabilities"]]))
    if info.get("parameters"):
        out.append(
            (
                "Parameters",
                [[""] + line.split() for line in info["parameters"].splitlines() if line.strip()],
            )
        )
    for title, table in out:
        sys.stdout.write(f"  {title}\n" + render_table(None, table) + "\n")
    return 0


def cmd_run(client: Client, args: argparse.Namespace) -> int:
    prompt = " ".join(args.prompt)
    if sys.stdin is not None and not sys.stdin.isatty():
        piped = sys.stdin.read()  # like Ollama: piped stdin goes before the arguments
        prompt = " ".join(part for part in (piped, prompt) if part)
    try:
        client.call("POST", "/api/show", {"model": args.model})
    except ClientError as err:
        if err.status != 404:
            raise
        cmd_pull(client, args.model)
    if not prompt:
        raise ClientError(
            "interactive mode is not supported by the Ollama test stand-in; pass a prompt"
        )
    request: dict[str, Any] = {"model": args.model, "prompt": prompt, "stream": True}
    if args.keepalive:
        request["keep_alive"] = args.keepalive
    final: dict[str, Any] = {}
    for event in client.stream("/api/generate", request):
        sys.stdout.write(event.get("response", ""))
        sys.stdout.flush()
        final = event
    sys.stdout.write("\n\n")
    if args.verbose and final.get("eval_duration"):
        rate = final["eval_count"] / final["eval_duration"] * 1e9
        print(
            f"total duration:       {final['total_duration'] / 1e9:.6f}s\n"
            f"load duration:        {final['load_duration'] / 1e9:.6f}s\n"
            f"prompt eval count:    {final['prompt_eval_count']} token(s)\n"
            f"eval count:           {final['eval_count']} token(s)\n"
            f"eval rate:            {rate:.2f} tokens/s",
            file=sys.stderr,
        )
    return 0


def cmd_stop(client: Client, name: str) -> int:
    try:
        client.call("POST", "/api/show", {"model": name})
    except ClientError as err:
        if err.status == 404:
            raise ClientError(f'couldn\'t find model "{name}" to stop') from None
        raise
    client.call("POST", "/api/generate", {"model": name, "keep_alive": 0})
    return 0


def cmd_rm(client: Client, names: list[str]) -> int:
    for name in names:
        try:  # DeleteHandler in cmd.go unloads a running model first
            client.call("POST", "/api/generate", {"model": name, "keep_alive": 0})
        except ClientError as err:
            if "not found" not in str(err).lower():
                print(f"Warning: unable to stop model '{name}'", file=sys.stderr)
        client.call("DELETE", "/api/delete", {"model": name})
        print(f"deleted '{name}'")
    return 0


HELP = f"""Large language model runner

*** {STANDIN_BANNER}. ***
It loads no model and uses no GPU: sizes and GPU placement are simulated (OLLAMA_STANDIN_*
variables). Only ollama-rig's integration tests install it.

Usage:
  ollama [flags]
  ollama [command]

Available Commands:
  serve       Start Ollama
  create      Create a model
  show        Show information for a model
  run         Run a model
  stop        Stop a running model
  pull        Pull a model from a registry
  list        List models
  ps          List running models
  rm          Remove a model
  help        Help about any command

Flags:
  -h, --help      help for ollama
  -v, --version   Show version information

Use "ollama [command] --help" for more information about a command.
"""


class CommandParser(argparse.ArgumentParser):
    """argparse that fails like cobra: "Error: ..." and exit status 1."""

    def error(self, message: str) -> NoReturn:
        print(f"Error: {message}", file=sys.stderr)
        raise SystemExit(1)


def command_parser(command: str) -> CommandParser:
    parser = CommandParser(
        prog=f"ollama {command}", description=f"{STANDIN_BANNER}: `ollama {command}`."
    )
    if command in ("pull", "show", "stop", "run", "create"):
        parser.add_argument("model")
    if command in ("list", "ls", "ps"):
        parser.add_argument("prefix", nargs="?")
    if command == "rm":
        parser.add_argument("models", nargs="+")
    if command == "create":
        parser.add_argument("-f", "--file", default="Modelfile")
    if command == "show":
        group = parser.add_mutually_exclusive_group()
        for flag in ("license", "modelfile", "parameters", "system", "template"):
            group.add_argument(f"--{flag}", action="store_const", const=flag, dest="field")
    if command == "run":
        parser.add_argument("prompt", nargs="*")
        parser.add_argument("--verbose", action="store_true")
        parser.add_argument("--keepalive", default="")
        parser.add_argument("--nowordwrap", action="store_true")
    if command == "pull":
        parser.add_argument("--insecure", action="store_true")
    return parser


CLIENT_COMMANDS = ("pull", "list", "ls", "ps", "create", "rm", "show", "run", "stop")


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(HELP)
        return 0
    if argv[0] in ("-v", "--version"):
        return cmd_version()
    command = argv[0]
    if command == "serve":
        command_parser("serve").parse_args(argv[1:])
        return cmd_serve()
    if command not in CLIENT_COMMANDS:
        print(f'Error: unknown command "{command}" for "ollama"', file=sys.stderr)
        return 1
    args = command_parser(command).parse_args(argv[1:])
    client = Client()
    try:
        client.heartbeat()
        if command in ("list", "ls"):
            return cmd_list(client, args.prefix)
        if command == "ps":
            return cmd_ps(client, args.prefix)
        if command == "pull":
            return cmd_pull(client, args.model)
        if command == "create":
            return cmd_create(client, args.model, args.file)
        if command == "rm":
            return cmd_rm(client, args.models)
        if command == "show":
            return cmd_show(client, args.model, args.field)
        if command == "run":
            return cmd_run(client, args)
        return cmd_stop(client, args.model)
    except NotRunning:
        print(
            "Error: could not connect to ollama server, run 'ollama serve' to start it",
            file=sys.stderr,
        )
    except ClientError as err:
        print(f"Error: {err}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
