"""parse_size and the human formats (sizing/units.py)."""

import pytest

from sizing.units import human_gb, human_gib, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8GiB", 8 * 1024**3),
        ("4.7GB", 4_700_000_000),  # decimal, as `ollama list` prints
        ("512MiB", 512 * 1024**2),
        ("123456", 123456),
        ("0", 0),
        ("8 gib", 8 * 1024**3),  # case and inner space do not matter
        (" 1.5 GiB ", 1_610_612_736),
        ("986MB", 986_000_000),
        ("10B", 10),
        ("2TiB", 2 * 1024**4),
    ],
)
def test_parse_size_accepts(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "8XB", "-1", "1.5", "GB", "8 GiB extra", "1e9"])
def test_parse_size_rejects_with_one_line(text: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_size(text)
    assert "\n" not in str(err.value)


def test_human_formats_match_ollama_and_vram_style() -> None:
    assert human_gb(3_758_096_384) == "3.8 GB"  # issue 3: "about 3.8 GB of KV cache"
    assert human_gb(986_060_385) == "986.1 MB"
    assert human_gib(8 * 1024**3) == "8.0 GiB"
    assert human_gib(457 * 1024**2) == "457.0 MiB"
