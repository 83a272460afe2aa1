"""Build the Settings of a host from its pyinfra data, refusing bad input in one line."""

from __future__ import annotations

import difflib
import runpy
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pyinfra.api.connectors import get_all_connectors
from pyinfra.api.exceptions import PyinfraError

from settings.schema import Settings

DEFAULTS_FILE = Path(__file__).resolve().parent.parent / "group_data" / "all.py"


class SettingsError(PyinfraError):
    """A setting is unknown, of the wrong type or impossible; the message is one line."""


@cache
def defaults() -> dict[str, Any]:
    """The documented defaults: every plain name assigned in group_data/all.py."""
    values = runpy.run_path(str(DEFAULTS_FILE))
    return {k: v for k, v in values.items() if not k.startswith("_") and k in Settings.model_fields}


@cache
def foreign_keys() -> frozenset[str]:
    """Data keys that belong to pyinfra's connectors (ssh_user, docker_identifier, ...)."""
    keys: set[str] = set()
    for connector in get_all_connectors().values():
        keys.update(getattr(connector, "data_meta", {}) or {})
    return frozenset(keys)


def _describe(error: Mapping[str, Any]) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:
        return message
    key = ".".join(str(part) for part in error["loc"])
    return f"{key}={error['input']!r}: {message}"


def settings_from_data(data: dict[str, Any]) -> Settings:
    """Validate host data (defaults underneath) and return Settings, or raise SettingsError."""
    ours = {k: v for k, v in data.items() if not k.startswith("_") and k not in foreign_keys()}
    for key in sorted(set(ours) - set(Settings.model_fields)):
        close = difflib.get_close_matches(key, Settings.model_fields, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SettingsError(
            f"settings: unknown key {key!r}{hint}; every setting is listed in group_data/all.py"
        )
    try:
        settings = Settings.model_validate({**defaults(), **ours})
    except ValidationError as exc:
        raise SettingsError(f"settings: {_describe(exc.errors()[0])}") from None
    path = settings.ollama_archive_path
    if path is not None and not Path(path).is_file():
        raise SettingsError(
            f"settings: ollama_archive_path={path!r}: no such file on this machine;"
            " give the path of a downloaded ollama-linux-<arch>.tar.zst, or None to download"
        )
    return settings


def load_settings(host: Any) -> Settings:
    """Settings of a pyinfra host (its inventory data merged with group data)."""
    return settings_from_data(host.data.dict())
