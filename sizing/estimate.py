"""Memory estimate for one model under Ollama, and the PROCESSOR string it would show.

Sources (see also FACTS.md section 4):
- KV cache: ``n_ctx_total * sum over cached layers of n_head_kv * (key_length + value_length)
  * bytes_per_element`` with ``n_ctx_total = num_ctx * parallel``; f16 2 bytes, q8_0 34/32,
  q4_0 18/32 (ggml block sizes). Sliding-window layers keep ``parallel * window + batch`` tokens:
  ollama fs/ggml/ggml.go GraphSize (gemma3 case).
- Batch: Ollama's automatic generation batch, server/sched.go ``automaticGenerationBatch``:
  512; 1024 when the context is over 4096; 2048 over 32768; stepped back down to 512 while the
  predicted VRAM leaves too little headroom; 512 (or 256 on a <= 8 GiB CUDA card over 4096
  tokens) with flash attention off.
- Compute buffer: the worst-case graph llama.cpp reserves for one batch. With flash attention
  it is dominated by the f32 output logits, ``4 * batch * (embedding + vocab)``; without it the
  f32 attention scores ``4 * batch * (2 * embedding + n_ctx_total * (1 + heads))`` usually win.
  Both terms are the qwen2/llama cases of Ollama's GraphSize; calibration against a real
  ``CUDA0 compute buffer size`` log line is still to do (unverified).
- Fit: llama-server ``--fit`` keeps about 1 GiB of each device free and a CUDA context takes
  about 457 MiB (ollama ml/device.go MinimumMemory); the model is 100% GPU when
  ``weights + kv + compute <= free - 457 MiB - 1 GiB`` (FACTS.md rule of thumb). Otherwise whole
  layers go to the GPU until the budget is used up and the rest stay on the CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from sizing.processor import processor_string
from sizing.units import GIB, MIB

KV_TYPES = ("f16", "q8_0", "q4_0")
KV_BYTES_PER_ELEMENT = {"f16": Fraction(2), "q8_0": Fraction(34, 32), "q4_0": Fraction(18, 32)}

CUDA_CONTEXT_BYTES = 457 * MIB  # ollama ml/device.go MinimumMemory for CUDA
FIT_MARGIN_BYTES = 1 * GIB  # llama.cpp --fit leaves this much free per device (FACTS.md 4)

# Used only when the caller gives no number (explicit-architecture mode of the CLI).
DEFAULT_EMBEDDING = 4096
DEFAULT_VOCAB = (
    152064  # Qwen2.5's output width, high among the catalog: errs towards a larger buffer
)
DEFAULT_HEADS = 32

BATCH_DEFAULT, BATCH_CONSTRAINED, BATCH_MEDIUM, BATCH_LARGE = 512, 256, 1024, 2048


@dataclass(frozen=True)
class ModelArch:
    """The architecture numbers the estimate needs (GGUF ``<arch>.*`` keys; 0 = unknown/none)."""

    block_count: int
    head_count_kv: int
    key_length: int
    value_length: int
    head_count: int = 0
    embedding_length: int = 0
    vocab_size: int = 0
    context_length: int = 0
    sliding_window: int = 0
    sliding_layers: int = 0
    swa_head_count_kv: int = 0
    swa_key_length: int = 0
    swa_value_length: int = 0
    kv_shared_layers: int = 0

    def __post_init__(self) -> None:
        if min(self.block_count, self.head_count_kv, self.key_length, self.value_length) <= 0:
            raise ValueError("layers, kv heads, key length and value length must be positive")
        if self.full_layers < 0:
            raise ValueError("sliding_layers + kv_shared_layers exceed block_count")
        if self.sliding_layers and self.sliding_window <= 0:
            raise ValueError("sliding layers need a sliding window")

    @property
    def full_layers(self) -> int:
        """Layers that cache the whole context."""
        return self.block_count - self.kv_shared_layers - self.sliding_layers

    @property
    def swa_elements(self) -> int:
        """K+V elements per token of one sliding-window layer."""
        heads = self.swa_head_count_kv or self.head_count_kv
        return heads * (
            (self.swa_key_length or self.key_length) + (self.swa_value_length or self.value_length)
        )

    @property
    def full_elements(self) -> int:
        """K+V elements per token of one full-attention layer."""
        return self.head_count_kv * (self.key_length + self.value_length)

    @property
    def supports_flash_attention(self) -> bool:
        """Ollama allows flash attention only where K and V heads have the same length.

        Source: ollama fs/ggml/ggml.go SupportsFlashAttention.
        """
        swa_same = (self.swa_key_length or self.key_length) == (
            self.swa_value_length or self.value_length
        )
        return self.key_length == self.value_length and swa_same


@dataclass(frozen=True)
class Settings:
    """What a user sets: num_ctx, OLLAMA_KV_CACHE_TYPE, OLLAMA_FLASH_ATTENTION, ..._NUM_PARALLEL."""

    num_ctx: int
    kv_cache: str = "f16"
    flash_attention: bool = True
    parallel: int = 1
    batch: int | None = None  # None = Ollama's automatic choice

    def __post_init__(self) -> None:
        if self.kv_cache not in KV_TYPES:
            raise ValueError(
                f"kv cache must be one of {', '.join(KV_TYPES)}, not {self.kv_cache!r}"
            )
        if self.num_ctx <= 0 or self.parallel <= 0:
            raise ValueError("context and parallel must be positive")


@dataclass(frozen=True)
class GpuMemory:
    """One GPU: total VRAM, free VRAM as nvidia-smi shows it before loading (None: idle), name."""

    total_bytes: int
    free_bytes: int | None = None
    name: str = ""

    @property
    def free(self) -> int:
        return self.total_bytes if self.free_bytes is None else self.free_bytes

    @property
    def usable(self) -> int:
        """What llama-server may fill: free minus its CUDA context and the --fit margin."""
        return max(0, self.free - CUDA_CONTEXT_BYTES - FIT_MARGIN_BYTES)


@dataclass(frozen=True)
class Estimate:
    """Bytes one loaded model needs, with the settings actually in effect."""

    weights_bytes: int
    kv_bytes: int
    compute_bytes: int
    num_ctx: int
    n_ctx_total: int
    batch: int
    kv_cache: str
    flash_attention: bool

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes + self.compute_bytes


@dataclass(frozen=True)
class Fit:
    """Where the model would live: Ollama's PROCESSOR text and the sizes behind it."""

    processor: str
    size_bytes: int
    vram_bytes: int
    gpu_layers: int
    total_layers: int
    headroom_bytes: int  # GPU budget left after weights + KV (negative: short by that much)

    @property
    def on_gpu(self) -> bool:
        return self.processor == "100% GPU"


