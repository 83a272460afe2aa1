"""Operations on the models of a running Ollama, through its HTTP API (FACTS.md section 2).

The API is the same whether Ollama runs natively, in a container or in a guest, so the
models role needs nothing but the API's address on the host.
"""

from __future__ import annotations

import json
import shlex

from pyinfra import host
from pyinfra.api import FunctionCommand, operation

from facts.ollama import OllamaModelParameters, OllamaModels
from roles.models.plan import normal_name, unlisted

# Reads /api/pull's NDJSON stream: prints each new status and every 10% of a layer, exits 0
# only when the last status is "success" (a failed pull ends with {"error": ...}, HTTP 200).
PULL_PROGRESS_AWK = r"""
function str(k,  s) { if (!match($0, "\"" k "\": ?\"[^\"]*\"")) return "";
  s = substr($0, RSTART, RLENGTH); sub(/^[^:]*: ?"/, "", s); sub(/"$/, "", s); return s }
function num(k,  s) { if (!match($0, "\"" k "\": ?[0-9]+")) return -1;
  s = substr($0, RSTART, RLENGTH); sub(/^[^:]*: ?/, "", s); return s + 0 }
{ e = str("error"); if (e != "") { print "error: " e; failed = 1; next }
  st = str("status"); t = num("total"); c = num("completed"); pct = -1
  if (t > 0 && c >= 0) pct = int(c * 100 / t)
  if (st != last || pct >= shown + 10) {
    print (pct >= 0 ? st " " pct "%" : st); last = st; shown = (pct >= 0 ? pct : -10) } }
END { exit (last == "success" && !failed) ? 0 : 1 }
"""


def _post(api_url: str, path: str, body: dict[str, object], stream: bool = False) -> str:
    flags = "-fsSN" if stream else "-fsS"
    return f"curl {flags} -d {shlex.quote(json.dumps(body))} {shlex.quote(api_url + path)}"


def _run_streaming(command: str) -> bool:
    """Run a command on the host and show its output as it comes (pull progress)."""
    status, _ = host.run_shell_command(command, print_output=True)
    return bool(status)


@operation()
def pull_model(model: str, api_url: str, retries: int = 3):
    """
    Pull a model unless the server already has it; retry a failed pull, which resumes.

    + model: the Ollama tag
    + api_url: the server's API on the host
    + retries: attempts before giving up

    Ollama writes a model's manifest only after every layer is verified, so an interrupted
    pull never leaves a half-registered model; the next attempt resumes the partial blobs.
    """
    present = host.get_fact(OllamaModels, api_url=api_url)
    if present is not None and normal_name(model) in present:
        host.noop(f"model {model} is present")
        return
    pull = _post(api_url, "/api/pull", {"model": model, "stream": True}, stream=True)
    script = (
        f"for i in $(seq 1 {int(retries)}); do "
        f"{pull} | awk {shlex.quote(PULL_PROGRESS_AWK)} && exit 0; "
        f'echo "ollama-rig: pull of {model} failed (attempt $i/{int(retries)}); resuming" >&2; '
        "sleep 2; done; "
        f'echo "ollama-rig: could not pull {model} after {int(retries)} attempts" >&2; exit 1'
    )
    yield FunctionCommand(_run_streaming, (f"sh -c {shlex.quote(script)}",), {})


@operation()
def model_variant(variant: str, base: str, num_ctx: int, api_url: str):
    """
    Create a variant of a model with a fixed context, or fix one whose num_ctx differs.

    + variant: the variant's name
    + base: the model it is made from
    + num_ctx: its PARAMETER num_ctx
    + api_url: the server's API on the host

    The same as a Modelfile `FROM base` + `PARAMETER num_ctx N` (FACTS.md section 3), sent as
    POST /api/create {"model", "from", "parameters"}.
    """
    params = host.get_fact(OllamaModelParameters, api_url=api_url, model=variant)
    if params is not None and params.get("num_ctx") == str(num_ctx):
        host.noop(f"variant {variant} of {base} has num_ctx {num_ctx}")
        return
    body = {"model": variant, "from": base, "parameters": {"num_ctx": num_ctx}, "stream": False}
    yield _post(api_url, "/api/create", body)


@operation()
def prune_models(keep: list[str], api_url: str):
    """
    Remove every model on the server that is not in keep.

    + keep: names as /api/tags lists them ("name:tag")
    + api_url: the server's API on the host
    """
    present = host.get_fact(OllamaModels, api_url=api_url) or []
    extra = unlisted(keep, present)
    if not extra:
        host.noop("no unlisted models")
        return
    for model in extra:
        body = shlex.quote(json.dumps({"model": model}))
        yield f"curl -fsS -X DELETE -d {body} {shlex.quote(api_url + '/api/delete')}"
