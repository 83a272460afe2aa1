"""Command line: ``python -m sizing [plan] ...`` and ``python -m sizing estimate ...`` (DESIGN.md).

plan (the default):
    python -m sizing --vram 8GiB --ctx 65536 [--model TAG ...] [--gpu NAME] [--json]
    A table of catalog models (or the given ones, planned to sit in VRAM together): memory,
    predicted PROCESSOR as asked, decode ceiling, and the settings that keep each 100% GPU.
    JSON: {"gpus", "pinned", "all_on_gpu", "unpredicted", "together", "models": [{"requested",
    "model", "known", "settings", "weights_bytes", "kv_bytes", "compute_bytes", "total_bytes",
    "num_ctx", "kv_cache", "processor", "on_gpu", "ceiling_tok_s", "changes", "options", "note"}]}
    ("processor" etc. describe the plan; with --pinned, the settings as asked).
estimate:
    python -m sizing estimate (--model TAG | --weights-bytes N --layers N --kv-heads N --head-dim N
      [--key-length N --value-length N] [--sliding-window N --sliding-layers N]) --ctx N
      [--parallel N] [--kv-cache f16|q8_0|q4_0] [--vram-free BYTES] --json
    JSON: weights_bytes, kv_bytes, compute_bytes, total_bytes (+ processor with --vram-free).
Sizes take plain bytes or units (8GiB, 4.7GB, 512MiB). Bad input: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from sizing.bandwidth import find_gpu
from sizing.catalog import find_model, load_catalog
from sizing.estimate import KV_TYPES, GpuMemory, ModelArch, Settings, estimate, fit
from sizing.plan import ModelPlan, Plan, plan_models
from sizing.units import GIB, human_gb, human_gib, parse_size


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error as a single line (exit 2), without the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _count(text: str) -> int:
    """A positive integer; '64k' / '64K' means 64 * 1024 (handy for contexts)."""
    t = text.strip().lower()
    try:
        value = int(t[:-1]) * 1024 if t.endswith("k") else int(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ctx", type=_count, required=True, help="num_ctx per request (e.g. 65536 or 64k)"
    )
    parser.add_argument(
        "--parallel", type=_count, default=1, help="OLLAMA_NUM_PARALLEL (default 1)"
    )
    parser.add_argument("--kv-cache", choices=KV_TYPES, default="f16", help="OLLAMA_KV_CACHE_TYPE")
    parser.add_argument(
        "--no-flash-attention", action="store_true", help="OLLAMA_FLASH_ATTENTION=0"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def plan_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="python -m sizing",
        description="Plan models to stay 100%% on the GPU.",
        epilog="Also: python -m sizing estimate --help",
    )
    parser.add_argument(
        "--vram", type=_size, action="append", help="total VRAM of a GPU (repeat per GPU)"
    )
    parser.add_argument(
        "--vram-free",
        type=_size,
        action="append",
        help="free VRAM as nvidia-smi shows it (repeat per GPU; default: the total)",
    )
    parser.add_argument(
        "--gpu", default="", help="GPU name for the bandwidth ceiling, e.g. 'RTX 3070'"
    )
    parser.add_argument(
        "--model", action="append", default=[], help="Ollama tag (repeat); default: catalog"
    )
    parser.add_argument(
        "--pinned", action="store_true", help="never change the settings, only report"
    )
    _common(parser)
    return parser


def estimate_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="python -m sizing estimate", description="Estimate one model's memory."
    )
    parser.add_argument("--model", help="Ollama tag from the catalog")
    parser.add_argument("--weights-bytes", type=_size, help="model file size (bytes or e.g. 4.7GB)")
    for flag in (
        "--layers",
        "--kv-heads",
        "--head-dim",
        "--key-length",
        "--value-length",
        "--sliding-window",
        "--sliding-layers",
        "--heads",
        "--embedding-length",
        "--vocab-size",
        "--context-length",
    ):
        parser.add_argument(flag, type=_count)
    parser.add_argument(
        "--vram-free", type=_size, help="free VRAM (nvidia-smi) to predict PROCESSOR"
    )
    _common(parser)
    return parser


def _gpus(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[GpuMemory]:
    totals: list[int] = args.vram or []
    frees: list[int] = args.vram_free or []
    if not totals and args.gpu:
        known = find_gpu(args.gpu)
        if known is None:
            parser.error(f"unknown GPU {args.gpu!r}: give --vram")
        totals = [known.vram_gb * GIB]
    if not totals and frees:
        totals = list(frees)
    if not totals:
        parser.error("give --vram SIZE (or --gpu NAME of a known card)")
    if frees and len(frees) != len(totals):
        parser.error("give one --vram-free per --vram")
    if any(f > t for f, t in zip(frees, totals, strict=False)):
        parser.error("--vram-free cannot exceed --vram")
    return [GpuMemory(t, frees[i] if frees else None, args.gpu) for i, t in enumerate(totals)]


def _target(plan: ModelPlan, asked_ctx: int) -> str:
    """Compact 'what keeps it on the GPU' cell."""
    est = plan.estimate
    if est is None:
        return plan.note
    if not plan.on_gpu:
        return "no fit: " + (plan.options[-1] if plan.options else plan.note)
    if not plan.changes:
        capped = est.num_ctx < asked_ctx
        return "as asked" + (f" (ctx capped to {est.num_ctx})" if capped else "")
    parts = [] if plan.tag == plan.requested else [str(plan.tag)]
    parts += [f"kv {est.kv_cache}", f"ctx {est.num_ctx}"]
    return ", ".join(parts) + f" ({human_gb(est.total_bytes)})"


def _row(asked: ModelPlan, final: ModelPlan, asked_ctx: int) -> list[str]:
    est = asked.estimate
    if est is None:
        return [asked.requested, "-", "-", "-", "-", "-", "-", _target(final, asked_ctx)]
    ceiling = f"{asked.ceiling_tok_s:.0f}" if asked.ceiling_tok_s else "-"
    return [
        asked.requested,
        human_gb(est.weights_bytes),
        human_gb(est.kv_bytes),
        human_gb(est.compute_bytes),
        human_gb(est.total_bytes),
        asked.processor or "-",
        ceiling,
        _target(final, asked_ctx),
    ]


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def _print_plan(plan: Plan, asked_plan: Plan, args: argparse.Namespace, together: bool) -> None:
    gpus = ", ".join(
        human_gib(g.total_bytes) + ("" if g.free_bytes is None else f" ({human_gib(g.free)} free)")
        for g in plan.gpus
    )
    gpu = find_gpu(args.gpu) if args.gpu else None
    if gpu:
        speed = f"; {gpu.name} {gpu.bandwidth_gb_s:.0f} GB/s"
    else:
        speed = f"; {args.gpu!r} not in the GPU table" if args.gpu else "; no --gpu"
        speed += ": no tok/s ceiling"
    print(f"GPU: {gpus}{speed}")
    print(
        f"Asked: context {args.ctx}, kv cache {args.kv_cache}, flash attention "
        f"{'off' if args.no_flash_attention else 'on'}, parallel {args.parallel}"
        f"{', pinned' if args.pinned else ''}; "
        f"{'planned together' if together else 'each model on its own'}"
    )
    header = [
        "MODEL",
        "WEIGHTS",
        "KV",
        "COMPUTE",
        "TOTAL",
        "AS ASKED",
        "MAX TOK/S",
        "TO STAY 100% GPU",
    ]
    print(
        _table(
            [header]
            + [_row(a, f, args.ctx) for a, f in zip(asked_plan.models, plan.models, strict=True)]
        )
    )
    details = [(m, line) for m in plan.models for line in m.changes + m.options + [m.note] if line]
    if details:
        print("\nChanges, options and notes:")
        for m, line in details:
            print(f"  {m.requested}: {line}")


def run_plan(argv: Sequence[str]) -> int:
    parser = plan_parser()
    args = parser.parse_args(argv)
    gpus = _gpus(parser, args)
    together = bool(args.model)
    names = args.model or [s.tag for s in load_catalog()]
    options = dict(
        kv_cache=args.kv_cache, flash_attention=not args.no_flash_attention, parallel=args.parallel
    )
    if together:
        plan = plan_models(names, args.ctx, gpus, pinned=args.pinned, **options)
        asked = plan_models(names, args.ctx, gpus, pinned=True, **options)
    else:
        plan = _merge(
            [plan_models([n], args.ctx, gpus, pinned=args.pinned, **options) for n in names]
        )
        asked = _merge([plan_models([n], args.ctx, gpus, pinned=True, **options) for n in names])
    if args.json:
        print(json.dumps(plan.to_dict() | {"together": together}, indent=2))
    else:
        _print_plan(plan, asked, args, together)
    return 0


def _merge(plans: list[Plan]) -> Plan:
    return Plan(
        [m for p in plans for m in p.models],
        plans[0].gpus if plans else [],
        plans[0].pinned if plans else False,
    )


def _arch_from_args(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> tuple[ModelArch, int]:
    if args.model:
        explicit = [
            f for f in ("weights_bytes", "layers", "kv_heads", "head_dim") if getattr(args, f)
        ]
        if explicit:
            parser.error("give either --model or the architecture numbers, not both")
        spec = find_model(args.model)
        if spec is None:
            parser.error(
                f"model {args.model!r} is unknown to the catalog; "
                "give the architecture numbers instead"
            )
        return spec.arch, spec.weights_bytes
    missing = [
        f"--{f.replace('_', '-')}"
        for f in ("weights_bytes", "layers", "kv_heads", "head_dim")
        if getattr(args, f) is None
    ]
    if missing:
        parser.error(f"give --model TAG or {', '.join(missing)}")
    if bool(args.sliding_window) != bool(args.sliding_layers):
        parser.error("--sliding-window and --sliding-layers go together")
    try:
        arch = ModelArch(
            block_count=args.layers,
            head_count_kv=args.kv_heads,
            key_length=args.key_length or args.head_dim,
            value_length=args.value_length or args.head_dim,
            head_count=args.heads or 0,
            embedding_length=args.embedding_length or 0,
            vocab_size=args.vocab_size or 0,
            context_length=args.context_length or 0,
            sliding_window=args.sliding_window or 0,
            sliding_layers=args.sliding_layers or 0,
        )
    except ValueError as exc:
        parser.error(str(exc))
    return arch, args.weights_bytes


def run_estimate(argv: Sequence[str]) -> int:
    parser = estimate_parser()
    args = parser.parse_args(argv)
    arch, weights = _arch_from_args(parser, args)
    settings = Settings(args.ctx, args.kv_cache, not args.no_flash_attention, args.parallel)
    gpus = [GpuMemory(args.vram_free, args.vram_free)] if args.vram_free is not None else []
    est = estimate(arch, weights, settings, gpus)
    out: dict[str, Any] = {
        "weights_bytes": est.weights_bytes,
        "kv_bytes": est.kv_bytes,
        "compute_bytes": est.compute_bytes,
        "total_bytes": est.total_bytes,
        "num_ctx": est.num_ctx,
        "n_ctx_total": est.n_ctx_total,
        "batch": est.batch,
        "kv_cache": est.kv_cache,
        "flash_attention": est.flash_attention,
    }
    if args.vram_free is not None:
        placed = fit(est, arch, gpus)
        out |= {
            "processor": placed.processor,
            "vram_bytes": placed.vram_bytes,
            "gpu_layers": placed.gpu_layers,
            "total_layers": placed.total_layers,
        }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for key, value in out.items():
            shown = f"{value} ({human_gb(value)})" if key.endswith("_bytes") else value
            print(f"{key}: {shown}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] == "estimate":
            return run_estimate(args[1:])
        return run_plan(args[1:] if args and args[0] == "plan" else args)
    except BrokenPipeError:  # output piped into e.g. `head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
