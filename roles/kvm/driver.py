"""The kvm guest's NVIDIA driver from the distribution's packages: pure decisions.

Relied on (re-check when changing):
- Debian (wiki.debian.org/NvidiaGraphicsDrivers): the driver is in non-free, helpers in contrib,
  the GSP firmware in non-free-firmware; install `nvidia-driver firmware-misc-nonfree` with the
  running kernel's headers (`linux-headers-$(uname -r)`, DKMS builds the module). Debian 12's
  nvidia-driver is the 535 branch (packages.debian.org/bookworm/nvidia-driver: 535.261.03-1;
  bookworm-backports 535.216.03-2~bpo12+1); Debian 13's is 550 (550.163.01-1, unverified: an
  apt history log, not the package page).
- Ubuntu (packages.ubuntu.com, source nvidia-graphics-drivers-<branch>-server): the server
  driver is `nvidia-headless-<branch>-server` (kernel module via DKMS, no X) plus
  `nvidia-utils-<branch>-server` (nvidia-smi), in the restricted component; on 22.04 and 24.04
  the 535-server and 565-server packages are now transitional packages to 580-server.
- Ollama's minimum driver (docs/gpu.mdx): doctor.rules.gpu.required_driver (550 since v0.30.11).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from settings import Settings

# The APT components the driver's packages come from, merged into the release's own sources.
WANTED_COMPONENTS = {
    "debian": ["contrib", "non-free", "non-free-firmware"],
    "ubuntu": ["restricted"],
}
# The branch of each Debian release's nvidia-driver (module docstring); others: not known here.
DEBIAN_BRANCH = {"12": 535, "13": 550}
# Where APT reads its sources: one-line format and deb822 (sources.list(5)).
SOURCES_LIST = "/etc/apt/sources.list"
SOURCES_DIR = "/etc/apt/sources.list.d"
# nouveau must not take the GPU at boot; the nvidia packages blacklist it too (Debian's
# nvidia-kernel-support does), this file makes it so on either distribution.
NOUVEAU_BLACKLIST = "/etc/modprobe.d/ollama-rig-blacklist-nouveau.conf"
NOUVEAU_BLACKLIST_TEXT = (
    "# Managed by ollama-rig (kvm_guest): the nvidia driver owns the GPU, not nouveau.\n"
    "blacklist nouveau\n"
    "options nouveau modeset=0\n"
)
# What the verify suite reads in the guest (tests/verify/test_kvm.py).
GUEST_MANIFEST = "/etc/ollama-rig/kvm-guest.json"


@dataclass(frozen=True)
class GuestOs:
    """The guest's release (/etc/os-release: ID, VERSION_ID, VERSION_CODENAME) and kernel."""

    os_id: str
    version_id: str
    codename: str
    kernel: str

    @property
    def major(self) -> str:
        return self.version_id.split(".")[0]


def guest_os(release_meta: dict[str, Any], kernel: str) -> GuestOs:
    """GuestOs from pyinfra's LinuxDistribution release_meta (/etc/os-release's keys)."""
    return GuestOs(
        os_id=str(release_meta.get("ID") or "unknown").lower(),
        version_id=str(release_meta.get("VERSION_ID") or "?"),
        codename=str(release_meta.get("VERSION_CODENAME") or ""),
        kernel=kernel,
    )


def _pin(name: str, version: str | None) -> str:
    return f"{name}={version}" if version else name


def headers_package(guest: GuestOs) -> str:
    """The running kernel's headers, which DKMS builds the nvidia module against."""
    return f"linux-headers-{guest.kernel}"


def driver_packages(settings: Settings, guest: GuestOs) -> list[str]:
    """The driver's packages for this release (pinned when kvm_guest_driver_version is set)."""
    version = settings.kvm_guest_driver_version
    if guest.os_id == "debian":
        return [_pin("nvidia-driver", version), "firmware-misc-nonfree"]
    branch = settings.kvm_guest_driver_branch
    return [
        _pin(f"nvidia-headless-{branch}-server", version),
        _pin(f"nvidia-utils-{branch}-server", version),
    ]


def _pin_branch(version: str | None) -> int | None:
    """The branch of an apt version ("1:535.261.03-1" -> 535), None when not pinned."""
    if version is None:
        return None
    match = re.match(r"^(?:[0-9]+:)?([0-9]+)\.", version)
    return int(match.group(1)) if match else None


