"""Parser for everything `nvidia-smi` prints: the table, `-L`, CSV queries and its failures.

A failure message is a valid result (gpus [], error set), not a ParseError: it is exactly
what the doctor needs to see. Only text that is none of these forms is a ParseError.

CSV query forms (`nvidia-smi --query-gpu=... --format=csv[,noheader][,nounits]`):
- with a header the columns are taken from the header, in its order, whatever they are
  ("memory.total [MiB]" -> memory.total; "gpu_name"/"gpu_uuid"/"gpu_bus_id" are aliases);
- without a header the fields cannot be known, so parse_nvidia_smi assumes one of the two
  orders this project asks for, and only when the column count matches:
    7 columns: index,name,memory.total,memory.used,driver_version,pci.bus_id,uuid
    4 columns: name,memory.total,driver_version,pci.bus_id
  any other noheader CSV is a ParseError; call parse_nvidia_smi_query(text, fields) instead.
- memory.free and compute_cap get named keys (memory_free_mib, compute_cap) only when the
  query asks for them; compute_cap is refused by drivers before 510 ('Field "compute_cap" is
  not a valid field to query.', huggingface/candle#733), so the fixed orders leave it out.
"""

from __future__ import annotations

import re
from typing import Any

from facts.parsers import ParseError

NOHEADER_7 = [
    "index",
    "name",
    "memory.total",
    "memory.used",
    "driver_version",
    "pci.bus_id",
    "uuid",
]
NOHEADER_4 = ["name", "memory.total", "driver_version", "pci.bus_id"]

_ALIASES = {"gpu_name": "name", "gpu_uuid": "uuid", "gpu_bus_id": "pci.bus_id", "count": "count"}
_MAPPED = {
    "index": "index",
    "name": "name",
    "memory.total": "memory_total_mib",
    "memory.used": "memory_used_mib",
    "driver_version": "driver_version",
    "pci.bus_id": "pci_bus_id",
    "uuid": "uuid",
}
# Named keys, present only when queried (not under "extra").
_NAMED_WHEN_QUERIED = {"memory.free": "memory_free_mib", "compute_cap": "compute_cap"}
_MIB_FIELDS = {"memory.total", "memory.used", "memory.free", "memory.reserved"}

# (regex, error code); checked in this order, first match wins.
_FAILURES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"couldn.t communicate with the NVIDIA driver", re.I), "no-driver"),
    (re.compile(r"Driver/library version mismatch", re.I), "version-mismatch"),
    (re.compile(r"Failed to initialize NVML: Unknown Error", re.I), "nvml-unknown-error"),
    (re.compile(r"couldn.t find libnvidia-ml\.so", re.I), "no-nvml-library"),
    (re.compile(r"No devices were found", re.I), "no-devices"),
    (
        re.compile(
            r"nvidia-smi\W+(?:command )?not found|nvidia-smi.*(?:not found in \$PATH|No such file)",
            re.I,
        ),
        "not-found",
    ),
    (re.compile(r"(?:command not found|No such file or directory).*nvidia-smi", re.I), "not-found"),
    (re.compile(r"Failed to initialize NVML", re.I), "nvml-init-failed"),
]
_NVML_VERSION = re.compile(r"NVML library version:\s*([\d.]+)")

_DRIVER = re.compile(r"(?:Driver|KMD) Version:\s*([\d.]+)")
# "|   0  NVIDIA GeForce RTX 3090        On  | 00000000:01:00.0  On |   N/A |"
_GPU_ROW = re.compile(
    r"^\|\s*(\d+)\s+(.+?)\s+(?:On|Off|WDDM|TCC|N/A)\s*\|\s*"
    r"([0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7])\s"
)
_MEMORY = re.compile(r"(\d+)MiB\s*/\s*(\d+)MiB")
_LIST = re.compile(r"^GPU (\d+): (.+?) \(UUID: ((?:GPU|MIG)-[0-9A-Fa-f-]+)\)\s*$")
_HEADER_CELL = re.compile(r"^([a-z_][a-z0-9_.]*)(?: \[[^\]]*\])?$")
# "8.6", "12.0": major.minor (nvidia-smi --help-query-gpu, "compute_cap").
_COMPUTE_CAP = re.compile(r"^\d+\.\d+$")


def _gpu(**values: Any) -> dict[str, Any]:
    gpu: dict[str, Any] = {
        "index": None,
        "name": None,
        "memory_total_mib": None,
        "memory_used_mib": None,
        "driver_version": None,
        "pci_bus_id": None,
        "uuid": None,
    }
    gpu.update(values)
    return gpu


def _result(
    gpus: list[dict[str, Any]],
    form: str,
    error: str | None = None,
    message: str | None = None,
    nvml: str | None = None,
) -> dict[str, Any]:
    return {
        "gpus": gpus,
        "form": form,
        "error": error,
        "message": message,
        "nvml_library_version": nvml,
    }


def _failure(text: str) -> dict[str, Any] | None:
    for pattern, code in _FAILURES:
        for line in text.splitlines():
            if pattern.search(line):
                nvml = _NVML_VERSION.search(text)
                return _result([], "failure", code, line.strip(), nvml.group(1) if nvml else None)
    return None


