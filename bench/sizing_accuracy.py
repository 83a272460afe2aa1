"""How close the sizing estimate comes to what Ollama reported, on real `ollama ps` rows.

    .venv/bin/python -m bench.sizing_accuracy [--json] [--data FILE ...]

Reads bench/observations/*.yaml (sources cited per row). For each row: the estimated total
(sizing.estimate: weights + KV cache + compute buffer) against the reported SIZE, as relative
error (estimated - reported) / reported; and, where the GPU's free VRAM is known, the predicted
PROCESSOR class (sizing.fit: all GPU / split / all CPU) against the reported one. Then the
median absolute relative error and the class hit rate. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from sizing.catalog import ModelSpec, find_model
from sizing.estimate import GpuMemory, Settings, estimate, fit
from sizing.units import parse_size

DATA = Path(__file__).with_name("observations")


@dataclass(frozen=True)
class Observation:
    """One reported row and the settings it was loaded with."""

    id: str
    source: str
    model: str
    context: int
    size_bytes: int
    processor: str
    weights_bytes: int | None = None
    parallel: int = 1
    kv_cache: str = "f16"
    flash_attention: bool = False
    vram_free_bytes: int | None = None
    gpu_name: str = ""


@dataclass(frozen=True)
class Result:
    """The estimate for one observation, next to what was reported."""

    id: str
    model: str
    context: int
    reported_bytes: int
    estimated_bytes: int
    relative_error: float
    observed_class: str
    predicted_class: str | None  # None: the free VRAM is not known
    predicted_processor: str | None
    source: str

    @property
    def class_hit(self) -> bool | None:
        return None if self.predicted_class is None else self.predicted_class == self.observed_class


@dataclass(frozen=True)
class Summary:
    """Median absolute relative error over all rows; class hits over rows with a known GPU."""

    observations: int
    median_abs_error: float
    class_scored: int
    class_hits: int

    @property
    def class_hit_rate(self) -> float | None:
        return self.class_hits / self.class_scored if self.class_scored else None


def processor_class(processor: str) -> str:
    """Ollama's PROCESSOR text -> "gpu" (100% GPU), "cpu" (100% CPU) or "split"."""
    text = " ".join(processor.split())
    if text == "100% GPU":
        return "gpu"
    if text == "100% CPU":
        return "cpu"
    if text.endswith("CPU/GPU"):
        return "split"
    raise ValueError(f"not an Ollama PROCESSOR value: {processor!r}")


def _bytes(value: Any) -> int:
    return value if isinstance(value, int) else parse_size(str(value))


def _observation(row: dict[str, Any]) -> Observation:
    gpu = row.get("gpu") or {}
    return Observation(
        id=str(row["id"]),
        source=str(row["source"]),
        model=str(row["model"]),
        context=int(row["context"]),
        size_bytes=_bytes(row["size"]),
        processor=str(row["processor"]),
        weights_bytes=_bytes(row["weights"]) if row.get("weights") is not None else None,
        parallel=int(row.get("parallel", 1)),
        kv_cache=str(row.get("kv_cache", "f16")),
        flash_attention=bool(row.get("flash_attention", False)),
        vram_free_bytes=_bytes(gpu["vram_free"]) if gpu.get("vram_free") else None,
        gpu_name=str(gpu.get("name", "")),
    )


def load_observations(paths: Iterable[Path]) -> list[Observation]:
    """Every row of the given YAML files; a malformed row raises ValueError naming it."""
    found = []
    for path in paths:
        for row in yaml.safe_load(path.read_text())["observations"]:
            try:
                found.append(_observation(row))
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path.name}: row {row.get('id', row)!r}: {exc}") from exc
    return found


def _spec(obs: Observation) -> ModelSpec:
    spec = find_model(obs.model)
    if spec is None:
        raise ValueError(f"{obs.id}: {obs.model!r} is not in sizing/catalog.yaml")
    return spec


def evaluate(obs: Observation) -> Result:
    """Estimate one observation (its own weights size where it gives one) and place it."""
    spec = _spec(obs)
    weights = obs.weights_bytes or spec.weights_bytes
    gpus = (
        [GpuMemory(obs.vram_free_bytes, obs.vram_free_bytes, obs.gpu_name)]
        if obs.vram_free_bytes
        else []
    )
    settings = Settings(obs.context, obs.kv_cache, obs.flash_attention, obs.parallel)
    est = estimate(spec.arch, weights, settings, gpus)
    placed = fit(est, spec.arch, gpus) if gpus else None
    return Result(
        id=obs.id,
        model=obs.model,
        context=obs.context,
        reported_bytes=obs.size_bytes,
        estimated_bytes=est.total_bytes,
        relative_error=(est.total_bytes - obs.size_bytes) / obs.size_bytes,
        observed_class=processor_class(obs.processor),
        predicted_class=processor_class(placed.processor) if placed else None,
        predicted_processor=placed.processor if placed else None,
        source=obs.source,
    )


def summarize(results: Sequence[Result]) -> Summary:
    """Median |relative error| (statistics.median: mean of the middle two for an even count)."""
    scored = [r for r in results if r.class_hit is not None]
    return Summary(
        observations=len(results),
        median_abs_error=statistics.median(abs(r.relative_error) for r in results),
        class_scored=len(scored),
        class_hits=sum(1 for r in scored if r.class_hit),
    )


def render_table(results: Sequence[Result], summary: Summary) -> str:
    """One line per observation, then the two figures."""
    lines = [
        f"{'observation':<38} {'context':>7} {'reported':>9} {'estimate':>9} {'error':>7}"
        f"  {'class (reported -> predicted)'}"
    ]
    for r in results:
        predicted = r.predicted_class or "- (GPU not stated)"
        lines.append(
            f"{r.id:<38} {r.context:>7} {r.reported_bytes / 1e9:>7.2f}GB"
            f" {r.estimated_bytes / 1e9:>7.2f}GB {r.relative_error:>+7.1%}"
            f"  {r.observed_class} -> {predicted}"
        )
    rate = summary.class_hit_rate
    lines += [
        "",
        f"observations: {summary.observations}",
        f"median absolute relative error of the estimated total: {summary.median_abs_error:.1%}",
        f"PROCESSOR class hit rate: {summary.class_hits}/{summary.class_scored}"
        + (f" ({rate:.0%})" if rate is not None else "")
        + " (rows with a known GPU only)",
    ]
    return "\n".join(lines)


def to_json(results: Sequence[Result], summary: Summary) -> dict[str, Any]:
    return {
        "results": [asdict(r) | {"class_hit": r.class_hit} for r in results],
        "summary": asdict(summary) | {"class_hit_rate": summary.class_hit_rate},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sizing_accuracy", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--data", type=Path, nargs="+", help="observation YAML files")
    args = parser.parse_args(argv)
    try:
        results = [evaluate(o) for o in load_observations(args.data or sorted(DATA.glob("*.yaml")))]
    except (OSError, ValueError, KeyError) as exc:
        print(f"sizing_accuracy: {exc}", file=sys.stderr)
        return 1
    if not results:
        print("sizing_accuracy: no observations", file=sys.stderr)
        return 1
    summary = summarize(results)
    print(
        json.dumps(to_json(results, summary), indent=2)
        if args.json
        else render_table(results, summary)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
