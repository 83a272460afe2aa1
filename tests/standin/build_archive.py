"""Build an Ollama-release-shaped archive holding the Ollama TEST STAND-IN (a test fixture).

Integration tests install this archive the way the project installs a real Ollama release
(FACTS.md section 5): `ollama-linux-amd64.tar.zst` (or `.tgz`) unpacked into /usr/local,
holding `bin/ollama` and `lib/ollama/`. Here `bin/ollama` is ollama_standin.py with its
version filled in, and `lib/ollama/` holds a README saying so plus a dummy library file.

The output is deterministic (fixed mtimes, owners and order; gzip without a timestamp;
single-threaded zstd), so one version always gives one sha256 to pin in a test.

    python tests/standin/build_archive.py --version 0.32.7 --out DIR [--format tgz|tar.zst]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

STANDIN_SOURCE = Path(__file__).with_name("ollama_standin.py")
VERSION_LINE = 'STANDIN_VERSION = "@VERSION@"'
# Ollama release versions: 0.32.7, 0.33.0-rc2.
VERSION_PATTERN = re.compile(r"\d+\.\d+\.\d+(-rc\d+)?")
FORMATS = ("tar.zst", "tgz")
ARCHIVE_STEM = "ollama-linux-amd64"
# 2024-01-01T00:00:00Z: any constant works; it only has to be the same on every build.
FIXED_MTIME = 1704067200

STANDIN_README = """\
OLLAMA TEST STAND-IN (test fixture) - this is NOT Ollama.

This archive is laid out like Ollama's release archive (bin/ollama, lib/ollama/) so that
ollama-rig's integration tests can exercise the install, service, model and verify flows
offline. bin/ollama is a small Python script (tests/standin/ollama_standin.py in
ollama-rig) that imitates Ollama {version}'s CLI and HTTP API with simulated sizes and GPU
placement. It loads no model and uses no GPU. libggml-base.so next to this file is a dummy
text file, not a library.

Only a real Ollama on real hardware can show a model running 100% on the GPU.
"""

DUMMY_LIBRARY = """\
Dummy file from the Ollama test stand-in archive: not a shared library.
Real Ollama releases ship their GGML backends here.
"""


def render_standin(version: str) -> bytes:
    """The stand-in script with its version filled in: the bytes installed as bin/ollama.

    + version: the Ollama release version to imitate, e.g. "0.32.7"
    """
    if not VERSION_PATTERN.fullmatch(version):
        raise ValueError(f"not an Ollama release version: {version!r} (want e.g. 0.32.7)")
    source = STANDIN_SOURCE.read_text()
    if source.count(VERSION_LINE) != 1:
        raise RuntimeError(f"{STANDIN_SOURCE} must contain the line {VERSION_LINE!r} once")
    return source.replace(VERSION_LINE, f'STANDIN_VERSION = "{version}"').encode()


def _tar_bytes(version: str) -> bytes:
    """An uncompressed tar, members listed like Ollama's release job lists them (files only,
    no directory entries, owner 0:0)."""
    members = [
        ("bin/ollama", render_standin(version), 0o755),
        ("lib/ollama/STANDIN-README.txt", STANDIN_README.format(version=version).encode(), 0o644),
        ("lib/ollama/libggml-base.so", DUMMY_LIBRARY.encode(), 0o644),
    ]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data, mode in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            info.mtime = FIXED_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _zstd(data: bytes) -> bytes:
    zstd = shutil.which("zstd")
    if zstd is None:
        raise RuntimeError(
            "building ollama-linux-amd64.tar.zst needs the `zstd` command (apt-get install "
            "zstd); Python's zstandard module is not used. Or build with fmt='tgz'."
        )
    # One thread: multi-threaded zstd output can depend on the number of cores.
    result = subprocess.run(
        [zstd, "-19", "-T1", "-q", "-c", "--no-progress"],
        input=data,
        capture_output=True,
        check=True,
        timeout=120,
    )
    return result.stdout


def _gzip(data: bytes) -> bytes:
    buffer = io.BytesIO()
    # mtime=0 and no file name: the gzip header then carries nothing build-specific.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as gz:
        gz.write(data)
    return buffer.getvalue()


def build_archive(version: str, dest_dir: Path, fmt: str = "tar.zst") -> Path:
    """Write ollama-linux-amd64.<fmt> holding the stand-in for `version`; return its path.

    + version: the Ollama release version the stand-in reports, e.g. "0.32.7"
    + dest_dir: folder to write into (created if missing)
    + fmt: "tar.zst" (needs the zstd command) or "tgz"

    Example: build_archive("0.32.7", Path("build/standin"), fmt="tgz")
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown archive format {fmt!r}: use one of {', '.join(FORMATS)}")
    tar = _tar_bytes(version)
    payload = _zstd(tar) if fmt == "tar.zst" else _gzip(tar)
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / f"{ARCHIVE_STEM}.{fmt}"
    path.write_bytes(payload)
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True, help="Ollama version to imitate")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--format", choices=FORMATS, default="tar.zst", dest="fmt")
    args = parser.parse_args(argv)
    try:
        path = build_archive(args.version, args.out, args.fmt)
    except (ValueError, RuntimeError, subprocess.SubprocessError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{sha256_of(path)}  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
