"""GPU table lookup and the decode-speed ceiling (sizing/bandwidth.py)."""

import pytest

from sizing.bandwidth import GPUS, ceiling_tok_s, find_gpu


@pytest.mark.parametrize(
    ("name", "row", "gb_s"),
    [
        ("NVIDIA GeForce RTX 3070", "RTX 3070", 448),  # nvidia-smi spelling
        ("RTX 3070", "RTX 3070", 448),
        ("rtx-4090", "RTX 4090", 1008),
        ("NVIDIA GeForce RTX 4060 Ti", "RTX 4060 Ti", 288),
        ("NVIDIA H100 80GB HBM3", "H100 SXM", 3350),  # what an H100 SXM reports
        ("NVIDIA H100 PCIe", "H100 PCIe", 2000),
        ("NVIDIA H200", "H200", 4800),
        ("NVIDIA A100-SXM4-80GB", "A100 80GB SXM", 2039),
        ("NVIDIA A100-SXM4-40GB", "A100 40GB", 1555),
    ],
)
def test_find_gpu_tolerates_nvidia_smi_names(name: str, row: str, gb_s: int) -> None:
    gpu = find_gpu(name)
    assert gpu is not None and gpu.name == row and gpu.bandwidth_gb_s == gb_s


@pytest.mark.parametrize(
    "name", ["NVIDIA GeForce RTX 3070 Ti", "NVIDIA GeForce RTX 3060 Ti", "Tesla T4", ""]
)
def test_other_cards_are_not_mistaken_for_listed_ones(name: str) -> None:
    assert find_gpu(name) is None


def test_every_gpu_row_has_a_source() -> None:
    assert all(len(g.source) > 10 and g.bandwidth_gb_s > 0 and g.vram_gb > 0 for g in GPUS)


def test_ceiling_is_bandwidth_over_bytes_per_token() -> None:
    assert ceiling_tok_s(1008e9, 4_700_000_000) == pytest.approx(214.47, abs=0.01)
    assert ceiling_tok_s(448e9, 4_700_000_000) == pytest.approx(95.32, abs=0.01)


def test_ceiling_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        ceiling_tok_s(448e9, 0)
