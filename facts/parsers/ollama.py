"""Parsers for what Ollama shows: `ollama ps`, `GET /api/ps`, `ollama list`, the server log.

Upstream behaviour relied on (ollama cmd/cmd.go ListRunningHandler / ListHandler, FACTS.md 1-2):
- tables are rendered by tablewriter, left-aligned, with either a tab or spaces between
  columns depending on the release, so columns are found from the header positions; a header
  that lost its padding (a capture that squeezes runs of spaces: "NAME ID SIZE PROCESSOR
  UNTIL") has no positions, and its rows are read word by word (_cells_by_words);
- SIZE is format.HumanBytes: decimal units, integer from 10 units up ("19 GB");
- PROCESSOR is derived from size/size_vram (sizing/processor.py holds the formula);
- CONTEXT exists since v0.10.0; older tables have no such column.
"""

from __future__ import annotations

import json
import re
from typing import Any

from facts.parsers import ParseError
from facts.parsers.units import binary_bytes, binary_size, decimal_bytes
from sizing.processor import processor_split, processor_string

_ID = re.compile(r"^[0-9a-f]{12}$")
_ONE_PROCESSOR = re.compile(r"^(\d+)%\s*(CPU|GPU)$")
_SPLIT_PROCESSOR = re.compile(r"^(\d+)%/(\d+)%\s*CPU/GPU$")
_UNREACHABLE = re.compile(r"could not connect to (?:ollama app|a running Ollama instance)", re.I)
# The second word of a two-word cell: HumanBytes' unit ("4.7 GB", format/bytes.go) or where a
# share runs ("100% GPU", "83%/17% CPU/GPU"; cmd/cmd.go ListRunningHandler).
_UNIT_WORD = re.compile(r"^(?:[KMGTP]?B|CPU|GPU|CPU/GPU)$")


# --- tables ---------------------------------------------------------------------------------


def _is_header(line: str, required: tuple[str, ...]) -> bool:
    words = line.split()
    return bool(words) and words[0] == "NAME" and all(word in words for word in required)


def _token_start(row: str, pos: int) -> bool:
    return 0 < pos < len(row) and row[pos - 1] == " " and row[pos] != " "


def _cells_by_position(row: str, starts: list[int]) -> list[str]:
    """Cut a space-aligned row at the header's column starts, nudged to the nearest word start.

    A pasted table can be off by a character or two; a boundary moves to the nearest start of
    a word within 3 columns, so values that contain single spaces ("4.7 GB", "100% GPU",
    "4 minutes from now") stay whole and are never split on single spaces.
    """
    bounds = [0]
    for start in starts[1:]:
        best = start
        for delta in (0, -1, 1, -2, 2, -3, 3):
            if _token_start(row, start + delta):
                best = start + delta
                break
        bounds.append(max(best, bounds[-1]))
    bounds.append(max(len(row), bounds[-1]))
    return [row[a:b].strip() for a, b in zip(bounds, bounds[1:], strict=False)]


def _squeezed(header: str) -> bool:
    """A space-separated header whose words are one space apart: its padding was lost."""
    return "  " not in header.strip()


def _cells_by_words(row: str, count: int) -> list[str]:
    """Cut a row without column positions into count cells, by what Ollama prints in them.

    Every cell but the last is one word, or two where the second is a unit word (SIZE "4.7 GB",
    PROCESSOR "100% GPU"); the last cell takes the rest (UNTIL "4 minutes from now", MODIFIED
    "2 weeks ago"). Names, IDs and CONTEXT never contain a space.
    """
    words = row.split()
    cells = []
    for _ in range(count - 1):
        take = 2 if len(words) > 1 and _UNIT_WORD.match(words[1]) else 1
        cells.append(" ".join(words[:take]))
        words = words[take:]
    cells.append(" ".join(words))
    return cells


