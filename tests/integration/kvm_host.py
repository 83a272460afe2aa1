"""Test fixtures that make the integration container look like a passthrough host.

The container has no GPU, no IOMMU and no boot loader. What the kvm role reads is given to it
here, as files and commands inside the container only, so that every fact and operation of the
role runs its real code path (nothing in roles/ knows about these fixtures):

- `lspci`: a stand-in command (/usr/local/bin/lspci, a test fixture) printing a recorded
  `lspci -Dnnk` listing of an RTX 3070 (GPU + audio function) and one Intel host device, with
  the driver in use that the current "boot" has (nvidia, vfio-pci). The GPU's PCI functions are
  given this way, not as a setting: PciDevices, IommuGroups and PciDriverInUse then parse
  lspci output as on a real host;
- /proc/cpuinfo with vmx added, /proc/cmdline of the "running kernel": bind mounts over the
  container's own (CAP_SYS_ADMIN, which the testbed containers have);
- /sys/kernel/iommu_groups: an empty tmpfs (IOMMU absent), or groups as symlinks (IOMMU on);
- /etc/default/grub with existing parameters; `update-grub` and `update-initramfs` stand-ins
  that only record their calls (the real ones would rewrite a boot loader the container lacks).

"Rebooting" is rewriting these fixtures: the running kernel gets the parameters, the drivers
change.

Also a command line for Molecule's kvm-host scenario (the lifecycle of testbed.py):
    python -m tests.integration.kvm_host image|create NAME|destroy NAME
`create` starts a testbed container with these fixtures in the state after the reboot a first
converge asks for (a container cannot reboot): running kernel with the IOMMU parameters, the GPU
in an IOMMU group of its own, both its functions on vfio-pci.
"""

from __future__ import annotations

import shlex
import sys

from roles.kvm.vfio import wanted_kernel_params
from tests.integration import testbed
from tests.integration.testbed import sh

FIXTURE_DIR = "/var/lib/ollama-rig-fixture"
CALLS = f"{FIXTURE_DIR}/calls.log"
GPU = "0000:01:00.0"
AUDIO = "0000:01:00.1"
OTHER = "0000:00:14.0"
GRUB_TEXT = (
    "GRUB_DEFAULT=0\n"
    "GRUB_TIMEOUT=5\n"
    "GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`\n"
    'GRUB_CMDLINE_LINUX_DEFAULT="quiet splash mitigations=auto"\n'
    'GRUB_CMDLINE_LINUX=""\n'
)
BOOT_CMDLINE = "BOOT_IMAGE=/boot/vmlinuz-6.1.0-18-amd64 root=/dev/sda1 ro quiet splash"


def lspci_listing(gpu_driver: str, audio_driver: str) -> str:
    """A recorded-style `lspci -Dnnk` of the fixture host (RTX 3070 at 01:00, a USB host)."""
    return (
        f"{OTHER} USB controller [0c03]: Intel Corporation Alder Lake-S PCH USB 3.2"
        " xHCI Host Controller [8086:7ae0] (rev 11)\n"
        "\tSubsystem: ASUSTeK Computer Inc. Device [1043:8694]\n"
        "\tKernel driver in use: xhci_hcd\n"
        "\tKernel modules: xhci_pci\n"
        f"{GPU} VGA compatible controller [0300]: NVIDIA Corporation GA104 [GeForce RTX 3070]"
        " [10de:2484] (rev a1)\n"
        "\tSubsystem: Gigabyte Technology Co., Ltd Device [1458:404c]\n"
        f"\tKernel driver in use: {gpu_driver}\n"
        "\tKernel modules: nvidiafb, nouveau, nvidia_drm, nvidia\n"
        f"{AUDIO} Audio device [0403]: NVIDIA Corporation GA104 High Definition Audio"
        " Controller [10de:228b] (rev a1)\n"
        "\tSubsystem: Gigabyte Technology Co., Ltd Device [1458:404c]\n"
        f"\tKernel driver in use: {audio_driver}\n"
        "\tKernel modules: snd_hda_intel\n"
    )


# The stand-in lspci: -D, -nn, -k and -s ADDRESS over the listing above (no other options).
LSPCI = r"""#!/usr/bin/python3
# Test fixture of tests/integration/kvm_host.py: a stand-in lspci over a recorded listing.
import sys
args, want, show_k = sys.argv[1:], None, False
for i, arg in enumerate(args):
    if arg.startswith("-") and "k" in arg:
        show_k = True
    if arg.startswith("-") and arg.endswith("s") and i + 1 < len(args):
        want = args[i + 1]
    elif arg == "-s" and i + 1 < len(args):
        want = args[i + 1]
blocks, block = [], []
for line in open("/var/lib/ollama-rig-fixture/lspci.txt").read().splitlines():
    if line and not line[0].isspace() and block:
        blocks.append(block)
        block = []
    block.append(line)
blocks.append(block)
for block in blocks:
    address = block[0].split()[0]
    if want and not address.endswith(want if want.count(":") == 2 else "0000:" + want):
        continue
    print("\n".join(block if show_k else block[:1]))
"""
RECORDER = (
    '#!/bin/sh\n# Test fixture: records the call only.\necho "$(basename "$0") $*" >> {calls}\n'
)


