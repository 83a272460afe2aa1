"""Checksums of Ollama release archives the project knows, so a default install is pinned.

Add a line per release you use, copied from the release's sha256sum.txt; or set
ollama_archive_sha256. An archive whose checksum is not known is refused.
"""

from __future__ import annotations

# (version, arch) -> sha256 of ollama-linux-<arch>.tar.zst.
# 0.32.7 amd64: from chromebrew packages/ollama.rb (source_sha256 for the GitHub release
# asset); re-check against the release's sha256sum.txt when you can reach it.
KNOWN_ARCHIVES: dict[tuple[str, str], str] = {
    ("0.32.7", "amd64"): "ed1e39fe8fea90bd7f4c723bd949a2cea3153e111220ec0a183ea5b8dc8b2cae",
}

# uname -m -> the arch name in Ollama's archive names (ollama-linux-{arch}.tar.zst).
ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
