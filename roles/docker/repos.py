"""Docker engine and NVIDIA Container Toolkit from apt: keyrings, sources with signed-by, packages.

Relied on: Docker's install guide for Debian/Ubuntu (key at download.docker.com/linux/<distro>/gpg
kept as /etc/apt/keyrings/docker.asc; `deb [arch=<arch> signed-by=...]
https://download.docker.com/linux/<distro> <codename> stable`; docker-ce, docker-ce-cli,
containerd.io, docker-buildx-plugin, docker-compose-plugin) and NVIDIA's install guide for the
toolkit (key at nvidia.github.io/libnvidia-container/gpgkey; `deb [signed-by=...]
https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH) /`; a pinned install names
nvidia-container-toolkit, nvidia-container-toolkit-base, libnvidia-container-tools and
libnvidia-container1 at one version). Keys are kept ASCII-armored (.asc), which apt 1.4+ reads
in signed-by, so the host needs no gpg to dearmor them.
"""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.files import File, FileContents
from pyinfra.operations import apt

from roles.commands import fail_command

KEYRINGS = "/etc/apt/keyrings"
DOCKER_URL = "https://download.docker.com/linux/{distro}"
DOCKER_KEY = f"{KEYRINGS}/docker.asc"
DOCKER_LIST = "/etc/apt/sources.list.d/docker.list"
NVIDIA_KEY_URL = "https://nvidia.github.io/libnvidia-container/gpgkey"
NVIDIA_REPO_URL = "https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH)"
NVIDIA_KEY = f"{KEYRINGS}/nvidia-container-toolkit.asc"
NVIDIA_LIST = "/etc/apt/sources.list.d/nvidia-container-toolkit.list"
TOOLKIT_PACKAGES = [
    "nvidia-container-toolkit",
    "nvidia-container-toolkit-base",
    "libnvidia-container-tools",
    "libnvidia-container1",
]
LIST_HEADER = "# Managed by ollama-rig (topology docker); the key is given by signed-by."


def _pinned(name: str, version: str | None) -> str:
    return f"{name}={version}" if version else name


def engine_packages(source: str, version: str | None) -> list[str]:
    """The engine's apt packages; version pins the engine and its CLI."""
    if source == "distro":
        return [_pinned("docker.io", version)]
    return [
        _pinned("docker-ce", version),
        _pinned("docker-ce-cli", version),
        "containerd.io",
        "docker-buildx-plugin",
        "docker-compose-plugin",
    ]


def toolkit_packages(version: str | None) -> list[str]:
    """The toolkit's packages: all four at one version when pinned (NVIDIA's guide), else one."""
    if version is None:
        return [TOOLKIT_PACKAGES[0]]
    return [_pinned(name, version) for name in TOOLKIT_PACKAGES]


def docker_source(distro: str, codename: str, arch: str) -> str:
    """The sources.list line of Docker's repo (distro: debian|ubuntu; arch: amd64|arm64)."""
    url = DOCKER_URL.format(distro=distro)
    return f"deb [arch={arch} signed-by={DOCKER_KEY}] {url} {codename} stable"


def nvidia_source() -> str:
    """The sources.list line of NVIDIA's toolkit repo; apt fills in $(ARCH) itself."""
    return f"deb [signed-by={NVIDIA_KEY}] {NVIDIA_REPO_URL} /"


@operation()
def apt_repository(key_url: str, keyring: str, line: str, list_path: str):
    """
    An apt repository whose key is its own keyring (signed-by), read by apt when new or changed.

    + key_url: where the repository's public key is downloaded from
    + keyring: where the key is kept (ASCII-armored, .asc)
    + line: the sources.list line, naming keyring in signed-by
    + list_path: the file under /etc/apt/sources.list.d

    A key already there is kept (replace it by hand when the vendor rotates it).
    """
    wanted = [LIST_HEADER, line]
    fresh = False
    if not host.get_fact(File, path=keyring):
        part, q_key = shlex.quote(keyring + ".part"), shlex.quote(keyring)
        yield (
            f"mkdir -p {shlex.quote(keyring.rsplit('/', 1)[0])} && "
            f"curl -fsSL --retry 3 --connect-timeout 20 -o {part} {shlex.quote(key_url)} || "
            f"{{ rm -f {part}; "
            + fail_command(f"cannot download the apt key {key_url}; nothing else was changed")
            + "; }; "
            f"chmod 0644 {part} && mv -f {part} {q_key}"
        )
        fresh = True
    if host.get_fact(FileContents, path=list_path) != wanted:
        text = "\n".join(wanted) + "\n"
        yield f"printf '%s' {shlex.quote(text)} > {shlex.quote(list_path)}"
        fresh = True
    if not fresh:
        host.noop(f"apt repository {list_path} is set up")
        return
    yield "apt-get update -qq || " + fail_command(
        f"apt-get update failed after adding {list_path} (is {key_url.split('/')[2]} reachable?)"
    )


@operation()
def nvidia_toolkit(version: str | None = None):
    """
    NVIDIA's apt repository and key, then the NVIDIA Container Toolkit.

    + version: the apt version of all four toolkit packages ("1.17.8-1"); None: the newest
    """
    yield from apt_repository._inner(
        key_url=NVIDIA_KEY_URL, keyring=NVIDIA_KEY, line=nvidia_source(), list_path=NVIDIA_LIST
    )
    # A pinned version may be older than what the repository offers first.
    yield from apt.packages._inner(
        packages=toolkit_packages(version), allow_downgrades=version is not None
    )


@operation()
def docker_engine(
    source: str = "distro",
    version: str | None = None,
    distro: str = "debian",
    codename: str = "bookworm",
    arch: str = "amd64",
):
    """
    Install a Docker engine: the distribution's docker.io, or docker-ce from Docker's repository.

    + source: "distro" or "docker"
    + version: apt version pin of the engine package; None: the repository's current one
    + distro, codename, arch: the host's, for Docker's repository line
    """
    if source == "docker":
        yield from apt_repository._inner(
            key_url=f"{DOCKER_URL.format(distro=distro)}/gpg",
            keyring=DOCKER_KEY,
            line=docker_source(distro, codename, arch),
            list_path=DOCKER_LIST,
        )
    yield from apt.packages._inner(
        packages=engine_packages(source, version),
        update=source == "distro",
        cache_time=3600,
    )
