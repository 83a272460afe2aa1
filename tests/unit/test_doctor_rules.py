"""Doctor rules on small constructed captures: each branch the fixture folders do not reach.

Inputs are in the exact formats of the tools (nvidia-smi CSV with its header, `ollama ps`,
Ollama's log lines); the numbers are chosen to sit on either side of each documented limit.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from doctor.captures import from_outputs
from doctor.diagnose import diagnose
from doctor.findings import SEVERITIES, Finding
from doctor.rules.gpu import required_driver

OUTPUTS = Path(__file__).resolve().parents[1] / "fixtures" / "outputs"
SMI_HEADER = (
    "index, name, memory.total [MiB], memory.used [MiB], memory.free [MiB], driver_version,"
    " compute_cap\n"
)


def _smi(name: str, total: int, driver: str, cc: str, used: int = 0) -> str:
    return SMI_HEADER + f"0, {name}, {total} MiB, {used} MiB, {total - used} MiB, {driver}, {cc}\n"


def _ps(name: str, size: str, processor: str, context: int) -> str:
    return (
        "NAME                ID              SIZE      PROCESSOR          CONTEXT    UNTIL\n"
        f"{name:<20}dae161e27b0e    {size:<10}{processor:<19}{context:<11}4 minutes from now\n"
    )


def _codes(**outputs: str) -> dict[str, Finding]:
    captures = from_outputs({kind.replace("_", "-"): text for kind, text in outputs.items()})
    assert captures.problems == []
    return {f.code: f for f in diagnose(captures)}


def _fixture(path: str) -> str:
    return (OUTPUTS / path).read_text()


@pytest.mark.parametrize(
    ("cc", "version", "expected"),
    [
        ((6, 1), (0, 31, 0), 570),  # CC 5.0-6.2 under llama-server (v0.30+)
        ((6, 1), (0, 29, 0), 531),  # before v0.30: the 531 of docs/gpu.md
        ((8, 6), (0, 30, 11), 550),
        ((8, 6), (0, 30, 10), 531),
        ((8, 6), None, 550),  # unknown release: today's documented minimum
        ((5, 2), None, 570),
    ],
)
def test_required_driver(
    cc: tuple[int, int], version: tuple[int, int, int] | None, expected: int
) -> None:
    assert required_driver(cc, version) == expected


def test_blackwell_needs_ollama_0_5_13() -> None:
    smi = _smi("NVIDIA GeForce RTX 5090", 32607, "570.153.02", "12.0")
    old = _codes(nvidia_smi=smi, ollama_version="ollama version is 0.5.12\n")
    assert "0.5.13" in old["ollama-too-old-for-gpu"].fix
    assert _codes(nvidia_smi=smi, ollama_version="ollama version is 0.5.13\n") == {}


def test_old_driver_for_pascal_on_current_ollama() -> None:
    smi = _smi("NVIDIA GeForce GTX 1080 Ti", 11264, "550.144.03", "6.1")
    findings = _codes(nvidia_smi=smi, ollama_version="ollama version is 0.31.0\n")
    assert findings["driver-too-old"].severity == "warning"  # nothing shows it unused yet
    assert "570" in findings["driver-too-old"].fix
    assert _codes(nvidia_smi=smi, ollama_version="ollama version is 0.29.0\n") == {}


def test_gpu_below_compute_capability_5() -> None:
    findings = _codes(nvidia_smi=_smi("Tesla K80", 11441, "470.256.02", "3.7"))
    assert "gpu-too-old" in findings


def test_cuda_visible_devices_minus_one() -> None:
    log = 'level=INFO source=routes.go:1205 msg="server config" env="map[CUDA_VISIBLE_DEVICES:-1 OLLAMA_KV_CACHE_TYPE:]"\n'  # noqa: E501
    assert "gpu-disabled-by-config" in _codes(journal=log)


def test_container_started_without_gpus() -> None:
    findings = _codes(
        docker_info=_fixture("docker-info/nvidia-runtime-systemd-cgroup.txt"),
        container_nvidia_smi="bash: nvidia-smi: command not found\n",
    )
    assert "--gpus=all" in findings["container-without-gpu-request"].fix


def test_no_gpu_at_all_hides_the_docker_advice() -> None:
    findings = _codes(
        nvidia_smi="sh: 1: nvidia-smi: not found\n",
        pci_sysfs="0000:00:02.0 0x8086 0x9bc8 0x030000\n",
        docker_info=_fixture("docker-info/grep-runtime-seccomp-warning.txt"),
    )
    assert set(findings) == {"no-nvidia-gpu"}


def test_server_without_gpu_and_no_other_clue() -> None:
    findings = _codes(journal=_fixture("ollama-log/no-compatible-gpus.txt"))
    assert set(findings) == {"server-sees-no-gpu"}


LXC_MOUNTS = """\
lxc.cgroup2.devices.allow: c 195:* rwm
lxc.mount.entry: /dev/nvidia0 dev/nvidia0 none bind,optional,create=file
lxc.mount.entry: /dev/nvidiactl dev/nvidiactl none bind,optional,create=file
"""
UVM_MOUNT = "lxc.mount.entry: /dev/nvidia-uvm dev/nvidia-uvm none bind,optional,create=file\n"
PROC_DEVICES = "Character devices:\n195 nvidia\n195 nvidiactl\n511 nvidia-uvm\n"


def test_lxc_uvm_not_passed() -> None:
    findings = _codes(pve_lxc_conf=LXC_MOUNTS, proc_devices=PROC_DEVICES)
    assert "lxc-uvm-not-passed" in findings


def test_lxc_uvm_major_not_allowed() -> None:
    findings = _codes(pve_lxc_conf=LXC_MOUNTS + UVM_MOUNT, proc_devices=PROC_DEVICES)
    assert "c 511:* rwm" in findings["lxc-uvm-major-not-allowed"].fix
    allowed = LXC_MOUNTS + UVM_MOUNT + "lxc.cgroup2.devices.allow: c 511:* rwm\n"
    assert _codes(pve_lxc_conf=allowed, proc_devices=PROC_DEVICES) == {}


def test_model_too_large_on_an_8gb_card_says_what_fits() -> None:
    findings = _codes(
        nvidia_smi=_smi("NVIDIA GeForce RTX 3070", 8192, "550.54.14", "8.6", used=7900),
        ollama_ps=_ps("llama3.1:8b", "14 GB", "52%/48% CPU/GPU", 65536),
    )
    finding = findings["model-too-large"]
    assert "llama3.1:8b at context 65536, KV f16" in finding.evidence[1]
    assert "100% on the GPU" in finding.fix
    assert "kv cache f16 -> q" in finding.fix and "context 65536 ->" in finding.fix


def test_qwen_coder_at_its_trained_context_fits_8gb() -> None:
    findings = _codes(
        nvidia_smi=_smi("NVIDIA GeForce RTX 3070", 8192, "550.54.14", "8.6", used=7900),
        ollama_ps=_ps("qwen2.5-coder:7b", "9.5 GB", "31%/69% CPU/GPU", 32768),
    )
    assert "predicted 100% GPU" in findings["vram-short"].evidence[1]


def test_other_processes_shrink_the_budget() -> None:
    apps = "pid, process_name, used_gpu_memory [MiB]\n901, python3, 14000 MiB\n"
    findings = _codes(
        nvidia_smi=_smi("NVIDIA GeForce RTX 3090", 24576, "550.54.14", "8.6", used=20000),
        nvidia_smi_apps=apps,
        ollama_ps=_ps("qwen2.5-coder:14b", "12 GB", "20%/80% CPU/GPU", 16384),
    )
    assert "total minus other processes" in findings["model-too-large"].evidence[1]
    assert findings["vram-held-by-other-process"].severity == "error"


def test_split_although_it_fits_points_at_other_users() -> None:
    findings = _codes(
        nvidia_smi=_smi("NVIDIA GeForce RTX 4090", 24564, "570.86.10", "8.9"),
        ollama_ps=_ps("qwen2.5-coder:7b", "5.6 GB", "10%/90% CPU/GPU", 4096),
    )
    assert "vram-short" in findings


def test_unparseable_capture_is_one_line_not_an_exception() -> None:
    captures = from_outputs({"nvidia-smi": "garbage that is no nvidia-smi output\n"})
    assert len(captures.problems) == 1
    assert captures.problems[0].startswith("live nvidia-smi: unparseable: ")
    assert diagnose(captures) == []


def test_findings_come_errors_first() -> None:
    findings = diagnose(
        from_outputs(
            {
                "journal": _fixture("ollama-log/no-compatible-gpus.txt"),
                "ollama-ps": _fixture("ollama-ps/server-unreachable.txt"),
            }
        )
    )
    ranks = [SEVERITIES.index(f.severity) for f in findings]
    assert ranks == sorted(ranks) and len(findings) == 2


def test_finding_rejects_unknown_severity() -> None:
    with pytest.raises(ValueError):
        Finding("x", "cause", "fix", severity="fatal")


def test_missing_nvidia_smi_with_a_gpu_on_the_bus_is_no_driver() -> None:
    findings = _codes(
        nvidia_smi="bash: nvidia-smi: command not found\n",
        pci_sysfs="0000:01:00.0 0x10de 0x2484 0x030000\n",
    )
    assert "0000:01:00.0 10de:2484" in findings["no-driver"].evidence[-1]


def test_missing_nvidia_smi_alone_says_what_to_capture() -> None:
    findings = _codes(nvidia_smi="bash: nvidia-smi: command not found\n")
    assert "capture lspci" in findings["nvidia-smi-not-found"].fix
