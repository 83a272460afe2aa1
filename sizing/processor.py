"""Ollama's PROCESSOR column, computed the way Ollama computes it.

Source: ollama cmd/cmd.go (ListRunningHandler), summarised in FACTS.md section 1, checked in
this order: size_vram == 0 -> "100% CPU"; size_vram == size -> "100% GPU";
size_vram > size or size == 0 -> "Unknown"; otherwise
cpu = round((size - size_vram) / size * 100) and "{cpu}%/{100-cpu}% CPU/GPU".
"""

from __future__ import annotations

import math


def processor_split(size: int, size_vram: int) -> tuple[int, int] | None:
    """Return (cpu_percent, gpu_percent) as Ollama prints them; None where it prints "Unknown"."""
    if size_vram == 0:
        return (100, 0)
    if size_vram == size:
        return (0, 100)
    if size_vram > size or size == 0:
        return None
    # Go's math.Round rounds half away from zero; Python's round() rounds half to even.
    cpu = int(math.floor((size - size_vram) / size * 100 + 0.5))
    return (cpu, 100 - cpu)


def processor_string(size: int, size_vram: int) -> str:
    """Return Ollama's PROCESSOR text: "100% GPU", "100% CPU", "13%/87% CPU/GPU" or "Unknown"."""
    if size_vram == 0:
        return "100% CPU"
    if size_vram == size:
        return "100% GPU"
    split = processor_split(size, size_vram)
    if split is None:
        return "Unknown"
    return f"{split[0]}%/{split[1]}% CPU/GPU"
