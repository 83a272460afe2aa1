"""The doctor's KVM-host and LXC rules (issues 6 and 7): each fires on the fault and stays quiet
on the same box without it.

Case folders (tests/fixtures/doctor-kvm-lxc/<case>/<KIND>.txt, each with a .source naming where it
came from, or "constructed from ..." and why) are boxes as `python -m doctor --captured` reads
them. The other inputs are recorded outputs from tests/fixtures/outputs, or small captures built
in the tools' exact formats, each saying so. Expected codes and wording are read off the inputs,
never taken from the doctor.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from doctor.captures import from_outputs, read_folder
from doctor.diagnose import diagnose
from doctor.findings import Finding
from doctor.parsers import (
    NO_IOMMU_GROUPS,
    parse_cpuinfo,
    parse_dev_nvidia_access,
    parse_iommu_listing,
    parse_lxd_config,
    parse_modprobe,
    parse_nvidia_libs,
    parse_nvidia_version,
)
from doctor.report import build_report
from facts.parsers import ParseError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CASES_DIR = FIXTURES / "doctor-kvm-lxc"
OUTPUTS = FIXTURES / "outputs"

# case folder -> (the finding it must produce, its severity)
CASES = {
    "kvm-iommu-off": ("iommu-off", "error"),
    "kvm-gpu-held-by-nvidia": ("gpu-not-on-vfio", "error"),
    "kvm-gpu-on-vfio": ("gpu-on-vfio", "info"),
    "lxc-unprivileged-0660": ("device-permission-denied", "error"),
    "lxc-driver-mismatch": ("driver-version-mismatch", "error"),
    "lxd-no-gpu-device": ("lxd-no-gpu-device", "warning"),
}


def _out(path: str) -> str:
    return (OUTPUTS / path).read_text()


def _case(case: str) -> dict[str, Finding]:
    return {f.code: f for f in diagnose(read_folder(CASES_DIR / case))}


def _codes(**outputs: str) -> dict[str, Finding]:
    captures = from_outputs({kind.replace("_", "-"): text for kind, text in outputs.items()})
    assert captures.problems == []
    return {f.code: f for f in diagnose(captures)}


# --- the case folders ----------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
def test_case_names_its_cause(case: str) -> None:
    code, severity = CASES[case]
    findings = _case(case)
    assert code in findings, f"{case}: got {sorted(findings)}"
    assert findings[code].severity == severity
    assert findings[code].evidence and findings[code].fix


@pytest.mark.parametrize("case", sorted(CASES))
def test_case_reads_every_file(case: str) -> None:
    assert read_folder(CASES_DIR / case).problems == []


def test_every_case_is_checked() -> None:
    assert {p.name for p in CASES_DIR.iterdir() if p.is_dir()} == set(CASES)


@pytest.mark.parametrize(
    "path", sorted(p for p in CASES_DIR.rglob("*") if p.is_file() and p.suffix != ".source")
)
def test_every_capture_has_a_source(path: Path) -> None:
    source = path.with_suffix(".source")
    assert source.is_file(), f"{path} has no {source.name}"
    text = source.read_text()
    first = text.splitlines()[0]
    assert first.startswith(("https://", "constructed from")), f"{source}: first line"
    assert "https://" in text, f"{source} names no URL"


def test_iommu_off_case_points_at_the_kernel_parameter() -> None:
    # fwupd#2093: Intel DMAR table, no IOMMU; the maintainers point to intel_iommu=on.
    finding = _case("kvm-iommu-off")["iommu-off"]
    assert "Add intel_iommu=on iommu=pt" in finding.fix
    assert "update-grub" in finding.fix and "proxmox-boot-tool refresh" in finding.fix
    assert "iommu-groups: /sys/kernel/iommu_groups is empty" in finding.evidence
    assert "modprobe: options vfio-pci ids=10de:21c4" in finding.evidence


def test_gpu_held_case_asks_for_softdep_initramfs_and_reboot() -> None:
    findings = _case("kvm-gpu-held-by-nvidia")
    fix = findings["gpu-not-on-vfio"].fix
    assert "`softdep nvidia pre: vfio-pci`" in fix
    assert "nouveau pre" not in fix  # modprobe.blacklist=nouveau on its command line
    assert "update-initramfs -u -k all" in fix and "reboot" in fix
    assert (
        "lspci: Kernel driver in use: 0000:01:00.0 nvidia" in findings["gpu-not-on-vfio"].evidence
    )
    assert "iommu-off" not in findings  # "DMAR: IOMMU enabled"


def test_gpu_on_vfio_is_no_driver_fault_on_a_kvm_host() -> None:
    report = build_report(read_folder(CASES_DIR / "kvm-gpu-on-vfio"))
    assert [f.code for f in report.findings] == ["gpu-on-vfio"]
    assert not report.has_errors  # `python -m doctor` exits 0


def test_mismatch_case_names_both_versions_and_hides_the_vaguer_finding() -> None:
    findings = _case("lxc-driver-mismatch")
    finding = findings["driver-version-mismatch"]
    assert "570.148.06" in finding.cause and "570.148.08" in finding.cause
    assert "NVIDIA-Linux-x86_64-570.148.06.run --no-kernel-module" in finding.fix
    assert "driver-library-mismatch" not in findings


def test_unprivileged_case_quotes_the_nodes_and_the_config() -> None:
    findings = _case("lxc-unprivileged-0660")
    finding = findings["device-permission-denied"]
    assert "dev-nvidia: crw-rw---- nobody:nogroup /dev/nvidia-uvm" in finding.evidence
    assert "pve-lxc-conf: unprivileged: 1" in finding.evidence
    assert "lxc_dev_gid" in finding.fix and "gid=" in finding.fix
    assert "nvidia-smi-nvml-init-failed" not in findings  # the generic reading is hidden


# --- IOMMU off -------------------------------------------------------------------------------

INTEL_OFF = _out("dmesg-iommu/intel-table-present-not-enabled.txt")
VFIO_CONF = "options vfio-pci ids=10de:21c4\n"  # kubevirt-gpu-device-plugin#45, verbatim
CMDLINE = "BOOT_IMAGE=/boot/vmlinuz-6.8.12-4-pve root=/dev/mapper/pve-root ro quiet"  # constructed
# /proc/cpuinfo's first lines of an AMD host (constructed in the kernel's layout)
AMD_CPU = "vendor_id\t: AuthenticAMD\nmodel name\t: AMD Ryzen 9 5950X\n" + (
    "flags\t\t: fpu sse2 lm svm avx avx2\n"
)


def test_iommu_off_stays_quiet_without_passthrough() -> None:
    # The same IOMMU-off box with nothing configured for vfio-pci: native Ollama does not care.
    assert _codes(iommu_groups=NO_IOMMU_GROUPS, dmesg_iommu=INTEL_OFF) == {}


def test_iommu_on_with_groups_stays_quiet() -> None:
    groups = _out("iommu-groups/loop-1660-super-four-functions.txt")
    assert "iommu-off" not in _codes(iommu_groups=groups, modprobe=VFIO_CONF)


def test_iommu_off_with_the_parameter_set_points_at_the_firmware() -> None:
    findings = _codes(
        iommu_groups=NO_IOMMU_GROUPS,
        cmdline=CMDLINE + " intel_iommu=on iommu=pt",
        cpuinfo="vendor_id\t: GenuineIntel\nflags\t\t: fpu sse2 lm avx\n",
    )
    fix = findings["iommu-off"].fix
    assert fix.startswith("Enable VT-d in the firmware")
    assert findings["iommu-off"].severity == "warning"  # IOMMU parameters alone, no vfio-pci
    assert "cmdline: intel_iommu=on iommu=pt" in findings["iommu-off"].evidence


def test_iommu_off_without_the_parameter_on_intel() -> None:
    findings = _codes(iommu_groups=NO_IOMMU_GROUPS, dmesg_iommu=INTEL_OFF, cmdline=CMDLINE)
    assert findings == {}  # nothing shows passthrough is wanted yet
    findings = _codes(
        iommu_groups=NO_IOMMU_GROUPS, dmesg_iommu=INTEL_OFF, cmdline=CMDLINE, modprobe=VFIO_CONF
    )
    assert findings["iommu-off"].fix.startswith("Add intel_iommu=on iommu=pt")
    assert any(e.startswith("cmdline: no intel_iommu=on") for e in findings["iommu-off"].evidence)


def test_iommu_switched_off_on_the_command_line() -> None:
    findings = _codes(
        iommu_groups=NO_IOMMU_GROUPS, cmdline=CMDLINE + " amd_iommu=off", modprobe=VFIO_CONF
    )
    assert findings["iommu-off"].fix.startswith("Remove amd_iommu=off")


def test_iommu_off_on_amd_is_the_firmware() -> None:
    findings = _codes(
        iommu_groups=NO_IOMMU_GROUPS,
        cmdline=CMDLINE + " vfio-pci.ids=10de:2206,10de:1aef",
        cpuinfo=AMD_CPU,
    )
    assert findings["iommu-off"].fix.startswith("Enable IOMMU (AMD-Vi) in the firmware")
    assert findings["iommu-off"].severity == "error"  # vfio-pci.ids: passthrough is set up


# --- IOMMU group not isolated ----------------------------------------------------------------

# kubevirt-gpu-device-plugin#50's listing (real), with its USB controller 00:14.0 moved into the
# GPU's group 1 (constructed: a board without ACS below the root port groups them like this).
ISOLATED = _out("iommu-groups/loop-1660-super-four-functions.txt")
SHARED = ISOLATED.replace(
    "IOMMU Group 3 00:14.0 USB controller", "IOMMU Group 1 00:14.0 USB controller"
)


def test_group_shared_with_a_usb_controller() -> None:
    finding = _codes(iommu_groups=SHARED, modprobe=VFIO_CONF)["iommu-group-not-isolated"]
    assert "IOMMU group 1" in finding.cause
    assert any(e.startswith("0000:00:14.0 Intel Corporation Comet Lake") for e in finding.evidence)
    assert "slot" in finding.fix and "ACS" in finding.fix


def test_group_with_the_gpus_functions_and_a_bridge_is_isolated() -> None:
    assert "iommu-group-not-isolated" not in _codes(iommu_groups=ISOLATED, modprobe=VFIO_CONF)


def test_shared_group_without_passthrough_stays_quiet() -> None:
    assert _codes(iommu_groups=SHARED) == {}


# --- GPU held by a host driver although vfio-pci is configured --------------------------------

LSPCI_3080 = _out("lspci/nnk-lost-indent-3080.txt")  # nvidia on the GPU, snd_hda_intel on audio
LSPCI_T4_VFIO = (CASES_DIR / "kvm-gpu-on-vfio" / "lspci.txt").read_text()


def test_ids_for_the_gpu_only_leave_its_audio_function_out() -> None:
    finding = _codes(lspci=LSPCI_3080, modprobe="options vfio-pci ids=10de:2206\n")[
        "gpu-not-on-vfio"
    ]
    assert "`options vfio-pci ids=10de:2206,10de:1aef`" in finding.fix
    assert "`softdep nvidia pre: vfio-pci`" in finding.fix
    assert "`softdep nouveau pre: vfio-pci`" in finding.fix
    assert "`softdep snd_hda_intel pre: vfio-pci`" in finding.fix


def test_complete_config_still_held_means_initramfs_or_reboot() -> None:
    conf = (
        "/etc/modprobe.d/vfio.conf:options vfio-pci ids=10de:2206,10de:1aef\n"
        "/etc/modprobe.d/vfio.conf:softdep nvidia pre: vfio-pci\n"
        "/etc/modprobe.d/vfio.conf:softdep nouveau pre: vfio-pci\n"
        "/etc/modprobe.d/vfio.conf:softdep snd_hda_intel pre: vfio-pci\n"
    )  # the file roles/kvm writes (templates/kvm/vfio-modprobe.conf.j2), as grep -H prints it
    fix = _codes(lspci=LSPCI_3080, modprobe=conf)["gpu-not-on-vfio"].fix
    assert fix.startswith("On the host rebuild the initramfs (`update-initramfs -u -k all`)")


def test_ids_on_the_kernel_command_line_count() -> None:
    findings = _codes(lspci=LSPCI_3080, cmdline=CMDLINE + " vfio-pci.ids=10de:2206,10de:1aef")
    assert "cmdline: vfio-pci ids 10de:2206,10de:1aef" in findings["gpu-not-on-vfio"].evidence


def test_vfio_for_another_device_or_none_stays_quiet() -> None:
    assert _codes(lspci=LSPCI_3080, modprobe="options vfio-pci ids=8086:1533\n") == {}
    assert _codes(lspci=LSPCI_3080) == {}


def test_gpu_on_vfio_as_configured_stays_quiet() -> None:
    findings = _codes(lspci=LSPCI_T4_VFIO, modprobe="options vfio-pci ids=10de:1eb8\n")
    assert set(findings) == {"gpu-on-vfio"}


# --- a VM's CPU without AVX -------------------------------------------------------------------

VM_CPU = (FIXTURES / "doctor" / "vm-no-avx" / "cpuinfo.txt").read_text()  # xcat-core#4182
# ollama/ollama#2332: lscpu of a Xeon E5410 host (bare metal, no AVX); the Flags line shortened.
LSCPU_E5410 = (
    "Model name:            Intel(R) Xeon(R) CPU           E5410  @ 2.33GHz\n"
    "Flags:                 fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat"
    " pse36 clflush dts acpi mmx fxsr sse sse2 ss ht tm pbe syscall nx lm constant_tsc vmx\n"
)


def test_vm_without_avx_gets_cpu_type_host() -> None:
    finding = _codes(cpuinfo=VM_CPU)["cpu-without-avx"]
    assert "`cpu: host`" in finding.fix and "qm set <vmid> -cpu host" in finding.fix
    assert "host-passthrough" in finding.fix
    assert "a virtual machine (hypervisor flag)" in finding.evidence[-1]


def test_bare_metal_without_avx_is_not_told_to_change_a_vm() -> None:
    finding = _codes(cpuinfo=LSCPU_E5410)["cpu-without-avx"]
    assert "VM" not in finding.fix and "0.5.8" in finding.fix


def test_vm_with_cpu_type_host_has_avx() -> None:
    with_avx = VM_CPU.replace(" hypervisor ", " hypervisor avx avx2 ")  # host-passthrough flags
    assert _codes(cpuinfo=with_avx) == {}


# --- LXC: majors in the container config -------------------------------------------------------

SNIPPET = _out("pve-lxc-conf/nvidia-cgroup-mount-snippet.txt")  # allows 195, 506, 509
FULL_DEVICES = _out("proc-devices/full-pve-host-nvidia-frontend.txt")  # nvidia-uvm 509


def test_real_snippet_matches_the_hosts_majors() -> None:
    assert _codes(pve_lxc_conf=SNIPPET, proc_devices=FULL_DEVICES) == {}


def test_uvm_major_moved_after_a_driver_update() -> None:
    moved = FULL_DEVICES.replace("509 nvidia-uvm", "511 nvidia-uvm")  # constructed
    finding = _codes(pve_lxc_conf=SNIPPET, proc_devices=moved)["lxc-uvm-major-not-allowed"]
    assert (
        "c 511:* rwm" in finding.fix and "in place of `c 506:* rwm`, `c 509:* rwm`" in finding.fix
    )
    assert "no device has that major now" in finding.evidence[-1]


def test_nvidia_major_not_allowed() -> None:
    without_195 = SNIPPET.replace("lxc.cgroup2.devices.allow: c 195:* rwm\n", "")
    finding = _codes(pve_lxc_conf=without_195, proc_devices=FULL_DEVICES)
    assert "c 195:* rwm" in finding["lxc-nvidia-major-not-allowed"].fix


# --- LXC: driver version -----------------------------------------------------------------------

MODULE = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 UTC 2024\n"
LIBS_550 = "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.550.54.14\n"
SMI_NOT_FOUND = _out("nvidia-smi/fail-not-found-bash.txt")


def test_same_version_stays_quiet() -> None:
    assert _codes(nvidia_version=MODULE, nvidia_libs=LIBS_550) == {}


def test_no_libraries_in_the_container() -> None:
    libs = "ls: cannot access '/usr/lib/*/libnvidia-ml.so.*': No such file or directory\n"
    findings = _codes(nvidia_version=MODULE, nvidia_libs=libs, nvidia_smi=SMI_NOT_FOUND)
    assert set(findings) == {"driver-libraries-missing"}
    assert "NVIDIA-Linux-x86_64-550.54.14.run --no-kernel-module" in (
        findings["driver-libraries-missing"].fix
    )
    assert _codes(nvidia_version=MODULE, nvidia_libs=libs) == {}  # no failure seen: no claim


# --- LXC: device permissions -------------------------------------------------------------------


def _ls(mode: str, owner: str, group: str) -> str:
    """`ls -l /dev/nvidia*` lines in GNU ls's layout (constructed; cf. ollama#17069)."""
    return "".join(
        f"{mode} 1 {owner} {group} {major}, {minor:>3} Jul 21 11:50 /dev/{name}\n"
        for name, major, minor in (
            ("nvidia-uvm", 511, 0),
            ("nvidia0", 195, 0),
            ("nvidiactl", 195, 255),
        )
    )


