"""The model catalog (sizing/catalog.yaml) as dataclasses, looked up by Ollama tag."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from sizing.estimate import ModelArch
from sizing.units import parse_size

CATALOG_PATH = Path(__file__).with_name("catalog.yaml")

_ARCH_KEYS = (
    "block_count",
    "head_count",
    "head_count_kv",
    "embedding_length",
    "vocab_size",
    "context_length",
    "sliding_window",
    "sliding_layers",
    "swa_head_count_kv",
    "kv_shared_layers",
)


@dataclass(frozen=True)
class ModelSpec:
    """One catalog row: an Ollama tag, its weights size, architecture and provenance."""

    tag: str
    family: str
    weights_bytes: int
    arch: ModelArch
    fim: bool
    source: str
    aliases: tuple[str, ...] = ()
    params_b: float | None = None
    active_params_b: float | None = None
    unverified: tuple[str, ...] = ()
    note: str = ""

    @property
    def is_moe(self) -> bool:
        return self.active_params_b is not None

    @property
    def bytes_per_token(self) -> int:
        """Weight bytes read per decoded token: the whole file, or the active share of an MoE."""
        if self.params_b and self.active_params_b:
            return int(self.weights_bytes * self.active_params_b / self.params_b)
        return self.weights_bytes


def _arch_from_row(row: dict[str, Any]) -> ModelArch:
    """Build the architecture; head_dim means key_length = value_length where those are absent."""
    head_dim = row.get("head_dim", 0)
    swa_dim = row.get("swa_head_dim", 0)
    values = {k: int(row.get(k, 0)) for k in _ARCH_KEYS}
    return ModelArch(
        key_length=int(row.get("key_length", head_dim)),
        value_length=int(row.get("value_length", head_dim)),
        swa_key_length=int(swa_dim),
        swa_value_length=int(swa_dim),
        **values,
    )


def _unverified(value: Any) -> tuple[str, ...]:
    """`unverified: true` marks the whole row; a list names the fields."""
    if value is True:
        return ("all",)
    return tuple(str(v) for v in value or ())


def _spec_from_row(row: dict[str, Any]) -> ModelSpec:
    weights = row["weights"]
    return ModelSpec(
        tag=row["tag"],
        family=row["family"],
        weights_bytes=weights if isinstance(weights, int) else parse_size(str(weights)),
        arch=_arch_from_row(row),
        fim=bool(row["fim"]),
        source=" ".join(str(row["source"]).split()),
        aliases=tuple(row.get("aliases", ())),
        params_b=row.get("params_b"),
        active_params_b=row.get("active_params_b"),
        unverified=_unverified(row.get("unverified")),
        note=" ".join(str(row.get("note", "")).split()),
    )


@lru_cache(maxsize=4)
def load_catalog(path: Path = CATALOG_PATH) -> tuple[ModelSpec, ...]:
    """Read and validate the catalog; a malformed row raises ValueError naming the row."""
    rows = yaml.safe_load(path.read_text())["models"]
    specs = []
    for row in rows:
        try:
            specs.append(_spec_from_row(row))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"catalog row {row.get('tag', row)!r}: {exc}") from exc
    return tuple(specs)


def find_model(name: str, catalog: tuple[ModelSpec, ...] | None = None) -> ModelSpec | None:
    """The catalog row for an Ollama model name (tag or alias, case-insensitive), or None."""
    wanted = name.strip().lower()
    for spec in catalog if catalog is not None else load_catalog():
        if wanted == spec.tag.lower() or wanted in (a.lower() for a in spec.aliases):
            return spec
    return None


def smaller_variants(
    spec: ModelSpec, catalog: tuple[ModelSpec, ...] | None = None
) -> list[ModelSpec]:
    """Rows of the same family with smaller weights, largest first (the planner's fallbacks)."""
    rows = catalog if catalog is not None else load_catalog()
    same = [s for s in rows if s.family == spec.family and s.weights_bytes < spec.weights_bytes]
    return sorted(same, key=lambda s: s.weights_bytes, reverse=True)
