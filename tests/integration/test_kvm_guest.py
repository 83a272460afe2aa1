"""Tier 2: the kvm guest (kvm_guest=True) applied for real to a Debian 12 systemd container.

The container has no GPU and no network. Test fixtures make it look like a fresh VM with a GPU
passed through, and nothing in roles/ knows about them:

- the NVIDIA PCI function: a tmpfs over /sys/bus/pci/devices holding one function of vendor
  0x10de, class 0x0300 (what the VM's sysfs shows of the passed-through RTX 3070);
- the distribution's mirror: a local APT repository (file:/srv/ollama-rig-fixture-apt, suite
  bookworm) of TEST FIXTURE packages named like the real ones (nvidia-driver in non-free,
  firmware-misc-nonfree in non-free-firmware, the running kernel's linux-headers in main), each
  holding only a marker file. The container's sources list that mirror with `main` only, so the
  driver packages install only if the role really merged the components into it;
- `update-initramfs`: a stand-in that records its calls (the image has no initramfs-tools);
- after the "reboot": nvidia-smi stood in for by a script printing a recorded-format CSV.

What this proves: refusal before any change (Debian 12's 535 branch against Ollama 0.32.7);
--dry changing nothing; the components merged into the existing line (option kept, backup made),
apt-get update, the packages installed from the components added (without the merge apt cannot
locate nvidia-driver), nouveau blacklisted, "reboot required"; after the reboot the native role
continues; a second run changes nothing; the guest verify checks pass,
and fail when the driver is too old. Not proved: the real packages, DKMS, a real reboot.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from roles.kvm.driver import GUEST_MANIFEST, NOUVEAU_BLACKLIST
from tests.integration.deployer import (
    changed,
    fake_nvidia_smi,
    run_deploy,
    run_verify,
    sh,
    standin_data,
)

REPO = "/srv/ollama-rig-fixture-apt"
SOURCES = "/etc/apt/sources.list"
SOURCE_LINE = f"deb [trusted=yes] file:{REPO} bookworm main"
OLD_OLLAMA = "0.30.10"  # the last release that accepts Debian 12's 535 driver (docs/gpu.mdx)
INITRAMFS_CALLS = "/var/lib/ollama-rig-fixture/update-initramfs.calls"
# `nvidia-smi --query-gpu=... --format=csv,noheader,nounits` (facts/nvidia.py's 7 fields).
RTX3070_535 = "0, NVIDIA GeForce RTX 3070, 8192, 410, 535.261.03, 00000000:06:10.0, GPU-0a1b2c3d\n"

FIXTURES = f"""
set -e
K=$(uname -r); A=$(dpkg --print-architecture)
mkdir -p /var/lib/ollama-rig-fixture
# TEST FIXTURE standing in for update-initramfs: records its calls.
cat > /usr/local/sbin/update-initramfs <<'EOF'
#!/bin/sh
echo "update-initramfs $*" >> {INITRAMFS_CALLS}
EOF
chmod 755 /usr/local/sbin/update-initramfs
# The passed-through GPU as the VM's sysfs shows it.
mount -t tmpfs fixture /sys/bus/pci/devices
mkdir /sys/bus/pci/devices/0000:06:10.0
echo 0x10de > /sys/bus/pci/devices/0000:06:10.0/vendor
echo 0x2484 > /sys/bus/pci/devices/0000:06:10.0/device
echo 0x030000 > /sys/bus/pci/devices/0000:06:10.0/class
# The mirror: TEST FIXTURE packages named like the real ones.
mk() {{
  d=/tmp/fixture-pkgs/$1; mkdir -p $d/DEBIAN $d/usr/share/doc/$1
  echo "TEST FIXTURE standing in for $1 (ollama-rig integration tests)" \\
    > $d/usr/share/doc/$1/TEST-FIXTURE
  printf 'Package: %s\\nVersion: %s\\nArchitecture: %s\\nMaintainer: ollama-rig tests\\n' \\
    "$1" "$2" "$A" > $d/DEBIAN/control
  printf 'Description: TEST FIXTURE standing in for %s\\n' "$1" >> $d/DEBIAN/control
  mkdir -p {REPO}/pool/$3
  dpkg-deb --build $d {REPO}/pool/$3/$1_$2_$A.deb >/dev/null
}}
mk nvidia-driver 535.261.03-1 non-free
mk firmware-misc-nonfree 20230210-5 non-free-firmware
mk linux-headers-$K 6.1-1 main
cd {REPO}
for c in main contrib non-free non-free-firmware; do
  mkdir -p dists/bookworm/$c/binary-$A; : > dists/bookworm/$c/binary-$A/Packages
  for deb in pool/$c/*.deb; do
    [ -e "$deb" ] || continue
    {{ dpkg-deb -f $deb; echo "Filename: $deb"; echo "Size: $(stat -c %s $deb)";
      echo "SHA256: $(sha256sum $deb | cut -d' ' -f1)"; echo; }} \\
      >> dists/bookworm/$c/binary-$A/Packages
  done
done
{{ echo "Origin: ollama-rig-test-fixture"; echo "Suite: bookworm"; echo "Codename: bookworm"
  echo "Architectures: $A"; echo "Components: main contrib non-free non-free-firmware"
  echo "SHA256:"
  for f in dists/bookworm/*/binary-$A/Packages; do
    echo " $(sha256sum $f | cut -d' ' -f1) $(stat -c %s $f) ${{f#dists/bookworm/}}"
  done; }} > dists/bookworm/Release
