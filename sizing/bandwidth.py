"""Decode-speed ceiling from memory bandwidth, and a GPU table with sources.

Decoding one token streams every weight it uses through the GPU once, so
``tok/s <= bandwidth / bytes read per token`` (whole file for a dense model, the active experts
for an MoE; FACTS.md section 4). Real decode speed is lower: KV reads, kernels and sampling add
time. The VRAM column is the marketed size (read as GiB); it is only a default for ``--vram``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FACTS = "FACTS.md section 4"


@dataclass(frozen=True)
class GpuSpec:
    """One GPU model: memory bandwidth (GB/s, decimal), VRAM (GB as marketed), names, source."""

    name: str
    bandwidth_gb_s: float
    vram_gb: int
    aliases: tuple[str, ...]
    source: str
    unverified: bool = False

    @property
    def bandwidth_bytes_per_s(self) -> float:
        return self.bandwidth_gb_s * 1e9


# Aliases are written in canonical form (see canonical_gpu_name): what nvidia-smi prints for the
# card, plus the short names people type.
GPUS: tuple[GpuSpec, ...] = (
    GpuSpec("RTX 3060", 360, 12, ("3060",), FACTS),
    GpuSpec("RTX 3070", 448, 8, ("3070",), FACTS + " (marked unverified there)", unverified=True),
    GpuSpec("RTX 3080", 760, 10, ("3080",), FACTS),
    GpuSpec("RTX 3090", 936, 24, ("3090",), FACTS),
    GpuSpec(
        "RTX 4060 Ti",
        288,
        8,
        ("4060 ti",),
        FACTS + " (8 or 16 GB; marked unverified there)",
        unverified=True,
    ),
    GpuSpec("RTX 4070", 504, 12, ("4070",), FACTS),
    GpuSpec("RTX 4090", 1008, 24, ("4090",), FACTS),
    GpuSpec("RTX 5090", 1792, 32, ("5090",), FACTS),
    GpuSpec(
        "H100 SXM", 3350, 80, ("h100 sxm", "h100 sxm5", "h100 sxm5 80gb", "h100 80gb hbm3"), FACTS
    ),
    GpuSpec(
        "H100 PCIe",
        2000,
        80,
        ("h100 pcie", "h100 80gb pcie"),
        "NVIDIA H100 PCIe product brief PB-11133-001 v02 ('greater than 2,000 GBps')",
    ),
    GpuSpec(
        "H200",
        4800,
        141,
        ("h200", "h200 sxm", "h200 141gb hbm3e"),
        "third-party spec pages (openmetal.io H200 article, lzwjava.github.io H200 specs:"
        " 141GB HBM3e,"
        " 4.8 TB/s); NVIDIA's own datasheet not seen here",
        unverified=True,
    ),
    GpuSpec(
        "A100 40GB",
        1555,
        40,
        ("a100 sxm4 40gb", "a100 pcie 40gb", "a100 40gb"),
        "NVIDIA A100 datasheet as quoted by glennklockwood.com/garden/processors/A100 and"
        " techpowerup.com (1,555 GB/s)",
    ),
    GpuSpec(
        "A100 80GB SXM",
        2039,
        80,
        ("a100 sxm4 80gb", "a100 80gb sxm", "a100 sxm 80gb"),
        "NVIDIA A100 datasheet as quoted by glennklockwood.com/garden/processors/A100 (2,039 GB/s)",
    ),
    GpuSpec(
        "A100 80GB PCIe",
        1935,
        80,
        ("a100 80gb pcie", "a100 pcie 80gb"),
        "thundercompute.com A100 specs table (1,935 GB/s for A100 PCIe 80GB)",
        unverified=True,
    ),
)

_NOISE = {"nvidia", "geforce", "rtx", "tesla"}


def canonical_gpu_name(name: str) -> str:
    """'NVIDIA GeForce RTX 3070' -> '3070'; 'NVIDIA A100-SXM4-80GB' -> 'a100 sxm4 80gb'."""
    words = re.sub(r"[^a-z0-9]+", " ", name.lower()).split()
    return " ".join(w for w in words if w not in _NOISE)


def find_gpu(name: str) -> GpuSpec | None:
    """The table row for a GPU name as nvidia-smi prints it or as a user types it, or None."""
    wanted = canonical_gpu_name(name)
    for gpu in GPUS:
        if wanted == canonical_gpu_name(gpu.name) or wanted in gpu.aliases:
            return gpu
    return None


def ceiling_tok_s(bandwidth_bytes_per_s: float, bytes_read_per_token: int) -> float:
    """Upper limit on decode tokens per second: bandwidth / bytes of weights read per token."""
    if bytes_read_per_token <= 0 or bandwidth_bytes_per_s <= 0:
        raise ValueError("bandwidth and bytes per token must be positive")
    return bandwidth_bytes_per_s / bytes_read_per_token
