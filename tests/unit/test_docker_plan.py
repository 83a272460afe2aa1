"""The docker topology's pure decisions: container spec from settings, its diff against a real
`docker inspect`, and what stops a deploy before any change."""

from __future__ import annotations

import copy
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from roles.docker.plan import (
    ContainerSpec,
    DockerHostFacts,
    GpuRequest,
    archive_tags,
    check_docker_host,
    check_image_archive,
    container_environment,
    container_spec,
    docker_cli,
    gpu_requests,
    image_ref,
    port_bindings,
    port_conflict,
    spec_changes,
)
from roles.native.plan import ollama_environment
from settings import Settings, SettingsError, settings_from_data
from tests.standin.docker_image import build_image_archive

FIXTURES = Path(__file__).parents[1] / "fixtures" / "docker"
ENGINE_OK = {"error": None, "server_version": "20.10.24+dfsg1", "nvidia_runtime": False}
STANDIN = "ollama-rig/ollama-standin:0.32.7"


def docker_settings(**data: Any) -> Settings:
    return settings_from_data({"topology": "docker", **data})


def inspect(name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = json.loads((FIXTURES / f"{name}.json").read_text())
    return copy.deepcopy(found[0])


def recorded_spec(**changes: Any) -> ContainerSpec:
    """The spec the recorded container-gpus-all.json was created with."""
    spec = ContainerSpec(
        name="rec-gpus-all",
        image=STANDIN,
        env={"OLLAMA_CONTEXT_LENGTH": "65536"},
        host_ip="127.0.0.1",
        host_port=11434,
        models="ollama",
        restart="unless-stopped",
        gpu=GpuRequest("runtime"),
    )
    return ContainerSpec(**{**spec.__dict__, **changes})


# --- spec from settings ---------------------------------------------------------------------


def test_image_is_pinned_to_the_ollama_version() -> None:
    assert image_ref(docker_settings()) == "ollama/ollama:0.32.7"
    digest = "ollama/ollama@sha256:" + "a" * 64
    assert image_ref(docker_settings(docker_image=digest)) == digest


def test_environment_is_natives_as_seen_inside_the_container() -> None:
    settings = docker_settings(ollama_origins=["http://app.lan"], docker_env={"HTTPS_PROXY": "p"})
    native = ollama_environment(settings)
    env = container_environment(settings)
    assert env == {
        **native,
        "OLLAMA_HOST": "0.0.0.0:11434",
        "OLLAMA_MODELS": "/root/.ollama/models",
        "HTTPS_PROXY": "p",
    }
    assert env["OLLAMA_CONTEXT_LENGTH"] == "65536" and env["OLLAMA_KV_CACHE_TYPE"] == "q8_0"
    assert env["OLLAMA_FLASH_ATTENTION"] == "1" and env["OLLAMA_KEEP_ALIVE"] == "30m"


def test_default_spec_runs_the_official_way_on_loopback_with_all_gpus() -> None:
    args = container_spec(docker_settings()).run_args()
    assert args[:13] == [
        "docker",
        "run",
        "--detach",
        "--name",
        "ollama",
        "--restart",
        "unless-stopped",
        "--publish",
        "127.0.0.1:11434:11434",
        "--volume",
        "ollama:/root/.ollama",
        "--label",
        "ollama-rig.managed=true",
    ]
    assert args[13:15] == ["--gpus", "all"]
    assert "OLLAMA_CONTEXT_LENGTH=65536" in args and args[-1] == "ollama/ollama:0.32.7"


@pytest.mark.parametrize(
    ("data", "flags", "normalized"),
    [
        ({"docker_gpus": ["0", "2"]}, ["--gpus", '"device=0,2"'], ["gpu:0", "gpu:2"]),
        (
            {"docker_gpu_mode": "cdi"},
            ["--device", "nvidia.com/gpu=all"],
            ["cdi:nvidia.com/gpu=all"],
        ),
        (
            {"docker_gpu_mode": "cdi", "docker_gpus": ["1", "GPU-3c1b"]},
            ["--device", "nvidia.com/gpu=1", "--device", "nvidia.com/gpu=GPU-3c1b"],
            ["cdi:nvidia.com/gpu=1", "cdi:nvidia.com/gpu=GPU-3c1b"],
        ),
    ],
    ids=["chosen-gpus", "cdi-all", "cdi-chosen"],
)
def test_gpu_request_forms(data: dict[str, Any], flags: list[str], normalized: list[str]) -> None:
    gpu = container_spec(docker_settings(**data)).gpu
    assert gpu is not None and gpu.flags() == flags and gpu.normalized() == normalized


def test_cpu_only_host_asks_for_no_gpu() -> None:
    spec = container_spec(docker_settings(gpu="none"))
    assert spec.gpu is None and "--gpus" not in spec.run_args()


def test_host_path_and_ipv6_publish() -> None:
    settings = docker_settings(docker_models="/srv/ollama/", ollama_listen="[::1]:11500")
    spec = container_spec(settings)
    assert spec.models_is_path and "/srv/ollama:/root/.ollama" in spec.run_args()
    assert "[::1]:11500:11434" in spec.run_args()


def test_run_command_quotes_values() -> None:
    spec = container_spec(docker_settings(docker_env={"NOTE": "two words; $HOME"}))
    assert "--env 'NOTE=two words; $HOME'" in spec.run_command()


def test_cli_runs_ollama_inside_the_container() -> None:
    assert docker_cli(docker_settings(docker_container="llm")) == "docker exec llm ollama"


# --- the recorded container against the spec ------------------------------------------------


def test_recorded_inspect_reads_as_created() -> None:
    container = inspect("container-gpus-all")
    assert gpu_requests(container) == ["gpu:all"]
    assert port_bindings(container) == ["127.0.0.1:11434->11434/tcp"]
    assert gpu_requests(inspect("container-gpus-devices")) == ["gpu:0", "gpu:2"]
    assert gpu_requests(inspect("container-cdi-all")) == ["cdi:nvidia.com/gpu=all"]


def test_same_spec_is_no_change() -> None:
    image = inspect("image-standin")
    assert spec_changes(recorded_spec(), inspect("container-gpus-all"), image) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"image": "ollama-rig/ollama-standin:0.32.8"},
            "image ollama-rig/ollama-standin:0.32.7 ->",
        ),
        ({"env": {"OLLAMA_CONTEXT_LENGTH": "32768"}}, "environment OLLAMA_CONTEXT_LENGTH"),
        ({"env": {}}, "environment OLLAMA_CONTEXT_LENGTH"),
        ({"env": {"OLLAMA_CONTEXT_LENGTH": "65536", "X": "1"}}, "environment X"),
        ({"host_ip": "0.0.0.0"}, "published 127.0.0.1:11434->11434/tcp -> 0.0.0.0:11434"),
        ({"host_port": 11500}, "-> 127.0.0.1:11500->11434/tcp"),
        ({"models": "/srv/ollama"}, "/root/.ollama from ollama -> /srv/ollama"),
        ({"restart": "always"}, "restart policy unless-stopped -> always"),
        ({"gpu": None}, "GPU request ['gpu:all'] -> none"),
        ({"gpu": GpuRequest("runtime", ["0"])}, "GPU request ['gpu:all'] -> ['gpu:0']"),
        ({"gpu": GpuRequest("cdi")}, "-> ['cdi:nvidia.com/gpu=all']"),
    ],
    ids=[
        "image",
        "env-value",
        "env-removed",
        "env-added",
        "address",
        "port",
        "models",
        "restart",
        "no-gpu",
        "chosen-gpu",
        "cdi",
    ],
)
def test_each_setting_change_is_named(changes: dict[str, Any], expected: str) -> None:
    found = spec_changes(
        recorded_spec(**changes), inspect("container-gpus-all"), inspect("image-standin")
    )
    assert len(found) == 1 and expected in found[0], found


