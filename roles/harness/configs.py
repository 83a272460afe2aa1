"""Harness config files: which ones, their managed entries (templates/harness/), and the merge.

Pure. The merge parses what the user has, replaces only the entries ollama-rig manages, keeps
everything else as it was, and says "no change" when the result equals what is there, so a
re-run writes nothing (and a file whose formatting alone differs is left alone).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml

from roles.harness.plan import HarnessPlan
from templates import template_path


@dataclass(frozen=True)
class HarnessFile:
    """One config file: the harness, its path under the user's home, its merge rule, and an
    older file the harness stops reading once this one exists."""

    tool: str
    path: str
    kind: str
    shadows: str | None = None


FILES: dict[str, tuple[HarnessFile, ...]] = {
    "opencode": (HarnessFile("opencode", ".config/opencode/opencode.json", "opencode"),),
    # Continue loads config.yaml instead of config.json when both exist.
    "continue": (
        HarnessFile("continue", ".continue/config.yaml", "continue", ".continue/config.json"),
    ),
    "aider": (
        HarnessFile("aider", ".aider.conf.yml", "aider-conf"),
        HarnessFile("aider", ".aider.model.settings.yml", "aider-models"),
    ),
    "cline": (HarnessFile("cline", ".cline/data/settings/providers.json", "cline-providers"),),
}
CLINE_LEGACY = HarnessFile("cline", ".cline/data/globalState.json", "cline-state")

TEMPLATES = {
    "opencode": "opencode.json.j2",
    "continue": "continue.yaml.j2",
    "aider-conf": "aider-conf.yml.j2",
    "aider-models": "aider-models.yml.j2",
    "cline-providers": "cline-providers.json.j2",
    "cline-state": "cline-state.json.j2",
}
JSON_KINDS = frozenset({"opencode", "cline-providers", "cline-state"})
# Top-level keys written only when the file has none: the user's own value wins.
DEFAULT_KEYS = {
    "opencode": ("$schema",),
    "continue": ("name", "version", "schema"),
    "cline-providers": ("version", "modes"),
}
# Lists whose entries are matched by "name": ours replaced in place, the user's kept.
NAMED_LISTS = {"continue": "models"}


class InvalidConfig(ValueError):
    """An existing file that cannot be merged; the message is one line."""


def harness_files(plan: HarnessPlan) -> list[HarnessFile]:
    files = [f for tool in plan.tools for f in FILES[tool]]
    if plan.cline_legacy and "cline" in plan.tools:
        files.append(CLINE_LEGACY)
    return files


def _models(plan: HarnessPlan) -> list[dict[str, Any]]:
    """The chat model and, when another, the autocomplete model, with their contexts."""
    chat = {"name": plan.chat_model, "context": plan.context_length, "tools": True}
    models = [{**chat, "output": plan.output_tokens}]
    if plan.autocomplete_model != plan.chat_model:
        context = plan.autocomplete_context
        models.append(
            {"name": plan.autocomplete_model, "context": context, "tools": False}
            | {"output": min(plan.output_tokens, context // 4)}
        )
    return models


def render_managed(kind: str, plan: HarnessPlan) -> str:
    """The managed entries of one file, from its template (StrictUndefined, like pyinfra)."""
    source = Path(template_path(f"harness/{TEMPLATES[kind]}")).read_text()
    template = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    return template.from_string(source).render(
        chat_model=plan.chat_model,
        autocomplete_model=plan.autocomplete_model,
        endpoint=plan.endpoint,
        context_length=plan.context_length,
        autocomplete_context=plan.autocomplete_context,
        output_tokens=plan.output_tokens,
        models=_models(plan),
    )


def parse(text: str, kind: str) -> Any:
    """A file's data (None when empty); InvalidConfig with the line when it does not parse."""
    if not text.strip():
        return None
    if kind in JSON_KINDS:
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidConfig(
                f"not valid JSON, line {exc.lineno}: {exc.msg} (comments are not accepted either)"
            ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark else ""
        raise InvalidConfig(f"not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None


def dump(data: Any, kind: str) -> str:
    if kind in JSON_KINDS:
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def deep_merge(base: dict[str, Any], managed: dict[str, Any]) -> dict[str, Any]:
    """base with managed's leaves put in; keys only base has are kept, nested ones too."""
    merged = dict(base)
    for key, value in managed.items():
        old = merged.get(key)
        both = isinstance(value, dict) and isinstance(old, dict)
        merged[key] = deep_merge(old, value) if both else value  # type: ignore[arg-type]
    return merged


def merge_named(base: list[Any], managed: list[dict[str, Any]], key: str = "name") -> list[Any]:
    """Entries of managed replace (deep-merged) the base entry of the same key, else append."""
    merged = list(base)
    for entry in managed:
        at = next(
            (i for i, e in enumerate(merged) if isinstance(e, dict) and e.get(key) == entry[key]),
            None,
        )
        if at is None:
            merged.append(entry)
        else:
            merged[at] = deep_merge(merged[at], entry)
    return merged


def merge_env(base: Any, managed: list[str]) -> list[Any]:
    """Aider's set-env ("NAME=value" entries): ours replace the same NAME, the rest stay."""
    merged = [base] if isinstance(base, str) else list(base or [])
    for item in managed:
        name = item.split("=", 1)[0] + "="
        at = next((i for i, e in enumerate(merged) if str(e).startswith(name)), None)
        if at is None:
            merged.append(item)
        else:
            merged[at] = item
    return merged


def _merge(kind: str, existing: Any, managed: Any, now: str) -> Any:
    if kind == "aider-models":
        if not isinstance(existing, list | None):
            raise InvalidConfig("holds no list of model settings")
        return merge_named(existing or [], managed)
    if not isinstance(existing, dict | None):
        raise InvalidConfig(f"holds a {type(existing).__name__}, not a mapping of settings")
    base = dict(existing or {})
    defaults = {k: managed.pop(k) for k in DEFAULT_KEYS.get(kind, ())}
    base = {**defaults, **base}
    lists = {k: managed.pop(k) for k in ([NAMED_LISTS[kind]] if kind in NAMED_LISTS else [])}
    env = managed.pop("set-env", None) if kind == "aider-conf" else None
    merged = deep_merge(base, managed)
    for key, entries in lists.items():
        old = base.get(key) or []
        if not isinstance(old, list):
            raise InvalidConfig(f"its {key!r} is not a list")
        merged[key] = merge_named(old, entries)
    if env is not None:
        merged["set-env"] = merge_env(base.get("set-env"), env)
    if kind == "cline-providers":
        _stamp(existing or {}, merged, now)
    return merged


def _stamp(existing: dict[str, Any], merged: dict[str, Any], now: str) -> None:
    """Cline's updatedAt: a new time only when the ollama entry changes (else a re-run would)."""
    old = (existing.get("providers") or {}).get("ollama")
    new = merged["providers"]["ollama"]
    unchanged = isinstance(old, dict) and "updatedAt" in old and old == new
    if not unchanged:
        new["updatedAt"] = now


def merge_config(kind: str, existing: str | None, managed: str, now: str) -> str | None:
    """The file's new text, or None when it already holds the managed entries.

    + kind: the merge rule (TEMPLATES' keys)
    + existing: the file's text, None when there is no file
    + managed: rendered managed entries (render_managed)
    + now: ISO 8601 time for Cline's updatedAt
    """
    old = parse(existing, kind) if existing is not None else None
    merged = _merge(kind, old, parse(managed, kind), now)
    if existing is not None and merged == old:
        return None
    return dump(merged, kind)
