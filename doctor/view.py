"""Values several rules need, derived once from the captures (GPUs, version, fallen models)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from doctor.captures import Captures
from doctor.parsers import version_tuple

MIB = 1024**2
# Processes that belong to Ollama itself: the server, its runners, llama-server (v0.30+).
OLLAMA_PROCESSES = ("ollama", "llama-server", "llama_server")


@dataclass(frozen=True)
class Gpu:
    """One GPU as nvidia-smi showed it (MiB), with what Ollama's log adds."""

    name: str
    total_mib: int | None
    used_mib: int | None
    driver: str | None
    compute_capability: str | None


def gpus(c: Captures) -> list[Gpu]:
    """GPUs from the host's nvidia-smi; the compute capability may come from Ollama's log."""
    smi = c.get("nvidia-smi") or {}
    log_cc = log_compute_capability(c)
    found = []
    for gpu in smi.get("gpus") or []:
        cc = gpu.get("compute_cap") or log_cc
        found.append(
            Gpu(
                gpu.get("name") or "GPU",
                gpu.get("memory_total_mib"),
                gpu.get("memory_used_mib"),
                gpu.get("driver_version"),
                cc,
            )
        )
    return found


def log_compute_capability(c: Captures) -> str | None:
    """The CUDA compute capability from the server log ("inference compute" or its warnings)."""
    log = c.get("journal") or {}
    for entry in reversed(((log.get("base") or {}).get("inference_compute")) or []):
        compute = entry.get("compute") or ""
        if entry.get("library", "").lower() == "cuda" and compute[:1].isdigit():
            return str(compute)
    for key in ("cc_too_old", "cc_skipped"):
        if log.get(key):
            return str(log[key]["cc"])
    return None


def cc_tuple(cc: str | None) -> tuple[int, int] | None:
    """ "8.6" -> (8, 6)."""
    if not cc:
        return None
    major, _, minor = cc.partition(".")
    return (int(major), int(minor or 0)) if major.isdigit() and minor.isdigit() else None


def ollama_version(c: Captures) -> str | None:
    """The server's version: `ollama -v`, else the log's "Listening on ... (version X)"."""
    ver = c.get("ollama-version") or {}
    log = c.get("journal") or {}
    for candidate in (ver.get("server"), log.get("version")):
        if version_tuple(candidate):
            return str(candidate)
    return None


def loaded_models(c: Captures) -> list[dict[str, Any]]:
    """Rows of /api/ps (exact sizes) or else `ollama ps`."""
    for kind in ("api-ps", "ollama-ps"):
        table = c.get(kind)
        if table and table.get("models"):
            return list(table["models"])
    return []


def fallen_models(c: Captures) -> list[dict[str, Any]]:
    """Loaded models not 100% on the GPU ("100% CPU" or a CPU/GPU split)."""
    return [
        m for m in loaded_models(c) if (m.get("gpu_percent") is not None) and m["gpu_percent"] < 100
    ]


def other_apps(c: Captures) -> list[dict[str, Any]]:
    """Processes other than Ollama's own that hold VRAM (nvidia-smi-apps, else the table)."""
    apps = (c.get("nvidia-smi-apps") or {}).get("apps") or []
    return [
        app
        for app in apps
        if not any(name in str(app.get("name", "")).lower() for name in OLLAMA_PROCESSES)
        and app.get("used_mib")
    ]


def log_problems(c: Captures) -> list[str]:
    """Problem codes from facts.parsers.ollama.parse_ollama_log ("no-compatible-gpus", ...)."""
    return list((((c.get("journal") or {}).get("base")) or {}).get("problems") or [])


def server_sees_no_gpu(c: Captures) -> list[str]:
    """Evidence that the server found no usable GPU: its log, or every model at 100% CPU."""
    evidence = []
    problems = log_problems(c)
    if "no-compatible-gpus" in problems:
        evidence.append(c.quote("journal", "no compatible GPUs"))
    if "cpu-only-inference" in problems:
        evidence.append(c.quote("journal", "library=cpu"))
    if "no-gpu-libraries" in problems:
        evidence.append(c.quote("journal", "compatible gpu libraries"))
    models = loaded_models(c)
    if models and all(m.get("gpu_percent") == 0 for m in models):
        kind = "api-ps" if c.get("api-ps") else "ollama-ps"
        evidence.append(c.quote(kind, "100% CPU", '"name"') or f"{kind}: every model 100% CPU")
    return [line for line in evidence if line]