def test_default_mode_through_idmap_is_fine() -> None:
    assert _codes(dev_nvidia=_ls("crw-rw-rw-", "nobody", "nogroup")) == {}


def test_group_video_is_fine_for_the_ollama_user() -> None:
    assert _codes(dev_nvidia=_ls("crw-rw----", "root", "video")) == {}


def test_root_only_nodes_are_a_warning_without_more_evidence() -> None:
    finding = _codes(dev_nvidia=_ls("crw-rw----", "root", "root"))["device-permission-denied"]
    assert finding.severity == "warning"


def test_nvml_insufficient_permissions_alone() -> None:
    smi = (CASES_DIR / "lxc-unprivileged-0660" / "nvidia-smi.txt").read_text()
    findings = _codes(nvidia_smi=smi)
    assert set(findings) == {"device-permission-denied"}
    assert findings["device-permission-denied"].severity == "error"


def test_server_log_denied_on_a_device_node_but_not_on_the_models() -> None:
    # A real startup log (ollama-log/no-compatible-gpus) with one constructed line appended in
    # Go's os.Open error text ("open <path>: permission denied").
    log = _out("ollama-log/no-compatible-gpus.txt")
    line = (
        'time=2025-04-14T07:08:45.380Z level=WARN source=x.go:1 msg="open {}: permission denied"\n'
    )
    models = log + line.format("/usr/share/ollama/.ollama/models/blobs/sha256-x")
    assert "device-permission-denied" not in _codes(journal=models)
    node = _codes(journal=log + line.format("/dev/nvidia-uvm"))["device-permission-denied"]
    assert node.evidence[-1].startswith("journal: time=") and "/dev/nvidia-uvm" in node.evidence[-1]