def install_branch(settings: Settings, guest: GuestOs) -> int | None:
    """The driver branch the install gives: the pin's, the setting's (Ubuntu), or the release's."""
    pinned = _pin_branch(settings.kvm_guest_driver_version)
    if pinned is not None:
        return pinned
    if guest.os_id == "ubuntu":
        return int(settings.kvm_guest_driver_branch)
    return DEBIAN_BRANCH.get(guest.major)


def driver_kept(settings: Settings, smi: dict[str, Any]) -> str | None:
    """The version of a driver already in use that the guest role keeps as it is (None: the
    distribution's driver is installed). nvidia-smi seeing the GPU is enough, whoever installed
    it, unless kvm_guest_driver_version pins the distribution's packages."""
    gpus = smi.get("gpus") or []
    if settings.kvm_guest_driver_version is None and gpus:
        return str(gpus[0].get("driver_version") or "?")
    return None


def ollama_min_driver(ollama_version: str) -> int:
    """The driver branch this Ollama release needs at least (any GPU: 570 for compute
    capability 5.0-6.2 is the doctor's to tell, the GPU's capability is not known here)."""
    # Imported here: the doctor package imports roles.preflight, which imports this module.
    from doctor.parsers import version_tuple
    from doctor.rules.gpu import required_driver

    return required_driver(None, version_tuple(ollama_version))


def guest_refusals(settings: Settings, guest: GuestOs, sources: dict[str, str]) -> list[str]:
    """Why the driver cannot be installed as configured (empty: it can). Decided before any
    change: the release, the APT sources to merge into, and the branch Ollama needs."""
    if guest.os_id not in WANTED_COMPONENTS:
        return [
            f"kvm_guest=True installs the NVIDIA driver from Debian or Ubuntu packages; this VM"
            f" runs {guest.os_id} {guest.version_id}: install the driver yourself (nvidia-smi"
            " must work), then set kvm_guest=False"
        ]
    refusals = []
    if not guest.codename:
        refusals.append(
            "/etc/os-release has no VERSION_CODENAME: cannot tell which APT sources are the"
            " release's own: fix /etc/os-release, then run again"
        )
    elif merge_sources(sources, guest.codename, WANTED_COMPONENTS[guest.os_id]).matched == 0:
        example = (
            f"deb http://deb.debian.org/debian {guest.codename} main"
            if guest.os_id == "debian"
            else f"deb http://archive.ubuntu.com/ubuntu {guest.codename} main"
        )
        refusals.append(
            f"no APT source of {guest.os_id} {guest.codename} with the main component in"
            f" {SOURCES_LIST} or {SOURCES_DIR}/*.list|*.sources, so there is nothing to add"
            f" {' '.join(WANTED_COMPONENTS[guest.os_id])} to: add your mirror ({example}),"
            " then run again"
        )
    version = settings.kvm_guest_driver_version
    if guest.os_id == "ubuntu" and version is not None:
        pinned = _pin_branch(version)
        if pinned is not None and str(pinned) != settings.kvm_guest_driver_branch:
            refusals.append(
                f"kvm_guest_driver_version={version!r} is of branch {pinned}, not"
                f" kvm_guest_driver_branch={settings.kvm_guest_driver_branch!r}: set both to the"
                " same branch"
            )
    branch = install_branch(settings, guest)
    needed = ollama_min_driver(settings.ollama_version)
    if branch is not None and branch < needed:
        if version is not None:
            what = f"kvm_guest_driver_version={version!r} is the {branch} branch"
        elif guest.os_id == "ubuntu":
            what = f"kvm_guest_driver_branch={settings.kvm_guest_driver_branch!r}"
        else:
            what = f"{guest.os_id} {guest.version_id}'s nvidia-driver is the {branch} branch"
        fix = (
            "run Debian 13 or Ubuntu 22.04/24.04 in the VM"
            if guest.os_id == "debian"
            else f"set kvm_guest_driver_branch to {needed} or newer (default 580)"
        )
        refusals.append(
            f"{what}, and Ollama {settings.ollama_version} needs driver {needed}+"
            f" (docs/gpu.mdx): it would run on the CPU. {fix[:1].upper()}{fix[1:]}, or set"
            " ollama_version to 0.30.10 or older (which accepts 531+)"
        )
    return refusals


# --- APT sources: components merged, every other byte kept ------------------------------


@dataclass
class SourcesMerge:
    """The files whose text changes (path -> new text) and how many release entries were seen."""

    changed: dict[str, str] = field(default_factory=dict)
    matched: int = 0


def _release_suite(suite: str, codename: str) -> bool:
    """The release itself or its -updates, -security, -backports suites."""
    return suite == codename or suite.startswith(codename + "-")


