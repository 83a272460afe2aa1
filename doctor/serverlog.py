"""The Ollama server log (journal) as the doctor reads it.

facts.parsers.ollama.parse_ollama_log already finds the loads, buffers, offload estimates,
"inference compute" lines and the version; this adds the lines that explain a fallback.
Each line below is quoted from Ollama's source (github.com/ollama/ollama):
- server/routes.go: slog.Info("server config", "env", envconfig.Values()) at every start;
- llm/server.go NewLlamaServer: "requested context size too large for model" num_ctx n_ctx_train,
  after which num_ctx is lowered to the trained context;
- gpu/gpu.go v0.1.23-v0.5.1 (commit 667a2ba18, removed in 4879a234c): "CPU does not have AVX or
  AVX2, disabling GPU support." and later "CPU does not have minimum vector extensions, GPU
  inference disabled";
- gpu/gpu.go v0.1.18-v0.1.22: "CUDA GPU is too old. Falling back to CPU mode. Compute Capability
  detected: X.Y" (CC 5.x gained support in v0.1.23, commit a447a083f);
- discover/llama_server.go (v0.30+): "skipping CUDA device — compute capability not in compiled
  architectures" cc=860 archs=[...].
llama.cpp's own lines give the context (n_ctx, n_seq_max), the KV type and flash attention.
"""

from __future__ import annotations

import re
from typing import Any

from facts.parsers import ParseError
from facts.parsers.ollama import parse_ollama_log
from facts.parsers.units import binary_size

_ENV = re.compile(r'server config"? env="map\[(.*)\]"')
_ENV_PAIR = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):(\[[^\]]*\]|[^\s\]]*)")
_VERSION = re.compile(r"\(version ([^)]+)\)")
_KV_TYPE = re.compile(r"type_k = '(\w+)'|K \((\w+)\):")
_FLASH = re.compile(r"flash_attn\s*=\s*(\w+)")
_N_CTX = re.compile(r"\bn_ctx\s*=\s*(\d+)|--ctx-size (\d+)")
_N_SEQ = re.compile(r"\bn_seq_max\s*=\s*(\d+)|--parallel (\d+)")
_TRAINED = re.compile(r"n_ctx_train\s*(?:=\s*|\()(\d+)")
_CAPPED = re.compile(
    r"requested context size too large for model.*?num_ctx=(\d+) n_ctx_train=(\d+)"
)
_AVAILABLE = re.compile(r'memory\.available="\[([^\]]*)\]"')
_SIZE = re.compile(r"(\d+(?:\.\d+)?) ([KMGT]iB|B)")
_NO_AVX = re.compile(
    r"CPU does not have AVX or AVX2, disabling GPU support|"
    r"CPU does not have minimum vector extensions, GPU inference disabled"
)
_CC_TOO_OLD = re.compile(r"CUDA GPU is too old\..*Compute Capability detected: (\d+)\.(\d+)")
_CC_SKIPPED = re.compile(r"compute capability not in compiled architectures.*?\bcc=(\d+)")
_ON = {"1", "true", "enabled", "on"}
_OFF = {"0", "false", "disabled", "off"}


def _last(pattern: re.Pattern[str], lines: list[str]) -> tuple[str, re.Match[str]] | None:
    for line in reversed(lines):
        if match := pattern.search(line):
            return line.strip(), match
    return None


def _group(match: re.Match[str]) -> str:
    return next(g for g in match.groups() if g is not None)


def _int_of(pattern: re.Pattern[str], lines: list[str]) -> int | None:
    found = _last(pattern, lines)
    return int(_group(found[1])) if found else None


def _env(lines: list[str]) -> dict[str, str]:
    found = _last(_ENV, lines)
    return dict(_ENV_PAIR.findall(found[1].group(1))) if found else {}


def _flash(lines: list[str]) -> bool | None:
    found = _last(_FLASH, lines)
    if found:
        value = found[1].group(1).lower()
        return True if value in _ON else False if value in _OFF else None
    return True if any("--flash-attn" in line for line in lines) else None


def _compute_capability(cc_digits: str) -> str:
    """ "860" (Ollama's arch form) -> "8.6"; "1200" -> "12.0"."""
    return f"{int(cc_digits[:-2])}.{cc_digits[-2]}"


def _available(lines: list[str]) -> list[int]:
    """Free VRAM per GPU from the scheduler's last "offload" line (memory.available=[...])."""
    found = _last(_AVAILABLE, lines)
    if not found:
        return []
    return [binary_size(f"{n} {unit}") for n, unit in _SIZE.findall(found[1].group(1))]


def parse_server_log(text: str) -> dict[str, Any]:
    """Server log -> facts.parsers.ollama's result under "base" (None if it found nothing),
    plus env, version, kv_type, flash_attention, n_ctx, n_seq, n_ctx_train, vram_available
    (bytes per GPU, older schedulers' offload line), capped
    {num_ctx, n_ctx_train, line}, no_avx (line), cc_too_old {cc, line}, cc_skipped {cc, line}.
    """
    lines = text.splitlines()
    if "insufficient permissions" in text and "journal" in text.lower():
        raise ParseError("the journal is not readable by this user (pyinfra --sudo, or sudo)")
    if text.strip() == "-- No entries --":
        raise ParseError("the journal has no ollama entries since this boot")
    try:
        base: dict[str, Any] | None = parse_ollama_log(text)
    except ParseError:
        base = None
    version = base.get("version") if base else None
    if version is None and (found := _last(_VERSION, [x for x in lines if "Listening" in x])):
        version = found[1].group(1)
    kv = _last(_KV_TYPE, lines)
    capped = _last(_CAPPED, lines)
    no_avx = _last(_NO_AVX, lines)
    too_old = _last(_CC_TOO_OLD, lines)
    skipped = _last(_CC_SKIPPED, lines)
    result = {
        "base": base,
        "env": _env(lines),
        "version": version,
        "kv_type": _group(kv[1]).lower() if kv else None,
        "flash_attention": _flash(lines),
        "n_ctx": _int_of(_N_CTX, lines),
        "n_seq": _int_of(_N_SEQ, lines),
        "n_ctx_train": _int_of(_TRAINED, lines),
        "vram_available": _available(lines),
        "capped": {
            "num_ctx": int(capped[1].group(1)),
            "n_ctx_train": int(capped[1].group(2)),
            "line": capped[0],
        }
        if capped
        else None,
        "no_avx": no_avx[0] if no_avx else None,
        "cc_too_old": {"cc": f"{too_old[1].group(1)}.{too_old[1].group(2)}", "line": too_old[0]}
        if too_old
        else None,
        "cc_skipped": {"cc": _compute_capability(skipped[1].group(1)), "line": skipped[0]}
        if skipped
        else None,
    }
    found_any = base is not None or any(
        result[key] for key in ("env", "version", "capped", "no_avx", "cc_too_old", "cc_skipped")
    )
    if not found_any:
        raise ParseError("no Ollama server log lines found (server config, offload, inference ...)")
    return result
