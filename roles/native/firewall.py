"""The allow-list that must come with exposing Ollama beyond loopback (it has no authentication)."""

from __future__ import annotations

import ipaddress
import shlex

from pyinfra import host
from pyinfra.api import deploy, operation
from pyinfra.api.exceptions import OperationError
from pyinfra.facts.files import File
from pyinfra.facts.server import Command
from pyinfra.operations import files, systemd

from facts.docker import TcpListeners
from settings import Settings
from settings.schema import is_loopback
from templates import template_path

RULES = "/etc/ollama-rig/firewall.nft"
UNIT = "ollama-rig-firewall.service"
UNIT_FILE = f"/etc/systemd/system/{UNIT}"


def split_families(networks: list[str]) -> tuple[list[str], list[str]]:
    """IPv4 and IPv6 networks, normalised (192.168.1.7/24 -> 192.168.1.0/24)."""
    parsed = [ipaddress.ip_network(n, strict=False) for n in networks]
    return (
        [str(n) for n in parsed if n.version == 4],
        [str(n) for n in parsed if n.version == 6],
    )


def ufw_rules(networks: list[str], port: int) -> list[str]:
    """`ufw` arguments, allows first: ufw takes the first matching rule."""
    allows = [f"allow from {n} to any port {port} proto tcp" for n in networks]
    return [*allows, f"deny {port}/tcp"]


def exposed_listeners(listeners: list[str], port: int) -> list[str]:
    """The listeners on port beyond loopback ("0.0.0.0:11434", "[::]:11434"; TcpListeners form)."""
    found = []
    for listener in listeners:
        ip, _, listen_port = listener.rpartition(":")
        if listen_port == str(port) and not is_loopback(ip.strip("[]")):
            found.append(listener)
    return found


@operation()
def loopback_only(port: int):
    """
    Stop the run while anything still listens on port beyond loopback, so its allow-list stays.

    + port: Ollama's port

    Read when it runs: the server restarted before this listens on loopback, an old one does not.
    """
    exposed = exposed_listeners(host.get_fact(TcpListeners), port)
    if not exposed:
        host.noop(f"port {port} is open on loopback only")
        return
    message = (
        f"ollama-rig: ollama_listen is on loopback, but {', '.join(exposed)} still listens: the"
        f" allow-list is kept; `ss -ltnp | grep :{port}` names the process"
    )
    yield f"echo {shlex.quote(message)} >&2; exit 1"


@operation()
def ufw_allow_list(networks: list[str], port: int):
    """
    Admit only networks to a TCP port with ufw, keeping the host's other ufw rules.

    + networks: CIDRs allowed
    + port: the port
    """
    status = host.get_fact(Command, command="ufw status 2>&1 || true") or ""
    if "Status: active" not in status:
        raise OperationError(
            "ollama_firewall='ufw' but ufw is not active: enable ufw (keep your SSH rule), or"
            " set ollama_firewall='nftables'"
        )
    added = host.get_fact(Command, command="ufw show added 2>&1 || true") or ""
    missing = [rule for rule in ufw_rules(networks, port) if f"ufw {rule}" not in added]
    if not missing:
        host.noop(f"ufw admits only {', '.join(networks)} to port {port}")
        return
    # Allows go on top, so an earlier deny never shadows a new network; ufw cannot insert
    # into an empty rule list, where appending in order (allows, then the deny) is right.
    on_top = "insert 1 " if any(line.startswith("ufw ") for line in added.splitlines()) else ""
    for rule in missing:
        yield f"ufw {on_top if rule.startswith('allow') else ''}{rule}"


@operation()
def ufw_remove_port_rules(port: int):
    """
    Remove the ufw rules this role added for a port (when Ollama is back on loopback).

    + port: the port
    """
    added = host.get_fact(Command, command="ufw show added 2>&1 || true") or ""
    ours = [
        line.removeprefix("ufw ")
        for line in added.splitlines()
        if line.startswith("ufw ")
        and (f" port {port} proto tcp" in line or f"deny {port}/tcp" in line)
    ]
    if not ours:
        host.noop(f"no ufw rules for port {port}")
        return
    for rule in ours:
        yield f"ufw delete {rule}"


@deploy("Ollama firewall")
def allow_list(settings: Settings, published: bool = False) -> None:
    """Exposed: only ollama_allow_from reaches the port. Run it before Ollama listens there.

    published: the port is published by Docker (its forwarded connections are filtered too).
    Loopback only: nothing here, remove_allow_list takes the rules away after the restart.
    """
    if not settings.exposed:
        return
    if settings.ollama_firewall == "ufw":
        ufw_allow_list(
            name="ufw allow-list for Ollama",
            networks=settings.ollama_allow_from,
            port=settings.listen_port,
        )
        return
    ipv4, ipv6 = split_families(settings.ollama_allow_from)
    rules = files.template(
        name="nftables allow-list for Ollama",
        src=template_path("ollama-firewall.nft.j2"),
        dest=RULES,
        mode="0644",
        port=settings.listen_port,
        ipv4=ipv4,
        ipv6=ipv6,
        published=published,
    )
    unit = files.template(
        name="Firewall unit",
        src=template_path("ollama-rig-firewall.service.j2"),
        dest=UNIT_FILE,
        mode="0644",
        rules=RULES,
    )
    systemd.daemon_reload(name="Reload systemd units (firewall)", _if=unit.did_change)
    systemd.service(
        name="Reload the allow-list",
        service=UNIT,
        running=True,
        restarted=True,
        _if=rules.did_change,
    )
    systemd.service(
        name="Firewall unit active and enabled", service=UNIT, running=True, enabled=True
    )


@deploy("Ollama firewall")
def remove_allow_list(settings: Settings) -> None:
    """Loopback only: remove our rules. Run it only once Ollama answers on loopback again.

    Until then the old server may still listen on every address: removing the allow-list first
    would leave it reachable from anywhere for the time of the restart.
    """
    if settings.exposed:
        return
    loopback_only(name="Ollama listens on loopback only", port=settings.listen_port)
    ufw_remove_port_rules(name="Remove ufw rules for Ollama", port=settings.listen_port)
    if host.get_fact(File, path=UNIT_FILE):
        systemd.service(name="Stop the firewall unit", service=UNIT, running=False, enabled=False)
        files.file(name="Remove the firewall unit", path=UNIT_FILE, present=False)
        files.file(name="Remove the firewall rules", path=RULES, present=False)
