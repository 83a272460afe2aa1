"""The kvm topology's guest (kvm_guest=True, topology native): the NVIDIA driver from the
distribution's packages, the reboot that loads it, then deploy.py's native role as on any GPU box.

A driver already in use (nvidia-smi sees the GPU) is kept, unless kvm_guest_driver_version pins
one. Otherwise: APT components merged into the release's own sources (backed up once as
*.ollama-rig.bak) -> apt-get update only when they changed -> nouveau blacklisted -> the running
kernel's headers -> the driver packages -> reboot gate (kvm_allow_reboot, as on the hypervisor)
-> nvidia-smi checked. Then /etc/ollama-rig/kvm-guest.json. Pure decisions: roles/kvm/driver.py.
"""

from __future__ import annotations

import shlex
from io import StringIO

from pyinfra import host
from pyinfra.api import FileUploadCommand, deploy, operation
from pyinfra.api.exceptions import DeployError
from pyinfra.facts.files import FileContents
from pyinfra.facts.server import KernelVersion, LinuxDistribution
from pyinfra.operations import apt, files, server
from pyinfra.operations.util import any_changed

from facts.kvm import AptSourceFiles, LoadedKernelModules
from facts.nvidia import NvidiaSmi
from roles.commands import fail_command
from roles.kvm.driver import (
    GUEST_MANIFEST,
    NOUVEAU_BLACKLIST,
    NOUVEAU_BLACKLIST_TEXT,
    WANTED_COMPONENTS,
    GuestOs,
    driver_kept,
    driver_packages,
    guest_os,
    guest_refusals,
    headers_package,
    install_branch,
    merge_sources,
    ollama_min_driver,
    reboot_reason,
)
from roles.kvm.operations import write_manifest
from settings import Settings

INITRAMFS_UPDATE = "update-initramfs -u"


class KvmGuestError(DeployError):
    """The VM cannot get its NVIDIA driver as configured; the message says why and what to do."""


def read_guest_os() -> GuestOs:
    distro = host.get_fact(LinuxDistribution) or {}
    return guest_os(distro.get("release_meta") or {}, host.get_fact(KernelVersion) or "")


def read_apt_sources() -> dict[str, str]:
    """Every APT source file's text (path -> text)."""
    texts = {}
    for path in host.get_fact(AptSourceFiles):
        lines = host.get_fact(FileContents, path=path)
        if lines is not None:
            texts[path] = "\n".join(lines) + "\n" if lines else ""
    return texts


def guest_summary(settings: Settings) -> tuple[list[str], list[str]]:
    """Preflight's lines and refusals for a kvm guest (roles/preflight/__init__.py shows them)."""
    kept = driver_kept(settings, host.get_fact(NvidiaSmi))
    if kept is not None:
        line = f"guest: NVIDIA driver {kept} in use, kept (kvm_guest_driver_version: pin one)"
        return [line], []
    guest = read_guest_os()
    refusals = guest_refusals(settings, guest, read_apt_sources())
    if guest.os_id not in WANTED_COMPONENTS:
        return [], refusals
    branch = install_branch(settings, guest)
    lines = [
        f"guest {guest.os_id} {guest.version_id} ({guest.codename or '?'}), kernel"
        f" {guest.kernel}: NVIDIA driver {', '.join(driver_packages(settings, guest))}"
        f" + {headers_package(guest)} from {' '.join(WANTED_COMPONENTS[guest.os_id])}"
        f" (branch {branch or 'as the release has it'})"
    ]
    return lines, refusals


@operation()
def apt_components(codename: str, components: list[str]):
    """
    Merge APT components into the release's own sources, keeping every other line and byte.

    + codename: the release (bookworm, noble); its -updates/-security/-backports suites too
    + components: e.g. ["contrib", "non-free", "non-free-firmware"]

    One-line (sources.list, *.list) and deb822 (*.sources) files alike; only entries of the
    release that carry main are extended. Each file changed is first copied to
    PATH.ollama-rig.bak (once); apt-get update runs only when a file changed.
    """
    merge = merge_sources(read_apt_sources(), codename, components)
    if merge.matched == 0:
        yield fail_command(
            f"no APT source of {codename} with main: cannot add {' '.join(components)}"
        )
        return
    if not merge.changed:
        host.noop(f"the APT sources of {codename} have {' '.join(components)}")
        return
    for path, text in merge.changed.items():
        q_path, q_backup = shlex.quote(path), shlex.quote(path + ".ollama-rig.bak")
        yield f"[ -e {q_backup} ] || cp -p {q_path} {q_backup}"
        yield FileUploadCommand(StringIO(text), path)
    yield "apt-get update -qq || " + fail_command(
        f"apt-get update failed after adding {' '.join(components)} (is the mirror reachable?)"
    )