# --- LXD/Incus ---------------------------------------------------------------------------------

LXD_8277 = (CASES_DIR / "lxd-no-gpu-device" / "lxd-config.txt").read_text()  # no gpu device
# The same instance with the device `lxc config device add ... gpu gpu` adds (constructed).
LXD_GPU = LXD_8277.replace("devices:\n", "devices:\n  gpu:\n    type: gpu\n")
NO_NODES = "ls: cannot access '/dev/nvidia*': No such file or directory\n"


def test_lxd_without_gpu_device_and_no_nodes_inside_is_an_error() -> None:
    finding = _codes(lxd_config=LXD_8277, dev_nvidia=NO_NODES)["lxd-no-gpu-device"]
    assert finding.severity == "error"
    assert "lxc config device add <instance> gpu gpu" in finding.fix


def test_lxd_with_a_gpu_device_stays_quiet() -> None:
    assert _codes(lxd_config=LXD_GPU, dev_nvidia=NO_NODES).keys() == {"no-device-nodes"}


def test_lxd_raw_lxc_majors_are_checked_like_proxmox_lines() -> None:
    # raw.lxc in LXC's own "key = value" syntax (constructed from the Telmate#1138 lines).
    raw = (
        "  raw.lxc: |\n"
        "    lxc.cgroup2.devices.allow = c 195:* rwm\n"
        "    lxc.mount.entry = /dev/nvidia0 dev/nvidia0 none bind,optional,create=file\n"
        "    lxc.mount.entry = /dev/nvidiactl dev/nvidiactl none bind,optional,create=file\n"
        "    lxc.mount.entry = /dev/nvidia-uvm dev/nvidia-uvm none bind,optional,create=file\n"
    )
    config = LXD_8277.replace("  raw.lxc: lxc.apparmor.allow_incomplete=1\n", raw)
    findings = _codes(lxd_config=config, proc_devices=FULL_DEVICES)
    assert "`lxc.cgroup2.devices.allow = c 509:* rwm` to raw.lxc" in (
        findings["lxc-uvm-major-not-allowed"].fix
    )
    assert "lxd-no-gpu-device" not in findings  # passed by hand, checked line by line
    allowed = config.replace(
        "c 195:* rwm\n", "c 195:* rwm\n    lxc.cgroup2.devices.allow = c 509:* rwm\n"
    )
    assert _codes(lxd_config=allowed, proc_devices=FULL_DEVICES) == {}


