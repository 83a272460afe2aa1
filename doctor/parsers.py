"""Parsers for the outputs only the doctor reads; the rest live in facts/parsers.

Same contract as facts.parsers: the captured text in, a JSON-ready dict out, or ParseError
with one line. A tool's own failure message ("command not found") is a result, not an error.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from facts.host import NvidiaPciFunctions
from facts.parsers import ParseError
from facts.parsers.nvidia import parse_nvidia_smi
from facts.parsers.pci import parse_iommu_groups

# --- /proc/cpuinfo or lscpu -----------------------------------------------------------------

# "flags\t\t: fpu vme ..." (x86 /proc/cpuinfo), "Features\t: fp asimd" (Arm), "Flags: ..." (lscpu)
_FLAGS = re.compile(r"^\s*(?:flags|Features|Flags)\s*:\s*(.*)$")
_MODEL = re.compile(r"^\s*(?:model name|Model name)\s*:\s*(.+)$")
_VENDOR_ID = re.compile(r"^\s*(?:vendor_id|Vendor ID)\s*:\s*(\S+)")
_X86_MARKERS = {"sse2", "lm", "fpu", "cx8"}
# CPUID vendor strings (arch/x86/kernel/cpu): the IOMMU is VT-d on Intel, AMD-Vi on AMD.
_VENDORS = {"GenuineIntel": "intel", "AuthenticAMD": "amd", "HygonGenuine": "amd"}


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """/proc/cpuinfo (or `lscpu`) -> {"flags", "model_name", "vendor", "x86", "hypervisor", "avx",
    "avx2"}; vendor "intel" | "amd" | None from the vendor_id line.

    The first flags line is read (all cores of a VM or host carry the same flags).
    """
    flags: list[str] | None = None
    model = None
    vendor = None
    for line in text.splitlines():
        if model is None and (m := _MODEL.match(line)):
            model = m.group(1).strip()
        if vendor is None and (m := _VENDOR_ID.match(line)):
            vendor = _VENDORS.get(m.group(1))
        if flags is None and (m := _FLAGS.match(line)):
            flags = m.group(1).split()
    if flags is None:
        raise ParseError("no 'flags :' line (expected the output of `cat /proc/cpuinfo`)")
    found = set(flags)
    return {
        "flags": sorted(found),
        "model_name": model,
        "vendor": vendor,
        "x86": bool(found & _X86_MARKERS),
        "hypervisor": "hypervisor" in found,  # set by every x86 hypervisor for its guests
        "avx": "avx" in found,
        "avx2": "avx2" in found,
    }


# --- nvidia-smi --query-compute-apps / the Processes table ----------------------------------

# "|    0   N/A  N/A      3494      G   /usr/lib/xorg/Xorg       152MiB |" (>= 470), and the
# older "|    0      1234      C   python      1000MiB |"; WDDM shows "N/A" for the memory.
_TABLE_APP = re.compile(
    r"^\|\s*(?P<gpu>\d+)\s+(?:(?:N/A|\d+)\s+(?:N/A|\d+)\s+)?(?P<pid>\d+)\s+(?P<type>[CGM+]+)\s+"
    r"(?P<name>.+?)\s+(?:(?P<mib>\d+)MiB|N/A)\s*\|$"
)
_MIB = re.compile(r"^(\d+)\s*(?:MiB)?$")


def _mib(raw: str) -> int | None:
    match = _MIB.match(raw.strip())
    return int(match.group(1)) if match else None  # "[N/A]", "[Insufficient Permissions]"


def _csv_apps(lines: list[str]) -> list[dict[str, Any]]:
    header = [cell.strip().split(" [")[0].lower() for cell in lines[0].split(",")]
    apps = []
    for line in lines[1:]:
        cells = [cell.strip() for cell in line.split(",")]
        if len(cells) != len(header):
            raise ParseError(f"CSV line has {len(cells)} columns, expected {len(header)}")
        row = dict(zip(header, cells, strict=True))
        if not row.get("pid", "").isdigit():
            raise ParseError(f"pid is not a number: {row.get('pid')!r}")
        memory = row.get("used_gpu_memory", row.get("used_memory", ""))
        apps.append(
            {
                "gpu": None,
                "pid": int(row["pid"]),
                "type": "C",  # --query-compute-apps lists compute processes only
                "name": row.get("process_name") or row.get("name") or "?",
                "used_mib": _mib(memory),
            }
        )
    return apps


def _table_apps(lines: list[str]) -> list[dict[str, Any]]:
    apps = []
    for line in lines:
        if match := _TABLE_APP.match(line.strip()):
            apps.append(
                {
                    "gpu": int(match.group("gpu")),
                    "pid": int(match.group("pid")),
                    "type": match.group("type"),
                    "name": match.group("name").strip(),
                    "used_mib": int(match.group("mib")) if match.group("mib") else None,
                }
            )
    return apps


def parse_compute_apps(text: str) -> dict[str, Any]:
    """`nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv` or the
    Processes table of plain `nvidia-smi` -> {"apps": [{"gpu", "pid", "type", "name",
    "used_mib"}], "error", "message"}. An nvidia-smi failure gives apps [] and its error code.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and lines[0].strip().lower().startswith("pid"):
        return {"apps": _csv_apps(lines), "error": None, "message": None}
    if any("Processes" in line or "No running processes found" in line for line in lines):
        return {"apps": _table_apps(lines), "error": None, "message": None}
    if lines and all(len(line.split(",")) == 3 and line.split(",")[0].isdigit() for line in lines):
        return {"apps": _csv_apps(["pid, process_name, used_memory", *lines]), "error": None}
    try:
        smi = parse_nvidia_smi(text)
    except ParseError:
        smi = {"form": None}
    if smi.get("form") == "failure":
        return {"apps": [], "error": smi["error"], "message": smi["message"]}
    raise ParseError("not a compute-apps CSV (pid, process_name, used_memory) or Processes table")