@operation()
def driver_in_use(allow: bool):
    """
    Is the NVIDIA driver in use (nvidia-smi sees a GPU)? If not, the VM must reboot: refuse
    unless allowed.

    + allow: kvm_allow_reboot; the operation changes (so a chained server.reboot runs) only then
    """
    smi = host.get_fact(NvidiaSmi)
    why = reboot_reason(smi, host.get_fact(LoadedKernelModules))
    if why is None:
        names = ", ".join(str(g.get("name")) for g in smi["gpus"])
        host.noop(f"the NVIDIA driver is in use ({names})")
        return
    if not allow:
        yield fail_command(
            f"reboot required ({why}): reboot the VM, then run again, or set"
            " kvm_allow_reboot=True to let ollama-rig reboot it"
        )
        return
    yield f"echo {shlex.quote(f'ollama-rig: rebooting ({why})')}"


@deploy("KVM guest: NVIDIA driver from the distribution's packages")
def kvm_guest_driver(settings: Settings) -> None:
    """kvm_guest=True: the NVIDIA driver, and the reboot that loads it, before Ollama. A driver
    already in use is kept (driver_kept), unless kvm_guest_driver_version pins one."""
    guest = read_guest_os()
    if driver_kept(settings, host.get_fact(NvidiaSmi)) is None:
        refusals = guest_refusals(settings, guest, read_apt_sources())
        if refusals:
            raise KvmGuestError(f"kvm guest {host.name}: " + "; ".join(refusals))
        install_driver(settings, guest)
    write_manifest(GUEST_MANIFEST, guest_manifest(settings, guest))


def install_driver(settings: Settings, guest: GuestOs) -> None:
    """APT components, nouveau blacklisted, headers, the driver packages, then the reboot (or
    "reboot required") when the driver is not in use yet or its packages changed."""
    components = WANTED_COMPONENTS[guest.os_id]
    apt_components(
        name=f"APT components {' '.join(components)} for {guest.codename}",
        codename=guest.codename,
        components=components,
    )
    blacklist = files.put(
        name=f"Blacklist nouveau ({NOUVEAU_BLACKLIST})",
        src=StringIO(NOUVEAU_BLACKLIST_TEXT),
        dest=NOUVEAU_BLACKLIST,
        mode="0644",
    )
    server.shell(
        name="Rebuild the initramfs without nouveau",
        commands=[INITRAMFS_UPDATE],
        _if=blacklist.did_change,
    )
    # Headers first: DKMS builds the module while the driver packages are configured.
    apt.packages(
        name=f"Kernel headers {headers_package(guest)}",
        packages=[headers_package(guest)],
        update=True,
        cache_time=3600,
    )
    packages = driver_packages(settings, guest)
    driver = apt.packages(
        name=f"NVIDIA driver ({', '.join(packages)})",
        packages=packages,
        # A pinned version may be older than what the repository offers first.
        allow_downgrades=settings.kvm_guest_driver_version is not None,
    )
    # Not in use yet (read before the run): reboot, or stop. A pinned driver changed in this run
    # while another was in use: the same, as the loaded module is the old one.
    gate = driver_in_use(name="NVIDIA driver in use?", allow=settings.kvm_allow_reboot)
    if not settings.kvm_allow_reboot:
        server.shell(
            name="Reboot needed after the driver packages changed?",
            commands=[
                fail_command(
                    "reboot required (the NVIDIA driver packages changed): reboot the VM, then"
                    " run again, or set kvm_allow_reboot=True to let ollama-rig reboot it"
                )
            ],
            _if=driver.did_change,
        )
        return
    server.reboot(name="Reboot the VM", _if=any_changed(gate, driver))
    server.shell(
        name="nvidia-smi sees the GPU after the reboot",
        commands=[
            "nvidia-smi -L || "
            + fail_command(
                "after the reboot nvidia-smi still fails: check `dmesg | grep -i -e nvrm -e"
                " nvidia`, `dkms status` and Secure Boot (`mokutil --sb-state`)"
            )
        ],
        _if=any_changed(gate, driver),
    )


def guest_manifest(settings: Settings, guest: GuestOs) -> dict[str, object]:
    """What tests/verify/test_kvm.py holds the guest to: nvidia-smi working, and at least the
    driver branch this Ollama needs (the same whether the driver was installed or kept)."""
    return {
        "side": "guest",
        "os": f"{guest.os_id} {guest.version_id}",
        "min_driver": ollama_min_driver(settings.ollama_version),
    }
