"""Shell snippets the roles' operations share."""

from __future__ import annotations

import shlex


def fail_command(message: str) -> str:
    """Shell that prints one ollama-rig error line on stderr and fails (a group: safe after ||)."""
    return f"{{ echo {shlex.quote('ollama-rig: ' + message)} >&2; exit 1; }}"