def _parse_table(text: str) -> dict[str, Any] | None:
    driver = _DRIVER.search(text)
    gpus: list[dict[str, Any]] = []
    for line in text.splitlines():
        if line.startswith("| Processes") or "Processes:" in line:
            break
        if match := _GPU_ROW.match(line):
            name = match.group(2).strip()
            gpus.append(
                _gpu(
                    index=int(match.group(1)),
                    name=name,
                    pci_bus_id=match.group(3),
                    driver_version=driver.group(1) if driver else None,
                    name_truncated=name.endswith("..."),
                )
            )
            continue
        memory = _MEMORY.search(line)
        if memory and gpus and gpus[-1]["memory_total_mib"] is None:
            gpus[-1]["memory_used_mib"] = int(memory.group(1))
            gpus[-1]["memory_total_mib"] = int(memory.group(2))
    if not gpus and not driver:
        return None
    if not gpus:
        raise ParseError("nvidia-smi table without any GPU row")
    return _result(gpus, "table")


def _parse_list(text: str) -> dict[str, Any] | None:
    gpus = []
    for line in text.splitlines():
        if match := _LIST.match(line.strip()):
            gpus.append(_gpu(index=int(match.group(1)), name=match.group(2), uuid=match.group(3)))
    return _result(gpus, "list") if gpus else None


def _field(name: str) -> str:
    name = name.strip().lower()
    match = _HEADER_CELL.match(name)
    if not match:
        raise ParseError(f"not an nvidia-smi query field: {name!r}")
    return _ALIASES.get(match.group(1), match.group(1))


def _value(field: str, raw: str) -> Any:
    raw = raw.strip()
    if raw in ("", "N/A", "[N/A]", "[Not Supported]", "[Unknown Error]"):
        return None
    if field in _MIB_FIELDS:
        number = raw.removesuffix("MiB").strip()
        if not number.isdigit():
            raise ParseError(f"{field} is not a MiB count: {raw!r}")
        return int(number)
    if field == "index":
        if not raw.isdigit():
            raise ParseError(f"index is not a number: {raw!r}")
        return int(raw)
    if field == "compute_cap" and not _COMPUTE_CAP.match(raw):
        raise ParseError(f"compute_cap is not major.minor: {raw!r}")
    return raw


def _csv_rows(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in x.split(",")] for x in text.splitlines() if x.strip()]


def parse_nvidia_smi_query(text: str, fields: list[str]) -> dict[str, Any]:
    """A noheader CSV query whose fields the caller knows, e.g. ["index", "name", ...].

    Fields outside the GPU shape keep their value under each GPU's "extra"; memory.free and
    compute_cap are named instead: memory_free_mib (int) and compute_cap ("8.6").
    """
    failure = _failure(text)
    if failure:
        return failure
    names = [_field(f) for f in fields]
    gpus = []
    for number, cells in enumerate(_csv_rows(text), start=1):
        if len(cells) != len(names):
            raise ParseError(f"CSV line {number} has {len(cells)} columns, expected {len(names)}")
        gpu = _gpu(extra={})
        for name, raw in zip(names, cells, strict=True):
            value = _value(name, raw)
            if name in _MAPPED:
                gpu[_MAPPED[name]] = value
            elif name in _NAMED_WHEN_QUERIED:
                gpu[_NAMED_WHEN_QUERIED[name]] = value
            else:
                gpu["extra"][name] = value
        gpus.append(gpu)
    if not gpus:
        raise ParseError("empty nvidia-smi CSV output")
    return _result(gpus, "csv")


def _parse_csv(text: str) -> dict[str, Any] | None:
    rows = _csv_rows(text)
    if not rows:
        return None
    first = rows[0]
    known = {*_MAPPED, *_NAMED_WHEN_QUERIED}
    if all(_HEADER_CELL.match(cell.lower()) for cell in first) and any(
        _ALIASES.get(c.split(" [")[0].lower(), c.split(" [")[0].lower()) in known for c in first
    ):
        body = "\n".join(", ".join(r) for r in rows[1:])
        if not body:
            return _result([], "csv")
        return parse_nvidia_smi_query(body, first)
    width = {len(r) for r in rows}
    if width == {7}:
        return parse_nvidia_smi_query(text, NOHEADER_7)
    if width == {4}:
        return parse_nvidia_smi_query(text, NOHEADER_4)
    if len(first) > 1 and len(width) == 1:
        raise ParseError(
            f"noheader CSV with {len(first)} columns: the field order is unknown, "
            "use parse_nvidia_smi_query(text, fields)"
        )
    return None


def parse_nvidia_smi(text: str) -> dict[str, Any]:
    """Any nvidia-smi output -> {"gpus": [...], "form", "error", "message", "nvml_library_version"}.

    gpus: index, name, memory_total_mib, memory_used_mib, driver_version, pci_bus_id, uuid
    (null where the form does not show it); the table form adds name_truncated, CSV adds extra
    and, where the query has them, memory_free_mib and compute_cap.
    form: "table" | "list" | "csv" | "failure".
    error: null or "no-driver", "version-mismatch", "nvml-unknown-error", "no-nvml-library",
    "no-devices", "not-found", "nvml-init-failed"; message: the line that said so.
    """
    if not text.strip():
        raise ParseError("empty input: no nvidia-smi output")
    for parse in (_failure, _parse_table, _parse_list, _parse_csv):
        result = parse(text)
        if result is not None:
            return result
    first = text.strip().splitlines()[0][:60]
    raise ParseError(f"not nvidia-smi output (table, -L, CSV or a known failure): {first!r}")
