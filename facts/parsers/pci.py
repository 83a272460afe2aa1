"""Parsers for `lspci -nn`, `lspci -nnk`, `lspci -Dnn` and the usual IOMMU-group shell loop.

lspci -nn device line (pciutils lspci.c show_device), e.g.
  "01:00.0 VGA compatible controller [0300]: NVIDIA Corporation GA102 [GeForce RTX 3090]
   [10de:2204] (rev a1)" (one line),
  with -D the address carries the domain ("0000:01:00.0"); -k adds indented
  "Subsystem:", "Kernel driver in use:" and "Kernel modules:" lines. The vendor:device pair is
  the last "[xxxx:xxxx]" on the line: the description itself may contain brackets.
"""

from __future__ import annotations

import re
from typing import Any

from facts.parsers import ParseError

NVIDIA_VENDOR = "10de"

_ADDRESS = r"(?:[0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]"
_DEVICE = re.compile(
    rf"^(?P<address>{_ADDRESS})\s+(?P<class>[^\[:]+)\s*(?:\[(?P<class_id>[0-9a-fA-F]{{4}})\])?:?\s+(?P<rest>.*)$"
)
_IDS = re.compile(r"\[([0-9a-fA-F]{4}):([0-9a-fA-F]{4})\]")
_REV = re.compile(r"\s*\(rev ([0-9a-fA-F]+)\)")
_PROG_IF = re.compile(r"\s*\(prog-if [^)]*\)")
_TRAILING_DRIVER = re.compile(r"\s+Driver:\s*(\S+)\s*$")


def parse_device_line(line: str) -> dict[str, Any] | None:
    """One lspci device line -> device dict, or None when the line is not one."""
    match = _DEVICE.match(line.strip())
    if not match:
        return None
    rest = match.group("rest")
    driver = None
    if found := _TRAILING_DRIVER.search(rest):
        driver, rest = found.group(1), rest[: found.start()]
    revision = None
    if found := _REV.search(rest):
        revision, rest = found.group(1), rest[: found.start()] + rest[found.end() :]
    rest = _PROG_IF.sub("", rest).strip()
    ids = list(_IDS.finditer(rest))
    vendor_id = device_id = None
    if ids:
        last = ids[-1]
        vendor_id, device_id = last.group(1).lower(), last.group(2).lower()
        rest = (rest[: last.start()] + rest[last.end() :]).strip()
    class_id = match.group("class_id")
    return {
        "address": match.group("address"),
        "class": match.group("class").strip(),
        "class_id": class_id.lower() if class_id else None,
        "vendor_device": f"{vendor_id}:{device_id}" if vendor_id else None,
        "vendor_id": vendor_id,
        "device_id": device_id,
        "description": rest,
        "revision": revision,
        # Without -nn there is no vendor id: fall back to pci.ids' vendor name.
        "nvidia": vendor_id == NVIDIA_VENDOR
        or (vendor_id is None and rest.lower().startswith("nvidia corporation")),
        "subsystem": None,
        "driver": driver,
        "modules": [],
    }


# -k lines; a paste can lose their indentation (they still belong to the device above).
_KERNEL_KEYS = ("Subsystem:", "Kernel driver in use:", "Kernel modules:")


def _attach(device: dict[str, Any], line: str) -> None:
    key, _, value = line.strip().partition(":")
    value = value.strip()
    if key == "Kernel driver in use":
        device["driver"] = value
    elif key == "Kernel modules":
        device["modules"] = [m.strip() for m in value.split(",") if m.strip()]
    elif key == "Subsystem":
        device["subsystem"] = value


def parse_lspci(text: str) -> dict[str, Any]:
    """`lspci -nn`/`-nnk`/`-Dnn` -> {"devices": [...]} in output order.

    Each device: address, class, class_id, vendor_device ("10de:2204"), vendor_id,
    device_id, description, revision, nvidia (vendor 10de; without -nn: the vendor name),
    subsystem, driver (null without -k or when none is bound), modules ([]). -k lines attach to
    the device above, indented or not; other lines (a prompt, grep's "--") are skipped; text
    without any device line is a ParseError.
    """
    devices: list[dict[str, Any]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if line[:1] in (" ", "\t") or line.startswith(_KERNEL_KEYS):
            if devices:
                _attach(devices[-1], line)
            continue
        device = parse_device_line(line)
        if device:
            devices.append(device)
    if not devices:
        raise ParseError("no lspci device line (like '01:00.0 VGA compatible controller [0300]: ')")
    return {"devices": devices}


_GROUP = re.compile(r"^\s*(?:IOMMU\s+)?Group:?\s+(\d+):?\s*(.*)$", re.I)


def parse_iommu_groups(text: str) -> dict[str, Any]:
    """Output of the usual IOMMU listing loops -> {"groups": {"<n>": [devices]}}.

    Accepted shapes (all seen in the wild):
      "IOMMU group 1 01:00.0 VGA compatible controller [0300]: ..."   (one line per device)
      "IOMMU Group 1:" / "IOMMU group 7" then indented lspci lines    (a header per group)
      "IOMMU Group  12: 0000:01:00.0 USB controller [0c03] ..."        (ls-iommu)
      "Group:  16  0000:0a:00.0 ... [10de:21c4] (rev a1)   Driver: vfio-pci"
    Devices carry address, vendor_device, description plus class, class_id, nvidia, driver.
    Lines that are none of these (stderr of the loop, prompts) are ignored; text with no
    device in any group is a ParseError. Groups are ordered by number.
    """
    groups: dict[int, list[dict[str, Any]]] = {}
    current: int | None = None
    for line in text.splitlines():
        if match := _GROUP.match(line):
            current = int(match.group(1))
            groups.setdefault(current, [])
            rest = match.group(2).strip()
            if rest:
                device = parse_device_line(rest)
                if device:
                    groups[current].append(device)
            continue
        if current is None or not line.strip():
            continue
        device = parse_device_line(line)
        if device:
            groups[current].append(device)
        elif line[:1] in (" ", "\t") and groups[current]:
            _attach(groups[current][-1], line)
    if not any(groups.values()):
        raise ParseError("no IOMMU group with a device found (e.g. 'IOMMU group 1 01:00.0 ...')")
    keep = ("address", "vendor_device", "description", "class", "class_id", "nvidia", "driver")
    return {
        "groups": {str(n): [{k: d[k] for k in keep} for d in groups[n]] for n in sorted(groups)}
    }
