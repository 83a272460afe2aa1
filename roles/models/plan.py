"""Pure decisions of the models role: names as Ollama stores them, and what to add or remove."""

from __future__ import annotations

from settings import Settings


def normal_name(model: str) -> str:
    """The name /api/tags reports: a tag is added when missing ("llama3" -> "llama3:latest")."""
    last = model.rsplit("/", 1)[-1]
    return model if ":" in last else f"{model}:latest"


def wanted_models(settings: Settings) -> list[str]:
    """Every model the host should have: the pulled ones and the Modelfile variants."""
    names = [normal_name(m) for m in settings.ollama_models]
    names += [normal_name(v) for v in settings.ollama_model_variants]
    return names


def unlisted(keep: list[str], present: list[str]) -> list[str]:
    """Models present on the host that are not kept (removed only with ollama_prune_models)."""
    wanted = set(keep)
    return sorted(name for name in present if name not in wanted)