def kv_cache_bytes(
    arch: ModelArch, n_ctx_total: int, kv_cache: str, parallel: int = 1, batch: int = BATCH_DEFAULT
) -> int:
    """KV cache bytes for `n_ctx_total` tokens (FACTS.md 4; sliding layers: Ollama's GraphSize)."""
    swa_tokens = min(n_ctx_total, parallel * arch.sliding_window + batch)
    elements = n_ctx_total * arch.full_layers * arch.full_elements
    elements += swa_tokens * arch.sliding_layers * arch.swa_elements
    per_element = KV_BYTES_PER_ELEMENT[kv_cache]
    return elements * per_element.numerator // per_element.denominator


def ollama_predicted_vram(arch: ModelArch, weights_bytes: int, n_ctx_total: int) -> int:
    """Ollama's rough prediction that steers the batch: f16 KV over all layers.

    Source: ollama llm/llama_server.go PredictServerVRAM.
    """
    kv_heads = min(arch.head_count_kv, arch.swa_head_count_kv or arch.head_count_kv)
    head_dim = (
        arch.embedding_length // arch.head_count
        if arch.head_count and arch.embedding_length
        else arch.key_length
    )
    return weights_bytes + 2 * arch.block_count * kv_heads * head_dim * n_ctx_total * 2


def _batch_surcharge(batch: int) -> int:
    """Extra VRAM Ollama budgets for a larger batch (server/sched.go generationBatchSurcharge)."""
    return 2 * GIB if batch >= BATCH_LARGE else 768 * MIB if batch >= BATCH_MEDIUM else 0


def _batch_fits(batch: int, predicted: int, available: int) -> bool:
    """server/sched.go generationBatchFits: keep 20% free, 25%/40% headroom for 1024/2048."""
    if predicted == 0 or available == 0:
        return True
    threshold = available * 80 // 100
    headroom_pct = 60 if batch >= BATCH_LARGE else 75 if batch >= BATCH_MEDIUM else 100
    if predicted > threshold or predicted > available * headroom_pct // 100:
        return False
    return _batch_surcharge(batch) <= threshold - predicted


