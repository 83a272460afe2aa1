"""Operations of the native role that pyinfra has no ready operation for."""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.files import Sha256File

from facts.ollama import RELEASE_MARKER, OllamaApiVersion, OllamaRelease
from roles.commands import fail_command

OLLAMA_OFFLINE_HINT = (
    "for a host without internet set ollama_archive_path to a local copy of the archive"
)
OLLAMA_KEPT = "the installed Ollama is left as it was"


@operation()
def fetch_archive(
    url: str,
    sha256: str,
    dest: str,
    offline_hint: str = OLLAMA_OFFLINE_HINT,
    kept: str = OLLAMA_KEPT,
):
    """
    Download a pinned file and keep it only if its sha256 matches.

    + url: where to download it from
    + sha256: the checksum it must have
    + dest: where to keep it on the host
    + offline_hint: what to do when the URL cannot be reached (shown in the error)
    + kept: what is left unchanged when the checksum is wrong (shown in the error)

    A failed download or a wrong checksum leaves nothing at dest, so nothing is unpacked.
    """
    if host.get_fact(Sha256File, path=dest) == sha256:
        host.noop(f"{dest} is already there with the expected sha256")
        return
    part, q_url = shlex.quote(dest + ".part"), shlex.quote(url)
    yield f"mkdir -p {shlex.quote(dest.rsplit('/', 1)[0])}"
    yield (
        f"curl -fsSL --retry 3 --connect-timeout 20 -o {part} {q_url} || "
        f"{{ rm -f {part}; " + fail_command(f"cannot download {url}; {offline_hint}") + "; }"
    )
    yield (
        f'actual=$(sha256sum {part} | cut -d" " -f1); '
        f'if [ "$actual" != {sha256} ]; then rm -f {part}; '
        f'echo "ollama-rig: checksum mismatch for {url}: expected {sha256}, got $actual;'
        f' archive refused, {kept}" >&2; exit 1; fi; '
        f"mv -f {part} {shlex.quote(dest)}"
    )


@operation()
def unpack_release(archive: str, prefix: str, marker: str):
    """
    Install a release archive under prefix, replacing an old lib/ollama, as Ollama's installer does.

    + archive: the verified archive on the host
    + prefix: install prefix (bin/ollama, lib/ollama/)
    + marker: "<version> <sha256>" recorded with the release, so the same one is not unpacked twice
    """
    if host.get_fact(OllamaRelease, prefix=prefix) == marker:
        host.noop(f"ollama {marker.split()[0]} is installed under {prefix}")
        return
    q_prefix, q_archive = shlex.quote(prefix), shlex.quote(archive)
    # Unpack beside the target (same file system), then swap: a bad archive leaves the old install.
    yield (
        f"set -e; mkdir -p {q_prefix}/bin {q_prefix}/lib; "
        f"stage=$(mktemp -d {q_prefix}/.ollama-rig.XXXXXX); "
        f'tar -C "$stage" -xf {q_archive} || {{ rm -rf "$stage"; '
        + fail_command(f"cannot unpack {archive}")
        + "; }; "
        '[ -x "$stage/bin/ollama" ] || { rm -rf "$stage"; '
        + fail_command(f"{archive} has no bin/ollama")
        + "; }; "
        f'mkdir -p "$stage/lib/ollama"; rm -rf {q_prefix}/lib/ollama; '
        f'mv "$stage/lib/ollama" {q_prefix}/lib/ollama; '
        f'mv -f "$stage/bin/ollama" {q_prefix}/bin/ollama; rm -rf "$stage"; '
        f"echo {shlex.quote(marker)} > {q_prefix}/{RELEASE_MARKER}; "
        # Older archives in the cache are not needed any more (each is ~1.4 GB).
        f"find {shlex.quote(archive.rsplit('/', 1)[0])} -maxdepth 1 -type f"
        f" ! -name {shlex.quote(archive.rsplit('/', 1)[1])} -delete"
    )


@operation()
def wait_for_api(
    api_url: str,
    version: str,
    timeout: int,
    who: str = "ollama.service",
    logs: str = "journalctl -u ollama.service -n 20 --no-pager",
    log_title: str = "last journal lines",
    hint: str = "",
):
    """
    Wait until GET /api/version answers the pinned version; on timeout show the server's log.

    + api_url: base URL of the API on the host
    + version: the version it must answer
    + timeout: seconds to wait
    + who: what runs the server, as the error names it
    + logs: shell command that prints the server's last log lines
    + log_title: how the error introduces them
    + hint: added to the error after the last answer (e.g. a likely cause)
    """
    if host.get_fact(OllamaApiVersion, api_url=api_url) == version:
        host.noop(f"{api_url} answers version {version}")
        return
    url = shlex.quote(f"{api_url}/api/version")
    yield (
        f"end=$(( $(date +%s) + {int(timeout)} )); while :; do "
        f"v=$(curl -fsS --max-time 3 {url} 2>/dev/null"
        ' | sed -n \'s/.*"version" *: *"\\([^"]*\\)".*/\\1/p\'); '
        f'[ "$v" = {shlex.quote(version)} ] && exit 0; '
        'if [ "$(date +%s)" -ge "$end" ]; then '
        f'echo "ollama-rig: {who} did not answer version {version} at {api_url}/api/version'
        f' within {int(timeout)}s (last answer: ${{v:-none}}{hint}); {log_title}:" >&2; '
        f"{logs} >&2; exit 1; fi; sleep 1; done"
    )
