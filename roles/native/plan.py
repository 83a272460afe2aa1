"""Pure decisions of the native role: the server environment and where the release comes from."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from roles.native.releases import ARCHES, KNOWN_ARCHIVES
from settings import Settings, SettingsError

CACHE_DIR = "/var/cache/ollama-rig"


def ollama_environment(settings: Settings) -> dict[str, str]:
    """The OLLAMA_* variables of the service (FACTS.md section 3), in a stable order."""
    env = {
        "OLLAMA_HOST": settings.ollama_listen,
        "OLLAMA_CONTEXT_LENGTH": str(settings.ollama_context_length),
        "OLLAMA_KEEP_ALIVE": settings.ollama_keep_alive,
        "OLLAMA_KV_CACHE_TYPE": settings.ollama_kv_cache_type,
        "OLLAMA_NUM_PARALLEL": str(settings.ollama_num_parallel),
        "OLLAMA_MODELS": settings.ollama_models_dir,
    }
    if settings.ollama_flash_attention is not None:
        env["OLLAMA_FLASH_ATTENTION"] = "1" if settings.ollama_flash_attention else "0"
    if settings.ollama_origins:
        env["OLLAMA_ORIGINS"] = ",".join(settings.ollama_origins)
    return env


@dataclass(frozen=True)
class ReleaseSource:
    """Where the pinned archive comes from and what it must hash to."""

    version: str
    arch: str
    sha256: str
    url: str | None  # download on the host
    local_path: str | None  # or copy from the machine running pyinfra
    cache_path: str  # where it is kept on the host

    @property
    def marker(self) -> str:
        """What the unpacked release records, so a changed version or archive reinstalls."""
        return f"{self.version} {self.sha256}"


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def release_source(settings: Settings, machine: str) -> ReleaseSource:
    """Resolve the archive for this host's `uname -m`; refuse an unpinned or unknown one."""
    arch = ARCHES.get(machine)
    if arch is None:
        raise SettingsError(
            f"architecture {machine!r} has no Ollama Linux release (x86_64 and aarch64 have)"
        )
    version = settings.ollama_version
    sha256 = settings.ollama_archive_sha256 or KNOWN_ARCHIVES.get((version, arch))
    if sha256 is None:
        raise SettingsError(
            f"settings: ollama_archive_sha256 is not set and Ollama {version} ({arch}) is not in"
            " roles/native/releases.py: set it from the release's sha256sum.txt"
        )
    local = settings.ollama_archive_path
    if local is not None:
        actual = sha256_of(local)
        if actual != sha256:
            raise SettingsError(
                f"settings: ollama_archive_path={local!r} has sha256 {actual}, expected"
                f" {sha256} (ollama {version} {arch}): archive refused, host left unchanged"
            )
    name = Path(local).name if local else f"ollama-{version}-linux-{arch}.tar.zst"
    if local is None and settings.ollama_archive_url.endswith(".tgz"):
        name = name.replace(".tar.zst", ".tgz")
    return ReleaseSource(
        version=version,
        arch=arch,
        sha256=sha256,
        url=None if local else settings.ollama_archive_url.format(version=version, arch=arch),
        local_path=local,
        cache_path=f"{CACHE_DIR}/{sha256[:12]}-{name}",
    )
