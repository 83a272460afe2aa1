"""Models: pull what the settings list, make the Modelfile variants, prune only when asked."""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import files

from roles.models.operations import model_variant, prune_models, pull_model
from roles.models.plan import wanted_models
from settings import Settings
from templates import template_path

MODELFILES = "/etc/ollama-rig/modelfiles"


@deploy("Ollama models")
def ensure_models(settings: Settings) -> None:
    """Pull each listed model, create each variant, and remove unlisted ones if asked to."""
    api_url, prefix = settings.api_url, settings.ollama_prefix
    for model in settings.ollama_models:
        pull_model(
            name=f"Model {model}",
            model=model,
            retries=settings.ollama_pull_retries,
            api_url=api_url,
            prefix=prefix,
        )
    for variant, spec in settings.ollama_model_variants.items():
        modelfile = f"{MODELFILES}/{variant.replace('/', '_').replace(':', '_')}.Modelfile"
        files.template(
            name=f"Modelfile of {variant}",
            src=template_path("Modelfile.j2"),
            dest=modelfile,
            mode="0644",
            base=spec.from_,
            num_ctx=spec.num_ctx,
        )
        model_variant(
            name=f"Variant {variant} (num_ctx {spec.num_ctx})",
            variant=variant,
            base=spec.from_,
            num_ctx=spec.num_ctx,
            modelfile=modelfile,
            api_url=api_url,
            prefix=prefix,
        )
    if settings.ollama_prune_models:
        prune_models(
            name="Remove unlisted models",
            keep=wanted_models(settings),
            api_url=api_url,
            prefix=prefix,
        )
