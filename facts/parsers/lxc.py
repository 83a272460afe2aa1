"""Parser for Proxmox container configs, /etc/pve/lxc/<id>.conf.

Format (pve-container src/PVE/LXC/Config.pm parse_pct_config): "key: value" lines, keys may
repeat (lxc.* raw keys, mpN, devN), "#" lines are the description/comments, "[name]" starts a
snapshot section and "[pve:pending]" the pending changes. Raw lxc.* keys are handed to LXC,
which does not allow a "#" comment after a value (FACTS.md 7): such values are reported.
"""

from __future__ import annotations

import re
from typing import Any

from facts.parsers import ParseError

_SECTION = re.compile(r"^\[([^\]]+)\]\s*$")
_ENTRY = re.compile(r"^([A-Za-z][A-Za-z0-9_.\-]*)\s*[:=]\s?(.*)$")
_ALLOW = re.compile(r"^([abc])\s+(\d+|\*):(\d+|\*)\s+([rwm]+)$")


def _cgroup_rule(value: str) -> dict[str, Any] | None:
    match = _ALLOW.match(value.strip())
    if not match:
        return None
    kind, major, minor, access = match.groups()
    return {
        "type": kind,
        "major": int(major) if major.isdigit() else major,
        "minor": int(minor) if minor.isdigit() else minor,
        "access": access,
    }


def _mount(value: str) -> dict[str, Any]:
    parts = value.split()
    names = ["source", "target", "fstype", "options", "dump", "pass"]
    mount: dict[str, Any] = dict(zip(names, parts, strict=False))
    mount["options"] = mount.get("options", "").split(",") if mount.get("options") else []
    return mount


def _dev(key: str, value: str) -> dict[str, Any]:
    path, *opts = value.split(",")
    options: dict[str, str] = {}
    for opt in opts:
        name, _, val = opt.partition("=")
        options[name.strip()] = val.strip()
    return {"key": key, "path": path.strip(), "options": options}


def _summary(entries: list[dict[str, Any]]) -> dict[str, Any]:
    allow, mounts, devs = [], [], []
    for entry in entries:
        key, value = entry.get("key"), entry.get("value", "")
        if key in ("lxc.cgroup2.devices.allow", "lxc.cgroup.devices.allow"):
            rule = _cgroup_rule(value)
            allow.append(rule if rule else {"raw": value})
        elif key == "lxc.mount.entry":
            mounts.append(_mount(value))
        elif key and re.fullmatch(r"dev\d+", key):
            devs.append(_dev(key, value))
    return {"cgroup_allow": allow, "mount_entries": mounts, "dev_entries": devs}


def parse_pve_lxc_conf(text: str) -> dict[str, Any]:
    """/etc/pve/lxc/<id>.conf -> {"entries", "snapshots", "pending", "cgroup_allow",
    "mount_entries", "dev_entries", "warnings"}.

    entries: the main section in file order, each {"key", "value"} or {"comment"} (repeated
    keys stay repeated). snapshots: {name: [entries]}; pending: the [pve:pending] entries or
    null. cgroup_allow/mount_entries/dev_entries: the main section's lxc.cgroup(2).devices.allow
    rules {"type","major","minor","access"}, lxc.mount.entry fields and devN entries
    {"key","path","options"}. warnings: lxc.* values with a "#" comment after them.
    """
    main: list[dict[str, Any]] = []
    sections: dict[str, list[dict[str, Any]]] = {}
    current = main
    warnings: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            current.append({"comment": line})
            continue
        if match := _SECTION.match(line):
            current = sections.setdefault(match.group(1), [])
            continue
        match = _ENTRY.match(line)
        if not match:
            raise ParseError(f"line {number} is not 'key: value': {line[:60]!r}")
        key, value = match.group(1), match.group(2).strip()
        if key.startswith("lxc.") and re.search(r"\s#", value):
            warnings.append(f"line {number}: '#' after the value of {key} is not a comment in LXC")
        current.append({"key": key, "value": value})
    if not main and not sections:
        raise ParseError("empty container config")
    pending = sections.pop("pve:pending", None)
    return {
        "entries": main,
        "snapshots": sections,
        "pending": pending,
        **_summary(main),
        "warnings": warnings,
    }
