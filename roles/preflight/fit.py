"""Before any pull: will each model be 100% GPU at the context asked? Adjust, or stop if pinned.

Pure: settings and the GPUs nvidia-smi reported in, effective settings and lines out. The
plan uses each GPU's total VRAM, not what is free right now: a running Ollama holding its
own models would otherwise make every re-run plan smaller (and never settle).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from roles.models.plan import normal_name
from settings import Settings
from sizing.catalog import find_model
from sizing.estimate import GpuMemory
from sizing.plan import Plan, plan_models
from sizing.units import MIB, human_gb


@dataclass
class FitResult:
    """Effective settings (the planner's changes applied), summary lines and refusals."""

    settings: Settings
    lines: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    model_contexts: dict[str, int] = field(default_factory=dict)


def gpu_memory(gpus: list[dict[str, Any]]) -> list[GpuMemory]:
    return [GpuMemory(int(g["memory_total_mib"]) * MIB, None, str(g["name"])) for g in gpus]


def trained_context(model: str, asked: int) -> int:
    """The context Ollama really gives: the asked one, capped at the model's trained context."""
    spec = find_model(model)
    trained = spec.arch.context_length if spec else 0
    return min(asked, trained) if trained else asked


def _describe(plan: Plan) -> list[str]:
    lines = []
    for m in plan.models:
        if m.estimate is None:
            lines.append(f"model {m.requested}: {m.note}")
            continue
        ceiling = f", at most {m.ceiling_tok_s:.0f} tok/s" if m.ceiling_tok_s else ""
        lines.append(
            f"model {m.tag}: {human_gb(m.estimate.total_bytes)} at context {m.estimate.num_ctx}"
            f" (kv {m.estimate.kv_cache}), predicted {m.processor}{ceiling}"
        )
        if m.note:
            lines.append(f"  note: {m.note}")
    return lines


def _adjusted(settings: Settings, plan: Plan) -> Settings:
    """Apply the planner's choices: one KV type and context for the server, swapped models."""
    planned = [m for m in plan.models if m.settings is not None and m.tag is not None]
    if not any(m.changes for m in planned):
        return settings
    swaps = {m.requested: m.tag for m in planned if m.tag != m.requested}
    kv = planned[0].settings.kv_cache if planned[0].settings else settings.ollama_kv_cache_type
    # Contexts the planner lowered for memory; a cap at the trained context is not a choice.
    asked = settings.ollama_context_length
    lowered = [
        m.settings.num_ctx
        for m in planned
        if m.settings and m.settings.num_ctx < trained_context(m.tag or "", asked)
    ]
    variants = {
        name: {"from": swaps.get(v.from_, v.from_), "num_ctx": v.num_ctx}
        for name, v in settings.ollama_model_variants.items()
    }
    return Settings.model_validate(
        {
            **settings.model_dump(by_alias=True),
            "ollama_models": [swaps.get(m, m) for m in settings.ollama_models],
            "ollama_model_variants": variants,
            "ollama_kv_cache_type": kv,
            "ollama_flash_attention": True if kv != "f16" else settings.ollama_flash_attention,
            "ollama_context_length": min(lowered, default=asked),
        }
    )


def fit_models(settings: Settings, gpus: list[dict[str, Any]]) -> FitResult:
    """Plan the listed models on these GPUs; apply the plan unless ollama_pinned."""
    result = FitResult(settings)
    if settings.gpu == "none" or not gpus:
        result.lines.append("models: not sized (no GPU to fit them in)")
    else:
        plan = plan_models(
            settings.ollama_models,
            settings.ollama_context_length,
            gpu_memory(gpus),
            kv_cache=settings.ollama_kv_cache_type,
            flash_attention=settings.ollama_flash_attention is not False,
            parallel=settings.ollama_num_parallel,
            pinned=settings.ollama_pinned,
        )
        result.lines += _describe(plan)
        for m in plan.models:
            for change in m.changes:
                result.lines.append(f"  change: {m.requested}: {change}")
        misfits = [m for m in plan.models if m.known and not m.on_gpu]
        if misfits:
            options = "; ".join(o for m in misfits for o in m.options)
            names = ", ".join(f"{m.requested} ({m.processor})" for m in misfits)
            why = "settings are pinned" if settings.ollama_pinned else "no plan fits them"
            result.refusals.append(
                f"not 100% GPU: {names}; {why}. Options: {options or 'a GPU with more VRAM'}"
            )
        elif not settings.ollama_pinned:
            result.settings = _adjusted(settings, plan)
    final = result.settings
    for model in final.ollama_models:
        result.model_contexts[normal_name(model)] = trained_context(
            model, final.ollama_context_length
        )
    for name, variant in final.ollama_model_variants.items():
        result.model_contexts[normal_name(name)] = trained_context(variant.from_, variant.num_ctx)
    return result
