"""Planner (sizing/plan.py): what it changes, in which order, and what it refuses when pinned.

Card: 8 GiB, idle. Usable for one model: 8 GiB - 457 MiB CUDA context - 1 GiB llama.cpp margin
= 7,036,993,536 bytes, minus that model's compute buffer.
"""

from dataclasses import replace

import pytest

from sizing.catalog import find_model, load_catalog
from sizing.estimate import CUDA_CONTEXT_BYTES, GpuMemory
from sizing.plan import UNKNOWN_MODEL, plan_models
from sizing.units import GIB

CARD_8GIB = [GpuMemory(8 * GIB)]


def _with_long_context_qwen7b() -> tuple:
    """The catalog plus a hypothetical qwen2.5-coder:7b build trained for 128K (no 32K cap)."""
    base = find_model("qwen2.5-coder:7b")
    assert base is not None
    row = replace(
        base,
        tag="qwen2.5-coder:7b-128k",
        aliases=(),
        family="test-only",
        arch=replace(base.arch, context_length=131072),
    )
    return (*load_catalog(), row)


def test_kv_q8_0_is_tried_first_and_explained() -> None:
    plan = plan_models(
        ["qwen2.5-coder:7b-128k"], 65536, CARD_8GIB, catalog=_with_long_context_qwen7b()
    )
    (model,) = plan.models
    assert model.on_gpu and model.processor == "100% GPU"
    assert model.settings is not None and model.settings.kv_cache == "q8_0"
    assert model.settings.num_ctx == 65536  # context kept
    assert model.changes == [
        "kv cache f16 -> q8_0: 3.8 GB -> 2.0 GB KV so qwen2.5-coder:7b-128k fits 8 GiB"
    ]


def test_context_is_halved_when_quantizing_is_not_enough() -> None:
    # llama3.1:8b at 64K: q4_0 KV is still 2.4 GB, 4.9 + 2.4 + 0.27 GB > 7.04 GB; at 32K it fits.
    (model,) = plan_models(["llama3.1:8b"], 65536, CARD_8GIB).models
    assert model.on_gpu
    assert model.estimate is not None
    assert (model.estimate.kv_cache, model.estimate.num_ctx) == ("q4_0", 32768)
    assert model.changes == [
        "kv cache f16 -> q4_0: 8.6 GB -> 2.4 GB KV",
        "context 65536 -> 32768: 2.4 GB -> 1.2 GB KV so llama3.1:8b fits 8 GiB",
    ]


def test_context_is_not_halved_below_the_floor() -> None:
    (model,) = plan_models(["llama3.1:8b"], 65536, CARD_8GIB, ctx_floor=65536).models
    assert model.tag == "llama3.2:3b"  # no smaller context allowed, so a smaller model instead
    assert model.estimate is not None and model.estimate.num_ctx == 65536


def test_smaller_variant_is_the_last_resort() -> None:
    (model,) = plan_models(["qwen2.5-coder:14b"], 32768, CARD_8GIB).models
    assert model.tag == "qwen2.5-coder:7b"  # 9.0 GB of weights cannot fit 8 GiB at any context
    assert model.on_gpu
    assert model.changes[0].startswith("model qwen2.5-coder:14b -> qwen2.5-coder:7b")


def test_flash_attention_is_turned_on_for_a_quantized_cache() -> None:
    (model,) = plan_models(["llama3.2:3b"], 65536, CARD_8GIB, flash_attention=False).models
    assert model.on_gpu
    assert model.settings is not None and model.settings.flash_attention
    assert model.changes[0].startswith("flash attention off -> on")


def test_pinned_settings_are_reported_not_changed() -> None:
    plan = plan_models(["llama3.1:8b"], 65536, CARD_8GIB, pinned=True)
    (model,) = plan.models
    assert not plan.all_on_gpu
    assert model.changes == []
    assert model.settings is not None and (model.settings.kv_cache, model.settings.num_ctx) == (
        "f16",
        65536,
    )
    assert model.processor == "50%/50% CPU/GPU"
    assert "pinned" in model.note
    assert model.options[0].startswith("kv cache f16 -> q4_0")
    assert model.options[-1].startswith("a GPU with at least 14.3 GiB free VRAM")


def test_models_loaded_together_share_the_card() -> None:
    alone = plan_models(["qwen2.5-coder:7b"], 32768, CARD_8GIB)
    assert alone.models[0].changes == []  # 6.9 GB fits on its own
    plan = plan_models(["qwen2.5-coder:7b", "qwen2.5-coder:1.5b"], 32768, CARD_8GIB)
    assert plan.all_on_gpu
    totals = [m.estimate.total_bytes for m in plan.models if m.estimate]
    usable = 8 * GIB - CUDA_CONTEXT_BYTES - 1 * GIB
    assert sum(totals) + CUDA_CONTEXT_BYTES <= usable  # second runner, second CUDA context
    assert plan.models[0].changes  # the first model had to make room


def test_models_planned_separately_do_not_share() -> None:
    plan = plan_models(["qwen2.5-coder:7b", "qwen2.5-coder:1.5b"], 32768, CARD_8GIB, together=False)
    assert plan.all_on_gpu
    assert all(m.changes == [] for m in plan.models)


def test_unknown_model_does_not_crash() -> None:
    plan = plan_models(["no-such-model:7b", "qwen2.5-coder:1.5b"], 8192, CARD_8GIB)
    unknown, known = plan.models
    assert not unknown.known and unknown.note == UNKNOWN_MODEL and unknown.processor is None
    assert known.on_gpu
    assert plan.unpredicted == ["no-such-model:7b"]
    assert not plan.all_on_gpu  # an unpredicted model is not known to be on the GPU
    assert plan.to_dict()["models"][0]["note"] == UNKNOWN_MODEL


def test_no_gpu_runs_on_cpu() -> None:
    (model,) = plan_models(["qwen2.5-coder:1.5b"], 8192, []).models
    assert model.processor == "100% CPU" and "no GPU" in model.note and model.changes == []


def test_hopeless_model_lists_options() -> None:
    (model,) = plan_models(["codestral:22b"], 32768, CARD_8GIB).models
    assert not model.on_gpu
    assert model.options and model.options[-1].startswith("a GPU with at least")


@pytest.mark.parametrize(
    ("name", "expected"), [("NVIDIA GeForce RTX 3070", 448e9 / 4.7e9), ("", None)]
)
def test_ceiling_needs_a_known_gpu(name: str, expected: float | None) -> None:
    (model,) = plan_models(["qwen2.5-coder:7b"], 8192, [GpuMemory(8 * GIB, name=name)]).models
    assert model.ceiling_tok_s == (pytest.approx(expected) if expected else None)
