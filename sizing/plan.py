"""Planner: settings that keep every requested model 100% on the GPU, and what was changed.

The KV cache type and flash attention are server-wide (OLLAMA_KV_CACHE_TYPE,
OLLAMA_FLASH_ATTENTION), so one choice serves all models; num_ctx and the model are per model.
Stages, each tried with the KV ladder f16 -> q8_0 -> q4_0 (quantized KV turns flash attention on;
Ollama offers neither for models whose K and V lengths differ):
1. the asked contexts and models: the first KV type under which everything fits wins;
2. also halve each model's context, not below `ctx_floor`;
3. also fall back to smaller models of the same family from the catalog (largest first).
Within a stage the choice that keeps the most (model size, context) wins, earlier models first;
on a tie the less compressed KV cache. With `together`, models are placed in order, each in the
VRAM the earlier ones leave (Ollama keeps them loaded side by side, each llama-server with its own
CUDA context); a small depth-first search may shrink an earlier model to make room for a later
one. If nothing puts every model on the GPU, the plan keeps the most models there. Nothing is
changed when `pinned`: the plan then only reports and lists options.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sizing.bandwidth import ceiling_tok_s, find_gpu
from sizing.catalog import ModelSpec, find_model, load_catalog, smaller_variants
from sizing.estimate import (
    CUDA_CONTEXT_BYTES,
    KV_TYPES,
    Estimate,
    Fit,
    GpuMemory,
    Settings,
    estimate,
    fit,
    required_free_bytes,
)
from sizing.units import human_gb, human_gib

UNKNOWN_MODEL = "unknown to the catalog; size not predicted"
DEFAULT_CTX_FLOOR = 8192
# (may halve the context, may pick a smaller model of the family)
STAGES = ((False, False), (True, False), (True, True))
Catalog = tuple[ModelSpec, ...]


@dataclass(frozen=True)
class Placement:
    """One model under one set of settings: its estimate and where it lands."""

    spec: ModelSpec
    settings: Settings
    estimate: Estimate
    fit: Fit


@dataclass
class ModelPlan:
    """The outcome for one requested model."""

    requested: str
    tag: str | None = None
    settings: Settings | None = None
    estimate: Estimate | None = None
    fit: Fit | None = None
    ceiling_tok_s: float | None = None
    changes: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def known(self) -> bool:
        return self.tag is not None

    @property
    def processor(self) -> str | None:
        return self.fit.processor if self.fit else None

    @property
    def on_gpu(self) -> bool:
        return bool(self.fit and self.fit.on_gpu)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; the keys scripts may rely on are listed in __main__.py."""
        est = self.estimate
        return {
            "requested": self.requested,
            "model": self.tag,
            "known": self.known,
            "settings": asdict(self.settings) if self.settings else None,
            "weights_bytes": est.weights_bytes if est else None,
            "kv_bytes": est.kv_bytes if est else None,
            "compute_bytes": est.compute_bytes if est else None,
            "total_bytes": est.total_bytes if est else None,
            "num_ctx": est.num_ctx if est else None,
            "kv_cache": est.kv_cache if est else None,
            "batch": est.batch if est else None,
            "processor": self.processor,
            "on_gpu": self.on_gpu,
            "vram_bytes": self.fit.vram_bytes if self.fit else None,
            "ceiling_tok_s": round(self.ceiling_tok_s, 1) if self.ceiling_tok_s else None,
            "changes": self.changes,
            "options": self.options,
            "note": self.note,
        }


@dataclass
class Plan:
    """Plans for all requested models on the given GPUs."""

    models: list[ModelPlan]
    gpus: list[GpuMemory]
    pinned: bool

    @property
    def all_on_gpu(self) -> bool:
        """True only when every model is in the catalog and predicted 100% GPU."""
        return all(m.on_gpu for m in self.models)

    @property
    def unpredicted(self) -> list[str]:
        """Requested names the catalog does not know (their size is not predicted)."""
        return [m.requested for m in self.models if not m.known]

    def to_dict(self) -> dict[str, Any]:
        return {
            "gpus": [asdict(g) for g in self.gpus],
            "pinned": self.pinned,
            "all_on_gpu": self.all_on_gpu,
            "unpredicted": self.unpredicted,
            "models": [m.to_dict() for m in self.models],
        }


def decode_ceiling(spec: ModelSpec, gpus: Sequence[GpuMemory]) -> float | None:
    """Bandwidth ceiling on the slowest GPU; None if any GPU is unnamed or not in the table."""
    specs = [find_gpu(g.name) for g in gpus]
    if not specs or any(s is None for s in specs):
        return None
    slowest = min(s.bandwidth_bytes_per_s for s in specs if s is not None)
    return ceiling_tok_s(slowest, spec.bytes_per_token)


def place(
    spec: ModelSpec, settings: Settings, gpus: Sequence[GpuMemory], used: int = 0
) -> Placement:
    """Estimate `spec` under `settings` and predict where it lands with `used` bytes taken."""
    est = estimate(spec.arch, spec.weights_bytes, settings, gpus)
    return Placement(spec, settings, est, fit(est, spec.arch, gpus, used))


