"""The allow-list that must come with exposing Ollama beyond loopback (it has no authentication)."""

from __future__ import annotations

import ipaddress
import re
import shlex
from io import StringIO
from typing import Any

from pyinfra import host
from pyinfra.api import deploy, operation
from pyinfra.facts.files import File, FindInFile
from pyinfra.facts.server import Command
from pyinfra.operations import files, systemd

from facts.docker import TcpListeners
from settings import Settings
from settings.schema import is_loopback
from templates import template_path

RULES = "/etc/ollama-rig/firewall.nft"
UNIT = "ollama-rig-firewall.service"
UNIT_FILE = f"/etc/systemd/system/{UNIT}"
# The ports ollama-rig added ufw rules for, one a line: ufw rules carry no owner, so the rules of
# a port Ollama left (or of the ufw it switched away from) are found again by these ports.
UFW_PORTS = "/etc/ollama-rig/ufw-ports"


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


def nft_ports(ports: list[int]) -> str:
    """One port, or an anonymous set of them: what `tcp dport` matches in the rules file."""
    if len(ports) == 1:
        return str(ports[0])
    return "{ " + ", ".join(str(port) for port in ports) + " }"


def rules_ports(lines: list[str] | None) -> list[int]:
    """The ports our rules file drops ("tcp dport 11434 drop", "tcp dport { 1, 2 } drop")."""
    found = {int(n) for line in lines or [] for n in re.findall(r"\d+", line.partition("dport")[2])}
    return sorted(found)


def record_ports(lines: list[str] | None) -> list[int]:
    """The ports in the ufw record (UFW_PORTS), one a line."""
    return sorted({int(line) for line in lines or [] if line.strip().isdigit()})


def port_record(ports: list[int]) -> StringIO:
    return StringIO("".join(f"{port}\n" for port in ports))


def exposed_listeners(listeners: list[str], port: int) -> list[str]:
    """The listeners on port beyond loopback ("0.0.0.0:11434", "[::]:11434"; TcpListeners form)."""
    found = []
    for listener in listeners:
        ip, _, listen_port = listener.rpartition(":")
        if listen_port == str(port) and not is_loopback(ip.strip("[]")):
            found.append(listener)
    return found


@operation()
def loopback_only(ports: list[int]):
    """
    Stop the run while anything listens beyond loopback on ports Ollama left, so their rules stay.

    + ports: the ports whose allow-list is about to go

    Read when it runs: the server restarted before this listens elsewhere, an old one does not.
    """
    exposed = [
        found for port in ports for found in exposed_listeners(host.get_fact(TcpListeners), port)
    ]
    named = ", ".join(str(port) for port in ports)
    if not exposed:
        host.noop(f"nothing listens beyond loopback on port {named}")
        return
    message = (
        f"ollama-rig: Ollama no longer listens beyond loopback on port {named}, but"
        f" {', '.join(exposed)} still does: its allow-list is kept; `ss -ltnp` names the process"
    )
    yield f"echo {shlex.quote(message)} >&2; exit 1"


@operation()
def ufw_allow_list(networks: list[str], port: int):
    """
    Admit only networks to a TCP port with ufw, keeping the host's other ufw rules.

    + networks: CIDRs allowed
    + port: the port

    That ufw is active is preflight's check (roles/preflight/check.py), before any change.
    """
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
def ufw_remove_port_rules(ports: list[int]):
    """
    Remove the ufw rules this role adds (ufw_rules) for ports Ollama no longer uses.

    + ports: the ports
    """
    added = host.get_fact(Command, command="ufw show added 2>&1 || true") or ""
    ours = [
        line.removeprefix("ufw ")
        for line in added.splitlines()
        for port in ports
        if line.startswith("ufw ")
        and (line.endswith(f" port {port} proto tcp") or line == f"ufw deny {port}/tcp")
    ]
    if not ours:
        host.noop(f"no ufw rules for port {', '.join(str(port) for port in ports)}")
        return
    for rule in ours:
        yield f"ufw delete {rule}"


def previous_ports() -> tuple[list[int], list[int]]:
    """The ports our nftables rules and our ufw rules filter now, read before any change."""
    nft = host.get_fact(FindInFile, path=RULES, pattern="tcp dport .* drop")
    ufw = host.get_fact(FindInFile, path=UFW_PORTS, pattern="^[0-9]")
    return rules_ports(nft), record_ports(ufw)


