"""Native topology: Ollama from a pinned release archive, run by systemd on the host."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.server import Groups
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from facts.docker import TcpListeners
from roles.native.firewall import allow_list, exposed_listeners, remove_allow_list
from roles.native.operations import fetch_archive, unpack_release, wait_for_api
from roles.native.plan import ollama_environment, release_source
from settings import Settings
from templates import template_path

UNIT = "ollama.service"
UNIT_FILE = f"/etc/systemd/system/{UNIT}"
ENV_DROPIN = f"/etc/systemd/system/{UNIT}.d/ollama-rig.conf"
OLLAMA_HOME = "/usr/share/ollama"


def native_cli(settings: Settings) -> str:
    """The ollama CLI on the host, pointed at the configured server."""
    return f"OLLAMA_HOST={settings.api_url} {settings.ollama_prefix}/bin/ollama"


@deploy("Ollama (native)")
def install_ollama(settings: Settings, machine: str) -> None:
    """Install the pinned release, run it as ollama.service, and wait for the pinned version."""
    source = release_source(settings, machine)

    server.group(name="Ollama system group", group="ollama", system=True)
    # Like the official installer: GPU device nodes belong to render/video where those exist.
    device_groups: list[str] = [g for g in ("render", "video") if g in host.get_fact(Groups)]
    server.user(
        name="Ollama system user",
        user="ollama",
        group="ollama",
        groups=device_groups,
        home=OLLAMA_HOME,
        shell="/bin/false",
        system=True,
        ensure_home=True,
    )

    if source.local_path:
        files.put(
            name="Copy the local Ollama archive",
            src=source.local_path,
            dest=source.cache_path,
            mode="0644",
        )
    else:
        assert source.url is not None
        fetch_archive(
            name=f"Download Ollama {source.version} ({source.arch})",
            url=source.url,
            sha256=source.sha256,
            dest=source.cache_path,
        )
    release = unpack_release(
        name=f"Install Ollama {source.version} under {settings.ollama_prefix}",
        archive=source.cache_path,
        prefix=settings.ollama_prefix,
        marker=source.marker,
    )

    # Ollama keeps its key pair in ~/.ollama: the user must own it, not just the models below.
    files.directory(
        name="Ollama state directory",
        path=f"{OLLAMA_HOME}/.ollama",
        user="ollama",
        group="ollama",
        mode="0755",
    )
    files.directory(
        name="Models directory",
        path=settings.ollama_models_dir,
        user="ollama",
        group="ollama",
        mode="0755",
    )
    # Exposed: the allow-list is in place before Ollama may listen beyond loopback (and a refused
    # allow-list stops the run before the new address is written).
    allow_list(settings=settings)
    unit = files.template(
        name="ollama.service unit",
        src=template_path("ollama.service.j2"),
        dest=UNIT_FILE,
        mode="0644",
        prefix=settings.ollama_prefix,
    )
    env = files.template(
        name="ollama.service environment",
        src=template_path("ollama-env.conf.j2"),
        dest=ENV_DROPIN,
        mode="0644",
        environment=ollama_environment(settings),
    )
    changed = any_changed(release, unit, env)

    def restart_needed() -> bool:
        """What it runs changed, or a run stopped before the restart left it on every address."""
        if changed():
            return True
        if settings.exposed:
            return False
        return bool(exposed_listeners(host.get_fact(TcpListeners), settings.listen_port))

    systemd.daemon_reload(name="Reload systemd units", _if=restart_needed)
    # A running service restarts only when it must (above); a stopped one just starts.
    systemd.service(
        name="Restart Ollama on change",
        service=UNIT,
        running=True,
        restarted=True,
        _if=restart_needed,
    )
    systemd.service(name="Ollama running and enabled", service=UNIT, running=True, enabled=True)
    wait_for_api(
        name=f"Ollama answers version {source.version}",
        api_url=settings.api_url,
        version=source.version,
        timeout=settings.ollama_start_timeout,
    )
    # Back on loopback: the allow-list goes only now that the restarted Ollama answers there
    # (the old one listened on every address until its restart; a failed start keeps the rules).
    # Still exposed: the rules of a port it left, or of the firewall it switched from, go now.
    remove_allow_list(settings=settings)
