"""Models: pull what the settings list, make the context variants, prune only when asked."""

from __future__ import annotations

from pyinfra.api import deploy

from roles.models.operations import model_variant, prune_models, pull_model
from roles.models.plan import wanted_models
from settings import Settings


@deploy("Ollama models")
def ensure_models(settings: Settings) -> None:
    """Pull each listed model, create each variant, and remove unlisted ones if asked to."""
    api_url = settings.api_url
    for model in settings.ollama_models:
        pull_model(
            name=f"Model {model}",
            model=model,
            api_url=api_url,
            retries=settings.ollama_pull_retries,
        )
    for variant, spec in settings.ollama_model_variants.items():
        model_variant(
            name=f"Variant {variant} (num_ctx {spec.num_ctx})",
            variant=variant,
            base=spec.from_,
            num_ctx=spec.num_ctx,
            api_url=api_url,
        )
    if settings.ollama_prune_models:
        prune_models(name="Remove unlisted models", keep=wanted_models(settings), api_url=api_url)