# The VM's only mirror, with main only (the offline image's deb.debian.org line moved away).
rm -f /etc/apt/sources.list.d/*.sources
echo '{SOURCE_LINE}' > {SOURCES}
apt-get update -qq
"""


@pytest.fixture(scope="module")
def guest(container: str) -> Iterator[str]:
    sh(container, FIXTURES)
    yield container


@pytest.fixture(scope="module")
def old_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.standin.build_archive import build_archive

    return build_archive(OLD_OLLAMA, tmp_path_factory.mktemp("guest-archive"))


def data(archive: Path, **overrides: Any) -> dict[str, Any]:
    base = standin_data(archive, gpu="nvidia", kvm_guest=True, ollama_version=OLD_OLLAMA)
    return {**base, **overrides}


def installed(container: str) -> list[str]:
    """The fixture packages dpkg has installed (status ii)."""
    query = "dpkg-query -W -f '${db:Status-Abbrev} ${Package}\\n'"
    out = sh(container, f"{query} 'nvidia-*' 'firmware-*' 'linux-he*' 2>/dev/null; true")
    return sorted(line.split()[1] for line in out.splitlines() if line.startswith("ii "))


def test_debian_12_with_current_ollama_is_refused_before_any_change(
    guest: str, old_archive: Path
) -> None:
    run = run_deploy(guest, data(old_archive, ollama_version="0.32.7"))
    assert run.returncode != 0
    assert "debian 12's nvidia-driver is the 535 branch" in run.output
    assert "needs driver 550+" in run.output and "Traceback" not in run.output
    assert sh(guest, f"cat {SOURCES}") == SOURCE_LINE + "\n"
    assert installed(guest) == []


def test_dry_run_changes_nothing(guest: str, old_archive: Path) -> None:
    run = run_deploy(guest, data(old_archive), "--dry")
    assert run.returncode == 0, run.output[-4000:]
    assert "APT components contrib non-free non-free-firmware for bookworm" in run.output
    assert sh(guest, f"cat {SOURCES}") == SOURCE_LINE + "\n"
    assert installed(guest) == []
    assert sh(guest, f"test -e {NOUVEAU_BLACKLIST} || echo absent") == "absent\n"


def test_first_run_merges_installs_and_asks_for_the_reboot(guest: str, old_archive: Path) -> None:
    run = run_deploy(guest, data(old_archive))
    assert run.returncode != 0
    assert "driver not in use yet (not-found)" in run.output
    assert "reboot required (the nvidia kernel module is not loaded yet)" in run.output
    assert "set kvm_allow_reboot=True" in run.output
    # The components appended to the existing line, its option kept; the original backed up.
    merged = SOURCE_LINE + " contrib non-free non-free-firmware\n"
    assert sh(guest, f"cat {SOURCES}") == merged
    assert sh(guest, f"cat {SOURCES}.ollama-rig.bak") == SOURCE_LINE + "\n"
    # Installed only because non-free and non-free-firmware were really added.
    kernel = sh(guest, "uname -r").strip()
    assert installed(guest) == sorted(
        ["firmware-misc-nonfree", f"linux-headers-{kernel}", "nvidia-driver"]
    )
    assert "blacklist nouveau" in sh(guest, f"cat {NOUVEAU_BLACKLIST}")
    assert sh(guest, f"cat {INITRAMFS_CALLS}") == "update-initramfs -u\n"
    # Stopped before Ollama and before the guest manifest.
    assert sh(guest, f"test -e {GUEST_MANIFEST} || echo absent") == "absent\n"
    assert sh(guest, "test -e /usr/local/bin/ollama || echo absent") == "absent\n"


def test_after_the_reboot_the_native_role_continues(guest: str, old_archive: Path) -> None:
    fake_nvidia_smi(guest, RTX3070_535)  # the "reboot": the driver answers now
    run = run_deploy(guest, data(old_archive))
    assert run.returncode == 0, run.output[-4000:]
    assert "guest: NVIDIA driver 535.261.03 in use, kept" in run.output
    names = run.changed_operations()
    assert any(GUEST_MANIFEST in name for name in names), names
    assert not any("APT components" in n or "NVIDIA driver (" in n for n in names), names
    assert sh(guest, "test -x /usr/local/bin/ollama && echo yes") == "yes\n"
    # No second initramfs rebuild, the sources as the first run left them.
    assert sh(guest, f"cat {INITRAMFS_CALLS}") == "update-initramfs -u\n"


def test_second_run_changes_nothing(guest: str, old_archive: Path) -> None:
    run = run_deploy(guest, data(old_archive))
    assert run.returncode == 0, run.output[-4000:]
    assert run.totals["success"] == 0, changed(run)


def test_guest_verify_checks_pass_then_fail_on_an_old_driver(guest: str) -> None:
    result = run_verify(guest, suite="tests/verify/test_kvm.py")
    assert result.returncode == 0, result.stdout[-4000:]
    assert "PASSED tests/verify/test_kvm.py::test_guest_nvidia_driver_works" in result.stdout
    assert "test_guest_driver_branch_is_what_ollama_needs" in result.stdout
    fake_nvidia_smi(guest, RTX3070_535.replace("535.261.03", "525.147.05"))
    try:
        old = run_verify(guest, suite="tests/verify/test_kvm.py")
    finally:
        fake_nvidia_smi(guest, RTX3070_535)
    assert old.returncode != 0
    assert "driver 525.147.05 is older than the 531 this Ollama needs" in old.stdout
