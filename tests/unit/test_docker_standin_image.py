"""The stand-in image archive (a test fixture): `docker save` layout, official image's shape."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

from tests.standin.docker_image import build_image_archive, image_name


def rootfs(tmp_path: Path) -> Path:
    path = tmp_path / "rootfs.tar"
    with tarfile.open(path, "w") as tar:
        data = b"root:x:0:0::/root:/bin/sh\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def test_archive_is_docker_save_layout_and_deterministic(tmp_path: Path) -> None:
    base = rootfs(tmp_path)
    first = build_image_archive("0.32.7", base, tmp_path / "a.tar")
    second = build_image_archive("0.32.7", base, tmp_path / "b.tar")
    assert (
        hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()
    )
    with tarfile.open(first) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert manifest[0]["RepoTags"] == [image_name("0.32.7")]
        config = json.load(tar.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
        layers = [tar.extractfile(name).read() for name in manifest[0]["Layers"]]  # type: ignore[union-attr]
    diff_ids = [f"sha256:{hashlib.sha256(layer).hexdigest()}" for layer in layers]
    assert config["rootfs"]["diff_ids"] == diff_ids
    assert config["config"]["Entrypoint"] == ["/usr/bin/ollama"]
    assert config["config"]["Cmd"] == ["serve"]
    assert "OLLAMA_HOST=0.0.0.0:11434" in config["config"]["Env"]
    assert "NOT Ollama" in config["config"]["Labels"]["org.opencontainers.image.description"]
    with tarfile.open(fileobj=io.BytesIO(layers[1])) as standin:
        script = standin.extractfile("usr/bin/ollama").read().decode()  # type: ignore[union-attr]
        assert standin.getmember("usr/bin/ollama").mode == 0o755
    assert 'STANDIN_VERSION = "0.32.7"' in script and "TEST STAND-IN" in script
