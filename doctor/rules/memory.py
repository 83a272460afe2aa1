"""The GPU is there, but the model does not fit: its size at its context against free VRAM.

Uses sizing/ (estimate, fit, plan_models) with the numbers the captures give: the model and
its context from `ollama ps` / /api/ps, KV type, flash attention and parallel slots from the
server log (its "server config" line or llama.cpp's lines), the VRAM from nvidia-smi minus
what other processes hold. Ollama's automatic context (FACTS.md 3): total VRAM >= 47 GiB ->
262144, >= 23 GiB -> 32768, else 4096; it caps num_ctx to the trained context
(llm/server.go NewLlamaServer, "requested context size too large for model").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from doctor.captures import Captures
from doctor.findings import Finding
from doctor.view import MIB, fallen_models, gpus, loaded_models, log_problems, other_apps
from sizing.catalog import ModelSpec, find_model
from sizing.estimate import GpuMemory, Settings, estimate, fit
from sizing.plan import plan_models
from sizing.units import GIB, human_gb, human_gib

_TRUE = {"1", "true", "yes", "on"}
_HOW = (
    " Server-wide: OLLAMA_KV_CACHE_TYPE, OLLAMA_FLASH_ATTENTION=1, OLLAMA_CONTEXT_LENGTH in"
    " `systemctl edit ollama`; per model: PARAMETER num_ctx in a Modelfile. `python -m sizing"
    " --vram <GiB> --ctx <tokens> --model <tag>` lists the options."
)


@dataclass(frozen=True)
class Load:
    """How a model was loaded, as far as the captures tell; `assumed` names the guesses."""

    num_ctx: int
    parallel: int
    kv_cache: str
    flash_attention: bool
    assumed: tuple[str, ...]
    context_known: bool


def _auto_context(total_bytes: int) -> int:
    return 262144 if total_bytes >= 47 * GIB else 32768 if total_bytes >= 23 * GIB else 4096


def _load(c: Captures, row: dict[str, Any], vram_total: int) -> Load:
    log = c.get("journal") or {}
    env = log.get("env") or {}
    assumed = []
    parallel = log.get("n_seq") or int(env.get("OLLAMA_NUM_PARALLEL") or 0) or 1
    ctx = row.get("context")
    if not ctx and log.get("n_ctx"):
        ctx = log["n_ctx"] // parallel  # llama.cpp's n_ctx is the total over all slots
    if not ctx and str(env.get("OLLAMA_CONTEXT_LENGTH", "")).isdigit():
        ctx = int(env["OLLAMA_CONTEXT_LENGTH"])
    context_known = bool(ctx)
    if not ctx:
        ctx = _auto_context(vram_total)
        assumed.append(f"context {ctx} (Ollama's default for this VRAM)")
    kv = log.get("kv_type") or env.get("OLLAMA_KV_CACHE_TYPE") or "f16"
    if kv not in ("f16", "q8_0", "q4_0"):
        kv = "f16"
    flash = log.get("flash_attention")
    if flash is None and env.get("OLLAMA_FLASH_ATTENTION"):
        flash = env["OLLAMA_FLASH_ATTENTION"].lower() in _TRUE
    if flash is None:
        flash = True
        assumed.append("flash attention on (Ollama's automatic choice)")
    return Load(int(ctx), int(parallel), kv, bool(flash), tuple(assumed), context_known)


def _held_on(apps: list[dict[str, Any]], index: int) -> int:
    """MiB other processes hold on GPU `index` (a CSV row has no GPU index: counted on GPU 0)."""
    return sum(int(a["used_mib"]) for a in apps if (a.get("gpu") or 0) == index)


def _gpu_memory(c: Captures) -> tuple[list[GpuMemory], str]:
    """The GPUs with the VRAM free for Ollama, and how that number was obtained."""
    others = other_apps(c)
    found = gpus(c)
    if found and all(g.total_mib for g in found):
        memories = []
        for index, gpu in enumerate(found):
            total = int(gpu.total_mib or 0) * MIB
            memories.append(GpuMemory(total, total - _held_on(others, index) * MIB, gpu.name))
        if c.get("nvidia-smi-apps"):
            return memories, "total minus other processes"
        return memories, "assuming nothing else holds VRAM"
    for entry in (((c.get("journal") or {}).get("base")) or {}).get("inference_compute") or []:
        if entry.get("library", "").lower() == "cuda" and entry.get("total_bytes"):
            total = int(entry["total_bytes"])
            free = int(entry.get("available_bytes") or total)
            return [GpuMemory(total, free, entry.get("name") or "GPU")], "server log at start"
    available = (c.get("journal") or {}).get("vram_available") or []
    if available:
        memories = [GpuMemory(int(free), int(free), "the GPU") for free in available]
        return memories, "free VRAM the scheduler logged"
    return [], "unknown"


def _row_line(c: Captures, row: dict[str, Any]) -> str:
    quoted = c.quote("ollama-ps", str(row["name"])) if not c.get("api-ps") else None
    if quoted:
        return quoted
    vram = row.get("size_vram_bytes")
    on_gpu = f", {human_gb(int(vram))} on the GPU" if vram is not None else ""
    size = human_gb(int(row["size_bytes"]))
    return f"api-ps: {row['name']} size {size}{on_gpu}, {row['processor']}"


def _generic(c: Captures, row: dict[str, Any], load: Load) -> Finding:
    vram = row.get("size_vram_bytes")
    if vram is None and row.get("gpu_percent") is not None:
        vram = int(row["size_bytes"]) * int(row["gpu_percent"]) // 100
    at = f" at context {load.num_ctx}" if load.context_known else ""
    evidence = [_row_line(c, row), c.quote("journal", "offloaded ")]
    return Finding(
        "model-too-large",
        f"{row['name']} takes {human_gb(int(row['size_bytes']))}{at} and only"
        f" {human_gb(int(vram or 0))} of it fits on the GPU ({row['processor']}): model plus KV"
        " cache is larger than the free VRAM.",
        "Lower the context, use a q8_0 KV cache with flash attention, or a smaller model or"
        " quantization." + _HOW,
        tuple(x for x in evidence if x),
    )


def _sized(
    c: Captures, row: dict[str, Any], spec: ModelSpec, mems: list[GpuMemory], how: str
) -> Finding:
    load = _load(c, row, sum(g.total_bytes for g in mems))
    asked = Settings(load.num_ctx, load.kv_cache, load.flash_attention, load.parallel)
    est = estimate(spec.arch, spec.weights_bytes, asked, mems)
    placed = fit(est, spec.arch, mems)
    usable = sum(g.usable for g in mems)
    plan = plan_models(
        [spec.tag], load.num_ctx, mems, load.kv_cache, load.flash_attention, load.parallel
    ).models[0]
    gpu = f"{mems[0].name} ({human_gib(sum(g.total_bytes for g in mems))})"
    sizing = (
        f"sizing: {spec.tag} at context {est.num_ctx}, KV {est.kv_cache}: weights"
        f" {human_gib(est.weights_bytes)} + KV {human_gib(est.kv_bytes)} + compute"
        f" {human_gib(est.compute_bytes)} = {human_gib(est.total_bytes)}; Ollama can use about"
        f" {human_gib(usable)} of {gpu} ({how}); predicted {placed.processor}"
    )
    assumed = [f"assumed: {', '.join(load.assumed)}"] if load.assumed else []
    evidence = tuple(x for x in [_row_line(c, row), sizing, *assumed] if x)
    if placed.on_gpu:
        return Finding(
            "vram-short",
            f"{row['name']} is {row['processor']} although by the sizing estimate it needs only"
            f" {human_gib(est.total_bytes)} of the {human_gib(usable)} Ollama could use: other"
            " processes or other loaded models hold the VRAM (or the estimate is low).",
            "Free VRAM: unload other models (`ollama stop <model>`), stop other GPU processes,"
            " set OLLAMA_MAX_LOADED_MODELS=1; capture nvidia-smi-apps to see who holds it.",
            evidence,
        )
    cause = (
        f"{row['name']} does not fit the GPU at context {est.num_ctx} with a {est.kv_cache} KV"
        f" cache: it needs about {human_gib(est.total_bytes)}, Ollama can use about"
        f" {human_gib(usable)}, so it runs {row['processor']}."
    )
    if plan.on_gpu and plan.changes:
        fix = "To keep it 100% on the GPU: " + "; ".join(plan.changes) + "." + _HOW
    else:
        fix = (
            "Even a q4_0 KV cache and a shorter context do not make it fit: "
            + "; ".join(plan.options or ["use a smaller model"])
            + "."
        )
    return Finding("model-too-large", cause, fix, evidence)


def model_too_large(c: Captures) -> list[Finding]:
    """Each model that is split or on the CPU, sized against the VRAM (call only with a GPU)."""
    findings = []
    mems, how = _gpu_memory(c)
    for row in fallen_models(c):
        spec = find_model(str(row["name"]))
        if spec is not None and mems:
            findings.append(_sized(c, row, spec, mems, how))
        else:
            findings.append(_generic(c, row, _load(c, row, sum(g.total_bytes for g in mems))))
    if not loaded_models(c) and "partial-offload" in log_problems(c):
        quote = c.quote("journal", "offloaded ")
        findings.append(
            Finding(
                "model-too-large",
                "The last model loaded only partly onto the GPU: model plus KV cache is larger"
                " than the free VRAM.",
                "Lower the context or use a q8_0 KV cache with flash attention." + _HOW,
                tuple(x for x in (quote,) if x),
            )
        )
    return findings


def vram_held_by_others(c: Captures) -> list[Finding]:
    """Other processes hold VRAM that Ollama could have used."""
    apps = other_apps(c)
    held = sum(int(a["used_mib"]) for a in apps)
    if held < 256:  # a desktop's Xorg and compositor take ~100-300 MiB: not worth a finding
        return []
    top = sorted(apps, key=lambda a: -int(a["used_mib"]))[:4]
    listed = ", ".join(f"{a['name']} (pid {a['pid']}) {a['used_mib']} MiB" for a in top)
    return [
        Finding(
            "vram-held-by-other-process",
            f"Other processes hold {held} MiB of VRAM ({listed}); Ollama can only use what is"
            " left, so a model that would fit an idle GPU gets split.",
            "Stop them or move them to another GPU (CUDA_VISIBLE_DEVICES), or give Ollama a GPU"
            " of its own; then reload the model (`ollama stop <model>`, run it again).",
            tuple(f"nvidia-smi-apps: {a['name']} pid {a['pid']} {a['used_mib']} MiB" for a in top),
            "error" if fallen_models(c) else "warning",
        )
    ]


def context_capped(c: Captures) -> list[Finding]:
    """num_ctx above the trained context is silently lowered to it (llm/server.go)."""
    capped = (c.get("journal") or {}).get("capped")
    if not capped:
        return []
    asked, trained = capped["num_ctx"], capped["n_ctx_train"]
    return [
        Finding(
            "context-capped",
            f"A client asked for a {asked}-token context, but the model was trained for"
            f" {trained}: Ollama silently caps it to {trained}, so an agent expecting {asked}"
            " tokens loses the rest.",
            f"Use a model trained for the context the agent needs, or set num_ctx to {trained}"
            " or less so the agent knows its real window.",
            tuple(x for x in (c.quote("journal", "requested context size too large"),) if x),
            "info",
        )
    ]


def server_unreachable(c: Captures) -> list[Finding]:
    """No server answered: nothing is loaded, so there is no PROCESSOR to judge."""
    ps = c.get("ollama-ps") or {}
    version = c.get("ollama-version") or {}
    if ps.get("error") != "server-unreachable" and version.get("error") != "server-unreachable":
        return []
    quote = c.quote("ollama-ps", "could not connect")
    quote = quote or c.quote("ollama-version", "could not connect")
    return [
        Finding(
            "server-unreachable",
            "No Ollama server answered, so no model is loaded to judge.",
            "Start it (`systemctl start ollama`, or `docker start ollama`), load a model"
            " (`ollama run <model> hi`), then capture `ollama ps` again.",
            tuple(x for x in (quote,) if x),
            "warning",
        )
    ]
