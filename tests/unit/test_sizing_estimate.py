"""Estimator (sizing/estimate.py) and PROCESSOR strings (sizing/processor.py) vs derivable figures.

Reference model: qwen2.5-coder:7b's shape (28 layers, 4 KV heads, head dim 128, hidden 3584,
vocab 152064; config.json of Qwen/Qwen2.5-Coder-7B-Instruct) and 4.7 GB of weights
(FACTS.md / issue 3), without the trained-context cap so that 64K tokens can be asked for.
"""

import pytest

from sizing.catalog import find_model
from sizing.estimate import (
    CUDA_CONTEXT_BYTES,
    FIT_MARGIN_BYTES,
    GpuMemory,
    ModelArch,
    Settings,
    choose_batch,
    compute_buffer_bytes,
    estimate,
    fit,
    gpu_budget,
    kv_cache_bytes,
)
from sizing.processor import processor_split, processor_string
from sizing.units import GIB

QWEN7B = ModelArch(
    block_count=28,
    head_count_kv=4,
    key_length=128,
    value_length=128,
    head_count=28,
    embedding_length=3584,
    vocab_size=152064,
)
QWEN7B_WEIGHTS = 4_700_000_000
CARD_8GIB = [GpuMemory(8 * GIB)]


def test_kv_f16_at_64k_is_issue_3_figure_exactly() -> None:
    # 65536 tokens * 28 layers * 4 KV heads * (128 + 128) * 2 bytes
    assert kv_cache_bytes(QWEN7B, 65536, "f16") == 65536 * 28 * 4 * 256 * 2 == 3_758_096_384


def test_kv_quantized_uses_ggml_block_sizes() -> None:
    elements = 65536 * 28 * 4 * 256
    assert kv_cache_bytes(QWEN7B, 65536, "q8_0") == elements * 34 // 32 == 1_996_488_704
    assert kv_cache_bytes(QWEN7B, 65536, "q4_0") == elements * 18 // 32 == 1_056_964_608


def test_parallel_multiplies_the_context() -> None:
    two_slots = estimate(QWEN7B, QWEN7B_WEIGHTS, Settings(32768, parallel=2))
    assert two_slots.n_ctx_total == 65536
    assert two_slots.kv_bytes == 3_758_096_384


def test_sliding_window_layers_keep_only_window_plus_batch() -> None:
    gemma = find_model("gemma3:4b")
    assert gemma is not None
    est = estimate(gemma.arch, gemma.weights_bytes, Settings(131072, batch=512))
    per_token = 4 * (256 + 256) * 2  # 4 KV heads * (K + V) * f16
    full = 131072 * 5 * per_token  # 5 global layers hold the whole context
    sliding = (1024 + 512) * 29 * per_token  # 29 sliding layers hold window + batch
    assert est.kv_bytes == full + sliding == 2_866_806_784
    assert est.kv_bytes < 131072 * 34 * per_token / 6  # far below "every layer full"


def test_differing_key_and_value_lengths_are_counted_separately() -> None:
    ds = find_model("deepseek-coder-v2:16b")
    assert ds is not None
    assert kv_cache_bytes(ds.arch, 1, "f16") == 27 * 16 * (192 + 128) * 2


def test_context_is_capped_to_the_trained_length() -> None:
    qwen = find_model("qwen2.5-coder:7b")
    assert qwen is not None
    est = estimate(qwen.arch, qwen.weights_bytes, Settings(65536))
    assert est.num_ctx == 32768  # Ollama llm/server.go lowers num_ctx to n_ctx_train
    assert est.kv_bytes == 3_758_096_384 // 2


def test_quantized_kv_needs_flash_attention() -> None:
    est = estimate(QWEN7B, QWEN7B_WEIGHTS, Settings(8192, kv_cache="q8_0", flash_attention=False))
    assert est.kv_cache == "f16"
    assert est.flash_attention is False


def test_quantized_kv_unavailable_when_k_and_v_lengths_differ() -> None:
    ds = find_model("deepseek-coder-v2:16b")
    assert ds is not None and not ds.arch.supports_flash_attention
    est = estimate(ds.arch, ds.weights_bytes, Settings(8192, kv_cache="q4_0"))
    assert est.kv_cache == "f16"


@pytest.mark.parametrize(
    ("ctx", "expected"),
    [(2048, 512), (4096, 512), (4097, 1024), (32768, 1024), (32769, 2048), (65536, 2048)],
)
def test_batch_grows_with_context_when_there_is_room(ctx: int, expected: int) -> None:
    assert (
        choose_batch(
            ctx, predicted=1 * GIB, available=80 * GIB, flash_attention=True, small_gpu=False
        )
        == expected
    )


def test_batch_steps_down_without_headroom() -> None:
    # Ollama's own prediction for 7B at 64K: 4.7 GB + 3.76 GB f16 KV > 80% of 8 GiB -> 512.
    assert choose_batch(65536, 8_458_096_384, 8 * GIB, True, small_gpu=True) == 512
    # 70% of the card used: too much for 2048 (60%), fine for 1024 (75%).
    assert choose_batch(65536, int(0.70 * 24 * GIB), 24 * GIB, True, small_gpu=False) == 1024


