"""Pure decisions of the harness role: which server, which models, which context, all checked.

The rule that keeps harnesses honest: no harness asks for more context than the server gives
the chat model. OpenCode talks /v1, which cannot set num_ctx (HARNESSES.md), so it gets the
server's context whatever it is told; the others send num_ctx and would load the model
beyond what preflight sized for the GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from roles.models.plan import normal_name, wanted_models
from settings import Settings, SettingsError
from settings.schema import is_loopback
from sizing.catalog import find_model

# Answer tokens a harness reserves; at most a quarter of the context (Continue warns when
# maxTokens comes within 1000 tokens of contextLength).
OUTPUT_TOKENS = 8192
ALL_ADDRESSES = ("0.0.0.0", "::", "")

# An inventory host name -> (its settings, the address other hosts reach it at), or None.
ServerLookup = Callable[[str], tuple[Settings, str] | None]


@dataclass(frozen=True)
class Server:
    """The Ollama the harnesses use: base URL, the settings it runs with, a name for messages."""

    url: str
    settings: Settings
    name: str


@dataclass(frozen=True)
class HarnessPlan:
    """What every harness config of one user says."""

    user: str
    home: str | None
    tools: tuple[str, ...]
    endpoint: str
    chat_model: str
    autocomplete_model: str
    context_length: int
    autocomplete_context: int
    cline_legacy: bool

    @property
    def output_tokens(self) -> int:
        return min(OUTPUT_TOKENS, self.context_length // 4)


def _fail(message: str) -> SettingsError:
    return SettingsError(f"settings: {message}")


def resolve_server(settings: Settings, own_name: str, lookup: ServerLookup) -> Server:
    """The server harness_endpoint names: this host's, an inventory host's, or a URL's."""
    target = settings.harness_endpoint
    if target is None or target == own_name:
        return Server(settings.api_url, settings, "this host")
    if "://" in target:
        return Server(target, settings, target)
    found = lookup(target)
    if found is None:
        raise _fail(f"harness_endpoint={target!r} is neither a URL nor a host of this inventory")
    server, address = found
    listen = server.listen_host
    if is_loopback(listen):
        raise _fail(
            f"harness_endpoint={target!r}: its Ollama listens on {server.ollama_listen} only;"
            " set its ollama_listen (and ollama_allow_from) so that this host can reach it"
        )
    reach = address if listen in ALL_ADDRESSES else listen
    reach = f"[{reach}]" if ":" in reach else reach
    return Server(f"http://{reach}:{server.listen_port}", server, target)


def _base_model(server: Settings, model: str) -> tuple[str, int]:
    """The model a name runs (a variant's FROM) and the context the server gives it."""
    for name, variant in server.ollama_model_variants.items():
        if normal_name(name) == normal_name(model):
            return variant.from_, variant.num_ctx
    return model, server.ollama_context_length


def served_context(server: Settings, model: str) -> int:
    """Context of a request that does not set num_ctx: the variant's or the server's, capped
    at the model's trained context (sizing/catalog.yaml), as Ollama caps it."""
    base, context = _base_model(server, model)
    spec = find_model(base)
    trained = spec.arch.context_length if spec else 0
    return min(context, trained) if trained else context


def _fim(server: Settings, model: str) -> bool | None:
    """Whether the catalog marks the model fill-in-the-middle capable (None: not in it)."""
    spec = find_model(_base_model(server, model)[0])
    return spec.fim if spec else None


def _on_server(key: str, model: str, server: Server) -> None:
    available = wanted_models(server.settings)
    if normal_name(model) not in available:
        raise _fail(
            f"{key}={model!r} is not among the models of {server.name} ({', '.join(available)}):"
            " add it to ollama_models there"
        )


def _autocomplete(settings: Settings, server: Server, chat: str) -> str:
    chosen = settings.harness_autocomplete_model
    tools = settings.harness_tools
    if chosen is not None:
        if "continue" in tools and _fim(server.settings, chosen) is False:
            raise _fail(
                f"harness_autocomplete_model={chosen!r} cannot fill in the middle"
                " (sizing/catalog.yaml): pick a FIM model such as qwen2.5-coder:1.5b"
            )
        return chosen
    candidates = [m for m in server.settings.ollama_models if _fim(server.settings, m)]
    if candidates:
        return min(candidates, key=lambda m: find_model(m).weights_bytes)  # type: ignore[union-attr]
    if "continue" not in tools:
        return chat
    raise _fail(
        f"harness_autocomplete_model: no fill-in-the-middle model among the ollama_models of"
        f" {server.name}: add one such as qwen2.5-coder:1.5b there, or name one"
    )


def plan_harness(settings: Settings, server: Server) -> HarnessPlan | None:
    """The checked plan for harness_user, or None when no harness is configured here."""
    if settings.harness_user is None or not settings.harness_tools:
        return None
    models = server.settings.ollama_models
    chat = settings.harness_chat_model or (models[0] if models else None)
    if chat is None:
        raise _fail(f"harness_chat_model: {server.name} lists no ollama_models to chat with")
    _on_server("harness_chat_model", chat, server)
    autocomplete = _autocomplete(settings, server, chat)
    _on_server("harness_autocomplete_model", autocomplete, server)

    served = served_context(server.settings, chat)
    context = settings.harness_context_length or served
    if context > served:
        raise _fail(
            f"harness_context_length={context} is more than {server.name} gives {chat}"
            f" ({served} tokens: ollama_context_length or its variant's num_ctx, capped at the"
            " trained context); OpenCode's /v1 requests cannot ask for more and the others would"
            " load it beyond what was sized for the GPU: raise ollama_context_length there, or"
            f" add an ollama_model_variants entry with num_ctx {context} and chat with it"
        )
    return HarnessPlan(
        user=settings.harness_user,
        home=settings.harness_home,
        tools=tuple(settings.harness_tools),
        endpoint=server.url,
        chat_model=chat,
        autocomplete_model=autocomplete,
        context_length=context,
        autocomplete_context=min(context, served_context(server.settings, autocomplete)),
        cline_legacy=settings.harness_cline_legacy,
    )