# --- ls -l /dev/nvidia* ---------------------------------------------------------------------

# "crw-rw-rw- 1 root root 195,   0 Jul 21 11:50 /dev/nvidia0" (busybox and GNU ls alike)
_DEVICE = re.compile(r"^(c[-rwxsStT]{9})\S*\s+\d+\s+(\S+)\s+(\S+)\s+(\d+),\s*(\d+)\s+.*?(\S+)$")
_NO_DEVICES = re.compile(r"cannot access .*nvidia.*No such file or directory", re.I)


def _device_lines(text: str) -> list[tuple[str, str, str, int, int, str]]:
    """(mode, owner, group, major, minor, name) of each character device line."""
    found = []
    for line in text.splitlines():
        if match := _DEVICE.match(line.strip()):
            mode, owner, group, major, minor, path = match.groups()
            found.append((mode, owner, group, int(major), int(minor), path.rsplit("/", 1)[-1]))
    return found


def parse_dev_nvidia(text: str) -> dict[str, Any]:
    """`ls -l /dev/nvidia*` -> {"devices": {name: {"major", "minor"}}, "gpus", "has_ctl",
    "has_uvm", "error"}; error "no-device-nodes" when ls found no /dev/nvidia* at all.
    """
    devices = {
        name: {"major": major, "minor": minor} for *_, major, minor, name in _device_lines(text)
    }
    if not devices and not _NO_DEVICES.search(text):
        raise ParseError("no character device lines (expected the output of `ls -l /dev/nvidia*`)")
    return {
        "devices": devices,
        "gpus": sorted(n for n in devices if re.fullmatch(r"nvidia\d+", n)),
        "has_ctl": "nvidiactl" in devices,
        "has_uvm": "nvidia-uvm" in devices,
        "error": None if devices else "no-device-nodes",
    }


def parse_dev_nvidia_access(text: str) -> dict[str, Any]:
    """As parse_dev_nvidia, plus "access": {name: {"mode", "owner", "group"}} as ls shows them
    where it ran ("crw-rw----"; in an unprivileged container "nobody"/"nogroup" for host ids
    outside its idmap). The doctor's dev-nvidia KIND."""
    access = {
        name: {"mode": mode, "owner": owner, "group": group}
        for mode, owner, group, _, _, name in _device_lines(text)
    }
    return {**parse_dev_nvidia(text), "access": access}


# --- ollama -v / GET /api/version -----------------------------------------------------------

_SERVER_VERSION = re.compile(r"ollama version is (\S+)")
_CLIENT_VERSION = re.compile(r"client version is (\S+)")
_VERSION_NUMBER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")