def choose_batch(
    n_ctx_total: int, predicted: int, available: int, flash_attention: bool, small_gpu: bool
) -> int:
    """Ollama's automatic num_batch (server/sched.go automaticGenerationBatch)."""
    if not flash_attention:
        # Without flash attention the scores grow with batch * context, so Ollama stays small.
        return BATCH_CONSTRAINED if n_ctx_total > 4096 and small_gpu else BATCH_DEFAULT
    batch = (
        BATCH_LARGE
        if n_ctx_total > 32768
        else BATCH_MEDIUM
        if n_ctx_total > 4096
        else BATCH_DEFAULT
    )
    while batch > BATCH_DEFAULT and not _batch_fits(batch, predicted, available):
        batch = BATCH_MEDIUM if batch > BATCH_MEDIUM else BATCH_DEFAULT
    return batch


def compute_buffer_bytes(
    arch: ModelArch, n_ctx_total: int, batch: int, flash_attention: bool
) -> int:
    """Worst-case compute buffer for one batch (model and source: module docstring)."""
    embedding = arch.embedding_length or DEFAULT_EMBEDDING
    logits = 4 * batch * (embedding + (arch.vocab_size or DEFAULT_VOCAB))
    if flash_attention:
        return logits
    heads = arch.head_count or DEFAULT_HEADS
    return max(logits, 4 * batch * (2 * embedding + n_ctx_total * (1 + heads)))


def estimate(
    arch: ModelArch, weights_bytes: int, settings: Settings, gpus: Sequence[GpuMemory] = ()
) -> Estimate:
    """Estimate weights, KV cache and compute buffer (the GPUs only steer the batch choice)."""
    num_ctx = (
        min(settings.num_ctx, arch.context_length) if arch.context_length else settings.num_ctx
    )
    n_ctx_total = num_ctx * settings.parallel
    flash = settings.flash_attention and arch.supports_flash_attention
    kv_type = settings.kv_cache if flash else "f16"  # a quantized cache needs flash attention
    batch = settings.batch or choose_batch(
        n_ctx_total,
        ollama_predicted_vram(arch, weights_bytes, n_ctx_total),
        sum(g.free for g in gpus),
        flash,
        any(g.free <= 8 * GIB for g in gpus),
    )
    return Estimate(
        weights_bytes=weights_bytes,
        kv_bytes=kv_cache_bytes(arch, n_ctx_total, kv_type, settings.parallel, batch),
        compute_bytes=compute_buffer_bytes(arch, n_ctx_total, batch, flash),
        num_ctx=num_ctx,
        n_ctx_total=n_ctx_total,
        batch=batch,
        kv_cache=kv_type,
        flash_attention=flash,
    )


def gpu_budget(gpus: Sequence[GpuMemory], compute_bytes: int, used_bytes: int = 0) -> int:
    """Bytes left for weights + KV: per GPU usable VRAM minus compute buffer, minus loaded bytes."""
    return sum(max(0, g.usable - compute_bytes) for g in gpus) - used_bytes


def required_free_bytes(est: Estimate) -> int:
    """Free VRAM (nvidia-smi) one GPU needs to hold this model 100%."""
    return est.total_bytes + CUDA_CONTEXT_BYTES + FIT_MARGIN_BYTES


def fit(est: Estimate, arch: ModelArch, gpus: Sequence[GpuMemory], used_bytes: int = 0) -> Fit:
    """Predict Ollama's PROCESSOR string on these GPUs, `used_bytes` being taken already."""
    total_layers = arch.block_count + 1  # llama.cpp counts the output layer too ("offloaded 29/29")
    need = est.weights_bytes + est.kv_bytes
    if not gpus:
        return Fit(processor_string(est.total_bytes, 0), est.total_bytes, 0, 0, total_layers, -need)
    budget = gpu_budget(gpus, est.compute_bytes, used_bytes)
    if need <= budget:
        return Fit(
            processor_string(est.total_bytes, est.total_bytes),
            est.total_bytes,
            est.total_bytes,
            total_layers,
            total_layers,
            budget - need,
        )
    # Partial offload: whole repeating layers (weights share + KV share) until the budget runs out.
    per_layer = est.weights_bytes // total_layers + est.kv_bytes // arch.block_count
    layers = min(arch.block_count, max(0, budget) // per_layer) if per_layer else 0
    vram = layers * per_layer + est.compute_bytes if layers else 0
    return Fit(
        processor_string(est.total_bytes, vram),
        est.total_bytes,
        vram,
        layers,
        total_layers,
        budget - need,
    )
