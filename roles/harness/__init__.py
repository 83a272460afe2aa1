"""Coding harnesses: OpenCode, Continue, Aider and Cline configured for the provisioned Ollama.

Settings -> a checked plan (roles/harness/plan.py) -> each config file merged with what the
user already has (roles/harness/configs.py) by one idempotent operation per file.
"""

from __future__ import annotations

from typing import Any

from pyinfra import host, inventory
from pyinfra.api import deploy

from facts.harness import UserAccount
from roles.harness.configs import harness_files, render_managed
from roles.harness.operations import harness_config
from roles.harness.plan import HarnessPlan, plan_harness, resolve_server
from settings import Settings, SettingsError, settings_from_data

TITLES = {"opencode": "OpenCode", "continue": "Continue", "aider": "Aider", "cline": "Cline"}


def _inventory_server(name: str) -> tuple[Settings, str] | None:
    """The settings of an inventory host running Ollama, and the address others reach it at."""
    other = inventory.get_host(name, default=None)
    if other is None:
        return None
    return settings_from_data(other.data.dict()), str(other.data.get("ssh_hostname") or name)


def harness_plan(settings: Settings) -> HarnessPlan | None:
    """This host's harness plan, or None when harness_user is not set."""
    if settings.harness_user is None:
        return None
    return plan_harness(settings, resolve_server(settings, host.name, _inventory_server))


def harness_manifest(settings: Settings) -> dict[str, Any] | None:
    """What tests/verify/test_harness.py holds the harness files to."""
    plan = harness_plan(settings)
    if plan is None:
        return None
    return {
        "user": plan.user,
        "home": plan.home,
        "endpoint": plan.endpoint,
        "chat_model": plan.chat_model,
        "autocomplete_model": plan.autocomplete_model,
        "context_length": plan.context_length,
        "autocomplete_context": plan.autocomplete_context,
        "files": [{"tool": f.tool, "kind": f.kind, "path": f.path} for f in harness_files(plan)],
    }


@deploy("Coding harnesses")
def configure_harnesses(settings: Settings) -> None:
    """Write each harness's config for harness_user, merged with what is there, for this server."""
    plan = harness_plan(settings)
    if plan is None:
        return
    account = host.get_fact(UserAccount, user=plan.user)
    if account is None:
        raise SettingsError(
            f"settings: harness_user={plan.user!r} does not exist on {host.name}: create it first"
        )
    home = (plan.home or account["home"]).rstrip("/")
    for file in harness_files(plan):
        harness_config(
            name=f"{TITLES[file.tool]} ~/{file.path}",
            path=f"{home}/{file.path}",
            home=home,
            kind=file.kind,
            managed=render_managed(file.kind, plan),
            user=plan.user,
            group=account["group"],
            shadows=f"{home}/{file.shadows}" if file.shadows else "",
        )