def parse_ollama_version(text: str) -> dict[str, Any]:
    """`ollama -v` (or the JSON of GET /api/version) -> {"server", "client", "error"}.

    `ollama -v` prints the server's version and, when it differs or no server answers,
    "Warning: client version is X" (ollama cmd/cmd.go versionHandler).
    """
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ParseError(f"/api/version JSON is invalid: {exc.msg}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("version"), str):
            raise ParseError('/api/version JSON has no "version" string')
        return {"server": data["version"], "client": None, "error": None}
    server = _SERVER_VERSION.search(text)
    client = _CLIENT_VERSION.search(text)
    if re.search(r"ollama\W+(?:command )?not found|command not found: ollama", text):
        return {"server": None, "client": None, "error": "not-found"}
    if not server and not client:
        raise ParseError("no 'ollama version is X' line (expected the output of `ollama -v`)")
    unreachable = "could not connect" in text
    return {
        "server": server.group(1) if server else None,
        "client": client.group(1) if client else (server.group(1) if server else None),
        "error": "server-unreachable" if unreachable else None,
    }


def version_tuple(version: str | None) -> tuple[int, int, int] | None:
    """ "0.5.13" / "v0.12.11-rc1" -> (0, 5, 13); None for no or odd versions ("0.0.0" too)."""
    match = _VERSION_NUMBER.match(version or "")
    if not match:
        return None
    parsed = (int(match.group(1)), int(match.group(2)), int(match.group(3)))
    return None if parsed == (0, 0, 0) else parsed  # dev builds report 0.0.0


# --- NVIDIA PCI functions from sysfs (facts/host.py NvidiaPciFunctions) ----------------------

_SYSFS_LINE = re.compile(r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7] 0x[0-9a-f]{4} ")


def parse_pci_sysfs(text: str) -> dict[str, Any]:
    """The sysfs loop of facts.host.NvidiaPciFunctions -> {"functions": [...]} (NVIDIA only)."""
    lines = text.splitlines()
    if not any(_SYSFS_LINE.match(line) for line in lines):
        raise ParseError("no '<address> 0x<vendor> 0x<device> 0x<class>' lines from sysfs")
    return {"functions": NvidiaPciFunctions().process(lines)}


# --- IOMMU groups (the facts.kvm.IommuGroups loop, with a line when there are none) ---------

# What the capture prints when /sys/kernel/iommu_groups is empty: the IOMMU is off.
NO_IOMMU_GROUPS = "no IOMMU groups in /sys/kernel/iommu_groups"
_GROUP_HEADER = re.compile(r"^IOMMU group (\d+)\b", re.M)


def parse_iommu_listing(text: str) -> dict[str, Any]:
    """The IOMMU group loop -> {"groups": {"<n>": [devices]}, "count"}; count 0 and groups {}
    when the capture says NO_IOMMU_GROUPS. Devices as facts.parsers.pci.parse_iommu_groups."""
    if NO_IOMMU_GROUPS in text:
        return {"groups": {}, "count": 0}
    try:
        groups: dict[str, list[dict[str, Any]]] = parse_iommu_groups(text)["groups"]
    except ParseError:
        # The loop without lspci prints bare "IOMMU group N" lines: the IOMMU is on all the same.
        numbers = set(_GROUP_HEADER.findall(text))
        if not numbers:
            raise
        return {"groups": {}, "count": len(numbers)}
    return {"groups": groups, "count": len(groups)}


# --- modprobe.d lines about vfio-pci and the NVIDIA drivers ---------------------------------

# modprobe.d(5): "options MODULE OPTION...", "softdep MODULE pre: M... post: M...",
# "blacklist MODULE", "install MODULE COMMAND"; module names treat "-" and "_" alike.
_MODPROBE = re.compile(
    r"^(?:(?P<path>/\S+?):)?\s*(?P<verb>options|softdep|blacklist|install)\s+(?P<rest>.+)$"
)


def _module(name: str) -> str:
    return name.replace("-", "_")


def parse_modprobe(text: str) -> dict[str, Any]:
    """`grep -sHE 'vfio|nvidia|nouveau' /etc/modprobe.d/*.conf ...` (or `cat` of such a file)
    -> {"vfio_ids", "softdeps", "blacklisted", "options"}.

    vfio_ids: vendor:device pairs of `options vfio-pci ids=...`; softdeps: {module: [modules
    loaded before it]}; blacklisted: modules; options: {module: [option, ...]}. Module names
    use "_". Comments are skipped; text with no such line is a ParseError.
    """
    ids: list[str] = []
    softdeps: dict[str, list[str]] = {}
    blacklisted: list[str] = []
    options: dict[str, list[str]] = {}
    seen = False
    for line in text.splitlines():
        match = _MODPROBE.match(line.strip())
        if not match:
            continue
        seen = True
        verb, words = match.group("verb"), match.group("rest").split("#", 1)[0].split()
        if not words:
            continue
        module = _module(words[0])
        if verb == "options":
            options.setdefault(module, []).extend(words[1:])
            if module == "vfio_pci":
                for option in words[1:]:
                    key, _, value = option.partition("=")
                    if key == "ids":
                        ids += [i.lower() for i in value.split(",") if i]
        elif verb == "softdep":
            pre = words[words.index("pre:") + 1 :] if "pre:" in words else []
            pre = pre[: pre.index("post:")] if "post:" in pre else pre
            softdeps.setdefault(module, []).extend(_module(m) for m in pre)
        elif verb == "blacklist":
            blacklisted.append(module)
    if not seen:
        raise ParseError("no modprobe.d line (options, softdep, blacklist or install)")
    return {
        "vfio_ids": list(dict.fromkeys(ids)),
        "softdeps": softdeps,
        "blacklisted": blacklisted,
        "options": options,
    }


# --- NVIDIA driver versions: the loaded kernel module, the user-space libraries -------------


def parse_nvidia_version(text: str) -> dict[str, Any]:
    """/proc/driver/nvidia/version -> {"version"} (facts.lxc.NvidiaKernelModuleVersion)."""
    from facts.lxc import NvidiaKernelModuleVersion  # here: facts.lxc imports this module

    version = NvidiaKernelModuleVersion().process(text.splitlines())["version"]
    if version is None:
        if "No such file" in text:
            return {"version": None}
        raise ParseError("no 'NVRM version: ... Kernel Module <version>' line")
    return {"version": version}


def parse_nvidia_libs(text: str) -> dict[str, Any]:
    """`ls -1 .../libnvidia-ml.so.*` -> {"versions"} (facts.lxc.NvidiaLibraryVersions); []
    when ls found none."""
    from facts.lxc import NvidiaLibraryVersions  # here: facts.lxc imports this module

    versions = NvidiaLibraryVersions().process(text.splitlines())
    if not versions and "No such file" not in text:
        raise ParseError("no libnvidia-ml.so.<version> path (expected `ls -1` of the libraries)")
    return {"versions": versions}


# --- LXD/Incus: `lxc config show <instance> --expanded` --------------------------------------


def parse_lxd_config(text: str) -> dict[str, Any]:
    """`lxc config show <instance> --expanded` (or `incus config show ...`) -> {"gpu_devices",
    "unix_char", "nvidia_runtime", "privileged", "raw_lxc"}.

    gpu_devices: names of devices of type gpu; unix_char: paths of unix-char devices;
    raw_lxc: facts.parsers.lxc.parse_pve_lxc_conf of the raw.lxc value (it takes LXC's
    "key = value" lines), or null. The YAML layout is LXD's instance config (config:, devices:).
    """
    from facts.parsers.lxc import parse_pve_lxc_conf  # the pve-lxc-conf parser reads raw LXC

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ParseError(f"not YAML: {' '.join(str(exc).split())[:80]}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("devices", {}), dict):
        raise ParseError("no 'config:'/'devices:' mapping (expected `lxc config show --expanded`)")
    if "devices" not in data and "config" not in data:
        raise ParseError("no 'config:'/'devices:' mapping (expected `lxc config show --expanded`)")
    config = data.get("config") or {}
    devices = data.get("devices") or {}
    raw = config.get("raw.lxc")
    return {
        "gpu_devices": sorted(n for n, d in devices.items() if (d or {}).get("type") == "gpu"),
        "unix_char": sorted(
            str(d.get("path") or d.get("source"))
            for d in devices.values()
            if (d or {}).get("type") == "unix-char"
        ),
        "nvidia_runtime": str(config.get("nvidia.runtime", "")).lower() == "true",
        "privileged": str(config.get("security.privileged", "")).lower() == "true",
        "raw_lxc": parse_pve_lxc_conf(raw) if isinstance(raw, str) and raw.strip() else None,
    }
