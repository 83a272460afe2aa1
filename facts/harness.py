"""Facts the harness role reads: the user's account, and a config file as it is on the host."""

from __future__ import annotations

import base64
import binascii
import shlex
from typing import TypedDict

from pyinfra.api import FactBase


class Account(TypedDict):
    uid: int
    gid: int
    home: str
    group: str


class FileState(TypedDict):
    """kind None: nothing there. content None: absent, not a regular file, or not UTF-8."""

    kind: str | None
    mode: str | None
    user: str | None
    group: str | None
    content: str | None
    link_target: str | None
    missing_dirs: list[str]


class UserAccount(FactBase[Account | None]):
    """A user's uid, gid, home (passwd database) and primary group name, or None if no such user.

    .. code:: python

        {"uid": 1000, "gid": 1000, "home": "/home/dev", "group": "dev"}
    """

    def command(self, user: str) -> str:
        q = shlex.quote(user)
        return f'entry=$(getent passwd {q}) && echo "$entry" && id -gn {q} || true'

    def process(self, output: list[str]) -> Account | None:
        fields = output[0].strip().split(":") if len(output) >= 2 else []
        if len(fields) < 7:
            return None
        return Account(
            uid=int(fields[2]), gid=int(fields[3]), home=fields[5], group=output[1].strip()
        )


class ConfigFileState(FactBase[FileState]):
    """A config file: its text, mode, owner and type, where a symlink to it leads, and the
    folders between home and it that do not exist yet (outermost first).

    .. code:: python

        {"kind": "regular file", "mode": "600", "user": "dev", "group": "dev",
         "content": "{...}", "link_target": None, "missing_dirs": []}
    """

    def command(self, path: str, home: str) -> str:
        p, h = shlex.quote(path), shlex.quote(home.rstrip("/") or "/")
        return (
            f'p={p}; d=$(dirname "$p"); '
            f'while [ "$d" != {h} ] && [ "$d" != / ] && [ ! -d "$d" ]; do '
            'echo "missing $d"; d=$(dirname "$d"); done; '
            'if [ -L "$p" ]; then echo "link $(readlink -f "$p")"; fi; '
            'if [ -e "$p" ]; then echo "stat $(stat -L -c \'%a %U %G %F\' "$p")"; '
            'if [ -f "$p" ]; then echo "content $(base64 -w0 "$p")"; fi; fi'
        )

    def process(self, output: list[str]) -> FileState:
        state = FileState(
            kind=None,
            mode=None,
            user=None,
            group=None,
            content=None,
            link_target=None,
            missing_dirs=[],
        )
        for line in output:
            tag, _, rest = line.partition(" ")
            if tag == "missing":
                state["missing_dirs"].insert(0, rest)
            elif tag == "link":
                state["link_target"] = rest.strip()
            elif tag == "stat":
                mode, user, group, kind = rest.split(" ", 3)
                state["mode"], state["user"], state["group"] = mode, user, group
                # stat says "regular empty file" for an empty one
                state["kind"] = "regular file" if kind.startswith("regular") else kind.strip()
            elif tag == "content":
                try:
                    state["content"] = base64.b64decode(rest.strip(), validate=True).decode()
                except (binascii.Error, UnicodeDecodeError):
                    state["content"] = None
        return state