def test_a_tag_moved_to_another_image_is_a_change() -> None:
    image = inspect("image-standin")
    image["Id"] = "sha256:" + "b" * 64
    found = spec_changes(recorded_spec(), inspect("container-gpus-all"), image)
    assert found == [f"image {STANDIN} now points to sha256:bbbbbbbbbbbb"]


def test_environment_values_are_not_shown() -> None:
    found = spec_changes(
        recorded_spec(env={"OLLAMA_CONTEXT_LENGTH": "65536", "HTTPS_PROXY": "http://u:secret@p"}),
        inspect("container-gpus-all"),
        inspect("image-standin"),
    )
    assert found == ["environment HTTPS_PROXY"]


# --- refusals before any change -------------------------------------------------------------


@pytest.mark.parametrize(
    ("host_ip", "listeners", "ours", "conflict"),
    [
        ("127.0.0.1", ["0.0.0.0:22"], None, None),
        ("127.0.0.1", ["127.0.0.1:11434"], None, "127.0.0.1:11434"),
        ("127.0.0.1", ["0.0.0.0:11434"], None, "0.0.0.0:11434"),
        ("0.0.0.0", ["192.168.1.5:11434"], None, "192.168.1.5:11434"),
        ("127.0.0.1", ["192.168.1.5:11434"], None, None),
        ("127.0.0.1", ["127.0.0.1:11434"], "running", None),
        ("0.0.0.0", ["127.0.0.1:11434"], "running", None),
        ("127.0.0.1", ["127.0.0.1:11434"], "stopped", "127.0.0.1:11434"),
        ("::1", ["[::]:11434"], None, "[::]:11434"),
    ],
    ids=[
        "free",
        "same-address",
        "wildcard-taken",
        "wildcard-wanted",
        "other-address",
        "ours",
        "ours-moving-to-wildcard",
        "stopped-ours-is-not-the-listener",
        "ipv6-wildcard",
    ],
)
def test_port_conflict(
    host_ip: str, listeners: list[str], ours: str | None, conflict: str | None
) -> None:
    container = None
    if ours:
        container = inspect("container-gpus-all")
        container["State"]["Running"] = ours == "running"
    message = port_conflict(host_ip, 11434, listeners, container)
    if conflict is None:
        assert message is None
    else:
        assert message is not None and f"{conflict} listens" in message
        assert "systemctl disable --now ollama" in message and "nothing was changed" in message