def test_lxd_config_parser() -> None:
    parsed = parse_lxd_config(LXD_GPU)
    assert parsed["gpu_devices"] == ["gpu"] and parsed["unix_char"] == ["/dev/nvidia-uvm"]
    assert parsed["privileged"] and not parsed["nvidia_runtime"]
    assert parsed["raw_lxc"]["entries"] == [{"key": "lxc.apparmor.allow_incomplete", "value": "1"}]
    for bad in ("just text\n", "devices: [a, b]\n", "key: [unclosed\n"):
        with pytest.raises(ParseError):
            parse_lxd_config(bad)


# --- parsers -----------------------------------------------------------------------------------


def test_modprobe_lines() -> None:
    parsed = parse_modprobe(
        "/etc/modprobe.d/vfio.conf:options vfio_pci ids=10DE:2206,10de:1aef disable_vga=1\n"
        "/etc/modprobe.d/vfio.conf:softdep nvidia pre: vfio-pci post: nvidia-drm\n"
        "/etc/modprobe.d/vfio.conf:# softdep nouveau pre: vfio-pci\n"
        "/lib/modprobe.d/nvidia.conf:options nvidia NVreg_DeviceFileMode=0660\n"
        "/etc/modprobe.d/blacklist.conf:blacklist nouveau\n"
    )
    assert parsed["vfio_ids"] == ["10de:2206", "10de:1aef"]
    assert parsed["softdeps"] == {"nvidia": ["vfio_pci"]}
    assert parsed["blacklisted"] == ["nouveau"]
    assert parsed["options"]["nvidia"] == ["NVreg_DeviceFileMode=0660"]
    with pytest.raises(ParseError):
        parse_modprobe("# nothing but a comment\n")