def nftables_rules(settings: Settings, ports: list[int], published: bool, name: str) -> Any:
    """Write the rules file for ports (the operation, whose did_change reload_rules reads)."""
    ipv4, ipv6 = split_families(settings.ollama_allow_from)
    return files.template(
        name=name,
        src=template_path("ollama-firewall.nft.j2"),
        dest=RULES,
        mode="0644",
        port=nft_ports(ports),
        ipv4=ipv4,
        ipv6=ipv6,
        published=published,
    )


def reload_rules(rules: Any, name: str) -> None:
    systemd.service(name=name, service=UNIT, running=True, restarted=True, _if=rules.did_change)


def remove_nftables() -> None:
    systemd.service(name="Stop the firewall unit", service=UNIT, running=False, enabled=False)
    files.file(name="Remove the firewall unit", path=UNIT_FILE, present=False)
    files.file(name="Remove the firewall rules", path=RULES, present=False)


@deploy("Ollama firewall")
def allow_list(settings: Settings, published: bool = False) -> None:
    """Exposed: only ollama_allow_from reaches the port. Run it before Ollama listens there.

    published: the port is published by Docker (its forwarded connections are filtered too).
    The ports filtered before stay filtered (the old server listens there until its restart):
    remove_allow_list drops them after the restart. Loopback only: nothing here.
    """
    if not settings.exposed:
        return
    nft, ufw = previous_ports()
    port = settings.listen_port
    if settings.ollama_firewall == "ufw":
        # Recorded first: a run stopped after the rules were added still finds them again.
        files.put(
            name="Record the ufw ports",
            src=port_record(sorted({*ufw, port})),
            dest=UFW_PORTS,
            mode="0644",
        )
        ufw_allow_list(
            name="ufw allow-list for Ollama",
            networks=settings.ollama_allow_from,
            port=port,
        )
        return
    rules = nftables_rules(
        settings, sorted({*nft, port}), published, name="nftables allow-list for Ollama"
    )
    unit = files.template(
        name="Firewall unit",
        src=template_path("ollama-rig-firewall.service.j2"),
        dest=UNIT_FILE,
        mode="0644",
        rules=RULES,
    )
    systemd.daemon_reload(name="Reload systemd units (firewall)", _if=unit.did_change)
    reload_rules(rules, name="Reload the allow-list")
    systemd.service(
        name="Firewall unit active and enabled", service=UNIT, running=True, enabled=True
    )


@deploy("Ollama firewall")
def remove_allow_list(settings: Settings, published: bool = False) -> None:
    """Remove the rules Ollama no longer needs. Run it only once Ollama answers where it now is.

    Loopback only: all of ours. Exposed: those of the ports it left, and those of the firewall
    it switched away from. Until the restart the old server may still listen on the old address
    and port: removing their rules first would leave it reachable from anywhere for that time.
    """
    nft, ufw = previous_ports()
    port = settings.listen_port
    nft_file = bool(host.get_fact(File, path=UNIT_FILE))
    if not settings.exposed:
        loopback_only(name="Ollama listens on loopback only", ports=sorted({*nft, *ufw, port}))
        ufw_remove_port_rules(name="Remove ufw rules for Ollama", ports=sorted({*ufw, port}))
        if ufw:
            files.file(name="Remove the ufw record", path=UFW_PORTS, present=False)
        if nft_file:
            remove_nftables()
        return
    left = sorted({*nft, *ufw} - {port})
    if left:
        loopback_only(name="Nothing listens beyond loopback on the ports Ollama left", ports=left)
    if settings.ollama_firewall == "ufw":
        ufw_left = sorted(set(ufw) - {port})
        if ufw_left:
            ufw_remove_port_rules(name="Remove ufw rules of the old port", ports=ufw_left)
            files.put(
                name="Record the ufw ports", src=port_record([port]), dest=UFW_PORTS, mode="0644"
            )
        if nft_file:  # switched from nftables
            remove_nftables()
        return
    if set(nft) - {port}:
        rules = nftables_rules(
            settings, [port], published, name="nftables rules: drop the old port"
        )
        reload_rules(rules, name="Reload the allow-list without the old port")
    if ufw:  # switched from ufw
        ufw_remove_port_rules(name="Remove ufw rules for Ollama", ports=ufw)
        files.file(name="Remove the ufw record", path=UFW_PORTS, present=False)