def facts(**changes: Any) -> DockerHostFacts:
    base: dict[str, Any] = {
        "engine": ENGINE_OK,
        "daemon_json": None,
        "listeners": [],
        "container": None,
    }
    return DockerHostFacts(**{**base, **changes})


def test_a_clean_host_goes_ahead() -> None:
    assert check_docker_host(docker_settings(), facts()) == []
    not_installed = {"error": "not-found", "server_version": None}
    assert check_docker_host(docker_settings(), facts(engine=not_installed)) == []


def test_every_refusal_is_listed() -> None:
    refusals = check_docker_host(
        docker_settings(docker_gpu_mode="cdi"),
        facts(daemon_json='{"debug": true,}', listeners=["127.0.0.1:11434"]),
    )
    assert len(refusals) == 3
    assert refusals[0].startswith("/etc/docker/daemon.json: daemon.json is invalid JSON at line 1")
    assert refusals[1].startswith("port 11434 is already in use")
    assert "needs Docker 25 or newer, this host runs 20.10.24+dfsg1" in refusals[2]


def test_permission_denied_says_how_to_run() -> None:
    engine = {"error": "permission-denied", "server_version": None}
    assert "as root" in check_docker_host(docker_settings(), facts(engine=engine))[0]


def test_cdi_on_a_new_engine_is_fine() -> None:
    engine = {**ENGINE_OK, "server_version": "27.5.1"}
    assert check_docker_host(docker_settings(docker_gpu_mode="cdi"), facts(engine=engine)) == []


# --- the image archive ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def standin_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `docker save` archive of the stand-in image over a one-file root file system."""
    out = tmp_path_factory.mktemp("archive")
    rootfs = out / "rootfs.tar"
    with tarfile.open(rootfs, "w") as tar:
        tar.addfile(tarfile.TarInfo("etc"), None)
    return build_image_archive("0.32.7", rootfs, out / "standin.tar")


def test_archive_tags_read_docker_saves_manifest(standin_archive: Path) -> None:
    assert archive_tags(str(standin_archive)) == [STANDIN]


def test_archive_with_the_image_is_accepted(standin_archive: Path) -> None:
    settings = docker_settings(
        docker_image="ollama-rig/ollama-standin:{version}",
        docker_image_archive=str(standin_archive),
    )
    assert check_image_archive(settings) == str(standin_archive)
    assert check_image_archive(docker_settings()) is None


def test_archive_without_the_image_is_refused(standin_archive: Path) -> None:
    settings = docker_settings(docker_image_archive=str(standin_archive))
    with pytest.raises(SettingsError) as caught:
        check_image_archive(settings)
    assert str(caught.value) == (
        f"settings: docker_image_archive={str(standin_archive)!r} holds {STANDIN}, not"
        " ollama/ollama:0.32.7: save that image (`docker save -o FILE ollama/ollama:0.32.7`) or"
        " set docker_image to one it holds; nothing was changed"
    )


def test_missing_or_foreign_archive_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="no such file on this machine"):
        check_image_archive(docker_settings(docker_image_archive=str(tmp_path / "none.tar")))
    junk = tmp_path / "junk.tar"
    junk.write_text("not a tar")
    with pytest.raises(SettingsError, match="is not a `docker save` archive"):
        check_image_archive(docker_settings(docker_image_archive=str(junk)))


def test_oci_layout_names_are_read(tmp_path: Path) -> None:
    index = {
        "manifests": [
            {"annotations": {"io.containerd.image.name": "docker.io/ollama/ollama:0.32.7"}}
        ]
    }
    path = tmp_path / "oci.tar"
    with tarfile.open(path, "w") as tar:
        data = json.dumps(index).encode()
        info = tarfile.TarInfo("index.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    assert archive_tags(str(path)) == ["ollama/ollama:0.32.7"]