def test_iommu_listing() -> None:
    assert parse_iommu_listing(NO_IOMMU_GROUPS + "\n") == {"groups": {}, "count": 0}
    listing = parse_iommu_listing(ISOLATED)
    assert listing["count"] == 7 and len(listing["groups"]["1"]) == 5
    # the loop on a host without lspci: groups, but no device lines (IOMMU on all the same)
    bare = "IOMMU group 0 \nIOMMU group 1 \nsh: 1: lspci: not found\n"
    assert parse_iommu_listing(bare) == {"groups": {}, "count": 2}
    with pytest.raises(ParseError):
        parse_iommu_listing("ls: cannot access\n")


def test_driver_versions() -> None:
    assert parse_nvidia_version(MODULE) == {"version": "550.54.14"}
    assert parse_nvidia_version(
        "cat: /proc/driver/nvidia/version: No such file or directory\n"
    ) == {"version": None}
    assert parse_nvidia_libs(LIBS_550) == {"versions": ["550.54.14"]}
    with pytest.raises(ParseError):
        parse_nvidia_version("hello\n")
    with pytest.raises(ParseError):
        parse_nvidia_libs("hello\n")


def test_cpuinfo_vendor_and_node_access() -> None:
    assert parse_cpuinfo(AMD_CPU)["vendor"] == "amd"
    assert parse_cpuinfo(VM_CPU)["vendor"] == "intel"
    access = parse_dev_nvidia_access(_ls("crw-rw----", "nobody", "nogroup"))["access"]
    assert access["nvidia-uvm"] == {"mode": "crw-rw----", "owner": "nobody", "group": "nogroup"}