def write(container: str, path: str, text: str, mode: str = "0644") -> None:
    sh(container, f"cat > {path} <<'FIXTURE_EOF'\n{text}FIXTURE_EOF\nchmod {mode} {path}")


def install(container: str) -> None:
    """Lay the fixtures in the container: the first "boot", IOMMU absent, GPU on nvidia."""
    sh(container, f"mkdir -p {FIXTURE_DIR} && : > {CALLS}")
    write(container, "/usr/local/bin/lspci", LSPCI, "0755")
    set_drivers(container, "nvidia", "snd_hda_intel")
    sh(
        container,
        f"sed '/^flags/s/$/ vmx/' /proc/cpuinfo > {FIXTURE_DIR}/cpuinfo"
        f" && mount --bind {FIXTURE_DIR}/cpuinfo /proc/cpuinfo"
        f" && : > {FIXTURE_DIR}/cmdline && mount --bind {FIXTURE_DIR}/cmdline /proc/cmdline"
        " && mount -t tmpfs fixture /sys/kernel/iommu_groups",
    )
    set_cmdline(container, BOOT_CMDLINE)
    write(container, "/etc/default/grub", GRUB_TEXT)
    set_tools(container, update_grub=True, update_initramfs=True)


def set_tools(container: str, update_grub: bool, update_initramfs: bool) -> None:
    for tool, present in (("update-grub", update_grub), ("update-initramfs", update_initramfs)):
        path = f"/usr/local/sbin/{tool}"
        if present:
            write(container, path, RECORDER.format(calls=CALLS), "0755")
        else:
            sh(container, f"rm -f {path}")


def set_drivers(container: str, gpu: str, audio: str) -> None:
    write(container, f"{FIXTURE_DIR}/lspci.txt", lspci_listing(gpu, audio))


def set_cmdline(container: str, cmdline: str) -> None:
    # In place (same inode): the bind mount over /proc/cmdline shows the new text.
    sh(container, f"printf '%s\\n' {shlex.quote(cmdline)} > {FIXTURE_DIR}/cmdline")


def set_iommu_groups(container: str, groups: dict[str, list[str]]) -> None:
    """{} : IOMMU absent; {"1": [GPU, AUDIO]}: groups in sysfs as the kernel lays them out."""
    script = ["rm -rf /sys/kernel/iommu_groups/*"]
    for number, members in groups.items():
        script.append(f"mkdir -p /sys/kernel/iommu_groups/{number}/devices")
        where = f"/sys/kernel/iommu_groups/{number}/devices"
        # The links point at existing directories, as the kernel's point at the devices.
        script += [f"mkdir -p {FIXTURE_DIR}/devices/{a}" for a in members]
        script += [f"ln -s {FIXTURE_DIR}/devices/{a} {where}/{a}" for a in members]
    sh(container, " && ".join(script))


def set_boot_vga(container: str, address: str | None) -> None:
    """The firmware's console GPU (sysfs boot_vga=1): a tmpfs over /sys/bus/pci/devices holding
    only that file, in the container only; None: the container's own view again."""
    if address is None:
        sh(container, "umount /sys/bus/pci/devices")
        return
    sh(
        container,
        "mount -t tmpfs fixture /sys/bus/pci/devices"
        f" && mkdir /sys/bus/pci/devices/{address}"
        f" && echo 1 > /sys/bus/pci/devices/{address}/boot_vga",
    )


def calls(container: str) -> list[str]:
    return [line.strip() for line in sh(container, f"cat {CALLS}").splitlines() if line.strip()]


def cat(container: str, path: str) -> str:
    return testbed.exec_in(container, "cat", path, check=False).stdout


def create(name: str) -> str:
    """A testbed host called name, its fixtures in the "rebooted into vfio-pci" state."""
    container = testbed.create(name)
    install(container)
    # vmx in the fixture's cpuinfo: the role wants the Intel parameters.
    set_cmdline(container, " ".join([BOOT_CMDLINE, *wanted_kernel_params("intel")]))
    set_iommu_groups(container, {"0": [OTHER], "1": [GPU, AUDIO]})
    set_drivers(container, "vfio-pci", "vfio-pci")
    return container


def main(argv: list[str]) -> int:
    return testbed.cli(
        argv,
        "tests.integration.kvm_host",
        testbed.IMAGE,
        testbed.build_image,
        create,
        testbed.destroy,
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