def _ladder(asked: Settings) -> list[tuple[str, bool]]:
    """Server-wide (kv cache, flash attention) choices, least change first."""
    choices = [(asked.kv_cache, asked.flash_attention)]
    if not asked.flash_attention:
        choices.append((asked.kv_cache, True))  # flash attention alone shrinks the compute buffer
    later = KV_TYPES[KV_TYPES.index(asked.kv_cache) + 1 :]
    return choices + [(kv, True) for kv in later]


def _contexts(ctx: int, spec: ModelSpec, floor: int) -> list[int]:
    """The asked context (capped to the trained one), then halvings not below `floor`."""
    first = min(ctx, spec.arch.context_length) if spec.arch.context_length else ctx
    out = [first]
    while out[-1] // 2 >= floor:
        out.append(out[-1] // 2)
    return out


def _candidates(
    spec: ModelSpec, settings: Settings, stage: tuple[bool, bool], floor: int, catalog: Catalog
) -> list[tuple[ModelSpec, Settings]]:
    """What a stage may try for one model, preferred first: larger model, then larger context."""
    halve, shrink = stage
    variants = [spec, *smaller_variants(spec, catalog)] if shrink else [spec]
    out = []
    for variant in variants:
        contexts = _contexts(settings.num_ctx, variant, floor)
        out += [
            (variant, replace(settings, num_ctx=c)) for c in (contexts if halve else contexts[:1])
        ]
    return out


def _assign(
    options: Sequence[Sequence[tuple[ModelSpec, Settings]]],
    gpus: Sequence[GpuMemory],
    together: bool,
) -> list[Placement] | None:
    """First choice per model (in preference order, earlier models first) that puts all on the GPU.

    Depth-first; a branch is cut when even the smallest options of the models still to place
    cannot fit into what is left (a necessary condition, so no solution is lost).
    """
    smallest = [min(place(s, st, gpus).estimate.total_bytes for s, st in opts) for opts in options]
    capacity = sum(g.usable for g in gpus)

    def step(i: int, used: int, chosen: list[Placement]) -> list[Placement] | None:
        if i == len(options):
            return chosen
        for spec, settings in options[i]:
            placed = place(spec, settings, gpus, used if together else 0)
            if not placed.fit.on_gpu:
                continue
            after = used + placed.fit.vram_bytes + CUDA_CONTEXT_BYTES
            rest = sum(smallest[i + 1 :]) + CUDA_CONTEXT_BYTES * (len(options) - i - 2)
            if together and i + 1 < len(options) and after + rest > capacity:
                continue
            found = step(i + 1, after, [*chosen, placed])
            if found:
                return found
        return None

    return step(0, 0, [])


def _place_all(
    specs: Sequence[ModelSpec],
    settings: Settings,
    gpus: Sequence[GpuMemory],
    floor: int,
    together: bool,
    catalog: Catalog,
) -> list[Placement]:
    """Greedy fallback when not everything fits: each model takes its best option in turn."""
    placements, used = [], 0
    for spec in specs:
        options = _candidates(spec, settings, STAGES[-1], floor, catalog)
        tried = (place(s, st, gpus, used) for s, st in options)
        placed = next((p for p in tried if p.fit.on_gpu), None) or place(spec, settings, gpus, used)
        placements.append(placed)
        if together:
            used += placed.fit.vram_bytes + CUDA_CONTEXT_BYTES  # the next runner: its own context
    return placements


def _score(placements: Sequence[Placement]) -> tuple[int, ...]:
    """How much was kept: models on the GPU, then (model size, context) in the order given."""
    kept = [v for p in placements for v in (p.spec.weights_bytes, p.estimate.num_ctx)]
    return (sum(p.fit.on_gpu for p in placements), *kept)


def _search(
    specs: Sequence[ModelSpec],
    asked: Settings,
    gpus: Sequence[GpuMemory],
    floor: int,
    together: bool,
    catalog: Catalog,
) -> list[Placement]:
    """The least change that puts every model 100% on the GPU, or the best partial result."""
    choices = [replace(asked, kv_cache=kv, flash_attention=fa) for kv, fa in _ladder(asked)]
    for stage in STAGES:
        found = []
        for settings in choices:
            options = [_candidates(spec, settings, stage, floor, catalog) for spec in specs]
            solution = _assign(options, gpus, together)
            if solution:
                found.append(solution)
        if found:
            return max(found, key=_score)  # max keeps the first of equals: the least compression
    fallbacks = (_place_all(specs, s, gpus, floor, together, catalog) for s in choices)
    return max(fallbacks, key=_score)


def _as_asked(
    specs: Sequence[ModelSpec], asked: Settings, gpus: Sequence[GpuMemory], together: bool
) -> list[Placement]:
    placements, used = [], 0
    for spec in specs:
        placements.append(place(spec, asked, gpus, used))
        if together:
            used += placements[-1].fit.vram_bytes + CUDA_CONTEXT_BYTES
    return placements


def _fits_phrase(tag: str, gpus: Sequence[GpuMemory]) -> str:
    total = human_gib(sum(g.total_bytes for g in gpus)).replace(".0 ", " ")
    return f" so {tag} fits {total}"


def describe_changes(old: Placement, new: Placement, gpus: Sequence[GpuMemory]) -> list[str]:
    """Human-readable lines for what differs between the asked and the chosen placement."""
    lines = []
    if new.spec.tag != old.spec.tag:
        lines.append(
            f"model {old.spec.tag} -> {new.spec.tag}: weights {human_gb(old.spec.weights_bytes)}"
            f" -> {human_gb(new.spec.weights_bytes)}"
        )
    if new.settings.flash_attention and not old.settings.flash_attention:
        lines.append(
            "flash attention off -> on (needed by a quantized KV cache; smaller compute buffer)"
        )
    at_old_ctx = place(new.spec, replace(new.settings, num_ctx=old.estimate.num_ctx), gpus).estimate
    if new.estimate.kv_cache != old.estimate.kv_cache:
        lines.append(
            f"kv cache {old.estimate.kv_cache} -> {new.estimate.kv_cache}: "
            f"{human_gb(old.estimate.kv_bytes)} -> {human_gb(at_old_ctx.kv_bytes)} KV"
        )
    if new.estimate.num_ctx != old.estimate.num_ctx:
        lines.append(
            f"context {old.estimate.num_ctx} -> {new.estimate.num_ctx}: "
            f"{human_gb(at_old_ctx.kv_bytes)} -> {human_gb(new.estimate.kv_bytes)} KV"
        )
    if lines:
        lines[-1] += _fits_phrase(new.spec.tag, gpus)
    return lines


def _cap_note(asked: Settings, est: Estimate) -> str:
    """Ollama silently lowers num_ctx to the trained context (llm/server.go NewLlamaServer)."""
    if est.num_ctx >= asked.num_ctx:
        return ""
    return f"Ollama caps num_ctx {asked.num_ctx} to the model's trained context {est.num_ctx}"


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def _model_plan(
    requested: str,
    asked: Placement,
    final: Placement,
    gpus: Sequence[GpuMemory],
    pinned: bool,
    floor: int,
) -> ModelPlan:
    """Turn the as-asked and the chosen placement of one model into its report."""
    shown = asked if pinned else final
    plan = ModelPlan(
        requested,
        shown.spec.tag,
        shown.settings,
        shown.estimate,
        shown.fit,
        decode_ceiling(shown.spec, gpus),
        note=_cap_note(asked.settings, asked.estimate),
    )
    if not gpus:
        plan.note = _join(plan.note, "no GPU: runs on the CPU")
        return plan
    if pinned:
        plan.changes = []
        if not asked.fit.on_gpu:
            plan.note = _join(
                plan.note, "settings are pinned: not changed; it will not be 100% GPU"
            )
            if final.fit.on_gpu:
                plan.options.append("; ".join(describe_changes(asked, final, gpus)))
    else:
        plan.changes = describe_changes(asked, final, gpus)
    if not shown.fit.on_gpu:
        if not pinned:
            plan.note = _join(
                plan.note, f"not 100% GPU even with q4_0 KV, context {floor} or a smaller model"
            )
        need = human_gib(required_free_bytes(asked.estimate))
        plan.options.append(f"a GPU with at least {need} free VRAM for the asked settings")
    return plan


def plan_models(
    models: Sequence[str],
    ctx: int,
    gpus: Sequence[GpuMemory],
    kv_cache: str = "f16",
    flash_attention: bool = True,
    parallel: int = 1,
    pinned: bool = False,
    *,
    together: bool = True,
    ctx_floor: int = DEFAULT_CTX_FLOOR,
    catalog: Catalog | None = None,
) -> Plan:
    """Plan `models` at context `ctx` on `gpus` (together: each in the VRAM the others leave).

    `catalog` defaults to sizing/catalog.yaml; tests and callers may pass their own rows.
    """
    asked = Settings(
        num_ctx=ctx, kv_cache=kv_cache, flash_attention=flash_attention, parallel=parallel
    )
    catalog = load_catalog() if catalog is None else catalog
    specs = {name: find_model(name, catalog) for name in models}
    known = [spec for name in models if (spec := specs[name]) is not None]
    as_asked = _as_asked(known, asked, gpus, together)
    chosen = _search(known, asked, gpus, ctx_floor, together, catalog) if gpus else as_asked
    pairs = iter(zip(as_asked, chosen, strict=True))  # in the order of `known`
    plans = []
    for name in models:
        if specs[name] is None:
            plans.append(ModelPlan(name, note=UNKNOWN_MODEL))
        else:
            plans.append(_model_plan(name, *next(pairs), gpus, pinned, ctx_floor))
    return Plan(plans, list(gpus), pinned)