def _merge_one_line(line: str, codename: str, wanted: list[str]) -> tuple[str, bool]:
    """One-line format: `deb [options] URI SUITE COMPONENT...`. Returns (line, is a release
    line). Lines with an inline comment are left alone (and not counted)."""
    text = line.strip()
    if not text.startswith(("deb ", "deb-src ")) or "#" in text:
        return line, False
    tokens = text.split()
    rest = tokens[1:]
    if rest and rest[0].startswith("["):
        while rest and not rest[0].endswith("]"):
            rest = rest[1:]
        rest = rest[1:]
    if len(rest) < 3:
        return line, False
    suite, components = rest[1], rest[2:]
    if not _release_suite(suite, codename) or "main" not in components:
        return line, False
    missing = [c for c in wanted if c not in components]
    return (line.rstrip() + " " + " ".join(missing) if missing else line), True


def merge_one_line_file(text: str, codename: str, wanted: list[str]) -> tuple[str, int]:
    """sources.list / *.list: the wanted components appended to the release's main lines."""
    out, matched = [], 0
    for line in text.splitlines():
        merged, hit = _merge_one_line(line, codename, wanted)
        out.append(merged)
        matched += hit
    return "\n".join(out) + ("\n" if text.endswith("\n") else ""), matched


def _stanzas(lines: list[str]) -> list[list[int]]:
    """deb822 stanzas as lists of line indexes (blank lines separate them)."""
    stanzas: list[list[int]] = [[]]
    for index, line in enumerate(lines):
        if line.strip():
            stanzas[-1].append(index)
        elif stanzas[-1]:
            stanzas.append([])
    return [s for s in stanzas if s]


def _fields(lines: list[str], stanza: list[int]) -> dict[str, tuple[str, int]]:
    """Field name (lower case) -> (value, index of its last line); # comment lines skipped."""
    found: dict[str, tuple[str, int]] = {}
    name = None
    for index in stanza:
        line = lines[index]
        if line.startswith("#"):
            continue
        if line[:1] in (" ", "\t") and name:
            value, _ = found[name]
            found[name] = (value + " " + line.strip(), index)
            continue
        key, sep, value = line.partition(":")
        if sep:
            name = key.strip().lower()
            found[name] = (value.strip(), index)
    return found


def merge_deb822_file(text: str, codename: str, wanted: list[str]) -> tuple[str, int]:
    """*.sources (deb822): the wanted components added to the Components of the release's
    stanzas that have main; Enabled: no stanzas are left alone."""
    lines = text.splitlines()
    matched = 0
    for stanza in _stanzas(lines):
        fields = _fields(lines, stanza)
        suites = fields.get("suites", ("", 0))[0].split()
        components = fields.get("components", ("", 0))[0].split()
        types = fields.get("types", ("", 0))[0].split()
        enabled = fields.get("enabled", ("yes", 0))[0].lower() != "no"
        if not (enabled and {"deb", "deb-src"} & set(types) and "main" in components):
            continue
        if not any(_release_suite(s, codename) for s in suites):
            continue
        matched += 1
        missing = [c for c in wanted if c not in components]
        if missing:
            index = fields["components"][1]
            lines[index] = lines[index].rstrip() + " " + " ".join(missing)
    return "\n".join(lines) + ("\n" if text.endswith("\n") else ""), matched


def merge_sources(files: dict[str, str], codename: str, wanted: list[str]) -> SourcesMerge:
    """Merge the wanted components into every APT source of the release (one-line and deb822
    files alike); other repositories, lines, comments and options are kept as they are."""
    result = SourcesMerge()
    for path, text in sorted(files.items()):
        merge = merge_deb822_file if path.endswith(".sources") else merge_one_line_file
        merged, matched = merge(text, codename, wanted)
        result.matched += matched
        if merged != text:
            result.changed[path] = merged
    return result


# --- is the driver in use, or does the VM need a reboot? --------------------------------


def reboot_reason(smi: dict[str, Any], modules: list[str]) -> str | None:
    """Why the driver is not in use yet (None: nvidia-smi sees the GPU). smi: facts.nvidia's
    NvidiaSmi; modules: the loaded kernel modules (/proc/modules, as lsmod lists them)."""
    if smi.get("gpus"):
        return None
    error = smi.get("error")
    if "nouveau" in modules:
        return "nouveau holds the GPU; it is blacklisted from the next boot"
    if error == "version-mismatch":
        return "the loaded nvidia module is another version than the installed driver"
    if "nvidia" not in modules:
        return "the nvidia kernel module is not loaded yet"
    return f"nvidia-smi fails ({error}): {smi.get('message') or 'no message'}"
