"""The harness role's operation: merge managed entries into a user's config file, atomically."""

from __future__ import annotations

import posixpath
import shlex
from datetime import datetime, timezone
from io import StringIO

from pyinfra import host
from pyinfra.api import FileUploadCommand, operation
from pyinfra.facts.files import File

from facts.harness import ConfigFileState
from roles.harness.configs import InvalidConfig, merge_config

MODE = "600"  # these files hold the user's other providers' keys too


def _refuse(message: str) -> str:
    """Shell that fails the operation with one ollama-rig line (and changes nothing)."""
    return f"echo {shlex.quote('ollama-rig: ' + message)} >&2; exit 1"


@operation()
def harness_config(
    path: str, home: str, kind: str, managed: str, user: str, group: str, shadows: str = ""
):
    """
    Merge ollama-rig's entries into a harness config file, keeping everything else in it.

    + path: the file (a symlink is written through, to its target)
    + home: the user's home: missing folders between it and the file are made for the user
    + kind: the merge rule (roles/harness/configs.py)
    + managed: the managed entries, rendered from templates/harness/
    + user, group: the owner of the file and of any folder made
    + shadows: an older file the harness ignores once this one exists: while it is there and
      this one is not, the run stops instead of silently disabling the user's settings

    The new text goes to a private folder beside the file, gets its owner and mode 0600, then
    replaces the file with one rename; the previous file is kept as <file>.ollama-rig.bak.
    A file that does not parse fails the operation with one line and is left as it is.

    .. code:: python

        harness_config(
            name="Cline providers.json",
            path="/home/dev/.cline/data/settings/providers.json",
            home="/home/dev", kind="cline-providers", managed=text, user="dev", group="dev",
        )
    """
    state = host.get_fact(ConfigFileState, path=path, home=home)
    kind_there, link = state["kind"], state["link_target"]
    if kind_there is not None and kind_there != "regular file":
        yield _refuse(f"{path} is a {kind_there}, not a file: left as it is")
        return
    if link is not None and kind_there is None:
        yield _refuse(f"{path} is a symlink to nothing ({link or '?'}): left as it is")
        return
    if shadows and kind_there is None and host.get_fact(File, path=shadows):
        yield _refuse(
            f"{shadows} holds your settings and would be ignored once {path} exists:"
            f" move them into {path}, or remove {shadows}, then run again"
        )
        return
    existing = state["content"]
    try:
        if kind_there is not None and existing is None:
            raise InvalidConfig("not UTF-8 text")
        now = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        text = merge_config(kind, existing, managed, now)
    except InvalidConfig as exc:
        yield _refuse(f"{path} is refused and left as it is: {exc}; fix or move it, then run again")
        return

    q_user, q_group = shlex.quote(user), shlex.quote(group)
    owner = f"{q_user}:{q_group}"
    for folder in state["missing_dirs"]:
        yield f"install -d -m 0700 -o {q_user} -g {q_group} {shlex.quote(folder)}"
    target = link or path
    if text is None:
        if state["mode"] == MODE and (state["user"], state["group"]) == (user, group):
            host.noop(f"{path} already has ollama-rig's entries")
            return
        yield f"chown {owner} {shlex.quote(target)} && chmod 0{MODE} {shlex.quote(target)}"
        return

    stage = posixpath.join(posixpath.dirname(target), ".ollama-rig.tmp")
    staged = posixpath.join(stage, posixpath.basename(target))
    q_stage, q_staged, q_target = shlex.quote(stage), shlex.quote(staged), shlex.quote(target)
    yield f"rm -rf {q_stage} && mkdir -m 0700 {q_stage}"
    temp = host.get_temp_filename(staged)
    yield FileUploadCommand(StringIO(text), staged, remote_temp_filename=temp)
    backup = shlex.quote(target + ".ollama-rig.bak")
    keep = (
        f"cp -p {q_target} {backup} && chmod 0{MODE} {backup} && " if existing is not None else ""
    )
    yield (
        f"chown {owner} {q_staged} && chmod 0{MODE} {q_staged} && {keep}"
        f"mv -f {q_staged} {q_target} && rmdir {q_stage}"
    )