def test_batch_without_flash_attention() -> None:
    assert choose_batch(65536, 0, 8 * GIB, flash_attention=False, small_gpu=True) == 256
    assert choose_batch(65536, 0, 24 * GIB, flash_attention=False, small_gpu=False) == 512
    assert choose_batch(4096, 0, 8 * GIB, flash_attention=False, small_gpu=True) == 512


def test_compute_buffer_is_logits_with_flash_attention() -> None:
    assert compute_buffer_bytes(QWEN7B, 65536, 512, True) == 4 * 512 * (3584 + 152064)


def test_compute_buffer_without_flash_attention_holds_attention_scores() -> None:
    expected = 4 * 512 * (2 * 3584 + 65536 * (1 + 28))
    assert compute_buffer_bytes(QWEN7B, 65536, 512, False) == expected
    assert expected > 10 * compute_buffer_bytes(QWEN7B, 65536, 512, True)


def test_64k_f16_is_not_100_percent_gpu_on_8gib() -> None:
    est = estimate(QWEN7B, QWEN7B_WEIGHTS, Settings(65536), CARD_8GIB)
    placed = fit(est, QWEN7B, CARD_8GIB)
    assert est.batch == 512 and est.compute_bytes == 318_767_104
    assert est.total_bytes == 4_700_000_000 + 3_758_096_384 + 318_767_104
    assert not placed.on_gpu
    # Budget 8 GiB - 457 MiB - 1 GiB - compute; each layer costs 1/29 weights + 1/28 KV: 22 fit.
    per_layer = QWEN7B_WEIGHTS // 29 + 3_758_096_384 // 28
    budget = gpu_budget(CARD_8GIB, est.compute_bytes)
    assert placed.gpu_layers == budget // per_layer == 22
    assert placed.vram_bytes == 22 * per_layer + est.compute_bytes
    assert placed.processor == processor_string(est.total_bytes, placed.vram_bytes)
    assert placed.processor == "22%/78% CPU/GPU"


def test_64k_q8_0_fits_8gib_with_little_to_spare() -> None:
    est = estimate(QWEN7B, QWEN7B_WEIGHTS, Settings(65536, kv_cache="q8_0"), CARD_8GIB)
    placed = fit(est, QWEN7B, CARD_8GIB)
    usable = 8 * GIB - CUDA_CONTEXT_BYTES - FIT_MARGIN_BYTES
    assert est.total_bytes == 4_700_000_000 + 1_996_488_704 + 318_767_104 == 7_015_255_808
    assert placed.processor == "100% GPU"
    assert placed.headroom_bytes == usable - est.total_bytes == 21_737_728  # ~22 MB to spare


def test_free_vram_below_the_total_matters() -> None:
    busy = [GpuMemory(8 * GIB, free_bytes=7 * GIB)]  # e.g. a desktop holding 1 GiB
    est = estimate(QWEN7B, QWEN7B_WEIGHTS, Settings(65536, kv_cache="q8_0"), busy)
    assert not fit(est, QWEN7B, busy).on_gpu


def test_no_gpu_or_no_room_means_100_percent_cpu() -> None:
    est = estimate(QWEN7B, QWEN7B_WEIGHTS, Settings(4096))
    assert fit(est, QWEN7B, []).processor == "100% CPU"
    tiny = [GpuMemory(1 * GIB)]  # less than the CUDA context plus the 1 GiB margin
    assert fit(est, QWEN7B, tiny).processor == "100% CPU"


def test_two_gpus_add_up() -> None:
    est = estimate(QWEN7B, QWEN7B_WEIGHTS, Settings(65536), [GpuMemory(8 * GIB)] * 2)
    assert fit(est, QWEN7B, [GpuMemory(8 * GIB)] * 2).on_gpu


def test_bad_settings_and_arch_are_rejected() -> None:
    with pytest.raises(ValueError):
        Settings(4096, kv_cache="q5_0")
    with pytest.raises(ValueError):
        ModelArch(
            block_count=4,
            head_count_kv=1,
            key_length=64,
            value_length=64,
            sliding_layers=5,
            sliding_window=512,
        )


@pytest.mark.parametrize(
    ("size", "vram", "text"),
    [
        (100, 87, "13%/87% CPU/GPU"),
        (1000, 1000, "100% GPU"),
        (1000, 0, "100% CPU"),
        (1000, 1001, "Unknown"),
        (0, 0, "100% CPU"),  # size_vram == 0 is checked first
        (200, 199, "1%/99% CPU/GPU"),  # 0.5% rounds half away from zero, as Go does
        (200, 101, "50%/50% CPU/GPU"),  # 49.5% -> 50
    ],
)
def test_processor_string_cases(size: int, vram: int, text: str) -> None:
    assert processor_string(size, vram) == text


def test_processor_split_unknown_is_none() -> None:
    assert processor_split(10, 11) is None
    assert processor_split(100, 87) == (13, 87)
