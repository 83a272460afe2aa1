"""Preflight's use of the sizing planner: show the plan, apply it, or stop when pinned."""

from __future__ import annotations

from typing import Any

from roles.preflight.fit import fit_models
from settings import settings_from_data

RTX3070 = {"name": "NVIDIA GeForce RTX 3070", "memory_total_mib": 8192}
RTX4090 = {"name": "NVIDIA GeForce RTX 4090", "memory_total_mib": 24564}


def fit(gpus: list[dict[str, Any]], **data: Any):
    return fit_models(settings_from_data(data), gpus)


def test_default_model_fits_an_8gb_card_at_its_trained_context() -> None:
    result = fit([RTX3070])
    assert result.refusals == []
    assert result.settings == settings_from_data({})  # nothing to change
    assert result.model_contexts == {"qwen2.5-coder:7b": 32768}
    summary = "\n".join(result.lines)
    assert "model qwen2.5-coder:7b:" in summary and "predicted 100% GPU" in summary
    assert "tok/s" in summary and "trained context 32768" in summary


def test_a_model_that_does_not_fit_gets_the_planners_settings() -> None:
    result = fit([RTX3070], ollama_models=["llama3.1:8b"])
    assert result.refusals == []
    assert result.settings.ollama_kv_cache_type == "q4_0"
    assert result.settings.ollama_flash_attention is True
    assert result.settings.ollama_context_length == 32768
    assert result.model_contexts == {"llama3.1:8b": 32768}
    assert any(
        line.startswith("  change: llama3.1:8b: kv cache q8_0 -> q4_0") for line in result.lines
    )


def test_pinned_settings_stop_with_the_reason_and_the_options() -> None:
    result = fit([RTX3070], ollama_models=["llama3.1:8b"], ollama_pinned=True)
    assert result.settings.ollama_kv_cache_type == "q8_0"  # untouched
    assert len(result.refusals) == 1
    refusal = result.refusals[0]
    assert refusal.startswith("not 100% GPU: llama3.1:8b (28%/72% CPU/GPU); settings are pinned")
    assert "kv cache q8_0 -> q4_0" in refusal and "GiB free VRAM" in refusal


def test_a_too_large_model_is_swapped_and_its_variant_follows() -> None:
    result = fit(
        [RTX3070],
        ollama_models=["qwen2.5-coder:32b"],
        ollama_model_variants={"coder-64k": {"from": "qwen2.5-coder:32b", "num_ctx": 65536}},
    )
    assert result.refusals == []
    (model,) = result.settings.ollama_models
    assert model != "qwen2.5-coder:32b" and model.startswith("qwen2.5-coder:")
    assert result.settings.ollama_model_variants["coder-64k"].from_ == model


def test_a_big_card_changes_nothing() -> None:
    data = {"ollama_models": ["qwen2.5-coder:14b", "qwen2.5-coder:1.5b"]}
    result = fit([RTX4090], **data)
    assert result.refusals == [] and result.settings == settings_from_data(data)


def test_unknown_models_are_reported_not_guessed() -> None:
    result = fit([RTX3070], ollama_models=["my-own-model:1b"])
    assert result.refusals == []
    assert "model my-own-model:1b: unknown to the catalog; size not predicted" in result.lines
    assert result.model_contexts == {"my-own-model:1b": 65536}


def test_cpu_only_hosts_are_not_sized() -> None:
    result = fit([], gpu="none")
    assert result.lines == ["models: not sized (no GPU to fit them in)"]
    assert result.settings == settings_from_data({"gpu": "none"})
