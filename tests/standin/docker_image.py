"""Build a `docker save` archive of an image holding the Ollama TEST STAND-IN (a test fixture).

The docker topology's integration tests cannot pull `ollama/ollama`, so they `docker load`
this instead, through the same air-gapped path a user takes (docker_image_archive). The image
is laid out like the official one where the role relies on it: ENTRYPOINT ["/usr/bin/ollama"]
with CMD ["serve"], OLLAMA_HOST=0.0.0.0:11434 and the NVIDIA_* variables in its ENV,
`ollama` on PATH (so `docker exec <name> ollama ps` works), state in /root/.ollama. It is
named as a stand-in (ollama-rig/ollama-standin:<version>) and says so in its labels;
/usr/bin/ollama is tests/standin/ollama_standin.py with the version filled in.

Two layers: a Python root file system that mmdebstrap extracts from Debian bookworm's own
packages (no maintainer scripts, no network at run time), and the stand-in. The archive is
written here in Docker's `docker save` layout (manifest.json, config, one layer.tar per
layer), which every Docker release loads; no engine is needed to build it.

    python tests/standin/docker_image.py --version 0.32.7 --out DIR
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from tests.standin.build_archive import FIXED_MTIME, render_standin

REPOSITORY = "ollama-rig/ollama-standin"
MIRROR = "http://deb.debian.org/debian"
# python3 runs the stand-in; dash gives `sh` for a look inside.
ROOTFS_PACKAGES = ["python3", "dash"]
ROOTFS_NAME = (
    "standin-rootfs-bookworm-"
    + hashlib.sha256(" ".join(ROOTFS_PACKAGES).encode()).hexdigest()[:8]
    + ".tar"
)
CREATED = "2024-01-01T00:00:00Z"  # FIXED_MTIME: the config is the same on every build
LABEL = (
    "OLLAMA TEST STAND-IN (test fixture of ollama-rig), NOT Ollama: it loads no model and uses"
    " no GPU"
)
# What the official image sets that the role and its checks rely on (FACTS.md sections 3, 6).
ENV = [
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME=/root",  # the extracted root file system has no /etc/passwd to look it up in
    "OLLAMA_HOST=0.0.0.0:11434",
    "NVIDIA_VISIBLE_DEVICES=all",
    "NVIDIA_DRIVER_CAPABILITIES=compute,utility",
]


def image_name(version: str) -> str:
    return f"{REPOSITORY}:{version}"


def build_rootfs(cache_dir: Path) -> Path:
    """A tar of a minimal bookworm with python3 (`mmdebstrap --variant=extract`), cached by name.

    + cache_dir: kept between builds; the name changes with ROOTFS_PACKAGES
    """
    path = Path(cache_dir) / ROOTFS_NAME
    if path.is_file():
        return path
    if shutil.which("mmdebstrap") is None:
        raise RuntimeError(
            "building the stand-in image needs mmdebstrap (apt-get install mmdebstrap)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".part")
    subprocess.run(
        [
            "mmdebstrap",
            "--variant=extract",
            f"--include={','.join(ROOTFS_PACKAGES)}",
            "--format=tar",
            "bookworm",
            str(part),
            MIRROR,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    )
    part.rename(path)
    return path


def _standin_layer(version: str) -> bytes:
    members = [
        ("usr/bin/ollama", render_standin(version), 0o755),
        ("root/.ollama/STANDIN-README.txt", (LABEL + "\n").encode(), 0o644),
    ]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for directory in ("root", "root/.ollama"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o700, FIXED_MTIME
            tar.addfile(info)
        for name, data, mode in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, FIXED_MTIME
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, FIXED_MTIME
    tar.addfile(info, io.BytesIO(data))


def build_image_archive(version: str, rootfs: Path, dest: Path) -> Path:
    """Write the `docker save` archive of ollama-rig/ollama-standin:<version>; return its path.

    + version: the Ollama version the stand-in reports, e.g. "0.32.7"
    + rootfs: the tar from build_rootfs()
    + dest: the archive to write
    """
    standin = _standin_layer(version)
    layers = [
        (_sha256_file(rootfs), rootfs, None),
        (hashlib.sha256(standin).hexdigest(), None, standin),
    ]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "config": {
            "Env": ENV,
            "Entrypoint": ["/usr/bin/ollama"],
            "Cmd": ["serve"],
            "ExposedPorts": {"11434/tcp": {}},
            "Labels": {"org.opencontainers.image.description": LABEL},
        },
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{digest}" for digest, _, _ in layers]},
        "history": [
            {"created": CREATED, "created_by": "mmdebstrap --variant=extract python3 (bookworm)"},
            {
                "created": CREATED,
                "created_by": f"Ollama test stand-in {version} as /usr/bin/ollama",
            },
        ],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [
        {
            "Config": config_name,
            "RepoTags": [image_name(version)],
            "Layers": [f"{digest}/layer.tar" for digest, _, _ in layers],
        }
    ]
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w", format=tarfile.GNU_FORMAT) as tar:
        for digest, path, data in layers:
            if path is not None:
                info = tar.gettarinfo(str(path), arcname=f"{digest}/layer.tar")
                info.mtime, info.uid, info.gid, info.uname, info.gname = FIXED_MTIME, 0, 0, "", ""
                with open(path, "rb") as handle:
                    tar.addfile(info, handle)
            else:
                assert data is not None
                _add_bytes(tar, f"{digest}/layer.tar", data)
            _add_bytes(tar, f"{digest}/VERSION", b"1.0")
        _add_bytes(tar, config_name, config_bytes)
        _add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True, help="Ollama version to imitate")
    parser.add_argument("--out", required=True, type=Path, help="output folder (rootfs cached)")
    args = parser.parse_args(argv)
    try:
        rootfs = build_rootfs(args.out)
        archive = build_image_archive(
            args.version, rootfs, args.out / f"ollama-standin-{args.version}.tar"
        )
    except (ValueError, RuntimeError, subprocess.SubprocessError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{image_name(args.version)}  {archive}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
