"""The model catalog (sizing/catalog.yaml): coverage, provenance, and the published numbers."""

import pytest

from sizing.catalog import find_model, load_catalog, smaller_variants

# FACTS.md section 4 table, copied: tag -> (layers, heads, kv heads, head dim, trained ctx, size).
FACTS_TABLE = {
    "qwen2.5-coder:1.5b": (28, 12, 2, 128, 32768, None),  # "~1.0 GB"
    "qwen2.5-coder:3b": (36, 16, 2, 128, 32768, 1_900_000_000),
    "qwen2.5-coder:7b": (28, 28, 4, 128, 32768, 4_700_000_000),
    "qwen2.5-coder:14b": (48, 40, 8, 128, 32768, 9_000_000_000),
    "qwen2.5-coder:32b": (64, 40, 8, 128, 32768, 20_000_000_000),
    "phi4-mini": (32, 24, 8, 128, 131072, 2_500_000_000),
    "deepseek-r1:8b": (36, 32, 8, 128, 131072, 5_200_000_000),
    "llama3.1:8b": (32, 32, 8, 128, 131072, 4_900_000_000),
    "gemma3:4b": (34, 8, 4, 256, 131072, 3_300_000_000),
    "gemma3:12b": (48, 16, 8, 256, 131072, 8_100_000_000),
    "gemma3:27b": (62, 32, 16, 128, 131072, 17_000_000_000),
}
FACTS_GEMMA4_SIZES = {
    "gemma4:e2b": 7.2e9,
    "gemma4:e4b": 9.6e9,
    "gemma4:26b": 18e9,
    "gemma4:31b": 20e9,
}
ISSUE_3_MODELS = [
    "llama3.1:8b",
    "llama3.2:3b",
    "llama3.2:1b",
    "mistral:7b",
    "codestral:22b",
    "deepseek-coder-v2:16b",
    "starcoder2:3b",
    "starcoder2:7b",
    "starcoder2:15b",
    "qwen2.5-coder:0.5b",
    "gemma3:1b",
]


def test_catalog_covers_facts_and_issue_3_models() -> None:
    tags = {s.tag for s in load_catalog()}
    missing = (set(FACTS_TABLE) | set(FACTS_GEMMA4_SIZES) | set(ISSUE_3_MODELS)) - tags
    assert not missing


@pytest.mark.parametrize("tag", sorted(FACTS_TABLE))
def test_architecture_matches_facts(tag: str) -> None:
    spec = find_model(tag)
    assert spec is not None
    layers, heads, kv_heads, head_dim, ctx, size = FACTS_TABLE[tag]
    arch = spec.arch
    assert (arch.block_count, arch.head_count, arch.head_count_kv) == (layers, heads, kv_heads)
    assert arch.key_length == arch.value_length == head_dim
    assert arch.context_length == ctx
    if size is not None:
        assert spec.weights_bytes == size


def test_gemma4_sizes_match_facts() -> None:
    for tag, size in FACTS_GEMMA4_SIZES.items():
        spec = find_model(tag)
        assert spec is not None and spec.weights_bytes == size


def test_every_row_has_a_source_and_sane_numbers() -> None:
    for spec in load_catalog():
        assert len(spec.source) > 20, spec.tag
        assert spec.weights_bytes > 100_000_000, spec.tag
        assert spec.arch.full_layers >= 1, spec.tag
        assert spec.arch.head_count % spec.arch.head_count_kv == 0, spec.tag  # GQA groups


def test_tags_and_aliases_are_unique() -> None:
    names = [n.lower() for s in load_catalog() for n in (s.tag, *s.aliases)]
    assert len(names) == len(set(names))


def test_lookup_by_alias_and_case() -> None:
    spec = find_model("Gemma3")
    assert spec is not None and spec.tag == "gemma3:4b"
    assert find_model("no-such-model:1b") is None


def test_fim_flags_for_autocomplete_models() -> None:
    fim = {s.tag for s in load_catalog() if s.fim}
    assert {"qwen2.5-coder:1.5b", "starcoder2:3b", "codestral:22b"} <= fim
    assert not {"llama3.1:8b", "gemma3:4b", "deepseek-r1:8b"} & fim


def test_moe_reads_only_its_active_share() -> None:
    ds = find_model("deepseek-coder-v2:16b")
    assert ds is not None and ds.is_moe
    assert ds.bytes_per_token == int(8_900_000_000 * 2.4 / 15.7)
    dense = find_model("qwen2.5-coder:7b")
    assert dense is not None and dense.bytes_per_token == dense.weights_bytes


def test_gemma4_shared_kv_layers_hold_no_cache() -> None:
    e4b = find_model("gemma4:e4b")
    assert e4b is not None
    # 42 layers, the last 18 reuse earlier caches; of layers 0-23, every 6th is global.
    assert (e4b.arch.kv_shared_layers, e4b.arch.sliding_layers, e4b.arch.full_layers) == (18, 20, 4)


def test_smaller_variants_are_same_family_largest_first() -> None:
    spec = find_model("qwen2.5-coder:14b")
    assert spec is not None
    assert [s.tag for s in smaller_variants(spec)] == [
        "qwen2.5-coder:7b",
        "qwen2.5-coder:3b",
        "qwen2.5-coder:1.5b",
        "qwen2.5-coder:0.5b",
    ]
