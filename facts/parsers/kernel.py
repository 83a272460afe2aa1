"""Parsers for kernel facts: IOMMU state from dmesg, /proc/devices majors, the command line.

IOMMU lines relied on (Linux drivers/iommu/intel/*.c, drivers/iommu/amd/init.c, iommu.c):
- Intel: "DMAR: IOMMU enabled" is printed when intel_iommu=on is parsed;
  "DMAR: Intel(R) Virtualization Technology for Directed I/O" when the driver finished init
  (also on kernels where it is on by default, 6.8+); "DMAR: IOMMU disabled" for
  intel_iommu=off. ACPI "DMAR" table lines and "DMAR: Host address width" only show the
  hardware is there, whether or not the IOMMU is on.
- AMD: "AMD-Vi: Found IOMMU", "AMD-Vi: Interrupt remapping enabled",
  "perf/amd_iommu: Detected AMD IOMMU", "AMD-Vi: IOMMU performance counters supported"
  come from a working AMD IOMMU; "AMD-Vi: AMD IOMMU disabled" from amd_iommu=off.
- Any vendor: "Adding to iommu group N" (and the older "iommu: Adding device X to group N")
  only happen with an active IOMMU. "iommu: Default domain type: ..." is printed by the
  core even without IOMMU hardware, so it is reported but is no evidence.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from facts.parsers import ParseError

_ENABLED = [
    re.compile(r"DMAR: IOMMU enabled"),
    re.compile(r"DMAR: Intel\(R\) Virtualization Technology for Directed I/O"),
    re.compile(r"Intel-IOMMU force enabled"),
    re.compile(r"AMD-Vi: Found IOMMU"),
    re.compile(r"AMD-Vi: Interrupt remapping enabled"),
    re.compile(r"AMD-Vi: IOMMU performance counters supported"),
    re.compile(r"perf/amd_iommu: Detected AMD IOMMU"),
    re.compile(r"AMD IOMMUv2 loaded and initialized"),
    re.compile(r"Adding to iommu group \d+"),
    re.compile(r"iommu: Adding device \S+ to group \d+"),
]
_DISABLED = [re.compile(r"DMAR: IOMMU disabled"), re.compile(r"AMD-Vi: AMD IOMMU disabled")]
_INTEL = re.compile(r"DMAR|Directed I/O|intel_iommu|Intel-IOMMU")
_AMD = re.compile(r"AMD-Vi|amd_iommu|AMD IOMMU")
_DOMAIN = re.compile(r"iommu: Default domain type: (\w+)")
_CMDLINE = re.compile(r"(?:Kernel command line|Command line): (.*)$")
_GROUP_ADD = re.compile(r"(?:Adding to iommu group|to group) (\d+)")
_DMESG_LINE = re.compile(r"^\s*\[\s*\d+\.\d+\]|kernel:|\biommu\b|DMAR|AMD-Vi", re.I)


def parse_dmesg_iommu(text: str) -> dict[str, Any]:
    """dmesg / journalctl -k -> {"iommu_enabled", "vendor", "default_domain", "groups_seen",
    "cmdline", "evidence"}.

    iommu_enabled: true on a line only a working IOMMU prints; false on an explicit
    "disabled" line, or when Intel's DMAR table shows up with no sign of the IOMMU working;
    null otherwise (nothing IOMMU-related, or AMD lines that prove neither). vendor: "intel" |
    "amd" | null. cmdline: the parameters of a "Kernel command line:" line, when present.
    evidence: the lines the verdict rests on (at most 5).
    """
    lines = text.splitlines()
    if not any(_DMESG_LINE.search(line) for line in lines):
        raise ParseError("no kernel log lines (e.g. '[    0.100185] DMAR: IOMMU enabled')")
    enabled = [line.strip() for line in lines if any(p.search(line) for p in _ENABLED)]
    disabled = [line.strip() for line in lines if any(p.search(line) for p in _DISABLED)]
    intel = any(_INTEL.search(line) for line in lines)
    amd = any(_AMD.search(line) for line in lines)
    vendor = "intel" if intel and not amd else "amd" if amd and not intel else None
    if intel and amd:  # both names appear (e.g. amd_iommu=on on an Intel box): trust the driver
        vendor = "amd" if any("AMD-Vi" in line for line in enabled) else "intel"
    state: bool | None
    if disabled:
        state, evidence = False, disabled
    elif enabled:
        state, evidence = True, enabled
    elif vendor == "intel":
        # The DMAR table is parsed whether or not the IOMMU is turned on; the driver says so
        # ("Directed I/O") only when it is: table without that line = present but off.
        state, evidence = False, [line.strip() for line in lines if _INTEL.search(line)]
    else:  # AMD-Vi lines without a working-IOMMU line (e.g. only the IOMMUv2 helper): unknown
        state, evidence = None, []
    domain = next((m.group(1) for line in lines if (m := _DOMAIN.search(line))), None)
    cmdline = next((m.group(1).strip() for line in lines if (m := _CMDLINE.search(line))), None)
    return {
        "iommu_enabled": state,
        "vendor": vendor,
        "default_domain": domain,
        "groups_seen": len({m.group(1) for line in lines if (m := _GROUP_ADD.search(line))}),
        "cmdline": _split_params(cmdline) if cmdline else None,
        "evidence": evidence[:5],
    }


_PROC_DEVICE = re.compile(r"^\s*(\d+)\s+(\S+)\s*$")


def parse_proc_devices(text: str) -> dict[str, Any]:
    """/proc/devices -> {"majors": {name: major}, "block_majors": {...}, "nvidia_major",
    "uvm_major"}.

    "majors" holds the character devices (also when only grep'd lines without the section
    header are given). A name listed twice keeps its first major. nvidia_major is the major
    of "nvidia" or, before driver 550, "nvidia-frontend"; uvm_major that of "nvidia-uvm"
    (dynamic: FACTS.md 7). Any other line is a ParseError.
    """
    char: dict[str, int] = {}
    block: dict[str, int] = {}
    section = char
    seen = False
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped == "Character devices:":
            section = char
            continue
        if stripped == "Block devices:":
            section = block
            continue
        match = _PROC_DEVICE.match(line)
        if not match:
            raise ParseError(f"line {number} is not a /proc/devices entry: {stripped[:60]!r}")
        section.setdefault(match.group(2), int(match.group(1)))
        seen = True
    if not seen:
        raise ParseError("no /proc/devices entries")
    return {
        "majors": char,
        "block_majors": block,
        "nvidia_major": char.get("nvidia", char.get("nvidia-frontend")),
        "uvm_major": char.get("nvidia-uvm"),
    }


_GRUB = re.compile(r"^\s*(GRUB_CMDLINE_LINUX(?:_DEFAULT)?)=(.*)$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_GRUB_REF = re.compile(r"\$\{?(GRUB_CMDLINE_LINUX(?:_DEFAULT)?)\}?")


def _split_params(value: str) -> list[str]:
    """Split a kernel command line as the kernel does (lib/cmdline.c next_arg): on whitespace,
    except inside double quotes, which are dropped; backslashes are ordinary characters."""
    params: list[str] = []
    current: list[str] = []
    quoted = False
    for char in value.strip():
        if char == '"':
            quoted = not quoted
        elif char.isspace() and not quoted:
            if current:
                params.append("".join(current))
                current = []
        else:
            current.append(char)
    if quoted:
        raise ParseError("unbalanced double quote in kernel command line")
    if current:
        params.append("".join(current))
    return params


def _shell_value(value: str) -> str:
    """The value of a shell assignment as /etc/default/grub is sourced: quotes removed."""
    try:
        return " ".join(shlex.split(value, comments=True))
    except ValueError as exc:
        raise ParseError(f"unbalanced quotes in {value.strip()[:40]!r}") from exc


def parse_cmdline_info(text: str) -> dict[str, Any]:
    """As parse_cmdline, with where the parameters came from: {"params", "source", "grub"}.

    source: "grub" for /etc/default/grub text (the last uncommented GRUB_CMDLINE_LINUX and
    GRUB_CMDLINE_LINUX_DEFAULT; grub puts LINUX first, then LINUX_DEFAULT), else "cmdline"
    (/proc/cmdline or /etc/kernel/cmdline: one line). grub: {variable: [params]} or null.
    """
    if _CONTROL.search(text):
        raise ParseError("control characters in what should be a kernel command line")
    grub: dict[str, list[str]] = {}
    for line in text.splitlines():
        if match := _GRUB.match(line):
            value = _shell_value(match.group(2))
            # grub.d snippets append: GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT x"
            value = _GRUB_REF.sub(lambda m: " ".join(grub.get(m.group(1), [])), value)
            grub[match.group(1)] = _split_params(value)
    if grub:
        params = grub.get("GRUB_CMDLINE_LINUX", []) + grub.get("GRUB_CMDLINE_LINUX_DEFAULT", [])
        return {"params": params, "source": "grub", "grub": grub}
    lines = [x for x in text.splitlines() if x.strip() and not x.lstrip().startswith("#")]
    if len(lines) != 1:
        raise ParseError(
            f"expected one kernel command line or GRUB_CMDLINE_LINUX lines, got {len(lines)} lines"
        )
    return {"params": _split_params(lines[0]), "source": "cmdline", "grub": None}


def parse_cmdline(text: str) -> list[str]:
    """/proc/cmdline, /etc/kernel/cmdline or /etc/default/grub -> list of kernel parameters."""
    params: list[str] = parse_cmdline_info(text)["params"]
    return params