def _table_rows(
    text: str, required: tuple[str, ...]
) -> tuple[list[str], list[list[str]], list[str]]:
    """Return (columns, rows as cell lists, stray lines before the header) of the last table."""
    lines = text.splitlines()
    header_at = [i for i, line in enumerate(lines) if _is_header(line, required)]
    if not header_at:
        raise ParseError(f"no table header with NAME {' '.join(required)} found")
    at = header_at[-1]
    header = lines[at]
    stray = [line.strip() for line in lines[:at] if line.strip()]
    use_tabs = "\t" in header
    by_words = not use_tabs and _squeezed(header)
    if use_tabs:
        columns = [cell.strip() for cell in header.split("\t") if cell.strip()]
    else:
        columns = header.split()
        starts = [m.start() for m in re.finditer(r"\S+", header)]
    rows: list[list[str]] = []
    for line in lines[at + 1 :]:
        if not line.strip():
            continue
        if use_tabs:
            cells = [cell.strip() for cell in line.split("\t")]
        elif by_words:
            cells = _cells_by_words(line, len(columns))
        else:
            cells = _cells_by_position(line.rstrip(), starts)
        cells = (cells + [""] * len(columns))[: len(columns)]
        rows.append(cells)
    return columns, rows, stray


def _processor(text: str) -> tuple[int | None, int | None]:
    if text == "Unknown":
        return None, None
    if match := _ONE_PROCESSOR.match(text):
        share = int(match.group(1))
        rest = 100 - share
        return (share, rest) if match.group(2) == "CPU" else (rest, share)
    if match := _SPLIT_PROCESSOR.match(text):
        return int(match.group(1)), int(match.group(2))
    raise ParseError(f"unknown PROCESSOR value {text!r}")


def parse_ollama_ps(text: str) -> dict[str, Any]:
    """`ollama ps` -> {"models": [...], "error", "message", "ignored_lines"}.

    error: null, or "server-unreachable" when the CLI could not reach the server.

    Each model: name, id, size_bytes (decimal), processor (as printed), cpu_percent,
    gpu_percent (null for "Unknown"), context (null where the release has no CONTEXT column),
    until (null when empty). Lines before the last header (prompts, warnings, an earlier
    table) are ignored; after the header, a line whose ID cell is not 12 hex digits ends the
    table (a shell prompt); a row with a valid ID but a bad SIZE/PROCESSOR is a ParseError.
    """
    if _UNREACHABLE.search(text) and not any(_is_header(x, ("ID",)) for x in text.splitlines()):
        line = next(x.strip() for x in text.splitlines() if _UNREACHABLE.search(x))
        return {"models": [], "error": "server-unreachable", "message": line, "ignored_lines": []}
    columns, rows, stray = _table_rows(text, ("ID", "SIZE", "PROCESSOR"))
    models: list[dict[str, Any]] = []
    ignored: list[str] = list(stray)
    for at, cells in enumerate(rows):
        row = dict(zip(columns, cells, strict=True))
        if not _ID.match(row["ID"]):
            ignored.extend(" ".join(c for c in r if c) for r in rows[at:])
            break
        cpu, gpu = _processor(row["PROCESSOR"])
        context = row.get("CONTEXT")
        if context and not context.isdigit():
            raise ParseError(f"CONTEXT is not a number: {context!r}")
        models.append(
            {
                "name": row["NAME"],
                "id": row["ID"],
                "size_bytes": decimal_bytes(row["SIZE"]),
                "processor": row["PROCESSOR"],
                "cpu_percent": cpu,
                "gpu_percent": gpu,
                "context": int(context) if context else None,
                "until": row.get("UNTIL") or None,
            }
        )
    return {"models": models, "error": None, "message": None, "ignored_lines": ignored}


def parse_ollama_list(text: str) -> dict[str, Any]:
    """`ollama list` -> {"models": [{"name", "id", "size_bytes", "modified"}]}."""
    columns, rows, _stray = _table_rows(text, ("ID", "SIZE", "MODIFIED"))
    models = []
    for cells in rows:
        row = dict(zip(columns, cells, strict=True))
        if not _ID.match(row["ID"]):
            break
        models.append(
            {
                "name": row["NAME"],
                "id": row["ID"],
                "size_bytes": decimal_bytes(row["SIZE"]),
                "modified": row["MODIFIED"] or None,
            }
        )
    return {"models": models}


# --- GET /api/ps ----------------------------------------------------------------------------


