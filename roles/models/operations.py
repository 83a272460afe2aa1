"""Operations on the models of a running Ollama, through its own CLI and API."""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import FunctionCommand, operation

from facts.ollama import OllamaModelParameters, OllamaModels
from roles.models.plan import normal_name, unlisted


def _cli(prefix: str, api_url: str) -> str:
    # The CLI is a client of the server: point it at the configured address.
    return f"OLLAMA_HOST={shlex.quote(api_url)} {shlex.quote(prefix + '/bin/ollama')}"


def _run_streaming(command: str) -> bool:
    """Run a command on the host and show its output as it comes (pull progress)."""
    status, _ = host.run_shell_command(command, print_output=True)
    return bool(status)


@operation()
def pull_model(model: str, api_url: str, prefix: str, retries: int = 3):
    """
    Pull a model unless the server already has it; retry a failed pull, which resumes.

    + model: the Ollama tag
    + api_url: the server's API on the host
    + prefix: install prefix of the ollama binary
    + retries: attempts before giving up

    Ollama writes a model's manifest only after every layer is verified, so an interrupted
    pull never leaves a half-registered model; the next attempt resumes the partial blobs.
    """
    present = host.get_fact(OllamaModels, api_url=api_url)
    if present is not None and normal_name(model) in present:
        host.noop(f"model {model} is present")
        return
    q_model = shlex.quote(model)
    script = (
        f"for i in $(seq 1 {int(retries)}); do {_cli(prefix, api_url)} pull {q_model} && exit 0; "
        f'echo "ollama-rig: pull of {model} failed (attempt $i/{int(retries)}); resuming" >&2; '
        f"sleep 2; done; "
        f'echo "ollama-rig: could not pull {model} after {int(retries)} attempts" >&2; exit 1'
    )
    yield FunctionCommand(_run_streaming, (f"sh -c {shlex.quote(script)}",), {})


@operation()
def model_variant(variant: str, base: str, num_ctx: int, modelfile: str, api_url: str, prefix: str):
    """
    Create a Modelfile variant of a model with a fixed context, or fix one whose num_ctx differs.

    + variant: the variant's name
    + base: the model it is made from
    + num_ctx: its PARAMETER num_ctx
    + modelfile: the Modelfile already written on the host
    + api_url, prefix: where the server and CLI are
    """
    params = host.get_fact(OllamaModelParameters, api_url=api_url, model=variant)
    if params is not None and params.get("num_ctx") == str(num_ctx):
        host.noop(f"variant {variant} of {base} has num_ctx {num_ctx}")
        return
    yield f"{_cli(prefix, api_url)} create {shlex.quote(variant)} -f {shlex.quote(modelfile)}"


@operation()
def prune_models(keep: list[str], api_url: str, prefix: str):
    """
    Remove every model on the server that is not in keep.

    + keep: names as /api/tags lists them ("name:tag")
    + api_url, prefix: where the server and CLI are
    """
    present = host.get_fact(OllamaModels, api_url=api_url) or []
    extra = unlisted(keep, present)
    if not extra:
        host.noop("no unlisted models")
        return
    for model in extra:
        yield f"{_cli(prefix, api_url)} rm {shlex.quote(model)}"