def _int_field(model: dict[str, Any], key: str, default: int | None) -> int | None:
    value = model.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ParseError(f"/api/ps field {key!r} is not a non-negative integer: {value!r}")
    return value


def parse_api_ps(text: str) -> dict[str, Any]:
    """JSON of GET /api/ps -> the `ollama ps` shape plus size_vram_bytes and expires_at.

    Percentages come from sizing.processor exactly as the CLI derives them. Releases before
    mid-2024 omitted size_vram when it was 0 (ollama#4840), so a missing size_vram is 0.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(f"not JSON (line {exc.lineno} column {exc.colno}): {exc.msg}") from exc
    if isinstance(data, dict) and "error" in data and "models" not in data:
        raise ParseError(f"/api/ps returned an error: {data['error']}")
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise ParseError('/api/ps JSON has no "models" list')
    models = []
    for model in data["models"]:
        if not isinstance(model, dict):
            raise ParseError("/api/ps models entry is not an object")
        name = model.get("name") or model.get("model")
        size = _int_field(model, "size", None)
        if not name or size is None:
            raise ParseError("/api/ps model without name or size")
        size_vram = _int_field(model, "size_vram", 0) or 0
        split = processor_split(size, size_vram)
        digest = str(model.get("digest") or "").removeprefix("sha256:")
        models.append(
            {
                "name": name,
                "id": digest[:12] or None,
                "size_bytes": size,
                "size_vram_bytes": size_vram,
                "processor": processor_string(size, size_vram),
                "cpu_percent": split[0] if split else None,
                "gpu_percent": split[1] if split else None,
                "context": _int_field(model, "context_length", None),
                "until": None,
                "expires_at": model.get("expires_at"),
            }
        )
    return {"models": models, "error": None, "message": None}


# --- server log -----------------------------------------------------------------------------

_OFFLOADED = re.compile(r"offloaded (\d+)/(\d+) layers to GPU")
# "load_tensors:        CUDA0 model buffer size =  8354.71 MiB" (llama-server, current)
# "llm_load_tensors:      CUDA0 buffer size =  4695.56 MiB"     (older runner: model weights)
# "llama_kv_cache:      CUDA0 KV buffer size =   800.00 MiB"
# "llama_context:      CUDA0 compute buffer size =   353.01 MiB"
_BUFFER = re.compile(
    r"(?P<prefix>\w+):\s+(?P<device>[A-Za-z][A-Za-z0-9_]*)\s+(?:(?P<kind>model|KV|compute|output)\s+)?"
    r"buffer size\s*=\s*(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>[KMGT]iB|B)\b"
)
_GPU_DEVICE = re.compile(r"^(?:CUDA|ROCm|Vulkan|SYCL|MTL|Metal)\d*$")
_LOGFMT = re.compile(r'([A-Za-z_][\w.]*)=("(?:[^"\\]|\\.)*"|\[[^\]]*\]|\S+)')
_VERSION = re.compile(r"Listening on .*\(version ([^)]+)\)")


def _logfmt(line: str) -> dict[str, str]:
    return {key: value.strip('"') for key, value in _LOGFMT.findall(line)}


def _size_or_none(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return binary_size(text)
    except ParseError:
        return None


def _new_load() -> dict[str, Any]:
    return {"offloaded_layers": None, "total_layers": None, "buffers": {}}


def _finish_load(load: dict[str, Any]) -> dict[str, Any]:
    gpu = cpu = 0
    for per_device in load["buffers"].values():
        for device, size in per_device.items():
            if _GPU_DEVICE.match(device):
                gpu += size
            else:
                cpu += size
    load["gpu_bytes"] = gpu
    load["host_bytes"] = cpu
    return load


def parse_ollama_log(text: str) -> dict[str, Any]:
    """Ollama server log / `journalctl -u ollama` -> what the runner put where.

    Returns:
      loads: one entry per model load (a new load starts at each "offloaded X/Y layers" line
        or at a buffer line for a kind already seen): offloaded_layers, total_layers,
        buffers {"model"|"kv"|"compute"|"output": {device: bytes}}, gpu_bytes, host_bytes
        (CUDA*/ROCm*/... count as GPU; CPU, CPU_Mapped, CUDA_Host as host);
      offload_estimates: the scheduler's older "offload to cuda" / msg=offload lines
        (library, layers_requested, layers_model, layers_offload, memory_required_full_bytes,
        memory_required_partial_bytes);
      inference_compute: msg="inference compute" lines (id, library, name, compute, driver,
        total_bytes, available_bytes);
      version: from "Listening on ... (version X)";
      problems: codes "no-compatible-gpus", "cpu-only-inference", "no-gpu-libraries",
        "partial-offload" / "no-offload" (a load or an estimate with fewer layers on the GPU
        than the model has), "no-gpu-buffers" (a load whose buffers are all in host memory).
    """
    loads: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    estimates: list[dict[str, Any]] = []
    computes: list[dict[str, Any]] = []
    version: str | None = None
    problems: list[str] = []
    recognised = False

    def note(code: str) -> None:
        if code not in problems:
            problems.append(code)

    for line in text.splitlines():
        if match := _OFFLOADED.search(line):
            recognised = True
            if current is not None:
                loads.append(_finish_load(current))
            current = _new_load()
            current["offloaded_layers"] = int(match.group(1))
            current["total_layers"] = int(match.group(2))
            continue
        if match := _BUFFER.search(line):
            recognised = True
            kind = (match.group("kind") or "model").lower()
            if current is None or (kind == "model" and "kv" in current["buffers"]):
                if current is not None:
                    loads.append(_finish_load(current))
                current = _new_load()
            per_device = current["buffers"].setdefault(kind, {})
            device = match.group("device")
            per_device[device] = per_device.get(device, 0) + binary_bytes(
                match.group("num"), match.group("unit")
            )
            continue
        if match := _VERSION.search(line):
            recognised = True
            version = match.group(1)
            continue
        if "msg=" not in line:
            continue
        fields = _logfmt(line)
        msg = fields.get("msg", "")
        if msg in ("offload", "offload to cuda", "offload to rocm", "offload to device"):
            recognised = True
            estimates.append(
                {
                    "library": fields.get("library") or msg.removeprefix("offload to ") or None,
                    "layers_requested": _maybe_int(fields.get("layers.requested")),
                    "layers_model": _maybe_int(fields.get("layers.model")),
                    "layers_offload": _maybe_int(fields.get("layers.offload")),
                    "memory_required_full_bytes": _size_or_none(fields.get("memory.required.full")),
                    "memory_required_partial_bytes": _size_or_none(
                        fields.get("memory.required.partial")
                    ),
                }
            )
        elif msg == "inference compute":
            recognised = True
            library = fields.get("library")
            computes.append(
                {
                    "id": fields.get("id"),
                    "library": library,
                    "name": fields.get("name") or fields.get("description") or None,
                    "compute": fields.get("compute") or None,
                    "driver": fields.get("driver") or None,
                    "total_bytes": _size_or_none(fields.get("total")),
                    "available_bytes": _size_or_none(fields.get("available")),
                }
            )
            if library == "cpu":
                note("cpu-only-inference")
        elif msg == "no compatible GPUs were discovered":
            recognised = True
            note("no-compatible-gpus")
        elif msg == "compatible gpu libraries" and fields.get("compatible") == "[]":
            recognised = True
            note("no-gpu-libraries")

    if current is not None:
        loads.append(_finish_load(current))
    if not recognised:
        raise ParseError("no Ollama server log lines found (offload, buffer, inference compute)")
    for done, total in [(x["offloaded_layers"], x["total_layers"]) for x in loads] + [
        (e["layers_offload"], e["layers_model"]) for e in estimates
    ]:
        if done == 0:
            note("no-offload")
        elif done is not None and total and done < total:
            note("partial-offload")
    if any(load["buffers"] and not load["gpu_bytes"] for load in loads):
        note("no-gpu-buffers")
    return {
        "loads": loads,
        "offload_estimates": estimates,
        "inference_compute": computes,
        "version": version,
        "problems": problems,
    }


def _maybe_int(text: str | None) -> int | None:
    return int(text) if text and text.lstrip("-").isdigit() else None
